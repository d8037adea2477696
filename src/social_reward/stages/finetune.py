"""Stage `finetune`: LoRA adapters that raise the Social Reward of the base generator.

Training prompts are those of the pairs' train split; the test split's prompts are left
for `evaluate_generator`, never mixed. `finetune.method` picks `best_of_n` (the reward's
best of N samples as training data) or `draft` (reward gradients through the last K
denoising steps); see `generator/finetune_trainer.py`. Only the adapters are saved, as
safetensors that diffusers' LoRA loading reads, with `finetune.json` saying how they were
made.

An interrupted run resumes from its last epoch checkpoint, under
`finetune.checkpoint_dir/<fingerprint>` (the fingerprint covers the training settings, the
prompts' file, the base generator and the reward, so a changed run never resumes a stale
one); they are removed when the run completes.
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
    TRAIN_SPLIT,
    StageResult,
    rounded,
    write_metrics,
)
from social_reward.config.finetune import FinetuneConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.generator.data import split_prompts
from social_reward.generator.finetune_config import FinetuneTrainerConfig
from social_reward.generator.finetune_trainer import fit_lora, save_lora, write_finetune_record
from social_reward.generator.pipeline import device_for, load_generator
from social_reward.reward.model import SocialReward
from social_reward.training.checkpoints import discard_checkpoints
from social_reward.training.run_identity import file_digest, folder_digest, run_fingerprint


def checkpoint_folder(config: FinetuneConfig) -> Path:
    """Where this run's checkpoints live: keyed by its training settings and inputs."""
    fingerprint = run_fingerprint(
        config.model_dump(include={*FinetuneTrainerConfig.model_fields, "cpu_threads"}),
        file_digest([config.pairs_dir / IMAGE_SPLITS_FILE]),
        folder_digest(config.base_dir),
        folder_digest(config.reward_dir),
    )
    return config.checkpoint_dir / fingerprint


def run(
    config: FinetuneConfig, progress: bool = True, callbacks: Sequence[L.Callback] = ()
) -> dict:
    """Fine-tune LoRA adapters of the base generator; write them, metrics and loss plot.
    `callbacks` are extra Lightning callbacks of the training (tests interrupt with one)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    if config.cpu_threads is not None and config.accelerator == "cpu":
        torch.set_num_threads(config.cpu_threads)  # the whole stage: see FinetuneConfig
    prompts = split_prompts(config.pairs_dir, TRAIN_SPLIT)
    device = device_for(config.accelerator)
    generator = load_generator(config.base_dir).to(device)
    generator.unet.eval()
    reward = SocialReward.from_pretrained(config.reward_dir).to(device)
    started = time.perf_counter()
    checkpoints = checkpoint_folder(config)
    fitted = fit_lora(generator, reward, prompts, config, checkpoints, progress, callbacks)
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
    written = write_metrics(config.metrics, metrics)
    discard_checkpoints(checkpoints)
    return written


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, FinetuneConfig)
    metrics = run(config)
    return StageResult(written=(config.out_dir, config.metrics), summary=[json.dumps(metrics)])
