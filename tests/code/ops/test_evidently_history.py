"""The Evidently history: real snapshots into a real local workspace, read by `evidently ui`."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from social_reward.evidently_snapshots import save_snapshot, snapshot_path
from social_reward.ops.evidently_history import HistoryError, add_snapshots, read_runs

COLUMNS = ["social_reward", "clip_score"]


def score_snapshot(folder: Path, shift: float) -> Path:
    """An Evidently report on score distributions, saved as the evaluate stage saves it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(60, 2)), columns=COLUMNS)
    current = pd.DataFrame(rng.normal(shift, 1.0, size=(60, 2)), columns=COLUMNS)
    definition = DataDefinition(numerical_columns=COLUMNS)
    snapshot = Report([DataSummaryPreset(columns=COLUMNS), DataDriftPreset(columns=COLUMNS)]).run(
        Dataset.from_pandas(current, definition), Dataset.from_pandas(reference, definition)
    )
    save_snapshot(snapshot, folder / "scores.html")
    return snapshot_path(folder / "scores.html")


def test_each_snapshot_is_added_once_and_missing_ones_are_skipped(tmp_path):
    workspace = tmp_path / "workspace"
    first = score_snapshot(tmp_path / "run-1", 0.0)
    snapshots = {"reward scores": first, "drift features": tmp_path / "none.snapshot.json"}

    assert add_snapshots(workspace, "social-reward", snapshots, {"run": "one"}) == ["reward scores"]
    assert add_snapshots(workspace, "social-reward", snapshots, {"run": "one"}) == []  # a rerun
    second = score_snapshot(tmp_path / "run-2", 1.0)
    added = add_snapshots(
        workspace, "social-reward", {"reward scores": second}, {"run": "two"}, ("retrain",)
    )
    assert added == ["reward scores"]

    runs = read_runs(workspace, "social-reward")
    assert [run.name for run in runs] == ["reward scores · one", "reward scores · two"]
    assert runs[1].tags == ("retrain", "reward scores")
    assert read_runs(tmp_path / "no-workspace", "social-reward") == []


def test_a_file_that_is_not_a_snapshot_is_refused_and_nothing_is_added(tmp_path):
    workspace = tmp_path / "workspace"
    results_only = tmp_path / "scores.json"  # the results JSON, not the full snapshot
    results_only.write_text(json.dumps({"metrics": [], "tests": []}))
    with pytest.raises(HistoryError, match=r"scores.json: not an Evidently snapshot .*rule: "):
        add_snapshots(workspace, "social-reward", {"reward scores": results_only}, {"run": "x"})
    assert read_runs(workspace, "social-reward") == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_evidently_ui_serves_the_project_with_every_run_and_its_dashboard(tmp_path):
    workspace = tmp_path / "workspace"
    for number in (1, 2):
        snapshot = score_snapshot(tmp_path / f"run-{number}", float(number))
        add_snapshots(workspace, "social-reward", {"reward scores": snapshot}, {"run": str(number)})
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "evidently.cli",
        "ui",
        "--workspace",
        str(workspace),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}/api"
        deadline = time.monotonic() + 90
        while True:
            try:
                projects = httpx.get(f"{base}/projects", timeout=5).json()
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "evidently ui did not start in 90 s"
                time.sleep(1)
        assert [project["name"] for project in projects] == ["social-reward"]
        project_id = projects[0]["id"]
        snapshots = httpx.get(f"{base}/projects/{project_id}/snapshots", timeout=10).json()
        assert len(snapshots) == 2
        dashboard = httpx.get(f"{base}/v2/dashboards/{project_id}", timeout=10).json()
        titles = {panel["title"] for panel in dashboard["panels"]}
        assert "Mean reward score (test images)" in titles
    finally:
        server.terminate()
        server.wait(timeout=30)
