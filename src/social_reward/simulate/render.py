"""Draw one image from its hidden attributes.

The picture shows the content (colour, subject, style, background), the finish
(composition, contrast, artifacts) and two visible traces of confounders that have
nothing to do with appeal: the old generator's look (warm cast, dark corners) and the
signature that influencers put on their images. Toggling a trace changes only the trace,
so a scorer's preference for it can be measured on otherwise identical images.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

from social_reward.simulate.config import WorldConfig

SEPIA = np.array(
    [[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]], dtype=np.float64
)
SIGNATURE_COLOUR = (255, 40, 200)


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to draw an image, and nothing the picture does not show."""

    colour: str  # the prompt's words
    subject: str
    background: str
    style: str
    drawn_subject: str  # what the generator actually drew
    drawn_style: str
    colour_match: float
    hue_shift_sign: float
    composition: float
    contrast: float
    artifacts: float
    old_generator: bool  # trace of exposure time
    influencer: bool  # trace of creator reach
    render_seed: int


def specs_from_columns(columns: Mapping[str, Sequence]) -> list[ImageSpec]:
    """ImageSpecs from columns named like its fields (the simulator's, or a truth file's)."""
    names = [field.name for field in fields(ImageSpec)]
    # tolist() turns numpy scalars into plain Python values.
    values = [list(np.asarray(columns[name]).tolist()) for name in names]
    return [ImageSpec(*row) for row in zip(*values, strict=True)]


def signature_box(size: int, world: WorldConfig) -> tuple[slice, slice]:
    """Where influencers' signature sits: a small square one pixel in from the bottom right."""
    side = max(4, round(size * world.render.signature_size))
    return slice(size - side - 1, size - 1), slice(size - side - 1, size - 1)


def _rotate(points: np.ndarray, angle: float) -> np.ndarray:
    cos, sin = math.cos(angle), math.sin(angle)
    return points @ np.array([[cos, sin], [-sin, cos]])


def _polygon(subject: str) -> np.ndarray | None:
    """Unit-radius outline of a subject, or None for the round ones drawn with ellipses."""
    if subject == "square":
        return np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]])
    if subject == "triangle":
        return np.array([[0.0, -1.0], [0.95, 0.7], [-0.95, 0.7]])
    if subject == "diamond":
        return np.array([[0.0, -1.1], [0.7, 0.0], [0.0, 1.1], [-0.7, 0.0]])
    if subject == "hexagon":
        angles = np.arange(6) * math.pi / 3
        return np.stack([np.cos(angles), np.sin(angles)], axis=1) * 0.95
    if subject == "star":
        angles = np.arange(10) * math.pi / 5 - math.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, 1.05, 0.45)
        return np.stack([np.cos(angles) * radii, np.sin(angles) * radii], axis=1)
    if subject == "cross":
        a, b = 0.3, 0.95
        return np.array(
            [
                [-a, -b],
                [a, -b],
                [a, -a],
                [b, -a],
                [b, a],
                [a, a],
                [a, b],
                [-a, b],
                [-a, a],
                [-b, a],
                [-b, -a],
                [-a, -a],
            ]
        )
    if subject == "heart":
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        return np.stack([x, -y - 2.5], axis=1) / 16.5
    return None


def _shape_mask(subject: str, size: int, centre: np.ndarray, radius: float, angle: float) -> Image:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    cx, cy = centre
    outline = _polygon(subject)
    if outline is not None:
        points = _rotate(outline, angle) * radius + centre
        draw.polygon([tuple(p) for p in points], fill=255)
    elif subject == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
    elif subject == "ring":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
        inner = radius * 0.55
        draw.ellipse([cx - inner, cy - inner, cx + inner, cy + inner], fill=0)
    elif subject == "moon":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=255)
        shift = _rotate(np.array([[0.5 * radius, -0.25 * radius]]), angle)[0]
        draw.ellipse(
            [
                cx + shift[0] - radius,
                cy + shift[1] - radius,
                cx + shift[0] + radius,
                cy + shift[1] + radius,
            ],
            fill=0,
        )
    else:
        raise ValueError(f"unknown subject {subject!r}")
    return mask


@lru_cache(maxsize=4)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)
    return y, x


def _texture(
    style: str, size: int, fg: np.ndarray, centre: np.ndarray, radius: float
) -> np.ndarray:
    """The fill of the subject."""
    y, x = _grid(size)
    fg = fg.astype(np.float32)
    fill = np.broadcast_to(fg, (size, size, 3))
    if style == "striped":
        period = size * 0.09
        dark = ((x + y) // period) % 2 == 1
        fill = np.where(dark[..., None], fg * 0.5, fill)
    elif style == "dotted":
        period = size * 0.1
        dx, dy = (x % period) - period / 2, (y % period) - period / 2
        dot = dx**2 + dy**2 < (period * 0.28) ** 2
        fill = np.where(dot[..., None], fg + (255 - fg) * 0.65, fill)
    elif style == "checkered":
        period = size * 0.11
        dark = ((x // period) + (y // period)) % 2 == 1
        fill = np.where(dark[..., None], fg * 0.45, fill)
    elif style == "gradient":
        distance = np.hypot(x - centre[0], y - centre[1]) / max(radius, 1.0)
        fill = fg * (1.15 - 0.75 * np.clip(distance, 0, 1))[..., None]
    elif style not in ("flat", "outlined"):
        raise ValueError(f"unknown style {style!r}")
    return np.clip(fill, 0, 255)


def _erode(mask: np.ndarray, width: int) -> np.ndarray:
    """Binary erosion by a width x width square, through an integral image (fast in numpy)."""
    integral = np.pad(mask.astype(np.int32), ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    half = width // 2
    padded = np.pad(integral, ((half, half + 1), (half, half + 1)), mode="edge")
    size = mask.shape[0]
    window = (
        padded[width : width + size, width : width + size]
        - padded[width : width + size, :size]
        - padded[:size, width : width + size]
        + padded[:size, :size]
    )
    return window >= width * width


def render_image(spec: ImageSpec, world: WorldConfig) -> Image.Image:
    cfg = world.render
    vocab = world.vocabulary
    size = world.image_size
    big = size * cfg.supersample
    rng = np.random.default_rng(spec.render_seed)
    # Every random number is drawn up front, in a fixed order, so that toggling a trace
    # changes nothing else in the picture.
    direction = rng.uniform(0, 2 * math.pi)
    angle = rng.uniform(-0.35, 0.35)
    radius_jitter = rng.uniform(0.9, 1.1)
    n_blotches = round(spec.artifacts * cfg.max_blotches)
    blotch_xy = rng.uniform(0, size, (cfg.max_blotches, 2))
    blotch_r = rng.uniform(0.02, 0.06, cfg.max_blotches) * size
    blotch_rgb = rng.integers(0, 256, (cfg.max_blotches, 3))
    noise = rng.normal(0.0, 1.0, (size, size, 3))

    bg = np.array(vocab.backgrounds[spec.background], dtype=np.float64)
    hue = (
        vocab.colours[spec.colour]
        + spec.hue_shift_sign * (1 - spec.colour_match) * world.attributes.max_hue_shift
    ) % 1.0
    fg = np.array(colorsys.hsv_to_rgb(hue, 0.85, 0.95)) * 255
    fg = bg + (fg - bg) * (0.2 + 0.8 * spec.contrast)

    radius = big * (0.16 + 0.16 * spec.composition) * radius_jitter
    offset = (1 - spec.composition) * 0.3 * big
    centre = big / 2 + offset * np.array([math.cos(direction), math.sin(direction)])
    mask = _shape_mask(spec.drawn_subject, big, centre, radius, angle)
    fill = _texture(spec.drawn_style, big, fg, centre, radius)
    alpha = np.asarray(mask, dtype=np.float32)
    if spec.drawn_style == "outlined":
        alpha = alpha * ~_erode(alpha > 127, max(3, int(big * 0.06)))
    alpha = alpha[..., None] / 255
    shade = 1 + 0.08 * np.linspace(-1, 1, big, dtype=np.float32)[:, None, None]
    canvas = bg.astype(np.float32) * shade * (1 - alpha) + fill * alpha
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).reduce(cfg.supersample)

    draw = ImageDraw.Draw(picture)
    for (bx, by), br, rgb in zip(
        blotch_xy[:n_blotches], blotch_r[:n_blotches], blotch_rgb[:n_blotches], strict=True
    ):
        draw.ellipse([bx - br, by - br, bx + br, by + br], fill=tuple(int(c) for c in rgb))
    pixels = np.asarray(picture, dtype=np.float64) + noise * spec.artifacts * cfg.max_noise

    if spec.old_generator:
        sepia = pixels @ SEPIA.T
        pixels = pixels * (1 - cfg.old_generator_sepia) + sepia * cfg.old_generator_sepia
        yy, xx = np.mgrid[0:size, 0:size]
        r2 = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (size**2 / 2)
        pixels = pixels * (1 - cfg.old_generator_vignette * r2)[..., None]
    if spec.influencer:
        rows, columns = signature_box(size, world)
        inner = max(1, (rows.stop - rows.start) // 4)
        pixels[rows, columns] = 255
        pixels[
            rows.start + inner : rows.stop - inner, columns.start + inner : columns.stop - inner
        ] = SIGNATURE_COLOUR
    return Image.fromarray(np.clip(pixels, 0, 255).round().astype(np.uint8))
