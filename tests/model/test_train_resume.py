"""An interrupted `train` run resumes from its epoch checkpoint and ends as if never stopped."""

from __future__ import annotations

import signal

import lightning as L
import pytest
import torch

from social_reward.reward.trainer import BEST_CHECKPOINT, LAST_CHECKPOINT, TrainingInterrupted
from tests.model.conftest import EPOCHS, VARIANT, train, train_config


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


def test_interrupted_run_resumes_to_the_uninterrupted_weights(baseline, training_inputs, tmp_path):
    config = train_config(training_inputs, tmp_path)
    assert config.epochs == EPOCHS == 2
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(TrainingInterrupted, match=VARIANT):
            train(config, callbacks=(InterruptAfterFirstEpoch(),))
    finally:  # Lightning ignores SIGINT after a KeyboardInterrupt; give it back to pytest
        signal.signal(signal.SIGINT, handler)

    # The epoch checkpoint to resume from, and the best validation epoch's so far.
    checkpoints = {path.name: path for path in config.checkpoint_dir.rglob("*.ckpt")}
    assert set(checkpoints) == {LAST_CHECKPOINT, BEST_CHECKPOINT}
    checkpoint = checkpoints[LAST_CHECKPOINT]
    assert checkpoint.parent.parent == config.checkpoint_dir / VARIANT
    assert not (config.variants[VARIANT].out_dir).exists()
    state = torch.load(checkpoint, weights_only=True)  # tensors and plain data only
    assert state["epoch"] == 0

    epochs = EpochsRun()
    resumed = train(config, callbacks=(epochs,))
    assert epochs.epochs == [1]  # the second epoch only: the first came from the checkpoint
    weights, expected = resumed.weights(), baseline.weights()
    assert weights.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.allclose(weights[key], value, rtol=0, atol=1e-6), key
    assert resumed.files()["plot"] == baseline.files()["plot"]  # epoch 1's row was kept
    assert resumed.metrics == baseline.metrics
    assert not checkpoint.parent.exists()
