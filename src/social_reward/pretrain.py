"""Stage `pretrain`: a backbone for the reward, before any preference is seen.

With `model.pretrained` (local weights of a real architecture) the stage loads them and
writes them to `models/backbone/` unchanged. Without, it trains `model.backbone` from random
weights with the CLIP loss on the export's images and prompts, leaving out every image of
the test split's prompts, so that evaluation measures images the backbone never saw. The
zero-shot cosine of this backbone is the "CLIP score" baseline of the evaluation.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from social_reward.config import ModelConfig, PretrainConfig
from social_reward.reward.data import PairDataError

IMAGE_SPLITS_FILE = "images.parquet"
HELD_OUT_SPLIT = "test"
DIGITS = 4


def read_image_splits(pairs_dir: Path) -> pd.DataFrame:
    path = pairs_dir / IMAGE_SPLITS_FILE
    if not path.is_file():
        raise PairDataError(f"{path}: file missing; run the `pairs` stage first")
    return pd.read_parquet(path)


def run_pretrain(model: ModelConfig, config: PretrainConfig, progress: bool = True) -> dict:
    import lightning as L
    import torch

    from social_reward.reward.backbone import build_backbone, save_backbone, tokenizer_for
    from social_reward.reward.contrastive_trainer import ContrastiveModule, pretrain_loader
    from social_reward.reward.data import ImageBank, prompt_captions, prompt_groups
    from social_reward.reward.history import EpochHistory

    L.seed_everything(config.seed, workers=True, verbose=False)
    backbone = build_backbone(model.backbone, model.pretrained)
    metrics: dict = {"backbone": model.backbone, "pretrained": model.pretrained}
    if model.pretrained:
        metrics["trained"] = False
    else:
        images = read_image_splits(config.pairs_dir)
        images = images[images["split"] != HELD_OUT_SPLIT].reset_index(drop=True)
        bank = ImageBank.decode(
            backbone,
            list(images["image_id"]),
            list(images["path"]),
            workers=config.decode_workers,
            progress=progress,
        )
        captions, caption_of_image = prompt_captions(images["prompt"])
        caption_tokens = tokenizer_for(model.backbone)(captions)
        groups = torch.tensor(prompt_groups(images["prompt_key"]))
        history = EpochHistory(("train_loss",))
        trainer = L.Trainer(
            max_epochs=config.epochs,
            logger=False,
            enable_checkpointing=False,
            deterministic=True,
            enable_progress_bar=progress,
            enable_model_summary=False,
            callbacks=[history],
            **config.trainer_arguments(),
        )
        started = time.perf_counter()
        trainer.fit(
            ContrastiveModule(backbone, bank, caption_tokens, caption_of_image, config),
            pretrain_loader(groups, config),
        )
        history.write_csv(config.log)
        metrics.update(
            trained=True,
            images=len(images),
            prompts=int(images["prompt_key"].nunique()),
            held_out_split=HELD_OUT_SPLIT,
            epochs=config.epochs,
            final_train_loss=round(history.rows[-1]["train_loss"], DIGITS),
        )
        # Printed, not in the metrics: a metrics file must not change on an identical rerun.
        print(f"pretrained in {time.perf_counter() - started:.0f} s")
    save_backbone(backbone, model.backbone, config.out_dir)
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics
