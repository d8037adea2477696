"""The generator evaluation's figures on inputs whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from social_reward.generator.metrics import (
    best_of_n_wins,
    diversity,
    prompt_consistency,
    win_rate,
)


def test_win_rate_counts_ties_half_and_its_interval_holds_it():
    tuned = np.array([2.0, 2.0, 1.0, 1.0])
    base = np.array([1.0, 1.0, 1.0, 3.0])
    result = win_rate(tuned, base, [0, 0, 1, 1], resamples=200, seed=0, level=0.9)
    assert result["win_rate"] == pytest.approx(0.625)
    assert result["low"] <= result["win_rate"] <= result["high"]
    assert result["mean_tuned"] == 1.5 and result["mean_base"] == 1.5


def test_prompt_consistency_is_one_for_a_perfect_scorer_and_half_for_a_constant():
    prompt_of_image = np.array([0, 0, 1, 1, 2])
    perfect = np.where(np.arange(3)[:, None] == prompt_of_image[None, :], 1.0, 0.0)
    assert prompt_consistency(perfect, prompt_of_image) == 1.0
    assert prompt_consistency(np.zeros((3, 5)), prompt_of_image) == 0.5
    assert prompt_consistency(1 - perfect, prompt_of_image) == 0.0


def test_diversity_is_zero_for_copies_and_grows_with_spread():
    prompt_of_image = np.array([0, 0, 0, 1, 1, 1])
    copies = torch.zeros(6, 3, 4, 4)
    embeddings = torch.ones(6, 8)
    measured = diversity(copies, embeddings, prompt_of_image)
    assert measured == pytest.approx({"pixel": 0.0, "embedding": 0.0}, abs=1e-12)
    spread = torch.stack([torch.full((3, 4, 4), v) for v in (0.0, 0.5, 1.0, 0.0, 0.5, 1.0)])
    other = torch.eye(8)[:6]
    measured = diversity(spread, other, prompt_of_image)
    assert measured["pixel"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert measured["embedding"] == pytest.approx(1.0)


def test_best_of_n_wins_compares_the_rewards_pick_with_every_other_member():
    groups = np.array([0, 0, 0, 1, 1, 1])
    reward = np.array([0.9, 0.1, 0.2, 0.1, 0.8, 0.3])
    judge = np.array([3.0, 1.0, 2.0, 5.0, 4.0, 4.0])
    # group 0: pick beats both (1.0); group 1: pick loses to one, ties one (0.25)
    assert best_of_n_wins(reward, judge, groups) == pytest.approx((1.0 + 0.25) / 2)
