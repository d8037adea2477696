"""What a run publishes: the gates' verdicts, key metrics per stage, links to its reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from social_reward.config.params import load_params
from social_reward.errors import GateFailed
from social_reward.ops.summary import (
    KEY_METRICS,
    decision_markdown,
    gate_failure,
    report_files,
    report_links_markdown,
    stage_metrics,
)
from tests.conftest import REPO_ROOT

PARAMS = load_params(REPO_ROOT / "params.yaml")  # the run's params, read once by the caller

GATE_ERROR = "error: validation gate: quarantined share above validate.max_quarantine_share=0.05"


@pytest.fixture
def project(tmp_path) -> Path:
    """An empty project folder: metrics and reports are written into it by each test."""
    return tmp_path


def _write(path: Path, content: dict | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def test_a_failed_gate_gives_its_own_message(project):
    _write(project / "metrics" / "validate.json", {"passed": False})
    failure = gate_failure(
        PARAMS, project, "validate", f"Running stage 'validate':\n{GATE_ERROR}\n"
    )
    assert isinstance(failure, GateFailed)
    assert str(failure) == f"validate gate failed: {GATE_ERROR.removeprefix('error: ')}"


def test_without_an_error_line_the_gate_summary_is_the_message(project):
    _write(project / "metrics" / "drift.json", {"passed": False, "summary": "5 of 12 drifted"})
    assert str(gate_failure(PARAMS, project, "drift", "")) == "drift gate failed: 5 of 12 drifted"


@pytest.mark.parametrize(
    ("stage", "metrics"),
    [("validate", {"passed": True}), ("validate", None), ("pairs", {"passed": False})],
)
def test_other_failures_are_not_gate_failures(project, stage, metrics):
    if metrics is not None:
        _write(project / "metrics" / f"{stage}.json", metrics)
    assert gate_failure(PARAMS, project, stage, GATE_ERROR) is None


def test_key_metrics_are_read_from_each_stage_that_ran(project):
    _write(project / "metrics" / "pairs.json", {"pairs": {"train": 7, "val": 2, "test": 3}})
    _write(project / "metrics" / "train" / "reward.json", {"val_accuracy": 0.61})

    rows = stage_metrics(PARAMS, project, ("validate", "pairs", "train"))

    assert rows == [
        {"stage": "pairs", "metric": "train pairs", "value": 7},
        {"stage": "pairs", "metric": "val pairs", "value": 2},
        {"stage": "pairs", "metric": "test pairs", "value": 3},
        {"stage": "train", "metric": "val accuracy", "value": 0.61},
    ]


def test_every_key_metric_exists_in_the_versioned_metrics():
    rows = stage_metrics(PARAMS, REPO_ROOT, tuple(KEY_METRICS))
    found = {(row["stage"], row["metric"]) for row in rows}
    expected = {(stage, label) for stage, keys in KEY_METRICS.items() for label, _ in keys}
    assert found == expected


def test_reports_and_grids_are_linked_as_local_files(project):
    assert report_links_markdown(PARAMS, project) == "No report was written."
    _write(project / "reports" / "validate" / "index.html", "<html></html>")
    _write(project / "reports" / "evaluate" / "best_of_n.png", "png")
    _write(project / "reports" / "evaluate" / "data.json", "{}")

    files = report_files(PARAMS, project)
    markdown = report_links_markdown(PARAMS, project)

    assert [path.relative_to(project.resolve()).as_posix() for path in files] == [
        "reports/validate/index.html",
        "reports/evaluate/best_of_n.png",
    ]
    assert f"[reports/validate/index.html]({files[0].as_uri()})" in markdown


def test_a_decision_reads_as_a_verdict_a_reason_and_both_models():
    scores = {"accuracy": 0.61, "low": 0.55, "high": 0.67, "pairs": 120}
    decision = {
        "promoted": False,
        "outcome": "kept_champion",
        "reason": "challenger 0.6100 vs champion 0.6200 ...; champion kept",
        "champion": {**scores, "accuracy": 0.62},
        "challenger": scores,
        "export": {"path": "data"},
        "data_dvc_md5": "abc.dir",
        "git_commit": "0123abc",
    }
    markdown = decision_markdown(decision)
    assert markdown.startswith("# Champion kept: kept_champion\n\nchallenger 0.6100")
    assert "| champion | 0.62 | [0.55, 0.67] | 120 |" in markdown
    assert "| challenger | 0.61 | [0.55, 0.67] | 120 |" in markdown
    assert "`abc.dir`" in markdown and "`0123abc`" in markdown
    rejected = decision_markdown({"promoted": False, "outcome": "rejected_at_drift", "reason": "x"})
    assert "| model |" not in rejected
