"""The DVC pipeline, really run, on the CI-sized export."""

import json

import pytest

from tests.conftest import run

pytestmark = pytest.mark.slow


def test_dvc_repro_runs_every_stage_and_leaves_status_clean(small_project):
    result = run(["dvc", "repro"], cwd=small_project)
    for stage in ("profile", "validate", "pairs", "drift"):
        assert f"Running stage '{stage}'" in result.stdout
    metrics = json.loads((small_project / "metrics" / "profile.json").read_text())
    assert metrics["counts"]["images"] == 900
    assert (small_project / "plots" / "profile.png").stat().st_size > 10_000
    validated = json.loads((small_project / "metrics" / "validate.json").read_text())
    assert validated["passed"] and validated["tables"]["images"]["rows_kept"] == 900
    pairs = json.loads((small_project / "metrics" / "pairs.json").read_text())
    assert all(count > 0 for count in pairs["pairs"].values())
    for split in ("train", "val", "test"):
        assert (small_project / "artifacts" / "pairs" / f"{split}.parquet").is_file()
    drift = json.loads((small_project / "metrics" / "drift.json").read_text())
    assert drift["passed"] and drift["reference"] is None
    assert (small_project / "reports" / "validate" / "index.html").is_file()

    status = run(["dvc", "status", "--json"], cwd=small_project)
    assert json.loads(status.stdout) == {}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=small_project).stdout)
    values = shown[""]["data"]["metrics/profile.json"]["data"]
    assert values["counts"]["remixes"] == metrics["counts"]["remixes"]
    assert shown[""]["data"]["metrics/pairs.json"]["data"]["mode"] == "debiased"

    again = run(["dvc", "repro"], cwd=small_project)
    assert "didn't change, skipping" in again.stdout


def test_changed_params_rerun_only_their_stage(small_project):
    run(["dvc", "repro"], cwd=small_project)
    params = small_project / "params.yaml"
    params.write_text(params.read_text().replace("mode: debiased", "mode: naive"))
    status = json.loads(run(["dvc", "status", "--json"], cwd=small_project).stdout)
    assert set(status) == {"pairs"}
    rerun = run(["dvc", "repro"], cwd=small_project)
    assert "Running stage 'pairs'" in rerun.stdout
    assert "Running stage 'validate'" not in rerun.stdout
    pairs = json.loads((small_project / "metrics" / "pairs.json").read_text())
    assert pairs["mode"] == "naive"
    status = json.loads(run(["dvc", "status", "--json"], cwd=small_project).stdout)
    assert status == {}


def test_a_bad_export_stops_the_pipeline_at_the_validation_gate(small_project):
    import pyarrow.parquet as pq

    users = pq.read_table(small_project / "data" / "users.parquet").drop_columns(["followers"])
    pq.write_table(users, small_project / "data" / "users.parquet")
    result = run(["dvc", "repro"], cwd=small_project, check=False)
    assert result.returncode != 0
    assert "users.parquet: column 'followers' missing" in result.stderr
    assert not (small_project / "artifacts" / "pairs").exists()


def test_dvc_plots_show_renders_the_profile_plot(small_project):
    run(["dvc", "repro"], cwd=small_project)
    run(["dvc", "plots", "show", "-o", "rendered"], cwd=small_project)
    page = (small_project / "rendered" / "index.html").read_text()
    assert "profile.png" in page
