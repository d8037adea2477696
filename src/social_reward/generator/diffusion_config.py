"""Configuration of the small generator's denoising pretraining."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from social_reward.training.lightning_options import LightningOptions


class DiffusionConfig(LightningOptions):
    unet: str = "social-reward-tiny-unet"  # a UNet config in generator/model_configs
    text_tokens: int = Field(16, gt=0)  # prompt tokens the UNet attends to
    # v-prediction learns this world fastest on a CPU (epsilon-prediction gave noise).
    prediction_type: Literal["v_prediction", "epsilon", "sample"] = "v_prediction"
    timesteps: int = Field(1000, gt=1)
    beta_schedule: str = "squaredcos_cap_v2"
    snr_gamma: float | None = Field(5.0, gt=0)  # min-SNR loss weighting; empty: none
    steps: int = Field(1500, gt=0)  # optimiser steps
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1.5e-3, gt=0)
    warmup_fraction: float = Field(0.07, ge=0, lt=1)  # then cosine decay
    gradient_clip: float = Field(1.0, gt=0)
    ema_decay: float = Field(0.999, gt=0, lt=1)
    unconditional_share: float = Field(0.1, ge=0, lt=1)  # empty prompt, for guidance
    seed: int = 0
    decode_workers: int = Field(2, gt=0)
