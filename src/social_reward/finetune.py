"""Stage `finetune`: LoRA adapters that raise the Social Reward of the base generator.

Training prompts are those of the pairs' train split; the test split's prompts are left
for `evaluate_generator`, never mixed. `finetune.method` picks `best_of_n` (the reward's
best of N samples as training data) or `draft` (reward gradients through the last K
denoising steps); see `generator/finetune_trainer.py`. Only the adapters are saved, as
safetensors that diffusers' LoRA loading reads, with `finetune.json` saying how they were
made.
"""

from __future__ import annotations

import json
import time

from social_reward.config import FinetuneConfig
from social_reward.generator.data import TRAIN_SPLIT, split_prompts

DIGITS = 4


def run_finetune(config: FinetuneConfig, progress: bool = True) -> dict:
    import lightning as L
    import torch

    from social_reward.generator.diffusion_trainer import step_trainer
    from social_reward.generator.finetune_trainer import (
        FINETUNE_FILE,
        FinetuneModule,
        best_of_n_picks,
        finetune_loader,
        save_lora,
    )
    from social_reward.generator.pipeline import device_for, load_generator
    from social_reward.reward.history import EpochHistory
    from social_reward.reward.model import SocialReward

    L.seed_everything(config.seed, workers=True, verbose=False)
    if config.cpu_threads is not None and config.accelerator == "cpu":
        torch.set_num_threads(config.cpu_threads)  # the whole stage: see FinetuneConfig
    prompts = split_prompts(config.pairs_dir, TRAIN_SPLIT)
    device = device_for(config.accelerator)
    generator = load_generator(config.base_dir).to(device)
    generator.unet.eval()
    reward = SocialReward.from_pretrained(config.reward_dir).to(device)
    metrics: dict = {"method": config.method, "prompts": len(prompts)}
    started = time.perf_counter()
    if config.method == "best_of_n":
        picks, prompt_of_pick, best, mean = best_of_n_picks(
            generator, reward, prompts, config, progress
        )
        module = FinetuneModule(generator, config, prompts, None, picks, prompt_of_pick)
        rows = len(picks)
        metrics.update(
            candidates=config.candidates,
            picks=rows,
            mean_candidate_reward=round(float(mean.mean()), DIGITS),
            mean_pick_reward=round(float(best.mean()), DIGITS),
        )
    else:
        module = FinetuneModule(generator, config, prompts, reward)
        rows = len(prompts)
        metrics.update(draft_steps=config.draft_steps, base_penalty=config.base_penalty)
    names = ("train_loss",) if config.method == "best_of_n" else ("train_loss", "train_reward")
    history = EpochHistory(names)
    trainer = step_trainer(config, history, progress)
    trainer.fit(module, finetune_loader(rows, config))
    print(f"fine-tuned in {time.perf_counter() - started:.0f} s")
    history.write_csv(config.log)
    save_lora(generator, config.out_dir)
    metrics.update(
        steps=config.steps,
        lora_rank=config.lora_rank,
        trainable_parameters=sum(p.numel() for p in module.lora_parameters),
        final_train_loss=round(history.rows[-1]["train_loss"], DIGITS),
    )
    record = {**metrics, "base_dir": str(config.base_dir), "reward_dir": str(config.reward_dir)}
    (config.out_dir / FINETUNE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
