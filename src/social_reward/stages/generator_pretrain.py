"""Stage `generator_pretrain`: the generator that reward fine-tuning starts from.

With `generator.pretrained` (a local Stable Diffusion folder or checkpoint file) the stage
checks that it loads and records where it lives in `models/generator_base/generator.json`;
the weights stay where they are. Without, it trains the small default of this repository
(`generator/pipeline.py`) from random weights on the export's images and prompts, leaving
out the test split's prompts as the reward's pretraining does: first its autoencoder
(`autoencoder_trainer.py`; a grid of images beside their reconstructions and their PSNR show
how well it keeps them), then the denoiser in the autoencoder's latent space
(`diffusion_trainer.py`). It is saved in Stable Diffusion's folder layout. A grid of samples
for training prompts shows what it learned.

An interrupted training resumes from its last epoch checkpoint, under
`generator_pretrain.checkpoint_dir/<fingerprint>/{autoencoder,denoiser}` (the fingerprint
covers the training settings, the model configs, the images file and the backbone, so a
changed run never resumes a stale one); they are removed when the run completes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch

from social_reward.artifacts import (
    IMAGE_SPLITS_FILE,
    TEST_SPLIT,
    StageResult,
    read_training_images,
    write_metrics,
)
from social_reward.config.generator import GeneratorModelConfig
from social_reward.config.generator_pretrain import GeneratorPretrainConfig
from social_reward.config.section import DEFAULT_PARAMS, load_sections
from social_reward.generator.autoencoder_trainer import (
    fit_autoencoder,
    reconstruction_psnr,
    set_scaling_factor,
)
from social_reward.generator.data import decode_pixels, representative_prompts
from social_reward.generator.diffusion_config import DiffusionConfig
from social_reward.generator.diffusion_trainer import fit_diffusion
from social_reward.generator.grid import sample_grid, save_grid
from social_reward.generator.pipeline import (
    StableDiffusionGenerator,
    TinyGenerator,
    autoencoder_config,
    device_for,
    unet_config,
)
from social_reward.reward.backbone import load_saved_backbone
from social_reward.training.checkpoints import discard_checkpoints
from social_reward.training.epoch_history import PLOT_DIGITS
from social_reward.training.run_identity import file_digest, folder_digest, run_fingerprint

AUTOENCODER_CHECKPOINTS = "autoencoder"  # subfolders of the run's checkpoint folder
DENOISER_CHECKPOINTS = "denoiser"
RECONSTRUCTIONS = "reconstructions.png"  # beside the sample grid


def checkpoint_folder(config: GeneratorPretrainConfig) -> Path:
    """Where this run's checkpoints live: keyed by its training settings and inputs."""
    fingerprint = run_fingerprint(
        config.model_dump(include={*DiffusionConfig.model_fields, "autoencoder"}),
        autoencoder_config(config.autoencoder.model),
        unet_config(config.unet),
        file_digest([config.pairs_dir / IMAGE_SPLITS_FILE]),
        folder_digest(config.backbone_dir),
    )
    return config.checkpoint_dir / fingerprint


def run(
    model: GeneratorModelConfig,
    config: GeneratorPretrainConfig,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> dict:
    """Check or train the base generator; write it, its metrics, loss plot and sample grid.
    `callbacks` are extra Lightning callbacks of the denoiser's training (tests interrupt
    with one)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    images = read_training_images(config.pairs_dir)
    metrics: dict = {"pretrained": str(model.pretrained) if model.pretrained else None}
    checkpoints: Path | None = None  # a pretrained generator trains nothing: no checkpoints
    if model.pretrained:
        generator = StableDiffusionGenerator.from_pretrained(Path(model.pretrained))
        generator.save_reference(config.out_dir, Path(model.pretrained))
        metrics.update(kind=generator.kind, trained=False)
    else:
        generator = TinyGenerator.build(
            config.autoencoder.model,
            config.unet,
            config.backbone_dir,
            config.prediction_type,
            config.timesteps,
            config.beta_schedule,
            config.text_tokens,
        )
        started = time.perf_counter()
        checkpoints = checkpoint_folder(config)
        pixels = decode_pixels(
            list(images["path"]), generator.image_size, config.decode_workers, progress
        )
        autoencoder = train_autoencoder(generator, pixels, config, checkpoints, progress)
        history = fit_diffusion(
            generator,
            pixels,
            images["prompt"],
            config,
            checkpoints / DENOISER_CHECKPOINTS,
            progress,
            callbacks,
        )
        print(f"generator pretrained in {time.perf_counter() - started:.0f} s")
        history.write_csv(config.log)
        backbone, _ = load_saved_backbone(config.backbone_dir)
        generator.save_pretrained(config.out_dir, backbone)
        metrics.update(
            kind=generator.kind,
            trained=True,
            images=len(images),
            prompts=int(images["prompt_key"].nunique()),
            held_out_split=TEST_SPLIT,
            image_size=generator.image_size,
            latent_shape=list(generator.latent_shape),
            autoencoder=autoencoder,
            parameters=sum(p.numel() for p in generator.unet.parameters()),
            steps=config.steps,
            final_train_loss=history.rows[-1]["train_loss"],
        )
    generator.to(device_for(config.accelerator)).unet.eval()
    prompts = representative_prompts(images, config.sample_prompts)
    sample_grid(
        generator,
        prompts,
        config.sample_seeds,
        config.sampling_steps,
        config.guidance,
        config.samples,
        title="Base generator: training prompts (rows), seeds (columns)",
    )
    written = write_metrics(config.metrics, metrics)
    if checkpoints is not None:
        for phase in (AUTOENCODER_CHECKPOINTS, DENOISER_CHECKPOINTS):
            discard_checkpoints(checkpoints / phase)
        discard_checkpoints(checkpoints)
    return written


def train_autoencoder(
    generator: TinyGenerator,
    pixels,
    config: GeneratorPretrainConfig,
    checkpoints: Path,
    progress: bool,
) -> dict:
    """The first half: the autoencoder, its latents' scale, and how well it reconstructs
    (PSNR over the images, a grid of some of them beside their reconstruction)."""
    settings = config.autoencoder
    history = fit_autoencoder(
        generator.vae,
        pixels,
        settings,
        config,
        config.seed,
        checkpoints / AUTOENCODER_CHECKPOINTS,
        progress,
    )
    scale = set_scaling_factor(generator.vae, pixels)
    shown = pixels[: settings.reconstructions]
    with torch.no_grad():
        reconstructed = generator.from_latents(generator.to_latents(shown.float() / 255))
    save_grid(
        [shown.float() / 255, reconstructed],
        ["images", "reconstructed"],
        config.samples.parent / RECONSTRUCTIONS,
        "Autoencoder: training images (top) and their reconstruction through the latents",
    )
    return {
        "steps": settings.steps,
        "final_train_loss": history.rows[-1]["train_loss"],
        "reconstruction_psnr_db": round(reconstruction_psnr(generator.vae, pixels), PLOT_DIGITS),
        "scaling_factor": round(scale, PLOT_DIGITS),
    }


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    model, config = load_sections(params, GeneratorModelConfig, GeneratorPretrainConfig)
    metrics = run(model, config)
    return StageResult(
        written=(config.out_dir, config.samples, config.metrics),
        summary=[json.dumps(metrics)],
    )
