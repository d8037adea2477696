"""The preference losses: what they reward and their values at known points."""

import math

import torch
import torch.nn.functional as F

from social_reward.reward.losses import (
    LOSSES,
    bradley_terry_loss,
    neutrality_penalty,
    triplet_loss,
)


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


def test_neutrality_penalty_is_the_square_of_the_gap_toward_one_side():
    # Four pairs across one confounder; the reward scores the +1 side 0.2 higher in each.
    prompt = unit(1, 0).repeat(4, 1)
    high, low = unit(1.0, 0.0), unit(0.98, math.sqrt(1 - 0.98**2))
    positive = torch.cat([high, low, high, low])
    negative = torch.cat([low, high, low, high])
    sides = torch.tensor([[1.0], [-1.0], [1.0], [-1.0]])  # the +1 side always scores higher
    gap = 1.0 - 0.98
    penalty = neutrality_penalty(prompt, positive, negative, sides)
    assert math.isclose(penalty.item(), gap**2, rel_tol=1e-4)
    # Each side wins one pair in each half by the same gap: no gap toward either side.
    balanced = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    assert abs(neutrality_penalty(prompt, positive, negative, balanced).item()) < 1e-12


def test_neutrality_penalty_ignores_pairs_that_share_the_confounder_and_lone_pairs():
    prompt, positive, negative = unit(1, 0).repeat(3, 1), unit(1, 0).repeat(3, 1), unit(0, 1)
    negative = negative.repeat(3, 1)
    assert neutrality_penalty(prompt, positive, negative, torch.zeros(3, 2)).item() == 0.0
    lone = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    assert neutrality_penalty(prompt, positive, negative, lone).item() == 0.0


def test_neutrality_penalty_pushes_the_favoured_side_down():
    prompt = unit(1, 0).repeat(2, 1)
    favoured = unit(0.9, math.sqrt(1 - 0.81)).repeat(2, 1).requires_grad_(True)
    other = unit(0.8, 0.6).repeat(2, 1)
    # Both pairs: the positive is on the +1 side and scores higher.
    neutrality_penalty(prompt, favoured, other, torch.ones(2, 1)).backward()
    assert (favoured.grad[:, 0] > 0).all()  # descending lowers its cosine with the prompt
