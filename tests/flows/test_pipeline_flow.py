"""The Prefect flow, run for real against a temporary Prefect server."""

import json

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import STAGES, StageFailed, pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_pipeline_flow_runs_every_stage(prefect_server, small_project):
    outputs = pipeline(small_project)
    assert len(outputs) == len(STAGES)
    for stage, output in zip(STAGES, outputs, strict=True):
        assert f"Running stage '{stage}" in output  # `train` runs `train@reward`, ...
    metrics = json.loads((small_project / "metrics" / "profile.json").read_text())
    assert metrics["counts"]["images"] == 900
    assert json.loads((small_project / "metrics" / "pairs.json").read_text())["pairs"]["train"] > 0
    assert (small_project / "models" / "reward" / "model.safetensors").is_file()
    assert "remix_pairs" in json.loads((small_project / "metrics" / "evaluate.json").read_text())
    generator = json.loads((small_project / "metrics" / "generator.json").read_text())
    assert "social_reward" in generator["win_rate"]


def test_a_failing_stage_fails_the_flow_with_its_message(prefect_server, small_project):
    (small_project / "data" / "manifest.json").unlink()
    with pytest.raises(StageFailed, match=r"manifest\.json: file missing"):
        pipeline(small_project)
