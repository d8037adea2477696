"""Configuration of the preference trainer (the paper's fine-tuning on remix pairs)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from social_reward.reward.unlock_modes import UNLOCK_MODES
from social_reward.training.lightning_options import LightningOptions


class RewardTrainerConfig(LightningOptions):
    loss: Literal["triplet", "bradley_terry"] = "triplet"
    margin: float = Field(0.3, gt=0)  # triplet margin on squared distances (the paper's 0.3)
    unlock: str = "visual_upper_layers_textual_upper_layers"  # the paper's setting
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(32, gt=0)  # pairs per step (the paper's 32)
    learning_rate: float = Field(3e-5, gt=0)  # the reference code's
    weight_decay: float = Field(0.0, ge=0)
    # Weight of the neutrality term: the squared mean score margin of pairs across a recorded
    # confounder (generator, influencer flag), toward one side; 0: no term. See losses.py.
    neutrality_weight: float = Field(0.0, ge=0)
    cache_prefix: bool = True  # reuse frozen lower blocks' outputs across epochs
    flip_views: bool = True  # cache a mirrored view as well and draw one per step
    keep_best_epoch: bool = True  # the weights of the best validation accuracy, not the last
    early_stopping_patience: int = Field(0, ge=0)  # epochs without improvement; 0: never stop
    seed: int = 0
    decode_workers: int = Field(2, gt=0)

    @field_validator("unlock")
    @classmethod
    def _known_mode(cls, mode: str) -> str:
        if mode not in UNLOCK_MODES:
            raise ValueError(f"unlock mode {mode!r}; one of {sorted(UNLOCK_MODES)}")
        return mode
