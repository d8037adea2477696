"""Configuration of the contrastive (CLIP) pretraining of a backbone without weights."""

from __future__ import annotations

from pydantic import Field

from social_reward.training.lightning_options import LightningOptions


class ContrastiveConfig(LightningOptions):
    epochs: int = Field(8, gt=0)
    batch_size: int = Field(128, gt=1)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    warmup_fraction: float = Field(0.1, ge=0, lt=1)  # of all steps, then cosine decay
    flip: bool = True  # horizontal flips: neither content nor appeal depends on them
    seed: int = 0
    decode_workers: int = Field(2, gt=0)
