"""The retrain deployment: its schedule comes from params.yaml, and a served schedule really
triggers the flow on a local Prefect server (`prefect server start`, services on)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from flows.retrain import DEPLOYMENT, deployment
from social_reward.config.params import load_params
from social_reward.config.section import ParamsError
from tests.conftest import REPO_ROOT

SERVER_START_S = 120
TRIGGER_WAIT_S = 240  # a minute's cron, the scheduler's loop, the runner's poll, the run


def _project_with_schedule(root: Path, cron: str, timezone: str = "UTC") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["retrain"]["schedule"] = {"cron": cron, "timezone": timezone}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def test_the_deployment_runs_on_the_schedule_of_params_yaml(tmp_path):
    project = _project_with_schedule(tmp_path, "15 4 * * 1", "Europe/Paris")

    served = deployment(project)

    [schedule] = served.schedules
    assert schedule.schedule.cron == "15 4 * * 1"
    assert schedule.schedule.timezone == "Europe/Paris"
    assert served.name == DEPLOYMENT and served.concurrency_limit == 1
    assert served.parameters == {"project": str(project.resolve())}


def test_the_repository_schedule_is_the_documented_daily_run():
    cron = load_params(REPO_ROOT / "params.yaml").retrain.schedule.cron
    [schedule] = deployment(REPO_ROOT).schedules
    assert schedule.schedule.cron == cron == "0 3 * * *"


def test_a_schedule_that_is_not_cron_is_refused_with_the_rule(tmp_path):
    project = _project_with_schedule(tmp_path, "every day at 3")
    with pytest.raises(ParamsError, match=r"params\.yaml: retrain\.schedule: .*five fields"):
        load_params(project / "params.yaml")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(2)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


@pytest.mark.slow
def test_a_served_schedule_triggers_the_retrain_flow(tmp_path):
    project = _project_with_schedule(tmp_path / "project", "* * * * *")
    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    environment = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_RUNNER_POLL_FREQUENCY": "5",
    }
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent))
    logs = tmp_path / "logs"
    logs.mkdir()
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=environment,
        stdout=(logs / "server.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    runner = None
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"{api}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_until(healthy, SERVER_START_S, "the Prefect server")
        runner = subprocess.Popen(
            [sys.executable, "-m", "flows.retrain", "--serve", "--project", str(project)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=(logs / "serve.log").open("w"),
            stderr=subprocess.STDOUT,
        )

        def completed_run() -> list[dict]:
            response = httpx.post(
                f"{api}/flow_runs/filter",
                json={
                    "deployments": {"name": {"any_": [DEPLOYMENT]}},
                    "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
                },
                timeout=10,
            )
            response.raise_for_status()
            return response.json()

        runs = _wait_until(completed_run, TRIGGER_WAIT_S, "a scheduled retrain run")
        assert runs[0]["parameters"] == {"project": str(project.resolve())}
        assert runs[0]["auto_scheduled"] is True
    except AssertionError:
        for log in sorted(logs.iterdir()):
            print(f"--- {log.name}\n{log.read_text()[-4000:]}")
        raise
    finally:
        for process in (runner, server):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
