"""Stage `train`: the Social Reward, fine-tuned on preference pairs with Lightning.

One run per variant (`train.variants`; DVC's `foreach`): `reward` trains on the pairs
stage's pairs (debiased), `ablation` on the other mode's pairs (naive, raw counts) of the
same prompt splits. Each
writes a `SocialReward` folder (model.safetensors + config.json with the architecture,
unlock mode, loss and a hash of the training data), `metrics/train/<variant>.json` and the
per-epoch loss and validation accuracy as `plots/train/<variant>.csv`.

An interrupted run resumes from its last epoch checkpoint: checkpoints live under
`train.checkpoint_dir/<variant>/<fingerprint>`, where the fingerprint covers the config,
the backbone and the pairs, so a changed run never resumes a stale one. They are removed
when the run completes.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from social_reward.config import ParamsError, TrainConfig
from social_reward.reward.data import PairDataError

SPLIT_FILES = ("train.parquet", "val.parquet")
LAST_CHECKPOINT = "last.ckpt"
DIGITS = 4
FINGERPRINT_CHARS = 16
HASH_CHUNK = 1 << 20

if TYPE_CHECKING:
    from lightning import Callback


class TrainingInterrupted(RuntimeError):
    """Training stopped before its last epoch; its checkpoint is kept for resuming."""


def file_digest(paths: list[Path]) -> str:
    """sha256 over the files' bytes, in order: the identity of a run's inputs."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as file:
            while chunk := file.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def check_batch_split(config: TrainConfig) -> None:
    """Each process takes an equal slice of every batch: batch_size must divide by their
    number, where the config fixes it (with "auto" or -1 devices the sampler checks)."""
    devices = config.devices
    if isinstance(devices, str) and devices.isdigit():
        devices = int(devices)
    if not isinstance(devices, int) or devices < 1:
        return
    processes = devices * config.num_nodes
    if config.batch_size % processes:
        raise ParamsError(
            f"train.batch_size {config.batch_size} must divide by the number of processes "
            f"{processes} (train.devices {devices} x train.num_nodes {config.num_nodes}): "
            "each process takes an equal slice of every batch"
        )


def run_train(
    config: TrainConfig,
    variant: str,
    progress: bool = True,
    callbacks: Sequence[Callback] = (),
) -> dict:
    """Train one variant's reward; write its model, metrics and loss plot. `callbacks` are
    extra Lightning callbacks (tests interrupt a run with one)."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from social_reward.reward.backbone import load_saved_backbone, tokenizer_for, unlock
    from social_reward.reward.data import ImageBank, images_of_pairs, pair_set, read_pairs
    from social_reward.reward.history import EpochHistory
    from social_reward.reward.model import SocialReward
    from social_reward.reward.trainer import PairDataModule, RewardModule
    from social_reward.reward.trainer_config import RewardTrainerConfig

    check_batch_split(config)
    if variant not in config.variants:
        raise PairDataError(
            f"train variant {variant!r} unknown; params.yaml train.variants has "
            f"{sorted(config.variants)}"
        )
    paths = config.variants[variant]
    pair_files = [paths.pairs_dir / name for name in SPLIT_FILES]
    train_pairs, val_pairs = (read_pairs(path) for path in pair_files)
    if train_pairs.empty:
        raise PairDataError(f"{pair_files[0]}: no training pairs; run the `pairs` stage first")

    L.seed_everything(config.seed, workers=True, verbose=False)
    backbone, name = load_saved_backbone(config.backbone_dir)
    trainer_config = RewardTrainerConfig(
        **config.model_dump(include=set(RewardTrainerConfig.model_fields))
    )
    data_hash = file_digest(pair_files)
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                trainer_config.model_dump(),
                data_hash,
                file_digest(sorted(config.backbone_dir.iterdir())),
            ]
        ).encode()
    ).hexdigest()[:FINGERPRINT_CHARS]

    images = images_of_pairs(train_pairs, val_pairs)
    bank = ImageBank.decode(
        backbone,
        list(images["image_id"]),
        list(images["path"]),
        workers=config.decode_workers,
        progress=progress,
    )
    pair_sets = {"train": pair_set(train_pairs, bank), "val": pair_set(val_pairs, bank)}
    tokenize = tokenizer_for(name)
    tokens = {split: tokenize(pairs.prompts) for split, pairs in pair_sets.items()}
    trained_parameters = unlock(backbone, config.unlock)
    data = PairDataModule(backbone, bank, pair_sets, tokens, trainer_config)
    module = RewardModule(backbone, trainer_config, data.blocks)

    checkpoints = config.checkpoint_dir / variant / fingerprint
    history = EpochHistory(("train_loss", "val_accuracy"))
    trainer = L.Trainer(
        max_epochs=config.epochs,
        logger=False,
        deterministic=True,
        use_distributed_sampler=False,  # ShardedBatchSampler shards every batch itself
        num_sanity_val_steps=0,
        enable_progress_bar=progress,
        enable_model_summary=False,
        callbacks=[
            history,
            # One file, overwritten each epoch. (save_last with save_top_k=0 writes nothing:
            # Lightning saves `last` only in a step where a top-k checkpoint was saved.)
            ModelCheckpoint(
                dirpath=checkpoints,
                filename=Path(LAST_CHECKPOINT).stem,
                save_top_k=1,
                enable_version_counter=False,
            ),
            *callbacks,
        ],
        **config.trainer_arguments(),
    )
    resume = checkpoints / LAST_CHECKPOINT
    started = time.perf_counter()
    message = f"training of {variant} interrupted; rerun the stage to resume from {resume}"
    try:
        trainer.fit(
            module,
            datamodule=data,
            ckpt_path=resume if resume.is_file() else None,
            weights_only=True,  # a checkpoint is never unpickled beyond tensors and plain data
        )
    except SystemExit as error:  # Lightning ends a run stopped by Ctrl+C with sys.exit(1)
        if not trainer.interrupted:
            raise
        raise TrainingInterrupted(message) from error
    if trainer.interrupted:
        raise TrainingInterrupted(message)
    if trainer.global_rank != 0:
        return {}

    reward = SocialReward(
        backbone,
        name,
        config={
            "variant": variant,
            "unlock": config.unlock,
            "loss": config.loss,
            "margin": config.margin,
            "training_data_sha256": data_hash,
            "trained_parameter_tensors": len(trained_parameters),
        },
    )
    reward.save_pretrained(paths.out_dir)
    history.write_csv(config.log_dir / f"{variant}.csv")
    last = history.rows[-1]
    metrics = {
        "variant": variant,
        "pairs": {"train": len(train_pairs), "val": len(val_pairs)},
        "unlock": config.unlock,
        "loss": config.loss,
        "cached_prefix": data.cached,
        "trained_parameters": sum(
            parameter.numel() for parameter in backbone.parameters() if parameter.requires_grad
        ),
        "epochs": config.epochs,
        "final_train_loss": round(last["train_loss"], DIGITS),
        "val_accuracy": round(last["val_accuracy"], DIGITS),
    }
    metrics_path = config.metrics_dir / f"{variant}.json"
    metrics_path.parent.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(checkpoints, ignore_errors=True)
    print(f"trained {variant} in {time.perf_counter() - started:.0f} s")
    return metrics
