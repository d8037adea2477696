"""The attribute judge: what a picture shows (colour, subject, background, style), on
simulated exports.

A small convolutional network with one head per attribute, trained on the export's real
images with the truth file's hidden attributes: what the image really shows, not the
prompt's words, which images often do not follow. Subject and style are the drawn ones;
the background is always drawn as asked; the colour is learned only from images whose drawn
hue is the asked one (`colour_match` at least `colour_match_min`), since the truth file
records the hue's miss, not the colour's name. The judge then reads generated images: the
share whose predicted attribute is the prompt's word is the generator's rate for it, beside
the same rate for the export's real images of the same prompts.

Label sets come from the truth file itself, so a world with other words needs no change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

ATTRIBUTES = ("colour", "subject", "background", "style")
SHOWN_COLUMN = {  # truth column holding what the image shows
    "colour": "colour",
    "subject": "drawn_subject",
    "background": "background",
    "style": "drawn_style",
}
MAX_PIXEL = 255.0
UNLABELLED = -100  # cross_entropy's ignore_index: no label for this attribute


@dataclass(frozen=True)
class AttributeSettings:
    image_size: int
    width: int
    epochs: int
    batch_size: int
    learning_rate: float
    colour_match_min: float
    seed: int


def shown_attributes(truth: pd.DataFrame, colour_match_min: float) -> pd.DataFrame:
    """image_id and what each image shows; colour empty where the drawn hue missed."""
    shown = pd.DataFrame({"image_id": truth["image_id"]})
    for attribute, column in SHOWN_COLUMN.items():
        shown[attribute] = truth[column].astype(object)
    shown.loc[truth["colour_match"].to_numpy() < colour_match_min, "colour"] = None
    return shown


def prompt_words(truth: pd.DataFrame) -> pd.DataFrame:
    """image_id and the words its prompt asked for."""
    return truth[["image_id", *ATTRIBUTES]].astype({name: object for name in ATTRIBUTES})


class AttributeJudge(nn.Module):
    """Image -> one set of logits per attribute."""

    def __init__(self, labels: dict[str, list[str]], width: int, image_size: int) -> None:
        super().__init__()
        self.labels = labels
        self.image_size = image_size

        def block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, stride, 1), nn.GroupNorm(8, outputs), nn.SiLU()
            )

        self.body = nn.Sequential(
            block(3, width, 1),
            block(width, width, 1),
            block(width, 2 * width, 2),
            block(2 * width, 2 * width, 1),
            block(2 * width, 4 * width, 2),
            block(4 * width, 4 * width, 2),
        )
        # Mean and max pooling: style is everywhere in the subject, the subject is its outline.
        self.heads = nn.ModuleDict(
            {name: nn.Linear(8 * width, len(values)) for name, values in labels.items()}
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.body(images * 2 - 1)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=-1)
        return {name: head(pooled) for name, head in self.heads.items()}

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images, size=self.image_size, mode="area")

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> pd.DataFrame:
        """The attribute each float image [B, 3, H, W] in [0, 1] shows, by name."""
        self.eval()
        chunks = [
            self(self.resize(images[start : start + batch_size].float()))
            for start in range(0, len(images), batch_size)
        ]
        return pd.DataFrame(
            {
                name: np.asarray(values, dtype=object)[
                    torch.cat([chunk[name] for chunk in chunks]).argmax(dim=-1).numpy()
                ]
                for name, values in self.labels.items()
            }
        )


def label_indices(shown: pd.DataFrame, labels: dict[str, list[str]]) -> dict[str, torch.Tensor]:
    indices = {}
    for name, values in labels.items():
        position = {value: n for n, value in enumerate(values)}
        indices[name] = torch.tensor(
            [position.get(value, UNLABELLED) for value in shown[name]], dtype=torch.long
        )
    return indices


def train_attribute_judge(
    pixels: torch.Tensor,
    shown: pd.DataFrame,
    settings: AttributeSettings,
    progress: bool = True,
) -> AttributeJudge:
    """Fit the judge to what the images (uint8 [N, 3, H, W]) show (`shown_attributes`)."""
    torch.manual_seed(settings.seed)
    labels = {name: sorted(shown[name].dropna().unique()) for name in ATTRIBUTES}
    judge = AttributeJudge(labels, settings.width, settings.image_size)
    images = judge.resize(pixels.float() / MAX_PIXEL)
    targets = label_indices(shown, labels)
    optimizer = torch.optim.AdamW(judge.parameters(), lr=settings.learning_rate)
    steps = settings.epochs * max(1, len(images) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, steps)
    order = torch.Generator().manual_seed(settings.seed)
    judge.train()
    with tqdm(total=steps, desc="attribute judge", unit="step", disable=not progress) as bar:
        for _ in range(settings.epochs):
            permutation = torch.randperm(len(images), generator=order)
            for start in range(0, len(images) - settings.batch_size + 1, settings.batch_size):
                rows = permutation[start : start + settings.batch_size]
                logits = judge(images[rows])
                loss = sum(
                    F.cross_entropy(logits[name], targets[name][rows], ignore_index=UNLABELLED)
                    for name in ATTRIBUTES
                    if (targets[name][rows] != UNLABELLED).any()
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
    return judge.eval()


def agreement(
    predicted: pd.DataFrame, expected: pd.DataFrame, groups: Sequence | None = None
) -> dict[str, float]:
    """Per attribute, the share of images whose prediction is the expected value (rows with
    no expected value left out); with `groups` (a prompt per row), the mean of the groups'
    shares, so that every prompt counts alike however many images it has."""
    rates = {}
    group = np.zeros(len(expected)) if groups is None else np.asarray(groups)
    for name in ATTRIBUTES:
        known = expected[name].notna().to_numpy()
        hits = predicted[name].to_numpy()[known] == expected[name].to_numpy()[known]
        shares = pd.Series(hits, dtype=float).groupby(group[known]).mean()
        rates[name] = float(shares.mean()) if len(shares) else float("nan")
    return rates
