"""Sampling: an image depends on its prompt and seed only; gradients only where asked."""

from __future__ import annotations

import torch

from social_reward.generator.sampling import initial_noise, sample, sample_batched

PROMPTS = ["a red star", "a blue ring", "a green moon"]


def test_an_image_depends_on_its_seed_not_on_its_batch(generator):
    together = sample(generator, PROMPTS, [5, 6, 7], steps=3, guidance=3.0)
    alone = sample(generator, PROMPTS[1:2], [6], steps=3, guidance=3.0)
    assert torch.allclose(together[1], alone[0], atol=1e-5)
    batched = sample_batched(generator, PROMPTS, [5, 6, 7], steps=3, guidance=3.0, batch_size=2)
    assert torch.allclose(batched, together, atol=1e-5)
    other_seed = sample(generator, PROMPTS[1:2], [8], steps=3, guidance=3.0)
    assert not torch.allclose(other_seed, alone)


def test_noise_is_drawn_per_seed():
    assert torch.equal(initial_noise((2, 3), [1, 2])[1], initial_noise((2, 3), [2])[0])


def test_without_grad_steps_nothing_keeps_a_graph(generator):
    generator.unet.requires_grad_(True)
    images = sample(generator, PROMPTS[:1], [0], steps=2, guidance=1.0)
    assert not images.requires_grad


def test_grad_steps_carry_gradients_to_the_unet_from_the_last_steps_only(generator):
    generator.unet.requires_grad_(True)
    calls = []
    images = sample(
        generator,
        PROMPTS[:2],
        [0, 1],
        steps=4,
        guidance=2.0,
        grad_steps=1,
        on_grad_step=lambda *args: calls.append(args[1]),
    )
    images.mean().backward()
    assert len(calls) == 1  # the hook sees exactly the differentiable step
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.unet.parameters())
