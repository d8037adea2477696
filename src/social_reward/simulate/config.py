"""Everything that defines the simulated community, in one typed place.

The defaults are the embedded default export. The world is a platform of coloured shapes:
prompts such as "a red star on a navy background, striped style". Each image is rendered
from hidden attributes; its true appeal is a fixed weighted sum of them (`AppealWeights`).
Remixes follow appeal through a per-view remix probability, and also follow every
confounder of the contract (`EngagementConfig`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Vocabulary(_Frozen):
    """Words of the prompts. Colours are hues (0-1), backgrounds are RGB."""

    colours: dict[str, float] = {
        "red": 0.0,
        "orange": 0.07,
        "yellow": 0.15,
        "lime": 0.24,
        "green": 0.36,
        "teal": 0.48,
        "blue": 0.61,
        "purple": 0.75,
        "magenta": 0.84,
        "pink": 0.93,
    }
    subjects: tuple[str, ...] = (
        "circle",
        "square",
        "triangle",
        "star",
        "diamond",
        "cross",
        "hexagon",
        "heart",
        "moon",
        "ring",
    )
    backgrounds: dict[str, tuple[int, int, int]] = {
        "white": (238, 238, 232),
        "black": (22, 22, 26),
        "grey": (128, 128, 128),
        "navy": (24, 36, 92),
        "beige": (222, 204, 168),
        "olive": (96, 104, 40),
        "sky": (150, 200, 236),
        "maroon": (110, 24, 36),
    }
    styles: tuple[str, ...] = ("flat", "striped", "dotted", "outlined", "gradient", "checkered")
    # Words that change nothing in the picture: they widen the prompt space to paper scale
    # (10 x 10 x 8 x 6 x 24 = 115,200 prompts) and are what real captions are full of.
    details: tuple[str, ...] = (
        "",
        ", highly detailed",
        ", 4k",
        ", trending",
        ", digital art",
        ", minimalist",
        ", vector art",
        ", octane render",
        ", soft light",
        ", studio lighting",
        ", award winning",
        ", sharp focus",
        ", concept art",
        ", poster",
        ", sticker",
        ", icon",
        ", wallpaper",
        ", masterpiece",
        ", clean lines",
        ", bold",
        ", retro",
        ", modern",
        ", cute",
        ", elegant",
    )

    @property
    def prompt_space(self) -> int:
        return (
            len(self.colours)
            * len(self.subjects)
            * len(self.backgrounds)
            * len(self.styles)
            * len(self.details)
        )


class AttributeConfig(_Frozen):
    """How the hidden attributes of an image are drawn (how well the generator did)."""

    colour_miss_beta: tuple[float, float] = (1.2, 4.0)  # 1 - colour_match ~ Beta(a, b)
    subject_match_rate: float = 0.75
    style_match_rate: float = 0.7
    artifacts_beta: tuple[float, float] = (1.2, 3.0)
    max_hue_shift: float = 0.5  # a colour_match of 0 shifts the hue half way round


class AppealWeights(_Frozen):
    """True appeal = weighted sum of the hidden attributes. Fixed: it is the ground truth.

    Content (colour, subject, style) is what a caption describes; finish (composition,
    contrast, artifacts) is what the community likes beyond it.
    """

    colour_match: float = 1.0
    subject_match: float = 0.8
    style_match: float = 0.4
    composition: float = 1.2
    contrast: float = 1.0
    artifacts: float = -1.5


class UserConfig(_Frozen):
    """Accounts: reach (followers, influencer flag) and how active they are."""

    initial_share: float = 0.8  # accounts that exist before the period; the rest join during it
    history_days: int = 1095  # initial accounts joined within this many days before the start
    followers_log_median: float = 3.5  # followers ~ LogNormal(median e^3.5 ~ 33)
    followers_log_sigma: float = 1.6
    influencer_quantile: float = 0.98  # the "top creator" flag goes to the top followers ...
    influencer_flag_rate: float = 0.85  # ... most of whom the platform has flagged
    influencer_stray_rate: float = 0.002  # and a few others
    creation_activity_sigma: float = 1.0
    influencer_creation_boost: float = 3.0
    remix_activity_sigma: float = 1.2


class EngagementConfig(_Frozen):
    """Views, remixes and the confounders in the counts."""

    views_per_day: float = 30.0  # feed views on the first day, for a creator with 0 followers
    reach_exponent: float = 0.45  # views scale with (1 + followers) ** reach_exponent
    influencer_view_boost: float = 2.5  # the platform promotes its top creators
    traffic_growth_per_day: float = 0.003  # the platform grows: later days bring more views
    feed_half_life_days: float = 2.5  # feeds show fresh images; views decay with age ...
    long_tail_share: float = 0.08  # ... to a floor (search, profiles), relative to day one
    max_age_days: int = 365  # the lifetime over which events are drawn
    remix_logit_base: float = -12.1  # remix probability per view at appeal 0
    remix_appeal_effect: float = 2.0  # per unit of true appeal
    caption_effect: float = 0.35  # per unit of log caption popularity: trending subjects
    taste_noise_sigma: float = 0.5  # what no attribute explains
    self_remix_rate: float = 0.12  # creators remixing their own image (no signal)
    self_remix_mean_extra: float = 1.0
    burst_rate: float = 0.04  # one user remixing one image many times (no signal)
    burst_size: tuple[int, int] = (4, 20)
    burst_hours: float = 6.0
    impressions_logged_from_day: int = 20  # impressions are null before the platform logged them
    impressions_noise_sigma: float = 0.1


class GeneratorConfig(_Frozen):
    """The platform's generator changed during the period; the old one has a look of its own."""

    versions: tuple[str, str] = ("sim-diffusion-1.5", "sim-diffusion-2.0")
    switch_day: int = 20  # the new version rolls out from this day ...
    rollout_days: int = 14  # ... and replaces the old one over this many days


class RenderConfig(_Frozen):
    """Visible traces of confounders, and rendering quality."""

    supersample: int = 3
    old_generator_sepia: float = 0.35  # the old generator's warm cast ...
    old_generator_vignette: float = 0.45  # ... and darkened corners
    signature_size: float = 0.1  # influencers' creator signature, share of the image side
    max_blotches: int = 6
    max_noise: float = 18.0


class WorldConfig(_Frozen):
    """One simulated community. `images` and `users` (accounts) are the counts at `days`.

    The export's users table lists the accounts that appear in it (about 96% of them).
    """

    seed: int = 0
    users: int = Field(2000, gt=0)
    images: int = Field(12000, gt=0)
    days: int = Field(60, gt=0)
    # The export's moment, in days from the start; later than `days` gives a later export of
    # the same community (its first `days` are identical), at the same daily rates.
    snapshot_day: int | None = Field(None, gt=0)
    image_size: int = Field(64, ge=16)
    # 400 prompts for the default export, each with enough images for same-prompt pairs, so
    # that a test split of 50 prompts gives intervals a 5-point gap stands out of (the
    # paper: 1.7M images over 104K prompts, 16 per prompt; popularity as skewed).
    images_per_prompt: float = 30.0
    prompt_zipf_exponent: float = 0.5
    prompt_surface_variation: float = 0.15  # share of captions with case/space/punctuation noise
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    source: str = "social-reward simulator"
    vocabulary: Vocabulary = Vocabulary()
    attributes: AttributeConfig = AttributeConfig()
    appeal: AppealWeights = AppealWeights()
    user_config: UserConfig = UserConfig()
    engagement: EngagementConfig = EngagementConfig()
    generator: GeneratorConfig = GeneratorConfig()
    render: RenderConfig = RenderConfig()

    @property
    def export_day(self) -> int:
        return self.snapshot_day or self.days

    @property
    def prompt_pool_size(self) -> int:
        wanted = max(1, round(self.images / self.images_per_prompt))
        return min(wanted, self.vocabulary.prompt_space)


# Accounts, of which about 1.5M appear in the export (the paper: 1.5M users).
PAPER_SCALE_USERS = 1_720_000
PAPER_SCALE_IMAGES = 1_700_000
# The paper's prompt spread: 1.7M images over 104K prompts, popularity as skewed as Zipf 1.
PAPER_SCALE_PROMPTS = {"images_per_prompt": 16.0, "prompt_zipf_exponent": 1.0}


# A drifted community (`social-reward simulate --drifted`): what a platform changes without
# telling the pipeline. A new generator version from the first day (no older-generator look),
# darker backgrounds in fashion, and captions full of new words.
DRIFTED_GENERATOR = GeneratorConfig(
    versions=("sim-diffusion-2.0", "sim-diffusion-3.0"), switch_day=0, rollout_days=1
)
DRIFTED_BACKGROUNDS = ("black", "navy", "olive", "maroon")
DRIFTED_DETAILS = (
    ", cyberpunk",
    ", watercolor",
    ", isometric",
    ", neon glow",
    ", pixel art",
    ", low poly",
    ", claymation",
    ", vaporwave",
    ", baroque",
    ", synthwave",
    ", papercut",
    ", holographic",
)


def drifted(world: WorldConfig) -> WorldConfig:
    """The same world, drifted: new generator, darker backgrounds, new caption words."""
    vocabulary = world.vocabulary.model_copy(
        update={
            "backgrounds": {
                name: rgb
                for name, rgb in world.vocabulary.backgrounds.items()
                if name in DRIFTED_BACKGROUNDS
            },
            "details": DRIFTED_DETAILS,
        }
    )
    return world.model_copy(
        update={
            "generator": DRIFTED_GENERATOR,
            "vocabulary": vocabulary,
            "source": f"{world.source} (drifted)",
        }
    )
