from dataclasses import replace

import numpy as np
import pytest

from social_reward.simulate.config import WorldConfig
from social_reward.simulate.render import SIGNATURE_COLOUR, ImageSpec, render_image, signature_box

WORLD = WorldConfig(image_size=64)
SPEC = ImageSpec(
    colour="red",
    subject="star",
    background="navy",
    style="flat",
    drawn_subject="star",
    drawn_style="flat",
    colour_match=1.0,
    hue_shift_sign=1.0,
    composition=0.9,
    contrast=0.9,
    artifacts=0.0,
    old_generator=False,
    influencer=False,
    render_seed=7,
)


def pixels(spec: ImageSpec, world: WorldConfig = WORLD) -> np.ndarray:
    return np.asarray(render_image(spec, world), dtype=np.int16)


def test_same_spec_same_pixels_and_requested_size():
    first, second = pixels(SPEC), pixels(SPEC)
    assert first.shape == (64, 64, 3)
    assert np.array_equal(first, second)
    assert pixels(SPEC, WorldConfig(image_size=32)).shape == (32, 32, 3)


def test_influencer_signature_changes_only_its_corner():
    plain, signed = pixels(SPEC), pixels(replace(SPEC, influencer=True))
    box = signature_box(64, WORLD)
    changed = (plain != signed).any(axis=2)
    assert changed[box].mean() > 0.9
    changed[box] = False
    assert not changed.any(), "the signature must stay in its corner"
    assert (signed[box] == SIGNATURE_COLOUR).all(axis=-1).any()


def test_old_generator_look_is_warm_with_dark_corners():
    new, old = pixels(SPEC), pixels(replace(SPEC, old_generator=True))
    centre = (slice(28, 36), slice(28, 36))
    corners = np.concatenate([old[:6, :6].reshape(-1, 3), old[-6:, -6:].reshape(-1, 3)])
    new_corners = np.concatenate([new[:6, :6].reshape(-1, 3), new[-6:, -6:].reshape(-1, 3)])
    assert corners.mean() < new_corners.mean() * 0.8
    warm_old = old[..., 0].mean() - old[..., 2].mean()
    warm_new = new[..., 0].mean() - new[..., 2].mean()
    assert warm_old > warm_new
    assert abs(old[centre].mean() - new[centre].mean()) < 60


@pytest.mark.parametrize(
    "change",
    [
        {"drawn_subject": "circle"},
        {"drawn_style": "striped"},
        {"colour_match": 0.0},
        {"composition": 0.1},
        {"contrast": 0.0},
        {"artifacts": 1.0},
    ],
)
def test_every_hidden_attribute_is_visible(change):
    assert np.abs(pixels(SPEC) - pixels(replace(SPEC, **change))).mean() > 1.0


def test_low_contrast_brings_the_subject_towards_the_background():
    high = pixels(SPEC)
    low = pixels(replace(SPEC, contrast=0.0))
    background = np.array(WORLD.vocabulary.backgrounds["navy"])
    centre = (slice(30, 34), slice(30, 34))
    assert np.abs(low[centre] - background).mean() < np.abs(high[centre] - background).mean()


def test_every_subject_and_style_renders():
    vocab = WORLD.vocabulary
    images = [
        pixels(replace(SPEC, drawn_subject=subject, drawn_style=style))
        for subject in vocab.subjects
        for style in vocab.styles
    ]
    distinct = {image.tobytes() for image in images}
    assert len(distinct) == len(images)


def test_unknown_subject_or_style_is_an_error():
    with pytest.raises(ValueError, match="unknown subject"):
        render_image(replace(SPEC, drawn_subject="dragon"), WORLD)
    with pytest.raises(ValueError, match="unknown style"):
        render_image(replace(SPEC, drawn_style="baroque"), WORLD)


def test_specs_rebuild_from_a_truth_file_and_redraw_the_same_image(small_export):
    import pandas as pd
    from PIL import Image

    from social_reward.simulate.render import specs_from_columns

    truth = pd.read_parquet(small_export.truth).head(5)
    images = pd.read_parquet(small_export.export_dir / "images.parquet").set_index("image_id")
    world = WorldConfig(image_size=int(images["width"].iloc[0]))
    for image_id, spec in zip(truth["image_id"], specs_from_columns(truth), strict=True):
        stored = np.asarray(Image.open(small_export.export_dir / images.loc[image_id, "file"]))
        assert np.array_equal(np.asarray(render_image(spec, world)), stored)
