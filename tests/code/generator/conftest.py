"""A small generator for the code tests: the repository's autoencoder and UNet configs,
shrunk, on a randomly initialised backbone saved as the pretrain stage saves it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from social_reward.generator.pipeline import TinyGenerator
from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone, save_backbone
from tests.conftest import small_vae, stage_config


@pytest.fixture(scope="package")
def backbone_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("backbone")
    return save_backbone(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE, folder)


def build_small(backbone_dir: Path, small_unet: Path, seed: int = 0) -> TinyGenerator:
    config = stage_config("generator_pretrain")
    torch.manual_seed(seed)
    generator = TinyGenerator.build(
        str(small_vae(small_unet)),
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
