"""Denoising pretraining of the small generator (Lightning), with an EMA of its weights.

The denoiser learns in the autoencoder's latent space: every image is encoded once (the
posterior's mean and standard deviation), and each step draws a latent from it, as Stable
Diffusion's training scripts do per step, at a fraction of the cost. Min-SNR weighting
(diffusers' `compute_snr`), prompt features computed once per distinct caption by the frozen
text tower, a share of empty prompts so that classifier-free guidance works, and diffusers'
`EMAModel`, whose weights are the ones saved.
An interrupted run resumes from its last epoch checkpoint (training/checkpoints.py), the EMA
included.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from social_reward.generator.autoencoder_trainer import encode_posterior
from social_reward.generator.diffusion_config import DiffusionConfig
from social_reward.generator.pipeline import TinyGenerator, device_for
from social_reward.reward.data import prompt_captions
from social_reward.training.checkpoints import fit_resumable, resumable_trainer, step_limited
from social_reward.training.epoch_history import EpochHistory
from social_reward.training.schedules import warmup_cosine

EMA_STATE = "ema"  # the EMA's state in a checkpoint (not a registered module's)


def denoising_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps):
    prediction = scheduler.config.prediction_type
    if prediction == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction == "sample":
        return latents
    return noise


def snr_weights(scheduler, timesteps: torch.Tensor, gamma: float | None) -> torch.Tensor:
    """Min-SNR-gamma weights (Hang et al. 2023), expressed for the scheduler's target."""
    if gamma is None:
        return torch.ones(len(timesteps), device=timesteps.device)
    from diffusers.training_utils import compute_snr

    snr = compute_snr(scheduler, timesteps)
    clipped = torch.clamp(snr, max=gamma)
    prediction = scheduler.config.prediction_type
    if prediction == "v_prediction":
        return clipped / (snr + 1)
    if prediction == "sample":
        return clipped
    return clipped / snr


def denoising_loss(
    generator,
    latents: torch.Tensor,
    condition: dict[str, torch.Tensor],
    snr_gamma: float | None,
) -> torch.Tensor:
    """The ordinary diffusion loss of a batch (shared by pretraining and best-of-N tuning)."""
    scheduler = generator.scheduler
    noise = torch.randn_like(latents)
    timesteps = torch.randint(
        0, scheduler.config.num_train_timesteps, (len(latents),), device=latents.device
    )
    noisy = scheduler.add_noise(latents, noise, timesteps)
    prediction = generator.unet(noisy, timesteps, **condition).sample
    target = denoising_target(scheduler, latents, noise, timesteps)
    per_sample = F.mse_loss(prediction, target, reduction="none").mean(dim=(1, 2, 3))
    return (snr_weights(scheduler, timesteps, snr_gamma) * per_sample).mean()


class CaptionFeatures:
    """The frozen text tower's output for every distinct caption, computed once."""

    def __init__(self, generator: TinyGenerator, captions: list[str], batch_size: int = 256):
        chunks = [
            generator.prompt_encoder(captions[i : i + batch_size])
            for i in range(0, len(captions), batch_size)
        ]
        self.features = torch.cat([features for features, _ in chunks])
        self.pooled = torch.cat([pooled for _, pooled in chunks])
        empty_features, empty_pooled = generator.prompt_encoder([""])
        self.empty_features, self.empty_pooled = empty_features[0], empty_pooled[0]

    def condition(self, rows: torch.Tensor, drop: torch.Tensor) -> dict[str, torch.Tensor]:
        """Conditioning of captions `rows`; where `drop`, the empty prompt's instead."""
        features = torch.where(drop[:, None, None], self.empty_features, self.features[rows])
        pooled = torch.where(drop[:, None], self.empty_pooled, self.pooled[rows])
        return {"encoder_hidden_states": features, "class_labels": pooled}


class DiffusionModule(L.LightningModule):
    def __init__(
        self,
        generator: TinyGenerator,
        posterior: tuple[torch.Tensor, torch.Tensor],
        caption_of_image: torch.Tensor,
        captions: CaptionFeatures,
        config: DiffusionConfig,
    ) -> None:
        super().__init__()
        from diffusers.training_utils import EMAModel

        self.generator = generator
        self.unet = generator.unet
        # Each image's latent posterior (mean, standard deviation), unscaled, in host memory.
        self.latent_mean, self.latent_std = posterior
        self.caption_of_image = caption_of_image
        self.captions = captions
        self.config = config
        self.ema = EMAModel(self.unet.parameters(), decay=config.ema_decay)

    def training_step(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        rows = batch[0].cpu()  # the image bank and prompt features stay in host memory
        mean, std = self.latent_mean[rows], self.latent_std[rows]
        latents = (mean + std * torch.randn_like(std)).to(self.device)
        latents = latents * self.generator.vae.config.scaling_factor
        drop = torch.rand(len(rows)) < self.config.unconditional_share
        condition = self.captions.condition(self.caption_of_image[rows], drop)
        condition = {key: value.to(self.device) for key, value in condition.items()}
        loss = denoising_loss(self.generator, latents, condition, self.config.snr_gamma)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def on_fit_start(self) -> None:
        self.generator.to(self.device)  # the frozen text tower is not a registered module
        self.ema.to(self.device)

    def on_train_batch_end(self, *args) -> None:
        self.ema.step(self.unet.parameters())

    def on_train_end(self) -> None:
        self.ema.copy_to(self.unet.parameters())
        self.generator.to("cpu")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint[EMA_STATE] = self.ema.state_dict()  # plain numbers and tensors

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.ema.load_state_dict(checkpoint[EMA_STATE])

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.unet.parameters(), lr=self.config.learning_rate, weight_decay=0.0
        )
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.config.steps, self.config.warmup_fraction)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def step_trainer(
    config,
    history: L.Callback,
    progress: bool,
    checkpoints: Path,
    loader: DataLoader,
    callbacks: Sequence[L.Callback] = (),
) -> L.Trainer:
    """The Trainer both generator stages use: `config.steps` optimiser steps, clipped
    gradients, seeded and deterministic, the per-epoch history and `callbacks`, and an epoch
    checkpoint in `checkpoints` that holds `loader`'s shuffling state too."""
    # Counted in epochs and stopped at the step: resuming a run Lightning counts in steps
    # replays the end of the checkpoint's epoch (see StepLimit).
    limit = step_limited(config.steps, len(loader))
    return resumable_trainer(
        config,
        [history, *limit["callbacks"], *callbacks],
        progress,
        checkpoints,
        generators=[loader.generator],
        max_epochs=limit["max_epochs"],
        gradient_clip_val=config.gradient_clip,
    )


def image_loader(count: int, config: DiffusionConfig) -> DataLoader:
    return DataLoader(
        TensorDataset(torch.arange(count)),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,
        generator=torch.Generator().manual_seed(config.seed),
    )


def fit_diffusion(
    generator: TinyGenerator,
    pixels: torch.Tensor,
    prompts: Sequence[str],
    config: DiffusionConfig,
    checkpoints: Path,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> EpochHistory:
    """Train the generator's denoiser in place on decoded images (uint8 [N, 3, H, W] at the
    generator's size) and their prompts; its EMA weights are the ones kept. Returns the loss
    per epoch.

    An epoch checkpoint is kept in `checkpoints`, and a run finding one there resumes from it;
    `callbacks` are extra Lightning callbacks (tests interrupt a run with one).
    TrainingInterrupted when the run stops before its last step."""
    posterior = encode_posterior(generator.vae.to(device_for(config.accelerator)), pixels)
    generator.vae.cpu()
    captions, caption_of_image = prompt_captions(list(prompts))
    history = EpochHistory(("train_loss",))
    loader = image_loader(len(pixels), config)
    trainer = step_trainer(config, history, progress, checkpoints, loader, callbacks)
    module = DiffusionModule(
        generator, posterior, caption_of_image, CaptionFeatures(generator, captions), config
    )
    fit_resumable(trainer, module, checkpoints, "generator pretraining", train_dataloaders=loader)
    return history
