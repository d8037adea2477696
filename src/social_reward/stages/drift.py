"""Stage `drift` (a gate): is this export still like the one the production model was trained on?

One feature row per image (prompt length, engagement, creator reach, generator, simple image
statistics) and the prompts' words, compared with the reference stored with the production
model using Evidently. The gate fails when the share of drifted columns exceeds
`drift.max_drift_share`, unless `drift.allow_drift` records a deliberate override. Before
any model exists there is no reference: the stage passes, and this export's feature table
(`drift.features`) is what a model trained on it will carry as its reference.
"""

from __future__ import annotations

from pathlib import Path

from social_reward.artifacts import StageResult
from social_reward.config.drift import DriftConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.data.drift_detection import check_drift
from social_reward.data.gates import require_passed


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, DriftConfig)
    require_passed(config.gate_verdicts, config.validated_dir)
    metrics = check_drift(config)
    return StageResult(
        written=(config.features, config.report_dir, config.metrics),
        summary=[f"drift: {metrics['summary']}"],
    )
