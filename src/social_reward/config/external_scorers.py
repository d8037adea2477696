"""Local weights of the external scorers: part of sections `evaluate` and `evaluate_generator`."""

from __future__ import annotations

from pathlib import Path

from social_reward.config.section import Section


class ExternalWeights(Section):
    """Local weights of the external scorers; an empty entry leaves that scorer out."""

    pickscore: Path | None = None  # a transformers CLIPModel folder (PickScore_v1)
    hpsv2: Path | None = None  # HPS_v2(.1)_compressed.pt (an open_clip ViT-H-14 state dict)
    aesthetic: Path | None = None  # the LAION aesthetic MLP's state dict ...
    aesthetic_clip: Path | None = None  # ... and the ViT-L-14 CLIP weights it runs on
    imagereward: Path | None = None  # ImageReward.pt
