"""Evaluation metrics on hand-made inputs with known answers, and their random parts seeded."""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from social_reward.evaluate.metrics import (
    accuracy_by_segment,
    best_of_n,
    bootstrap_interval,
    pair_outcomes,
    pair_scores,
    pairwise_accuracy,
    spearman,
    spearman_within_prompts,
    truth_pairs,
)

RESAMPLES = 2000
SEED = 7


def simulated_pairs(pairs: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs whose preferred image wins with probability `accuracy`, no ties."""
    rng = np.random.default_rng(seed)
    wins = rng.random(pairs) < accuracy
    return np.where(wins, 1.0, 0.0), np.where(wins, 0.0, 1.0)


# pairwise accuracy


def test_ties_count_half_or_correct():
    result = pairwise_accuracy([2.0, 3.0, 4.0, 5.0], [1.0, 2.0, 3.0, 5.0])
    assert result == {"accuracy": 0.875, "accuracy_ties_correct": 1.0, "ties": 0.25, "pairs": 4}
    assert pairwise_accuracy([0.0, 1.0], [1.0, 0.5])["accuracy"] == 0.5
    assert list(pair_outcomes([2.0, 1.0, 1.0], [1.0, 1.0, 2.0])) == [1.0, 0.5, 0.0]


@pytest.mark.parametrize(
    ("preferred", "other", "message"),
    [
        ([1.0, 2.0], [1.0], "2 preferred scores but 1"),
        ([], [], "no pairs"),
        ([np.nan], [0], "non-finite"),
    ],
)
def test_accuracy_rejects_bad_scores(preferred, other, message):
    with pytest.raises(ValueError, match=message):
        pairwise_accuracy(preferred, other)


# bootstrap


def test_interval_contains_estimate_and_narrows_with_more_pairs():
    widths = []
    for pairs in (200, 20_000):
        preferred, other = simulated_pairs(pairs, 0.7, SEED)
        low, high = bootstrap_interval(preferred, other, RESAMPLES, SEED)
        assert low < pairwise_accuracy(preferred, other)["accuracy"] < high
        widths.append(high - low)
    # The width shrinks as 1 / sqrt(pairs): 100 times the pairs, a tenth of the width.
    assert widths[1] == pytest.approx(widths[0] / 10, rel=0.25)


def test_interval_is_seeded_and_degenerate_when_always_right():
    preferred, other = simulated_pairs(500, 0.6, SEED)
    first = bootstrap_interval(preferred, other, RESAMPLES, seed=1)
    assert bootstrap_interval(preferred, other, RESAMPLES, seed=1) == first
    assert bootstrap_interval(preferred, other, RESAMPLES, seed=2) != first
    assert bootstrap_interval([1.0, 2.0], [0.0, 1.0], RESAMPLES, SEED) == (1.0, 1.0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval(preferred, other, RESAMPLES, SEED, level=1.0)


def test_cluster_bootstrap_is_wider_for_clustered_pairs():
    # Each prompt's pairs are all right or all wrong: 50 prompts are 50 observations, not 1000.
    rng = np.random.default_rng(SEED)
    prompt_right = rng.random(50) < 0.7
    clusters = np.repeat(np.arange(50), 20)
    preferred = np.where(prompt_right[clusters], 1.0, 0.0)
    other = 1.0 - preferred
    pair_low, pair_high = bootstrap_interval(preferred, other, RESAMPLES, SEED)
    low, high = bootstrap_interval(preferred, other, RESAMPLES, SEED, clusters=clusters)
    assert high - low > 3 * (pair_high - pair_low)
    assert low < preferred.mean() < high


def test_count_draws_match_resampling_indices():
    # Drawing counts of cluster kinds is the same distribution as resampling clusters.
    rng = np.random.default_rng(SEED)
    clusters = rng.integers(0, 40, size=400)
    preferred = rng.normal(size=400) + 0.3 * (clusters % 3)
    other = rng.normal(size=400)
    other[:40] = preferred[:40]  # some ties
    level = 0.9
    low, high = bootstrap_interval(preferred, other, 8000, SEED, level=level, clusters=clusters)

    outcomes = pair_outcomes(preferred, other)
    sums, sizes = np.bincount(clusters, weights=outcomes), np.bincount(clusters)
    drawn = rng.integers(0, sizes.size, size=(8000, sizes.size))
    naive = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    expected = np.quantile(naive, [(1 - level) / 2, (1 + level) / 2])
    assert (low, high) == pytest.approx(tuple(expected), abs=0.01)


# truth pairs


@pytest.fixture
def connection():
    connection = duckdb.connect()
    images = pd.DataFrame(
        {
            "image_id": ["a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2"],
            "prompt_key": ["a", "a", "a", "a", "b", "b", "c", "c"],
            "appeal": [3.0, 1.0, 2.0, 2.0, 1.0, 1.0, 5.0, None],
        }
    )
    connection.register("images", images)
    yield connection
    connection.close()


def test_truth_pairs_are_oriented_and_skip_equal_appeal(connection):
    pairs = truth_pairs(connection, seed=SEED)
    assert list(pairs.columns) == ["prompt_key", "better_id", "worse_id"]
    assert list(pairs.itertuples(index=False, name=None)) == [
        ("a", "a1", "a2"),
        ("a", "a1", "a3"),
        ("a", "a1", "a4"),
        ("a", "a3", "a2"),
        ("a", "a4", "a2"),
    ]


def test_truth_pairs_cap_is_a_seeded_sample(connection):
    everything = set(truth_pairs(connection, seed=SEED).itertuples(index=False, name=None))
    samples = []
    for seed in range(8):
        capped = truth_pairs(connection, seed=seed, max_pairs_per_prompt=2)
        assert capped.equals(truth_pairs(connection, seed=seed, max_pairs_per_prompt=2))
        sample = frozenset(capped.itertuples(index=False, name=None))
        assert len(sample) == 2 and sample <= everything
        samples.append(sample)
    assert len(set(samples)) > 1  # the seed decides which pairs are kept
    assert len(truth_pairs(connection, seed=SEED, max_pairs_per_prompt=10)) == len(everything)
    with pytest.raises(ValueError, match="positive"):
        truth_pairs(connection, seed=SEED, max_pairs_per_prompt=0)


# rank correlation


def test_spearman_of_a_monotone_transform_is_one():
    x = np.random.default_rng(SEED).normal(size=50)
    assert spearman(x, 3 * np.exp(x) + 1) == pytest.approx(1.0)
    assert spearman(x, -(x**3)) == pytest.approx(-1.0)
    assert math.isnan(spearman(x, np.ones_like(x)))


def test_spearman_within_prompts_ignores_offsets_and_small_prompts():
    groups = np.repeat(["p", "q", "r"], [4, 5, 2])
    appeal = np.array([1, 2, 3, 4, 5, 4, 3, 2, 1, 1, 2], dtype=float)
    # Within p and q the order is right, but p's scores sit far below q's.
    scores = appeal + np.select([groups == "p", groups == "q"], [-100.0, 100.0], 0.0)
    scores[groups == "r"] = [2.0, 1.0]  # r: wrong, but has fewer than 3 images
    assert spearman_within_prompts(scores, appeal, groups) == pytest.approx(1.0)
    assert spearman(scores, appeal) < 1.0
    assert math.isnan(spearman_within_prompts(scores[-2:], appeal[-2:], groups[-2:]))


def test_spearman_within_prompts_matches_scipy_weighted_by_images():
    rng = np.random.default_rng(SEED)
    groups = rng.integers(0, 30, size=400)
    appeal = rng.normal(size=400)
    scores = np.round(appeal + rng.normal(size=400), 1)  # rounding makes ties
    expected, weights = [], []
    for group in np.unique(groups):
        inside = groups == group
        if inside.sum() >= 3:
            expected.append(spearmanr(scores[inside], appeal[inside]).statistic)
            weights.append(inside.sum())
    assert spearman_within_prompts(scores, appeal, groups) == pytest.approx(
        np.average(expected, weights=weights)
    )


# best of n


def prompts_of(count: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=count * size), np.repeat(np.arange(count), size)


def test_best_of_n_perfect_scorer_always_picks_the_best():
    appeal, groups = prompts_of(50, 6, SEED)
    result = best_of_n(appeal * 2, appeal, groups, n=4, draws=20, seed=SEED)
    assert result["top1"] == 1.0
    assert result["mean_rank_of_pick"] == 1.0
    assert (result["chance"], result["chance_rank"]) == (0.25, 2.5)
    assert (result["prompts"], result["subsets"]) == (50, 1000)


@pytest.mark.parametrize("tied", [False, True])
def test_best_of_n_random_or_constant_scorer_is_at_chance(tied):
    # 20,000 subsets: the standard error of top1 is about 0.003 (a little more from
    # subsets of one prompt sharing images); a constant scorer is saved by the random
    # tie-break.
    n = 4
    appeal, groups = prompts_of(2000, 6, SEED)
    scores = np.zeros_like(appeal) if tied else np.random.default_rng(1).normal(size=appeal.size)
    result = best_of_n(scores, appeal, groups, n=n, draws=10, seed=SEED)
    assert result["top1"] == pytest.approx(1 / n, abs=0.02)
    assert result["mean_rank_of_pick"] == pytest.approx((n + 1) / 2, abs=0.05)


def test_best_of_n_is_seeded_and_skips_small_prompts():
    appeal, groups = prompts_of(30, 5, SEED)
    groups = np.concatenate([groups, [99, 99]])  # a prompt with too few images
    appeal = np.concatenate([appeal, [0.0, 1.0]])
    scores = appeal + np.random.default_rng(2).normal(size=appeal.size)
    first = best_of_n(scores, appeal, groups, n=3, draws=15, seed=SEED)
    assert first["prompts"] == 30
    assert best_of_n(scores, appeal, groups, n=3, draws=15, seed=SEED) == first
    # Blocks of any size draw the same random stream, so give the same result.
    small_blocks = best_of_n(scores, appeal, groups, n=3, draws=15, seed=SEED, chunk_elements=50)
    assert small_blocks == first
    assert best_of_n(scores, appeal, groups, n=3, draws=15, seed=SEED + 1) != first
    empty = best_of_n(scores, appeal, groups, n=6, draws=15, seed=SEED)
    assert empty["prompts"] == 0 and math.isnan(empty["top1"])


# segments and lookups


def test_accuracy_by_segment():
    segments = pd.Series(["g1", "g2", "g1", None, "g1"])
    result = accuracy_by_segment([1, 1, 0, 1, 2], [0, 1, 1, 0, 2], segments)
    assert result == {
        "g1": {"accuracy": 0.5, "pairs": 3},
        "g2": {"accuracy": 0.5, "pairs": 1},
        "missing": {"accuracy": 1.0, "pairs": 1},
    }


def test_pair_scores_looks_up_and_names_missing_ids():
    scores = pd.Series([0.1, 0.2, 0.3], index=["x", "y", "z"])
    pairs = pd.DataFrame({"pos_image_id": ["x", "z"], "neg_image_id": ["y", "x"]})
    positive, negative = pair_scores(scores, pairs)
    assert list(positive) == [0.1, 0.3] and list(negative) == [0.2, 0.1]
    pairs.loc[2] = ["w", "v"]
    with pytest.raises(KeyError, match=r"2 image id\(s\).*\['v', 'w'\]"):
        pair_scores(scores, pairs)
    with pytest.raises(ValueError, match="more than once"):
        pair_scores(pd.Series([1.0, 2.0], index=["x", "x"]), pairs)
