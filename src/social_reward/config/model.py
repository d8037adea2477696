"""Section `model` of params.yaml: the backbone of the reward stages."""

from __future__ import annotations

from social_reward.config.section import Section


class ModelConfig(Section):
    """The backbone shared by the reward stages: an open_clip architecture and its weights."""

    SECTION = "model"

    backbone: str = "social-reward-tiny"  # an open_clip name, or a config in reward/model_configs
    # Local weights file or folder (or an open_clip tag where the network allows); empty:
    # the `pretrain` stage trains the backbone contrastively on the export.
    pretrained: str | None = None
