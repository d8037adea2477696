"""The pipeline flow's failures, run for real against a temporary Prefect server.

A clean run of every stage is checked in test_retrain_flow.py, where the retrain flow runs
this flow on a fresh export (one full run of the pipeline serves both).
"""

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.testing.utilities import prefect_test_harness

from flows.pipeline import StageFailed, pipeline
from social_reward.errors import GateFailed

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _artifacts(*keys: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=list(keys)))
        )
    latest = {artifact.key: artifact for artifact in sorted(found, key=lambda a: a.created)}
    return [latest[key] for key in keys]


def test_a_failed_gate_fails_the_flow_with_the_gate_message(prefect_server, small_project):
    images = sorted((small_project / "data" / "images").rglob("*.png"))
    for image in images[: len(images) // 10]:  # a tenth of the files lost in transfer
        image.unlink()
    with pytest.raises(
        GateFailed, match=r"validate gate failed: validation gate: quarantined share above"
    ):
        pipeline(small_project)
    [reports] = _artifacts("pipeline-reports")
    assert "reports/validate/index.html" in reports.data  # the gate's report, to see why


def test_a_failing_stage_fails_the_flow_with_its_message(prefect_server, small_project):
    (small_project / "data" / "manifest.json").unlink()
    with pytest.raises(StageFailed, match=r"manifest\.json: file missing"):
        pipeline(small_project)
