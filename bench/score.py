"""Benchmark: scoring throughput of `social-reward score` (Lightning `Trainer.predict`) in
rows per second, against one pair at a time.

Same model, same (prompt, image file) rows: the first rows of the export's images table, or
`--synthetic N` generated images (random pixels of `--image-size` px, `--prompts` distinct
prompts; no export needed):
- batched: `score_table`, what `social-reward score` runs: reads the parquet input, scores
  batches of `--rows-per-batch` rows through `Trainer.predict` with the Lightning options
  given (`--accelerator`, `--devices`, `--strategy`, `--precision`; `--decode-workers`
  DataLoader workers decode the images), embeds each distinct prompt once per batch and the
  images in batches of `--batch-size`, writes the output;
- one at a time: `SocialReward.score_pairs([prompt], [file])` called for each row (on this
  process's CPU; `--skip-single` leaves it out, e.g. for large N).
The model is the trained reward (models/reward) when present, else `--architecture` with
random weights (the repository's tiny default backbone unless told). Each way is timed
`--repeats` times after a warm-up and its best time kept (one time with several processes:
Lightning launches them by re-running this script, and their start-up is in the time).
Prints rows per second of each, the speed-up and the largest difference of the two ways'
scores. Target: the batched scoring at least 5x faster, with the same scores.

    python bench/score.py [--rows 512] [--model models/reward] [--architecture NAME]
    python bench/score.py --synthetic 2048 --skip-single [--devices 2 --strategy ddp]
        [--accelerator gpu] [--decode-workers 4]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone
from social_reward.reward.model import CONFIG_FILE, DEFAULT_BATCH, SocialReward
from social_reward.reward.scoring import ROWS_PER_BATCH, SCORE_COLUMN, score_table
from social_reward.training.lightning_options import LightningOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_EXPORT = Path("data")  # images.parquet: prompt and file (relative to the export)
DEFAULT_MODEL = Path("models/reward")
DEFAULT_ROWS = 512
DEFAULT_REPEATS = 1
DEFAULT_IMAGE_SIZE = 256
DEFAULT_PROMPTS = 16
WARM_UP_ROWS = 2
SEED = 0
TARGET_SPEEDUP = 5.0
SCORE_TOLERANCE = 1e-5  # cosine scores: batch shapes change the float rounding only
# Lightning's other processes re-run this script: they find the rows the first one wrote.
SCRATCH_VARIABLE = "SOCIAL_REWARD_BENCH_SCORE_SCRATCH"


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


def synthetic_rows(folder: Path, count: int, size: int, prompts: int) -> pd.DataFrame:
    """`count` PNG files of random pixels (decoding costs what a photo of that size costs)."""
    generator = np.random.default_rng(SEED)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for n in range(count):
        pixels = generator.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / "images" / f"{n}.png", compress_level=1)
        rows.append({"prompt": f"synthetic prompt {n % prompts}", "file": f"images/{n}.png"})
    return pd.DataFrame(rows)


def export_rows(export: Path, count: int) -> pd.DataFrame:
    images = pd.read_parquet(export / "images.parquet", columns=["prompt", "file"])
    rows = images.head(count).reset_index(drop=True)
    rows["file"] = [str(export / file) for file in rows["file"]]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT)
    parser.add_argument("--synthetic", type=int, help="score N generated images instead")
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE)
    parser.add_argument("--prompts", type=int, default=DEFAULT_PROMPTS)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--architecture", default=DEFAULT_BACKBONE)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help="images at a time")
    parser.add_argument("--rows-per-batch", type=int, default=ROWS_PER_BATCH)
    parser.add_argument("--decode-workers", type=int, default=0)
    defaults = LightningOptions()
    parser.add_argument("--accelerator", default=defaults.accelerator)
    parser.add_argument("--devices", default=str(defaults.devices))
    parser.add_argument("--strategy", default=defaults.strategy)
    parser.add_argument("--precision", default=defaults.precision)
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS)
    parser.add_argument("--skip-single", action="store_true", help="no one-at-a-time baseline")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # open_clip: "no pretrained weights loaded"
    options = LightningOptions(
        accelerator=args.accelerator,
        devices=int(args.devices) if args.devices.isdigit() else args.devices,
        strategy=args.strategy,
        precision=args.precision,
    )
    launched = SCRATCH_VARIABLE in os.environ  # one of Lightning's other processes
    several = launched or options.devices not in (1, "1") or options.strategy != "auto"
    repeats = 1 if several else args.repeats  # Lightning launches the processes once

    scratch = os.environ.get(SCRATCH_VARIABLE) or tempfile.mkdtemp(prefix="bench-score-")
    os.environ[SCRATCH_VARIABLE] = scratch  # inherited by the processes Lightning starts
    input_path, output_path = Path(scratch) / "rows.parquet", Path(scratch) / "scored.parquet"
    try:
        if not launched:
            if args.synthetic:
                rows = synthetic_rows(Path(scratch), args.synthetic, args.image_size, args.prompts)
                source = f"{args.synthetic} synthetic {args.image_size} px images"
            else:
                rows = export_rows(from_repo(args.export), args.rows)
                source = f"{len(rows)} rows of {args.export}/images.parquet"
            rows.to_parquet(input_path, index=False)
        rows = pd.read_parquet(input_path)
        reward, described = load_reward(args.model, args.architecture, args.batch_size)
        if not launched:
            print(f"scoring: {described}, {torch.get_num_threads()} threads")
            print(
                f"  {source}, {rows['prompt'].nunique()} distinct prompts; batch size "
                f"{args.batch_size}, {args.rows_per_batch} rows per batch, "
                f"{args.decode_workers} decode workers; {options.trainer_arguments()}; "
                f"best of {repeats}"
            )
        files = [str(Path(scratch) / file) for file in rows["file"]]
        prompts = list(rows["prompt"])
        reward.score_pairs(prompts[:WARM_UP_ROWS], files[:WARM_UP_ROWS])  # warm-up
        batched_seconds, report = best_time(
            lambda: score_table(
                reward,
                input_path,
                output_path,
                progress=False,
                options=options,
                decode_workers=args.decode_workers,
                rows_per_batch=args.rows_per_batch,
            ),
            repeats,
        )
        if not report.main_process:
            return 0
        return summary(args, reward, rows, files, batched_seconds, report, output_path, repeats)
    finally:
        if not launched:
            shutil.rmtree(scratch, ignore_errors=True)


def summary(args, reward, rows, files, batched_seconds, report, output_path, repeats) -> int:
    """Print the figures; the exit status says whether the target is met."""
    batched_scores = pd.read_parquet(output_path)[SCORE_COLUMN].to_numpy()
    lines = [("batched (social-reward score)", batched_seconds)]
    if not args.skip_single:
        prompts = list(rows["prompt"])

        def one_at_a_time() -> list[float]:
            return [
                reward.score_pairs([prompt], [file])[0]
                for prompt, file in zip(prompts, files, strict=True)
            ]

        single_seconds, single_scores = best_time(one_at_a_time, repeats)
        lines.append(("one at a time (score_pairs/row)", single_seconds))
    print(f"  {'':<34} {'seconds':>8} {'rows/s':>9}")
    for name, seconds in lines:
        print(f"  {name:<34} {seconds:8.2f} {len(rows) / seconds:9.1f}")
    same = report.scored == len(rows)
    if args.skip_single:
        print(f"  scored {report.scored} of {report.rows} rows; no one-at-a-time baseline")
        return 0 if same else 1
    difference = float(abs(batched_scores - np.asarray(single_scores)).max())
    speedup = single_seconds / batched_seconds
    print(
        f"  scored {report.scored} of {report.rows} rows; max |score difference| "
        f"{difference:.2e} (tolerance {SCORE_TOLERANCE:.0e})"
    )
    same = same and difference <= SCORE_TOLERANCE
    met = speedup >= TARGET_SPEEDUP and same
    print(
        f"  summary: speed-up {speedup:.1f}x (target >= {TARGET_SPEEDUP:.0f}x)"
        + ("" if same else "; SCORES DIFFER")
        + ("; target met" if met else "; TARGET MISSED")
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
