"""A retrain run's trace in a real git repository and a real DVC project with a local remote."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from social_reward.config.retrain import RunVersioning
from social_reward.ops.versioning import VersioningError, version_run
from tests.conftest import run

WHEN = datetime(2026, 12, 7, 3, 0, 12, tzinfo=UTC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project with a versioned export, a metric and one commit."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "table.csv").write_text("a\n1\n")
    (project / "metrics").mkdir()
    (project / "metrics" / "m.json").write_text('{"accuracy": 0.5}\n')
    (project / "notes.txt").write_text("not a run output\n")
    run(["git", "init", "-q"], cwd=project)
    run(["dvc", "init", "-q"], cwd=project)
    run(["dvc", "add", "-q", "data"], cwd=project)
    run(["git", "add", "-A"], cwd=project)
    run(["git", "commit", "-qm", "start"], cwd=project)
    return project


def _a_run_changes_things(project: Path) -> None:
    (project / "data" / "table.csv").write_text("a\n1\n2\n")
    run(["dvc", "add", "-q", "data"], cwd=project)
    (project / "metrics" / "m.json").write_text('{"accuracy": 0.6}\n')
    (project / "notes.txt").write_text("edited by hand\n")


def test_the_run_is_committed_tagged_and_pushed_to_the_default_remote(project, tmp_path):
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "-d", "store", str(remote)], cwd=project)
    _a_run_changes_things(project)

    result = version_run(RunVersioning(), project, WHEN)

    head = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    assert result["commit"] == head and result["tag"] == "retrain/20261207T030012Z"
    assert sorted(result["changed"]) == ["data.dvc", "metrics/m.json"]
    assert run(["git", "rev-list", "-n1", result["tag"]], cwd=project).stdout.strip() == head
    author = run(["git", "log", "-1", "--format=%an <%ae>|%cn"], cwd=project).stdout.strip()
    assert author == "Social Reward retrain <retrain@social-reward.invalid>|Social Reward retrain"
    # Only the run's outputs: a hand edit elsewhere stays uncommitted.
    assert run(["git", "status", "--porcelain"], cwd=project).stdout.strip() == "M notes.txt"
    assert result["dvc_remote"] == "store"
    status = run(["dvc", "status", "--cloud", "--json"], cwd=project).stdout.strip()
    assert status == "{}"  # everything in the cache is on the remote
    assert any(path.is_file() for path in remote.rglob("*"))


def test_without_a_remote_the_run_is_committed_and_nothing_is_pushed(project):
    _a_run_changes_things(project)
    result = version_run(RunVersioning(), project, WHEN)
    assert result["dvc_remote"] is None and result["commit"] is not None


def test_a_run_that_changed_nothing_tags_the_current_commit(project):
    head = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    result = version_run(RunVersioning(), project, WHEN)
    assert result["commit"] == head and result["changed"] == []
    assert run(["git", "tag", "--points-at", head], cwd=project).stdout.split() == [result["tag"]]


def test_the_branch_and_tag_go_to_a_git_remote_when_one_is_named(project, tmp_path):
    origin = tmp_path / "origin.git"
    run(["git", "init", "-q", "--bare", str(origin)])
    run(["git", "remote", "add", "origin", str(origin)], cwd=project)
    _a_run_changes_things(project)

    result = version_run(RunVersioning(git_remote="origin"), project, WHEN)

    pushed = run(["git", "ls-remote", str(origin)], cwd=project).stdout
    assert f"{result['commit']}\tHEAD" in pushed or result["commit"] in pushed
    assert f"refs/tags/{result['tag']}" in pushed


def test_versioning_switched_off_changes_nothing(project):
    head = run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip()
    _a_run_changes_things(project)
    assert version_run(RunVersioning(commit=False), project, WHEN)["commit"] is None
    assert run(["git", "rev-parse", "HEAD"], cwd=project).stdout.strip() == head


def test_a_folder_that_is_not_a_git_repository_is_refused(tmp_path):
    with pytest.raises(VersioningError, match=r"git rev-parse --is-inside-work-tree failed"):
        version_run(RunVersioning(), tmp_path, WHEN)


def test_an_author_that_is_not_a_git_identity_is_refused_with_an_example(project):
    with pytest.raises(VersioningError, match=r"'Name <email>' \(rule: a git identity\), e\.g\."):
        version_run(RunVersioning(author="retrain bot"), project, WHEN)


def test_a_second_run_in_the_same_second_is_refused_rather_than_retagged(project):
    version_run(RunVersioning(), project, WHEN)
    with pytest.raises(VersioningError, match=r"git tag .* failed: .*already exists"):
        version_run(RunVersioning(), project, WHEN)
