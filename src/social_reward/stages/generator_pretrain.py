"""Stage `generator_pretrain`: the generator that reward fine-tuning starts from.

With `generator.pretrained` (a local Stable Diffusion folder or checkpoint file) the stage
checks that it loads and records where it lives in `models/generator_base/generator.json`;
the weights stay where they are. Without, it trains the small default of this repository
(`generator/pipeline.py`) from random weights on the export's images and prompts, leaving
out the test split's prompts as the reward's pretraining does, and saves it as a folder of
diffusers components. A grid of samples for training prompts shows what it learned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L

from social_reward.artifacts import TEST_SPLIT, StageResult, read_training_images, write_metrics
from social_reward.config.generator import GeneratorModelConfig
from social_reward.config.generator_pretrain import GeneratorPretrainConfig
from social_reward.config.section import DEFAULT_PARAMS, load_sections
from social_reward.generator.data import representative_prompts
from social_reward.generator.diffusion_trainer import fit_diffusion
from social_reward.generator.grid import sample_grid
from social_reward.generator.pipeline import StableDiffusionGenerator, TinyGenerator, device_for
from social_reward.reward.backbone import load_saved_backbone


def run(
    model: GeneratorModelConfig, config: GeneratorPretrainConfig, progress: bool = True
) -> dict:
    L.seed_everything(config.seed, workers=True, verbose=False)
    images = read_training_images(config.pairs_dir)
    metrics: dict = {"pretrained": str(model.pretrained) if model.pretrained else None}
    if model.pretrained:
        generator = StableDiffusionGenerator.from_pretrained(Path(model.pretrained))
        generator.save_reference(config.out_dir, Path(model.pretrained))
        metrics.update(kind=generator.kind, trained=False)
    else:
        generator = TinyGenerator.build(
            config.unet,
            config.backbone_dir,
            config.prediction_type,
            config.timesteps,
            config.beta_schedule,
            config.text_tokens,
        )
        started = time.perf_counter()
        history = fit_diffusion(generator, images, config, progress)
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
    return write_metrics(config.metrics, metrics)


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    model, config = load_sections(params, GeneratorModelConfig, GeneratorPretrainConfig)
    metrics = run(model, config)
    return StageResult(
        written=(config.out_dir, config.samples, config.metrics),
        summary=[json.dumps(metrics)],
    )
