"""Scoring a table of (prompt, image file) rows with a saved reward, in batches.

The input is a parquet or CSV file with the columns `prompt` and `file` (absolute, or
relative to the input file's folder); the output holds the same rows in the same order
with a `score` column. Unreadable images get an empty score and are reported with their
paths; the other rows are scored. The output is written under a temporary name and renamed
when complete (a crash never leaves a table that looks whole), and is never the input.
Memory stays bounded per batch whatever the images' size: each image is reduced to the
model's input as soon as it is decoded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from social_reward.artifacts import FILE_MODE
from social_reward.errors import SocialRewardError
from social_reward.reward.model import SocialReward

REQUIRED_COLUMNS = ("prompt", "file")
SCORE_COLUMN = "score"
SUFFIXES = (".parquet", ".csv")
ROWS_PER_BATCH = 256  # rows read, scored and written at a time (their inputs held at once)


class ScoringInputError(SocialRewardError, ValueError):
    """An input or output table that cannot be scored, with the file and the reason."""


@dataclass
class ScoringReport:
    rows: int = 0
    scored: int = 0
    errors: list[str] = field(default_factory=list)  # "path: reason", one per unreadable image


def _check_suffix(path: Path, role: str) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise ScoringInputError(
            f"{path}: the {role} must be a .parquet or .csv file, e.g. pairs.parquet"
        )


def _batches(path: Path) -> Iterator[pa.RecordBatch]:
    try:
        if path.suffix.lower() == ".parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=ROWS_PER_BATCH)
        else:
            options = pv.ReadOptions(block_size=1 << 20)
            convert = pv.ConvertOptions(column_types={"prompt": pa.string(), "file": pa.string()})
            yield from pv.open_csv(path, read_options=options, convert_options=convert)
    except (pa.ArrowInvalid, OSError) as error:
        raise ScoringInputError(f"{path}: not a readable table ({error})") from error


def _image_input(reward: SocialReward, path: Path):
    """The model's input for one image file, so that no decoded image outlives its row."""
    with Image.open(path) as image:
        image.load()
        return reward.image_tensor(image)


def score_table(
    reward: SocialReward, input_path: Path, output_path: Path, progress: bool = True
) -> ScoringReport:
    """Score every row of `input_path` into `output_path`; see the module's docstring."""
    _check_suffix(input_path, "input")
    _check_suffix(output_path, "output")
    if not input_path.is_file():
        raise ScoringInputError(f"{input_path}: file missing")
    if output_path.resolve() == input_path.resolve():
        raise ScoringInputError(
            f"{output_path}: the output is the input (rule: scoring never overwrites its "
            f"input); choose another file, e.g. {input_path.with_stem(input_path.stem + '-scored')}"
        )
    output_path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        # The format follows the suffix: the temporary name keeps the output's.
        prefix=f".{output_path.name}.",
        suffix=f".tmp{output_path.suffix}",
        dir=output_path.parent,
    )
    os.close(handle)
    try:
        report = _score_into(reward, input_path, Path(temporary), progress)
        os.chmod(temporary, FILE_MODE)  # mkstemp makes it private; outputs are shared
        os.replace(temporary, output_path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return report


def _score_into(
    reward: SocialReward, input_path: Path, output_path: Path, progress: bool
) -> ScoringReport:
    base = input_path.parent
    report = ScoringReport()
    writer = None
    total = (
        pq.ParquetFile(input_path).metadata.num_rows
        if input_path.suffix.lower() == ".parquet"
        else None
    )
    with tqdm(total=total, desc="score", unit="row", disable=not progress) as bar:
        for batch in _batches(input_path):
            missing = [column for column in REQUIRED_COLUMNS if column not in batch.schema.names]
            if missing:
                raise ScoringInputError(
                    f"{input_path}: column(s) {missing} missing (rule: the input has the columns "
                    f"prompt and file); columns present: {batch.schema.names}"
                )
            prompts = batch.column("prompt").to_pylist()
            files = batch.column("file").to_pylist()
            images, readable = [], []
            for row, (prompt, file) in enumerate(zip(prompts, files, strict=True)):
                path = base / file if file is not None else None
                try:
                    if prompt is None or path is None:
                        raise ValueError("prompt or file is empty")
                    images.append(_image_input(reward, path))
                    readable.append(row)
                except (OSError, ValueError, Image.DecompressionBombError) as error:
                    report.errors.append(f"{path}: {error}")
            scores: list[float | None] = [None] * batch.num_rows
            values = reward.score_pairs([prompts[row] for row in readable], images)
            for row, value in zip(readable, values, strict=True):
                scores[row] = value
            table = pa.Table.from_batches([batch]).append_column(
                SCORE_COLUMN, pa.array(scores, pa.float64())
            )
            writer = _write(table, output_path, writer)
            report.rows += batch.num_rows
            report.scored += len(readable)
            bar.update(batch.num_rows)
    if writer is not None:
        writer.close()
    else:  # an empty input gives an empty output with the score column
        raise ScoringInputError(f"{input_path}: no rows to score")
    return report


def _write(table: pa.Table, path: Path, writer):
    if writer is None:
        if path.suffix.lower() == ".parquet":
            writer = pq.ParquetWriter(path, table.schema)
        else:
            writer = pv.CSVWriter(path, table.schema)
    writer.write_table(table)
    return writer
