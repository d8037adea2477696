"""Stage `pretrain`: a backbone for the reward, before any preference is seen.

With `model.pretrained` (local weights: a real architecture, or the generic backbone of
`backbones/`) the stage loads them and writes them to `models/backbone/` unchanged; its plot
is their pretraining loss where their folder records it. Without, it trains
`model.backbone` from random weights with the CLIP loss on the export's images and prompts,
leaving out every image of the test split's prompts, so that evaluation measures images the
backbone never saw. The zero-shot cosine of this backbone is the "CLIP score" baseline of
the evaluation.

An interrupted training resumes from its last epoch checkpoint, under
`pretrain.checkpoint_dir/<fingerprint>` (the fingerprint covers the training settings, the
architecture and the images file, so a changed run never resumes a stale one); they are
removed when the run completes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L

from social_reward.artifacts import (
    IMAGE_SPLITS_FILE,
    TEST_SPLIT,
    StageResult,
    read_training_images,
    write_metrics,
)
from social_reward.config.model import ModelConfig
from social_reward.config.pretrain import PretrainConfig
from social_reward.config.section import DEFAULT_PARAMS, load_sections
from social_reward.reward.backbone import build_backbone, pretraining_losses, save_backbone
from social_reward.reward.contrastive_config import ContrastiveConfig
from social_reward.reward.contrastive_trainer import fit_contrastive
from social_reward.training.checkpoints import discard_checkpoints
from social_reward.training.epoch_history import EpochHistory
from social_reward.training.run_identity import file_digest, run_fingerprint


def checkpoint_folder(model: ModelConfig, config: PretrainConfig) -> Path:
    """Where this run's checkpoints live: keyed by its training settings and inputs."""
    fingerprint = run_fingerprint(
        config.model_dump(include=set(ContrastiveConfig.model_fields)),
        model.backbone,
        file_digest([config.pairs_dir / IMAGE_SPLITS_FILE]),
    )
    return config.checkpoint_dir / fingerprint


def run(
    model: ModelConfig,
    config: PretrainConfig,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> dict:
    """Load or train the backbone; write it, its metrics and loss plot. `callbacks` are extra
    Lightning callbacks of the training (tests interrupt a run with one)."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    backbone = build_backbone(model.backbone, model.pretrained)
    metrics: dict = {"backbone": model.backbone, "pretrained": model.pretrained}
    checkpoints: Path | None = None  # loaded weights train nothing: no checkpoints
    if model.pretrained:
        metrics["trained"] = False
        # The plot shows how the weights were pretrained, where their folder says so.
        losses = pretraining_losses(model.pretrained)
        history = EpochHistory(("train_loss",))
        history.rows = [
            {"epoch": epoch, "train_loss": loss} for epoch, loss in enumerate(losses, start=1)
        ]
        history.write_csv(config.log)
        if losses:
            metrics["final_train_loss"] = losses[-1]
    else:
        images = read_training_images(config.pairs_dir)
        started = time.perf_counter()
        checkpoints = checkpoint_folder(model, config)
        history = fit_contrastive(
            backbone, model.backbone, images, config, checkpoints, progress, callbacks
        )
        history.write_csv(config.log)
        metrics.update(
            trained=True,
            images=len(images),
            prompts=int(images["prompt_key"].nunique()),
            held_out_split=TEST_SPLIT,
            epochs=config.epochs,
            final_train_loss=history.rows[-1]["train_loss"],
        )
        # Printed, not in the metrics: a metrics file must not change on an identical rerun.
        print(f"pretrained in {time.perf_counter() - started:.0f} s")
    save_backbone(backbone, model.backbone, config.out_dir)
    written = write_metrics(config.metrics, metrics)
    if checkpoints is not None:
        discard_checkpoints(checkpoints)
    return written


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    model, config = load_sections(params, ModelConfig, PretrainConfig)
    metrics = run(model, config)
    return StageResult(written=(config.out_dir, config.metrics), summary=[json.dumps(metrics)])
