"""Shared inputs of the training behaviour tests: pairs of the CI-size export and a backbone.

Every run is the real `train` section of params.yaml, shrunk: a few dozen pairs, two epochs,
small batches, on the CPU, writing under tmp. Torch uses one thread: the tiny model gains
nothing from more, and threads fighting over shared cores make a run many times slower.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from social_reward.config.train import TrainConfig, TrainVariant
from social_reward.reward.backbone import WEIGHTS_FILE
from social_reward.reward.model import MODEL_FILE
from tests.conftest import stage_config, validate_into

VARIANT = "debiased"
TRAIN_PAIRS = 48  # of the export's pairs: three steps of 16 per epoch
BATCH_SIZE = 16
EPOCHS = 2
BACKBONE = "social-reward-tiny"


@dataclass(frozen=True)
class TrainingInputs:
    pairs_dir: Path  # train.parquet (shrunk) and val.parquet of the debiased pairs
    naive_dir: Path  # the pairs stage's naive pairs, as written
    backbone_dir: Path  # random weights, saved as the pretrain stage saves them


@dataclass(frozen=True)
class TrainedRun:
    config: TrainConfig
    metrics: dict

    @property
    def out_dir(self) -> Path:
        return self.config.variants[VARIANT].out_dir

    def weights(self) -> dict[str, torch.Tensor]:
        return load_file(self.out_dir / MODEL_FILE)

    def files(self) -> dict[str, bytes]:
        """What the run wrote that must not change on an identical rerun."""
        return {
            "model": (self.out_dir / MODEL_FILE).read_bytes(),
            "metrics": (self.config.metrics_dir / f"{VARIANT}.json").read_bytes(),
            "plot": (self.config.log_dir / f"{VARIANT}.csv").read_bytes(),
        }


@pytest.fixture(scope="package", autouse=True)
def single_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def stage_pairs(small_export, tmp_path_factory) -> Path:
    """The pairs stage's output folder on the CI-size export (validated first)."""
    from social_reward.stages.pairs import run as run_pairs

    root = tmp_path_factory.mktemp("stage-pairs")
    validate_into(small_export.export_dir, root)
    run_pairs(
        stage_config(
            "pairs",
            validated_dir=root / "validated",
            truth=small_export.truth,
            out_dir=root / "pairs",
            metrics=root / "pairs.json",
            threads=1,
        )
    )
    return root / "pairs"


@pytest.fixture(scope="package")
def training_inputs(stage_pairs, tmp_path_factory) -> TrainingInputs:
    """The pairs stage on the CI-size export (a share of its training pairs), and a randomly
    initialised backbone."""
    from social_reward.reward.backbone import build_backbone, save_backbone

    root = tmp_path_factory.mktemp("training-inputs")
    pairs = stage_pairs
    small = root / "small-pairs"
    small.mkdir()
    pd.read_parquet(pairs / "train.parquet").head(TRAIN_PAIRS).to_parquet(
        small / "train.parquet", index=False
    )
    (small / "val.parquet").write_bytes((pairs / "val.parquet").read_bytes())
    torch.manual_seed(0)
    backbone_dir = save_backbone(build_backbone(BACKBONE), BACKBONE, root / "backbone")
    return TrainingInputs(small, pairs / "naive", backbone_dir)


def update_difference(run: TrainedRun, reference: TrainedRun, backbone_dir: Path) -> float:
    """|run's update - reference's update| / |reference's update|, over all weights, where an
    update is trained minus initial weights. The largest single difference says little:
    Adam moves a weight whose gradient is near zero by about the learning rate in the
    direction of its sign, so float rounding alone can flip such a step."""
    initial = load_file(backbone_dir / WEIGHTS_FILE)
    weights, expected = run.weights(), reference.weights()
    assert weights.keys() == expected.keys() == initial.keys()
    keys = [key for key, value in initial.items() if value.is_floating_point()]
    difference = sum(float((weights[key] - expected[key]).pow(2).sum()) for key in keys)
    update = sum(float((expected[key] - initial[key]).pow(2).sum()) for key in keys)
    assert update > 0, "the reference run did not train"
    return (difference / update) ** 0.5


def train_config(inputs: TrainingInputs, out: Path, **changes) -> TrainConfig:
    """params.yaml's train section, shrunk, with every output under `out`."""
    settings = {
        "backbone_dir": inputs.backbone_dir,
        "variants": {
            VARIANT: TrainVariant(pairs_dir=inputs.pairs_dir, out_dir=out / "reward"),
            "naive": TrainVariant(pairs_dir=inputs.naive_dir, out_dir=out / "reward_naive"),
        },
        "metrics_dir": out / "metrics",
        "log_dir": out / "plots",
        "checkpoint_dir": out / "checkpoints",
        "epochs": EPOCHS,
        "batch_size": BATCH_SIZE,
        "decode_workers": 1,
        "accelerator": "cpu",
        "devices": 1,
        "strategy": "auto",
    }
    return stage_config("train", **(settings | changes))


def train(config: TrainConfig, callbacks: tuple = ()) -> TrainedRun:
    from social_reward.stages.train import run as run_train

    return TrainedRun(config, run_train(config, VARIANT, progress=False, callbacks=callbacks))


@pytest.fixture(scope="package")
def baseline(single_thread, training_inputs, tmp_path_factory) -> TrainedRun:
    """The reference run: params.yaml's settings (cached prefix, flipped views, seed 0)."""
    return train(train_config(training_inputs, tmp_path_factory.mktemp("baseline")))
