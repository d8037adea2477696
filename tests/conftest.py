"""Shared fixtures. Tests build the real configuration and shrink it (configs/ci.yaml).

Every tool runs hermetically: telemetry off, homes, configs and caches in temporary folders.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
CI_CONFIG = REPO_ROOT / "configs" / "ci.yaml"


def _hermetic_environment() -> None:
    home = Path(tempfile.mkdtemp(prefix="social-reward-tools-"))
    os.environ.update(
        {
            "DVC_NO_ANALYTICS": "1",
            "DVC_GLOBAL_CONFIG_DIR": str(home / "dvc-global"),
            "DVC_SYSTEM_CONFIG_DIR": str(home / "dvc-system"),
            "DVC_SITE_CACHE_DIR": str(home / "dvc-site-cache"),
            "PREFECT_HOME": str(home / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "GX_ANALYTICS_ENABLED": "false",
            "MPLBACKEND": "Agg",
            "GIT_AUTHOR_NAME": "tests",
            "GIT_AUTHOR_EMAIL": "tests@example.invalid",
            "GIT_COMMITTER_NAME": "tests",
            "GIT_COMMITTER_EMAIL": "tests@example.invalid",
        }
    )
    # Executables of this environment (dvc, social-reward) first, as `make` arranges.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"


_hermetic_environment()


@dataclass(frozen=True)
class SimulatedExport:
    export_dir: Path
    truth: Path


def simulate(out: Path, truth: Path | None, *options: str) -> subprocess.CompletedProcess:
    """Run `social-reward simulate` as a user would."""
    command = ["social-reward", "simulate", "--out", str(out), "--workers", "1"]
    command += ["--truth", str(truth)] if truth else []
    return run(command + list(options))


def run(
    command: list[str], cwd: Path | None = None, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def stage_config(section: str, **changes):
    """A section of this repository's params.yaml, with changes (tmp paths, small sizes)."""
    from social_reward.config.params import load_params

    params = load_params(REPO_ROOT / "params.yaml")
    config = params.section(section)
    return config.model_copy(update=changes)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims `width` x `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def killed_after(step: str, work: Callable[[Callable[[str], None]], None]) -> int | None:
    """Run `work(after_step)` in a forked child that kills itself (SIGKILL) right after the
    step named `step`, as a machine dying there would; returns the child's exit code. Forked,
    not started afresh: the child shares the parent's imports and costs milliseconds."""

    def child() -> None:
        def stop_here(name: str) -> None:
            if name == step:
                os.kill(os.getpid(), signal.SIGKILL)

        work(stop_here)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join()
    return process.exitcode


def passed_gates(folder: Path, validated_dir: Path) -> str:
    """Both gates' verdicts passing `validated_dir`, written under `folder`, as a params.yaml
    line of a stage section: for tests of a stage's own errors, which come after the gates."""
    from social_reward.data.gates import write_verdict

    paths = [folder / "gates" / f"{gate}.json" for gate in ("validate", "drift")]
    for path in paths:
        write_verdict(path, path.stem, True, validated_dir)
    return f"  gate_verdicts: {json.dumps([str(path) for path in paths])}\n"


def validate_into(export_dir: Path, out: Path) -> dict:
    """Run the validate stage on an export, writing everything under `out`."""
    from social_reward.data.validation import validate_export

    config = stage_config(
        "validate",
        export_dir=export_dir,
        validated_dir=out / "validated",
        quarantine_dir=out / "quarantine",
        report=out / "validate.html",
        metrics=out / "validate.json",
        verdict=out / "gates" / "validate.json",
    )
    return validate_export(config)


@pytest.fixture(scope="session")
def ci_simulate_options() -> list[str]:
    options = yaml.safe_load(CI_CONFIG.read_text())["simulate"]
    return [
        arg for key, value in options.items() for arg in (f"--{key.replace('_', '-')}", str(value))
    ]


def simulated_export(tmp_path_factory, name: str, *options: str) -> SimulatedExport:
    """A simulated export with images and its truth, written into a new temporary folder."""
    root = tmp_path_factory.mktemp(name)
    export = SimulatedExport(root / "data", root / "truth" / "appeal.parquet")
    simulate(export.export_dir, export.truth, *options)
    return export


@pytest.fixture(scope="session")
def small_export(tmp_path_factory, ci_simulate_options) -> SimulatedExport:
    """The CI-sized export with images and truth; shared, so tests must not change it."""
    return simulated_export(tmp_path_factory, "small-export", *ci_simulate_options)


@pytest.fixture(scope="session")
def fresh_export(tmp_path_factory, ci_simulate_options) -> SimulatedExport:
    """The small export's community a few days later: what a retrain run takes."""
    return simulated_export(
        tmp_path_factory, "fresh-export", *ci_simulate_options, "--later-days", "5"
    )


@pytest.fixture(scope="session")
def drifted_export(tmp_path_factory, ci_simulate_options) -> SimulatedExport:
    """A later export of a drifted community (new generator, darker images, new words)."""
    return simulated_export(
        tmp_path_factory, "drifted-export", *ci_simulate_options, "--later-days", "10", "--drifted"
    )


@pytest.fixture(scope="session")
def later_export(tmp_path_factory, ci_simulate_options) -> SimulatedExport:
    """The small export's community ten days later: the retrain run after `fresh_export`'s."""
    return simulated_export(
        tmp_path_factory, "later-export", *ci_simulate_options, "--later-days", "10"
    )


@contextmanager
def lock_held_by_another_process(lock: Path) -> Iterator[None]:
    """The retrain lock held by another process (another run) while the block runs."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from filelock import FileLock\n"
            f"with FileLock({str(lock)!r}):\n    print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.kill()
        holder.wait()


def drop_into_inbox(export: SimulatedExport, inbox: Path, name: str) -> Path:
    """Put an export and its truth into a retrain drop folder, as a platform job would: the
    files first, then the READY marker that tells intake the export is complete."""
    folder = inbox / name
    shutil.copytree(export.export_dir, folder / "data")
    (folder / "truth").mkdir()
    shutil.copy(export.truth, folder / "truth" / "appeal.parquet")
    (folder / "READY").touch()
    return folder


@pytest.fixture(scope="session")
def metadata_export(tmp_path_factory) -> SimulatedExport:
    """A larger export without image files, for statistics on the counts."""
    root = tmp_path_factory.mktemp("metadata-export")
    export = SimulatedExport(root / "data", root / "truth" / "appeal.parquet")
    simulate(
        export.export_dir, export.truth, "--metadata-only", "--users", "6000", "--images", "20000"
    )
    return export


@pytest.fixture(scope="session")
def default_export(tmp_path_factory) -> SimulatedExport:
    """The embedded default export (`make run`'s), written afresh; shared, do not change it."""
    root = tmp_path_factory.mktemp("default-export")
    export = SimulatedExport(root / "data", root / "truth" / "appeal.parquet")
    simulate(export.export_dir, export.truth, "--seed", "0", "--workers", "2")
    return export


SMALL_VAE = "small-vae.json"  # written beside the small UNet's config


@pytest.fixture(scope="session")
def small_unet(tmp_path_factory) -> Path:
    """The default UNet config with narrower blocks (the same layout and conditioning), and
    beside it, the default autoencoder's config, narrower too (`small_vae`)."""
    from social_reward.generator.pipeline import autoencoder_config, unet_config

    pretrain = stage_config("generator_pretrain")
    config = unet_config(pretrain.unet)
    config.update(block_out_channels=[16, 32, 32], norm_num_groups=8)
    path = tmp_path_factory.mktemp("unet") / "small-unet.json"
    path.write_text(json.dumps(config))
    vae = autoencoder_config(pretrain.autoencoder.model)
    vae.update(block_out_channels=[max(8, c // 4) for c in vae["block_out_channels"]])
    vae.update(norm_num_groups=8)
    (path.parent / SMALL_VAE).write_text(json.dumps(vae))
    return path


def small_vae(small_unet: Path) -> Path:
    """The small autoencoder's config written with the small UNet's."""
    return small_unet.with_name(SMALL_VAE)


def make_small_project(project: Path, export: SimulatedExport) -> Path:
    """A DVC project at `project`: this repo's pipeline, CI-sized params and the export."""
    from social_reward.config.run_config import load_run_config

    project.mkdir(parents=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO_ROOT / name, project / name)
    for folder in ("expectations", "models/production", "backbones"):
        shutil.copytree(REPO_ROOT / folder, project / folder)
    shutil.copytree(
        REPO_ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    shrunk = load_run_config(CI_CONFIG).apply_to(params)
    (project / "params.yaml").write_text(yaml.safe_dump(shrunk, sort_keys=False))
    shutil.copytree(export.export_dir, project / "data")
    shutil.copytree(export.truth.parent, project / "truth")
    run(["git", "init", "-q"], cwd=project)
    run(["dvc", "init", "-q"], cwd=project)
    shutil.copy(REPO_ROOT / ".dvc" / "config", project / ".dvc" / "config")
    run(["dvc", "add", "-q", "data"], cwd=project)
    return project


@pytest.fixture
def small_project(tmp_path, small_export) -> Path:
    """A DVC project in tmp_path: this repo's pipeline, CI-sized params and the small export."""
    return make_small_project(tmp_path / "project", small_export)


@pytest.fixture(scope="module")
def reproduced_project(tmp_path_factory, small_export) -> Path:
    """A small project after one `dvc repro` of the whole pipeline; shared: copy it to change
    anything (`copy_project`)."""
    project = make_small_project(tmp_path_factory.mktemp("reproduced") / "project", small_export)
    run(["dvc", "repro"], cwd=project)
    return project


def output_digests(project: Path) -> dict[str, str]:
    """The sha256 of every file DVC's lock names as an output (or inside one), by path."""
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    found = {}
    for stage in lock["stages"].values():
        for out in stage.get("outs", []):
            path = project / out["path"]
            for file in [path] if path.is_file() else sorted(path.rglob("*")):
                if file.is_file():
                    digest = hashlib.sha256(file.read_bytes()).hexdigest()
                    found[file.relative_to(project).as_posix()] = digest
    return found


def clone_and_pull(project: Path, clone: Path, remote: Path, commit: str = "HEAD") -> Path:
    """Another machine's copy of `project` at `commit`: `git clone`, `git checkout`, then
    `dvc pull` from `remote`."""
    run(["git", "clone", "-q", str(project), str(clone)])
    run(["git", "checkout", "-q", commit], cwd=clone)
    run(["dvc", "remote", "add", "--local", "--default", "store", str(remote)], cwd=clone)
    run(["dvc", "pull", "-q"], cwd=clone)
    return clone


def copy_project(project: Path, destination: Path) -> Path:
    """A copy of a project with its git and DVC state (cache included)."""
    shutil.copytree(project, destination, symlinks=True)
    return destination
