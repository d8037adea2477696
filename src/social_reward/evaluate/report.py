"""What a person looks at after `evaluate`: a chart, a table, score distributions, picks.

- `plots/evaluate/accuracy.csv` (a DVC plot) and `accuracy.png`: accuracy per scorer with
  its interval, on remix-labelled test pairs and, where a truth file exists, on true appeal.
- `reports/evaluate/scores.html`: an Evidently report of every image scorer's score
  distribution on the train images (reference) and the test images (current).
- `reports/evaluate/diagnostics.png` (with truth): the learning curve beside the CLIP score
  and the feature ceilings (evaluate/diagnostics.py).
- `reports/evaluate/best_of_n.png`: for a few test prompts, the truly best image of a drawn
  set beside each scorer's pick.
- `reports/evaluate/index.html`: one page with the table and links to the rest.
"""

from __future__ import annotations

import csv
import html
import warnings

import numpy as np
import pandas as pd

from social_reward.config.evaluate import EvaluateConfig
from social_reward.evidently_snapshots import save_snapshot

PLOT_DPI = 110
GRID_CELL_INCHES = 1.3


ACCURACY_KINDS = (  # (label, metrics section, prefix of its accuracy keys)
    ("remix pairs", "remix_pairs", ""),
    ("true appeal", "truth", ""),
    ("true appeal, clear pairs", "truth", "clear_"),
)


def _accuracy_rows(metrics: dict) -> list[dict]:
    rows = []
    for kind, section, prefix in ACCURACY_KINDS:
        for scorer, values in metrics.get(section, {}).get("scorers", {}).items():
            rows.append(
                {
                    "pairs": kind,
                    "scorer": scorer,
                    "accuracy": round(values[f"{prefix}accuracy"], 4),
                    "low": round(values[f"{prefix}low"], 4),
                    "high": round(values[f"{prefix}high"], 4),
                }
            )
    return rows


def write_accuracy_plot(config: EvaluateConfig, metrics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = _accuracy_rows(metrics)
    config.plots_dir.mkdir(parents=True, exist_ok=True)
    with (config.plots_dir / "accuracy.csv").open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["pairs", "scorer", "accuracy", "low", "high"])
        writer.writeheader()
        writer.writerows(rows)
    kinds = list(dict.fromkeys(row["pairs"] for row in rows))
    figure, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 3.2), squeeze=False)
    for axis, kind in zip(axes[0], kinds, strict=True):
        part = [row for row in rows if row["pairs"] == kind]
        y = np.arange(len(part))
        accuracy = np.array([row["accuracy"] for row in part])
        errors = np.array(
            [
                [row["accuracy"] - row["low"] for row in part],
                [row["high"] - row["accuracy"] for row in part],
            ]
        )
        axis.barh(y, accuracy, xerr=errors, color="#4c72b0", capsize=3)
        axis.set_yticks(y, [row["scorer"] for row in part])
        axis.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        axis.set_xlim(0.3, 1.0)
        axis.set_xlabel(f"pairwise accuracy ({int(config.level * 100)}% bootstrap interval)")
        axis.set_title(f"test split, {kind}")
    figure.tight_layout()
    figure.savefig(config.plots_dir / "accuracy.png", dpi=PLOT_DPI, metadata={"Software": None})
    plt.close(figure)


def _diagnostic_rows(metrics: dict) -> tuple[list[dict], list[dict]]:
    """The feature ceiling's and the learning curve's table rows."""
    found = metrics.get("diagnostics")
    if not found:
        return [], []

    def figures(values: dict) -> dict:
        return {
            "all pairs": f"{values['accuracy']:.3f} [{values['low']:.3f}, {values['high']:.3f}]",
            "clear pairs": (
                f"{values['clear_accuracy']:.3f} "
                f"[{values['clear_low']:.3f}, {values['clear_high']:.3f}]"
            ),
        }

    ceiling = [
        {"model": model, "scored by": features.replace("_", "-"), **figures(values)}
        for model, by_features in found["feature_ceiling"].items()
        for features, values in by_features.items()
    ]
    curve = [
        {"share of pairs": share, "training pairs": values["train_pairs"], **figures(values)}
        for share, values in found["learning_curve"].items()
    ]
    return ceiling, curve


def write_diagnostics_plot(config: EvaluateConfig, metrics: dict) -> bool:
    """Learning curve (true-appeal accuracy against training pairs, all and clear pairs),
    with the backbone's CLIP score and the feature ceilings as reference lines."""
    found = metrics.get("diagnostics")
    if not found:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = found["learning_curve"]
    pairs = [values["train_pairs"] or float(share) for share, values in curve.items()]
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for axis, (key, title) in zip(
        axes, (("", "all same-prompt pairs"), ("clear_", "clear pairs")), strict=True
    ):
        accuracy = [values[f"{key}accuracy"] for values in curve.values()]
        errors = [
            [values[f"{key}accuracy"] - values[f"{key}low"] for values in curve.values()],
            [values[f"{key}high"] - values[f"{key}accuracy"] for values in curve.values()],
        ]
        axis.errorbar(pairs, accuracy, yerr=errors, marker="o", capsize=3, label="social_reward")
        for (model, by_features), colour in zip(
            found["feature_ceiling"].items(), ("#dd8452", "#55a868"), strict=False
        ):
            axis.axhline(
                by_features["model_itself"][f"{key}accuracy"],
                color=colour,
                linestyle=":",
                label=f"{model}",
            )
            axis.axhline(
                by_features["prompt_image"][f"{key}accuracy"],
                color=colour,
                linestyle="--",
                label=f"{model} ceiling (probe)",
            )
        axis.set_xlabel("training pairs")
        axis.set_title(f"test split, true appeal, {title}", fontsize=9)
    axes[0].set_ylabel("pairwise accuracy")
    axes[1].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    config.report_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(config.report_dir / "diagnostics.png", dpi=PLOT_DPI, metadata={"Software": None})
    plt.close(figure)
    return True


def write_score_report(
    config: EvaluateConfig, train_scores: pd.DataFrame, test_scores: pd.DataFrame
) -> None:
    """Evidently: each image scorer's distribution on train (reference) and test images."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    columns = list(train_scores.columns)
    definition = DataDefinition(numerical_columns=columns)
    report = Report([DataSummaryPreset(columns=columns), DataDriftPreset(columns=columns)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        snapshot = report.run(
            Dataset.from_pandas(test_scores[columns].reset_index(drop=True), definition),
            Dataset.from_pandas(train_scores[columns].reset_index(drop=True), definition),
        )
    save_snapshot(snapshot, config.report_dir / "scores.html")


def write_best_of_n_grid(
    config: EvaluateConfig,
    test_scores: pd.DataFrame,
    test_images: pd.DataFrame,
    truth: pd.DataFrame | None,
) -> bool:
    """Rows: prompts; columns: the truly best image of a drawn set, then each scorer's pick."""
    if truth is None:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    images = test_images.merge(truth[["image_id", "appeal"]], on="image_id")
    sizes = images.groupby("prompt_key")["image_id"].transform("size")
    eligible = images[sizes >= config.best_of_n]
    prompts = sorted(eligible["prompt_key"].unique())[: config.grid_prompts]
    if not prompts:
        return False
    rng = np.random.default_rng(config.seed)
    scorers = list(test_scores.columns)
    figure, axes = plt.subplots(
        len(prompts),
        len(scorers) + 1,
        figsize=(GRID_CELL_INCHES * (len(scorers) + 1), GRID_CELL_INCHES * 1.25 * len(prompts)),
        squeeze=False,
    )
    for row, prompt_key in enumerate(prompts):
        group = eligible[eligible["prompt_key"] == prompt_key]
        drawn = group.iloc[rng.choice(len(group), config.best_of_n, replace=False)]
        ranks = drawn["appeal"].rank(ascending=False, method="min")
        picks = [("true best", drawn["appeal"].idxmax())]
        picks += [
            (name, test_scores.loc[drawn["image_id"], name].to_numpy().argmax()) for name in scorers
        ]
        for column, (label, pick) in enumerate(picks):
            chosen = drawn.loc[pick] if label == "true best" else drawn.iloc[pick]
            axis = axes[row][column]
            with Image.open(chosen["path"]) as picture:
                axis.imshow(picture.convert("RGB"))
            axis.set_xticks([])
            axis.set_yticks([])
            rank = int(ranks.loc[chosen.name])
            axis.set_title(f"{label}\nrank {rank}/{config.best_of_n}", fontsize=7)
            if column == 0:
                axis.set_ylabel(str(chosen["prompt"])[:28], fontsize=6)
    figure.suptitle(
        f"best of {config.best_of_n}: each scorer's pick (rank by true appeal)", fontsize=9
    )
    figure.tight_layout()
    config.report_dir.mkdir(parents=True, exist_ok=True)
    figure.savefig(config.report_dir / "best_of_n.png", dpi=PLOT_DPI, metadata={"Software": None})
    plt.close(figure)
    return True


def _table_html(rows: list[dict]) -> str:
    head = "".join(f"<th>{html.escape(name)}</th>" for name in rows[0]) if rows else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(value))}</td>" for value in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def write_index(config: EvaluateConfig, metrics: dict, has_grid: bool) -> None:
    rows = _accuracy_rows(metrics)
    audit_rows = [
        {"trace": trace, "scorer": scorer, **{k: round(v, 3) for k, v in values.items()}}
        for trace, by_scorer in metrics.get("audit", {}).items()
        for scorer, values in by_scorer.items()
    ]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body>",
        "<h1>Social Reward: evaluation on the test split</h1>",
        "<h2>Pairwise accuracy</h2>",
        _table_html(rows),
        "<p><img src='../../plots/evaluate/accuracy.png' alt='accuracy per scorer'></p>",
    ]
    ceiling, curve = _diagnostic_rows(metrics)
    if ceiling:
        truth = metrics["truth"]
        parts += [
            "<h2>What limits the reward (true appeal)</h2>",
            f"<p>Clear pairs: appeal gap of at least {config.clear_gap_sd:g} SD "
            f"({truth['clear_pairs']} of {truth['pairs']} same-prompt test pairs).</p>",
            "<h3>Feature ceiling: a linear probe fitted on true appeal over frozen features</h3>",
            _table_html(ceiling),
            "<h3>Learning curve: the reward trained on a share of its pairs</h3>",
            _table_html(curve),
            "<p><img src='diagnostics.png' alt='learning curve'></p>",
        ]
    if audit_rows:
        parts += ["<h2>Confounder audit: preference for a trace (0.5 = indifferent)</h2>"]
        parts += [_table_html(audit_rows)]
    if has_grid:
        parts += ["<h2>Best-of-N picks</h2><p><img src='best_of_n.png' alt='best of N'></p>"]
    parts += [
        "<h2>Score distributions</h2><p><a href='scores.html'>Evidently report: train vs test "
        "images, every image scorer</a></p></body></html>"
    ]
    (config.report_dir / "index.html").write_text("\n".join(parts) + "\n", encoding="utf-8")


def write_reports(
    config: EvaluateConfig,
    metrics: dict,
    train_scores: pd.DataFrame,
    test_scores: pd.DataFrame,
    test_images: pd.DataFrame,
    truth: pd.DataFrame | None,
) -> None:
    config.report_dir.mkdir(parents=True, exist_ok=True)
    write_accuracy_plot(config, metrics)
    write_diagnostics_plot(config, metrics)
    write_score_report(config, train_scores, test_scores[train_scores.columns])
    has_grid = write_best_of_n_grid(config, test_scores[train_scores.columns], test_images, truth)
    write_index(config, metrics, has_grid)
