"""Stage `drift`: is this export still like the one the production model was trained on?

Builds one feature row per image (prompt length, engagement, creator reach, generator,
simple image statistics) and the prompts' word distribution, compares both with the
reference stored with the production model using Evidently, and writes the HTML reports,
their JSON and `metrics/drift.json`. The gate fails when the share of drifted columns
exceeds `drift.max_drift_share`, unless `drift.allow_drift` records a deliberate override.
Before any model exists there is no reference: the stage passes, and this export's feature
table (`drift.features`) is what a model trained on it will carry as its reference.
"""

from __future__ import annotations

import html
import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from social_reward.config import DriftConfig
from social_reward.duck import connect, create_image_features, register_export
from social_reward.errors import GateFailed
from social_reward.evidently_html import save_snapshot
from social_reward.export import read_manifest

NUMERIC_COLUMNS = (
    "prompt_chars",
    "prompt_words",
    "collective_remixes",
    "exposure_days",
    "impressions",
    "followers",
    "brightness",
    "saturation",
    "contrast",
    "pixels",
)
CATEGORICAL_COLUMNS = ("generator", "is_influencer")
TOPIC_COLUMN = "topic_word"  # one row per word of a prompt, in its own comparison
OTHER_WORDS = "(other words)"
FEATURES_SQL = """
SELECT
    f.image_id,
    f.prompt,
    length(f.prompt) AS prompt_chars,
    len(string_split_regex(trim(f.prompt), '\\s+')) AS prompt_words,
    f.collective_remixes,
    f.exposure_days,
    f.impressions,
    f.followers,
    f.is_influencer,
    f.generator,
    i.path
FROM image_features AS f
JOIN images AS i USING (image_id)
ORDER BY f.image_id
"""
WORDS_SQL = """
SELECT word AS topic_word
FROM (SELECT unnest(regexp_extract_all(prompt, '[a-z]{3,}')) AS word FROM features)
"""
DIGITS = 6  # scores are rounded: the last digits of categorical distances vary by process


FEATURES_REPORT = "features.html"  # Evidently: image and prompt features
TOPICS_REPORT = "topics.html"  # Evidently: prompt words


def image_statistics(path: str) -> tuple[float, float, float, int]:
    """Brightness, saturation, contrast (0-1) and pixel count of one image file."""
    with Image.open(path) as image:
        hsv = np.asarray(image.convert("HSV"), dtype=np.float32) / 255.0
        luminance = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return (
            float(luminance.mean()),
            float(hsv[..., 1].mean()),
            float(luminance.std()),
            image.width * image.height,
        )


def build_features(validated_dir: Path, workers: int) -> pd.DataFrame:
    """One row per image of the validated export: the columns drift is measured on."""
    manifest = read_manifest(validated_dir)
    connection = connect()
    register_export(connection, validated_dir)
    create_image_features(connection, manifest.exported_at)
    features = connection.execute(FEATURES_SQL).df()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        statistics = list(
            tqdm(
                pool.map(image_statistics, features["path"], chunksize=64),
                total=len(features),
                desc="drift: image statistics",
                unit="image",
                disable=len(features) < 1000,
            )
        )
    features[["brightness", "saturation", "contrast", "pixels"]] = pd.DataFrame(
        statistics, index=features.index
    )
    return features.drop(columns=["path"])


def topic_words(features: pd.DataFrame) -> pd.DataFrame:
    """The prompts' words, one row each."""
    connection = connect()
    connection.register("features", features[["prompt"]])
    return connection.execute(WORDS_SQL).df()


def pooled(words: pd.DataFrame, vocabulary: list[str]) -> pd.DataFrame:
    """The words with those outside `vocabulary` pooled as one."""
    return words.assign(
        **{
            TOPIC_COLUMN: words[TOPIC_COLUMN].where(
                words[TOPIC_COLUMN].isin(vocabulary), OTHER_WORDS
            )
        }
    )


def _comparable(reference: pd.DataFrame, current: pd.DataFrame, columns: tuple[str, ...]) -> list:
    # Evidently refuses a column that is empty on either side (impressions before logging).
    return [
        column
        for column in columns
        if column in reference and reference[column].notna().any() and current[column].notna().any()
    ]


def _snapshot(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: list,
    categorical: list,
    config: DriftConfig,
):
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = numeric + categorical
    report = Report(
        [
            DataDriftPreset(
                columns=columns,
                num_method=config.numeric_method,
                num_threshold=config.threshold,
                cat_method=config.categorical_method,
                cat_threshold=config.threshold,
                drift_share=config.max_drift_share,
            )
        ],
        include_tests=True,
    )

    def as_dataset(frame: pd.DataFrame) -> Dataset:
        typed = frame[columns].astype({column: "string" for column in categorical})
        return Dataset.from_pandas(typed, data_definition=definition)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return report.run(as_dataset(current), as_dataset(reference))


def column_results(snapshot) -> dict[str, dict]:
    """Per column: score, method, threshold and whether it drifted, from a snapshot."""
    results = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].rsplit(":", 1)[-1] == "ValueDrift":
            score = round(float(metric["value"]), DIGITS)
            results[config["column"]] = {
                "score": score,
                "method": config["method"],
                "threshold": config["threshold"],
                "drifted": score >= config["threshold"],
            }
    return results


def compare(reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig) -> dict:
    numeric = _comparable(reference, current, NUMERIC_COLUMNS)
    categorical = _comparable(reference, current, CATEGORICAL_COLUMNS)
    snapshot = _snapshot(reference, current, numeric, categorical, config)
    save_snapshot(snapshot, config.report_dir / FEATURES_REPORT)
    columns = column_results(snapshot)

    reference_words = topic_words(reference)
    vocabulary = (
        reference_words[TOPIC_COLUMN]
        .value_counts()
        .sort_index()
        .sort_values(ascending=False, kind="stable")
        .index[: config.topic_words]
        .tolist()
    )
    words = _snapshot(
        pooled(reference_words, vocabulary),
        pooled(topic_words(current), vocabulary),
        [],
        [TOPIC_COLUMN],
        config,
    )
    save_snapshot(words, config.report_dir / TOPICS_REPORT)
    columns.update(column_results(words))
    return columns


def run_drift(config: DriftConfig) -> dict:
    current = build_features(config.validated_dir, config.decode_workers)
    config.features.parent.mkdir(parents=True, exist_ok=True)
    current.to_parquet(config.features, index=False, compression="zstd")
    config.report_dir.mkdir(parents=True, exist_ok=True)

    if not config.reference.is_file():
        metrics = {
            "reference": None,
            "summary": f"no reference yet ({config.reference}): passed; this export's features "
            f"({config.features}) become the reference of a model trained on it",
            "passed": True,
            "columns": {},
            "drifted_columns": [],
            "drift_share": 0.0,
        }
        _write_first_page(config, metrics, current)
    else:
        reference = pd.read_parquet(config.reference)
        columns = compare(reference, current, config)
        drifted = sorted(name for name, result in columns.items() if result["drifted"])
        share = round(len(drifted) / len(columns), DIGITS) if columns else 0.0
        over = share > config.max_drift_share
        passed = not over or config.allow_drift
        metrics = {
            "reference": str(config.reference),
            "summary": (
                f"{len(drifted)} of {len(columns)} columns drifted (share {share:.2f}, "
                f"limit {config.max_drift_share})"
                + (": passed by the recorded override drift.allow_drift" if over and passed else "")
            ),
            "passed": passed,
            "override": bool(over and config.allow_drift),
            "columns": columns,
            "drifted_columns": drifted,
            "drift_share": share,
        }
        _write_index(config, metrics)
    metrics.update(
        {
            "rows": {"current": len(current)},
            "numeric_method": config.numeric_method,
            "categorical_method": config.categorical_method,
            "threshold": config.threshold,
            "max_drift_share": config.max_drift_share,
        }
    )
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    if not metrics["passed"]:
        raise GateFailed(
            f"drift gate: {metrics['summary']}; drifted columns: "
            + ", ".join(
                f"{name} ({columns[name]['method']} {columns[name]['score']:.3f} >= "
                f"{columns[name]['threshold']})"
                for name in drifted
            )
            + f"; see {config.report_dir / 'index.html'}. If this change is expected, set "
            "drift.allow_drift: true in params.yaml (recorded in metrics/drift.json)."
        )
    return metrics


def _write_first_page(config: DriftConfig, metrics: dict, current: pd.DataFrame) -> None:
    """Without a reference: what this export's features look like (the future reference)."""
    summary = current[list(NUMERIC_COLUMNS)].astype(float).describe().T
    shares = {
        column: current[column].astype(str).value_counts(normalize=True).round(3).to_dict()
        for column in CATEGORICAL_COLUMNS
    }
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{value:.4g}</td>" for value in row) + "</tr>"
        for name, row in summary.iterrows()
    )
    categories = "".join(
        f"<li>{column}: {', '.join(f'{key} {value:.1%}' for key, value in values.items())}</li>"
        for column, values in shares.items()
    )
    (config.report_dir / "index.html").write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift: no reference yet</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
</style></head><body>
<h1>Drift: no reference yet</h1>
<p id="summary">{html.escape(metrics["summary"])}</p>
<h2>This export's features</h2>
<table id="features"><tr><th>column</th>{"".join(f"<th>{c}</th>" for c in summary.columns)}</tr>
{rows}</table>
<ul>{categories}</ul>
</body></html>
""",
        encoding="utf-8",
    )


def _write_index(config: DriftConfig, metrics: dict) -> None:
    rows = "".join(
        f"<tr class='{'bad' if result['drifted'] else 'ok'}'><td>{name}</td>"
        f"<td>{result['method']}</td><td>{result['score']:.4f}</td><td>{result['threshold']}</td>"
        f"<td>{'drifted' if result['drifted'] else 'ok'}</td></tr>"
        for name, result in metrics["columns"].items()
    )
    (config.report_dir / "index.html").write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift against the reference</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
tr.bad td {{ background: #fdecea; }}</style></head><body>
<h1>Drift of this export against the reference</h1>
<p id="summary">{html.escape(metrics["summary"])}</p>
<p>Reference: <code>{config.reference}</code>. Evidently reports:
<a href="features.html">image features</a>, <a href="topics.html">prompt words</a>.</p>
<table id="columns"><tr><th>column</th><th>method</th><th>score</th><th>threshold</th>
<th>status</th></tr>{rows}</table>
</body></html>
""",
        encoding="utf-8",
    )
