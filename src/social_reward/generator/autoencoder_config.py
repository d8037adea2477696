"""Configuration of the small generator's autoencoder (`generator_pretrain.autoencoder`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AutoencoderConfig(BaseModel):
    """The AutoencoderKL of the small default, trained first on the export's images."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "social-reward-tiny-vae"  # an AutoencoderKL config in generator/model_configs
    steps: int = Field(700, gt=0)  # optimiser steps
    batch_size: int = Field(64, gt=0)
    # Trained on random crops of this side (the whole image if larger): the network is
    # convolutional, and four times as many steps in the same time teach it colours and edges
    # that whole images at a quarter of the steps leave dull (docs/experiments.md section 8).
    crop_size: int = Field(16, ge=8)
    learning_rate: float = Field(3e-3, gt=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)  # then cosine decay
    l1_weight: float = Field(0.5, ge=0)  # beside the squared error: crisper edges
    kl_weight: float = Field(1e-6, ge=0)  # Stable Diffusion's: a nearly free latent
    gradient_clip: float = Field(1.0, gt=0)
    reconstructions: int = Field(8, gt=0)  # images shown beside their reconstruction
