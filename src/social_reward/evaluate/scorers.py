"""One interface for everything that scores an image for a prompt.

A scorer takes a table of items (one row per image to score) and returns one float per row,
higher meaning "preferred". Image scorers read the columns `prompt` and `image` (a file path
or a PIL image); metadata heuristics read engagement columns instead, and say which in
`inputs`, so that the evaluation only hands each scorer what it can use (the confounder
audit's rendered images have no metadata).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ImageInput = str | Path | Image.Image
IMAGE_INPUTS = ("prompt", "image")


def open_rgb(image: ImageInput) -> Image.Image:
    """A PIL image in RGB, from a path or an image."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")


class Scorer(ABC):
    """Scores rows of an items table; `inputs` names the columns it reads."""

    name: str
    inputs: tuple[str, ...] = IMAGE_INPUTS

    @abstractmethod
    def score(self, items: pd.DataFrame) -> np.ndarray:
        """One float per row of `items`, higher = preferred."""


class ImageScorer(Scorer):
    """A scorer of (prompt, image) rows: subclasses implement `score_images`."""

    inputs = IMAGE_INPUTS

    def score(self, items: pd.DataFrame) -> np.ndarray:
        return np.asarray(
            self.score_images(list(items["prompt"]), list(items["image"])), dtype=np.float64
        )

    @abstractmethod
    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        """One float per (prompt, image) row, computed in batches."""


class RewardScorer(ImageScorer):
    """A SocialReward (the trained reward, or its backbone before fine-tuning: the CLIP
    score): the very object users load, so evaluation and users score alike."""

    def __init__(self, name: str, reward) -> None:
        self.name = name
        self.reward = reward

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        return np.asarray(self.reward.score_pairs(list(prompts), list(images)), dtype=np.float64)


class RandomScorer(ImageScorer):
    """Chance: a seeded random score per row (ties impossible)."""

    name = "random"

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(prompts))


class ColumnScorer(Scorer):
    """A metadata heuristic: an engagement column taken as the score (more = preferred)."""

    def __init__(self, name: str, column: str) -> None:
        self.name = name
        self.column = column
        self.inputs = (column,)

    def score(self, items: pd.DataFrame) -> np.ndarray:
        if self.column not in items:
            raise KeyError(f"scorer {self.name} needs the column {self.column!r}")
        return items[self.column].to_numpy(dtype=np.float64)
