"""The drift gate on simulated exports: a later export of the same community passes, a
drifted one stops with the drifted columns named, and the override lets it through."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from social_reward.config.drift import DriftConfig
from social_reward.data.drift_detection import check_drift
from social_reward.errors import GateFailed
from tests.conftest import simulate, stage_config, validate_into

pytestmark = pytest.mark.slow

WORLD = ("--users", "600", "--images", "2000", "--days", "40", "--image-size", "32")
VARIANTS = {"reference": (), "later": ("--later-days", "7"), "drifted": ("--drifted",)}


@pytest.fixture(scope="module")
def validated_exports(tmp_path_factory) -> dict[str, Path]:
    """The three exports, validated: the reference, a week later, and a drifted one."""
    root = tmp_path_factory.mktemp("drift-exports")
    folders = {}
    for name, options in VARIANTS.items():
        simulate(root / name / "data", None, *WORLD, "--workers", "2", *options)
        summary = validate_into(root / name / "data", root / name)
        assert summary["passed"], name
        folders[name] = root / name / "validated"
    return folders


def drift_config(validated: Path, reference: Path, out: Path, **changes) -> DriftConfig:
    return stage_config(
        "drift",
        validated_dir=validated,
        reference=reference,
        features=out / "features.parquet",
        report_dir=out / "reports",
        metrics=out / "drift.json",
        verdict=out / "gates" / "drift.json",
        **changes,
    )


@pytest.fixture(scope="module")
def reference(validated_exports, tmp_path_factory) -> Path:
    """Without a production model the stage passes and records the export's features."""
    out = tmp_path_factory.mktemp("drift-reference")
    metrics = check_drift(drift_config(validated_exports["reference"], out / "none.parquet", out))
    assert metrics["passed"] and metrics["reference"] is None
    assert "no reference yet" in metrics["summary"]
    assert (out / "reports" / "index.html").is_file()
    stored = out / "production" / "drift_reference.parquet"
    stored.parent.mkdir()
    shutil.copy(out / "features.parquet", stored)  # what promoting a model does
    return stored


def test_a_later_export_of_the_same_community_passes(validated_exports, reference, tmp_path):
    metrics = check_drift(drift_config(validated_exports["later"], reference, tmp_path))
    assert metrics["passed"] and not metrics["override"]
    assert metrics["drift_share"] <= 0.3
    assert set(metrics["columns"]) >= {"brightness", "generator", "topic_word", "followers"}
    for column in metrics["columns"].values():
        assert column["method"] in ("wasserstein", "jensenshannon")
    for page in ("index.html", "features.html", "features.json", "topics.html"):
        assert (tmp_path / "reports" / page).stat().st_size > 0


def test_a_drifted_export_stops_at_the_gate_naming_the_columns(
    validated_exports, reference, tmp_path
):
    with pytest.raises(GateFailed) as stopped:
        check_drift(drift_config(validated_exports["drifted"], reference, tmp_path))
    message = str(stopped.value)
    for column in ("generator", "brightness", "topic_word"):
        assert column in message
    assert str(tmp_path / "reports" / "index.html") in message
    assert "drift.allow_drift" in message
    recorded = json.loads((tmp_path / "drift.json").read_text())
    assert not recorded["passed"] and recorded["drift_share"] > 0.3


def test_the_override_lets_a_drifted_export_through_and_is_recorded(
    validated_exports, reference, tmp_path
):
    metrics = check_drift(
        drift_config(validated_exports["drifted"], reference, tmp_path, allow_drift=True)
    )
    assert metrics["passed"] and metrics["override"]
    assert "recorded override" in metrics["summary"]


def test_drift_reports_are_the_same_bytes_on_the_same_data(validated_exports, reference, tmp_path):
    for run in ("first", "second"):
        check_drift(drift_config(validated_exports["later"], reference, tmp_path / run))
    for name in ("index.html", "features.html", "features.json", "topics.html"):
        first = (tmp_path / "first" / "reports" / name).read_bytes()
        assert (tmp_path / "second" / "reports" / name).read_bytes() == first, name
    assert (tmp_path / "first" / "drift.json").read_text().replace("first", "") == (
        tmp_path / "second" / "drift.json"
    ).read_text().replace("second", "")


def test_a_missing_reference_after_a_promotion_is_an_error_not_a_first_run(
    validated_exports, tmp_path
):
    """Once the registry records a promotion, "no reference yet" would let any export pass."""
    registry = tmp_path / "registry.jsonl"
    registry.write_text('{"promoted": false, "reason": "not better"}\nnot json\n')
    missing = tmp_path / "champion" / "drift_reference.parquet"
    config = drift_config(validated_exports["later"], missing, tmp_path / "out", registry=registry)
    assert check_drift(config)["reference"] is None  # no promotion yet: the first run passes
    with registry.open("a") as lines:
        lines.write('{"promoted": true, "reason": "better"}\n')
    with pytest.raises(GateFailed) as stopped:
        check_drift(config)
    assert str(stopped.value).startswith(
        f"{missing}: file missing, but {registry} records 1 promotion(s) (rule: once a model "
        "is promoted, the drift gate compares with its reference)"
    )
