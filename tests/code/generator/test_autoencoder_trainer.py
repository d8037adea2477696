"""The autoencoder's training: it learns to reconstruct, its latents get unit scale, and an
interrupted run resumes to the same weights."""

from __future__ import annotations

import torch

from social_reward.generator.autoencoder_trainer import (
    encode_posterior,
    fit_autoencoder,
    reconstruction_psnr,
    set_scaling_factor,
)
from tests.conftest import stage_config
from tests.model.interruption import EpochsRun, interrupt_after_first_epoch


def flat_squares(count: int, size: int) -> torch.Tensor:
    """uint8 images: a coloured square on a plain background, at random places."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (count, 3, 1, 1), generator=generator).expand(
        count, 3, size, size
    )
    pixels = pixels.clone()
    for n in range(count):
        top, left = torch.randint(0, size // 2, (2,), generator=generator).tolist()
        colour = torch.randint(0, 256, (3, 1, 1), generator=generator)
        pixels[n, :, top : top + size // 2, left : left + size // 2] = colour
    return pixels.to(torch.uint8)


def settings(steps: int):
    config = stage_config("generator_pretrain")
    return config, config.autoencoder.model_copy(
        update={"steps": steps, "batch_size": 16, "learning_rate": 3e-3, "warmup_fraction": 0.0}
    )


def test_the_autoencoder_learns_to_reconstruct_and_its_latents_get_unit_scale(generator, tmp_path):
    vae = generator.vae
    pixels = flat_squares(64, generator.image_size)
    before = reconstruction_psnr(vae, pixels)
    options, config = settings(steps=100)
    history = fit_autoencoder(vae, pixels, config, options, 0, tmp_path / "ckpt", progress=False)
    after = reconstruction_psnr(vae, pixels)
    assert after > before + 1.5  # dB
    assert history.rows[-1]["train_loss"] < history.rows[0]["train_loss"]
    assert not any(p.requires_grad for p in vae.parameters())  # frozen again for tuning

    factor = set_scaling_factor(vae, pixels)
    assert vae.config.scaling_factor == factor
    means, _ = encode_posterior(vae, pixels)
    assert abs(float((means * factor).std()) - 1.0) < 1e-4


def test_an_interrupted_autoencoder_run_resumes_to_the_same_weights(
    backbone_dir, small_unet, tmp_path
):
    from tests.code.generator.conftest import build_small

    pixels = flat_squares(32, 32)
    options, config = settings(steps=4)  # two epochs of two steps

    def trained(folder, callbacks=()):
        vae = build_small(backbone_dir, small_unet).vae
        fit_autoencoder(vae, pixels, config, options, 0, folder, False, callbacks)
        return vae.state_dict()

    torch.manual_seed(0)
    uninterrupted = trained(tmp_path / "once")
    interrupt_after_first_epoch(
        lambda callbacks: trained(tmp_path / "twice", callbacks), "autoencoder"
    )
    epochs = EpochsRun()
    torch.manual_seed(0)
    resumed = trained(tmp_path / "twice", (epochs,))
    assert epochs.epochs == [1]
    assert all(torch.equal(resumed[key], uninterrupted[key]) for key in uninterrupted)
