"""The generic backbone: pretrained on the corpus, shipped small, loaded like a checkpoint."""

from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file

from social_reward.reward.backbone import (
    ROW_INDEX_SUFFIX,
    WEIGHTS_FILE,
    build_backbone,
    tokenizer_for,
)
from social_reward.reward.generic_backbone import (
    RECORD_FILE,
    TOKEN_TABLE,
    GenericBackboneConfig,
    pretrain_generic,
)
from social_reward.simulate.corpus import CorpusConfig
from tests.conftest import run


def tiny_config() -> GenericBackboneConfig:
    return GenericBackboneConfig(
        corpus=CorpusConfig(images=96, image_size=32), epochs=1, batch_size=32, decode_workers=1
    )


def test_a_pretrained_generic_backbone_loads_through_model_pretrained(tmp_path):
    torch.set_num_threads(1)
    record = pretrain_generic(tiny_config(), tmp_path / "generic", workers=1, progress=False)
    weights = load_file(tmp_path / "generic" / WEIGHTS_FILE)
    floating = [value for value in weights.values() if value.is_floating_point()]
    assert floating and all(value.dtype == torch.float16 for value in floating)
    assert json.loads((tmp_path / "generic" / RECORD_FILE).read_text()) == record
    assert [path.name for path in tmp_path.iterdir()] == ["generic"]  # no checkpoints left
    assert len(record["loss_per_epoch"]) == 1

    # The token table is stored by its non-zero rows; loading restores the zero ones.
    kept = weights.pop(TOKEN_TABLE + ROW_INDEX_SUFFIX)
    loaded = build_backbone("social-reward-tiny", tmp_path / "generic")
    state = loaded.state_dict()
    rows = state[TOKEN_TABLE].shape[0]
    assert weights[TOKEN_TABLE].shape[0] == len(kept) == rows - record["token_embeddings_zeroed"]
    assert torch.equal(state[TOKEN_TABLE][kept], weights.pop(TOKEN_TABLE).float())
    for key, value in weights.items():
        assert torch.equal(state[key], value.to(state[key].dtype)), key
    # Tokens no caption used are zeroed; the captions' own are not.
    table = loaded.token_embedding.weight
    used = torch.unique(tokenizer_for("social-reward-tiny")(["a red star on a navy background"]))
    assert record["token_embeddings_zeroed"] == int((table.abs().sum(dim=1) == 0).sum())
    assert bool((table[used].abs().sum(dim=1) > 0).all())


def test_the_command_refuses_an_empty_corpus(tmp_path):
    result = run(
        ["social-reward", "generic-backbone", "--out", str(tmp_path / "g"), "--images", "0"],
        check=False,
        env={**os.environ, "COLUMNS": "200"},  # click's message on one line
    )
    assert result.returncode == 2
    assert "Invalid value for '--images': Input should be greater than or equal to 1" in (
        result.stderr
    )
    assert not (tmp_path / "g").exists()
