"""The DVC pipeline, really run, on the CI-sized export."""

import json

import pytest

from tests.conftest import run

pytestmark = pytest.mark.slow


def test_dvc_repro_profiles_the_export_and_leaves_status_clean(small_project):
    run(["dvc", "repro"], cwd=small_project)
    metrics = json.loads((small_project / "metrics" / "profile.json").read_text())
    assert metrics["counts"]["images"] == 900
    assert (small_project / "plots" / "profile.png").stat().st_size > 10_000

    status = run(["dvc", "status", "--json"], cwd=small_project)
    assert json.loads(status.stdout) == {}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=small_project).stdout)
    values = shown[""]["data"]["metrics/profile.json"]["data"]
    assert values["counts"]["remixes"] == metrics["counts"]["remixes"]

    again = run(["dvc", "repro"], cwd=small_project)
    assert "didn't change, skipping" in again.stdout


def test_changed_params_rerun_the_stage(small_project):
    run(["dvc", "repro"], cwd=small_project)
    params = small_project / "params.yaml"
    params.write_text(params.read_text().replace("seed: 0", "seed: 1"))
    status = json.loads(run(["dvc", "status", "--json"], cwd=small_project).stdout)
    assert "profile" in status
    rerun = run(["dvc", "repro"], cwd=small_project)
    assert "Running stage 'profile'" in rerun.stdout


def test_dvc_plots_show_renders_the_profile_plot(small_project):
    run(["dvc", "repro"], cwd=small_project)
    run(["dvc", "plots", "show", "-o", "rendered"], cwd=small_project)
    page = (small_project / "rendered" / "index.html").read_text()
    assert "profile.png" in page
