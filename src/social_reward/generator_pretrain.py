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

from social_reward.config import GeneratorModelConfig, GeneratorPretrainConfig
from social_reward.pretrain import HELD_OUT_SPLIT, read_image_splits

DIGITS = 4


def run_generator_pretrain(
    model: GeneratorModelConfig, config: GeneratorPretrainConfig, progress: bool = True
) -> dict:
    import lightning as L

    from social_reward.generator.data import decode_pixels, representative_prompts
    from social_reward.generator.diffusion_trainer import (
        CaptionFeatures,
        DiffusionModule,
        image_loader,
        step_trainer,
    )
    from social_reward.generator.grid import sample_grid
    from social_reward.generator.pipeline import (
        StableDiffusionGenerator,
        TinyGenerator,
        device_for,
    )
    from social_reward.reward.backbone import load_saved_backbone
    from social_reward.reward.data import prompt_captions
    from social_reward.reward.history import EpochHistory

    L.seed_everything(config.seed, workers=True, verbose=False)
    images = read_image_splits(config.pairs_dir)
    images = images[images["split"] != HELD_OUT_SPLIT].reset_index(drop=True)
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
        pixels = decode_pixels(
            list(images["path"]), generator.image_size, config.decode_workers, progress
        )
        captions, caption_of_image = prompt_captions(images["prompt"])
        history = EpochHistory(("train_loss",))
        trainer = step_trainer(config, history, progress)
        module = DiffusionModule(
            generator, pixels, caption_of_image, CaptionFeatures(generator, captions), config
        )
        started = time.perf_counter()
        trainer.fit(module, image_loader(len(pixels), config))
        print(f"generator pretrained in {time.perf_counter() - started:.0f} s")
        history.write_csv(config.log)
        backbone, _ = load_saved_backbone(config.backbone_dir)
        generator.save_pretrained(config.out_dir, backbone)
        metrics.update(
            kind=generator.kind,
            trained=True,
            images=len(images),
            prompts=int(images["prompt_key"].nunique()),
            held_out_split=HELD_OUT_SPLIT,
            image_size=generator.image_size,
            parameters=sum(p.numel() for p in generator.unet.parameters()),
            steps=config.steps,
            final_train_loss=round(history.rows[-1]["train_loss"], DIGITS),
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
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
