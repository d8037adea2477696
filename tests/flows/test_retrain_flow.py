"""The retrain flow, run for real against a temporary Prefect server on the CI profile.

One module-wide run retrains on a fresh export and promotes the first champion; each other
test copies that project (git, DVC cache, champion, registry) and drops its own export.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.testing.utilities import prefect_test_harness

from flows.retrain import RetrainStopped, retrain
from social_reward.ops.dvc_command import pipeline_stages
from social_reward.ops.evidently_history import read_runs
from social_reward.ops.registry import CHAMPION_DIR
from tests.conftest import (
    clone_and_pull,
    copy_project,
    drop_into_inbox,
    lock_held_by_another_process,
    make_small_project,
    output_digests,
    run,
)

pytestmark = pytest.mark.slow
ARTIFACTS = ("retrain-decision", "pipeline-metrics", "pipeline-reports")


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _registry(project: Path) -> list[dict]:
    lines = (project / "models" / "registry.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _champion_digest(project: Path) -> str:
    digest = hashlib.sha256()
    champion = project / "models" / "production" / CHAMPION_DIR
    for path in sorted(champion.rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(champion)).encode() + path.read_bytes())
    return digest.hexdigest()


def _set_params(project: Path, section: str, **values) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params[section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def retrained(tmp_path_factory, small_export, fresh_export, prefect_server):
    """A project whose first retrain run (on `fresh_export`) has promoted a champion."""
    root = tmp_path_factory.mktemp("retrain")
    project = make_small_project(root / "project", small_export)
    run(
        ["dvc", "remote", "add", "--local", "--default", "store", str(root / "remote")], cwd=project
    )
    run(["git", "add", "-A"], cwd=project)
    run(["git", "commit", "-qm", "the pipeline and the small export"], cwd=project)
    drop_into_inbox(fresh_export, project / "inbox", "day-45")
    decision = retrain(project)
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(ARTIFACTS)))
        )
    return project, decision, {artifact.key: artifact for artifact in artifacts}


def test_a_clean_run_takes_the_export_and_promotes_the_first_champion(retrained, fresh_export):
    project, decision, _ = retrained
    assert decision["promoted"] and decision["outcome"] == "promoted", decision["reason"]
    manifest = json.loads((fresh_export.export_dir / "manifest.json").read_text())
    assert decision["export"]["exported_at"] == manifest["exported_at"]
    assert decision["data_dvc_md5"] in (project / "data.dvc").read_text()
    head = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    assert decision["git_commit"] == head
    assert decision["gates"] == {
        "validate": {"passed": True, "override": False},
        "drift": {"passed": True, "override": False},
    }
    champion = project / "models" / "production" / CHAMPION_DIR
    assert (champion / "reward" / "model.safetensors").is_file()
    assert (champion / "drift_reference.parquet").is_file()
    assert _registry(project) == [decision]
    assert not (project / "inbox" / "day-45").exists()


def test_the_pipeline_flow_ran_every_stage_on_the_fresh_export(retrained):
    project = retrained[0]
    # Every stage is up to date with the new export; only `drift` is stale now, because its
    # reference (the champion) changed after it ran.
    status = json.loads(run(["dvc", "status", "--json"], cwd=project).stdout)
    assert set(status) == {"drift"}
    profile = json.loads((project / "metrics" / "profile.json").read_text())
    assert profile["counts"]["images"] > 900  # the later export: more images
    assert json.loads((project / "metrics" / "pairs.json").read_text())["pairs"]["train"] > 0
    assert "remix_pairs" in json.loads((project / "metrics" / "evaluate.json").read_text())
    generator = json.loads((project / "metrics" / "generator.json").read_text())
    assert "social_reward" in generator["win_rate"]
    by_key = retrained[2]
    assert set(by_key) == set(ARTIFACTS)
    assert "Promoted" in by_key["retrain-decision"].data
    rows = json.loads(by_key["pipeline-metrics"].data)
    stages = set(pipeline_stages(project))
    assert {row["stage"] for row in rows} == stages - {"report"}  # report: no metrics
    assert {"stage": "validate", "metric": "passed", "value": True} in rows
    for report in (
        "index.html",
        "validate/index.html",
        "drift/index.html",
        "evaluate/",
        "generator/",
    ):
        assert f"(file://{project.resolve()}/reports/{report}" in by_key["pipeline-reports"].data


def test_the_run_is_committed_tagged_and_pushed_so_another_clone_rebuilds_it(retrained, tmp_path):
    project, decision, _ = retrained
    commit = decision["git_commit"]
    tags = run(["git", "tag", "--points-at", commit], cwd=project).stdout.split()
    assert len(tags) == 1 and tags[0].startswith("retrain/"), tags
    committed = run(["git", "show", "--name-only", "--format=", commit], cwd=project).stdout
    for path in ("data.dvc", "dvc.lock", "metrics/evaluate.json", "plots/"):
        assert path in committed, (path, committed)
    assert (
        run(["git", "status", "--porcelain", "--", "data.dvc", "dvc.lock"], cwd=project).stdout
        == ""
    )

    # Another machine: a clone of the repository at the registry's commit, then `dvc pull`
    # from the remote the run pushed to.
    remote = Path(run(["dvc", "remote", "list", "--local"], cwd=project).stdout.split()[1])
    clone = clone_and_pull(project, tmp_path / "clone", remote, commit)
    # A simulated export's ground truth is the simulator's, not the platform's: it comes with
    # the simulated export and is not versioned (a real export has none).
    shutil.copytree(project / "truth", clone / "truth", dirs_exist_ok=True)

    assert output_digests(clone) == output_digests(project)
    champion = project / "models" / "production" / CHAMPION_DIR / "reward"
    pulled = {
        file: clone / "models" / "reward" / file.relative_to(champion)
        for file in champion.rglob("*")
    }
    pulled[champion / "README.md"] = clone / "reports" / "model_card.md"  # the champion's card
    for file, copy in pulled.items():
        if file.is_file():
            assert copy.read_bytes() == file.read_bytes(), file
    # Clean: `drift` ran against the production folder as it was then (only its README is in
    # git); in the project it is stale since the promotion changed that folder.
    status = json.loads(run(["dvc", "status", "--json"], cwd=clone).stdout)
    assert status == {}, status


def _break(folder: Path) -> None:
    images = sorted((folder / "data" / "images").rglob("*.png"))
    for image in images[: len(images) // 10]:
        image.unlink()


@pytest.mark.parametrize(
    ("export", "gate", "outcome"),
    [
        ("broken", r"validation gate: quarantined share", "rejected_at_validate"),
        ("drifted", r"drift gate: \d+ of \d+ columns drifted", "rejected_at_drift"),
    ],
)
def test_a_gate_stops_the_run_and_the_champion_is_unchanged(
    retrained, later_export, drifted_export, tmp_path, export, gate, outcome
):
    project = copy_project(retrained[0], tmp_path / "project")
    champion, data_dvc = _champion_digest(project), (project / "data.dvc").read_text()
    folder = drop_into_inbox(
        drifted_export if export == "drifted" else later_export, project / "inbox", export
    )
    if export == "broken":
        _break(folder)

    with pytest.raises(RetrainStopped, match=gate):
        retrain(project)

    assert _champion_digest(project) == champion
    assert (project / "data.dvc").read_text() == data_dvc
    last = _registry(project)[-1]
    assert last["outcome"] == outcome and not last["promoted"]
    assert (project / "inbox" / "rejected" / export / "REJECTED.txt").is_file()
    # Both runs are in the Evidently history: the first run's reward scores, and this one's
    # intake drift check against the champion (the drifted export stopped there).
    runs = read_runs(project / "reports" / "evidently_workspace", "social-reward")
    assert ("reward scores",) in [run.tags for run in runs]
    if export == "drifted":
        intake = [run for run in runs if "intake" in run.tags]
        assert {run.name.split(" · ")[0] for run in intake} == {
            "intake drift features",
            "intake drift topics",
        }


def test_a_pipeline_that_fails_after_intake_keeps_the_champion(retrained, later_export, tmp_path):
    # Whether a trained challenger beats the champion is tested with real models and pairs
    # in tests/code/test_registry.py; here the flow's path when a stage fails after intake.
    project = copy_project(retrained[0], tmp_path / "project")
    champion = _champion_digest(project)
    _set_params(project, "pairs", min_collective_remixes=10_000)  # no positive can qualify
    drop_into_inbox(later_export, project / "inbox", "day-50")

    with pytest.raises(Exception, match=r"stage 'pairs' failed"):
        retrain(project)

    assert _champion_digest(project) == champion
    last = _registry(project)[-1]
    assert last["outcome"] == "pipeline_incomplete" and not last["promoted"]
    assert "stage 'pairs' failed" in last["reason"] and "champion kept" in last["reason"]
    assert last["data_dvc_md5"] in (project / "data.dvc").read_text()  # the export it ran on


def test_with_nothing_fresh_the_run_changes_nothing(retrained, tmp_path):
    project = copy_project(retrained[0], tmp_path / "project")
    champion = _champion_digest(project)

    result = retrain(project)

    assert result["export"] is None and "no fresh export" in result["reason"]
    assert _champion_digest(project) == champion and len(_registry(project)) == 1


def test_two_runs_at_once_cannot_both_run(retrained, later_export, tmp_path):
    project = copy_project(retrained[0], tmp_path / "project")
    _set_params(project, "retrain", lock_timeout_s=1)
    drop_into_inbox(later_export, project / "inbox", "day-50")
    lock = project / "models" / "retrain.lock"
    with (
        lock_held_by_another_process(lock),
        pytest.raises(Exception, match=r"another retrain run holds this lock"),
    ):
        retrain(project)
    assert (project / "inbox" / "day-50" / "data" / "manifest.json").is_file()
    assert len(_registry(project)) == 1
