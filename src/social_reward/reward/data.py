"""Training data for the reward: images decoded once, prompts tokenised once, pairs as indices.

Images are decoded a single time into one uint8 tensor (the model's resize and crop, without
normalisation, so that storage is exact and four times smaller than floats); batches are
normalised on the fly. A pair is three indices: its prompt, its positive and its negative
image. The same bank serves the contrastive pretraining (images with their prompts) and the
preference training (pairs).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from social_reward.artifacts import CONFOUNDER_SIDE_COLUMNS, PAIR_COLUMNS, PairDataError

MAX_PIXEL = 255.0


def _geometry_transform(backbone: torch.nn.Module):
    """The model's own eval preprocessing up to the tensor, without normalisation."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    steps = image_transform_v2(PreprocessCfg(**backbone.visual.preprocess_cfg), is_train=False)
    return steps.transforms[:-1]  # the last step is Normalize


@dataclass
class ImageBank:
    """Decoded images of a model's input size, as uint8, with their ids."""

    pixels: torch.Tensor  # [N, 3, H, W] uint8
    index: dict[str, int]  # image_id -> row
    mean: torch.Tensor  # [3, 1, 1]
    std: torch.Tensor

    @classmethod
    def decode(
        cls,
        backbone: torch.nn.Module,
        image_ids: Sequence[str],
        paths: Sequence[str | Path],
        workers: int = 2,
        progress: bool = True,
    ) -> ImageBank:
        steps = _geometry_transform(backbone)

        def load(path: str | Path) -> torch.Tensor:
            try:
                with Image.open(path) as image:
                    picture = image.convert("RGB")
            except OSError as error:
                raise PairDataError(f"{path}: image unreadable ({error})") from error
            for step in steps:
                picture = step(picture)
            return (picture * MAX_PIXEL).round().to(torch.uint8)

        with ThreadPoolExecutor(max_workers=workers) as pool:
            tensors = list(
                tqdm(
                    pool.map(load, paths),
                    total=len(paths),
                    desc="decode images",
                    unit="img",
                    disable=not progress,
                )
            )
        cfg = backbone.visual.preprocess_cfg
        return cls(
            pixels=torch.stack(tensors) if tensors else torch.empty(0, dtype=torch.uint8),
            index={image_id: row for row, image_id in enumerate(image_ids)},
            mean=torch.tensor(cfg["mean"]).view(3, 1, 1),
            std=torch.tensor(cfg["std"]).view(3, 1, 1),
        )

    @classmethod
    def of_images(
        cls, backbone: torch.nn.Module, images: pd.DataFrame, workers: int, progress: bool
    ) -> ImageBank:
        """The images of a table with columns image_id and path."""
        return cls.decode(
            backbone, list(images["image_id"]), list(images["path"]), workers, progress
        )

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """uint8 pixels -> the model's normalised float input."""
        return (pixels.float() / MAX_PIXEL - self.mean) / self.std

    def rows(self, image_ids: Sequence[str]) -> torch.Tensor:
        missing = [image_id for image_id in image_ids if image_id not in self.index]
        if missing:
            raise PairDataError(f"images not decoded: {missing[:5]}")
        return torch.tensor([self.index[image_id] for image_id in image_ids], dtype=torch.long)


@dataclass
class PairSet:
    """Pairs as row indices into a prompt table and an image bank."""

    prompt_rows: torch.Tensor  # [P] into `prompts`
    pos_rows: torch.Tensor  # [P] into the image bank
    neg_rows: torch.Tensor
    prompts: list[str]  # distinct prompts
    # [P, len(CONFOUNDER_SIDE_COLUMNS)]: the positive's side of each recorded confounder
    # (+1, -1; 0 when the pair shares it, or the file does not say).
    sides: torch.Tensor

    def __len__(self) -> int:
        return len(self.prompt_rows)


SIDES = (-1, 0, 1)


def read_pairs(path: Path) -> pd.DataFrame:
    """A pairs file of the `pairs` stage, checked for the columns the trainer needs."""
    if not path.is_file():
        raise PairDataError(f"{path}: file missing; run the `pairs` stage first")
    pairs = pd.read_parquet(path)
    missing = [column for column in PAIR_COLUMNS if column not in pairs.columns]
    if missing:
        raise PairDataError(
            f"{path}: column(s) {missing} missing (rule: a pairs file has the columns "
            f"{list(PAIR_COLUMNS)}); columns present: {list(pairs.columns)}"
        )
    for column in [name for name in CONFOUNDER_SIDE_COLUMNS if name in pairs.columns]:
        bad = pairs.loc[~pairs[column].isin(SIDES), column]
        if len(bad):
            raise PairDataError(
                f"{path}: column {column!r} holds {bad.tolist()[0]!r} in row {bad.index[0]} "
                f"(rule: the positive's side of the confounder, one of {list(SIDES)}, e.g. 1 "
                "when only the positive has it)"
            )
    return pairs


def share_of_pairs(pairs: pd.DataFrame, share: float, seed: int) -> pd.DataFrame:
    """A seeded draw of `share` of the pairs (at least one), in their original order: the
    learning curve's smaller training sets. The whole table when `share` is 1."""
    if share >= 1.0:
        return pairs
    kept = max(1, round(len(pairs) * share))
    order = np.random.default_rng(seed).permutation(len(pairs))[:kept]
    return pairs.iloc[np.sort(order)].reset_index(drop=True)


def images_of_pairs(*tables: pd.DataFrame) -> pd.DataFrame:
    """Distinct (image_id, path) of the pairs' positive and negative images, sorted by id."""
    frames = [
        table[[f"{side}_image_id", f"{side}_path"]].set_axis(["image_id", "path"], axis=1)
        for table in tables
        for side in ("pos", "neg")
    ]
    return pd.concat(frames).drop_duplicates("image_id").sort_values("image_id", ignore_index=True)


def pair_set(pairs: pd.DataFrame, bank: ImageBank) -> PairSet:
    prompts = sorted(pairs["prompt"].unique())
    row_of = {prompt: row for row, prompt in enumerate(prompts)}
    return PairSet(
        prompt_rows=torch.tensor(pairs["prompt"].map(row_of).to_numpy(), dtype=torch.long),
        pos_rows=bank.rows(list(pairs["pos_image_id"])),
        neg_rows=bank.rows(list(pairs["neg_image_id"])),
        prompts=prompts,
        sides=confounder_sides(pairs),
    )


def confounder_sides(pairs: pd.DataFrame) -> torch.Tensor:
    """The side columns of a pairs table as a [pairs, confounders] tensor of -1, 0, +1; a
    column the table lacks (a file made by hand) counts as every pair sharing it."""
    columns = [
        pairs[column].to_numpy(dtype=np.int64)
        if column in pairs.columns
        else np.zeros(len(pairs), dtype=np.int64)
        for column in CONFOUNDER_SIDE_COLUMNS
    ]
    return torch.from_numpy(np.stack(columns, axis=1)).to(torch.float32)


def prompt_groups(prompt_keys: Sequence) -> np.ndarray:
    """Dense integer ids of prompt groups (images of one group share their caption's meaning)."""
    return pd.factorize(pd.Series(prompt_keys), sort=True)[0]


def prompt_captions(prompts: Sequence[str]) -> tuple[list[str], torch.Tensor]:
    """Distinct captions (sorted) and, per row, the index of its caption."""
    codes, captions = pd.factorize(pd.Series(prompts), sort=True)
    return list(captions), torch.tensor(codes, dtype=torch.long)
