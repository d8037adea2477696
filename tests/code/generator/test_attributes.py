"""The attribute judge: labels from what the truth says an image shows, a classifier that
learns them, and rates that weigh every prompt alike."""

from __future__ import annotations

import pandas as pd
import torch

from social_reward.generator.attributes import (
    AttributeSettings,
    agreement,
    prompt_words,
    shown_attributes,
    train_attribute_judge,
)

TRUTH = pd.DataFrame(
    {
        "image_id": ["a", "b", "c"],
        "colour": ["red", "blue", "red"],
        "subject": ["star", "ring", "star"],
        "background": ["navy", "white", "navy"],
        "style": ["flat", "dotted", "flat"],
        "drawn_subject": ["star", "circle", "moon"],
        "drawn_style": ["flat", "dotted", "striped"],
        "colour_match": [0.95, 0.5, 0.9],
    }
)


def test_labels_are_what_the_image_shows_not_what_the_prompt_asked():
    shown = shown_attributes(TRUTH, colour_match_min=0.9)
    assert list(shown["subject"]) == ["star", "circle", "moon"]
    assert list(shown["style"]) == ["flat", "dotted", "striped"]
    assert list(shown["background"]) == ["navy", "white", "navy"]
    # A hue that missed the asked colour teaches no colour.
    assert list(shown["colour"]) == ["red", None, "red"]
    asked = prompt_words(TRUTH)
    assert list(asked["subject"]) == ["star", "ring", "star"]


def test_rates_weigh_every_prompt_alike_and_skip_unknown_values():
    expected = pd.DataFrame(
        {
            "colour": ["red", "red", "red", None],
            "subject": ["star", "star", "star", "ring"],
            "background": ["navy"] * 4,
            "style": ["flat"] * 4,
        }
    )
    predicted = expected.fillna("blue").assign(subject=["star", "moon", "moon", "ring"])
    plain = agreement(predicted, expected)
    assert plain["subject"] == 0.5 and plain["colour"] == 1.0
    # Prompt p has three images (one hit), prompt q one (a hit): (1/3 + 1) / 2.
    weighted = agreement(predicted, expected, groups=["p", "p", "p", "q"])
    assert abs(weighted["subject"] - (1 / 3 + 1) / 2) < 1e-9
    assert weighted["colour"] == 1.0  # q's row has no expected colour: p alone


def test_the_judge_learns_attributes_it_can_see():
    torch.manual_seed(0)
    count = 256
    size = 16
    # Background: the image's brightness; subject: a bright square in the left or right half.
    dark = torch.rand(count) > 0.5
    left = torch.rand(count) > 0.5
    pixels = torch.where(dark[:, None, None, None], 40, 200).expand(count, 3, size, size).clone()
    for n in range(count):
        columns = slice(2, 6) if left[n] else slice(10, 14)
        pixels[n, :, 6:10, columns] = 120
    shown = pd.DataFrame(
        {
            "colour": ["grey"] * count,
            "subject": ["left" if x else "right" for x in left],
            "background": ["dark" if x else "light" for x in dark],
            "style": ["flat"] * count,
        }
    )
    settings = AttributeSettings(
        image_size=size,
        width=8,
        epochs=10,
        batch_size=32,
        learning_rate=0.01,
        colour_match_min=0.9,
        seed=0,
    )
    judge = train_attribute_judge(pixels.to(torch.uint8), shown, settings, progress=False)
    predicted = judge.predict(pixels.float() / 255)
    rates = agreement(predicted, shown)
    assert rates["background"] > 0.95 and rates["subject"] > 0.9
    assert set(predicted["subject"]) <= {"left", "right"}
