"""Retrain intake on a real DVC project: find, check (GX and Evidently for real), put in place.

Every rejection leaves `data/`, `data.dvc` and the champion as they were, keeps the export
(moved aside with its reason) and is recorded in the registry.
"""

from __future__ import annotations

import hashlib
import json
import signal
import sys
import time
from pathlib import Path

import pytest

from social_reward.config.params import Params, load_params
from social_reward.data.export import MANIFEST_FILE, read_manifest
from social_reward.ops.registry import CHAMPION_DIR, REFERENCE_FILE, read_registry
from social_reward.ops.retrain import (
    INTAKE_STEPS,
    READY_FILE,
    REASON_FILE,
    TAKEN_DIR,
    ExportRejected,
    IntakeError,
    RetrainBusy,
    find_fresh_export,
    intake,
    put_in_place,
    recover_intake,
    retrain_lock,
)
from tests.conftest import (
    copy_project,
    drop_into_inbox,
    killed_after,
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
    assert any("half-written" in line and "waiting for READY" in line for line in passed_over)
    assert read_registry(params) == []


def _digest(folder: Path) -> dict[str, str]:
    """Every file under `folder` by relative path, with a hash of its bytes."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_folder_without_ready_is_waited_for_and_left_untouched(
    tmp_path, monkeypatch, fresh_export
):
    """The manifest is there, the truth not yet: the producer is still copying."""
    monkeypatch.chdir(tmp_path)
    params = Params()
    folder = drop_into_inbox(fresh_export, params.retrain.inbox, "day-50")
    (folder / READY_FILE).unlink()
    (folder / "truth" / "appeal.parquet").unlink()
    before = _digest(folder)

    taken = intake(params)

    assert taken["export"] is None
    assert [line for line in taken["passed_over"] if "day-50" in line] == [
        f"{folder}: waiting for READY (the producer writes it last, once the export is complete)"
    ]
    assert _digest(folder) == before and read_registry(params) == []


def test_a_rejection_never_writes_through_a_symlink_named_like_its_reason(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = Params()
    folder = params.retrain.inbox / "day-9"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / MANIFEST_FILE).write_text('{"schema_version": 1, "source": "x"}')
    (folder / READY_FILE).touch()
    elsewhere = tmp_path / "someone-elses-file.txt"
    elsewhere.write_text("not intake's to write")
    (folder / REASON_FILE).symlink_to(elsewhere)

    with pytest.raises(ExportRejected, match=r"key 'exported_at' missing"):
        intake(params)

    assert elsewhere.read_text() == "not intake's to write"
    reason = params.retrain.rejected_dir / "day-9" / REASON_FILE
    assert not reason.is_symlink()
    assert "key 'exported_at' missing" in reason.read_text()


def test_a_fresh_export_is_checked_put_in_place_and_versioned(project, small_export, fresh_export):
    params = load_params()
    before = (project / "data.dvc").read_text()
    drop_into_inbox(small_export, params.retrain.inbox, "a-older")
    folder = drop_into_inbox(fresh_export, params.retrain.inbox, "b-fresh")
    (folder / "notes.txt").write_text("the producer's notes, not part of the export")

    taken = intake(params)

    assert taken["export"]["name"] == "b-fresh"
    assert taken["checks"]["validate"]["passed"] and taken["checks"]["drift"]["passed"]
    assert (project / "data.dvc").read_text() != before
    assert taken["data_dvc_md5"] in (project / "data.dvc").read_text()
    assert read_manifest(project / "data") == read_manifest(fresh_export.export_dir)
    assert (project / "truth" / "appeal.parquet").read_bytes() == fresh_export.truth.read_bytes()
    assert not (params.retrain.inbox / "b-fresh").exists()
    kept = params.retrain.inbox / TAKEN_DIR / "b-fresh"  # what intake did not take stays
    assert [path.name for path in kept.iterdir()] == ["notes.txt"]
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


def test_a_data_folder_no_data_dvc_versions_is_not_replaced(project, fresh_export):
    params = load_params()
    (project / "data.dvc").unlink()  # data/ is now just files: nothing could restore them
    before = _digest(project / "data")
    folder = drop_into_inbox(fresh_export, params.retrain.inbox, "fresh")
    fresh, _ = find_fresh_export(params)

    with pytest.raises(IntakeError, match=r"data: not versioned \(data\.dvc missing\); rule:"):
        put_in_place(params, fresh)

    assert _digest(project / "data") == before
    assert (folder / "data" / MANIFEST_FILE).is_file() and (folder / READY_FILE).is_file()
    # An absent data/ is nothing to lose: the export goes in and is versioned.
    (project / "data").rename(project / "kept-aside")
    assert put_in_place(params, fresh) in (project / "data.dvc").read_text()
    assert read_manifest(project / "data") == read_manifest(fresh_export.export_dir)


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


# ---- intake under faults: a crash at any step loses no part of the export ---------------

# Puts the inbox's export in place in a child process and kills it (SIGKILL) right after the
# step named by argv[1], through put_in_place's `after_step` test hook.


@pytest.fixture(scope="module")
def inbox_project(tmp_path_factory, small_export, fresh_export) -> Path:
    """A small project with a fresh export and a note beside it in the inbox; copy it."""
    root = make_small_project(tmp_path_factory.mktemp("intake-faults") / "project", small_export)
    folder = drop_into_inbox(fresh_export, root / "inbox", "day-50")
    (folder / "notes.txt").write_text("the producer's notes, not part of the export")
    return root


@pytest.mark.parametrize("step", INTAKE_STEPS)
def test_intake_killed_at_any_step_loses_nothing_and_finishes_next_time(
    inbox_project, fresh_export, tmp_path, monkeypatch, step
):
    project = copy_project(inbox_project, tmp_path / "project")
    monkeypatch.chdir(project)
    params = load_params()
    folder = params.retrain.inbox / "day-50"
    export, truth = _digest(fresh_export.export_dir), fresh_export.truth.read_bytes()

    exit_code = killed_after(
        step, lambda stop: put_in_place(params, find_fresh_export(params)[0], after_step=stop)
    )

    assert exit_code == -signal.SIGKILL
    # Killed: each part of the export is whole in the inbox or whole in place.
    assert export in (_digest(folder / "data"), _digest(project / "data"))
    in_place = project / "truth" / "appeal.parquet"
    assert truth in [
        path.read_bytes()
        for path in (folder / "truth" / "appeal.parquet", in_place)
        if path.is_file()
    ]
    notes = [folder / "notes.txt", params.retrain.inbox / TAKEN_DIR / "day-50" / "notes.txt"]
    assert any(path.is_file() for path in notes)

    assert recover_intake(params) == ("day-50" if step != "cleaned" else None)

    assert _digest(project / "data") == export and in_place.read_bytes() == truth
    assert notes[1].read_text() == "the producer's notes, not part of the export"
    assert not folder.exists() and not (params.retrain.inbox / ".intake.json").exists()
    status = run([sys.executable, "-m", "dvc", "status", "--json", "data.dvc"], cwd=project)
    assert json.loads(status.stdout) == {}
    assert (
        read_manifest(project / "data").exported_at
        > read_manifest(inbox_project / "data").exported_at
    )
