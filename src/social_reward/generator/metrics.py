"""What `evaluate_generator` measures: win rates, prompt consistency, diversity, best-of-N."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from social_reward.evaluate.metrics import bootstrap_interval, pair_outcomes


def win_rate(
    tuned: np.ndarray,
    base: np.ndarray,
    clusters: Sequence,
    resamples: int,
    seed: int,
    level: float,
) -> dict[str, float]:
    """Share of (prompt, seed) comparisons the tuned image wins (ties count half), with a
    bootstrap interval that resamples prompts (images of one prompt are not independent)."""
    low, high = bootstrap_interval(tuned, base, resamples, seed, level, clusters=clusters)
    return {
        "win_rate": float(pair_outcomes(tuned, base).mean()),
        "low": low,
        "high": high,
        "mean_tuned": float(np.mean(tuned)),
        "mean_base": float(np.mean(base)),
    }


def prompt_consistency(scores: np.ndarray, prompt_of_image: np.ndarray) -> float:
    """How often a prompt's score ranks an image made for it above one made for another.

    `scores[p, i]`: score of image i under prompt p. Averaged over every (p, image of p,
    image of another prompt) triple, ties counting half.
    """
    shares = []
    for prompt in range(scores.shape[0]):
        own = scores[prompt, prompt_of_image == prompt]
        other = scores[prompt, prompt_of_image != prompt]
        if own.size and other.size:
            above = (own[:, None] > other[None, :]).mean()
            tied = (own[:, None] == other[None, :]).mean()
            shares.append(above + tied / 2)
    return float(np.mean(shares))


def diversity(
    pixels: torch.Tensor, embeddings: torch.Tensor, prompt_of_image: np.ndarray
) -> dict[str, float]:
    """Mean pairwise distance between images of one prompt, averaged over prompts.

    Pixels: root mean squared difference of images in [0, 1]; embeddings: 1 - cosine.
    Collapse onto one image (reward hacking) drives both towards zero.
    """
    pixel, embedding = [], []
    flat = pixels.flatten(1).double()
    for prompt in np.unique(prompt_of_image):
        rows = torch.from_numpy(np.flatnonzero(prompt_of_image == prompt))
        if len(rows) < 2:
            continue
        upper = torch.triu_indices(len(rows), len(rows), offset=1)
        distances = torch.cdist(flat[rows], flat[rows]) / flat.shape[1] ** 0.5
        pixel.append(distances[upper[0], upper[1]].mean().item())
        normalised = torch.nn.functional.normalize(embeddings[rows].double(), dim=-1)
        cosine = normalised @ normalised.T
        embedding.append((1 - cosine[upper[0], upper[1]]).mean().item())
    return {"pixel": float(np.mean(pixel)), "embedding": float(np.mean(embedding))}


def best_of_n_wins(
    reward_scores: np.ndarray, judge_scores: np.ndarray, group_of_image: np.ndarray
) -> float:
    """How often the reward's pick of a group beats a random other member, by the judge.

    Averaged over groups and, within a group, over every other member (the expectation of
    comparing with one random sample), ties counting half.
    """
    shares = []
    for group in np.unique(group_of_image):
        rows = np.flatnonzero(group_of_image == group)
        pick = rows[np.argmax(reward_scores[rows])]
        others = judge_scores[rows[rows != pick]]
        shares.append(
            (judge_scores[pick] > others).mean() + (judge_scores[pick] == others).mean() / 2
        )
    return float(np.mean(shares))
