"""Resumable training runs: what every training stage shares to survive an interruption.

A run keeps one epoch checkpoint, `last.ckpt`, in a folder of its own (the stage keys it by
a fingerprint of its config and inputs, `run_identity.py`), and a run finding one there
resumes from it. To end exactly where an uninterrupted run ends, the checkpoint holds, besides
Lightning's own state (weights, optimiser, schedule, loops, callbacks), the random states a
step draws from: torch's global generators and the data loaders' shuffling generators
(`RandomStates`). Checkpoints are written to a temporary name and renamed
(`AtomicCheckpointIO`), so a kill while writing leaves the previous one whole; one that fails
to load all the same (a full disk, a copy cut short) is set aside, never deleted, with a
warning naming it, and the run starts fresh (`resume_point`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from social_reward.errors import SocialRewardError
from social_reward.training.lightning_options import LightningOptions
from social_reward.training.lightning_trainer import build_trainer

LAST_CHECKPOINT = "last.ckpt"
CHECKPOINT_PATTERN = "*.ckpt"  # what a finished run removes from its folder
PARTIAL_SUFFIX = ".partial"  # a checkpoint being written
CORRUPT_SUFFIX = ".corrupt-"  # + a timestamp: a checkpoint set aside
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S%f"
# What every Lightning checkpoint holds; a file without them cannot be resumed from.
LIGHTNING_KEYS = ("state_dict", "loops", "callbacks")

logger = logging.getLogger(__name__)


class TrainingInterrupted(SocialRewardError, RuntimeError):
    """Training stopped before its last epoch; its checkpoint is kept for resuming."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's torch.save, written beside the target and renamed over it: a checkpoint
    file is either the previous one or the new one, never half of one."""

    def save_checkpoint(
        self, checkpoint: dict, path: str | Path, storage_options: object | None = None
    ) -> None:
        target = Path(path)
        partial = target.with_name(target.name + PARTIAL_SUFFIX)
        super().save_checkpoint(checkpoint, partial, storage_options)
        os.replace(partial, target)


class RandomStates(L.Callback):
    """torch's global random states (CPU and CUDA) and the given generators (a loader's
    shuffling), saved in every checkpoint and restored from it: the steps after a resume
    draw what they would have drawn (exact for one process; DDP ranks restore rank 0's)."""

    def __init__(self, generators: Sequence[torch.Generator] = ()) -> None:
        self.generators = list(generators)

    def state_dict(self) -> dict:
        return {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "generators": [generator.get_state() for generator in self.generators],
        }

    def load_state_dict(self, state_dict: dict) -> None:
        torch.set_rng_state(state_dict["torch"])
        cuda = state_dict["cuda"]
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        for generator, state in zip(self.generators, state_dict["generators"], strict=True):
            generator.set_state(state)


class StepLimit(L.Callback):
    """Ends a run after `steps` optimiser steps, for runs counted in steps.

    Lightning's own `max_steps` makes a run "iteration based", and such a run resumed from an
    epoch-end checkpoint replays that epoch's end: its hooks run twice (a second history row)
    and the loader is drawn once more (another shuffle). With `max_epochs` enough for the
    steps and this limit, a resumed run continues as an uninterrupted one."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step >= self.steps:
            trainer.should_stop = True


def step_limited(steps: int, batches_per_epoch: int) -> dict:
    """Trainer arguments and callbacks of a run of `steps` optimiser steps (`StepLimit`)."""
    return {
        "max_epochs": math.ceil(steps / max(1, batches_per_epoch)),
        "callbacks": [StepLimit(steps)],
    }


def last_checkpoint(folder: Path) -> L.Callback:
    """One file, `folder/last.ckpt`, overwritten at every epoch's end. (save_last with
    save_top_k=0 writes nothing: Lightning saves `last` only in a step where a top-k
    checkpoint was saved.)"""
    from lightning.pytorch.callbacks import ModelCheckpoint

    return ModelCheckpoint(
        dirpath=folder,
        filename=Path(LAST_CHECKPOINT).stem,
        save_top_k=1,
        enable_version_counter=False,
    )


def resumable_trainer(
    options: LightningOptions,
    callbacks: Sequence[L.Callback],
    progress: bool,
    folder: Path,
    generators: Sequence[torch.Generator] = (),
    **run: object,
) -> L.Trainer:
    """`build_trainer` with an epoch checkpoint in `folder` that holds the random states too
    (`generators`: the loaders' shuffling generators), written atomically."""
    return build_trainer(
        options,
        [*callbacks, RandomStates(generators), last_checkpoint(folder)],
        progress,
        plugins=[AtomicCheckpointIO()],
        **run,
    )


def set_aside(path: Path) -> Path:
    """Rename `path` to `<name>.corrupt-<timestamp>` beside it (kept for a post-mortem)."""
    aside = path.with_name(f"{path.name}{CORRUPT_SUFFIX}{datetime.now():{TIMESTAMP_FORMAT}}")
    path.rename(aside)
    return aside


def resume_point(folder: Path) -> Path | None:
    """`folder/last.ckpt` when there is one that loads, else None (a fresh start).

    A checkpoint that fails to load (tensors and plain data only) or is not a Lightning
    checkpoint is set aside with a warning naming it: a rerun starts over instead of failing
    on it until someone deletes it. Loading is memory-mapped: only the structure is read."""
    path = folder / LAST_CHECKPOINT
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        missing = [key for key in LIGHTNING_KEYS if key not in state]
        if missing:
            raise ValueError(f"not a Lightning checkpoint: no {', '.join(missing)}")
    except Exception as error:  # whatever the damage, the file cannot be resumed from
        try:
            aside = set_aside(path)
        except FileNotFoundError:  # another process of the run set it aside first
            return None
        logger.warning(
            "%s: checkpoint does not load (%s: %s); set aside as %s, training starts afresh",
            path,
            type(error).__name__,
            error,
            aside,
        )
        return None
    return path


def fit_resumable(
    trainer: L.Trainer, module: L.LightningModule, folder: Path, label: str, **data: object
) -> None:
    """`trainer.fit(module, **data)`, resuming from `folder/last.ckpt` where it loads.

    TrainingInterrupted, its message starting with `label`, when the run stops before its
    end (Ctrl+C): the checkpoint stays for the rerun."""
    resume = resume_point(folder)
    message = f"{label} interrupted; rerun the stage to resume from {folder / LAST_CHECKPOINT}"
    try:
        trainer.fit(
            module,
            ckpt_path=resume,
            weights_only=True,  # a checkpoint is never unpickled beyond tensors and plain data
            **data,
        )
    except SystemExit as error:  # Lightning ends a run stopped by Ctrl+C with sys.exit(1)
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted(message) from error
    if trainer.interrupted:
        raise TrainingInterrupted(message)


def discard_checkpoints(folder: Path) -> None:
    """A finished run's checkpoints are removed; its folder too, unless it holds checkpoints
    set aside as corrupt (those are kept)."""
    if not folder.is_dir():
        return
    for path in folder.glob(CHECKPOINT_PATTERN):
        path.unlink(missing_ok=True)
    for path in folder.glob(f"{CHECKPOINT_PATTERN}{PARTIAL_SUFFIX}"):
        path.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()
