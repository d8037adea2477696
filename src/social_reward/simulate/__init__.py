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
from pydantic import ValidationError
from tqdm import tqdm

from social_reward import __version__
from social_reward.data.export import (
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
from social_reward.data.truth import TRUTH_MANIFEST_KEY
from social_reward.errors import SocialRewardError
from social_reward.simulate.config import WorldConfig, drifted
from social_reward.simulate.engagement import KIND_LETTERS, Events, simulate_exposure
from social_reward.simulate.render import ImageSpec, render_image, specs_from_columns
from social_reward.simulate.world import (
    SURFACE_VARIANTS,
    ImageBatch,
    Prompts,
    Users,
    build_images_of_day,
    build_prompts,
    build_users,
    daily_counts,
    surface_variants,
)

IMAGES_PER_RENDER_TASK = 256
ID_DIGITS = 7  # ids such as img0001234, usr0000042


class SimulationError(SocialRewardError, ValueError):
    """Options that describe no world, or an output folder that holds something else."""


def world_from_options(
    options: dict[str, int], later_days: int = 0, drifted_world: bool = False
) -> WorldConfig:
    """The world of `social-reward simulate`'s options (seed and sizes); `later_days` more of
    engagement and new images, or a `drifted_world` (new generator, colours and words)."""
    if later_days < 0:
        raise SimulationError(f"--later-days must be >= 0, got {later_days}")
    try:
        world = WorldConfig(**options)
    except ValidationError as error:
        raise SimulationError(f"simulation options {options}: {error}") from error
    if later_days:
        world = world.model_copy(update={"snapshot_day": world.days + later_days})
    return drifted(world) if drifted_world else world


@dataclass(frozen=True)
class SimulationSummary:
    users: int
    images: int
    remixes: int
    prompts: int
    exported_at: str


def _ids(prefix: str, numbers: np.ndarray) -> pa.Array:
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, pa.int64()), pa.string()), ID_DIGITS, "0")
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
            raise SimulationError(
                f"{out_dir} is not empty; pass --overwrite to replace the export in it"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


@dataclass
class _Community:
    """Everything drawn for one export, before it becomes tables."""

    users: Users
    prompts: Prompts
    images: ImageBatch
    events: Events
    impressions: np.ndarray


def _simulate_days(world: WorldConfig, progress: bool) -> _Community:
    snapshot_day = world.export_day
    users = build_users(world, snapshot_day)
    prompts = build_prompts(world)
    creation_cumulative = np.cumsum(users.creation_weight)
    remix_cumulative = np.cumsum(users.remix_weight)
    prompt_cumulative = np.cumsum(prompts.popularity)
    growth = world.engagement.traffic_growth_per_day
    per_day = daily_counts(world.images, world.days, snapshot_day, growth)
    batches: list[ImageBatch] = []
    exposures = []
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
        batches.append(batch)
        exposures.append(
            simulate_exposure(world, batch, day, snapshot_day, users, prompts, remix_cumulative)
        )
    events = _concat([exposure.events for exposure in exposures], Events)
    order = np.lexsort((events.sequence, events.group, events.kind, events.image, events.at))
    return _Community(
        users=users,
        prompts=prompts,
        images=_concat(batches, ImageBatch),
        events=Events(*(getattr(events, name)[order] for name in Events.__dataclass_fields__)),
        impressions=np.concatenate([exposure.impressions for exposure in exposures]),
    )


def _images_table(world: WorldConfig, community: _Community) -> pa.Table:
    images, prompts = community.images, community.prompts
    image_ids = _ids("img", images.index)
    published = _timestamps(world, images.published_at)
    day_folders = pc.strftime(published, format="%Y-%m-%d")
    files = pc.binary_join_element_wise("images/", day_folders, "/", image_ids, ".png", "")
    variants = pa.array([v for text in prompts.texts for v in surface_variants(text)])
    typed = variants.take(pa.array(images.prompt * SURFACE_VARIANTS + images.prompt_variant))
    generator = pa.array(world.generator.versions, pa.string()).take(
        pa.array(images.new_generator.astype(np.int64))
    )
    sides = pa.array(np.full(len(images), world.image_size, np.int64))
    impressions = community.impressions
    return pa.table(
        {
            "image_id": image_ids,
            "creator_id": _ids("usr", images.creator),
            "prompt": typed,
            "generator": generator,
            "published_at": published,
            "file": files,
            "width": sides,
            "height": sides,
            "impressions": pa.array(
                np.nan_to_num(impressions).astype(np.int64), mask=np.isnan(impressions)
            ),
        }
    )


def _remixes_table(world: WorldConfig, events: Events) -> pa.Table:
    kind_letters = pa.array(KIND_LETTERS).take(pa.array(events.kind.astype(np.int64)))
    remix_ids = pc.binary_join_element_wise(
        _ids("rmx", events.image),
        kind_letters,
        pc.cast(pa.array(events.group), pa.string()),
        pc.cast(pa.array(events.sequence), pa.string()),
        "-",
    )
    return pa.table(
        {
            "remix_id": remix_ids,
            "source_image_id": _ids("img", events.image),
            "remixer_id": _ids("usr", events.remixer),
            "remixed_at": _timestamps(world, events.at),
        }
    )


def _users_table(world: WorldConfig, community: _Community) -> pa.Table:
    # The contract's users table: one row per user who appears in either table.
    users = community.users
    active = np.unique(np.concatenate([community.images.creator, community.events.remixer]))
    return pa.table(
        {
            "user_id": _ids("usr", active),
            "followers": pa.array(users.followers[active]),
            "is_influencer": pa.array(users.is_influencer[active]),
            "joined_at": _timestamps(world, users.joined_at[active]),
        }
    )


def write_export(
    world: WorldConfig,
    out_dir: Path,
    truth_path: Path | None,
    metadata_only: bool = False,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> SimulationSummary:
    """Simulate the community and write its export to `out_dir` (and its truth, if asked)."""
    prepare_output(out_dir, overwrite)
    community = _simulate_days(world, progress)
    images_table = _images_table(world, community)
    remixes_table = _remixes_table(world, community.events)
    users_table = _users_table(world, community)
    needs_specs = not metadata_only or truth_path is not None
    specs = (
        spec_columns(world, community.images, community.prompts, community.users)
        if needs_specs
        else {}
    )
    if not metadata_only:
        files = images_table["file"].to_pylist()
        for folder in sorted({str(Path(file).parent) for file in files}):
            (out_dir / folder).mkdir(parents=True, exist_ok=True)
        jobs = list(zip(specs_from_columns(specs), [str(out_dir / f) for f in files], strict=True))
        render_all(world, jobs, workers, progress)
    write_table(images_table, out_dir / IMAGES_FILE)
    write_table(remixes_table, out_dir / REMIXES_FILE)
    write_table(users_table, out_dir / USERS_FILE)
    manifest = manifest_for(world, metadata_only)
    (out_dir / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")
    if truth_path is not None:
        write_truth(community.images, images_table["image_id"], specs, manifest, truth_path)
    return SimulationSummary(
        users=len(users_table),
        images=len(images_table),
        remixes=len(remixes_table),
        prompts=community.prompts.count,
        exported_at=format_utc(manifest.exported_at),
    )


def render_all(
    world: WorldConfig, jobs: list[tuple[ImageSpec, str]], workers: int | None, progress: bool
) -> None:
    """Draw each (spec, path) job to its PNG file, in `workers` processes (default: all
    cores)."""
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
    image_ids: pa.ChunkedArray,
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


__all__ = ["SimulationSummary", "WorldConfig", "write_export"]
