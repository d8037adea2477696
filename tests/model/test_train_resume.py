"""An interrupted `train` run resumes from its epoch checkpoint and ends as if never stopped;
a checkpoint that does not load is set aside and the run starts afresh."""

from __future__ import annotations

import logging

import torch

from social_reward.reward.trainer import BEST_CHECKPOINT
from social_reward.training.checkpoints import CORRUPT_SUFFIX, LAST_CHECKPOINT
from tests.model.conftest import EPOCHS, VARIANT, train, train_config
from tests.model.interruption import EpochsRun, interrupt_after_first_epoch

GARBAGE = b"not a checkpoint: a copy cut short"


def test_interrupted_run_resumes_to_the_uninterrupted_weights(baseline, training_inputs, tmp_path):
    config = train_config(training_inputs, tmp_path)
    assert config.epochs == EPOCHS == 2
    interrupt_after_first_epoch(lambda callbacks: train(config, callbacks=callbacks), VARIANT)

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


def test_a_corrupt_checkpoint_is_set_aside_and_the_run_starts_afresh(
    baseline, training_inputs, tmp_path, caplog
):
    config = train_config(training_inputs, tmp_path)
    interrupt_after_first_epoch(lambda callbacks: train(config, callbacks=callbacks), VARIANT)
    (checkpoint,) = config.checkpoint_dir.rglob(LAST_CHECKPOINT)
    checkpoint.write_bytes(GARBAGE)

    epochs = EpochsRun()
    with caplog.at_level(logging.WARNING):
        rerun = train(config, callbacks=(epochs,))
    assert epochs.epochs == [0, 1]  # from the start
    assert rerun.files() == baseline.files()
    (aside,) = checkpoint.parent.glob(f"{LAST_CHECKPOINT}{CORRUPT_SUFFIX}*")
    assert aside.read_bytes() == GARBAGE  # kept, never deleted
    assert [path.name for path in checkpoint.parent.iterdir()] == [aside.name]
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert any(str(checkpoint) in r.message and str(aside) in r.message for r in warnings)
