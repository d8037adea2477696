"""Section `evaluate` of params.yaml: every scorer side by side on the test split."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.external_scorers import ExternalWeights
from social_reward.config.gates import EXPORT_GATES
from social_reward.config.section import Section


class ProbeConfig(Section):
    """The feature ceiling: a ridge probe on true appeal over a model's frozen features."""

    folds: int = Field(5, ge=2)  # cross-validation folds, by prompt group, for its strength
    alphas: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)  # ridge strengths tried


class EvaluateConfig(Section):
    """Stage `evaluate`: every scorer side by side on the test split."""

    SECTION = "evaluate"

    validated_dir: Path = Path("artifacts/validated")
    pairs_dir: Path = Path("artifacts/pairs")
    backbone_dir: Path = Path("models/backbone")  # its cosine is the CLIP-score baseline
    reward_dir: Path = Path("models/reward")
    ablation_dir: Path = Path("models/reward_ablation")  # the same training, other pairs mode
    truth: Path = Path("truth/appeal.parquet")  # simulated exports only; skipped when missing
    metrics: Path = Path("metrics/evaluate.json")
    gate_verdicts: tuple[Path, ...] = EXPORT_GATES  # required before reading the export
    report_dir: Path = Path("reports/evaluate")
    plots_dir: Path = Path("plots/evaluate")
    external: ExternalWeights = ExternalWeights()
    batch_size: int = Field(64, gt=0)  # images scored at a time
    bootstrap_resamples: int = Field(1000, gt=0)
    level: float = Field(0.95, gt=0.0, lt=1.0)  # of the intervals
    best_of_n: int = Field(20, gt=1)  # the paper's "best of 20 generations"
    best_of_n_draws: int = Field(200, gt=0)  # subsets drawn per prompt
    audit_pairs: int = Field(300, gt=0)  # rendered image pairs per confounder trace
    grid_prompts: int = Field(4, gt=0)  # rows of the best-of-N picture
    # Diagnostics against true appeal (evaluate/diagnostics.py).
    clear_gap_sd: float = Field(1.0, gt=0.0)  # a clear pair: appeal gap >= this many SDs
    probe: ProbeConfig = ProbeConfig()
    # Rewards trained on a share of the training pairs (`train` variants), by share; the
    # reward itself is the curve's point at 1.0.
    learning_curve: dict[float, Path] = Field(
        default_factory=lambda: {0.25: Path("models/reward_25"), 0.5: Path("models/reward_50")}
    )
    seed: int = 0
