"""Where the gate stages write their verdicts (data/gates.py), as defaults of the sections
that write or require them: one place, so that writer and readers agree."""

from __future__ import annotations

from pathlib import Path

VALIDATE_VERDICT = Path("artifacts/gates/validate.json")
DRIFT_VERDICT = Path("artifacts/gates/drift.json")
# What a stage reading the export's content requires: both gates passed this export.
EXPORT_GATES = (VALIDATE_VERDICT, DRIFT_VERDICT)
