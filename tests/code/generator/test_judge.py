"""The truth judge learns a rule it is shown, from images and prompt words."""

from __future__ import annotations

import torch

from social_reward.generator.judge import JudgeSettings, train_judge


def test_the_judge_learns_a_rule_of_image_and_prompt():
    torch.manual_seed(0)
    count = 256
    brightness = torch.rand(count)
    # Appeal: bright images for "a bright ..." prompts, dark ones for "a dark ..." prompts.
    wants_bright = torch.rand(count) > 0.5
    appeal = torch.where(wants_bright, brightness, 1 - brightness)
    pixels = (brightness[:, None, None, None] * 255).expand(count, 3, 16, 16).clone()
    prompts = ["a bright square" if b else "a dark square" for b in wants_bright]
    settings = JudgeSettings(
        image_size=16, width=16, epochs=15, batch_size=32, learning_rate=0.01, seed=0
    )
    judge = train_judge(prompts, pixels.to(torch.uint8), appeal, settings, False)
    judged = judge.judge(prompts, pixels / 255)
    assert torch.corrcoef(torch.stack([judged, appeal]))[0, 1] > 0.8
