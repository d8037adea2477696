"""Retrain intake on a real DVC project: find, check (GX and Evidently for real), put in place.

Every rejection leaves `data/`, `data.dvc` and the champion as they were, keeps the export
(moved aside with its reason) and is recorded in the registry.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from social_reward.config.params import load_params
from social_reward.data.export import MANIFEST_FILE, read_manifest
from social_reward.ops.registry import CHAMPION_DIR, REFERENCE_FILE, read_registry
from social_reward.ops.retrain import (
    REASON_FILE,
    ExportRejected,
    IntakeError,
    RetrainBusy,
    find_fresh_export,
    intake,
    retrain_lock,
)
from tests.conftest import (
    drop_into_inbox,
    lock_held_by_another_process,
    make_small_project,
    run,
    validate_into,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def project(tmp_path, small_export, monkeypatch) -> Path:
    """A small DVC project with the small export in place, as the working directory."""
    root = make_small_project(tmp_path / "project", small_export)
    monkeypatch.chdir(root)
    return root


def _with(params, section: str, **changes):
    attribute = "validate_" if section == "validate" else section
    return params.model_copy(
        update={attribute: getattr(params, attribute).model_copy(update=changes)}
    )


def test_an_empty_or_stale_inbox_gives_nothing_to_do(project, small_export):
    params = load_params()
    assert intake(params)["export"] is None  # no inbox folder at all
    drop_into_inbox(small_export, params.retrain.inbox, "same-export")
    (params.retrain.inbox / "half-written" / "data").mkdir(parents=True)
    fresh, passed_over = find_fresh_export(params)
    assert fresh is None
    assert any("same-export" in line and "not later" in line for line in passed_over)
    assert any("half-written" in line and MANIFEST_FILE in line for line in passed_over)
    assert read_registry(params) == []


def test_a_fresh_export_is_checked_put_in_place_and_versioned(project, small_export, fresh_export):
    params = load_params()
    before = (project / "data.dvc").read_text()
    drop_into_inbox(small_export, params.retrain.inbox, "a-older")
    drop_into_inbox(fresh_export, params.retrain.inbox, "b-fresh")

    taken = intake(params)

    assert taken["export"]["name"] == "b-fresh"
    assert taken["checks"]["validate"]["passed"] and taken["checks"]["drift"]["passed"]
    assert (project / "data.dvc").read_text() != before
    assert taken["data_dvc_md5"] in (project / "data.dvc").read_text()
    assert read_manifest(project / "data") == read_manifest(fresh_export.export_dir)
    assert (project / "truth" / "appeal.parquet").read_bytes() == fresh_export.truth.read_bytes()
    assert not (params.retrain.inbox / "b-fresh").exists()
    assert (params.retrain.inbox / "a-older").is_dir()  # not later than the one now in place
    assert (project / params.retrain.intake_report_dir / "validate" / "index.html").is_file()
    status = run([sys.executable, "-m", "dvc", "status", "--json", "data.dvc"], cwd=project)
    assert json.loads(status.stdout) == {}


def _assert_untouched(project: Path, data_dvc: str, manifest) -> None:
    assert (project / "data.dvc").read_text() == data_dvc
    assert read_manifest(project / "data") == manifest
    assert not (project / "models" / "production" / CHAMPION_DIR).exists()


def test_a_bad_export_is_rejected_at_validation_and_kept_aside(project, fresh_export):
    params = load_params()
    data_dvc, manifest = (project / "data.dvc").read_text(), read_manifest(project / "data")
    folder = drop_into_inbox(fresh_export, params.retrain.inbox, "bad")
    images = sorted((folder / "data" / "images").rglob("*.png"))
    for image in images[: len(images) // 10]:  # a tenth of the files lost in transfer
        image.unlink()

    with pytest.raises(ExportRejected, match=r"validation gate.*images\.parquet.*file exists"):
        intake(params)

    _assert_untouched(project, data_dvc, manifest)
    rejected = params.retrain.rejected_dir / "bad"
    assert "validation gate" in (rejected / REASON_FILE).read_text()
    assert (rejected / "data" / MANIFEST_FILE).is_file()  # nothing of it is lost
    [entry] = read_registry(params)
    assert entry["outcome"] == "rejected_at_validate" and not entry["promoted"]
    assert entry["export"]["name"] == "bad" and "file exists" in entry["reason"]
    assert entry["data_dvc_md5"] in data_dvc


def test_a_broken_manifest_is_rejected_and_valid_exports_wait(project, fresh_export):
    params = load_params()
    drop_into_inbox(fresh_export, params.retrain.inbox, "fine")
    broken = drop_into_inbox(fresh_export, params.retrain.inbox, "broken")
    (broken / "data" / MANIFEST_FILE).write_text('{"schema_version": 1, "source": "x"}')

    with pytest.raises(ExportRejected, match=r"broken/data/manifest\.json: key 'exported_at'"):
        intake(params)

    assert (params.retrain.rejected_dir / "broken" / REASON_FILE).is_file()
    assert (params.retrain.inbox / "fine" / "data" / MANIFEST_FILE).is_file()
    assert intake(params)["export"]["name"] == "fine"


@pytest.fixture
def champion_reference(project, small_export, tmp_path) -> Path:
    """A champion's drift reference: the features of the export in place."""
    from social_reward.data.drift_detection import build_features

    validate_into(small_export.export_dir, tmp_path / "reference")
    params = load_params()
    reference = project / params.drift.reference
    reference.parent.mkdir(parents=True)
    build_features(tmp_path / "reference" / "validated", workers=2).to_parquet(reference)
    assert reference.name == REFERENCE_FILE
    return reference


def test_a_drifted_export_stops_at_the_drift_gate(project, drifted_export, champion_reference):
    params = load_params()
    data_dvc, manifest = (project / "data.dvc").read_text(), read_manifest(project / "data")
    reference = champion_reference.read_bytes()
    drop_into_inbox(drifted_export, params.retrain.inbox, "drifted")

    with pytest.raises(ExportRejected, match=r"drift gate: .* columns drifted.*allow_drift"):
        intake(params)

    assert (project / "data.dvc").read_text() == data_dvc
    assert read_manifest(project / "data") == manifest
    assert champion_reference.read_bytes() == reference
    [entry] = read_registry(params)
    assert entry["outcome"] == "rejected_at_drift"
    assert (params.retrain.rejected_dir / "drifted" / REASON_FILE).is_file()


def test_the_recorded_override_lets_a_drifted_export_through(
    project, drifted_export, champion_reference
):
    params = _with(load_params(), "drift", allow_drift=True)
    drop_into_inbox(drifted_export, params.retrain.inbox, "drifted")

    taken = intake(params)

    assert taken["export"]["name"] == "drifted"
    drift = taken["checks"]["drift"]
    assert drift["passed"] and drift["override"] and "override" in drift["summary"]


def test_an_unversioned_change_to_data_is_not_overwritten(project, fresh_export):
    params = load_params()
    (project / "data" / "notes.txt").write_text("local work, not in the DVC cache")
    drop_into_inbox(fresh_export, params.retrain.inbox, "fresh")

    with pytest.raises(IntakeError, match=r"data/: differs from data\.dvc.*dvc add data"):
        intake(params)

    assert (project / "data" / "notes.txt").is_file()
    assert (params.retrain.inbox / "fresh" / "data" / MANIFEST_FILE).is_file()


def test_a_second_run_waits_for_the_lock_then_gives_up(project):
    params = _with(load_params(), "retrain", lock_timeout_s=0.5)
    lock = project / params.retrain.lock
    with lock_held_by_another_process(lock):
        started = time.monotonic()
        with (
            pytest.raises(RetrainBusy, match=r"retrain\.lock: another retrain run holds"),
            retrain_lock(params),
        ):
            pass
        assert time.monotonic() - started >= 0.5
    with retrain_lock(params) as held:  # free again once the other run ends
        assert held.resolve() == lock.resolve()
