"""Stage `pretrain` without weights: the CLIP loss on the export, test prompts left out."""

from __future__ import annotations

import json

from social_reward.artifacts import TEST_SPLIT, read_image_splits
from social_reward.config.model import ModelConfig
from social_reward.reward.backbone import RECORD_FILE, load_saved_backbone
from social_reward.stages.pretrain import run as run_pretrain
from tests.conftest import stage_config


def test_pretraining_on_the_export_leaves_the_test_prompts_out(stage_pairs, tmp_path):
    pairs = stage_pairs
    config = stage_config(
        "pretrain",
        pairs_dir=pairs,
        out_dir=tmp_path / "backbone",
        metrics=tmp_path / "pretrain.json",
        log=tmp_path / "pretrain.csv",
        epochs=1,
        batch_size=32,
        decode_workers=1,
    )
    metrics = run_pretrain(ModelConfig(pretrained=None), config, progress=False)
    splits = read_image_splits(pairs)
    assert metrics["trained"] and metrics["held_out_split"] == TEST_SPLIT
    assert metrics["images"] == int((splits["split"] != TEST_SPLIT).sum())
    assert json.loads((tmp_path / "pretrain.json").read_text()) == metrics
    assert (tmp_path / "pretrain.csv").read_text().startswith("epoch,train_loss\n1,")
    _, name = load_saved_backbone(tmp_path / "backbone")
    assert name == "social-reward-tiny" and not (tmp_path / "backbone" / RECORD_FILE).exists()
