"""Does the generator draw what the prompt asks? The attribute judge (`generator/attributes.py`)
behind the generator evaluation, on simulated exports.

The judge trains on the images outside the test split, with what the truth file says they
show, and reports its accuracy on the test split's images. Then, per attribute, the share of
images that show the prompt's word: for the export's real images of the held-out prompts, and
for the base and the fine-tuned generator's images of the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import torch

from social_reward.artifacts import METRIC_DIGITS, TEST_SPLIT, read_image_splits
from social_reward.config.evaluate_generator import EvaluateGeneratorConfig
from social_reward.generator.attributes import (
    ATTRIBUTES,
    AttributeSettings,
    agreement,
    prompt_words,
    shown_attributes,
    train_attribute_judge,
)
from social_reward.generator.data import decode_pixels

MAX_PIXEL = 255.0


def rounded(rates: dict[str, float]) -> dict[str, float]:
    return {name: round(value, METRIC_DIGITS) for name, value in rates.items()}


class AttributeRates:
    """The judge, fitted once; `rates` reads any images of the held-out prompts."""

    def __init__(self, config: EvaluateGeneratorConfig, truth: pd.DataFrame, progress: bool):
        settings = AttributeSettings(seed=config.seed, **config.attributes.model_dump())
        images = read_image_splits(config.pairs_dir).merge(truth, on="image_id", how="inner")
        pixels = decode_pixels(list(images["path"]), settings.image_size, progress=progress)
        shown = shown_attributes(images, settings.colour_match_min)
        train = (images["split"] != TEST_SPLIT).to_numpy()
        self.judge = train_attribute_judge(
            pixels[train], shown[train].reset_index(drop=True), settings, progress
        )
        test = images[~train].reset_index(drop=True)
        predicted = self.judge.predict(pixels[~train].float() / MAX_PIXEL)
        self.accuracy = rounded(agreement(predicted, shown[~train].reset_index(drop=True)))
        self.test_images = len(test)
        # The words of each held-out prompt, by caption (every spelling of its group).
        self.words = prompt_words(test).assign(prompt=test["prompt"]).drop_duplicates("prompt")
        self.words = self.words.set_index("prompt")[list(ATTRIBUTES)]
        self.real = rounded(agreement(predicted, prompt_words(test), test["prompt_key"]))

    def rates(self, prompts: Sequence[str], images: torch.Tensor) -> dict[str, float]:
        """Per attribute, the share of images (float, [0, 1]) showing their prompt's word."""
        expected = self.words.reindex(list(prompts)).reset_index(drop=True)
        return rounded(agreement(self.judge.predict(images), expected))

    def judge_metrics(self) -> dict:
        return {"held_out_accuracy": self.accuracy, "held_out_images": self.test_images}
