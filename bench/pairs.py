"""Benchmark: building the preference pairs (stage `pairs`, debiased mode) at paper scale.

Times the DuckDB pair building as the stage runs it (the export's tables, `image_features`,
`build_pairs(connection, PairsConfig(), "debiased")` and fetching the table `pairs`) and a
straightforward pandas implementation of the same rules, each in a fresh process so that
its peak resident memory is its own. Checks that both give exactly the same pairs and
prints the wall times, the peak memories and the speed-up.
It also times a bare DuckDB scan that reads the three tables once and counts distinct
remixers per image: the least work any pair builder must do.
Targets, on the 2-core, 24 GiB machine with the paper-scale metadata export (1.7M images,
~10M remixes): DuckDB under 60 s and under 4 GiB peak memory, at most 3x the bare scan, at
least 10x faster than pandas.

The export is read as it is, as if validated: its images table gets the validated
column `path` ('data/' || file) in a view.

    python bench/pairs.py --export DIR [--simulate] [--skip-pandas]

`--simulate` first writes the paper-scale metadata export into DIR
(`social-reward simulate --metadata-only --out DIR --overwrite`, about a minute).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from social_reward.config.pairs import PairsConfig
from social_reward.data.duck import connect, create_image_features, register_parquet
from social_reward.data.export import IMAGES_FILE, REMIXES_FILE, USERS_FILE, read_manifest
from social_reward.data.pairing import build_pairs

TARGET_SECONDS = 60
TARGET_PEAK_GIB = 4.0
TARGET_SPEEDUP = 10.0
TARGET_SCAN_RATIO = 3.0  # pair building against a bare scan of the tables (bare_scan)
MODE = "debiased"
PATH_PREFIX = "data/"  # validated images: `path` is the file's path from the project root
COLUMNS = ["split", "prompt", "pos_image_id", "neg_image_id", "pos_path", "neg_path"]
KEY = ["split", "pos_image_id", "neg_image_id"]
BLOCK = ["prompt_key", "reach_bucket", "is_influencer", "generator_key"]  # and grid, count
MERGE_ROWS = 10_000_000  # pandas: rows per merge (plus at most one block), for memory
FETCH_SQL = f"SELECT {', '.join(COLUMNS)} FROM pairs"


def peak_gib() -> float:
    """The high-water mark of this process's resident memory (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# --- DuckDB: the stage's own code ----------------------------------------------------------


def duckdb_pairs(export_dir: Path, out_file: Path) -> dict:
    """Pairs the way `run_pairs` builds them; writes them to `out_file`; time and peak."""
    config = PairsConfig()
    started = time.perf_counter()
    manifest = read_manifest(export_dir)
    connection = connect(config.threads, config.memory_limit)  # as run_pairs
    connection.execute("SET enable_progress_bar = false")  # a clean report; no other effect
    register_parquet(connection, "export_images", export_dir / IMAGES_FILE)
    connection.execute(
        f"CREATE VIEW images AS SELECT *, '{PATH_PREFIX}' || file AS path FROM export_images"
    )
    register_parquet(connection, "remixes", export_dir / REMIXES_FILE)
    register_parquet(connection, "users", export_dir / USERS_FILE)
    create_image_features(connection, manifest.exported_at)
    features = time.perf_counter()
    build_pairs(connection, config, MODE)
    built = time.perf_counter()
    table = connection.sql(FETCH_SQL).to_arrow_table()
    seconds = time.perf_counter() - started
    peak = peak_gib()
    connection.close()
    pq.write_table(table, out_file)
    return {
        "seconds": seconds,
        "peak_gib": peak,
        "pairs": table.num_rows,
        "steps": {
            "image_features": features - started,
            "build_pairs": built - features,
            "fetch": started + seconds - built,
        },
    }


# --- the floor: what any pair builder must do at least -----------------------------------

BARE_SCAN_SQL = """
SELECT count(*) AS images, sum(remixers) AS remixers
FROM read_parquet($images) AS i
JOIN read_parquet($users) AS u ON u.user_id = i.creator_id
LEFT JOIN (
    SELECT source_image_id, count(DISTINCT remixer_id) AS remixers
    FROM read_parquet($remixes)
    GROUP BY source_image_id
) AS r ON r.source_image_id = i.image_id
"""


def bare_scan(export_dir: Path) -> dict:
    """Read the three tables once and count distinct remixers per image: the least work any
    pair builder must do (the pairs target is a multiple of it, measured in the same run)."""
    config = PairsConfig()
    started = time.perf_counter()
    connection = connect(config.threads, config.memory_limit)
    connection.execute("SET enable_progress_bar = false")
    files = {
        "images": str(export_dir / IMAGES_FILE),
        "users": str(export_dir / USERS_FILE),
        "remixes": str(export_dir / REMIXES_FILE),
    }
    connection.execute(BARE_SCAN_SQL, files).fetchall()
    seconds = time.perf_counter() - started
    connection.close()
    return {"seconds": seconds, "peak_gib": peak_gib(), "steps": {"scan": seconds}}


# --- pandas: the same rules, written the obvious way ----------------------------------------


def normalise_prompt(prompt: pd.Series) -> pd.Series:
    """As the SQL macro normalise_prompt: DuckDB's trim strips spaces only, RE2's \\s is ASCII."""
    return (
        prompt.str.strip(" ")
        .str.lower()
        .str.replace(r"[\t\n\f\r ]+", " ", regex=True)
        .str.rstrip(".")
    )


def epoch_us(timestamps: pd.Series) -> pd.Series:
    return timestamps.dt.tz_convert("UTC").dt.tz_localize(None).dt.as_unit("us").astype("int64")


def image_features_pandas(export_dir: Path, config: PairsConfig) -> pd.DataFrame:
    """What pair building needs of sql/image_features.sql, one row per image."""
    exported_at = read_manifest(export_dir).exported_at
    images = pd.read_parquet(export_dir / IMAGES_FILE)
    users = pd.read_parquet(
        export_dir / USERS_FILE, columns=["user_id", "followers", "is_influencer"]
    )
    remixes = pd.read_parquet(export_dir / REMIXES_FILE, columns=["source_image_id", "remixer_id"])

    # Collective remixes: distinct remixers other than the creator.
    remixers = remixes.drop_duplicates(["source_image_id", "remixer_id"])
    del remixes
    remixers = remixers.merge(
        images[["image_id", "creator_id"]], left_on="source_image_id", right_on="image_id"
    )
    collective = (
        remixers[remixers["remixer_id"] != remixers["creator_id"]]
        .groupby("image_id")
        .size()
        .rename("collective_remixes")
    )
    del remixers

    images = images.sort_values("image_id", ignore_index=True)
    images["image_key"] = np.arange(1, len(images) + 1)
    images["prompt"] = normalise_prompt(images["prompt"])
    images["prompt_key"] = images["prompt"].rank(method="dense").astype("int64")
    images["path"] = PATH_PREFIX + images["file"]
    published_us = epoch_us(images["published_at"])
    images["published_day"] = published_us / 1e6 / 86400.0
    # date_diff('second', ...) counts whole-second boundaries.
    exported_s = pd.Timestamp(exported_at).value // 10**9  # .value: nanoseconds
    images["exposure_days"] = (exported_s - published_us // 10**6) / 86400.0
    images = images.merge(users, left_on="creator_id", right_on="user_id", how="left")
    images = images.merge(collective, left_on="image_id", right_index=True, how="left")
    images["collective_remixes"] = images["collective_remixes"].fillna(0).astype("int64")
    return images[
        [
            "image_id",
            "image_key",
            "prompt",
            "prompt_key",
            "generator",
            "path",
            "published_day",
            "exposure_days",
            "impressions",
            "followers",
            "is_influencer",
            "collective_remixes",
        ]
    ]


def duckdb_hash(keys: pd.DataFrame, expression: str, seed: int) -> np.ndarray:
    """DuckDB's hash() of each row of `keys`: the SQL's deterministic draw, reproduced."""
    connection = duckdb.connect()
    connection.register("keys", keys)
    draws = connection.execute(f"SELECT {expression} AS draw FROM keys", {"seed": seed})
    result = draws.fetchnumpy()["draw"]
    connection.close()
    return np.asarray(result, dtype=np.uint64)


def candidates_pandas(features: pd.DataFrame, config: PairsConfig) -> pd.DataFrame:
    """sql/pair_candidates_debiased.sql: per drawn higher image and reach bucket (two grids),
    the k lower images nearest in time on either side; within the window and the reach gap;
    the k nearest of those; balanced by direction of reach beyond the caliper."""
    # At most max_pairs_per_prompt higher images per prompt, drawn by the SQL's hash.
    higher = features.loc[
        features["collective_remixes"] >= config.min_collective_remixes, ["prompt_key", "image_key"]
    ].copy()
    higher["draw"] = duckdb_hash(
        higher[["image_key"]], "hash($seed, 'higher', image_key)", config.seed
    )
    higher = higher.sort_values(["prompt_key", "draw", "image_key"])
    drawn = higher.loc[higher.groupby("prompt_key").cumcount() < config.max_pairs_per_prompt]
    # NULL keys join nothing in SQL (pandas would match NaN with NaN).
    eligible = features.dropna(subset=["followers", "is_influencer"])
    remixes = eligible["collective_remixes"]
    is_positive = (remixes >= config.min_collective_remixes) & eligible["image_key"].isin(
        drawn["image_key"]
    )
    is_negative = (
        (remixes <= config.max_lower_remixes)
        & (eligible["exposure_days"] >= config.min_exposure_days)
        & (eligible["impressions"].isna() | (eligible["impressions"] >= config.min_impressions))
    )
    base = pd.DataFrame(
        {
            "prompt_key": eligible["prompt_key"],
            "reach": np.log2(1 + eligible["followers"]),
            "is_influencer": eligible["is_influencer"].astype(bool)
            if config.match_influencer
            else False,
            "influencer": eligible["is_influencer"].astype(bool),
            "generator_key": eligible["generator"] if config.match_generator else "",
            "generator": eligible["generator"],
            "key": eligible["image_key"],
            "day": eligible["published_day"],
            "remixes": remixes,
        }
    )
    width = 2 * config.max_reach_gap
    gridded = pd.concat(
        [
            base.assign(grid=grid, reach_bucket=np.floor(base["reach"] / width + grid / 2))
            for grid in (0, 1)
        ],
        ignore_index=True,
    )
    in_grid_positive = np.tile(is_positive.to_numpy(), 2)
    in_grid_negative = np.tile(is_negative.to_numpy(), 2)
    # A higher image once per remix count of lower images it clearly beats.
    positives = pd.concat(
        [
            gridded[
                in_grid_positive
                & (gridded["remixes"] >= config.count_ratio * lower + config.min_collective_remixes)
            ].assign(lower_remixes=lower)
            for lower in range(config.max_lower_remixes + 1)
        ],
        ignore_index=True,
    )
    negatives = gridded[in_grid_negative].assign(lower_remixes=gridded["remixes"])
    negatives = negatives.drop(columns="remixes")
    block = ["grid", *BLOCK, "lower_remixes"]
    positives = positives.rename(columns=side_columns("pos"))
    negatives = negatives.rename(columns=side_columns("neg"))
    positives = positives.drop(columns="remixes")

    # Blocks dealt into chunks of about MERGE_ROWS higher x lower rows: one merge of
    # everything would be hundreds of millions of rows at paper scale.
    block_sizes = positives.groupby(block).size() * negatives.groupby(block).size()
    chunk_of_block = (block_sizes.dropna().cumsum() // MERGE_ROWS).astype("int64").rename("chunk")
    positives = positives.merge(chunk_of_block, left_on=block, right_index=True)
    negatives = negatives.merge(chunk_of_block, left_on=block, right_index=True)

    k = config.max_pairs_per_image
    parts = []
    for chunk, chunk_positives in positives.groupby("chunk"):
        chunk_negatives = negatives[negatives["chunk"] == chunk]
        pairs = chunk_positives.merge(chunk_negatives, on=[*block, "chunk"])
        pairs["gap"] = (pairs["pos_day"] - pairs["neg_day"]).abs()
        pairs["before"] = pairs["neg_day"] <= pairs["pos_day"]
        # The k nearest on each side of the higher image in its block (ties: lowest key).
        pairs = pairs.sort_values(["pos_key", "grid", "lower_remixes", "before", "gap", "neg_key"])
        side = ["pos_key", "grid", "lower_remixes", "before"]
        pairs = pairs[pairs.groupby(side).cumcount() < k]
        pairs["reach_gap"] = pairs["pos_reach"] - pairs["neg_reach"]
        pairs = pairs[
            (pairs["gap"] <= config.max_publication_gap_days)
            & (pairs["reach_gap"].abs() <= config.max_reach_gap)
        ]
        parts.append(
            pairs[
                [
                    *["prompt_key", "pos_key", "neg_key", "gap", "reach_gap"],
                    *["pos_gen", "neg_gen", "pos_infl", "neg_infl"],
                ]
            ]
        )
    pairs = pd.concat(parts, ignore_index=True).drop_duplicates(["pos_key", "neg_key"])
    pairs = pairs.sort_values(["pos_key", "gap", "neg_key"])
    pairs = pairs[pairs.groupby("pos_key").cumcount() < k]
    pairs = balance_influencers(balance_generators(balance_reach(pairs, config), config), config)
    return pairs[["prompt_key", "pos_key", "neg_key"]]


def side_columns(side: str) -> dict[str, str]:
    """Names of one image's columns once the two images of a pair sit in one row."""
    return {
        "key": f"{side}_key",
        "day": f"{side}_day",
        "reach": f"{side}_reach",
        "generator": f"{side}_gen",
        "influencer": f"{side}_infl",
    }


def balance_reach(pairs: pd.DataFrame, config: PairsConfig) -> pd.DataFrame:
    """Beyond the caliper, as many pairs per band of reach difference whose higher image's
    creator has more reach as fewer (hash-drawn)."""
    pairs = pairs.assign(
        band=np.maximum(np.ceil(pairs["reach_gap"].abs() / config.reach_caliper) - 1, 0),
        direction=np.sign(pairs["reach_gap"]),
        draw=duckdb_hash(
            pairs[["pos_key", "neg_key"]], "hash($seed, 'reach', pos_key, neg_key)", config.seed
        ),
    )
    pairs = pairs.sort_values(["band", "direction", "draw", "pos_key", "neg_key"])
    rank = pairs.groupby(["band", "direction"]).cumcount() + 1
    per_band = pairs.groupby("band")["direction"]
    per_direction = np.minimum(
        per_band.transform(lambda d: (d > 0).sum()), per_band.transform(lambda d: (d < 0).sum())
    )
    keep = (pairs["band"] == 0) | (pairs["direction"] == 0) | (rank <= per_direction)
    return pairs[keep].reset_index(drop=True)


def balance_generators(pairs: pd.DataFrame, config: PairsConfig) -> pd.DataFrame:
    """Pairs across two generators: as many won by each (hash-drawn)."""
    first = np.minimum(pairs["pos_gen"], pairs["neg_gen"])
    second = np.maximum(pairs["pos_gen"], pairs["neg_gen"])
    pairs = pairs.assign(
        first=first,
        second=second,
        draw=duckdb_hash(
            pairs[["pos_key", "neg_key"]], "hash($seed, 'generator', pos_key, neg_key)", config.seed
        ),
    )
    pairs = pairs.sort_values(["first", "second", "pos_gen", "draw", "pos_key", "neg_key"])
    rank = pairs.groupby(["first", "second", "pos_gen"]).cumcount() + 1
    won_by_first = pairs["pos_gen"] == pairs["first"]
    crossed = pairs["first"] != pairs["second"]
    per_couple = pairs.assign(a=won_by_first & crossed, b=~won_by_first & crossed).groupby(
        ["first", "second"]
    )
    per_direction = np.minimum(per_couple["a"].transform("sum"), per_couple["b"].transform("sum"))
    return pairs[~crossed | (rank <= per_direction)].reset_index(drop=True)


def balance_influencers(pairs: pd.DataFrame, config: PairsConfig) -> pd.DataFrame:
    """Pairs of an influencer's image and another's: as many won by each side (hash-drawn)."""
    crossed = pairs["pos_infl"] != pairs["neg_infl"]
    pairs = pairs.assign(
        crossed=crossed,
        draw=duckdb_hash(
            pairs[["pos_key", "neg_key"]],
            "hash($seed, 'influencer', pos_key, neg_key)",
            config.seed,
        ),
    )
    pairs = pairs.sort_values(["crossed", "pos_infl", "draw", "pos_key", "neg_key"])
    rank = pairs.groupby(["crossed", "pos_infl"]).cumcount() + 1
    won_by_influencer = (pairs["crossed"] & pairs["pos_infl"]).sum()
    per_direction = min(won_by_influencer, (pairs["crossed"] & ~pairs["pos_infl"]).sum())
    return pairs[~pairs["crossed"] | (rank <= per_direction)].reset_index(drop=True)


def sample_pandas(
    candidates: pd.DataFrame, features: pd.DataFrame, config: PairsConfig
) -> pd.DataFrame:
    """sql/pairs_sample.sql: hash-drawn caps per image and per prompt, splits per prompt."""
    k = config.max_pairs_per_image
    pairs = candidates.copy()
    pairs["draw"] = duckdb_hash(
        pairs[["pos_key", "neg_key"]], "hash($seed, pos_key, neg_key)", config.seed
    )
    pairs = pairs.sort_values(["pos_key", "draw", "neg_key"])
    pairs = pairs[pairs.groupby("pos_key").cumcount() < k]
    pairs = pairs.sort_values(["neg_key", "draw", "pos_key"])
    pairs = pairs[pairs.groupby("neg_key").cumcount() < k]
    pairs = pairs.sort_values(["prompt_key", "draw", "pos_key", "neg_key"])
    pairs = pairs[pairs.groupby("prompt_key").cumcount() < config.max_pairs_per_prompt]

    prompts = pairs.groupby("prompt_key").size().rename("pairs").reset_index()
    prompts["draw"] = duckdb_hash(
        prompts[["prompt_key"]], "hash($seed, 'split', prompt_key)", config.seed
    )
    prompts = prompts.sort_values(["pairs", "draw", "prompt_key"], ascending=[False, True, True])
    prompts["hand"] = np.arange(len(prompts)) // config.splits.hand_size
    prompts = prompts.sort_values(["hand", "draw", "prompt_key"])
    rank = prompts.groupby("hand").cumcount() + 1
    prompts["position"] = (rank - 0.5) / prompts.groupby("hand")["hand"].transform("size")
    train, val = config.splits.train, config.splits.val
    prompts["split"] = np.where(
        prompts["position"] < train,
        "train",
        np.where(prompts["position"] < train + val, "val", "test"),
    )

    pairs = pairs.merge(prompts[["prompt_key", "split"]], on="prompt_key")
    images = features[["image_key", "image_id", "prompt", "path"]]
    pairs = pairs.merge(
        images.rename(
            columns={"image_key": "pos_key", "image_id": "pos_image_id", "path": "pos_path"}
        ),
        on="pos_key",
    )
    pairs = pairs.merge(
        images.drop(columns="prompt").rename(
            columns={"image_key": "neg_key", "image_id": "neg_image_id", "path": "neg_path"}
        ),
        on="neg_key",
    )
    return pairs[COLUMNS]


def pandas_pairs(export_dir: Path, out_file: Path) -> dict:
    """The same pairs in pandas; writes them to `out_file`; time and peak."""
    config = PairsConfig()
    started = time.perf_counter()
    features = image_features_pandas(export_dir, config)
    featured = time.perf_counter()
    candidates = candidates_pandas(features, config)
    candidated = time.perf_counter()
    pairs = sample_pandas(candidates, features, config)
    seconds = time.perf_counter() - started
    peak = peak_gib()
    pairs.to_parquet(out_file, index=False)
    return {
        "seconds": seconds,
        "peak_gib": peak,
        "pairs": len(pairs),
        "steps": {
            "image_features": featured - started,
            "candidates": candidated - featured,
            "sample": started + seconds - candidated,
        },
    }


# --- driver ----------------------------------------------------------------------------------


def in_fresh_process(function, *arguments) -> dict:
    """Run `function` in a new (spawned) interpreter: its ru_maxrss is that part's own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *arguments).result()


def compare(duckdb_file: Path, pandas_file: Path) -> tuple[bool, str]:
    """Whether both hold the same (split, pos_image_id, neg_image_id) rows, and a line."""
    ours = pd.read_parquet(duckdb_file)
    theirs = pd.read_parquet(pandas_file)
    merged = ours.merge(theirs, on=KEY, how="outer", indicator=True, suffixes=("", "_pandas"))
    only_duckdb = int((merged["_merge"] == "left_only").sum())
    only_pandas = int((merged["_merge"] == "right_only").sum())
    both = merged[merged["_merge"] == "both"]
    other_columns = [column for column in COLUMNS if column not in KEY]
    differing = int(
        sum((both[column] != both[f"{column}_pandas"]).sum() for column in other_columns)
    )
    duplicates = int(ours.duplicated(KEY).sum() + theirs.duplicated(KEY).sum())
    same = only_duckdb == only_pandas == differing == duplicates == 0
    line = (
        f"pairs: DuckDB {len(ours):,}, pandas {len(theirs):,}; only in DuckDB {only_duckdb:,}, "
        f"only in pandas {only_pandas:,}, duplicated keys {duplicates:,}, "
        f"other columns differing {differing:,}"
    )
    if not same:
        print(merged[merged["_merge"] != "both"].head(10).to_string())
    return same, line


def print_part(name: str, result: dict) -> None:
    steps = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in result["steps"].items())
    print(f"  {name:<7} {result['seconds']:8.1f} s  {result['peak_gib']:6.2f} GiB peak  ({steps})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export", type=Path, required=True, help="a (metadata-only) export")
    parser.add_argument(
        "--simulate", action="store_true", help="first write the paper-scale export there"
    )
    parser.add_argument("--skip-pandas", action="store_true", help="time DuckDB only")
    args = parser.parse_args()
    if args.simulate:
        command = [sys.executable, "-m", "social_reward.cli", "simulate", "--metadata-only"]
        command += ["--out", str(args.export), "--overwrite"]
        subprocess.run(command, check=True, stderr=subprocess.DEVNULL)
    rows = {
        name: pq.read_metadata(args.export / file).num_rows
        for name, file in (
            ("images", IMAGES_FILE),
            ("remixes", REMIXES_FILE),
            ("users", USERS_FILE),
        )
    }
    print(f"pair building ({MODE}, PairsConfig defaults) on {args.export}")
    print("  " + ", ".join(f"{name} {count:,}" for name, count in rows.items()))

    with tempfile.TemporaryDirectory(prefix="bench-pairs-") as scratch:
        duckdb_file = Path(scratch) / "duckdb.parquet"
        pandas_file = Path(scratch) / "pandas.parquet"
        floor = in_fresh_process(bare_scan, args.export)
        print_part("scan", floor)
        ours = in_fresh_process(duckdb_pairs, args.export, duckdb_file)
        print_part("DuckDB", ours)
        theirs = None
        if not args.skip_pandas:
            theirs = in_fresh_process(pandas_pairs, args.export, pandas_file)
            print_part("pandas", theirs)
            same, line = compare(duckdb_file, pandas_file)
            print(f"  {line}")
            print("  same pairs" if same else "  PAIRS DIFFER")

    ratio = ours["seconds"] / floor["seconds"]
    met = (
        ours["seconds"] < TARGET_SECONDS
        and ours["peak_gib"] < TARGET_PEAK_GIB
        and ratio <= TARGET_SCAN_RATIO
    )
    summary = (
        f"  summary: DuckDB {ours['seconds']:.1f} s (target < {TARGET_SECONDS} s), "
        f"{ours['peak_gib']:.2f} GiB peak (target < {TARGET_PEAK_GIB} GiB), "
        f"{ratio:.1f}x the bare scan's {floor['seconds']:.1f} s (target <= {TARGET_SCAN_RATIO:g}x)"
    )
    if theirs is not None:
        speedup = theirs["seconds"] / ours["seconds"]
        met = met and speedup >= TARGET_SPEEDUP and same
        summary += (
            f"; pandas {theirs['seconds']:.1f} s, {theirs['peak_gib']:.2f} GiB peak; "
            f"speed-up {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x)"
        )
    print(summary + f"; {ours['pairs']:,} pairs")
    print("  targets met" if met else "  TARGETS MISSED")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
