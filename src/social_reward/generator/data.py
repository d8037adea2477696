"""Images and prompts for the generator stages."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from social_reward.artifacts import (
    IMAGE_SPLITS_FILE,
    TEST_SPLIT,
    TRAIN_SPLIT,
    PairDataError,
    read_image_splits,
)


def representative_prompts(images, count: int) -> list[str]:
    """One caption per prompt group (its most common spelling), most images first."""
    groups = images.groupby("prompt_key")["prompt"]
    sizes = groups.size().sort_values(ascending=False, kind="stable")
    return [groups.get_group(key).mode().iloc[0] for key in sizes.index[:count]]


def split_prompts(pairs_dir: Path, split: str) -> list[str]:
    """One caption per prompt group of a pairs split (its most common spelling), sorted;
    the generator stages fine-tune on the train split's and evaluate on the test split's."""
    images = read_image_splits(pairs_dir)
    images = images[images["split"] == split]
    if images.empty:
        raise PairDataError(
            f"{pairs_dir / IMAGE_SPLITS_FILE}: no image in split {split!r}; rule: the generator "
            f"stages take their prompts from the pairs' {TRAIN_SPLIT} and {TEST_SPLIT} splits, "
            "which must not be empty"
        )
    return sorted(representative_prompts(images, images["prompt_key"].nunique()))


def decode_pixels(
    paths: Sequence[str | Path], size: int, workers: int = 2, progress: bool = True
) -> torch.Tensor:
    """Images as uint8 [N, 3, size, size], resized with a box filter (no aliasing)."""

    def load(path: str | Path) -> np.ndarray:
        try:
            with Image.open(path) as image:
                picture = image.convert("RGB").resize((size, size), Image.Resampling.BOX)
        except OSError as error:
            raise PairDataError(f"{path}: image unreadable ({error})") from error
        return np.asarray(picture).transpose(2, 0, 1)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        arrays = list(
            tqdm(
                pool.map(load, paths),
                total=len(paths),
                desc="decode images",
                unit="img",
                disable=not progress,
            )
        )
    if not arrays:
        return torch.empty(0, 3, size, size, dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays))


def to_pil(images: torch.Tensor) -> list[Image.Image]:
    """Float images [B, 3, H, W] in [0, 1] -> PIL images."""
    arrays = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return [Image.fromarray(array.cpu().numpy()) for array in arrays]
