"""Is this export still like the one the production model was trained on? (stage `drift`,
and the retrain flow's intake of a fresh export)

Builds one feature row per image (prompt length, engagement, creator reach, generator,
simple image statistics) and the prompts' word distribution, compares both with the
reference stored with the production model using Evidently, and writes the HTML reports,
their JSON and `metrics/drift.json`. The gate fails when the share of drifted columns
exceeds `drift.max_drift_share`, unless `drift.allow_drift` records a deliberate override.
Before any model exists there is no reference: the stage passes, and this export's feature
table (`drift.features`) is what a model trained on it will carry as its reference.
"""

from __future__ import annotations

import json
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from social_reward.artifacts import write_metrics
from social_reward.config.drift import DriftConfig
from social_reward.data.drift_report import INDEX_PAGE, write_first_page, write_index
from social_reward.data.duck import connect, open_export
from social_reward.data.gates import write_verdict
from social_reward.errors import GateFailed
from social_reward.evidently_snapshots import save_snapshot

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
SCORE_DIGITS = 6  # scores are rounded: the last digits of categorical distances vary by process


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
    connection, _ = open_export(validated_dir)
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
            score = round(float(metric["value"]), SCORE_DIGITS)
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


def recorded_promotions(registry: Path) -> int:
    """How many promotions the retrain registry (JSON Lines) records; 0 without one."""
    if not registry.is_file():
        return 0
    promotions = 0
    for line in registry.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the retrain flow reads the registry strictly; here only promotions count
        promotions += isinstance(entry, dict) and entry.get("promoted") is True
    return promotions


def check_drift(config: DriftConfig) -> dict:
    """Compare the validated export with the reference; write its features, the reports and
    the metrics; GateFailed when too many columns drifted (and no override is recorded), or
    when the reference is missing although a model was promoted (never "no reference yet")."""
    if not config.reference.is_file() and (promotions := recorded_promotions(config.registry)):
        raise GateFailed(
            f"{config.reference}: file missing, but {config.registry} records {promotions} "
            "promotion(s) (rule: once a model is promoted, the drift gate compares with its "
            "reference); restore models/production from the DVC remote or a backup, or run "
            "the retrain flow, which finishes or rolls back a half-done promotion"
        )
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
        write_first_page(config, metrics, current, NUMERIC_COLUMNS, CATEGORICAL_COLUMNS)
    else:
        reference = pd.read_parquet(config.reference)
        columns = compare(reference, current, config)
        drifted = sorted(name for name, result in columns.items() if result["drifted"])
        share = round(len(drifted) / len(columns), SCORE_DIGITS) if columns else 0.0
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
        write_index(config, metrics, FEATURES_REPORT, TOPICS_REPORT)
    metrics.update(
        {
            "rows": {"current": len(current)},
            "numeric_method": config.numeric_method,
            "categorical_method": config.categorical_method,
            "threshold": config.threshold,
            "max_drift_share": config.max_drift_share,
        }
    )
    # Scores and shares are rounded above; thresholds are shown as configured.
    write_metrics(config.metrics, metrics, digits=None)
    write_verdict(
        config.verdict, "drift", metrics["passed"], config.validated_dir, metrics["summary"]
    )
    if not metrics["passed"]:
        raise GateFailed(
            f"drift gate: {metrics['summary']}; drifted columns: "
            + ", ".join(
                f"{name} ({columns[name]['method']} {columns[name]['score']:.3f} >= "
                f"{columns[name]['threshold']})"
                for name in drifted
            )
            + f"; see {config.report_dir / INDEX_PAGE}. If this change is expected, set "
            "drift.allow_drift: true in params.yaml (recorded in metrics/drift.json)."
        )
    return metrics
