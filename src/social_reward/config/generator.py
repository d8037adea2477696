"""Section `generator` of params.yaml: which text-to-image model the generator stages tune."""

from __future__ import annotations

from pathlib import Path

from social_reward.config.section import Section


class GeneratorModelConfig(Section):
    """Section `generator`: which text-to-image model the generator stages tune."""

    SECTION = "generator"

    # A local Stable Diffusion folder (diffusers' save_pretrained layout) or single checkpoint
    # file; empty: the small default of this repository, trained by `generator_pretrain`.
    pretrained: Path | None = None
