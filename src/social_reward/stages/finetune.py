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
from pathlib import Path

import lightning as L
import torch

from social_reward.artifacts import TRAIN_SPLIT, StageResult, rounded, write_metrics
from social_reward.config.finetune import FinetuneConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.generator.data import split_prompts
from social_reward.generator.finetune_trainer import fit_lora, save_lora, write_finetune_record
from social_reward.generator.pipeline import device_for, load_generator
from social_reward.reward.model import SocialReward


def run(config: FinetuneConfig, progress: bool = True) -> dict:
    L.seed_everything(config.seed, workers=True, verbose=False)
    if config.cpu_threads is not None and config.accelerator == "cpu":
        torch.set_num_threads(config.cpu_threads)  # the whole stage: see FinetuneConfig
    prompts = split_prompts(config.pairs_dir, TRAIN_SPLIT)
    device = device_for(config.accelerator)
    generator = load_generator(config.base_dir).to(device)
    generator.unet.eval()
    reward = SocialReward.from_pretrained(config.reward_dir).to(device)
    started = time.perf_counter()
    fitted = fit_lora(generator, reward, prompts, config, progress)
    print(f"fine-tuned in {time.perf_counter() - started:.0f} s")
    fitted.history.write_csv(config.log)
    save_lora(generator, config.out_dir)
    metrics = rounded(
        {
            "method": config.method,
            "prompts": len(prompts),
            **fitted.details,
            "steps": config.steps,
            "lora_rank": config.lora_rank,
            "trainable_parameters": fitted.trainable_parameters,
            "final_train_loss": fitted.history.rows[-1]["train_loss"],
        }
    )
    write_finetune_record(
        config.out_dir,
        {**metrics, "base_dir": str(config.base_dir), "reward_dir": str(config.reward_dir)},
    )
    return write_metrics(config.metrics, metrics)


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, FinetuneConfig)
    metrics = run(config)
    return StageResult(written=(config.out_dir, config.metrics), summary=[json.dumps(metrics)])
