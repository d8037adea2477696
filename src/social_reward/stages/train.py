"""Stage `train`: the Social Reward, fine-tuned on preference pairs with Lightning.

One run per variant (`train.variants`; DVC's `foreach`): `reward` trains on the pairs
stage's pairs (debiased), `ablation` on the other mode's pairs (naive, raw counts) of the
same prompt splits. Each writes a `SocialReward` folder (model.safetensors + config.json
with the architecture, unlock mode, loss and a hash of the training data),
`metrics/train/<variant>.json` and the per-epoch loss and validation accuracy as
`plots/train/<variant>.csv`.

An interrupted run resumes from its last epoch checkpoint: checkpoints live under
`train.checkpoint_dir/<variant>/<fingerprint>`, where the fingerprint covers the config,
the backbone and the pairs, so a changed run never resumes a stale one. They are removed
when the run completes; one that does not load is set aside (`last.ckpt.corrupt-<time>`,
kept) with a warning, and the run starts afresh.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from social_reward.artifacts import (
    TRAIN_SPLIT,
    VAL_SPLIT,
    PairDataError,
    StageResult,
    split_file,
    write_metrics,
)
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.config.train import TrainConfig
from social_reward.reward.backbone import load_saved_backbone
from social_reward.reward.data import read_pairs, share_of_pairs
from social_reward.reward.model import SocialReward
from social_reward.reward.trainer import check_batch_split, fit_reward
from social_reward.training.checkpoints import discard_checkpoints
from social_reward.training.run_identity import file_digest, run_fingerprint


def run(
    config: TrainConfig,
    variant: str,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> dict:
    """Train one variant's reward; write its model, metrics and loss plot. `callbacks` are
    extra Lightning callbacks (tests interrupt a run with one). Other processes of a
    multi-process run write nothing and return {}."""
    check_batch_split(config)
    if variant not in config.variants:
        raise PairDataError(
            f"train variant {variant!r} unknown; params.yaml train.variants has "
            f"{sorted(config.variants)}"
        )
    paths = config.variants[variant]
    pair_files = [split_file(paths.pairs_dir, split) for split in (TRAIN_SPLIT, VAL_SPLIT)]
    train_pairs, val_pairs = (read_pairs(path) for path in pair_files)
    if train_pairs.empty:
        raise PairDataError(f"{pair_files[0]}: no training pairs; run the `pairs` stage first")
    train_pairs = share_of_pairs(train_pairs, paths.pairs_share, config.seed)

    L.seed_everything(config.seed, workers=True, verbose=False)
    backbone, name = load_saved_backbone(config.backbone_dir)
    trainer_config = config.trainer_config(variant)
    data_hash = file_digest(pair_files)
    fingerprint = run_fingerprint(
        {**trainer_config.model_dump(), "pairs_share": paths.pairs_share},
        data_hash,
        file_digest(sorted(config.backbone_dir.iterdir())),
    )
    checkpoints = config.checkpoint_dir / variant / fingerprint
    started = time.perf_counter()
    fitted = fit_reward(
        backbone,
        name,
        train_pairs,
        val_pairs,
        trainer_config,
        checkpoints,
        progress=progress,
        callbacks=callbacks,
        label=f"training of {variant}",
    )
    if not fitted.main_process:
        return {}

    reward = SocialReward(
        backbone,
        name,
        config={
            "variant": variant,
            "unlock": config.unlock,
            "loss": config.loss,
            "margin": config.margin,
            "neutrality_weight": trainer_config.neutrality_weight,
            "training_data_sha256": data_hash,
            "pairs_share": paths.pairs_share,
            "train_pairs": len(train_pairs),
            "trained_parameter_tensors": fitted.trained_parameter_tensors,
        },
    )
    reward.save_pretrained(paths.out_dir)
    fitted.history.write_csv(config.log_dir / f"{variant}.csv")
    last, kept = fitted.history.rows[-1], fitted.history.rows[fitted.best_epoch - 1]
    metrics = write_metrics(
        config.metrics_dir / f"{variant}.json",
        {
            "variant": variant,
            "pairs": {"train": len(train_pairs), "val": len(val_pairs)},
            "pairs_share": paths.pairs_share,
            "unlock": config.unlock,
            "loss": config.loss,
            "cached_prefix": fitted.cached_prefix,
            "trained_parameters": sum(
                parameter.numel() for parameter in backbone.parameters() if parameter.requires_grad
            ),
            "epochs": config.epochs,
            "epochs_run": len(fitted.history.rows),
            "best_epoch": fitted.best_epoch,  # whose weights were kept
            "final_train_loss": last["train_loss"],
            "train_accuracy": kept["train_accuracy"],
            "val_accuracy": kept["val_accuracy"],
        },
    )
    discard_checkpoints(checkpoints)
    print(f"trained {variant} in {time.perf_counter() - started:.0f} s")
    return metrics


def main(variant: str, params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, TrainConfig)
    metrics = run(config, variant)
    if not metrics:  # the other processes of a multi-process run report nothing
        return StageResult(written=())
    return StageResult(
        written=(config.variants[variant].out_dir, config.metrics_dir / f"{variant}.json"),
        summary=[json.dumps(metrics)],
    )
