"""Section `validate` of params.yaml: the export's contract, checked as a gate."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.gates import VALIDATE_VERDICT
from social_reward.config.section import Section


class ValidateConfig(Section):
    """Stage `validate`: the contract's rules (expectations/*.json) run with Great Expectations."""

    SECTION = "validate"

    export_dir: Path = Path("data")
    expectations_dir: Path = Path("expectations")
    validated_dir: Path = Path("artifacts/validated")
    quarantine_dir: Path = Path("artifacts/quarantine")
    report: Path = Path("reports/validate/index.html")
    # Great Expectations' Data Docs site, which the report links to; empty: `data_docs/`
    # beside the report. GX's stores of a run (the suites as run, the validation results)
    # go to `gx/` beside the report: all of it in the report's folder, a stage output.
    data_docs: Path | None = None
    metrics: Path = Path("metrics/validate.json")
    verdict: Path = VALIDATE_VERDICT  # the gate's verdict, which later stages require
    # The gate: a table with a larger share of quarantined rows stops the pipeline.
    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0)
    decode_workers: int = Field(2, gt=0)  # threads that open and decode the image files
    # The contract bounds images: larger ones are quarantined and never decoded.
    max_image_side: int = Field(8192, gt=0)
    sample_rows: int = Field(5, gt=0)  # offending rows quoted per rule in errors and the report

    @property
    def data_docs_dir(self) -> Path:
        return self.data_docs or self.report.parent / "data_docs"

    @property
    def gx_runtime_dir(self) -> Path:
        """Where GX's stores of a run live (expectations_dir/gx/great_expectations.yml)."""
        return self.report.parent / "gx"
