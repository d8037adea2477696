"""Sampling with diffusers' DDIM scheduler, written out so that gradients can flow.

diffusers' pipelines sample under `torch.no_grad`. Fine-tuning by reward back-propagation
(DRaFT-K) needs the last K denoising steps differentiable, so the loop is here: the same
scheduler calls a pipeline makes, classifier-free guidance by batch doubling, one seed per
image (an image depends only on its prompt and seed, never on its batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext

import torch

from social_reward.generator.pipeline import Generator


def initial_noise(shape: tuple[int, ...], seeds: Sequence[int]) -> torch.Tensor:
    """One noise tensor per seed, drawn on the CPU (identical on every device)."""
    return torch.stack(
        [torch.randn(shape, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    )


def ddim_scheduler(generator: Generator, steps: int):
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler.from_config(
        generator.scheduler.config, timestep_spacing="trailing", clip_sample=False
    )
    scheduler.set_timesteps(steps)
    return scheduler


def guided_prediction(
    generator: Generator,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    condition: dict[str, torch.Tensor],
    empty: dict[str, torch.Tensor],
    guidance: float,
) -> torch.Tensor:
    """The UNet's output with classifier-free guidance (one batched call)."""
    if guidance == 1.0:
        return generator.unet(latents, timestep, **condition).sample
    both = {key: torch.cat([empty[key], condition[key]]) for key in condition}
    unconditional, conditional = generator.unet(
        torch.cat([latents, latents]), timestep, **both
    ).sample.chunk(2)
    return unconditional + guidance * (conditional - unconditional)


def sample(
    generator: Generator,
    prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    guidance: float,
    grad_steps: int = 0,
    on_grad_step: Callable | None = None,
) -> torch.Tensor:
    """Images [B, 3, H, W] in [0, 1]; the last `grad_steps` steps keep their gradients.

    `on_grad_step(latents, timestep, condition, empty, guidance, prediction)` is called at each of
    them (fine-tuning compares the prediction with the base model's there).
    """
    device = generator.unet.device
    scheduler = ddim_scheduler(generator, steps)
    latents = initial_noise(generator.latent_shape, seeds).to(device) * scheduler.init_noise_sigma
    condition = generator.condition(prompts)
    empty = generator.condition([""] * len(prompts))
    for index, timestep in enumerate(scheduler.timesteps):
        keep_grad = index >= len(scheduler.timesteps) - grad_steps
        with nullcontext() if keep_grad else torch.no_grad():
            model_input = scheduler.scale_model_input(latents, timestep)
            output = guided_prediction(generator, model_input, timestep, condition, empty, guidance)
            if keep_grad and on_grad_step is not None:
                on_grad_step(model_input, timestep, condition, empty, guidance, output)
            latents = scheduler.step(output, timestep, latents).prev_sample
    with nullcontext() if grad_steps > 0 else torch.no_grad():
        return generator.from_latents(latents)


@torch.no_grad()
def sample_batched(
    generator: Generator,
    prompts: Sequence[str],
    seeds: Sequence[int],
    steps: int,
    guidance: float,
    batch_size: int,
    progress=None,
) -> torch.Tensor:
    """`sample` in batches, without gradients; `progress` is a tqdm bar to advance."""
    chunks = []
    for start in range(0, len(prompts), batch_size):
        stop = start + batch_size
        images = sample(generator, prompts[start:stop], seeds[start:stop], steps, guidance)
        chunks.append(images.cpu())
        if progress is not None:
            progress.update(len(chunks[-1]))
    return torch.cat(chunks) if chunks else torch.empty(0)
