"""The diagnostics' parts: clear pairs, the linear probe, the learning curve's draws."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from social_reward.config.evaluate import ProbeConfig
from social_reward.config.train import TrainVariant
from social_reward.evaluate.diagnostics import clear_pair_mask, fit_probe
from social_reward.evaluate.metrics import pairwise_accuracy
from social_reward.reward.data import share_of_pairs


def test_a_clear_pair_has_an_appeal_gap_of_at_least_the_threshold():
    appeal = pd.Series({"a": 2.0, "b": 1.0, "c": 0.5, "d": 0.4})
    oriented = pd.DataFrame({"better_id": ["a", "a", "b", "c"], "worse_id": ["b", "d", "c", "d"]})
    assert clear_pair_mask(oriented, appeal, 1.0).tolist() == [True, True, False, False]


WEIGHTS = np.random.default_rng(100).normal(size=16)  # what appeal is made of


def _prompt_world(seed: int, prompts: int = 60, per_prompt: int = 12):
    """Features, prompt groups and an appeal linear in the features within a prompt, plus a
    large per-prompt offset that same-prompt pairs never see."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(prompts), per_prompt)
    features = rng.normal(size=(len(groups), len(WEIGHTS)))
    appeal = features @ WEIGHTS + 5 * rng.normal(size=prompts)[groups]
    return features, groups, appeal + 0.3 * rng.normal(size=len(groups))


def _within_prompt_accuracy(scores, appeal, groups) -> float:
    better, worse = [], []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        for i in members:
            for j in members:
                if appeal[i] > appeal[j]:
                    better.append(i)
                    worse.append(j)
    return pairwise_accuracy(scores[better], scores[worse])["accuracy"]


def test_the_probe_recovers_an_appeal_its_features_carry_on_unseen_prompts():
    features, groups, appeal = _prompt_world(0)
    probe = fit_probe(features, appeal, groups, ProbeConfig())
    test_features, test_groups, test_appeal = _prompt_world(1)
    accuracy = _within_prompt_accuracy(probe.predict(test_features), test_appeal, test_groups)
    assert accuracy > 0.9


def test_the_probe_is_at_chance_on_features_that_carry_no_appeal():
    features, groups, appeal = _prompt_world(0)
    noise = np.random.default_rng(2).normal(size=features.shape)
    train = groups < 40
    probe = fit_probe(noise[train], appeal[train], groups[train], ProbeConfig())
    held_out = ~train
    accuracy = _within_prompt_accuracy(
        probe.predict(noise[held_out]), appeal[held_out], groups[held_out]
    )
    assert 0.4 < accuracy < 0.6


def test_a_share_of_pairs_is_a_seeded_subset_in_the_original_order():
    pairs = pd.DataFrame({"pos_image_id": [f"p{i}" for i in range(40)], "n": range(40)})
    quarter = share_of_pairs(pairs, 0.25, seed=0)
    assert len(quarter) == 10 and quarter["n"].is_monotonic_increasing
    assert quarter.equals(share_of_pairs(pairs, 0.25, seed=0))
    assert not quarter.equals(share_of_pairs(pairs, 0.25, seed=1))
    assert share_of_pairs(pairs, 1.0, seed=0) is pairs
    assert len(share_of_pairs(pairs.head(2), 0.1, seed=0)) == 1


@pytest.mark.parametrize("share", [0.0, -0.5, 1.5])
def test_a_train_variant_refuses_a_share_outside_zero_to_one(share):
    with pytest.raises(ValidationError, match="pairs_share"):
        TrainVariant(pairs_dir="p", out_dir="o", pairs_share=share)
