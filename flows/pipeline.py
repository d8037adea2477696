"""Flow `pipeline`: run the DVC stages in order, one Prefect task per stage.

Each task is `dvc repro <stage>`, so DVC decides what is stale and records what ran;
Prefect adds runs, logs and retries. Run it with `python -m flows.pipeline`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task

# The stages of dvc.yaml, in the order data flows through them.
STAGES: tuple[str, ...] = (
    "validate",
    "profile",
    "pairs",
    "drift",
    "pretrain",
    "train",  # every variant of the foreach stage: the reward and its ablation
    "evaluate",
    "generator_pretrain",
    "finetune",
    "evaluate_generator",
)


class StageFailed(RuntimeError):
    """A DVC stage exited non-zero; the message carries the stage's own error."""


@task(task_run_name="dvc repro {stage}")
def repro(stage: str, project: Path) -> str:
    environment = dict(os.environ)
    # The stages call `social-reward`: this interpreter's environment comes first on PATH.
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", stage],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )
    get_run_logger().info(result.stdout)
    if result.returncode != 0:
        raise StageFailed(f"stage '{stage}' failed:\n{result.stderr.strip() or result.stdout}")
    return result.stdout


@flow(name="social-reward-pipeline")
def pipeline(project: Path = Path(".")) -> list[str]:
    return [repro(stage, project) for stage in STAGES]


if __name__ == "__main__":
    pipeline()
