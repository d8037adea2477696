"""Stage `validate` (a gate): the export's contract, checked with Great Expectations.

Rows that break a rule go to the quarantine with the rules they broke, and rows that depend
on them follow; the stage fails when a table's quarantined share exceeds
`validate.max_quarantine_share`, after writing everything a person needs to see why.
"""

from __future__ import annotations

from pathlib import Path

from social_reward.artifacts import StageResult
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.config.validate import ValidateConfig
from social_reward.data.validation import validate_export


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, ValidateConfig)
    metrics = validate_export(config)
    return StageResult(
        written=(config.validated_dir, config.quarantine_dir, config.report, config.metrics),
        summary=[
            f"{name}: {counts['rows_in']} rows, {counts['rows_kept']} kept, "
            f"{counts['rows_quarantined']} quarantined"
            for name, counts in metrics["tables"].items()
        ],
    )
