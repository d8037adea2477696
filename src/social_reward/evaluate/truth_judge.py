"""The truth judge behind the common scorer interface: on simulated exports, a model trained
on the true appeal that never saw a remix count (`generator/judge.py`), the stand-in for the
paper's user study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from social_reward.artifacts import TEST_SPLIT, read_image_splits
from social_reward.config.evaluate_generator import EvaluateGeneratorConfig
from social_reward.evaluate.scorers import ImageScorer, open_rgb
from social_reward.generator.data import decode_pixels
from social_reward.generator.judge import JudgeSettings, train_judge

TRUTH_JUDGE = "truth_judge"


class JudgeScorer(ImageScorer):
    """The truth judge's predicted appeal, behind the common scorer interface."""

    name = TRUTH_JUDGE

    def __init__(self, judge) -> None:
        self.judge = judge

    def score_images(self, prompts, images) -> np.ndarray:
        from torchvision.transforms.functional import pil_to_tensor

        pixels = torch.stack([pil_to_tensor(open_rgb(image)) for image in images]).float() / 255
        return self.judge.judge(list(prompts), pixels).numpy().astype(np.float64)


def fit_truth_judge(config: EvaluateGeneratorConfig, truth: pd.DataFrame, progress: bool):
    """Train the judge on the non-test images; report its accuracy on the test images."""
    images = read_image_splits(config.pairs_dir).merge(
        truth[["image_id", "appeal"]], on="image_id", how="inner"
    )
    settings = JudgeSettings(seed=config.seed, **config.judge.model_dump())
    pixels = decode_pixels(list(images["path"]), config.judge.image_size, progress=progress)
    train = torch.from_numpy((images["split"] != TEST_SPLIT).to_numpy())
    judge = train_judge(
        list(images.loc[train.numpy(), "prompt"]),
        pixels[train],
        torch.tensor(images.loc[train.numpy(), "appeal"].to_numpy(), dtype=torch.float32),
        settings,
        progress,
    )
    test = images[~train.numpy()].reset_index(drop=True)
    test = test.assign(judged=judge.judge(list(test["prompt"]), pixels[~train] / 255).numpy())
    pairs = test.merge(test, on="prompt_key", suffixes=("_a", "_b"))
    pairs = pairs[
        (pairs["image_id_a"] < pairs["image_id_b"]) & (pairs["appeal_a"] != pairs["appeal_b"])
    ]
    agree = np.sign(pairs["judged_a"] - pairs["judged_b"]) == np.sign(
        pairs["appeal_a"] - pairs["appeal_b"]
    )
    return judge, {"test_pair_accuracy": float(agree.mean()), "test_pairs": len(pairs)}
