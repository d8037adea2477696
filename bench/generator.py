"""Benchmark: the generator's costs on this machine, per fine-tuning method.

Prints, for the generator of `generator_pretrain` (the trained base when present, else the
small default with random weights over the saved backbone) and the params.yaml settings:
- pretraining: seconds per autoencoder step (batch `generator_pretrain.autoencoder.batch_size`)
  and per denoising step (batch `generator_pretrain.batch_size`);
- sampling: images per second (`finetune.sampling_steps` DDIM steps, guidance, batch 64);
- best_of_n: seconds per LoRA denoising step, and candidates per second (sample + score);
- draft: seconds per DRaFT-K step (sampling with gradients through the last K steps).
Targets (issue): the generator stages within 15 minutes and `make run` within 30; the
figures here say what each part of that budget buys.

    python bench/generator.py [--steps 5] [--params params.yaml]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

from social_reward.config.params import load_params
from social_reward.generator.data import to_pil
from social_reward.generator.diffusion_trainer import denoising_loss
from social_reward.generator.finetune_trainer import FinetuneModule, add_lora
from social_reward.generator.pipeline import GENERATOR_FILE, TinyGenerator, load_generator
from social_reward.generator.sampling import sample_batched
from social_reward.reward.backbone import load_saved_backbone
from social_reward.reward.model import CONFIG_FILE, SocialReward

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLING_BATCH = 64
SEED = 0


def timed(function, repeats: int) -> float:
    """Mean seconds of `repeats` calls after one warm-up call."""
    function()
    started = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - started) / repeats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed repetitions of each part")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.ERROR)
    torch.manual_seed(SEED)
    params = load_params(args.params)
    pretrain, tune = params.generator_pretrain, params.finetune
    base_dir = REPO_ROOT / pretrain.out_dir
    if (base_dir / GENERATOR_FILE).is_file():
        generator, origin = load_generator(base_dir), f"trained base, {pretrain.out_dir}"
    else:
        generator = TinyGenerator.build(
            pretrain.autoencoder.model,
            pretrain.unet,
            REPO_ROOT / pretrain.backbone_dir,
            pretrain.prediction_type,
            pretrain.timesteps,
            pretrain.beta_schedule,
            pretrain.text_tokens,
        )
        origin = "random weights"
    reward_dir = REPO_ROOT / tune.reward_dir
    if (reward_dir / CONFIG_FILE).is_file():
        reward = SocialReward.from_pretrained(reward_dir)
    else:
        backbone, name = load_saved_backbone(REPO_ROOT / pretrain.backbone_dir)
        reward = SocialReward(backbone, name)
    parameters = sum(p.numel() for p in generator.unet.parameters()) / 1e6
    print(
        f"generator on cpu: {generator.kind}, {generator.image_size} px, {parameters:.1f}M "
        f"UNet parameters ({origin}); {torch.get_num_threads()} threads"
    )
    prompt = "a red star on a navy background, striped style"

    # Pretraining, first half: one optimiser step of the autoencoder.
    from social_reward.generator.autoencoder_trainer import AutoencoderModule

    vae_batch = pretrain.autoencoder.batch_size
    vae_pixels = torch.randint(0, 256, (vae_batch, 3, generator.image_size, generator.image_size))
    vae_module = AutoencoderModule(generator.vae, vae_pixels, pretrain.autoencoder)
    generator.vae.requires_grad_(True)
    vae_optimizer = torch.optim.AdamW(generator.vae.parameters(), lr=1e-6)

    def autoencoder_step_with_backward() -> None:
        vae_module.training_step((torch.arange(vae_batch),)).backward()
        vae_optimizer.step()
        vae_optimizer.zero_grad()

    vae_module.log = lambda *args, **kwargs: None  # outside a Trainer: nothing to log to
    rows = [
        (
            "autoencoder step",
            f"batch {vae_batch}",
            timed(autoencoder_step_with_backward, args.steps),
            None,
        )
    ]
    generator.vae.requires_grad_(False)

    # Pretraining, second half: one optimiser step of the denoising loss.
    batch = pretrain.batch_size
    images = torch.rand(batch, 3, generator.image_size, generator.image_size)
    optimizer = torch.optim.AdamW(generator.unet.parameters(), lr=1e-6)

    with torch.no_grad():
        latents = generator.to_latents(images)  # the trainer encodes every image once

    def pretrain_step() -> None:
        loss = denoising_loss(
            generator,
            latents,
            generator.condition([prompt] * batch),
            pretrain.snr_gamma,
        )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    rows.append(("denoiser step", f"batch {batch}", timed(pretrain_step, args.steps), None))
    generator.unet.eval()

    def draw() -> torch.Tensor:
        return sample_batched(
            generator,
            [prompt] * SAMPLING_BATCH,
            list(range(SAMPLING_BATCH)),
            tune.sampling_steps,
            tune.guidance,
            SAMPLING_BATCH,
        )

    seconds = timed(draw, max(1, args.steps // 5))
    rows.append(("sampling", f"batch {SAMPLING_BATCH}", seconds, SAMPLING_BATCH / seconds))
    candidates = draw()

    def select() -> None:
        reward.score_pairs([prompt] * SAMPLING_BATCH, to_pil(candidates))

    scoring = timed(select, args.steps)
    rows.append(
        (
            "best_of_n candidates (sample+score)",
            f"batch {SAMPLING_BATCH}",
            seconds + scoring,
            SAMPLING_BATCH / (seconds + scoring),
        )
    )

    lora_parameters = add_lora(generator, tune)
    lora_optimizer = torch.optim.AdamW(lora_parameters, lr=1e-6)
    picks = candidates[: tune.batch_size]

    def best_of_n_step() -> None:
        loss = denoising_loss(
            generator,
            generator.to_latents(picks),
            generator.condition([prompt] * len(picks)),
            tune.snr_gamma,
        )
        loss.backward()
        lora_optimizer.step()
        lora_optimizer.zero_grad()

    rows.append(
        ("best_of_n LoRA step", f"batch {len(picks)}", timed(best_of_n_step, args.steps), None)
    )
    generator.unet.delete_adapters("social_reward")
    module = FinetuneModule(
        generator, tune.model_copy(update={"method": "draft"}), [prompt] * tune.batch_size, reward
    )

    def draft_step() -> None:
        loss = module.draft_loss(torch.arange(tune.batch_size))
        loss.backward()
        for parameter in module.lora_parameters:
            parameter.grad = None

    rows.append(
        (
            f"draft step (K={tune.draft_steps})",
            f"batch {tune.batch_size}",
            timed(draft_step, max(1, args.steps // 2)),
            None,
        )
    )
    print(f"  {'':<38} {'':>9} {'s/call':>8} {'images/s':>9}")
    for name, size, seconds, rate in rows:
        rate_text = f"{rate:9.1f}" if rate else f"{'':>9}"
        print(f"  {name:<38} {size:>9} {seconds:8.3f} {rate_text}")
    print(
        f"  summary: {pretrain.steps} pretraining steps ~ {pretrain.steps * rows[0][2] / 60:.1f} "
        f"min; {tune.steps} {tune.method} steps ~ "
        f"{tune.steps * rows[-1 if tune.method == 'draft' else -2][2] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
