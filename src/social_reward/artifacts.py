"""The files passed between stages: their names, their readers, and one way to write metrics.

Stages never import each other; what one writes and another reads is named here once.
Where each stage's folders are is configuration (params.yaml); what is inside them is here:

    <pairs.out_dir>/{train,val,test}.parquet   preference pairs of each split
    <pairs.out_dir>/images.parquet             every image with its prompt group's split
    <pairs.out_dir>/ablation/...               the other pairs mode, same prompt splits
    <pairs.out_dir>/modes.json                 which mode is where
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from social_reward.errors import SocialRewardError

SPLITS = ("train", "val", "test")
TRAIN_SPLIT, VAL_SPLIT, TEST_SPLIT = SPLITS
TRAINED_SPLITS = (TRAIN_SPLIT, VAL_SPLIT)  # what a reward learns from; test is held out
# A pairs file: the prompt, then the id and the file of the positive and the negative image.
PAIR_COLUMNS = ("prompt", "pos_image_id", "neg_image_id", "pos_path", "neg_path")
# Then, per recorded confounder, the positive's side of it (+1, -1, or 0 when both images
# share it): what the trainer keeps the reward neutral across. Optional in files made by hand.
CONFOUNDER_SIDE_COLUMNS = ("generator_side", "influencer_side")
PAIR_FILE_COLUMNS = PAIR_COLUMNS + CONFOUNDER_SIDE_COLUMNS
IMAGE_SPLITS_FILE = "images.parquet"
ABLATION_DIR = "ablation"
MODES_FILE = "modes.json"
UNKNOWN_MODE = "?"  # pairs written before modes.json existed
# Metrics are rounded so that reruns on the same export give the same file (the last digits
# of float sums depend on the order of operations).
METRIC_DIGITS = 4
FILE_MODE = 0o644


class PairDataError(SocialRewardError, ValueError):
    """Pairs or images a later stage cannot use, with the file and the reason."""


def split_file(pairs_dir: Path, split: str) -> Path:
    """The pairs of one split: `<pairs_dir>/<split>.parquet`."""
    return pairs_dir / f"{split}.parquet"


def read_image_splits(pairs_dir: Path) -> pd.DataFrame:
    """Every image of the export with its id, path, prompt, prompt group and split."""
    path = pairs_dir / IMAGE_SPLITS_FILE
    if not path.is_file():
        raise PairDataError(f"{path}: file missing; run the `pairs` stage first")
    return pd.read_parquet(path)


def read_training_images(pairs_dir: Path) -> pd.DataFrame:
    """The images a model may learn from: all but those of the test split's prompt groups
    (images of prompts without pairs included)."""
    images = read_image_splits(pairs_dir)
    return images[images["split"] != TEST_SPLIT].reset_index(drop=True)


def read_modes(pairs_dir: Path) -> dict[str, str]:
    """Which pairs mode is in the main files (`main`) and which in ablation/ (`ablation`)."""
    path = pairs_dir / MODES_FILE
    if not path.is_file():
        return {"main": UNKNOWN_MODE, ABLATION_DIR: UNKNOWN_MODE}
    return json.loads(path.read_text(encoding="utf-8"))


def write_modes(pairs_dir: Path, main: str, ablation: str) -> None:
    """Record which pairs mode is in the main files and which in ablation/ (`read_modes`)."""
    write_text_atomic(
        pairs_dir / MODES_FILE, json.dumps({"main": main, ABLATION_DIR: ablation}) + "\n"
    )


def rounded(value: object, digits: int = METRIC_DIGITS) -> object:
    """Floats rounded to `digits` (NaN as None, which JSON can hold) in nested dicts/lists."""
    if isinstance(value, Mapping):
        return {key: rounded(item, digits) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item, digits) for item in value]
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, digits)
    return value


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, then rename it over `path`: a reader
    sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, FILE_MODE)  # mkstemp makes it private; outputs are shared
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_metrics(path: Path, metrics: Mapping, digits: int | None = METRIC_DIGITS) -> dict:
    """A stage's metrics file (what `dvc metrics show` reads): floats rounded to `digits`
    (None: as they are, for stages that round their own figures), indented JSON. Returns the
    metrics as written."""
    written = dict(metrics) if digits is None else rounded(metrics, digits)
    write_text_atomic(path, json.dumps(written, indent=2) + "\n")
    return written


@dataclass(frozen=True)
class StageResult:
    """What a stage reports to the person who ran it: a few lines and the files it wrote."""

    written: Sequence[Path]
    summary: Sequence[str] = ()
