"""Benchmark: scoring throughput of `social-reward score` against one pair at a time.

Same model, same (prompt, image file) rows (the first rows of the export's images table):
- batched: `score_table`, what `social-reward score` runs: reads the parquet input, embeds
  each distinct prompt once and the images in batches of `--batch-size`, writes the output;
- one at a time: `SocialReward.score_pairs([prompt], [file])` called for each row.
The model is the trained reward (models/reward) when present, else `--architecture` with
random weights (the repository's tiny default backbone unless told). Each way is timed
`--repeats` times after a warm-up and its best time kept. Prints images per second of each,
the speed-up and the largest difference of the two ways' scores.
Target: the batched scoring at least 5x faster, with the same scores.

    python bench/score.py [--rows 512] [--model models/reward] [--architecture NAME]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch

from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone
from social_reward.reward.model import CONFIG_FILE, DEFAULT_BATCH, SocialReward
from social_reward.reward.scoring import SCORE_COLUMN, score_table

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPORT = Path("data")  # images.parquet: prompt and file (relative to the export)
DEFAULT_MODEL = Path("models/reward")
DEFAULT_ROWS = 512
DEFAULT_REPEATS = 1
WARM_UP_ROWS = 2
SEED = 0
TARGET_SPEEDUP = 5.0
SCORE_TOLERANCE = 1e-5  # cosine scores: batch shapes change the float rounding only


def from_repo(path: Path) -> Path:
    return path if path.is_absolute() else REPO_ROOT / path


def load_reward(model: Path, architecture: str, batch_size: int) -> tuple[SocialReward, str]:
    """The saved reward when there is one, else the architecture with random weights."""
    folder = from_repo(model)
    if (folder / CONFIG_FILE).is_file():
        reward = SocialReward.from_pretrained(folder, batch_size=batch_size)
        origin = f"trained, {model}"
    else:
        torch.manual_seed(SEED)
        reward = SocialReward(build_backbone(architecture), architecture, batch_size=batch_size)
        origin = f"random weights; no trained reward at {model}"
    visual = reward.backbone.visual
    size = visual.preprocess_cfg["size"]
    size = size if isinstance(size, int) else size[0]
    return reward, f"{reward.name} ({type(visual).__name__} vision tower, {size} px; {origin})"


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, object]:
    """The shortest of `repeats` runs, and the last run's result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--architecture", default=DEFAULT_BACKBONE)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images at a time")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # open_clip: "no pretrained weights loaded"

    export = from_repo(args.export)
    images = pd.read_parquet(export / "images.parquet", columns=["prompt", "file"])
    rows = images.head(args.rows).reset_index(drop=True)
    rows["file"] = [str(export / file) for file in rows["file"]]
    prompts, files = list(rows["prompt"]), list(rows["file"])
    reward, described = load_reward(args.model, args.architecture, args.batch_size)
    print(f"scoring on cpu: {described}, {torch.get_num_threads()} threads")
    print(
        f"  {len(rows)} rows of {args.export}/images.parquet, {rows['prompt'].nunique()} "
        f"distinct prompts; batch size {args.batch_size}; best of {args.repeats}"
    )

    reward.score_pairs(prompts[:WARM_UP_ROWS], files[:WARM_UP_ROWS])  # warm-up

    def one_at_a_time() -> list[float]:
        return [
            reward.score_pairs([prompt], [file])[0]
            for prompt, file in zip(prompts, files, strict=True)
        ]

    with tempfile.TemporaryDirectory(prefix="bench-score-") as scratch:
        input_path, output_path = Path(scratch) / "rows.parquet", Path(scratch) / "scored.parquet"
        rows.to_parquet(input_path, index=False)
        batched_seconds, report = best_time(
            lambda: score_table(reward, input_path, output_path, progress=False), args.repeats
        )
        batched_scores = pd.read_parquet(output_path)[SCORE_COLUMN].to_numpy()
    single_seconds, single_scores = best_time(one_at_a_time, args.repeats)

    difference = float(abs(batched_scores - pd.Series(single_scores).to_numpy()).max())
    speedup = single_seconds / batched_seconds
    print(f"  {'':<34} {'seconds':>8} {'images/s':>9}")
    for name, seconds in (
        ("batched (social-reward score)", batched_seconds),
        ("one at a time (score_pairs/row)", single_seconds),
    ):
        print(f"  {name:<34} {seconds:8.2f} {len(rows) / seconds:9.1f}")
    print(
        f"  scored {report.scored} of {report.rows} rows; max |score difference| "
        f"{difference:.2e} (tolerance {SCORE_TOLERANCE:.0e})"
    )
    same = report.scored == len(rows) and difference <= SCORE_TOLERANCE
    met = speedup >= TARGET_SPEEDUP and same
    print(
        f"  summary: speed-up {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x)"
        + ("" if same else "; SCORES DIFFER")
        + ("; target met" if met else "; TARGET MISSED")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
