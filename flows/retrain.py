"""Flow `retrain`: a fresh export from the drop folder, the pipeline, champion/challenger.

1. `social-reward intake`: the newest fresh export in `retrain.inbox` (a folder its producer
   marked complete with `READY`) is validated and checked for drift against the champion's
   reference; a gate stops the flow with its own message (the export moves to
   `retrain.rejected_dir`, the registry records why). Otherwise it replaces `data/` and is
   versioned with `dvc add data`; an intake or promotion a crash interrupted is finished
   first.
2. The `pipeline` flow runs every DVC stage on it.
3. `social-reward version-run`: data.dvc, dvc.lock, metrics and plots are committed on the
   checked-out branch and tagged `retrain/<UTC time>`; the export, models and reports are
   pushed to the default DVC remote (`retrain.versioning`).
4. `social-reward challenge`: the new reward against the champion on the same fresh test
   pairs; promoted to `models/production/champion/` only when every gate passed and it is
   better by `retrain.min_improvement`. The registry records the decision either way, with
   the commit of step 3: `git checkout <commit> && dvc pull` rebuilds the run elsewhere.

One run at a time: the flow holds `retrain.lock` throughout. Run once with
`python -m flows.retrain`. Scheduled: the deployments of prefect.yaml, run by a worker of a
process work pool (README, "Scheduling"); or, in one process, `python -m flows.retrain --serve`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from prefect import flow, get_run_logger, serve, task
from prefect.artifacts import create_markdown_artifact
from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron

from flows.pipeline import pipeline
from social_reward.config.params import load_params
from social_reward.ops.dvc_command import error_line, run_cli
from social_reward.ops.retrain import retrain_lock
from social_reward.ops.summary import decision_markdown

DEPLOYMENT = "scheduled-retrain"
MAX_REASON_CHARS = 2000  # of a pipeline error, passed on to the registry


class RetrainStopped(RuntimeError):
    """A retrain step refused to go on (a gate, a busy lock, a failed command)."""


@task(task_run_name="social-reward {command}")
def step(command: str, project: Path, options: tuple[str, ...] = ()) -> dict:
    """Run one `social-reward` retrain command; its last output line is its JSON result."""
    result = run_cli([command, *options], project)
    get_run_logger().info(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RetrainStopped(error_line(result.stderr) or result.stderr.strip())
    return json.loads(result.stdout.strip().splitlines()[-1])


@task
def publish_decision(decision: dict) -> None:
    create_markdown_artifact(
        key="retrain-decision",
        markdown=decision_markdown(decision),
        description="The champion/challenger decision of this retrain run",
    )


@flow(name="social-reward-retrain")
def retrain(project: Path = Path(".")) -> dict:
    params = load_params(project / "params.yaml")
    with retrain_lock(params, project):
        taken = step("intake", project)
        if taken["export"] is None:
            get_run_logger().info(f"nothing to retrain on: {taken['reason']}")
            return taken
        try:
            pipeline(project)
        except Exception as error:
            reason = str(error)[:MAX_REASON_CHARS]
            publish_decision(step("challenge", project, ("--incomplete", reason)))
            raise
        versioned = step("version-run", project)
        get_run_logger().info(f"versioned as {versioned['tag']} ({versioned['commit']})")
        decision = step("challenge", project)
        publish_decision(decision)
        return decision


def deployment(project: Path = Path(".")) -> RunnerDeployment:
    """The retrain flow on the schedule of params.yaml (`retrain.schedule`), one run at a time."""
    schedule = load_params(project / "params.yaml").retrain.schedule
    return retrain.to_deployment(
        name=DEPLOYMENT,
        schedule=Cron(schedule.cron, timezone=schedule.timezone),
        parameters={"project": str(project.resolve())},
        concurrency_limit=1,
        description="Retrain on the newest fresh export; promote only a better model.",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help="serve the schedule of params.yaml")
    parser.add_argument("--project", type=Path, default=Path("."), help="the DVC project's root")
    arguments = parser.parse_args()
    if arguments.serve:
        serve(deployment(arguments.project))
    else:
        retrain(arguments.project)
