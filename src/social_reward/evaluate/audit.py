"""The confounder audit: does a scorer prefer a confounder's visible trace?

Two confounders leave a mark in the pixels that has nothing to do with appeal (see
`simulate.render`): the influencers' signature and the old generator's look. For images
described by truth rows (their render specification), the audit draws each image twice,
with the trace and without it, everything else (render_seed included) the same, and
reports for every image scorer the share of pairs in which the traced image scores higher
(ties count half). A reward that learned the confounder prefers the trace; a debiased one
stays near 0.5.

The interval is Wilson's 95% score interval on that share, with ties as half a success:
no seed, and with many ties it is conservative (wider than the spread of the pair outcomes).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from PIL import Image

from social_reward.data.export import IMAGES_FILE, Manifest, read_manifest
from social_reward.errors import SocialRewardError
from social_reward.evaluate.scorers import IMAGE_INPUTS, Scorer
from social_reward.simulate.config import WorldConfig, drifted
from social_reward.simulate.render import ImageSpec, render_image, specs_from_columns

TRACES = ("influencer", "old_generator")
SPEC_COLUMNS = tuple(field.name for field in fields(ImageSpec))
PROMPT_COLUMN = "prompt"
Z_95 = 1.959963984540054  # two-sided 95% normal quantile
TIE = 0.5
# The simulator's settings that its manifest records, as `key=value` in `source`.
RECORDED_SETTINGS = ("seed", "users", "images", "days", "image_size", "snapshot_day")
DRIFTED_MARK = "(drifted)"


class TracePreference(TypedDict):
    """One scorer's preference for one trace: share of pairs won by the trace, 95% interval."""

    preference: float
    low: float
    high: float
    pairs: int


class AuditError(SocialRewardError, ValueError):
    """An export the confounder audit cannot redraw images for."""


def world_from_manifest(manifest: Manifest, images: pd.DataFrame | None = None) -> WorldConfig:
    """The simulator's world for an export, from its manifest (and its images table).

    The simulator records its settings in the manifest's `source`
    ("... (seed=0 users=2000 images=6000 days=60 image_size=64; with images)", plus
    "(drifted)" for a drifted community); everything else is the default `WorldConfig`,
    which `social-reward simulate` cannot change. Where the source records no image size,
    it is the side of the export's images (`width`/`height` of `images`, the most common
    one). Where both are known they must agree.
    """
    recorded = dict(re.findall(r"\b(\w+)=(\d+)\b", manifest.source))
    settings = {key: int(recorded[key]) for key in RECORDED_SETTINGS if key in recorded}
    if images is not None and len(images):
        side = _image_side(images)
        if settings.setdefault("image_size", side) != side:
            raise AuditError(
                f"the manifest records image_size={settings['image_size']} but the export's "
                f"images are {side} x {side} pixels; the audit would draw other images than "
                "the scorers saw"
            )
    if "image_size" not in settings:
        raise AuditError(
            f"the manifest's source {manifest.source!r} records no image_size; pass the "
            "images table (width, height) to take the size from it"
        )
    world = WorldConfig(**settings)
    return drifted(world) if DRIFTED_MARK in manifest.source else world


def world_for_export(export_dir: Path) -> WorldConfig:
    """The world of the export in `export_dir` (`data/` or the validated copy of it).

    Reads `manifest.json`, and the `width`/`height` columns of `images.parquet` to take the
    image size from (or check it against) the pictures themselves.
    """
    manifest = read_manifest(export_dir)
    images_path = export_dir / IMAGES_FILE
    images = (
        pq.read_table(images_path, columns=["width", "height"]).to_pandas()
        if images_path.is_file()
        else None
    )
    return world_from_manifest(manifest, images)


def _image_side(images: pd.DataFrame) -> int:
    sizes = images[["width", "height"]].value_counts()
    width, height = sizes.index[0]
    if width != height:
        raise AuditError(
            f"the export's images are mostly {width} x {height} pixels; the simulator draws "
            "square images, so this export cannot be audited by redrawing"
        )
    return int(width)


def _check_trace(trace: str) -> None:
    if trace not in TRACES:
        raise ValueError(f"unknown trace {trace!r}; choose one of {list(TRACES)}")


def canonical_prompts(rows: pd.DataFrame) -> list[str]:
    """The simulator's captions of spec rows, without the detail words the truth lacks."""
    return [
        f"a {colour} {subject} on a {background} background, {style} style"
        for colour, subject, background, style in zip(
            rows["colour"], rows["subject"], rows["background"], rows["style"], strict=True
        )
    ]


def render_trace_pairs(
    truth_rows: pd.DataFrame, world: WorldConfig, trace: str, limit: int, seed: int
) -> tuple[list[Image.Image], list[Image.Image], list[str]]:
    """Images with the trace, the same images without it, and their prompts.

    Up to `limit` rows are drawn (seeded, without replacement) from `truth_rows`, which need
    the spec columns of `ImageSpec`. Prompts come from a `prompt` column when there is one
    (join the truth with the export's images to get the captions as typed), otherwise they
    are the simulator's canonical caption without its detail words.
    """
    _check_trace(trace)
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    missing = [column for column in SPEC_COLUMNS if column not in truth_rows.columns]
    if missing:
        raise ValueError(
            f"truth rows lack the spec column(s) {missing}; the audit redraws images from "
            "the truth file's render specification (truth/appeal.parquet)"
        )
    if truth_rows.empty:
        raise ValueError("no truth rows to audit")
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.permutation(len(truth_rows))[:limit])
    rows = truth_rows.iloc[picked]
    specs = specs_from_columns({column: rows[column] for column in SPEC_COLUMNS})
    with_trace = [render_image(replace(spec, **{trace: True}), world) for spec in specs]
    without_trace = [render_image(replace(spec, **{trace: False}), world) for spec in specs]
    if PROMPT_COLUMN in rows.columns:
        prompts = [str(text) for text in rows[PROMPT_COLUMN]]
    else:
        prompts = canonical_prompts(rows)
    return with_trace, without_trace, prompts


def wilson_interval(successes: float, trials: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion (successes may be fractional: ties as halves)."""
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    share = successes / trials
    denominator = 1 + z**2 / trials
    centre = (share + z**2 / (2 * trials)) / denominator
    spread = z * math.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2)) / denominator
    low = 0.0 if successes <= 0 else max(0.0, centre - spread)
    high = 1.0 if successes >= trials else min(1.0, centre + spread)
    return low, high


def trace_preference(with_trace: np.ndarray, without_trace: np.ndarray) -> TracePreference:
    """Share of pairs in which the traced image scores higher (ties as half), 95% Wilson."""
    on = np.asarray(with_trace, dtype=np.float64)
    off = np.asarray(without_trace, dtype=np.float64)
    outcomes = np.where(on > off, 1.0, np.where(on == off, TIE, 0.0))
    low, high = wilson_interval(float(outcomes.sum()), len(outcomes))
    return {
        "preference": float(outcomes.mean()),
        "low": low,
        "high": high,
        "pairs": len(outcomes),
    }


def is_image_scorer(scorer: Scorer) -> bool:
    """Whether the scorer reads only what rendered images have (prompt and image)."""
    return bool(scorer.inputs) and set(scorer.inputs) <= set(IMAGE_INPUTS)


def audit_scorers(
    scorers: Sequence[Scorer],
    truth_rows: pd.DataFrame,
    world: WorldConfig,
    traces: Sequence[str] = TRACES,
    pairs_per_trace: int = 300,
    seed: int = 0,
) -> dict[str, dict[str, TracePreference]]:
    """{trace: {scorer name: preference}} for every image scorer; other scorers are skipped.

    Each trace's pairs are drawn once and scored by every scorer, in one call per scorer
    (traced images first, then the plain ones).
    """
    for trace in traces:
        _check_trace(trace)
    audited = [scorer for scorer in scorers if is_image_scorer(scorer)]
    names = [scorer.name for scorer in audited]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"scorer names must be unique; repeated: {duplicated}")
    report: dict[str, dict[str, TracePreference]] = {}
    for trace in traces:
        with_trace, without_trace, prompts = render_trace_pairs(
            truth_rows, world, trace, pairs_per_trace, seed
        )
        items = pd.DataFrame({"prompt": prompts * 2, "image": with_trace + without_trace})
        count = len(prompts)
        report[trace] = {}
        for scorer in audited:
            scores = np.asarray(scorer.score(items), dtype=np.float64)
            if scores.shape != (2 * count,):
                raise ValueError(
                    f"scorer {scorer.name!r} returned scores of shape {scores.shape} "
                    f"for {2 * count} rows"
                )
            report[trace][scorer.name] = trace_preference(scores[:count], scores[count:])
    return report
