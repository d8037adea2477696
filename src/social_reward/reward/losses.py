"""Preference losses on (prompt, preferred image, other image) embeddings, all normalised.

`triplet`: the paper's loss; the prompt embedding is the anchor, squared Euclidean distance,
margin 0.3 by default. `bradley_terry`: the pairwise logistic loss of ImageReward and
PickScore on the scaled cosine scores.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

DEFAULT_MARGIN = 0.3  # the paper's


def squared_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    return (first - second).pow(2).sum(dim=-1)


def triplet_loss(
    prompt: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    logit_scale: torch.Tensor | None = None,
    margin: float = DEFAULT_MARGIN,
) -> torch.Tensor:
    """max(0, d(prompt, positive) - d(prompt, negative) + margin), averaged."""
    return F.triplet_margin_with_distance_loss(
        prompt, positive, negative, distance_function=squared_distance, margin=margin
    )


def bradley_terry_loss(
    prompt: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    logit_scale: torch.Tensor | None = None,
    margin: float = DEFAULT_MARGIN,
) -> torch.Tensor:
    """-log sigmoid(scale * (cos(prompt, positive) - cos(prompt, negative))), averaged."""
    scale = logit_scale.exp() if logit_scale is not None else torch.tensor(1.0)
    difference = scale * ((prompt * positive).sum(-1) - (prompt * negative).sum(-1))
    return F.binary_cross_entropy_with_logits(difference, torch.ones_like(difference))


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "triplet": triplet_loss,
    "bradley_terry": bradley_terry_loss,
}
