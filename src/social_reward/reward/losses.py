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


def score_margin(
    prompt: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor
) -> torch.Tensor:
    """Per pair: cos(prompt, positive) - cos(prompt, negative), embeddings normalised."""
    return (prompt * positive).sum(-1) - (prompt * negative).sum(-1)


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
    difference = scale * score_margin(prompt, positive, negative)
    return F.binary_cross_entropy_with_logits(difference, torch.ones_like(difference))


LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "triplet": triplet_loss,
    "bradley_terry": bradley_terry_loss,
}


def neutrality_penalty(
    prompt: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor, sides: torch.Tensor
) -> torch.Tensor:
    """Sum over confounders of the squared mean score gap toward one side of it.

    `sides` [pairs, confounders] holds the positive's side of each confounder (+1, -1; 0 when
    both images share it). The pairs across a confounder are built with as many won by each
    side, so a reward neutral to the confounder's visible trace has a mean signed margin near
    0 over them, whatever it learned from the images. The square of that mean is estimated
    without bias by the product of the means of two halves of the pairs (the square of one
    noisy mean would also shrink every margin across the confounder); confounders with fewer
    than 2 such pairs in the batch add nothing.
    """
    margin = score_margin(prompt, positive, negative)
    penalty = margin.new_zeros(())
    for side in sides.T:
        across = side != 0
        if across.sum() < 2:
            continue
        toward = side[across] * margin[across]
        penalty = penalty + toward[0::2].mean() * toward[1::2].mean()
    return penalty
