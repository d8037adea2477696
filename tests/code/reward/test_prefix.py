"""Frozen prefix + trainable suffix = the tower's own forward, for every split point."""

import pytest
import torch

from social_reward.reward.backbone import (
    DEFAULT_BACKBONE,
    build_backbone,
    tokenizer_for,
    unlock,
    vision_blocks,
)
from social_reward.reward.prefix import (
    encode_image_prefix,
    encode_image_suffix,
    encode_text_prefix,
    encode_text_suffix,
    frozen_block_count,
)

TOWERS = (DEFAULT_BACKBONE, "social-reward-tiny-vit")  # a ResNet and a ViT vision tower


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_backbone(DEFAULT_BACKBONE).eval()


@pytest.mark.parametrize("tower", TOWERS)
@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_image_prefix_then_suffix_is_encode_image(tower, share):
    torch.manual_seed(0)
    model = build_backbone(tower).eval()
    blocks = round(len(vision_blocks(model.visual)) * share)
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        split = encode_image_suffix(model, encode_image_prefix(model, images, blocks), blocks)
        whole = model.encode_image(images, normalize=True)
    assert torch.allclose(split, whole, atol=1e-5)


@pytest.mark.parametrize("blocks", [0, 2, 4])
def test_text_prefix_then_suffix_is_encode_text(model, blocks):
    text = tokenizer_for(DEFAULT_BACKBONE)(["a red star on a navy background", "a ring, 4k"])
    with torch.no_grad():
        states = encode_text_prefix(model, text, blocks)
        split = encode_text_suffix(model, states, text, blocks)
        whole = model.encode_text(text, normalize=True)
    assert torch.allclose(split, whole, atol=1e-5)


@pytest.mark.parametrize("tower", TOWERS)
def test_the_frozen_prefix_is_what_the_unlock_mode_leaves_frozen(tower):
    model = build_backbone(tower)
    blocks = len(vision_blocks(model.visual))
    unlock(model, "visual_upper_layers_textual_upper_layers")  # last 3 vision, last 2 of 4 text
    assert frozen_block_count(vision_blocks(model.visual)) == blocks - 3
    assert frozen_block_count(model.transformer.resblocks) == 2
    unlock(model, "all")
    assert frozen_block_count(vision_blocks(model.visual)) == 0
