"""Section `finetune` of params.yaml: LoRA adapters that raise the generator's reward."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.section import Section
from social_reward.generator.finetune_config import FinetuneTrainerConfig


class FinetuneConfig(FinetuneTrainerConfig, Section):
    """Section `finetune`: LoRA adapters that raise the Social Reward of the generator."""

    SECTION = "finetune"

    pairs_dir: Path = Path("artifacts/pairs")  # training prompts: the pairs' train split
    base_dir: Path = Path("models/generator_base")
    reward_dir: Path = Path("models/reward")
    out_dir: Path = Path("models/generator")
    metrics: Path = Path("metrics/finetune.json")
    log: Path = Path("plots/finetune.csv")
    # An interrupted run resumes from here (<fingerprint>/last.ckpt); removed when done.
    checkpoint_dir: Path = Path("artifacts/checkpoints/finetune")
    # CPU threads while training. DRaFT's backward through sampling gave different adapter
    # bytes from run to run with 2 threads and the same bytes with 1 (measured on the CI
    # profile), so 1 keeps `dvc repro --force` byte-identical; empty: torch's default.
    cpu_threads: int | None = Field(1, gt=0)
