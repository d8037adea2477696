"""`make run` from a fresh clone: the README's first command, as a new user runs it."""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT, run

pytestmark = pytest.mark.slow


def fresh_clone(destination: Path) -> Path:
    """A clone of this repository holding the working tree's files (committed or not)."""
    run(["git", "clone", "-q", "--no-hardlinks", str(REPO_ROOT), str(destination)])
    listed = run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT
    )
    for name in filter(None, listed.stdout.split("\0")):
        source = REPO_ROOT / name
        target = destination / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif target.exists():
            target.unlink()  # deleted in the working tree
    return destination


def environment_on_top_of_this_one(venv: Path) -> None:
    """A new virtual environment that sees this one's packages, so `make` installs only the
    project itself (the full install is what CI's own clean clone exercises)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "_outer_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


DATA_STAGES = ("validate", "profile", "pairs", "drift")  # the model stages: on CI size


def lock_entries(lock_text: str, stages: tuple[str, ...]) -> dict:
    return {stage: yaml.safe_load(lock_text)["stages"][stage] for stage in stages}


def check_make_sets_up_a_dvc_remote_once(clone: Path, venv: Path, env: dict, remote: Path):
    """`make run` configures a default DVC remote when the project has none (in
    .dvc/config.local, a folder outside the clone) and leaves a configured one alone."""
    for _ in range(2):  # the second call finds the remote and changes nothing
        result = subprocess.run(
            ["make", "remote", f"VENV={venv}", f"DVC_REMOTE={remote}"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert run(["dvc", "remote", "default"], cwd=clone, env=env).stdout.strip() == "local"
    local = (clone / ".dvc" / "config.local").read_text()
    assert local.count("[") == 2 and str(remote) in local, local  # [core] and the remote
    assert remote.is_dir()
    assert run(["git", "status", "--porcelain", "--", ".dvc"], cwd=clone).stdout == ""

    team = ["dvc", "remote", "add", "--local", "--force", "--default", "team", "s3://b/p"]
    run(team, cwd=clone, env=env)
    run(["make", "remote", f"VENV={venv}", f"DVC_REMOTE={remote}"], cwd=clone, env=env)
    assert run(["dvc", "remote", "default"], cwd=clone, env=env).stdout.strip() == "team"
    run(["dvc", "remote", "remove", "--local", "team"], cwd=clone, env=env)
    run(["dvc", "remote", "default", "--local", "local"], cwd=clone, env=env)


def test_a_fresh_clone_recreates_the_versioned_export_and_data_stages(tmp_path):
    """`make data` (what `make run` does before `dvc repro`) on a fresh clone, then the data
    stages: the export is byte for byte data.dvc's, and the stages give the versioned
    dvc.lock entries and metrics. The model stages run on the CI profile in
    test_dvc_pipeline (tests never train at the default's full size)."""
    clone = fresh_clone(tmp_path / "clone")
    venv = tmp_path / "venv"
    environment_on_top_of_this_one(venv)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"  # as `make` and `activate` do
    result = subprocess.run(
        ["make", "data", f"VENV={venv}"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (clone / "data.dvc").read_text() == (REPO_ROOT / "data.dvc").read_text()
    check_make_sets_up_a_dvc_remote_once(clone, venv, env, tmp_path / "remote")

    # Forced reruns of every stage are compared in test_dvc_pipeline (CI profile).
    versioned_lock = (REPO_ROOT / "dvc.lock").read_text()
    run(["dvc", "repro", *DATA_STAGES], cwd=clone, env=env)
    metrics = json.loads((clone / "metrics" / "profile.json").read_text())
    assert metrics["counts"]["images"] == 12000
    for name in ("profile.json", "pairs.json", "validate.json", "drift.json"):
        versioned = json.loads((REPO_ROOT / "metrics" / name).read_text())
        assert json.loads((clone / "metrics" / name).read_text()) == versioned, name
    clone_lock = (clone / "dvc.lock").read_text()
    assert lock_entries(clone_lock, DATA_STAGES) == lock_entries(versioned_lock, DATA_STAGES)

    # Were the regenerated export different from data.dvc's, `make` stops, says so and
    # leaves data.dvc as it was.
    tampered = (clone / "data.dvc").read_text().replace("md5: ", "md5: 0", 1)
    (clone / "data.dvc").write_text(tampered)
    (clone / "data" / "manifest.json").unlink()
    refused = subprocess.run(
        ["make", "data", f"VENV={venv}"], cwd=clone, env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "the regenerated export differs from the one data.dvc names" in refused.stdout
    assert (clone / "data.dvc").read_text() == tampered
    assert not (clone / "data" / "manifest.json").exists(), "the next `make run` checks again"
