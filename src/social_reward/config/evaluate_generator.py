"""Section `evaluate_generator` of params.yaml: base against fine-tuned generator."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from social_reward.config.external_scorers import ExternalWeights
from social_reward.config.gates import EXPORT_GATES
from social_reward.config.section import Section


class JudgeConfig(Section):
    """The truth judge of simulated exports (an independent stand-in for a user study)."""

    image_size: int = Field(32, ge=8)
    width: int = Field(32, gt=0)
    epochs: int = Field(8, gt=0)
    batch_size: int = Field(64, gt=1)
    learning_rate: float = Field(2e-3, gt=0)


class AttributeJudgeConfig(Section):
    """The attribute judge of simulated exports: what a picture shows."""

    image_size: int = Field(32, ge=8)
    width: int = Field(32, gt=0)
    epochs: int = Field(8, gt=0)
    batch_size: int = Field(64, gt=1)
    learning_rate: float = Field(3e-3, gt=0)
    # The colour is learned from images whose drawn hue misses the asked one by little.
    colour_match_min: float = Field(0.9, gt=0, le=1)


class EvaluateGeneratorConfig(Section):
    """Section `evaluate_generator`: base vs fine-tuned on held-out prompts and seeds."""

    SECTION = "evaluate_generator"

    pairs_dir: Path = Path("artifacts/pairs")  # held-out prompts: the pairs' test split
    validated_dir: Path = Path("artifacts/validated")  # the export the truth belongs to
    base_dir: Path = Path("models/generator_base")
    tuned_dir: Path = Path("models/generator")
    reward_dir: Path = Path("models/reward")
    backbone_dir: Path = Path("models/backbone")  # its cosine is the alignment judge
    truth: Path = Path("truth/appeal.parquet")  # simulated exports: the truth judge
    external: ExternalWeights = ExternalWeights()
    metrics: Path = Path("metrics/generator.json")
    gate_verdicts: tuple[Path, ...] = EXPORT_GATES  # required before reading the export
    plots_dir: Path = Path("plots/generator")
    report_dir: Path = Path("reports/generator")
    seeds_per_prompt: int = Field(20, gt=1)  # images per held-out prompt and model
    best_of_n: int = Field(20, gt=1)  # best-of-N at inference: groups of this many samples
    sampling_steps: int = Field(20, gt=0)
    guidance: float = Field(3.0, ge=1)
    batch_size: int = Field(64, gt=0)
    device: str = "cpu"  # where images are drawn and scored: "cuda" on a GPU machine
    bootstrap_resamples: int = Field(1000, gt=0)
    level: float = Field(0.95, gt=0.0, lt=1.0)
    grid_prompts: int = Field(6, gt=0)
    grid_seeds: int = Field(4, gt=0)
    judge: JudgeConfig = JudgeConfig()
    attributes: AttributeJudgeConfig = AttributeJudgeConfig()
    seed: int = 0

    @model_validator(mode="after")
    def _groups_fit(self) -> EvaluateGeneratorConfig:
        if self.best_of_n > self.seeds_per_prompt:
            raise ValueError(
                f"best_of_n ({self.best_of_n}) must not exceed seeds_per_prompt "
                f"({self.seeds_per_prompt}): the groups are drawn from those images"
            )
        return self
