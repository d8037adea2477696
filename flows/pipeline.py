"""Flow `pipeline`: run the DVC stages in order, one Prefect task per stage.

Each task is `dvc repro <stage>`, in the order of DVC's own graph of dvc.yaml, so DVC
decides what is stale and records what ran; Prefect adds runs, logs, retries and artifacts.
A gate stage that stops the data fails the flow with the gate's own message. Every run,
failed or not, publishes a table of key metrics per stage and links to the reports and
image grids. Run it with `python -m flows.pipeline`.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from social_reward.config.params import Params, load_params
from social_reward.ops.dvc_command import is_lock_contention, pipeline_stages, run_dvc
from social_reward.ops.summary import gate_failure, report_links_markdown, stage_metrics

LOCK_RETRIES = 3  # another DVC process holds the repository: waiting can help, nothing else can
LOCK_RETRY_DELAY_S = 20


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries the stage's own error."""


def _retry_on_lock_contention(task, task_run, state) -> bool:
    try:
        state.result()
    except StageFailed as error:
        return is_lock_contention(str(error))
    except Exception:
        return False
    return False


@task(
    task_run_name="dvc repro {stage}",
    retries=LOCK_RETRIES,
    retry_delay_seconds=LOCK_RETRY_DELAY_S,
    retry_condition_fn=_retry_on_lock_contention,
)
def repro(stage: str, project: Path, params: Params) -> str:
    result = run_dvc(["repro", stage], project)
    get_run_logger().info(result.stdout)
    if result.returncode != 0:
        gate = gate_failure(params, project, stage, result.stderr)
        if gate is not None:
            raise gate
        raise StageFailed(f"stage '{stage}' failed:\n{result.stderr.strip() or result.stdout}")
    return result.stdout


@task
def publish_run(project: Path, params: Params, stages: list[str]) -> None:
    """The run's key metrics and report links, as Prefect artifacts."""
    rows = stage_metrics(params, project, tuple(stages))
    if rows:
        create_table_artifact(
            key="pipeline-metrics",
            table=rows,
            description=f"Key metrics per stage of {project.resolve()}",
        )
    create_markdown_artifact(
        key="pipeline-reports",
        markdown=f"# Reports and image grids\n\n{report_links_markdown(params, project)}",
        description="HTML reports and image grids of this run (local files)",
    )


@flow(name="social-reward-pipeline")
def pipeline(project: Path = Path(".")) -> list[str]:
    params = load_params(project / "params.yaml")
    stages = pipeline_stages(project)
    outputs: list[str] = []
    try:
        for stage in stages:
            outputs.append(repro(stage, project, params))
    finally:
        publish_run(project, params, stages)
    return outputs


if __name__ == "__main__":
    pipeline()
