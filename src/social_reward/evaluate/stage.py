"""Stage `evaluate`: every scorer side by side on the test split.

- Remix-labelled test pairs: pairwise accuracy (ties half, and the reference code's "ties
  count as correct"), a bootstrap interval, and accuracy by segment (creator reach, prompt
  popularity, generator).
- With a truth file (a simulated export): accuracy on every same-prompt test image pair whose
  true appeal differs, Spearman correlation with appeal within prompts, best-of-N picks.
- The confounder audit (rendered image pairs that differ only by a trace) and the ablation
  (the same training on naive pairs), side by side with the debiased reward.
- Outputs: `metrics/evaluate.json`, `plots/evaluate/` (accuracy table and chart), and
  `reports/evaluate/` (an Evidently report of score distributions, the best-of-N grid).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd

from social_reward.config import EvaluateConfig
from social_reward.duck import (
    connect,
    create_image_features,
    read_sql,
    register_export,
    register_parquet,
)
from social_reward.evaluate import metrics as M
from social_reward.evaluate.audit import is_image_scorer
from social_reward.evaluate.scorers import ColumnScorer, RandomScorer, RewardScorer, Scorer
from social_reward.export import read_manifest
from social_reward.truth import read_truth

REWARD = "social_reward"
CLIP_SCORE = "clip_score"
MODES_FILE = "modes.json"  # written by the pairs stage: the main and the ablation's mode
DIGITS = 4
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


def evaluation_images(config: EvaluateConfig) -> pd.DataFrame:
    """Train and test images with their split, prompt, file and engagement columns."""
    manifest = read_manifest(config.validated_dir)
    connection = connect()
    register_export(connection, config.validated_dir)
    create_image_features(connection, manifest.exported_at)
    register_parquet(connection, "image_splits", config.pairs_dir / "images.parquet")
    return connection.sql(read_sql("evaluation_images.sql")).df()


def pairs_modes(config: EvaluateConfig) -> dict[str, str]:
    path = config.pairs_dir / MODES_FILE
    return json.loads(path.read_text()) if path.is_file() else {"main": "?", "ablation": "?"}


def ablation_name(config: EvaluateConfig) -> str:
    return f"{pairs_modes(config)['ablation']}_pairs_reward"


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


def _rounded(value):
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, float):
        return None if np.isnan(value) else round(value, DIGITS)
    return value


def accuracy_table(
    scores: pd.DataFrame, better: pd.Series, worse: pd.Series, config: EvaluateConfig
) -> dict[str, dict]:
    """Per scorer: accuracy (ties half, ties correct), and its bootstrap interval."""
    table = {}
    for name in scores.columns:
        pos = scores[name].loc[better].to_numpy()
        neg = scores[name].loc[worse].to_numpy()
        low, high = M.bootstrap_interval(
            pos, neg, config.bootstrap_resamples, config.seed, config.level
        )
        table[name] = {**M.pairwise_accuracy(pos, neg), "low": low, "high": high}
    return table


def run_evaluate(config: EvaluateConfig, progress: bool = True) -> dict:
    from social_reward.evaluate.report import write_reports

    scorers, ablation = build_scorers(config)
    images = evaluation_images(config)
    test_images = images[images["split"] == "test"].reset_index(drop=True)
    rewards = [*scorers, *([ablation] if ablation else [])]
    scores = score_images(rewards, test_images)
    table_names = [scorer.name for scorer in scorers]

    pairs = pd.read_parquet(config.pairs_dir / "test.parquet")
    remix = accuracy_table(
        scores[table_names], pairs["pos_image_id"], pairs["neg_image_id"], config
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

    manifest = read_manifest(config.validated_dir)
    truth = read_truth(config.truth, manifest)
    if truth is not None:
        metrics["truth"], metrics["audit"] = truth_metrics(
            config, test_images, scores, truth, rewards
        )
        if ablation is not None:
            modes = pairs_modes(config)
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
                for variant, name in (("main", REWARD), ("ablation", ablation.name))
            }
    train_images = images[images["split"] == "train"].reset_index(drop=True)
    image_scorers = [scorer for scorer in scorers if is_image_scorer(scorer)]
    write_reports(
        config,
        metrics,
        train_scores=score_images(image_scorers, train_images),
        test_scores=scores,
        test_images=test_images,
        truth=truth,
    )
    metrics = _rounded(metrics)
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def truth_metrics(
    config: EvaluateConfig,
    test_images: pd.DataFrame,
    scores: pd.DataFrame,
    truth: pd.DataFrame,
    rewards: list[Scorer],
) -> tuple[dict, dict]:
    """Accuracy against true appeal, Spearman, best-of-N; and the confounder audit."""
    from social_reward.evaluate.audit import audit_scorers, world_for_export

    with_truth = test_images.merge(truth, on="image_id", how="inner", suffixes=("", "_truth"))
    connection = connect()
    connection.register("images", with_truth[["image_id", "prompt_key", "appeal"]])
    oriented = M.truth_pairs(connection, seed=config.seed)
    image_scores = scores.loc[with_truth["image_id"]]
    table = accuracy_table(image_scores, oriented["better_id"], oriented["worse_id"], config)
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
        "pairs": len(oriented),
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
