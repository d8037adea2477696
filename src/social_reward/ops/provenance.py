"""What a run or a decision is about: the export's data.dvc hash and the git commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from social_reward.config.params import Params

DVC_LOCK = "dvc.lock"


def _git(*arguments: str) -> str | None:
    try:
        result = subprocess.run(["git", *arguments], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def pipeline_outputs(lock_file: Path = Path(DVC_LOCK)) -> list[str]:
    """dvc.lock and every output it records: the files a run itself rewrites."""
    if not lock_file.is_file():
        return []
    stages = (yaml.safe_load(lock_file.read_text(encoding="utf-8")) or {}).get("stages") or {}
    outs = {out["path"] for stage in stages.values() for out in stage.get("outs") or []}
    return [lock_file.as_posix(), *sorted(outs)]


def provenance(params: Params) -> dict:
    """What a run or decision is about: the data.dvc hash and the git commit.

    `git_dirty` says whether tracked files other than the pipeline's own outputs (dvc.lock,
    committed metrics and plots) differ from the commit: the run's code, params or config."""
    dvc_file = Path(f"{params.validate_.export_dir}.dvc")
    md5 = None
    if dvc_file.is_file():
        outs = (yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}).get("outs") or [{}]
        md5 = outs[0].get("md5")
    excluded = [f":(exclude){path}" for path in pipeline_outputs()]
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ".", *excluded)
    return {
        "data_dvc_md5": md5,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
    }
