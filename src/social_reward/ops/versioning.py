"""A retrain run's versioned trace: one git commit and tag, its data and models pushed.

After the pipeline, the files a run changes that git versions (`retrain.versioning.paths`:
data.dvc, dvc.lock, metrics, plots) are committed on the checked-out branch and the commit
is tagged `<tag_prefix><UTC time>`; DVC's outputs (the export, models, reports) go to the
default DVC remote. The champion/challenger decision that follows records that commit, so
`git checkout <commit> && dvc pull` gives another machine the champion's inputs and outputs.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

from social_reward.config.retrain import RunVersioning
from social_reward.errors import SocialRewardError
from social_reward.ops.dvc_command import checked_dvc, run_dvc

TAG_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class VersioningError(SocialRewardError, RuntimeError):
    """The run's trace could not be committed, tagged or pushed; says which command failed."""


def _git(arguments: list[str], project: Path, environment: dict | None = None) -> str:
    try:
        result = subprocess.run(
            ["git", *arguments],
            cwd=project,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
    except FileNotFoundError as error:
        raise VersioningError("git is not installed: a retrain run cannot be versioned") from error
    except subprocess.CalledProcessError as error:
        raise VersioningError(
            f"{project.resolve()}: git {' '.join(arguments)} failed: "
            f"{(error.stderr or error.stdout).strip()}"
        ) from error
    return result.stdout.strip()


def _author_environment(author: str) -> dict:
    """Author and committer of the run's commit, whatever the machine's git identity."""
    name, email = parseaddr(author)
    if not name or "@" not in email:
        raise VersioningError(
            f"retrain.versioning.author {author!r} is not 'Name <email>' "
            "(rule: a git identity), e.g. 'Social Reward retrain <retrain@example.org>'"
        )
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def default_remote(project: Path) -> str | None:
    """The DVC project's default remote, None when it has none."""
    result = run_dvc(["remote", "default"], project)
    name = result.stdout.strip()
    return name if result.returncode == 0 and name else None


def version_run(
    config: RunVersioning, project: Path = Path("."), now: datetime | None = None
) -> dict:
    """Commit and tag the run's versioned files, push its data and models; the JSON result
    names the commit, the tag and where things were pushed."""
    if not config.commit:
        return {"commit": None, "tag": None, "changed": [], "dvc_remote": None, "git_remote": None}
    if _git(["rev-parse", "--is-inside-work-tree"], project) != "true":
        raise VersioningError(f"{project.resolve()}: not a git working tree")
    environment = _author_environment(config.author)
    present = [path for path in config.paths if (project / path).exists()]
    if present:
        _git(["add", "--all", "--", *present], project)
    staged = _git(["diff", "--cached", "--name-only"], project)
    when = (now or datetime.now(UTC)).strftime(TAG_TIME_FORMAT)
    if staged:
        _git(
            ["commit", "--quiet", "--no-verify", "-m", f"retrain {when}: versioned run outputs"],
            project,
            environment,
        )
    commit = _git(["rev-parse", "HEAD"], project)
    tag = f"{config.tag_prefix}{when}"
    _git(["tag", "--annotate", "-m", f"retrain run {when}", tag, commit], project, environment)

    remote = default_remote(project) if config.push_dvc else None
    if remote is not None:
        checked_dvc(["push", "--quiet"], project)
    if config.git_remote:
        _git(["push", "--quiet", config.git_remote, "HEAD", tag], project)
    return {
        "commit": commit,
        "tag": tag,
        "changed": staged.splitlines(),
        "dvc_remote": remote,
        "git_remote": config.git_remote,
    }
