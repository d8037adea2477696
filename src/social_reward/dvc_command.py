"""Running `dvc` and `social-reward` from Python: one place for how they are called.

Each runs as a subprocess of this interpreter with an argument list (no shell), in the
project's root, with this environment's executables first on PATH (the stages DVC runs call
`social-reward`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# What DVC says when another DVC process holds the repository: waiting can help.
LOCK_CONTENTION = "Unable to acquire lock"


class DvcError(RuntimeError):
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
