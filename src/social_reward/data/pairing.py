"""Preference pairs (prompt, positive image, negative image) in DuckDB (stage `pairs`).

All the work is set-based SQL in `sql/`: per-image engagement features
(`image_features.sql`), candidate pairs with the confounders cancelled
(`pair_candidates_debiased.sql`) or, for the ablation, from raw counts
(`pair_candidates_naive.sql`), then capped, hash-drawn samples and prompt-level splits
(`pairs_sample.sql`). `describe_pairs` gives counts, confounder balance and, with a truth
file, how often a mode's positive really is the more appealing image.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from social_reward.artifacts import (
    ABLATION_DIR,
    IMAGE_SPLITS_FILE,
    METRIC_DIGITS,
    PAIR_FILE_COLUMNS,
    SPLITS,
    split_file,
    write_modes,
)
from social_reward.config.pairs import PairsConfig
from social_reward.data.duck import read_sql
from social_reward.data.export import ExportError

MODES = ("debiased", "naive")
# Candidate pairs of each mode: the confounders cancelled, or raw counts (the ablation).
CANDIDATES_SQL = {"debiased": "pair_candidates_debiased.sql", "naive": "pair_candidates_naive.sql"}
ELIGIBLE_SQL = """
SELECT
    count(*) FILTER (WHERE collective_remixes >= $min_collective_remixes) AS positives,
    count(*) FILTER (
        WHERE collective_remixes <= $max_lower_remixes AND exposure_days >= $min_exposure_days
    ) AS negatives
FROM image_features
"""
SPLIT_SQL = """
SELECT {columns} FROM pairs WHERE split = $split ORDER BY prompt, pos_image_id, neg_image_id
""".format(columns=", ".join(PAIR_FILE_COLUMNS))
# Every image with the split of its prompt ('unpaired': a prompt without pairs), so that
# later stages keep test prompts' images out of training (pretraining included).
IMAGE_SPLITS_SQL = """
SELECT f.image_id, i.path, f.prompt_key, i.prompt, coalesce(s.split, 'unpaired') AS split
FROM image_features AS f
JOIN images AS i ON i.image_id = f.image_id
LEFT JOIN prompt_splits AS s ON s.prompt_key = f.prompt_key
ORDER BY f.image_id
"""
PROMPT_SPLITS_SQL = """
CREATE OR REPLACE TEMP TABLE prompt_splits AS SELECT DISTINCT prompt_key, split FROM pairs
"""
# The other mode's pairs for the ablation, on the chosen mode's prompt splits (its training
# pairs never share a prompt with the chosen mode's validation or test pairs), drawn down to
# the chosen mode's number of pairs per split: the ablation changes which pairs, not how many.
ABLATION_SPLIT_SQL = """
SELECT {columns} FROM pairs AS p
LEFT JOIN prompt_splits AS s ON s.prompt_key = p.prompt_key
WHERE coalesce(s.split, 'train') = $split
QUALIFY row_number() OVER (
    ORDER BY hash($seed, 'ablation', p.pos_image_id, p.neg_image_id), p.pos_image_id, p.neg_image_id
) <= $pairs
ORDER BY prompt, pos_image_id, neg_image_id
""".format(columns=", ".join(f"p.{column}" for column in PAIR_FILE_COLUMNS))
SPLIT_COUNTS_SQL = """
SELECT split, count(*), count(DISTINCT prompt),
       count(DISTINCT pos_image_id) + count(DISTINCT neg_image_id)
FROM pairs GROUP BY split
"""


class NoPairsError(ExportError):
    """The export holds no pair the rules allow, or too few to fill every split."""


def candidate_parameters(config: PairsConfig, mode: str) -> dict:
    if mode == "naive":
        return {"seed": config.seed, "max_pairs_per_image": config.max_pairs_per_image}
    return {
        "min_collective_remixes": config.min_collective_remixes,
        "count_ratio": config.count_ratio,
        "max_lower_remixes": config.max_lower_remixes,
        "min_exposure_days": config.min_exposure_days,
        "min_impressions": config.min_impressions,
        "max_publication_gap_days": config.max_publication_gap_days,
        "reach_caliper": config.reach_caliper,
        "max_reach_gap": config.max_reach_gap,
        "match_generator": config.match_generator,
        "match_influencer": config.match_influencer,
        "max_pairs_per_image": config.max_pairs_per_image,
        "max_pairs_per_prompt": config.max_pairs_per_prompt,
        "seed": config.seed,
    }


def build_pairs(connection: duckdb.DuckDBPyConnection, config: PairsConfig, mode: str) -> int:
    """Create the table `pairs` (split, prompt, ids, paths) for one mode; returns its size."""
    candidates = read_sql(CANDIDATES_SQL[mode])
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE candidates AS {candidates}",
        candidate_parameters(config, mode),
    )
    connection.execute(
        f"CREATE OR REPLACE TEMP TABLE pairs AS {read_sql('pairs_sample.sql')}",
        {
            "seed": config.seed,
            "max_pairs_per_image": config.max_pairs_per_image,
            "max_pairs_per_prompt": config.max_pairs_per_prompt,
            "train_share": config.splits.train,
            "val_share": config.splits.val,
            "hand_size": config.splits.hand_size,
        },
    )
    return connection.execute("SELECT count(*) FROM pairs").fetchall()[0][0]


def _row(connection: duckdb.DuckDBPyConnection, sql: str, parameters: dict | None = None) -> dict:
    cursor = connection.execute(sql, parameters or {})
    names = [column[0] for column in cursor.description]
    values = cursor.fetchall()[0]
    return {
        name: (round(value, METRIC_DIGITS) if isinstance(value, float) else value)
        for name, value in zip(names, values, strict=True)
    }


def describe_pairs(connection: duckdb.DuckDBPyConnection, with_truth: bool) -> dict:
    """Counts per split, confounder balance and (with truth) agreement of table `pairs`."""
    per_split = {
        split: {"pairs": pairs, "prompts": prompts, "images": images}
        for split, pairs, prompts, images in connection.execute(SPLIT_COUNTS_SQL).fetchall()
    }
    description = {
        "splits": {
            split: per_split.get(split, {"pairs": 0, "prompts": 0, "images": 0}) for split in SPLITS
        },
        "balance": _row(connection, read_sql("pair_balance.sql")),
    }
    if with_truth:
        description["truth"] = _row(connection, read_sql("pair_truth_agreement.sql"))
    return description


def _no_pairs_message(
    connection: duckdb.DuckDBPyConnection, config: PairsConfig, empty_splits: list[str]
) -> str:
    eligible = _row(
        connection,
        ELIGIBLE_SQL,
        {
            "min_collective_remixes": config.min_collective_remixes,
            "max_lower_remixes": config.max_lower_remixes,
            "min_exposure_days": config.min_exposure_days,
        },
    )
    where = (
        "no preference pair"
        if not empty_splits
        else f"pairs for too few prompts: split(s) {empty_splits} empty"
    )
    return (
        f"{config.validated_dir}: {where} (mode {config.mode}); {eligible['positives']} images "
        f"have >= {config.min_collective_remixes} collective remixes (higher images), "
        f"{eligible['negatives']} have at most {config.max_lower_remixes} after >= "
        f"{config.min_exposure_days} days (lower images); a pair needs one of each sharing a "
        "prompt"
        + (
            f", at least {config.count_ratio:g} x the lower's remixes + "
            f"{config.min_collective_remixes}, reach within {config.reach_caliper:g} in "
            f"log2(1 + followers) (up to {config.max_reach_gap:g} in numbers balanced by "
            "which creator has more), the same influencer flag and generator or pairs across "
            "them balanced by which side won, and a "
            f"{config.max_publication_gap_days}-day window"
            if config.mode == "debiased"
            else ""
        )
        + ". Use a larger export or loosen params.yaml `pairs`."
    )


def write_splits(
    connection: duckdb.DuckDBPyConnection,
    out_dir: Path,
    sql: str = SPLIT_SQL,
    parameters: dict[str, dict] | None = None,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        params = {"split": split, **(parameters or {}).get(split, {})}
        table = connection.sql(sql, params=params).to_arrow_table()
        pq.write_table(table, split_file(out_dir, split), compression="zstd")


def write_image_splits(connection: duckdb.DuckDBPyConnection, out_dir: Path) -> None:
    table = connection.sql(IMAGE_SPLITS_SQL).to_arrow_table()
    pq.write_table(table, out_dir / IMAGE_SPLITS_FILE, compression="zstd")


def register_truth(connection: duckdb.DuckDBPyConnection, truth) -> None:
    """The true appeal of a simulated export, for the pairs' truth agreement only."""
    connection.register("truth", truth[["image_id", "appeal"]])


def write_pairs(
    connection: duckdb.DuckDBPyConnection, config: PairsConfig, with_truth: bool
) -> dict[str, dict]:
    """Write the chosen mode's splits, every image's split, and the other mode's pairs on the
    same prompt splits (the ablation); returns each mode's description (`describe_pairs`).

    NoPairsError when the chosen mode leaves a split empty."""
    # The chosen mode first: its prompt splits are the splits of every later stage. Then
    # the other mode, for the side-by-side comparison and the ablation's training pairs.
    comparison = {}
    build_pairs(connection, config, config.mode)
    comparison[config.mode] = chosen = describe_pairs(connection, with_truth)
    empty = [split for split, counts in chosen["splits"].items() if counts["pairs"] == 0]
    if empty:
        all_empty = len(empty) == len(SPLITS)
        raise NoPairsError(_no_pairs_message(connection, config, [] if all_empty else empty))
    write_splits(connection, config.out_dir)
    connection.execute(PROMPT_SPLITS_SQL)
    write_image_splits(connection, config.out_dir)
    (other,) = (mode for mode in MODES if mode != config.mode)
    build_pairs(connection, config, other)
    comparison[other] = describe_pairs(connection, with_truth)
    write_splits(
        connection,
        config.out_dir / ABLATION_DIR,
        ABLATION_SPLIT_SQL,
        {
            split: {"seed": config.seed, "pairs": counts["pairs"]}
            for split, counts in chosen["splits"].items()
        },
    )
    write_modes(config.out_dir, main=config.mode, ablation=other)
    return comparison


def pairs_metrics(mode: str, comparison: dict[str, dict]) -> dict:
    """The stage's metrics: the chosen mode's splits and balance, both modes side by side."""
    chosen = comparison[mode]
    metrics = {
        "mode": mode,
        "pairs": {split: counts["pairs"] for split, counts in chosen["splits"].items()},
        "splits": chosen["splits"],
        "balance": chosen["balance"],
        # Both modes side by side: how many pairs, their balance (and truth agreement).
        "modes": {
            name: {
                "pairs": described["balance"]["pairs"],
                **{key: value for key, value in described.items() if key != "splits"},
            }
            for name, described in sorted(comparison.items())
        },
    }
    if "truth" in chosen:
        metrics["truth_agreement"] = {
            name: described["truth"]["agreement"] for name, described in sorted(comparison.items())
        }
    return metrics
