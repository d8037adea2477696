"""A small generator for the code tests: the repository's UNet config, shrunk, on a
randomly initialised backbone saved as the pretrain stage saves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from social_reward.generator.pipeline import TinyGenerator, unet_config
from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone, save_backbone
from tests.conftest import stage_config


@pytest.fixture(scope="package")
def backbone_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("backbone")
    return save_backbone(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE, folder)


@pytest.fixture(scope="package")
def small_unet(tmp_path_factory) -> Path:
    """The default UNet config with narrower blocks (the same layout and conditioning)."""
    config = unet_config(stage_config("generator_pretrain").unet)
    config.update(block_out_channels=[16, 32, 32], norm_num_groups=8)
    path = tmp_path_factory.mktemp("unet") / "small-unet.json"
    path.write_text(json.dumps(config))
    return path


def build_small(backbone_dir: Path, small_unet: Path, seed: int = 0) -> TinyGenerator:
    config = stage_config("generator_pretrain")
    torch.manual_seed(seed)
    generator = TinyGenerator.build(
        str(small_unet),
        backbone_dir,
        config.prediction_type,
        config.timesteps,
        config.beta_schedule,
        config.text_tokens,
    )
    generator.unet.eval()
    return generator


@pytest.fixture
def generator(backbone_dir, small_unet) -> TinyGenerator:
    return build_small(backbone_dir, small_unet)
