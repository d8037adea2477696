"""Configuration of reward fine-tuning (LoRA on the denoiser's attention)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from social_reward.training.lightning_options import LightningOptions


class FinetuneTrainerConfig(LightningOptions):
    method: Literal["best_of_n", "draft"] = "best_of_n"
    lora_rank: int = Field(8, gt=0)
    lora_alpha: float = Field(8.0, gt=0)
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    steps: int = Field(300, gt=0)  # optimiser steps
    batch_size: int = Field(32, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    warmup_fraction: float = Field(0.05, ge=0, lt=1)
    gradient_clip: float = Field(1.0, gt=0)
    sampling_steps: int = Field(20, gt=0)  # DDIM steps of every sample drawn
    guidance: float = Field(3.0, ge=1)  # classifier-free guidance scale
    # best_of_n: candidates per (prompt, round); the reward's best of each is kept.
    candidates: int = Field(8, gt=1)
    rounds: int = Field(8, gt=0)  # seeds groups per training prompt
    snr_gamma: float | None = Field(5.0, gt=0)
    # draft: reward gradients through the last K denoising steps (DRaFT-K) ...
    draft_steps: int = Field(1, gt=0)
    gradient_checkpointing: bool = False  # trades compute for memory (real sizes)
    # ... and a penalty on the distance of the tuned from the base prediction there.
    base_penalty: float = Field(1.0, ge=0)
    seed: int = 0
