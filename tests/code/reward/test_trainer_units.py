"""Units of the preference trainer: batch sharding, what can be cached, the prefix cache."""

from __future__ import annotations

import pytest
import torch

from social_reward.reward.backbone import (
    DEFAULT_BACKBONE,
    build_backbone,
    tokenizer_for,
    unlock,
    vision_blocks,
)
from social_reward.reward.data import ImageBank
from social_reward.reward.prefix import encode_image_prefix, encode_text_prefix
from social_reward.reward.trainer import PrefixCache, ShardedBatchSampler, cacheable_blocks
from social_reward.reward.unlock_modes import ALL_BLOCKS, UNLOCK_MODES

SIZE, BATCH = 37, 8


def batches(world_size: int, rank: int, epoch: int = 0, shuffle: bool = True) -> list[list[int]]:
    sampler = ShardedBatchSampler(
        SIZE, BATCH, seed=3, shuffle=shuffle, rank=rank, world_size=world_size
    )
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("world_size", [2, 4])
def test_rank_slices_partition_each_global_batch_in_one_order(world_size):
    whole = batches(1, 0)
    per_rank = [batches(world_size, rank) for rank in range(world_size)]
    assert all(len(slices) == len(whole) for slices in per_rank)
    for step, batch in enumerate(whole):
        slices = [per_rank[rank][step] for rank in range(world_size)]
        assert all(len(part) == BATCH // world_size for part in slices)
        assert sorted(index for part in slices for index in part) == sorted(batch)
        # Every rank cuts the same global order: rank r holds positions r, r + N, ...
        for rank, part in enumerate(slices):
            assert part == batch[rank::world_size]


def test_training_order_is_seeded_per_epoch_and_drops_the_incomplete_batch():
    first = batches(1, 0, epoch=0)
    assert first == batches(1, 0, epoch=0)
    assert first != batches(1, 0, epoch=1)
    indices = [index for batch in first for index in batch]
    assert len(indices) == len(set(indices)) == SIZE - SIZE % BATCH
    assert len(ShardedBatchSampler(SIZE, BATCH, 0, True, 0, 2)) == len(first) == SIZE // BATCH


def test_evaluation_keeps_every_pair_in_order():
    sampler = ShardedBatchSampler(SIZE, BATCH, 0, shuffle=False, rank=0, world_size=1)
    assert [index for batch in sampler for index in batch] == list(range(SIZE))
    assert len(sampler) == -(-SIZE // BATCH) == 5
    assert batches(1, 0, epoch=0, shuffle=False) == batches(1, 0, epoch=4, shuffle=False)
    halves = [batches(2, rank, shuffle=False) for rank in range(2)]
    assert sorted(i for rank in halves for batch in rank for i in batch) == list(range(SIZE))


def test_batch_size_must_split_over_the_processes():
    with pytest.raises(ValueError, match=r"batch_size 10 must divide .* processes 4"):
        ShardedBatchSampler(SIZE, 10, 0, True, rank=0, world_size=4)


@pytest.fixture(scope="module")
def backbone() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_backbone(DEFAULT_BACKBONE).eval()


@pytest.mark.parametrize("mode", sorted(UNLOCK_MODES))
def test_cacheable_blocks_are_the_frozen_lower_blocks(backbone, mode):
    unlock(backbone, mode)
    plan = UNLOCK_MODES[mode]
    vision = len(vision_blocks(backbone.visual))
    text = len(backbone.transformer.resblocks)
    expected = (
        None if plan.vision_blocks == ALL_BLOCKS else vision - plan.vision_blocks,
        None if plan.text_blocks == ALL_BLOCKS else text - plan.text_blocks,
    )
    if plan.everything:
        expected = (None, None)
    assert cacheable_blocks(backbone) == expected


def test_prefix_cache_holds_each_view_of_each_image_and_each_prompt(backbone):
    unlock(backbone, "visual_upper_layers_textual_upper_layers")
    vision_count, text_count = cacheable_blocks(backbone)
    generator = torch.Generator().manual_seed(0)
    size = backbone.visual.preprocess_cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    bank = ImageBank(
        pixels=torch.randint(0, 256, (5, 3, *size), dtype=torch.uint8, generator=generator),
        index={f"image-{n}": n for n in range(5)},
        mean=torch.tensor(backbone.visual.preprocess_cfg["mean"]).view(3, 1, 1),
        std=torch.tensor(backbone.visual.preprocess_cfg["std"]).view(3, 1, 1),
    )
    tokenize = tokenizer_for(DEFAULT_BACKBONE)
    tokens = {"train": tokenize(["a red star", "a ring", "a fox"]), "val": tokenize(["a cat"])}
    cache = PrefixCache.compute(backbone, bank, tokens, 2, vision_count, text_count)

    context = tokens["train"].shape[1]
    assert cache.texts["train"].shape == (3, context, backbone.transformer.width)
    assert cache.texts["val"].shape == (1, context, backbone.transformer.width)
    with torch.no_grad():
        pixels = bank.normalise(bank.pixels)
        as_is = encode_image_prefix(backbone, pixels, vision_count)
        mirrored = encode_image_prefix(backbone, pixels.flip(-1), vision_count)
        prompts = encode_text_prefix(backbone, tokens["val"], text_count)
    # [views, images, ...]: per image, what the frozen lower blocks output (tokens or maps)
    assert cache.images.shape == (2, 5, *as_is.shape[1:])
    assert torch.allclose(cache.images[0], as_is, atol=1e-6)
    assert torch.allclose(cache.images[1], mirrored, atol=1e-6)
    assert torch.allclose(cache.texts["val"], prompts, atol=1e-6)
    assert (cache.vision_blocks, cache.text_blocks) == (vision_count, text_count)
