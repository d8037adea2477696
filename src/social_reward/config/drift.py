"""Section `drift` of params.yaml: the export against the production model's reference."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from social_reward.config.gates import DRIFT_VERDICT, VALIDATE_VERDICT
from social_reward.config.section import Section


class DriftConfig(Section):
    """Stage `drift`: the export against the production model's reference, with Evidently."""

    SECTION = "drift"

    validated_dir: Path = Path("artifacts/validated")
    features: Path = Path("artifacts/drift/features.parquet")  # this export's feature table
    # Stored with the production model; until one exists, the stage passes.
    reference: Path = Path("models/production/champion/drift_reference.parquet")
    # The retrain flow's decisions: once one records a promotion, a missing reference is an
    # error, never "no reference yet".
    registry: Path = Path("models/registry.jsonl")
    report_dir: Path = Path("reports/drift")
    metrics: Path = Path("metrics/drift.json")
    verdict: Path = DRIFT_VERDICT  # the gate's verdict, which later stages require
    gate_verdicts: tuple[Path, ...] = (VALIDATE_VERDICT,)  # required before reading the export
    # Distances, not p-values: their meaning does not change with sample size.
    numeric_method: Literal["wasserstein", "psi", "kl_div", "ed"] = "wasserstein"
    categorical_method: Literal["jensenshannon", "psi", "kl_div", "hellinger"] = "jensenshannon"
    threshold: float = Field(0.1, gt=0.0)
    max_drift_share: float = Field(0.3, ge=0.0, le=1.0)  # the gate
    allow_drift: bool = False  # a recorded, deliberate override of the gate
    topic_words: int = Field(30, gt=0)  # most frequent prompt words compared; others pooled
    decode_workers: int = Field(2, gt=0)
