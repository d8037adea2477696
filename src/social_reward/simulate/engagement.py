"""Views and remixes: how appeal and every confounder of the contract reach the counts.

Each image is shown in feeds: views per day start at a level set by the creator's reach
(followers, the influencer promotion) and the platform's traffic that day, then decay
with age to a long tail. Each view turns into a remix with a probability set by true
appeal, the caption's popularity and taste noise. On top come self-remixes and
single-user bursts, which carry no signal at all.

Genuine remixes are drawn day by day from streams keyed by (publication day, event day),
so a snapshot at day D holds exactly the events of days before D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np

from social_reward.simulate.config import WorldConfig
from social_reward.simulate.world import (
    SECONDS_PER_DAY,
    STREAM_LIFETIME,
    STREAM_VIEWS,
    ImageBatch,
    Prompts,
    Users,
    pick_weighted,
    stream,
)

KIND_GENUINE, KIND_SELF, KIND_BURST = 0, 1, 2
KIND_LETTERS = ("g", "s", "b")


@dataclass
class Events:
    """Remix events of one day's images, up to the snapshot."""

    image: np.ndarray  # global image number
    remixer: np.ndarray  # account index
    at: np.ndarray  # seconds since the start
    kind: np.ndarray  # KIND_* code
    group: np.ndarray  # event day for genuine remixes, 0 otherwise
    sequence: np.ndarray  # number within (image, kind, group): with the rest, a unique id

    def __len__(self) -> int:
        return len(self.image)


@dataclass
class Exposure:
    events: Events
    impressions: np.ndarray  # float64, NaN where the platform did not log them


def _sequence_within(counts: np.ndarray) -> np.ndarray:
    """0, 1, ... within each run of a np.repeat(..., counts)."""
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(counts.sum()) - starts


def _feed_mass(tau: float, a0: np.ndarray, a1: np.ndarray) -> np.ndarray:
    return tau * (np.exp(-a0 / tau) - np.exp(-a1 / tau))


def simulate_exposure(
    world: WorldConfig,
    batch: ImageBatch,
    day: int,
    snapshot_day: int,
    users: Users,
    prompts: Prompts,
    remix_cumulative: np.ndarray,
) -> Exposure:
    cfg = world.engagement
    tau = cfg.feed_half_life_days / math.log(2)
    floor = cfg.long_tail_share
    lifetime = stream(world.seed, STREAM_LIFETIME, day)
    n = len(batch)
    followers = users.followers[batch.creator]
    influencer = users.is_influencer[batch.creator]
    views_day_one = (
        cfg.views_per_day
        * (1.0 + followers) ** cfg.reach_exponent
        * np.where(influencer, cfg.influencer_view_boost, 1.0)
        * (1.0 + cfg.traffic_growth_per_day * day)
    )
    # Caption popularity, centred on the average image so that the effect does not grow
    # with the size of the prompt pool.
    log_popularity = np.log(prompts.popularity)
    caption = log_popularity[batch.prompt] - prompts.popularity @ log_popularity
    logit = (
        cfg.remix_logit_base
        + cfg.remix_appeal_effect * batch.appeal
        + cfg.caption_effect * caption
        + cfg.taste_noise_sigma * lifetime.normal(size=n)
    )
    remix_per_view = 1.0 / (1.0 + np.exp(-logit))
    impressions_noise = lifetime.lognormal(0.0, cfg.impressions_noise_sigma, n)

    # Self-remixes and bursts: drawn for the image's whole life, then cut at the snapshot.
    self_count = (lifetime.random(n) < cfg.self_remix_rate) * (
        1 + lifetime.poisson(cfg.self_remix_mean_extra, n)
    )
    self_age = lifetime.exponential(tau, self_count.sum())
    bursting = lifetime.random(n) < cfg.burst_rate
    burst_count = bursting * lifetime.integers(cfg.burst_size[0], cfg.burst_size[1] + 1, n)
    burst_user = pick_weighted(
        remix_cumulative,
        np.full(n, users.joined_before_day[day]),
        lifetime.random(n),
    )
    burst_start = lifetime.exponential(tau, n)
    burst_offset = lifetime.uniform(0, cfg.burst_hours / 24, burst_count.sum())

    published_day = batch.published_at / SECONDS_PER_DAY
    parts = [
        Events(
            image=np.repeat(batch.index, self_count),
            remixer=np.repeat(batch.creator, self_count),
            at=np.repeat(batch.published_at, self_count) + self_age * SECONDS_PER_DAY,
            kind=np.full(self_count.sum(), KIND_SELF),
            group=np.zeros(self_count.sum(), dtype=np.int64),
            sequence=_sequence_within(self_count),
        ),
        Events(
            image=np.repeat(batch.index, burst_count),
            remixer=np.repeat(burst_user, burst_count),
            at=np.repeat(batch.published_at + burst_start * SECONDS_PER_DAY, burst_count)
            + burst_offset * SECONDS_PER_DAY,
            kind=np.full(burst_count.sum(), KIND_BURST),
            group=np.zeros(burst_count.sum(), dtype=np.int64),
            sequence=_sequence_within(burst_count),
        ),
    ]

    # Genuine remixes, one event day at a time.
    for event_day in range(day, snapshot_day):
        rng = stream(world.seed, STREAM_VIEWS, day, event_day)
        a0 = np.maximum(event_day - published_day, 0.0)
        a1 = event_day + 1 - published_day
        feed = _feed_mass(tau, a0, a1)
        mass = feed + floor * (a1 - a0)
        counts = rng.poisson(remix_per_view * views_day_one * mass)
        total = int(counts.sum())
        if total == 0:
            continue
        which = np.repeat(np.arange(n), counts)
        u, choice = rng.random(total), rng.random(total)
        e0, e1 = np.exp(-a0[which] / tau), np.exp(-a1[which] / tau)
        feed_age = -tau * np.log(e0 - u * (e0 - e1))
        tail_age = a0[which] + u * (a1[which] - a0[which])
        age = np.where(choice * mass[which] < feed[which], feed_age, tail_age)
        remixer = pick_weighted(
            remix_cumulative,
            np.full(total, users.joined_before_day[event_day]),
            rng.random(total),
        )
        parts.append(
            Events(
                image=batch.index[which],
                remixer=remixer,
                at=batch.published_at[which] + age * SECONDS_PER_DAY,
                kind=np.full(total, KIND_GENUINE),
                group=np.full(total, event_day, dtype=np.int64),
                sequence=_sequence_within(counts),
            )
        )

    names = [field.name for field in fields(Events)]
    merged = Events(*(np.concatenate([getattr(part, name) for part in parts]) for name in names))
    merged.at = np.floor(merged.at).astype(np.int64)
    keep = merged.at < snapshot_day * SECONDS_PER_DAY
    events = Events(*(getattr(merged, name)[keep] for name in names))

    age_at_snapshot = snapshot_day - published_day
    expected_views = views_day_one * (
        _feed_mass(tau, np.zeros(n), age_at_snapshot) + floor * age_at_snapshot
    )
    impressions = np.where(
        published_day >= cfg.impressions_logged_from_day,
        np.round(expected_views * impressions_noise),
        np.nan,
    )
    return Exposure(events=events, impressions=impressions)
