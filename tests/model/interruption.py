"""Interrupting a training stage as Ctrl+C does, and seeing which epochs a rerun trains."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import lightning as L
import pytest

from social_reward.training.checkpoints import TrainingInterrupted


class InterruptAfterFirstEpoch(L.Callback):
    """Ctrl+C as Lightning sees it, once the first epoch (and its checkpoint) is done."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise KeyboardInterrupt


class EpochsRun(L.Callback):
    """The epochs a run trains (a resumed run starts after its checkpoint's)."""

    def __init__(self) -> None:
        self.epochs: list[int] = []

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.epochs.append(trainer.current_epoch)


@contextmanager
def sigint_kept() -> Iterator[None]:
    """Lightning ignores SIGINT after a KeyboardInterrupt; give it back to pytest."""
    handler = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, handler)


def interrupt_after_first_epoch(stage: Callable[..., object], label: str) -> None:
    """Run `stage(callbacks=...)` until Ctrl+C after its first epoch; TrainingInterrupted
    naming `label` is what the stage must raise."""
    with sigint_kept(), pytest.raises(TrainingInterrupted, match=label):
        stage(callbacks=(InterruptAfterFirstEpoch(),))
