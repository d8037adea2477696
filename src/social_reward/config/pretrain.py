"""Section `pretrain` of params.yaml: CLIP training of the backbone on the export."""

from __future__ import annotations

from pathlib import Path

from social_reward.config.section import Section
from social_reward.reward.contrastive_config import ContrastiveConfig


class PretrainConfig(ContrastiveConfig, Section):
    """Stage `pretrain`: CLIP training of the backbone on the export (test prompts excluded)."""

    SECTION = "pretrain"

    pairs_dir: Path = Path("artifacts/pairs")  # images.parquet: every image with its split
    out_dir: Path = Path("models/backbone")
    metrics: Path = Path("metrics/pretrain.json")
    log: Path = Path("plots/pretrain.csv")
    # An interrupted run resumes from here (<fingerprint>/last.ckpt); removed when done.
    checkpoint_dir: Path = Path("artifacts/checkpoints/pretrain")
