"""What a `train` run changes, and that it changes it the same way every time."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from social_reward.reward.backbone import WEIGHTS_FILE, build_backbone, unlock
from tests.model.conftest import (
    BACKBONE,
    VARIANT,
    TrainedRun,
    train,
    train_config,
    update_difference,
)

PAPER_MODE = "visual_upper_layers_textual_upper_layers"
# The cache computes the frozen prefix once, in other batch shapes, so float sums round in
# another order; Adam then turns rounding into whole steps for weights whose gradient is
# near zero. Measured between the two paths: under 0.1% of the update on one CPU, 0.3% (largest
# weight difference 3.6 learning-rate steps) on another with other vector units; another
# seed moves it by more than 10%.
UPDATE_TOLERANCE = 0.01
MAX_STEPS_APART = 10  # the largest single weight difference, in learning-rate steps
METRIC_TOLERANCE = 1e-3


def max_difference(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> float:
    assert first.keys() == second.keys()
    return max((first[key] - second[key]).abs().max().item() for key in first)


def test_frozen_parameters_stay_exactly_as_saved(baseline, training_inputs):
    """Outside the unlocked parameters nothing moves: frozen weights, and buffers too (batch
    norm statistics stay the pretrained ones in training)."""
    assert baseline.config.unlock == PAPER_MODE
    unlocked = set(unlock(build_backbone(BACKBONE), PAPER_MODE))
    before = load_file(training_inputs.backbone_dir / WEIGHTS_FILE)
    after = baseline.weights()
    assert before.keys() == after.keys()
    frozen = [key for key in before if key not in unlocked]
    assert frozen and unlocked <= before.keys()
    changed_frozen = [key for key in frozen if not torch.equal(before[key], after[key])]
    assert changed_frozen == []
    changed = [key for key in unlocked if not torch.equal(before[key], after[key])]
    assert changed, "no unlocked parameter moved"
    assert baseline.metrics["trained_parameters"] == sum(before[key].numel() for key in unlocked)


def test_cached_prefix_trains_like_the_uncached_towers(baseline, training_inputs, tmp_path):
    assert baseline.config.cache_prefix and baseline.config.flip_views
    assert baseline.metrics["cached_prefix"] is True
    uncached = train(train_config(training_inputs, tmp_path, cache_prefix=False))
    assert uncached.metrics["cached_prefix"] is False
    assert update_difference(uncached, baseline, training_inputs.backbone_dir) < UPDATE_TOLERANCE
    step = baseline.config.learning_rate
    assert max_difference(uncached.weights(), baseline.weights()) < MAX_STEPS_APART * step
    for key in ("final_train_loss", "val_accuracy"):
        assert abs(uncached.metrics[key] - baseline.metrics[key]) < METRIC_TOLERANCE, key


def test_same_seed_same_bytes_other_seed_other_weights(baseline, training_inputs, tmp_path):
    again = train(train_config(training_inputs, tmp_path / "again"))
    assert again.files() == baseline.files()
    reseeded = train(train_config(training_inputs, tmp_path / "seed-1", seed=1))
    # Another order of the pairs and other mirrored views: another update altogether.
    assert update_difference(reseeded, baseline, training_inputs.backbone_dir) > 0.1


def test_bradley_terry_loss_trains_and_writes_metrics(training_inputs, tmp_path):
    run = train(train_config(training_inputs, tmp_path, loss="bradley_terry", epochs=1))
    written = json.loads((run.config.metrics_dir / f"{VARIANT}.json").read_text())
    assert written == run.metrics
    assert written["loss"] == "bradley_terry" and written["epochs"] == 1
    assert written["final_train_loss"] > 0
    assert 0 <= written["val_accuracy"] <= 1
    assert (run.config.log_dir / f"{VARIANT}.csv").read_text().splitlines()[0] == (
        "epoch,train_loss,train_accuracy,val_accuracy"
    )
    assert json.loads((run.out_dir / "config.json").read_text())["loss"] == "bradley_terry"


def _validation_accuracies(run: TrainedRun) -> list[float]:
    lines = (run.config.log_dir / f"{VARIANT}.csv").read_text().splitlines()[1:]
    return [float(line.split(",")[3]) for line in lines]


def test_the_kept_weights_are_those_of_the_best_validation_epoch(training_inputs, tmp_path):
    kept = train(train_config(training_inputs, tmp_path / "kept", epochs=3))
    accuracies = _validation_accuracies(kept)
    best = kept.metrics["best_epoch"]
    assert len(accuracies) == kept.metrics["epochs_run"] == 3
    assert accuracies[best - 1] == max(accuracies) and max(accuracies[: best - 1] or [0]) < max(
        accuracies
    )
    assert kept.metrics["val_accuracy"] == pytest.approx(accuracies[best - 1], abs=1e-4)
    # A constant learning rate and per-epoch seeds: the first `best` epochs of the run are a
    # run of `best` epochs, whose last weights are the ones kept.
    shorter = train(
        train_config(training_inputs, tmp_path / "short", epochs=best, keep_best_epoch=False)
    )
    assert shorter.weights().keys() == kept.weights().keys()
    assert all(torch.equal(shorter.weights()[k], kept.weights()[k]) for k in kept.weights())


def test_training_stops_once_validation_stops_improving(training_inputs, tmp_path):
    run = train(train_config(training_inputs, tmp_path, epochs=6, early_stopping_patience=1))
    accuracies = _validation_accuracies(run)
    ran = run.metrics["epochs_run"]
    assert len(accuracies) == ran
    # Each epoch before the last improved on all before it; the last did not, or it was the
    # sixth.
    assert all(accuracies[i] > max(accuracies[:i]) for i in range(1, ran - 1))
    assert ran == 6 or accuracies[-1] <= max(accuracies[:-1])
