"""Section `generator_pretrain` of params.yaml: the small default generator's training."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.section import Section
from social_reward.generator.autoencoder_config import AutoencoderConfig
from social_reward.generator.diffusion_config import DiffusionConfig


class GeneratorPretrainConfig(DiffusionConfig, Section):
    """Section `generator_pretrain`: the small default generator, trained on the export."""

    SECTION = "generator_pretrain"

    pairs_dir: Path = Path("artifacts/pairs")  # images.parquet: images and their prompts
    backbone_dir: Path = Path("models/backbone")  # its frozen text tower encodes prompts
    out_dir: Path = Path("models/generator_base")
    metrics: Path = Path("metrics/generator_pretrain.json")
    log: Path = Path("plots/generator_pretrain.csv")
    samples: Path = Path("reports/generator_pretrain/samples.png")
    # An interrupted run resumes from here (<fingerprint>/last.ckpt); removed when done.
    checkpoint_dir: Path = Path("artifacts/checkpoints/generator_pretrain")
    autoencoder: AutoencoderConfig = AutoencoderConfig()  # trained first, then the denoiser
    sample_prompts: int = Field(8, gt=0)  # rows of the sample grid (training prompts)
    sample_seeds: int = Field(6, gt=0)
    sampling_steps: int = Field(20, gt=0)
    guidance: float = Field(3.0, ge=1)
