"""The resumable-run plumbing every training stage shares: a checkpoint that does not load is
set aside (never deleted) with a warning naming it, a checkpoint is written whole or not at
all, a finished run leaves only what was set aside, and a run's inputs are fingerprinted."""

from __future__ import annotations

import logging

import pytest
import torch

from social_reward.training.checkpoints import (
    CORRUPT_SUFFIX,
    LAST_CHECKPOINT,
    LIGHTNING_KEYS,
    PARTIAL_SUFFIX,
    AtomicCheckpointIO,
    discard_checkpoints,
    resume_point,
)
from social_reward.training.run_identity import folder_digest

CHECKPOINT = {key: {} for key in LIGHTNING_KEYS} | {"epoch": 0}


def set_aside_files(folder):
    return sorted(folder.glob(f"{LAST_CHECKPOINT}{CORRUPT_SUFFIX}*"))


def test_no_checkpoint_is_a_fresh_start(tmp_path):
    assert resume_point(tmp_path) is None
    assert resume_point(tmp_path / "absent") is None


def test_a_loadable_lightning_checkpoint_is_resumed_from(tmp_path):
    torch.save(CHECKPOINT, tmp_path / LAST_CHECKPOINT)
    assert resume_point(tmp_path) == tmp_path / LAST_CHECKPOINT


@pytest.mark.parametrize(
    "damage",
    [
        lambda path: path.write_bytes(b"garbage"),
        lambda path: path.write_bytes(b""),  # a crash before the first byte
        # A checkpoint cut short: the zip's directory at its end is missing.
        lambda path: (torch.save(CHECKPOINT, path), path.write_bytes(path.read_bytes()[:100])),
        lambda path: torch.save({"weights": torch.zeros(2)}, path),  # not Lightning's
    ],
    ids=["garbage", "empty", "truncated", "not-lightning"],
)
def test_a_checkpoint_that_does_not_load_is_set_aside_with_a_warning(damage, tmp_path, caplog):
    path = tmp_path / LAST_CHECKPOINT
    damage(path)
    damaged = path.read_bytes()
    with caplog.at_level(logging.WARNING):
        assert resume_point(tmp_path) is None
    (aside,) = set_aside_files(tmp_path)
    assert not path.exists() and aside.read_bytes() == damaged  # kept as it was
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert str(path) in record.message and str(aside) in record.message


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / LAST_CHECKPOINT
    io = AtomicCheckpointIO()
    io.save_checkpoint(CHECKPOINT, path)
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises on a lambda
        io.save_checkpoint(CHECKPOINT | {"epoch": lambda: 1}, path)
    assert path.read_bytes() == before
    assert resume_point(tmp_path) == path
    io.save_checkpoint(CHECKPOINT | {"epoch": 1}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 1
    assert not list(tmp_path.glob(f"*{PARTIAL_SUFFIX}"))


def test_a_finished_run_removes_its_checkpoints_but_keeps_what_was_set_aside(tmp_path):
    clean, damaged = tmp_path / "clean", tmp_path / "damaged"
    for folder in (clean, damaged):
        folder.mkdir()
        torch.save(CHECKPOINT, folder / LAST_CHECKPOINT)
        torch.save(CHECKPOINT, folder / "best.ckpt")
    (damaged / f"{LAST_CHECKPOINT}{CORRUPT_SUFFIX}20250101T000000000000").write_bytes(b"x")
    discard_checkpoints(clean)
    discard_checkpoints(damaged)
    discard_checkpoints(tmp_path / "absent")
    assert not clean.exists()
    assert [path.name for path in damaged.iterdir()] == [
        f"{LAST_CHECKPOINT}{CORRUPT_SUFFIX}20250101T000000000000"
    ]


def test_a_folder_digest_sees_nested_bytes_and_names(tmp_path):
    (tmp_path / "unet").mkdir()
    weights = tmp_path / "unet" / "weights.safetensors"
    weights.write_bytes(b"abc")
    digest = folder_digest(tmp_path)
    assert folder_digest(tmp_path) == digest
    weights.write_bytes(b"abd")
    assert folder_digest(tmp_path) != digest
    weights.write_bytes(b"abc")
    weights.rename(tmp_path / "unet" / "other.safetensors")
    assert folder_digest(tmp_path) != digest
