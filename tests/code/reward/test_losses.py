"""The preference losses: what they reward and their values at known points."""

import math

import torch
import torch.nn.functional as F

from social_reward.reward.losses import LOSSES, bradley_terry_loss, triplet_loss


def unit(*values: float) -> torch.Tensor:
    return F.normalize(torch.tensor([values], dtype=torch.float32), dim=-1)


def test_triplet_is_zero_once_the_negative_is_a_margin_further():
    prompt, near, far = unit(1, 0), unit(1, 0), unit(0, 1)  # squared distances 0 and 2
    assert triplet_loss(prompt, near, far).item() == 0.0
    assert math.isclose(triplet_loss(prompt, far, near).item(), 2.0 + 0.3, rel_tol=1e-6)


def test_triplet_with_equal_images_costs_the_margin():
    prompt, image = unit(1, 0), unit(0.6, 0.8)
    assert math.isclose(triplet_loss(prompt, image, image, margin=0.3).item(), 0.3, rel_tol=1e-6)


def test_bradley_terry_is_log_two_for_a_tie_and_falls_as_the_positive_wins():
    prompt, image = unit(1, 0), unit(0.6, 0.8)
    tie = bradley_terry_loss(prompt, image, image, torch.tensor(0.0)).item()
    assert math.isclose(tie, math.log(2), rel_tol=1e-6)
    win = bradley_terry_loss(prompt, unit(1, 0), unit(0, 1), torch.tensor(math.log(10))).item()
    assert math.isclose(win, math.log1p(math.exp(-10)), rel_tol=1e-5)


def test_both_losses_pull_the_positive_towards_the_prompt():
    for name, loss_of in LOSSES.items():
        prompt = unit(1, 0)
        positive = unit(0.6, 0.8).requires_grad_(True)
        negative = unit(0.8, 0.6)
        loss_of(prompt, positive, negative, torch.tensor(0.0)).backward()
        assert positive.grad[0, 0] < 0, name  # descending the loss raises cos with the prompt
