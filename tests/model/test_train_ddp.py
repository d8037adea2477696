"""Two-process DDP on the CPU trains the weights one process trains (gloo backend).

The ShardedBatchSampler gives each process half of every batch of the single-process
order, and DDP averages the halves' gradients: the same steps, up to float rounding (which
Adam amplifies on weights with near-zero gradients: the test compares whole updates). DDP
relaunches the command, so the stage runs as a user runs it: `social-reward train`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from social_reward.config.train import TrainConfig
from tests.conftest import REPO_ROOT, run
from tests.model.conftest import VARIANT, TrainedRun, train_config, update_difference

pytestmark = pytest.mark.slow

# Of the update's norm: two processes give 0.3% (float rounding, amplified by Adam on
# near-zero gradients), another seed 50%.
TOLERANCE = 0.02


def params_file(config: TrainConfig, path: Path) -> Path:
    """This repository's params.yaml with the given train section."""
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["train"] = json.loads(config.model_dump_json())
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def test_two_process_ddp_matches_one_process(baseline, training_inputs, tmp_path):
    config = train_config(
        training_inputs, tmp_path / "ddp", devices=2, strategy="ddp", accelerator="cpu"
    )
    assert config.batch_size == baseline.config.batch_size
    params = params_file(config, tmp_path / "params.yaml")
    environment = os.environ | {"OMP_NUM_THREADS": "1"}  # one thread per process
    result = run(
        ["social-reward", "train", "--variant", VARIANT, "--params", str(params)],
        cwd=tmp_path,
        env=environment,
    )
    assert "distributed_backend=gloo" in result.stderr
    assert "Starting with 2 processes" in result.stderr
    ddp = TrainedRun(config, json.loads((config.metrics_dir / f"{VARIANT}.json").read_text()))
    assert update_difference(ddp, baseline, training_inputs.backbone_dir) < TOLERANCE
    for key in ("final_train_loss", "val_accuracy"):
        assert ddp.metrics[key] == pytest.approx(baseline.metrics[key], abs=1e-3), key
    assert ddp.metrics["pairs"] == baseline.metrics["pairs"]
    assert not list(config.checkpoint_dir.rglob("*.ckpt"))
