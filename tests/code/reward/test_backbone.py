"""open_clip backbones: the small default, saving and loading through the real path, and
unlock modes that really freeze what they do not train."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from social_reward.reward.backbone import (
    DEFAULT_BACKBONE,
    ROW_INDEX_SUFFIX,
    SPARSE_ROWS_METADATA,
    UNLOCK_MODES,
    WEIGHTS_FILE,
    BackboneError,
    build_backbone,
    load_saved_backbone,
    save_backbone,
    tokenizer_for,
    unlock,
    vision_blocks,
)

# The default (a small ResNet vision tower) and a small ViT: unlock modes and the frozen
# prefix must mean the same on either kind of tower.
TOWERS = (DEFAULT_BACKBONE, "social-reward-tiny-vit")


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    return build_backbone(DEFAULT_BACKBONE)


def test_the_default_backbone_encodes_prompts_and_images(backbone):
    tokens = tokenizer_for(DEFAULT_BACKBONE)(["a red star on a navy background", "a ring"])
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        text = backbone.encode_text(tokens, normalize=True)
        image = backbone.encode_image(images, normalize=True)
    assert text.shape == image.shape == (2, 128)
    assert torch.allclose(text.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_saved_weights_load_back_through_the_pretrained_path(backbone, tmp_path):
    folder = save_backbone(backbone, DEFAULT_BACKBONE, tmp_path / "backbone")
    loaded, name = load_saved_backbone(folder)
    assert name == DEFAULT_BACKBONE
    for (key, original), (_, again) in zip(
        backbone.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(original, again), key
    # The same file given directly as `pretrained`, as params.yaml would.
    direct = build_backbone(DEFAULT_BACKBONE, folder / "open_clip_model.safetensors")
    assert torch.equal(direct.logit_scale, backbone.logit_scale)


def test_a_table_saved_by_its_non_zero_rows_loads_back_whole(backbone, tmp_path):
    table = "token_embedding.weight"
    sparse = build_backbone(DEFAULT_BACKBONE)
    sparse.load_state_dict(backbone.state_dict())
    with torch.no_grad():
        sparse.token_embedding.weight[100:] = 0.0
    dense_file = save_backbone(sparse, DEFAULT_BACKBONE, tmp_path / "dense") / WEIGHTS_FILE
    folder = save_backbone(sparse, DEFAULT_BACKBONE, tmp_path / "sparse", sparse_rows=(table,))
    stored = load_file(folder / WEIGHTS_FILE)
    assert stored[table].shape[0] == 100
    assert torch.equal(stored[table + ROW_INDEX_SUFFIX], torch.arange(100))
    assert (folder / WEIGHTS_FILE).stat().st_size < dense_file.stat().st_size / 2
    loaded, _ = load_saved_backbone(folder)
    for key, value in sparse.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    # A file that names a sparse table but lost its row index is refused, not half-loaded.
    del stored[table + ROW_INDEX_SUFFIX]
    metadata = {SPARSE_ROWS_METADATA: json.dumps({table: 49408})}
    save_file(stored, folder / WEIGHTS_FILE, metadata=metadata)
    with pytest.raises(BackboneError, match="weights do not fit social-reward-tiny"):
        load_saved_backbone(folder)


def test_loading_errors_name_the_file_and_the_rule(tmp_path):
    with pytest.raises(BackboneError, match="weights file missing"):
        build_backbone(DEFAULT_BACKBONE, tmp_path / "nothing.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no weights file in the folder"):
        build_backbone(DEFAULT_BACKBONE, tmp_path / "empty")
    with pytest.raises(BackboneError, match="not an open_clip architecture"):
        build_backbone("ViT-Nonexistent")
    with pytest.raises(BackboneError, match="not a folder written by save_backbone"):
        load_saved_backbone(tmp_path / "empty")


def test_weights_of_another_architecture_are_refused(backbone, tmp_path):
    folder = save_backbone(backbone, DEFAULT_BACKBONE, tmp_path / "tiny")
    with pytest.raises(BackboneError, match="weights do not fit ViT-B-32"):
        build_backbone("ViT-B-32", folder)


@pytest.mark.parametrize("tower", TOWERS)
@pytest.mark.parametrize("mode", sorted(UNLOCK_MODES))
def test_unlock_modes_train_what_they_name_and_freeze_the_rest(mode, tower):
    torch.manual_seed(0)
    model = build_backbone(tower)
    trained = set(unlock(model, mode))
    names = {name for name, _ in model.named_parameters()}
    plan = UNLOCK_MODES[mode]
    if plan.everything:
        assert trained == names
        return
    by_block = {
        id(parameter): index
        for index, block in enumerate(vision_blocks(model.visual))
        for parameter in block.parameters()
    }
    blocks = len(vision_blocks(model.visual))
    unlocked = {
        by_block[id(parameter)]
        for name, parameter in model.named_parameters()
        if name in trained and id(parameter) in by_block
    }
    expected = blocks if plan.vision_blocks == -1 else plan.vision_blocks
    assert unlocked == set(range(blocks - expected, blocks))
    head = "visual.attnpool.c_proj.weight" if tower == DEFAULT_BACKBONE else "visual.ln_post.weight"
    assert (head in trained) == (plan.vision_blocks != 0)
    text_blocks = {n for n in names if n.startswith("transformer.resblocks.")}
    assert bool(text_blocks & trained) == (plan.text_blocks > 0)
    assert ("text_projection" in trained) == (plan.text_blocks > 0)
    assert "token_embedding.weight" not in trained
    assert "logit_scale" not in trained


@pytest.mark.parametrize("tower", TOWERS)
def test_frozen_parameters_do_not_change_in_a_training_step(tower):
    torch.manual_seed(0)
    model = build_backbone(tower)
    trained = set(unlock(model, "visual_upper_layers_textual_upper_layers"))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2)  # every parameter offered
    tokens = tokenizer_for(tower)(["a red star", "a blue ring"])
    loss = -(
        model.encode_text(tokens, normalize=True)
        * model.encode_image(torch.rand(2, 3, 64, 64), normalize=True)
    ).sum()
    loss.backward()
    optimiser.step()
    changed = {
        name
        for name, parameter in model.named_parameters()
        if not torch.equal(before[name], parameter.detach())
    }
    assert changed <= trained, sorted(changed - trained)  # nothing frozen moved
    # A zero-initialised bias may get an exactly zero gradient; nearly all trained ones move.
    assert len(changed) > 0.8 * len(trained)


def test_an_unknown_unlock_mode_lists_the_known_ones(backbone):
    with pytest.raises(BackboneError, match="visual_upper_layers"):
        unlock(backbone, "upper")
