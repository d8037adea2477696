"""Frozen-prefix computation: the towers split at the first block that trains.

When the lower blocks of a tower are frozen (an unlock mode), their output for a given image
or prompt never changes during training. `encode_*_prefix` computes it once (to be cached);
`encode_*_suffix` runs the trainable upper blocks on it. suffix(prefix(x)) is the tower's
own forward, so cached and uncached training score alike (tested against open_clip's
encode_image / encode_text). Image augmentation would change the prefix: a cached trainer
works on fixed preprocessed images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from open_clip.model import text_global_pool

from social_reward.reward.backbone import is_resnet, vision_blocks


def frozen_block_count(blocks: list[torch.nn.Module] | torch.nn.ModuleList) -> int:
    """How many blocks, from the bottom, have no trainable parameter."""
    count = 0
    for block in blocks:
        if any(parameter.requires_grad for parameter in block.parameters()):
            break
        count += 1
    return count


def _run_blocks(
    transformer: torch.nn.Module,
    x: torch.Tensor,
    start: int,
    stop: int | None,
    attn_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    # open_clip towers are batch-first or not; the split keeps the tower's own layout.
    if not transformer.batch_first:
        x = x.transpose(0, 1)
    for block in list(transformer.resblocks)[start:stop]:
        x = block(x, attn_mask=attn_mask)
    if not transformer.batch_first:
        x = x.transpose(0, 1)
    return x


def encode_image_prefix(model: torch.nn.Module, images: torch.Tensor, blocks: int) -> torch.Tensor:
    """Tokens (or feature maps) after the embeddings (or stem) and the first `blocks` blocks."""
    visual = model.visual
    if is_resnet(visual):
        x = visual.stem(images)
        for block in vision_blocks(visual)[:blocks]:
            x = block(x)
        return x
    return _run_blocks(visual.transformer, visual._embeds(images), 0, blocks)


def encode_image_suffix(
    model: torch.nn.Module, tokens: torch.Tensor, blocks: int, normalize: bool = True
) -> torch.Tensor:
    """The image embedding from prefix tokens: the remaining blocks, pooling, projection."""
    visual = model.visual
    if is_resnet(visual):
        for block in vision_blocks(visual)[blocks:]:
            tokens = block(tokens)
        pooled = visual.attnpool(tokens)
    else:
        pooled, _ = visual._pool(_run_blocks(visual.transformer, tokens, blocks, None))
        if visual.proj is not None:
            pooled = pooled @ visual.proj
    return F.normalize(pooled, dim=-1) if normalize else pooled


def encode_text_prefix(model: torch.nn.Module, text: torch.Tensor, blocks: int) -> torch.Tensor:
    """Token states of the prompts after the embeddings and the first `blocks` text blocks."""
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype) + model.positional_embedding.to(cast_dtype)
    return _run_blocks(model.transformer, x, 0, blocks, model.attn_mask)


def encode_text_suffix(
    model: torch.nn.Module,
    states: torch.Tensor,
    text: torch.Tensor,
    blocks: int,
    normalize: bool = True,
) -> torch.Tensor:
    """The prompt embedding from prefix states: the remaining blocks, pooling, projection."""
    x = model.ln_final(_run_blocks(model.transformer, states, blocks, None, model.attn_mask))
    x = text_global_pool(
        x, text, model.text_pool_type, eos_token_id=getattr(model, "text_eos_id", None)
    )
    if model.text_projection is not None:
        if isinstance(model.text_projection, torch.nn.Linear):
            x = model.text_projection(x)
        else:
            x = x @ model.text_projection
    return F.normalize(x, dim=-1) if normalize else x
