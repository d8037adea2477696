import numpy as np

from social_reward.data.duck import connect
from social_reward.simulate.config import PAPER_SCALE_IMAGES, PAPER_SCALE_PROMPTS, WorldConfig
from social_reward.simulate.world import (
    SURFACE_VARIANTS,
    build_prompts,
    daily_counts,
    pick_weighted,
    surface_variants,
    true_appeal,
)


def test_daily_counts_hit_the_total_and_continue_at_the_same_rate():
    counts = daily_counts(6000, 60, 60, 0.003)
    assert counts.sum() == 6000
    assert counts[-1] > counts[0], "the platform grows"
    longer = daily_counts(6000, 60, 90, 0.003)
    assert np.array_equal(longer[:60], counts)
    assert longer[60:].min() >= counts[-1] - 1  # whole images: off by one at most


def test_pick_weighted_stays_among_the_eligible():
    weights = np.cumsum(np.ones(10))
    picked = pick_weighted(weights, np.full(1000, 3), np.random.default_rng(0).random(1000))
    assert set(picked) == {0, 1, 2}


def test_prompt_pool_is_unique_popularity_ranked_and_paper_sized():
    world = WorldConfig()
    prompts = build_prompts(world)
    assert len(set(prompts.texts)) == prompts.count == 400
    assert np.all(np.diff(prompts.popularity) <= 0)
    assert np.isclose(prompts.popularity.sum(), 1.0)
    paper = WorldConfig(images=PAPER_SCALE_IMAGES, **PAPER_SCALE_PROMPTS)
    assert 100_000 <= paper.prompt_pool_size <= paper.vocabulary.prompt_space


def test_surface_variants_normalise_to_one_prompt_in_sql():
    text = "a red star on a navy background, striped style, 4k"
    variants = surface_variants(text)
    assert len(set(variants)) == len(variants) == SURFACE_VARIANTS
    connection = connect()
    normalised = {
        connection.execute("SELECT normalise_prompt(?)", [variant]).fetchall()[0][0]
        for variant in variants
    }
    assert normalised == {text}


def test_appeal_is_the_documented_weighted_sum():
    world = WorldConfig()
    weights = world.appeal
    ones = {name: np.ones(1) for name in type(weights).model_fields}
    assert np.isclose(true_appeal(world, ones)[0], sum(weights.model_dump().values()))
    zeros = {name: np.zeros(1) for name in type(weights).model_fields}
    assert true_appeal(world, zeros)[0] == 0
