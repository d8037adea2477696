"""The generator's targets on the default export, as `dvc repro` versioned them.

`make run` reproduces metrics/generator.json byte for byte (every stage is seeded); these
tests fail when a change that lands brings the versioned figures below the issue's targets.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import REPO_ROOT

METRICS = REPO_ROOT / "metrics" / "generator.json"


@pytest.fixture(scope="module")
def generator_metrics() -> dict:
    return json.loads(METRICS.read_text())


def test_the_base_draws_prompt_consistent_images(generator_metrics):
    assert generator_metrics["prompt_consistency"]["base"] >= 0.70


def test_fine_tuning_wins_under_the_reward(generator_metrics):
    assert generator_metrics["win_rate"]["social_reward"]["win_rate"] >= 0.65


@pytest.mark.xfail(
    strict=True,
    reason="issue 18: with the latent generator, DRaFT-1 for 300 steps wins under the reward "
    "(0.68) and the truth judge (0.82) but not the CLIP score: 0.472 [0.431, 0.512]",
)
def test_fine_tuning_wins_under_the_clip_score(generator_metrics):
    assert generator_metrics["win_rate"]["clip_score"]["win_rate"] >= 0.50


def test_fine_tuning_wins_under_the_truth_judge(generator_metrics):
    assert generator_metrics["win_rate"]["truth_judge"]["win_rate"] >= 0.55


def test_fine_tuning_keeps_diversity(generator_metrics):
    ratio = generator_metrics["diversity"]["ratio"]
    assert ratio["pixel"] >= 0.8 and ratio["embedding"] >= 0.8


def test_best_of_20_at_inference_beats_a_random_sample(generator_metrics):
    best = generator_metrics["best_of_n"]
    assert best["n"] == 20 and best["truth_judge_win_rate"] >= 0.60


# What the images show (issue 18): rates of the held-out prompts' words, read by the attribute
# judge, for the base, beside the export's real images of the same prompts.
BASE_SHARE_OF_REAL = {"subject": 0.70, "colour": 0.85, "background": 0.85}
TUNED_DROP = 0.05  # the fine-tune may lose at most this much of any rate


NOT_REACHED = pytest.mark.xfail(
    strict=True,
    reason="issue 18: the base draws the subject at chance (0.12 against the real images' "
    "0.53) and the colour 0.11 (real 0.26); through 3x the denoiser's steps the subject stays "
    "at chance (docs/experiments.md section 8)",
)


@pytest.mark.parametrize(
    "attribute",
    [
        "background",
        pytest.param("colour", marks=NOT_REACHED),
        pytest.param("subject", marks=NOT_REACHED),
    ],
)
def test_the_base_draws_the_prompts_attributes_nearly_as_often_as_real_images(
    generator_metrics, attribute
):
    rates = generator_metrics["attributes"]
    share = BASE_SHARE_OF_REAL[attribute]
    assert rates["base"][attribute] >= share * rates["real"][attribute]


@pytest.mark.parametrize("attribute", ["colour", "subject", "background", "style"])
def test_fine_tuning_keeps_what_the_base_draws(generator_metrics, attribute):
    rates = generator_metrics["attributes"]
    assert rates["tuned"][attribute] >= rates["base"][attribute] - TUNED_DROP


def test_the_truth_judge_prefers_the_fine_tune_beyond_doubt(generator_metrics):
    assert generator_metrics["win_rate"]["truth_judge"]["low"] > 0.5
