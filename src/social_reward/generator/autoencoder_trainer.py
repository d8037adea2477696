"""Training of the small generator's AutoencoderKL (Lightning), the first half of
`generator_pretrain`.

It trains on random crops of the images (as Stable Diffusion's autoencoder trained on 256 px
crops and serves 512 px images): more steps in the same time. The loss is Stable Diffusion's
autoencoder loss without its perceptual and adversarial terms,
which need pretrained networks this world does not have: squared plus absolute
reconstruction error, and a very small KL term that keeps the latent space smooth. Once
trained, the latents' scaling factor is set as Stable Diffusion's was (one over the latents'
standard deviation), so the denoiser sees unit-variance latents. An interrupted run resumes
from its epoch checkpoint (training/checkpoints.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from social_reward.generator.autoencoder_config import AutoencoderConfig
from social_reward.training.checkpoints import (
    fit_resumable,
    resumable_trainer,
    step_limited,
)
from social_reward.training.epoch_history import EpochHistory
from social_reward.training.lightning_options import LightningOptions
from social_reward.training.schedules import warmup_cosine

MAX_PIXEL = 255.0
ENCODE_BATCH = 256  # images per forward pass where no gradient is kept


def random_crop(images: torch.Tensor, side: int) -> torch.Tensor:
    """One random square of `side` pixels, at the same place in every image of the batch
    (torch's global generator: a resumed run draws the same crops)."""
    height, width = images.shape[-2:]
    if side >= min(height, width):
        return images
    top = int(torch.randint(0, height - side + 1, ()))
    left = int(torch.randint(0, width - side + 1, ()))
    return images[..., top : top + side, left : left + side]


class AutoencoderModule(L.LightningModule):
    def __init__(self, vae, pixels: torch.Tensor, config: AutoencoderConfig) -> None:
        super().__init__()
        self.vae = vae
        self.pixels = pixels  # [N, 3, H, W] uint8 at the generator's size, in host memory
        self.config = config

    def training_step(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        images = self.pixels[batch[0].cpu()].to(self.device).float() / MAX_PIXEL * 2 - 1
        images = random_crop(images, self.config.crop_size)
        posterior = self.vae.encode(images).latent_dist
        reconstruction = self.vae.decode(posterior.sample()).sample
        loss = (
            F.mse_loss(reconstruction, images)
            + self.config.l1_weight * F.l1_loss(reconstruction, images)
            + self.config.kl_weight * posterior.kl().mean()
        )
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.vae.parameters(), lr=self.config.learning_rate, weight_decay=0.0
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.config.steps, self.config.warmup_fraction)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def fit_autoencoder(
    vae,
    pixels: torch.Tensor,
    config: AutoencoderConfig,
    options: LightningOptions,
    seed: int,
    checkpoints: Path,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> EpochHistory:
    """Train `vae` in place on uint8 images [N, 3, H, W]; returns the loss per epoch.
    TrainingInterrupted when the run stops before its last step (its checkpoint is kept)."""
    loader = DataLoader(
        TensorDataset(torch.arange(len(pixels))),
        batch_size=min(config.batch_size, len(pixels)),
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )
    history = EpochHistory(("train_loss",))
    limit = step_limited(config.steps, len(loader))
    trainer = resumable_trainer(
        options,
        [history, *limit["callbacks"], *callbacks],
        progress,
        checkpoints,
        generators=[loader.generator],
        max_epochs=limit["max_epochs"],
        gradient_clip_val=config.gradient_clip,
    )
    vae.requires_grad_(True).train()
    module = AutoencoderModule(vae, pixels, config)
    fit_resumable(trainer, module, checkpoints, "autoencoder training", train_dataloaders=loader)
    vae.requires_grad_(False).cpu().eval()  # frozen from here on, as in Stable Diffusion
    return history


@torch.no_grad()
def encode_posterior(vae, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation of the posterior of uint8 images, unscaled."""
    device = next(vae.parameters()).device
    means, stds = [], []
    for start in range(0, len(pixels), ENCODE_BATCH):
        images = pixels[start : start + ENCODE_BATCH].to(device).float() / MAX_PIXEL * 2 - 1
        posterior = vae.encode(images.to(vae.dtype)).latent_dist
        means.append(posterior.mean.cpu())
        stds.append(posterior.std.cpu())
    return torch.cat(means), torch.cat(stds)


def set_scaling_factor(vae, pixels: torch.Tensor) -> float:
    """Stable Diffusion's choice: one over the standard deviation of the latents."""
    means, _ = encode_posterior(vae, pixels)
    factor = 1.0 / float(means.std())
    vae.register_to_config(scaling_factor=factor)
    return factor


@torch.no_grad()
def reconstruction_psnr(vae, pixels: torch.Tensor) -> float:
    """Mean peak signal-to-noise ratio (dB) of the posterior mean's reconstruction."""
    device = next(vae.parameters()).device
    psnrs = []
    for start in range(0, len(pixels), ENCODE_BATCH):
        images = pixels[start : start + ENCODE_BATCH].to(device).float() / MAX_PIXEL
        latents = vae.encode(images * 2 - 1).latent_dist.mean
        reconstruction = ((vae.decode(latents).sample + 1) / 2).clamp(0, 1)
        error = (reconstruction - images).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnrs.append(-10 * torch.log10(error))
    return float(torch.cat(psnrs).mean()) if psnrs else math.nan
