"""Every scorer side by side on the test split (stage `evaluate`): the scorers are built
(`build_scorers`), every test image is scored once, and the scores are compared on the
remix-labelled test pairs (overall and by segment) and, where a truth file exists, on true
appeal, in the confounder audit and against the ablation. `evaluate_rewards` returns the
metrics and what the reports (`evaluate/report.py`) draw from.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from social_reward.artifacts import (
    ABLATION_DIR,
    IMAGE_SPLITS_FILE,
    TEST_SPLIT,
    TRAIN_SPLIT,
    read_modes,
    split_file,
)
from social_reward.config.evaluate import EvaluateConfig
from social_reward.data.duck import connect, open_export, read_sql, register_parquet
from social_reward.data.truth import read_truth
from social_reward.evaluate import metrics as M
from social_reward.evaluate.audit import is_image_scorer
from social_reward.evaluate.diagnostics import clear_pair_mask, probe_scores
from social_reward.evaluate.scorers import ColumnScorer, RandomScorer, RewardScorer, Scorer

REWARD = "social_reward"
CLIP_SCORE = "clip_score"
# Segment edges: creators' followers and the images made for a prompt in the export.
REACH_EDGES = (100, 1000)
POPULARITY_EDGES = (10, 100)


def _bucket(values: pd.Series, edges: tuple[int, ...]) -> pd.Series:
    labels = [f"<{edges[0]}"]
    labels += [f"{low}-{high - 1}" for low, high in itertools.pairwise(edges)]
    labels += [f">={edges[-1]}"]
    return pd.Series(
        pd.cut(values, [-np.inf, *edges, np.inf], right=False, labels=labels).astype(str),
        index=values.index,
    )


def evaluation_images(connection: duckdb.DuckDBPyConnection, pairs_dir: Path) -> pd.DataFrame:
    """Train and test images with their split, prompt, file and engagement columns, from an
    export opened with `duck.open_export`."""
    register_parquet(connection, "image_splits", pairs_dir / IMAGE_SPLITS_FILE)
    return connection.sql(read_sql("evaluation_images.sql")).df()


def ablation_name(config: EvaluateConfig) -> str:
    return f"{read_modes(config.pairs_dir)[ABLATION_DIR]}_pairs_reward"


def build_scorers(config: EvaluateConfig) -> tuple[list[Scorer], Scorer | None]:
    """The scorers of the table, and the ablation's reward (None when it was not trained)."""
    from social_reward.evaluate.external import build_external_scorers
    from social_reward.reward.backbone import load_saved_backbone
    from social_reward.reward.model import SocialReward

    backbone, name = load_saved_backbone(config.backbone_dir)
    scorers: list[Scorer] = [
        RewardScorer(REWARD, SocialReward.from_pretrained(config.reward_dir, config.batch_size)),
        RewardScorer(CLIP_SCORE, SocialReward(backbone, name, batch_size=config.batch_size)),
        RandomScorer(config.seed),
        ColumnScorer("creator_followers", "creator_followers"),
        ColumnScorer("exposure", "exposure_days"),
    ]
    scorers += build_external_scorers(config.external.model_dump(), batch_size=config.batch_size)
    ablation = None
    if config.ablation_dir.is_dir():
        ablation = RewardScorer(
            ablation_name(config),
            SocialReward.from_pretrained(config.ablation_dir, config.batch_size),
        )
    return scorers, ablation


def score_images(scorers: list[Scorer], images: pd.DataFrame) -> pd.DataFrame:
    """One column per scorer, one row per image (indexed by image_id)."""
    items = images.assign(image=images["path"])
    return pd.DataFrame(
        {scorer.name: scorer.score(items) for scorer in scorers},
        index=pd.Index(images["image_id"], name="image_id"),
    )


def accuracy_table(
    scores: pd.DataFrame,
    better: pd.Series,
    worse: pd.Series,
    config: EvaluateConfig,
    prompts: pd.Series,
) -> dict[str, dict]:
    """Per scorer: accuracy (ties half, ties correct), and its bootstrap interval. Prompts
    are resampled, not pairs: a prompt's pairs share images and rise or fall together."""
    table = {}
    for name in scores.columns:
        pos = scores[name].loc[better].to_numpy()
        neg = scores[name].loc[worse].to_numpy()
        low, high = M.bootstrap_interval(
            pos,
            neg,
            config.bootstrap_resamples,
            config.seed,
            config.level,
            clusters=prompts.to_numpy(),
        )
        table[name] = {**M.pairwise_accuracy(pos, neg), "low": low, "high": high}
    return table


@dataclass(frozen=True)
class RewardEvaluation:
    """The metrics, and what the reports draw from."""

    metrics: dict
    train_scores: pd.DataFrame  # image scorers on the train images: the reports' reference
    test_scores: pd.DataFrame  # every scorer on the test images
    test_images: pd.DataFrame
    truth: pd.DataFrame | None


def evaluate_rewards(config: EvaluateConfig) -> RewardEvaluation:
    """Every scorer on the test split: remix pairs, segments and, with truth, true appeal,
    the confounder audit and the ablation."""
    scorers, ablation = build_scorers(config)
    connection, manifest = open_export(config.validated_dir)
    images = evaluation_images(connection, config.pairs_dir)
    test_images = images[images["split"] == TEST_SPLIT].reset_index(drop=True)
    rewards = [*scorers, *([ablation] if ablation else [])]
    scores = score_images(rewards, test_images)
    table_names = [scorer.name for scorer in scorers]

    pairs = pd.read_parquet(split_file(config.pairs_dir, TEST_SPLIT))
    remix = accuracy_table(
        scores[table_names], pairs["pos_image_id"], pairs["neg_image_id"], config, pairs["prompt"]
    )
    by_image = test_images.set_index("image_id")
    positive = by_image.loc[pairs["pos_image_id"]]
    segments = {
        "creator_reach": _bucket(positive["creator_followers"], REACH_EDGES),
        "prompt_popularity": _bucket(positive["prompt_images"], POPULARITY_EDGES),
        "generator": positive["generator"].astype(str),
    }
    by_segment = {
        name: {
            segment: M.accuracy_by_segment(
                scores[name].loc[pairs["pos_image_id"]].to_numpy(),
                scores[name].loc[pairs["neg_image_id"]].to_numpy(),
                values.reset_index(drop=True),
            )
            for segment, values in segments.items()
        }
        for name in (REWARD, CLIP_SCORE)
    }
    metrics: dict = {
        "remix_pairs": {"pairs": len(pairs), "scorers": remix},
        "segments": by_segment,
    }

    train_images = images[images["split"] == TRAIN_SPLIT].reset_index(drop=True)
    truth = read_truth(config.truth, manifest)
    if truth is not None:
        pairs_with_truth = truth_pairs(config, test_images, truth)
        metrics["truth"], metrics["audit"] = truth_metrics(
            config, pairs_with_truth, scores, rewards
        )
        metrics["diagnostics"] = diagnostics(
            config, train_images, pairs_with_truth, scores, truth, rewards
        )
        if ablation is not None:
            modes = read_modes(config.pairs_dir)
            metrics["ablation"] = {
                modes[variant]: {
                    "truth_accuracy": metrics["truth"]["scorers"][name]["accuracy"],
                    "low": metrics["truth"]["scorers"][name]["low"],
                    "high": metrics["truth"]["scorers"][name]["high"],
                    "trace_preference": {
                        trace: by_scorer[name]["preference"]
                        for trace, by_scorer in metrics["audit"].items()
                    },
                }
                for variant, name in (("main", REWARD), (ABLATION_DIR, ablation.name))
            }
    image_scorers = [scorer for scorer in scorers if is_image_scorer(scorer)]
    return RewardEvaluation(
        metrics,
        train_scores=score_images(image_scorers, train_images),
        test_scores=scores,
        test_images=test_images,
        truth=truth,
    )


@dataclass(frozen=True)
class TruthPairs:
    """The test split's same-prompt image pairs whose true appeal differs, better first."""

    images: pd.DataFrame  # test images with their truth columns
    oriented: pd.DataFrame  # prompt_key, better_id, worse_id
    clear: np.ndarray  # the pairs whose appeal gap is at least `gap`
    gap: float


def truth_pairs(
    config: EvaluateConfig, test_images: pd.DataFrame, truth: pd.DataFrame
) -> TruthPairs:
    with_truth = test_images.merge(truth, on="image_id", how="inner", suffixes=("", "_truth"))
    connection = connect()
    connection.register("images", with_truth[["image_id", "prompt_key", "appeal"]])
    oriented = M.truth_pairs(connection, seed=config.seed)
    gap = config.clear_gap_sd * float(truth["appeal"].std())
    clear = clear_pair_mask(oriented, with_truth.set_index("image_id")["appeal"], gap)
    return TruthPairs(with_truth, oriented, clear, gap)


def truth_accuracy(scores: pd.DataFrame, pairs: TruthPairs, config: EvaluateConfig) -> dict:
    """Per column of `scores` (indexed by image_id): accuracy with its interval on all the
    pairs, and on the clear ones (`clear_accuracy`, `clear_low`, `clear_high`)."""
    oriented, clear = pairs.oriented, pairs.clear
    every = accuracy_table(
        scores, oriented["better_id"], oriented["worse_id"], config, oriented["prompt_key"]
    )
    plain = accuracy_table(
        scores,
        oriented["better_id"][clear],
        oriented["worse_id"][clear],
        config,
        oriented["prompt_key"][clear],
    )
    for name, values in every.items():
        values |= {f"clear_{key}": plain[name][key] for key in ("accuracy", "low", "high")}
    return every


def truth_metrics(
    config: EvaluateConfig,
    pairs: TruthPairs,
    scores: pd.DataFrame,
    rewards: list[Scorer],
) -> tuple[dict, dict]:
    """Accuracy against true appeal (all and clear pairs), Spearman, best-of-N; and the
    confounder audit."""
    from social_reward.evaluate.audit import audit_scorers, world_for_export

    with_truth = pairs.images
    image_scores = scores.loc[with_truth["image_id"]]
    table = truth_accuracy(image_scores, pairs, config)
    for name in image_scores.columns:
        table[name]["spearman_within_prompts"] = M.spearman_within_prompts(
            image_scores[name].to_numpy(), with_truth["appeal"].to_numpy(), with_truth["prompt_key"]
        )
    best = {
        name: M.best_of_n(
            image_scores[name].to_numpy(),
            with_truth["appeal"].to_numpy(),
            with_truth["prompt_key"].to_numpy(),
            config.best_of_n,
            config.best_of_n_draws,
            config.seed,
        )
        for name in image_scores.columns
    }
    truth_section = {
        "pairs": len(pairs.oriented),
        "clear_pairs": int(pairs.clear.sum()),
        "clear_gap": pairs.gap,  # config.clear_gap_sd standard deviations of true appeal
        "images": len(with_truth),
        "scorers": table,
        "best_of_n": best,
    }
    audit = audit_scorers(
        rewards,
        with_truth,
        world_for_export(config.validated_dir),
        pairs_per_trace=config.audit_pairs,
        seed=config.seed,
    )
    return truth_section, audit


def diagnostics(
    config: EvaluateConfig,
    train_images: pd.DataFrame,
    pairs: TruthPairs,
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    rewards: list[Scorer],
) -> dict:
    """The feature ceiling and the learning curve (evaluate/diagnostics.py), judged on the
    truth section's pairs."""
    from social_reward.reward.model import SocialReward

    test = pairs.images
    train = train_images.merge(truth[["image_id", "appeal"]], on="image_id", how="inner")
    index = pd.Index(test["image_id"], name="image_id")
    keys = ("accuracy", "low", "high", "clear_accuracy", "clear_low", "clear_high")

    def judged(columns: dict[str, np.ndarray]) -> dict[str, dict]:
        table = truth_accuracy(pd.DataFrame(columns, index=index), pairs, config)
        return {name: {key: values[key] for key in keys} for name, values in table.items()}

    models = {
        scorer.name: scorer.reward for scorer in rewards if scorer.name in (REWARD, CLIP_SCORE)
    }
    ceiling = {}
    for name, model in models.items():
        ceiling[name] = judged(probe_scores(model, train, test, config.probe))
        ceiling[name]["model_itself"] = judged({"model": scores[name].loc[index].to_numpy()})[
            "model"
        ]

    curve_scores = {1.0: scores[REWARD].loc[index].to_numpy()}
    train_pairs = {1.0: models[REWARD].config.get("train_pairs")}
    for share, folder in sorted(config.learning_curve.items()):
        if folder.is_dir():
            reward = SocialReward.from_pretrained(folder, config.batch_size)
            curve_scores[share] = np.asarray(
                reward.score_pairs(list(test["prompt"]), list(test["path"]))
            )
            train_pairs[share] = reward.config.get("train_pairs")
    curve = judged({str(share): values for share, values in sorted(curve_scores.items())})
    return {
        "feature_ceiling": ceiling,
        "learning_curve": {
            share: {"train_pairs": train_pairs[float(share)], **values}
            for share, values in curve.items()
        },
    }
