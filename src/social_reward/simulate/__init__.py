"""The simulated community: an export that follows the contract, and its ground truth.

`write_export` is the whole simulator: it builds the world day by day, draws the
engagement, renders the images and writes the three tables, the manifest and (outside
the export) the truth file.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from social_reward import __version__
from social_reward.export import (
    IMAGES_FILE,
    MANIFEST_FILE,
    REMIXES_FILE,
    SCHEMA_VERSION,
    USERS_FILE,
    UTC_TIMESTAMP,
    Manifest,
    format_utc,
    write_table,
)
from social_reward.simulate.config import WorldConfig
from social_reward.simulate.engagement import KIND_LETTERS, Events, simulate_exposure
from social_reward.simulate.render import ImageSpec, render_image, specs_from_columns
from social_reward.simulate.world import (
    SECONDS_PER_DAY,
    ImageBatch,
    Prompts,
    Users,
    build_images_of_day,
    build_prompts,
    build_users,
    daily_counts,
    surface_variants,
)
from social_reward.truth import TRUTH_MANIFEST_KEY

IMAGES_PER_RENDER_TASK = 256


@dataclass(frozen=True)
class SimulationSummary:
    users: int
    images: int
    remixes: int
    prompts: int
    exported_at: str


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _timestamps(world: WorldConfig, seconds: np.ndarray) -> pa.Array:
    start_us = int(world.start.timestamp()) * 1_000_000
    return pa.array(start_us + seconds.astype(np.int64) * 1_000_000, pa.int64()).cast(UTC_TIMESTAMP)


def manifest_for(world: WorldConfig, metadata_only: bool) -> Manifest:
    options = (
        f"seed={world.seed} users={world.users} images={world.images} "
        f"days={world.days} image_size={world.image_size}"
        + (f" snapshot_day={world.snapshot_day}" if world.snapshot_day else "")
    )
    kind = "metadata only, no image files" if metadata_only else "with images"
    return Manifest(
        schema_version=SCHEMA_VERSION,
        exported_at=world.start + timedelta(days=world.export_day),
        source=f"{world.source} {__version__} ({options}; {kind})",
    )


def _render_chunk(world: WorldConfig, jobs: list[tuple[ImageSpec, str]]) -> None:
    for spec, path in jobs:
        render_image(spec, world).save(path, format="PNG", compress_level=6)


def spec_columns(
    world: WorldConfig, images: ImageBatch, prompts: Prompts, users: Users
) -> dict[str, np.ndarray]:
    """The render specification of every image, column-wise (the fields of ImageSpec)."""
    vocab = world.vocabulary
    subjects, styles = np.array(vocab.subjects), np.array(vocab.styles)
    return {
        "colour": np.array(list(vocab.colours))[prompts.colour[images.prompt]],
        "subject": subjects[prompts.subject[images.prompt]],
        "background": np.array(list(vocab.backgrounds))[prompts.background[images.prompt]],
        "style": styles[prompts.style[images.prompt]],
        "drawn_subject": subjects[images.drawn_subject],
        "drawn_style": styles[images.drawn_style],
        "colour_match": images.colour_match,
        "hue_shift_sign": images.hue_shift_sign,
        "composition": images.composition,
        "contrast": images.contrast,
        "artifacts": images.artifacts,
        "old_generator": ~images.new_generator,
        "influencer": users.is_influencer[images.creator],
        "render_seed": images.render_seed,
    }


def _concat(batches: list, cls: type) -> object:
    names = cls.__dataclass_fields__
    return cls(**{name: np.concatenate([getattr(b, name) for b in batches]) for name in names})


def prepare_output(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{out_dir} is not empty; pass --overwrite to replace the export in it"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def write_export(
    world: WorldConfig,
    out_dir: Path,
    truth_path: Path | None,
    metadata_only: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> SimulationSummary:
    prepare_output(out_dir, overwrite)
    snapshot_day = world.export_day
    growth = world.engagement.traffic_growth_per_day
    users = build_users(world, snapshot_day)
    prompts = build_prompts(world)
    creation_cumulative = np.cumsum(users.creation_weight)
    remix_cumulative = np.cumsum(users.remix_weight)
    prompt_cumulative = np.cumsum(prompts.popularity)
    per_day = daily_counts(world.images, world.days, snapshot_day, growth)

    batches: list[ImageBatch] = []
    event_parts: list[Events] = []
    impressions: list[np.ndarray] = []
    first = 0
    for day in tqdm(range(snapshot_day), desc="simulate: days", unit="day", disable=not progress):
        batch = build_images_of_day(
            world,
            day,
            int(per_day[day]),
            first,
            users,
            prompts,
            creation_cumulative,
            prompt_cumulative,
        )
        first += len(batch)
        exposure = simulate_exposure(
            world, batch, day, snapshot_day, users, prompts, remix_cumulative
        )
        batches.append(batch)
        event_parts.append(exposure.events)
        impressions.append(exposure.impressions)
    images = _concat(batches, ImageBatch)
    events = _concat(event_parts, Events)

    image_ids = _ids("img", images.index, 7)
    day_folders = pc.strftime(_timestamps(world, images.published_at), format="%Y-%m-%d").to_numpy(
        zero_copy_only=False
    )
    files = pc.binary_join_element_wise(
        "images/", pa.array(day_folders), "/", image_ids, ".png", ""
    )
    specs = spec_columns(world, images, prompts, users)
    if not metadata_only:
        for folder in sorted(set(day_folders)):
            (out_dir / "images" / folder).mkdir(parents=True, exist_ok=True)
        paths = [str(out_dir / file) for file in files.to_pylist()]
        _render_all(
            world, list(zip(specs_from_columns(specs), paths, strict=True)), workers, progress
        )

    variants = pa.array([v for text in prompts.texts for v in surface_variants(text)])
    prompt_texts = variants.take(pa.array(images.prompt * 5 + images.prompt_variant))
    generator = pa.array(world.generator.versions, pa.string()).take(
        pa.array(images.new_generator.astype(np.int64))
    )
    all_impressions = np.concatenate(impressions)
    images_table = pa.table(
        {
            "image_id": image_ids,
            "creator_id": _ids("usr", images.creator, 7),
            "prompt": prompt_texts,
            "generator": generator,
            "published_at": _timestamps(world, images.published_at),
            "file": files,
            "width": pa.array(np.full(len(images.index), world.image_size, np.int64)),
            "height": pa.array(np.full(len(images.index), world.image_size, np.int64)),
            "impressions": pa.array(
                np.nan_to_num(all_impressions).astype(np.int64), mask=np.isnan(all_impressions)
            ),
        }
    )

    order = np.lexsort((events.sequence, events.group, events.kind, events.image, events.at))
    events = Events(*(getattr(events, name)[order] for name in Events.__dataclass_fields__))
    kind_letters = pa.array(KIND_LETTERS).take(pa.array(events.kind.astype(np.int64)))
    remix_ids = pc.binary_join_element_wise(
        _ids("rmx", events.image, 7),
        kind_letters,
        pc.cast(pa.array(events.group), pa.string()),
        pc.cast(pa.array(events.sequence), pa.string()),
        "-",
    )
    remixes_table = pa.table(
        {
            "remix_id": remix_ids,
            "source_image_id": _ids("img", events.image, 7),
            "remixer_id": _ids("usr", events.remixer, 7),
            "remixed_at": _timestamps(world, events.at),
        }
    )
    # The contract's users table: one row per user who appears in either table.
    active = np.unique(np.concatenate([images.creator, events.remixer]))
    users_table = pa.table(
        {
            "user_id": _ids("usr", active, 7),
            "followers": pa.array(users.followers[active]),
            "is_influencer": pa.array(users.is_influencer[active]),
            "joined_at": _timestamps(world, users.joined_at[active]),
        }
    )
    write_table(images_table, out_dir / IMAGES_FILE)
    write_table(remixes_table, out_dir / REMIXES_FILE)
    write_table(users_table, out_dir / USERS_FILE)
    manifest = manifest_for(world, metadata_only)
    (out_dir / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
    if truth_path is not None:
        write_truth(images, image_ids, specs, manifest, truth_path)
    return SimulationSummary(
        users=len(users_table),
        images=len(images.index),
        remixes=len(remixes_table),
        prompts=prompts.count,
        exported_at=format_utc(manifest.exported_at),
    )


def _render_all(
    world: WorldConfig, jobs: list[tuple[ImageSpec, str]], workers: int | None, progress: bool
) -> None:
    chunks = [
        jobs[start : start + IMAGES_PER_RENDER_TASK]
        for start in range(0, len(jobs), IMAGES_PER_RENDER_TASK)
    ]
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(jobs), desc="simulate: render", unit="img", disable=not progress)
    with bar:
        if workers == 1:
            for chunk in chunks:
                _render_chunk(world, chunk)
                bar.update(len(chunk))
            return
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_render_chunk, world, chunk) for chunk in chunks]
            for future, chunk in zip(futures, chunks, strict=True):
                future.result()
                bar.update(len(chunk))


def write_truth(
    images: ImageBatch,
    image_ids: pa.Array,
    specs: dict[str, np.ndarray],
    manifest: Manifest,
    truth_path: Path,
) -> None:
    """The ground truth, outside the export: true appeal, the hidden attributes behind it and
    each image's render specification (so that evaluation can redraw an image with one
    confounder's trace toggled).

    The export's manifest is stored in the file's metadata, so a reader can tell whether a
    truth file belongs to the export beside it.
    """
    table = pa.table(
        {
            "image_id": image_ids,
            "appeal": pa.array(images.appeal, pa.float64()),
            "subject_match": images.subject_match,
            "style_match": images.style_match,
            **specs,
        }
    )
    metadata = {TRUTH_MANIFEST_KEY: manifest.to_json().encode()}
    truth_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(metadata), truth_path, compression="zstd")


__all__ = ["SECONDS_PER_DAY", "SimulationSummary", "WorldConfig", "write_export"]
