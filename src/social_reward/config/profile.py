"""Section `profile` of params.yaml: what the export looks like."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.gates import EXPORT_GATES
from social_reward.config.section import Section


class ProfileConfig(Section):
    """Stage `profile`: what the export looks like and how biased its raw counts are."""

    SECTION = "profile"

    validated_dir: Path = Path("artifacts/validated")  # the export, as `validate` passed it
    truth: Path = Path("truth/appeal.parquet")  # used only when the file exists
    metrics: Path = Path("metrics/profile.json")
    gate_verdicts: tuple[Path, ...] = EXPORT_GATES  # required before reading the export
    plot: Path = Path("plots/profile.png")
    plot_sample: int = Field(4000, gt=0)  # images drawn in the scatter panels
    exposure_bin_days: float = Field(2.0, gt=0)
    seed: int = 0  # which images the scatter panels sample
