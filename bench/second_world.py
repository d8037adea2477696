"""Write the second simulated world that modelling choices are checked on (docs/experiments.md).

Not the default export: another seed, another spread of prompts, other appeal weights and
stronger confounders (reach acts harder on views, influencers are promoted more, trending
captions count more, the old generator's look is stronger). A choice is kept only when it
holds here too.

    python bench/second_world.py --out /tmp/world2   # writes data/ and truth/appeal.parquet
"""

from __future__ import annotations

import argparse
from pathlib import Path

from social_reward.simulate import write_export
from social_reward.simulate.config import (
    AppealWeights,
    EngagementConfig,
    RenderConfig,
    WorldConfig,
)

SECOND_WORLD = WorldConfig(
    seed=101,
    images=12000,
    users=2500,
    images_per_prompt=25.0,
    prompt_zipf_exponent=0.7,
    appeal=AppealWeights(
        colour_match=0.7,
        subject_match=1.1,
        style_match=0.6,
        composition=0.8,
        contrast=1.4,
        artifacts=-1.1,
    ),
    engagement=EngagementConfig(
        reach_exponent=0.6,
        influencer_view_boost=4.0,
        caption_effect=0.6,
        self_remix_rate=0.2,
        burst_rate=0.08,
    ),
    render=RenderConfig(old_generator_sepia=0.5, old_generator_vignette=0.6),
    source="social-reward second world",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--images", type=int, default=SECOND_WORLD.images)
    args = parser.parse_args()
    world = SECOND_WORLD.model_copy(update={"images": args.images})
    write_export(world, args.out / "data", args.out / "truth" / "appeal.parquet", overwrite=True)


if __name__ == "__main__":
    main()
