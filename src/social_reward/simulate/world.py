"""Who is on the platform and what they publish: accounts, prompts, images and true appeal.

Everything is drawn from random streams keyed by (seed, stream, day), never from one
sequential stream, so a world cut at day D is exactly the first D days of the same world
cut later: a later export of the same community only adds days.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from social_reward.simulate.config import WorldConfig

SECONDS_PER_DAY = 86_400

# Stream keys of the random generators; each (seed, key, ...) tuple is an independent stream.
STREAM_USERS = 1
STREAM_PROMPTS = 2
STREAM_IMAGES = 3
STREAM_LIFETIME = 4
STREAM_VIEWS = 5
SURFACE_VARIANTS = 5  # ways one caption is typed, see surface_variants()


def stream(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def daily_counts(total: int, days: int, horizon: int, growth: float) -> np.ndarray:
    """Split `total` arrivals over `days` days (more each day as the platform grows).

    Returns counts for days 0..horizon-1, continuing the same rate past `days`, so that
    the first `days` entries do not depend on `horizon`.
    """

    def cumulative(day: np.ndarray) -> np.ndarray:
        return day + growth * day**2 / 2

    edges = np.arange(horizon + 1, dtype=np.float64)
    expected = total * cumulative(edges) / cumulative(np.float64(days))
    whole = np.floor(expected + 1e-9).astype(np.int64)
    return np.diff(whole)


@dataclass
class Users:
    """Accounts in join order: initial accounts first, then arrivals day by day."""

    followers: np.ndarray  # int64
    is_influencer: np.ndarray  # bool
    joined_at: np.ndarray  # int64 seconds since the start (negative: before it)
    creation_weight: np.ndarray  # float64, how much each account publishes
    remix_weight: np.ndarray  # float64, how much each account remixes
    joined_before_day: np.ndarray  # int64 [horizon + 1]: accounts that joined before day d

    @property
    def count(self) -> int:
        return len(self.followers)


def build_users(world: WorldConfig, horizon: int) -> Users:
    cfg = world.user_config
    initial = round(world.users * cfg.initial_share)
    arrivals = daily_counts(
        world.users - initial, world.days, horizon, world.engagement.traffic_growth_per_day
    )
    influencer_threshold = np.exp(
        cfg.followers_log_median
        + cfg.followers_log_sigma * NormalDist().inv_cdf(cfg.influencer_quantile)
    )
    parts: list[dict[str, np.ndarray]] = []
    for day, count in [(-1, initial), *enumerate(arrivals.tolist())]:
        rng = stream(world.seed, STREAM_USERS, day + 1)
        followers = np.floor(
            np.exp(rng.normal(cfg.followers_log_median, cfg.followers_log_sigma, count))
        ).astype(np.int64)
        flagged = (followers >= influencer_threshold) & (
            rng.random(count) < cfg.influencer_flag_rate
        )
        influencer = flagged | (rng.random(count) < cfg.influencer_stray_rate)
        if day < 0:
            joined = -rng.integers(1, cfg.history_days * SECONDS_PER_DAY, count)
        else:
            joined = np.sort(day * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, count))
        creation = rng.lognormal(0.0, cfg.creation_activity_sigma, count) * (
            1.0 + cfg.influencer_creation_boost * influencer
        )
        remix = rng.lognormal(0.0, cfg.remix_activity_sigma, count)
        parts.append(
            {
                "followers": followers,
                "is_influencer": influencer,
                "joined_at": joined.astype(np.int64),
                "creation_weight": creation,
                "remix_weight": remix,
            }
        )
    columns = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    joined_before_day = initial + np.concatenate([[0], np.cumsum(arrivals)])
    return Users(**columns, joined_before_day=joined_before_day.astype(np.int64))


def pick_weighted(
    cumulative_weights: np.ndarray, eligible: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Pick, for each draw u in [0, 1), an index among the first `eligible` items by weight."""
    limit = cumulative_weights[eligible - 1]
    picked = np.searchsorted(cumulative_weights, u * limit, side="right")
    return np.minimum(picked, eligible - 1)


@dataclass
class Prompts:
    """The prompt pool, most popular first."""

    colour: np.ndarray  # indices into the vocabulary
    subject: np.ndarray
    background: np.ndarray
    style: np.ndarray
    detail: np.ndarray
    texts: list[str]  # canonical caption
    popularity: np.ndarray  # share of images that use this prompt (sums to 1)

    @property
    def count(self) -> int:
        return len(self.texts)


def build_prompts(world: WorldConfig) -> Prompts:
    vocab = world.vocabulary
    rng = stream(world.seed, STREAM_PROMPTS)
    picked = rng.choice(vocab.prompt_space, size=world.prompt_pool_size, replace=False)
    sizes = (
        len(vocab.colours),
        len(vocab.subjects),
        len(vocab.backgrounds),
        len(vocab.styles),
        len(vocab.details),
    )
    colour, subject, background, style, detail = np.unravel_index(picked, sizes)
    colours = list(vocab.colours)
    backgrounds = list(vocab.backgrounds)
    texts = [
        f"a {colours[c]} {vocab.subjects[s]} on a {backgrounds[b]} background, "
        f"{vocab.styles[t]} style{vocab.details[d]}"
        for c, s, b, t, d in zip(colour, subject, background, style, detail, strict=True)
    ]
    weights = 1.0 / np.arange(1, len(texts) + 1) ** world.prompt_zipf_exponent
    return Prompts(
        colour=colour,
        subject=subject,
        background=background,
        style=style,
        detail=detail,
        texts=texts,
        popularity=weights / weights.sum(),
    )


def surface_variants(text: str) -> list[str]:
    """Ways people type the same caption; all normalise to the canonical text."""
    return [
        text,
        text[0].upper() + text[1:],
        text + ".",
        "  " + text.replace(" on a ", "  on a ") + " ",
        text.upper(),
    ]


@dataclass
class ImageBatch:
    """Images published on one day, with their hidden attributes."""

    index: np.ndarray  # global image number, in publication order
    creator: np.ndarray  # account index
    published_at: np.ndarray  # seconds since the start
    prompt: np.ndarray  # prompt pool index
    prompt_variant: np.ndarray  # which surface variant of the caption was typed
    new_generator: np.ndarray  # bool: made by the newer generator version
    colour_match: np.ndarray
    hue_shift_sign: np.ndarray
    drawn_subject: np.ndarray
    drawn_style: np.ndarray
    subject_match: np.ndarray
    style_match: np.ndarray
    composition: np.ndarray
    contrast: np.ndarray
    artifacts: np.ndarray
    appeal: np.ndarray
    render_seed: np.ndarray

    def __len__(self) -> int:
        return len(self.index)


def new_generator_share(world: WorldConfig, day: np.ndarray) -> np.ndarray:
    cfg = world.generator
    return np.clip((day - cfg.switch_day) / cfg.rollout_days, 0.0, 1.0)


def true_appeal(world: WorldConfig, attributes: dict[str, np.ndarray]) -> np.ndarray:
    """The ground truth: a fixed function of what is in the picture, nothing else."""
    weights = world.appeal
    return (
        weights.colour_match * attributes["colour_match"]
        + weights.subject_match * attributes["subject_match"]
        + weights.style_match * attributes["style_match"]
        + weights.composition * attributes["composition"]
        + weights.contrast * attributes["contrast"]
        + weights.artifacts * attributes["artifacts"]
    )


def build_images_of_day(
    world: WorldConfig,
    day: int,
    count: int,
    first_index: int,
    users: Users,
    prompts: Prompts,
    creation_cumulative: np.ndarray,
    prompt_cumulative: np.ndarray,
) -> ImageBatch:
    rng = stream(world.seed, STREAM_IMAGES, day)
    cfg = world.attributes
    vocab = world.vocabulary
    published = np.sort(day * SECONDS_PER_DAY + rng.integers(0, SECONDS_PER_DAY, count))
    eligible = np.full(count, users.joined_before_day[day])
    creator = pick_weighted(creation_cumulative, eligible, rng.random(count))
    prompt = np.minimum(
        np.searchsorted(prompt_cumulative, rng.random(count), side="right"), prompts.count - 1
    )
    variant = np.where(
        rng.random(count) < world.prompt_surface_variation,
        rng.integers(1, SURFACE_VARIANTS, count),
        0,
    )
    new_generator = rng.random(count) < new_generator_share(world, published / SECONDS_PER_DAY)

    n_subjects, n_styles = len(vocab.subjects), len(vocab.styles)
    subject_match = rng.random(count) < cfg.subject_match_rate
    style_match = rng.random(count) < cfg.style_match_rate
    prompt_subject = prompts.subject[prompt]
    prompt_style = prompts.style[prompt]
    drawn_subject = np.where(
        subject_match,
        prompt_subject,
        (prompt_subject + rng.integers(1, n_subjects, count)) % n_subjects,
    )
    drawn_style = np.where(
        style_match, prompt_style, (prompt_style + rng.integers(1, n_styles, count)) % n_styles
    )
    attributes = {
        "colour_match": 1.0 - rng.beta(*cfg.colour_miss_beta, count),
        "subject_match": subject_match.astype(np.float64),
        "style_match": style_match.astype(np.float64),
        "composition": rng.random(count),
        "contrast": rng.random(count),
        "artifacts": rng.beta(*cfg.artifacts_beta, count),
    }
    return ImageBatch(
        index=first_index + np.arange(count, dtype=np.int64),
        creator=creator,
        published_at=published.astype(np.int64),
        prompt=prompt,
        prompt_variant=variant,
        new_generator=new_generator,
        hue_shift_sign=np.where(rng.random(count) < 0.5, -1.0, 1.0),
        drawn_subject=drawn_subject,
        drawn_style=drawn_style,
        subject_match=subject_match,
        style_match=style_match,
        colour_match=attributes["colour_match"],
        composition=attributes["composition"],
        contrast=attributes["contrast"],
        artifacts=attributes["artifacts"],
        appeal=true_appeal(world, attributes),
        render_seed=rng.integers(0, 2**62, count),
    )
