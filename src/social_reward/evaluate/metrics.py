"""Pure metric functions of the `evaluate` stage: scores in, numbers out.

Pairwise accuracy is the paper's metric; ties count half here (a scorer that cannot tell two
images apart has not chosen), with the reference code's "a tie is correct" beside it for
comparison. Intervals come from a percentile bootstrap that can resample whole prompts,
since pairs of one prompt share images and are not independent. Against a simulated
export's truth, `truth_pairs`, `spearman_within_prompts` and `best_of_n` judge a scorer on
what the generator use case needs: picking the best of several images for one prompt.
Undefined results (no eligible prompt, a constant input) are NaN rather than errors, so that
a small export still gives a metrics file.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from social_reward.data.duck import read_sql

TIE_CREDIT = 0.5  # a tie is half right: the scorer has not preferred either image
DEFAULT_LEVEL = 0.95
MIN_SPEARMAN_IMAGES = 3  # with two images a rank correlation is only ever +1 or -1
MAX_BLOCK_ELEMENTS = 2**22  # bounds the memory of one vectorised block (~32 MiB of float64)
MISSING_SEGMENT = "missing"
SHOWN_MISSING_IDS = 10  # how many missing image ids an error message names
TRUTH_PAIRS_SQL = "truth_pairs.sql"
TRUTH_PAIR_COLUMNS = ("prompt_key", "better_id", "worse_id")


def _scores(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected one score per item, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: {int((~np.isfinite(array)).sum())} non-finite value(s)")
    return array


def _paired(
    preferred_scores: Sequence[float] | np.ndarray, other_scores: Sequence[float] | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    preferred = _scores(preferred_scores, "preferred_scores")
    other = _scores(other_scores, "other_scores")
    if preferred.shape != other.shape:
        raise ValueError(f"{preferred.size} preferred scores but {other.size} other scores")
    if preferred.size == 0:
        raise ValueError("no pairs to score")
    return preferred, other


def pair_outcomes(
    preferred_scores: Sequence[float] | np.ndarray, other_scores: Sequence[float] | np.ndarray
) -> np.ndarray:
    """Per pair: 1 if the preferred image scores higher, TIE_CREDIT if equal, else 0."""
    preferred, other = _paired(preferred_scores, other_scores)
    return np.where(preferred > other, 1.0, np.where(preferred == other, TIE_CREDIT, 0.0))


def pairwise_accuracy(
    preferred_scores: Sequence[float] | np.ndarray, other_scores: Sequence[float] | np.ndarray
) -> dict[str, float | int]:
    """Share of pairs ranked right (ties half), and as the paper's code counts (ties right)."""
    preferred, other = _paired(preferred_scores, other_scores)
    outcomes = pair_outcomes(preferred, other)
    return {
        "accuracy": float(outcomes.mean()),
        "accuracy_ties_correct": float((preferred >= other).mean()),
        "ties": float((preferred == other).mean()),
        "pairs": int(preferred.size),
    }


def bootstrap_interval(
    preferred_scores: Sequence[float] | np.ndarray,
    other_scores: Sequence[float] | np.ndarray,
    resamples: int,
    seed: int,
    level: float = DEFAULT_LEVEL,
    clusters: Sequence[Hashable] | np.ndarray | pd.Series | None = None,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the tie-half accuracy, resampling pairs or clusters.

    A resample only depends on how many of each kind of cluster it draws, a kind being a
    (sum of outcomes, number of pairs) combination; so the counts of the few kinds are drawn
    from one multinomial per resample, exactly the distribution of resampling indices but
    without an index matrix (pairs alone are clusters of one with three kinds: 0, 1/2, 1).
    """
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    outcomes = pair_outcomes(preferred_scores, other_scores)
    if clusters is None:
        codes = np.arange(outcomes.size)
    else:
        codes, _ = pd.factorize(np.asarray(clusters), use_na_sentinel=False)
        if codes.size != outcomes.size:
            raise ValueError(f"{codes.size} cluster labels for {outcomes.size} pairs")
    sums = np.bincount(codes, weights=outcomes)
    sizes = np.bincount(codes).astype(np.float64)
    kinds, frequency = np.unique(np.column_stack([sums, sizes]), axis=0, return_counts=True)
    kind_sums, kind_sizes = kinds[:, 0], kinds[:, 1]
    rng = np.random.default_rng(seed)
    block = max(1, MAX_BLOCK_ELEMENTS // len(kinds))
    accuracies = np.empty(resamples)
    for start in range(0, resamples, block):
        stop = min(start + block, resamples)
        counts = rng.multinomial(sizes.size, frequency / sizes.size, size=stop - start)
        accuracies[start:stop] = (counts @ kind_sums) / (counts @ kind_sizes)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(accuracies, [tail, 1.0 - tail])
    return float(low), float(high)


def truth_pairs(
    connection: duckdb.DuckDBPyConnection, *, seed: int, max_pairs_per_prompt: int | None = None
) -> pd.DataFrame:
    """Same-prompt pairs of table `images` with different appeal, better image first.

    Columns prompt_key, better_id, worse_id (sql/truth_pairs.sql); the optional cap per
    prompt is drawn by a hash seeded with `seed`.
    """
    if max_pairs_per_prompt is not None and max_pairs_per_prompt < 1:
        raise ValueError(f"max_pairs_per_prompt must be positive, got {max_pairs_per_prompt}")
    parameters = {"seed": seed, "max_pairs_per_prompt": max_pairs_per_prompt}
    return connection.execute(read_sql(TRUTH_PAIRS_SQL), parameters).df()[list(TRUTH_PAIR_COLUMNS)]


def _constant(values: np.ndarray) -> bool:
    return values.size < 2 or bool((values == values[0]).all())


def spearman(scores: Sequence[float] | np.ndarray, appeal: Sequence[float] | np.ndarray) -> float:
    """Rank correlation of scores with true appeal; NaN when either is constant."""
    score_values, appeal_values = _scores(scores, "scores"), _scores(appeal, "appeal")
    if score_values.shape != appeal_values.shape:
        raise ValueError(f"{score_values.size} scores but {appeal_values.size} appeal values")
    if _constant(score_values) or _constant(appeal_values):
        return float("nan")
    return float(spearmanr(score_values, appeal_values).statistic)


def spearman_within_prompts(
    scores: Sequence[float] | np.ndarray,
    appeal: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | pd.Series,
    min_images: int = MIN_SPEARMAN_IMAGES,
) -> float:
    """Mean per-prompt rank correlation, weighted by images, over prompts with >= min_images.

    Across prompts the scales differ (a scorer may like one prompt's images more than
    another's), so only the order within a prompt is judged. Prompts where the scores or the
    appeal are constant have no correlation and are left out; NaN if no prompt remains.
    """
    frame = pd.DataFrame(
        {
            "group": pd.factorize(np.asarray(groups), use_na_sentinel=False)[0],
            "score": _scores(scores, "scores"),
            "appeal": _scores(appeal, "appeal"),
        }
    )
    frame = frame[frame.groupby("group")["group"].transform("size") >= min_images]
    if frame.empty:
        return float("nan")
    # Spearman's rho is Pearson's r on average ranks, computed here for all prompts at once.
    by_group = frame.groupby("group")
    ranks = pd.DataFrame(
        {column: by_group[column].rank(method="average") for column in ("score", "appeal")}
    )
    centred = ranks - ranks.groupby(frame["group"]).transform("mean")
    sums = (
        pd.DataFrame(
            {
                "cross": centred["score"] * centred["appeal"],
                "score": centred["score"] ** 2,
                "appeal": centred["appeal"] ** 2,
                "images": 1,
            }
        )
        .groupby(frame["group"])
        .sum()
    )
    defined = (sums["score"] > 0) & (sums["appeal"] > 0)
    if not defined.any():
        return float("nan")
    sums = sums[defined]
    rho = sums["cross"] / np.sqrt(sums["score"] * sums["appeal"])
    return float(np.average(rho, weights=sums["images"]))


def best_of_n(
    scores: Sequence[float] | np.ndarray,
    appeal: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray | pd.Series,
    n: int,
    draws: int,
    seed: int,
    chunk_elements: int = MAX_BLOCK_ELEMENTS,
) -> dict[str, float | int]:
    """How well the scorer picks the best of n images of one prompt, as a generator would.

    Per prompt with >= n images, `draws` random n-subsets; the scorer picks its top image
    (ties broken by the subset's random order). `top1`: share of picks with the subset's
    highest appeal; `mean_rank_of_pick`: 1 + images of the subset with strictly higher
    appeal, averaged (1 = best, chance (n + 1) / 2); `chance`: 1 / n. Every prompt weighs
    the same. NaN and `prompts` 0 when no prompt has n images.
    """
    if n < 1 or draws < 1:
        raise ValueError(f"n and draws must be positive, got n={n}, draws={draws}")
    score_values, appeal_values = _scores(scores, "scores"), _scores(appeal, "appeal")
    codes = pd.factorize(np.asarray(groups), use_na_sentinel=False)[0]
    if not score_values.size == appeal_values.size == codes.size:
        raise ValueError(
            f"{score_values.size} scores, {appeal_values.size} appeal values and "
            f"{codes.size} groups: expected one of each per image"
        )
    order = np.argsort(codes, kind="stable")
    sizes = np.bincount(codes)
    starts = np.cumsum(sizes) - sizes
    rng = np.random.default_rng(seed)
    top1_hits, rank_total, subsets, prompts = 0, 0, 0, 0
    for size in np.unique(sizes[sizes >= n]):
        # Prompts of one size form a matrix of image indices, handled a block at a time.
        members = order[starts[sizes == size][:, None] + np.arange(size)]
        block = max(1, chunk_elements // (draws * int(size)))
        for first in range(0, len(members), block):
            chosen = members[first : first + block]
            keys = rng.random((len(chosen), draws, int(size)))
            positions = np.argsort(keys, axis=-1)[..., :n]  # a random subset, in random order
            subset = chosen[np.arange(len(chosen))[:, None, None], positions]
            subset_appeal = appeal_values[subset]
            pick = np.argmax(score_values[subset], axis=-1)  # first top score: random on ties
            pick_appeal = np.take_along_axis(subset_appeal, pick[..., None], axis=-1)
            ranks = 1 + (subset_appeal > pick_appeal).sum(axis=-1)
            top1_hits += int((ranks == 1).sum())
            rank_total += int(ranks.sum())
            subsets += ranks.size
        prompts += len(members)
    return {
        "top1": top1_hits / subsets if subsets else float("nan"),
        "mean_rank_of_pick": rank_total / subsets if subsets else float("nan"),
        "chance": 1.0 / n,
        "chance_rank": (n + 1) / 2.0,
        "n": n,
        "prompts": prompts,
        "subsets": subsets,
    }


def accuracy_by_segment(
    preferred_scores: Sequence[float] | np.ndarray,
    other_scores: Sequence[float] | np.ndarray,
    segments: pd.Series,
) -> dict[str, dict[str, float | int]]:
    """Tie-half accuracy and pair count per segment value (e.g. generator, reach bucket).

    Segments are matched to pairs by position; a missing segment is reported as
    MISSING_SEGMENT rather than dropped, so that the counts add up to all pairs.
    """
    outcomes = pair_outcomes(preferred_scores, other_scores)
    if len(segments) != outcomes.size:
        raise ValueError(f"{len(segments)} segment labels for {outcomes.size} pairs")
    labels = segments.astype("string").fillna(MISSING_SEGMENT).to_numpy()
    summary = pd.Series(outcomes).groupby(labels, sort=True).agg(["mean", "size"])
    return {
        str(segment): {"accuracy": float(row["mean"]), "pairs": int(row["size"])}
        for segment, row in summary.iterrows()
    }


def pair_scores(scores_by_image: pd.Series, pairs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The scores of each pair's positive and negative image, looked up by image id.

    Raises KeyError naming the image ids without a score: a scorer that silently skipped
    images would otherwise be judged on fewer pairs than its peers.
    """
    index = scores_by_image.index
    if not index.is_unique:
        duplicated = list(index[index.duplicated()].unique()[:SHOWN_MISSING_IDS])
        raise ValueError(f"scores given more than once for image id(s) {duplicated}")
    ids = {column: pairs[column].to_numpy() for column in ("pos_image_id", "neg_image_id")}
    positions = {column: index.get_indexer(values) for column, values in ids.items()}
    missing = pd.unique(np.concatenate([ids[column][positions[column] < 0] for column in ids]))
    if missing.size:
        raise KeyError(
            f"no score for {missing.size} image id(s) of the pairs: "
            f"{sorted(map(str, missing))[:SHOWN_MISSING_IDS]}"
        )
    values = scores_by_image.to_numpy(dtype=np.float64)
    return values[positions["pos_image_id"]], values[positions["neg_image_id"]]
