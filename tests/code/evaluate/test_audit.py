"""The confounder audit on a tiny simulated export, with fake scorers whose bias is known."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from social_reward.data.export import IMAGES_FILE, MANIFEST_FILE, Manifest, read_manifest
from social_reward.evaluate.audit import (
    TRACES,
    audit_scorers,
    render_trace_pairs,
    wilson_interval,
    world_for_export,
    world_from_manifest,
)
from social_reward.evaluate.scorers import ImageInput, ImageScorer, Scorer, open_rgb
from social_reward.simulate import write_export
from social_reward.simulate.config import DRIFTED_GENERATOR, WorldConfig
from social_reward.simulate.render import (
    SIGNATURE_COLOUR,
    render_image,
    signature_box,
    specs_from_columns,
)

IMAGE_SIZE = 32
WORLD = WorldConfig(seed=3, users=100, images=120, days=10, image_size=IMAGE_SIZE)
PAIRS = 30
SEED = 11
CORNER = 2  # side of the top-left corner the dark-corner scorer looks at


def pixels(image: ImageInput) -> np.ndarray:
    return np.asarray(open_rgb(image), dtype=np.int16)


class SignatureScorer(ImageScorer):
    """Share of the signature box that shows the influencers' signature: a biased reward."""

    name = "signature"

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        rows, columns = signature_box(IMAGE_SIZE, WORLD)
        return np.array(
            [(pixels(image)[rows, columns] == SIGNATURE_COLOUR).all(-1).mean() for image in images]
        )


class DarkCornerScorer(ImageScorer):
    """Likes dark top-left corners: prefers the old generator's vignette."""

    name = "dark-corner"

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        return np.array([-pixels(image)[:CORNER, :CORNER].mean() for image in images])


class ConstantScorer(ImageScorer):
    name = "constant"

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        return np.zeros(len(images))


class FollowersScorer(Scorer):
    """A metadata heuristic: rendered images have no followers, so it must not be called."""

    name = "followers"
    inputs = ("followers",)

    def score(self, items: pd.DataFrame) -> np.ndarray:
        raise AssertionError("a metadata scorer was handed rendered images")


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit-export")
    truth = root / "truth" / "appeal.parquet"
    write_export(WORLD, root / "data", truth, metadata_only=True, progress=False)
    return root / "data", pd.read_parquet(truth)


@pytest.fixture(scope="module")
def truth(export) -> pd.DataFrame:
    return export[1]


@pytest.fixture(scope="module")
def report(truth) -> dict:
    scorers = [SignatureScorer(), DarkCornerScorer(), ConstantScorer(), FollowersScorer()]
    return audit_scorers(scorers, truth, WORLD, TRACES, PAIRS, SEED)


def test_a_scorer_that_reads_the_signature_prefers_it_always(report):
    signature = report["influencer"]["signature"]
    assert signature["preference"] == 1.0
    assert signature["pairs"] == PAIRS
    assert signature["low"] > 0.85 and signature["high"] == 1.0
    # The signature does not reach the top-left corner: every pair ties there.
    assert report["influencer"]["dark-corner"]["preference"] == 0.5


def test_a_scorer_that_likes_dark_corners_prefers_the_old_generator(report):
    assert report["old_generator"]["dark-corner"]["preference"] > 0.9
    # The old generator's look leaves the signature as it is: ties.
    assert report["old_generator"]["signature"]["preference"] == 0.5


def test_a_constant_scorer_ties_every_pair(report):
    for trace in TRACES:
        constant = report[trace]["constant"]
        assert constant["preference"] == 0.5
        assert constant["low"] < 0.5 < constant["high"]
        assert constant["pairs"] == PAIRS


def test_metadata_scorers_are_skipped(report):
    assert set(report) == set(TRACES)
    for trace in TRACES:
        assert set(report[trace]) == {"signature", "dark-corner", "constant"}


def test_influencer_pairs_differ_only_inside_the_signature_box(truth):
    signed, plain, prompts = render_trace_pairs(truth, WORLD, "influencer", PAIRS, SEED)
    assert len(signed) == len(plain) == len(prompts) == PAIRS
    box = signature_box(IMAGE_SIZE, WORLD)
    for with_trace, without_trace in zip(signed, plain, strict=True):
        changed = (pixels(with_trace) != pixels(without_trace)).any(axis=2)
        assert changed[box].any()
        changed[box] = False
        assert not changed.any()


def test_old_generator_pairs_redraw_the_same_image_with_and_without_the_look(truth):
    old, new, _ = render_trace_pairs(truth, WORLD, "old_generator", 5, SEED)
    specs = specs_from_columns(truth)
    by_pixels = {
        pixels(render_image(replace(s, old_generator=False), WORLD)).tobytes() for s in specs
    }
    for with_trace, without_trace in zip(old, new, strict=True):
        assert pixels(without_trace).tobytes() in by_pixels
        assert (pixels(with_trace) != pixels(without_trace)).any()


def test_prompts_come_from_a_prompt_column_or_the_canonical_caption(truth):
    _, _, canonical = render_trace_pairs(truth, WORLD, "influencer", 3, SEED)
    assert all(p.startswith("a ") and p.endswith(" style") and " on a " in p for p in canonical)
    typed = truth.assign(prompt=[f"typed {i}" for i in range(len(truth))])
    _, _, given = render_trace_pairs(typed, WORLD, "influencer", 3, SEED)
    assert all(p.startswith("typed ") for p in given)


def test_the_same_seed_draws_the_same_pairs(truth):
    first = render_trace_pairs(truth, WORLD, "influencer", 10, SEED)
    again = render_trace_pairs(truth, WORLD, "influencer", 10, SEED)
    assert first[2] == again[2]
    for images, repeated in zip(first[:2], again[:2], strict=True):
        assert [pixels(i).tobytes() for i in images] == [pixels(i).tobytes() for i in repeated]
    by_id = truth.assign(prompt=truth["image_id"])
    _, _, ids = render_trace_pairs(by_id, WORLD, "influencer", 10, SEED)
    _, _, other_ids = render_trace_pairs(by_id, WORLD, "influencer", 10, SEED + 1)
    assert ids != other_ids, "another seed draws other images"


def test_a_limit_above_the_rows_takes_every_row(truth):
    rows = truth.head(4)
    _, _, prompts = render_trace_pairs(rows, WORLD, "influencer", 100, SEED)
    assert len(prompts) == 4


def test_an_unknown_trace_is_named_with_the_choices(truth):
    with pytest.raises(ValueError, match=r"unknown trace 'watermark'.*influencer.*old_generator"):
        render_trace_pairs(truth, WORLD, "watermark", 5, SEED)
    with pytest.raises(ValueError, match="unknown trace 'watermark'"):
        audit_scorers([ConstantScorer()], truth, WORLD, ("influencer", "watermark"), 5, SEED)


def test_rows_without_the_render_spec_are_refused(truth):
    with pytest.raises(ValueError, match="render_seed"):
        render_trace_pairs(truth.drop(columns="render_seed"), WORLD, "influencer", 5, SEED)


def test_repeated_scorer_names_are_refused(truth):
    with pytest.raises(ValueError, match="constant"):
        audit_scorers([ConstantScorer(), ConstantScorer()], truth, WORLD, TRACES, 5, SEED)


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == 1.0


def test_the_world_of_an_export_has_the_simulators_image_size(export):
    export_dir, _ = export
    world = world_for_export(export_dir)
    assert world.image_size == IMAGE_SIZE
    assert (world.seed, world.users, world.images, world.days) == (3, 100, 120, 10)


def test_without_a_recorded_size_the_images_give_it(export, tmp_path):
    export_dir, _ = export
    copy = tmp_path / "data"
    copy.mkdir()
    shutil.copy(export_dir / IMAGES_FILE, copy / IMAGES_FILE)
    manifest = read_manifest(export_dir)
    unrecorded = Manifest(manifest.schema_version, manifest.exported_at, "another platform")
    (copy / MANIFEST_FILE).write_text(unrecorded.to_json(), encoding="utf-8")
    assert world_for_export(copy).image_size == IMAGE_SIZE
    with pytest.raises(ValueError, match="records no image_size"):
        world_from_manifest(unrecorded)


def test_a_size_that_disagrees_with_the_images_is_refused(export):
    manifest = read_manifest(export[0])
    images = pd.DataFrame({"width": [64, 64], "height": [64, 64]})
    with pytest.raises(ValueError, match=r"image_size=32.*64 x 64"):
        world_from_manifest(manifest, images)


def test_a_drifted_export_gets_the_drifted_world():
    source = "social-reward simulator (drifted) 0.1.0 (seed=0 image_size=48; with images)"
    manifest = Manifest(1, WorldConfig().start, source)
    world = world_from_manifest(manifest)
    assert world.image_size == 48 and world.generator == DRIFTED_GENERATOR
