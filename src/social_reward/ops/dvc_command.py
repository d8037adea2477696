"""Running `dvc` and `social-reward` from Python: one place for how they are called, and
the order of the pipeline's stages as DVC sees it.

Each runs as a subprocess of this interpreter with an argument list (no shell), in the
project's root, with this environment's executables first on PATH (the stages DVC runs call
`social-reward`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from social_reward.errors import SocialRewardError

# What DVC says when another DVC process holds the repository: waiting can help.
LOCK_CONTENTION = "Unable to acquire lock"


class DvcError(SocialRewardError, RuntimeError):
    """A `dvc` command exited non-zero; the message carries DVC's own output."""


def run_module(
    module: str, arguments: list[str], project: Path = Path(".")
) -> subprocess.CompletedProcess:
    """Run `python -m <module> <arguments>` in `project`; returned whatever the exit status."""
    environment = dict(os.environ)
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", module, *arguments],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
    )


def run_dvc(arguments: list[str], project: Path = Path(".")) -> subprocess.CompletedProcess:
    """Run `dvc <arguments>` in `project`; the result is returned whatever the exit status."""
    return run_module("dvc", arguments, project)


def run_cli(arguments: list[str], project: Path = Path(".")) -> subprocess.CompletedProcess:
    """Run `social-reward <arguments>` in `project`, whatever the exit status."""
    return run_module("social_reward.cli", arguments, project)


def checked_dvc(arguments: list[str], project: Path = Path(".")) -> str:
    """Run `dvc <arguments>` and return its output; DvcError when it fails."""
    result = run_dvc(arguments, project)
    if result.returncode != 0:
        raise DvcError(
            f"dvc {' '.join(arguments)} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


def error_line(stderr: str) -> str | None:
    """The last `error: ...` line a `social-reward` command printed, without its prefix."""
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    return lines[-1].removeprefix("error: ") if lines else None


def is_lock_contention(message: str) -> bool:
    return LOCK_CONTENTION in message


def pipeline_stages(project: Path = Path(".")) -> list[str]:
    """The stages of `project`'s dvc.yaml in an order data can flow through them.

    DVC's own graph of the stages, sorted so that each comes after every stage it depends
    on; stages that do not depend on each other keep dvc.yaml's order. The variants of a
    `foreach` stage are one entry (`train`): `dvc repro train` runs them all."""
    import networkx as nx
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    with Repo(str(project)) as repo:
        graph = repo.index.graph  # an edge goes from a stage to a stage it depends on
        declared = list(repo.index.stages)
    position = {stage: number for number, stage in enumerate(declared)}
    ordered = nx.lexicographical_topological_sort(
        graph.reverse(copy=True), key=lambda stage: position.get(stage, -1)
    )
    names: list[str] = []
    for stage in ordered:
        if isinstance(stage, PipelineStage):
            name = stage.name.split("@", 1)[0]  # `train@reward` -> `train`
            if name not in names:
                names.append(name)
    return names
