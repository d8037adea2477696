"""Section `train` of params.yaml: the reward fine-tuned on pairs, one run per variant."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.section import Section
from social_reward.reward.trainer_config import RewardTrainerConfig


class TrainVariant(Section):
    """One trained reward: its pairs and where it is written."""

    pairs_dir: Path
    out_dir: Path
    # A seeded share of the training pairs (the learning curve); validation pairs all kept.
    pairs_share: float = Field(1.0, gt=0.0, le=1.0)
    # False: trained without the neutrality term, as a pipeline that trusts raw counts would
    # be (the naive ablation changes the pairs and drops the term: both are the debiasing).
    neutral: bool = True


class TrainConfig(RewardTrainerConfig, Section):
    """Stage `train`: the reward fine-tuned on pairs; `variants` are the DVC stage's foreach."""

    SECTION = "train"

    backbone_dir: Path = Path("models/backbone")
    variants: dict[str, TrainVariant] = Field(
        default_factory=lambda: {
            "reward": TrainVariant(
                pairs_dir=Path("artifacts/pairs"), out_dir=Path("models/reward")
            ),
            "ablation": TrainVariant(
                pairs_dir=Path("artifacts/pairs/ablation"), out_dir=Path("models/reward_ablation")
            ),
        }
    )
    metrics_dir: Path = Path("metrics/train")  # <variant>.json
    log_dir: Path = Path("plots/train")  # <variant>.csv: loss and validation accuracy per epoch
    checkpoint_dir: Path = Path("artifacts/checkpoints")  # resumable runs; removed when done

    def trainer_config(self, variant: str) -> RewardTrainerConfig:
        """The trainer's settings for one variant (a non-neutral one drops the term)."""
        settings = self.model_dump(include=set(RewardTrainerConfig.model_fields))
        if not self.variants[variant].neutral:
            settings["neutrality_weight"] = 0.0
        return RewardTrainerConfig(**settings)
