"""An interrupted `pretrain` run (CLIP training without weights) resumes from its epoch
checkpoint and ends as if never stopped: flips draw from torch's global generator and the
loader shuffles with its own, both restored from the checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_reward.config.model import ModelConfig
from social_reward.config.pretrain import PretrainConfig
from social_reward.reward.backbone import WEIGHTS_FILE
from social_reward.stages.pretrain import run as run_pretrain
from social_reward.training.checkpoints import LAST_CHECKPOINT
from tests.conftest import stage_config
from tests.model.interruption import EpochsRun, interrupt_after_first_epoch

EPOCHS = 2


def pretrain_config(pairs_dir: Path, out: Path) -> PretrainConfig:
    """params.yaml's pretrain section, shrunk, with every output under `out`."""
    return stage_config(
        "pretrain",
        pairs_dir=pairs_dir,
        out_dir=out / "backbone",
        metrics=out / "pretrain.json",
        log=out / "pretrain.csv",
        checkpoint_dir=out / "checkpoints",
        epochs=EPOCHS,
        batch_size=32,
        decode_workers=1,
    )


def pretrain(config: PretrainConfig, callbacks: tuple = ()) -> dict[str, bytes]:
    """Run the stage on random weights; what it wrote, which a resumed run must repeat."""
    run_pretrain(ModelConfig(pretrained=None), config, progress=False, callbacks=callbacks)
    return {
        path.name: path.read_bytes()
        for path in (config.out_dir / WEIGHTS_FILE, config.metrics, config.log)
    }


@pytest.fixture(scope="module")
def uninterrupted(stage_pairs, tmp_path_factory) -> dict[str, bytes]:
    return pretrain(pretrain_config(stage_pairs, tmp_path_factory.mktemp("pretrain")))


def test_interrupted_pretraining_resumes_to_the_uninterrupted_weights(
    stage_pairs, uninterrupted, tmp_path
):
    config = pretrain_config(stage_pairs, tmp_path)
    interrupt_after_first_epoch(lambda callbacks: pretrain(config, callbacks), "pretraining")
    (checkpoint,) = config.checkpoint_dir.rglob("*.ckpt")
    assert checkpoint.name == LAST_CHECKPOINT
    assert checkpoint.parent.parent == config.checkpoint_dir  # <fingerprint>/last.ckpt
    assert not config.out_dir.exists()

    epochs = EpochsRun()
    resumed = pretrain(config, callbacks=(epochs,))
    assert epochs.epochs == [1]  # the first epoch came from the checkpoint
    assert resumed == uninterrupted  # weights, metrics and loss plot, byte for byte
    assert not checkpoint.parent.exists()
