"""Scoring a table of (prompt, image file) rows with a saved reward, in batches, through
Lightning's `Trainer.predict`: one process or many (DDP, several nodes), as training runs.

The input is a parquet or CSV file with the columns `prompt` and `file` (absolute, or
relative to the input file's folder); the output holds the same rows in the same order
with a `score` column. Unreadable images get an empty score and are reported with their
paths; the other rows are scored. The output is written under a temporary name and renamed
when complete (a crash never leaves a table that looks whole), and is never the input.

How it runs (so that millions of images take the multi-GPU path training takes):
- the input is read in record batches of `rows_per_batch` rows; batch i is scored by the
  process of global rank i % world_size, and in that process by DataLoader worker
  (i // world_size) % decode_workers, which decodes its images (each reduced to the model's
  input as soon as it is decoded: memory stays bounded per batch whatever the images' size);
- `predict_step` scores a batch with the reward's own `score_pairs`, so the scores are those
  of `SocialReward.score_pairs` for the same rows;
- every process writes its batches to its own part file (one row group per batch) in a
  hidden folder beside the output (a folder every node must see), and its counts and errors;
- once all parts are written, global rank 0 merges them, streaming one batch at a time, in
  input order into the temporary file and renames it. Its report holds every process's rows
  and errors; the other processes return their own share, marked `main_process=False`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import pyarrow as pa
import pyarrow.csv as pv
import pyarrow.parquet as pq
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from social_reward.artifacts import FILE_MODE
from social_reward.errors import SocialRewardError
from social_reward.reward.model import SocialReward
from social_reward.training.lightning_options import LightningOptions
from social_reward.training.lightning_trainer import build_trainer

REQUIRED_COLUMNS = ("prompt", "file")
SCORE_COLUMN = "score"
SUFFIXES = (".parquet", ".csv")
ROWS_PER_BATCH = 256  # rows read, scored and written at a time (their inputs held at once)
CSV_BLOCK_BYTES = 1 << 20

# Lightning's notes that do not apply here: the record batches carry their own index (no
# sampler to infer it from), the number of decoding workers is the caller's choice, and
# Lightning 2.6's own use of a torch API deprecated since (nothing a caller can change).
_QUIET_WARNINGS = (
    "Couldn't infer the batch indices",
    ".*does not have many workers",
    r".*isinstance\(treespec, LeafSpec\)",
)


class ScoringInputError(SocialRewardError, ValueError):
    """An input or output table that cannot be scored, with the file and the reason."""


@dataclass
class ScoringReport:
    rows: int = 0
    scored: int = 0
    errors: list[str] = field(default_factory=list)  # "path: reason", one per unreadable image
    # False in the other processes of a multi-process run: their report is their share only,
    # and the caller leaves printing to the main process.
    main_process: bool = True


def _check_suffix(path: Path, role: str) -> None:
    if path.suffix.lower() not in SUFFIXES:
        raise ScoringInputError(
            f"{path}: the {role} must be a .parquet or .csv file, e.g. pairs.parquet"
        )


def _csv_reader(path: Path) -> pv.CSVStreamingReader:
    options = pv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    convert = pv.ConvertOptions(column_types={"prompt": pa.string(), "file": pa.string()})
    return pv.open_csv(path, read_options=options, convert_options=convert)


def _batches(path: Path, rows_per_batch: int = ROWS_PER_BATCH) -> Iterator[pa.RecordBatch]:
    """The input's record batches of at most `rows_per_batch` rows, the same in every process."""
    try:
        if path.suffix.lower() == ".parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=rows_per_batch)
        else:
            for block in _csv_reader(path):
                for start in range(0, block.num_rows, rows_per_batch):
                    yield block.slice(start, rows_per_batch)
    except (pa.ArrowInvalid, OSError) as error:
        raise ScoringInputError(f"{path}: not a readable table ({error})") from error


def _check_input(path: Path) -> None:
    """Refuse, before any process starts, a table without the columns or without rows."""
    try:
        if path.suffix.lower() == ".parquet":
            parquet = pq.ParquetFile(path)
            names, empty = parquet.schema_arrow.names, parquet.metadata.num_rows == 0
        else:
            reader = _csv_reader(path)
            names = reader.schema.names
            try:
                empty = reader.read_next_batch().num_rows == 0
            except StopIteration:
                empty = True
    except (pa.ArrowInvalid, OSError) as error:
        raise ScoringInputError(f"{path}: not a readable table ({error})") from error
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise ScoringInputError(
            f"{path}: column(s) {missing} missing (rule: the input has the columns "
            f"prompt and file); columns present: {names}"
        )
    if empty:
        raise ScoringInputError(f"{path}: no rows to score")


def _image_input(reward: SocialReward, path: Path) -> torch.Tensor:
    """The model's input for one image file, so that no decoded image outlives its row."""
    with Image.open(path) as image:
        image.load()
        return reward.image_tensor(image)


def _decoded(reward: SocialReward, base: Path, index: int, rows: pa.RecordBatch) -> dict:
    """One record batch with the model inputs of its readable images and the others' errors."""
    prompts = rows.column("prompt").to_pylist()
    files = rows.column("file").to_pylist()
    images, readable, errors = [], [], []
    for row, (prompt, file) in enumerate(zip(prompts, files, strict=True)):
        path = base / file if file is not None else None
        try:
            if prompt is None or path is None:
                raise ValueError("prompt or file is empty")
            images.append(_image_input(reward, path))
            readable.append(row)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            errors.append(f"{path}: {error}")
    return {
        "index": index,
        "rows": rows,
        "prompts": [prompts[row] for row in readable],
        "images": images,
        "readable": readable,
        "errors": errors,
    }


class _ShardBatches(IterableDataset):
    """This process's record batches, decoded: batch i goes to rank i % world_size, and the
    rank's j-th batch to worker j % workers, so no image is decoded twice."""

    def __init__(
        self,
        reward: SocialReward,
        input_path: Path,
        rows_per_batch: int,
        rank: int,
        world_size: int,
    ) -> None:
        self.reward, self.input_path, self.rows_per_batch = reward, input_path, rows_per_batch
        self.rank, self.world_size = rank, world_size

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for index, rows in enumerate(_batches(self.input_path, self.rows_per_batch)):
            rank, turn = index % self.world_size, index // self.world_size
            if rank == self.rank and turn % workers == worker:
                yield _decoded(self.reward, self.input_path.parent, index, rows)


class ScoringModule(L.LightningModule):
    """The reward as a LightningModule: Lightning places its backbone (device, precision)
    and feeds it this process's batches; `predict_step` scores them with `score_pairs`."""

    def __init__(
        self,
        reward: SocialReward,
        input_path: Path,
        rows_per_batch: int = ROWS_PER_BATCH,
        decode_workers: int = 0,
    ) -> None:
        super().__init__()
        self.reward = reward
        backbone = getattr(reward, "backbone", None)
        if isinstance(backbone, torch.nn.Module):
            self.backbone = backbone  # a submodule: moved to the device with the module
        self.input_path, self.rows_per_batch = input_path, rows_per_batch
        self.decode_workers = decode_workers

    def predict_dataloader(self) -> DataLoader:
        """Made once the processes are joined, when this one's rank is known."""
        shard = _ShardBatches(
            self.reward,
            self.input_path,
            self.rows_per_batch,
            self.trainer.global_rank,
            self.trainer.world_size,
        )
        return DataLoader(
            shard,
            batch_size=None,  # the dataset yields whole batches
            num_workers=self.decode_workers,
            # At most one batch of decoded images waiting per worker.
            prefetch_factor=1 if self.decode_workers else None,
        )

    def predict_step(self, batch: dict) -> dict:
        """The batch's rows with their scores (None where the image was unreadable)."""
        rows: pa.RecordBatch = batch["rows"]
        scores: list[float | None] = [None] * rows.num_rows
        values = self.reward.score_pairs(batch["prompts"], batch["images"])
        for row, value in zip(batch["readable"], values, strict=True):
            scores[row] = value
        table = pa.Table.from_batches([rows]).append_column(
            SCORE_COLUMN, pa.array(scores, pa.float64())
        )
        return {
            "index": batch["index"],
            "table": table,
            "scored": len(batch["readable"]),
            "errors": batch["errors"],
        }


@dataclass
class _Shard:
    """What one process scored: its batches' indices in its part file's order, and errors."""

    groups: list[int] = field(default_factory=list)  # row group n of the part = input batch
    rows: int = 0
    scored: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (input batch, error)


class PartWriter(BasePredictionWriter):
    """Each process's scored batches into its own part file; then, on global rank 0, the
    parts merged in input order into the output (under a temporary name, then renamed)."""

    def __init__(self, input_path: Path, output_path: Path) -> None:
        super().__init__(write_interval="batch")
        self.input_path, self.output_path = input_path, output_path
        self.folder: Path | None = None  # the parts, beside the output: every node sees it
        self.made_folder = False
        self.writer: pq.ParquetWriter | None = None
        self.shard = _Shard()
        self.report: ScoringReport | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        folder = None
        if trainer.is_global_zero:
            folder = tempfile.mkdtemp(
                prefix=f".{self.output_path.name}.", suffix=".parts", dir=self.output_path.parent
            )
            self.folder, self.made_folder = Path(folder), True
        self.folder = Path(trainer.strategy.broadcast(folder, src=0))

    def write_on_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        prediction: Any,
        batch_indices: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        table: pa.Table = prediction["table"]
        if table.num_rows:
            if self.writer is None:
                part = _part(self.folder, trainer.global_rank)
                self.writer = pq.ParquetWriter(part, table.schema)
            self.writer.write_table(table, row_group_size=table.num_rows)
            self.shard.groups.append(prediction["index"])
        self.shard.rows += table.num_rows
        self.shard.scored += prediction["scored"]
        self.shard.errors += [(prediction["index"], error) for error in prediction["errors"]]

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.close()
        summary = _part(self.folder, trainer.global_rank).with_suffix(".json")
        summary.write_text(json.dumps(asdict(self.shard)))
        trainer.strategy.barrier("scoring parts written")
        if trainer.is_global_zero:
            self.report = _merge(self.folder, trainer.world_size, self.input_path, self.output_path)
        else:  # nothing more to wait for: rank 0 merges alone
            errors = [error for _, error in self.shard.errors]
            self.report = ScoringReport(
                self.shard.rows, self.shard.scored, errors, main_process=False
            )

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def discard(self) -> None:
        """Remove the parts (finished or not): the process that made the folder does."""
        self.close()
        if self.made_folder and self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _part(folder: Path | None, rank: int) -> Path:
    assert folder is not None, "the part folder is made in `setup`"
    return folder / f"rank-{rank:05d}.parquet"


def _merge(folder: Path, world_size: int, input_path: Path, output_path: Path) -> ScoringReport:
    """The parts in input order into `output_path`, one batch in memory at a time."""
    shards = [
        _Shard(**json.loads(_part(folder, rank).with_suffix(".json").read_text()))
        for rank in range(world_size)
    ]
    errors = sorted(
        (tuple(error) for shard in shards for error in shard.errors), key=lambda e: e[0]
    )
    report = ScoringReport(
        rows=sum(shard.rows for shard in shards),
        scored=sum(shard.scored for shard in shards),
        errors=[error for _, error in errors],
    )
    locations = sorted(
        (index, rank, group)
        for rank, shard in enumerate(shards)
        for group, index in enumerate(shard.groups)
    )
    if not locations:
        raise ScoringInputError(f"{input_path}: no rows to score")
    handle, temporary = tempfile.mkstemp(
        # The format follows the suffix: the temporary name keeps the output's.
        prefix=f".{output_path.name}.",
        suffix=f".tmp{output_path.suffix}",
        dir=output_path.parent,
    )
    os.close(handle)
    parts: dict[int, pq.ParquetFile] = {}
    writer = None
    try:
        for _, rank, group in locations:
            if rank not in parts:
                parts[rank] = pq.ParquetFile(_part(folder, rank))
            writer = _write(parts[rank].read_row_group(group), Path(temporary), writer)
        writer.close()
        os.chmod(temporary, FILE_MODE)  # mkstemp makes it private; outputs are shared
        os.replace(temporary, output_path)
    finally:
        for part in parts.values():
            part.close()
        Path(temporary).unlink(missing_ok=True)
    return report


def _write(table: pa.Table, path: Path, writer):
    if writer is None:
        if path.suffix.lower() == ".parquet":
            writer = pq.ParquetWriter(path, table.schema)
        else:
            writer = pv.CSVWriter(path, table.schema)
    writer.write_table(table)
    return writer


@contextmanager
def _quiet(progress: bool) -> Iterator[None]:
    """Lightning's notes that do not apply to scoring off; its device summary too unless
    progress is shown."""
    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    if not progress:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for message in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=message)
            yield
    finally:
        logger.setLevel(level)


def score_table(
    reward: SocialReward,
    input_path: Path,
    output_path: Path,
    progress: bool = True,
    options: LightningOptions | None = None,
    decode_workers: int = 0,
    rows_per_batch: int = ROWS_PER_BATCH,
) -> ScoringReport:
    """Score every row of `input_path` into `output_path`; see the module's docstring.

    `options` are the trainers' Lightning options (default: one CPU process); with several
    processes (e.g. `devices=2, strategy="ddp"`) Lightning launches them by re-running the
    command, as for training. A "-true" precision converts the reward's weights in place.
    """
    _check_suffix(input_path, "input")
    _check_suffix(output_path, "output")
    if not input_path.is_file():
        raise ScoringInputError(f"{input_path}: file missing")
    if output_path.resolve() == input_path.resolve():
        raise ScoringInputError(
            f"{output_path}: the output is the input (rule: scoring never overwrites its "
            f"input); choose another file, e.g. {input_path.with_stem(input_path.stem + '-scored')}"
        )
    if decode_workers < 0 or rows_per_batch < 1:
        raise ScoringInputError(
            f"decode_workers {decode_workers} and rows_per_batch {rows_per_batch}: "
            "need decode_workers >= 0 and rows_per_batch >= 1"
        )
    _check_input(input_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(input_path, output_path)
    module = ScoringModule(reward, input_path, rows_per_batch, decode_workers)
    options = options or LightningOptions()
    with _quiet(progress):
        try:
            trainer = build_trainer(
                options,
                [writer],
                progress,
                enable_checkpointing=False,
                use_distributed_sampler=False,  # the dataset shards the batches itself
            )
        except (MisconfigurationException, ValueError) as error:  # Lightning's refusal
            raise ScoringInputError(
                f"Lightning options {options.trainer_arguments()} refused: {error} "
                "(rule: options Lightning's Trainer takes), e.g. --accelerator cpu --devices 1"
            ) from error
        try:
            trainer.predict(module, return_predictions=False)
        finally:
            writer.discard()
    assert writer.report is not None, "on_predict_end sets the report"
    return writer.report
