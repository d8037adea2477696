"""What an export holds and how strongly raw remix counts follow confounders (stage `profile`).

The figures (counts, remix distribution, rank correlations with followers, exposure and,
with a truth file, appeal) and a plot for people of the same.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import duckdb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from social_reward.artifacts import METRIC_DIGITS
from social_reward.config.profile import ProfileConfig

TABLE_SIZES_SQL = "SELECT (SELECT count(*) FROM remixes), (SELECT count(*) FROM users)"


def _spearman(x: pd.Series, y: pd.Series) -> float | None:
    value = x.corr(y, method="spearman")
    return None if value is None or math.isnan(value) else round(float(value), METRIC_DIGITS)


def _round(value: float) -> float:
    return round(float(value), METRIC_DIGITS)


def image_features(connection: duckdb.DuckDBPyConnection) -> tuple[pd.DataFrame, int, int]:
    """One row per image (raw remixes, collective remixes, confounders), and the table sizes,
    of an export opened with `duck.open_export`."""
    features = connection.execute("SELECT * FROM image_features ORDER BY image_id").df()
    remix_count, user_count = connection.execute(TABLE_SIZES_SQL).fetchall()[0]
    return features, int(remix_count), int(user_count)


def summarise(
    features: pd.DataFrame, remix_count: int, user_count: int, truth: pd.DataFrame | None
) -> dict:
    raw = features["raw_remixes"]
    influencer = features["is_influencer"].astype(bool)
    mean_non_influencer = raw[~influencer].mean()
    by_generator = features.groupby("generator")["raw_remixes"].agg(["size", "mean"])
    metrics: dict = {
        "counts": {
            "users": user_count,
            "images": len(features),
            "remixes": remix_count,
            "prompts": int(features["prompt"].nunique()),
            "creators": int(features["creator_id"].nunique()),
        },
        "images_never_remixed_share": _round((raw == 0).mean()),
        "remixes_per_image": {
            "mean": _round(raw.mean()),
            "median": _round(raw.median()),
            "p90": _round(raw.quantile(0.9)),
            "p99": _round(raw.quantile(0.99)),
            "max": int(raw.max()),
        },
        "self_remix_share": _round(features["self_remixes"].sum() / max(remix_count, 1)),
        # Remixes that are neither self-remixes nor first remixes of one user: bursts.
        "repeat_remix_share": _round(
            (raw - features["self_remixes"] - features["collective_remixes"]).sum()
            / max(remix_count, 1)
        ),
        "raw_remixes_follow": {
            "followers": _spearman(raw, features["followers"]),
            "influencer": _spearman(raw, influencer.astype(float)),
            "exposure_days": _spearman(raw, features["exposure_days"]),
            "caption_popularity": _spearman(raw, features["prompt_images"]),
        },
        "influencer_remix_ratio": (
            _round(raw[influencer].mean() / mean_non_influencer)
            if influencer.any() and mean_non_influencer > 0
            else None
        ),
        "generators": {
            str(name): {
                "share": _round(row["size"] / len(features)),
                "mean_remixes": _round(row["mean"]),
            }
            for name, row in by_generator.iterrows()
        },
    }
    if truth is not None:
        joined = features.merge(truth[["image_id", "appeal"]], on="image_id", how="inner")
        within = joined.groupby("prompt")[["raw_remixes", "collective_remixes", "appeal"]].rank(
            pct=True
        )
        metrics["truth"] = {
            "images_with_truth": len(joined),
            "raw_remixes_follow_appeal": _spearman(joined["raw_remixes"], joined["appeal"]),
            "collective_remixes_follow_appeal": _spearman(
                joined["collective_remixes"], joined["appeal"]
            ),
            "raw_remixes_follow_appeal_within_prompt": _spearman(
                within["raw_remixes"], within["appeal"]
            ),
        }
    return metrics


def plot_profile(
    features: pd.DataFrame, truth: pd.DataFrame | None, config: ProfileConfig, path: Path
) -> None:
    sample = features.sample(
        n=min(config.plot_sample, len(features)), random_state=config.seed
    ).sort_values("image_id")
    raw = features["raw_remixes"]
    panels = 4 if truth is not None else 3
    figure, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), constrained_layout=True)

    bins = np.unique(np.round(np.logspace(0, np.log10(max(raw.max(), 1) + 1), 30)))
    axes[0].hist(raw, bins=np.concatenate([[0], bins]), color="#4c72b0")
    axes[0].set(
        xscale="symlog",
        yscale="log",
        xlabel="raw remixes per image",
        ylabel="images",
        title=f"{(raw == 0).mean():.0%} of images never remixed",
    )

    influencer = sample["is_influencer"].astype(bool)
    for mask, label, colour in (
        (~influencer, "creator", "#4c72b0"),
        (influencer, "influencer", "#dd8452"),
    ):
        axes[1].scatter(
            sample.loc[mask, "followers"] + 1,
            sample.loc[mask, "raw_remixes"] + 1,
            s=6,
            alpha=0.4,
            label=label,
            color=colour,
        )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="creator followers + 1",
        ylabel="raw remixes + 1",
        title="reach",
    )
    axes[1].legend(loc="upper left", fontsize=8)

    binned = features.assign(
        bin=(features["exposure_days"] // config.exposure_bin_days) * config.exposure_bin_days
    )
    for generator, group in binned.groupby("generator"):
        trend = (group["raw_remixes"] > 0).groupby(group["bin"]).mean()
        axes[2].plot(trend.index, trend.values, marker=".", label=str(generator))
    axes[2].set(
        xlabel="exposure days until the export",
        ylabel="share remixed at least once",
        title="exposure and generator",
    )
    axes[2].legend(fontsize=8)

    if truth is not None:
        joined = sample.merge(truth[["image_id", "appeal"]], on="image_id")
        axes[3].scatter(
            joined["appeal"], joined["raw_remixes"] + 1, s=6, alpha=0.4, color="#55a868"
        )
        axes[3].set(
            yscale="log",
            xlabel="true appeal",
            ylabel="raw remixes + 1",
            title="what the community likes",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
