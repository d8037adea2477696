"""Contrastive (CLIP) pretraining of a backbone on the export's images and their prompts.

The standard CLIP loss, with one change the data asks for: many images share a prompt, so
the images of one prompt group in a batch are all positives of each other's prompt (soft
targets spread over them) instead of false negatives.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from social_reward.reward.backbone import tokenizer_for
from social_reward.reward.contrastive_config import ContrastiveConfig
from social_reward.reward.data import ImageBank, prompt_captions, prompt_groups
from social_reward.training.checkpoints import fit_resumable, resumable_trainer
from social_reward.training.epoch_history import EpochHistory
from social_reward.training.schedules import warmup_cosine


def multi_positive_clip_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    groups: torch.Tensor,
    logit_scale: torch.Tensor,
) -> torch.Tensor:
    """Symmetric cross-entropy of CLIP with every same-group pair as a positive."""
    logits = logit_scale * image_embeddings @ text_embeddings.T
    same = (groups[:, None] == groups[None, :]).float()
    targets = same / same.sum(dim=1, keepdim=True)
    image_to_text = -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    text_to_image = -(targets * F.log_softmax(logits.T, dim=1)).sum(dim=1).mean()
    return (image_to_text + text_to_image) / 2


class ContrastiveModule(L.LightningModule):
    def __init__(
        self,
        backbone: torch.nn.Module,
        bank: ImageBank,
        caption_tokens: torch.Tensor,
        caption_of_image: torch.Tensor,
        config: ContrastiveConfig,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.bank = bank
        self.caption_tokens = caption_tokens  # [captions, context] token ids
        self.caption_of_image = caption_of_image  # [images] row of each image's caption
        self.config = config

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        rows, groups = batch
        pixels = self.bank.normalise(self.bank.pixels[rows.cpu()]).to(self.device)
        if self.config.flip:
            flip = torch.rand(len(rows)) < 0.5
            pixels[flip] = pixels[flip].flip(-1)
        images = self.backbone.encode_image(pixels, normalize=True)
        # Popular captions recur within a batch: each distinct one is encoded once.
        captions, inverse = torch.unique(self.caption_of_image[rows.cpu()], return_inverse=True)
        distinct = self.caption_tokens[captions].to(self.device)
        texts = self.backbone.encode_text(distinct, normalize=True)[inverse.to(self.device)]
        loss = multi_positive_clip_loss(images, texts, groups, self.backbone.logit_scale.exp())
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            [p for p in self.backbone.parameters() if p.requires_grad],
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )
        total = int(self.trainer.estimated_stepping_batches)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(total, self.config.warmup_fraction)
        )
        return [optimizer], [{"scheduler": schedule, "interval": "step"}]


def pretrain_loader(groups: torch.Tensor, config: ContrastiveConfig) -> DataLoader:
    rows = torch.arange(len(groups))
    generator = torch.Generator().manual_seed(config.seed)
    return DataLoader(
        TensorDataset(rows, groups),
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=True,  # a batch of one group has no negatives
        generator=generator,
    )


def fit_contrastive(
    backbone: torch.nn.Module,
    name: str,
    images: pd.DataFrame,
    config: ContrastiveConfig,
    checkpoints: Path,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> EpochHistory:
    """Train `backbone` (architecture `name`) in place on images and their prompts (columns
    image_id, path, prompt, prompt_key); returns the loss per epoch.

    An epoch checkpoint is kept in `checkpoints`, and a run finding one there resumes from it
    (training/checkpoints.py); `callbacks` are extra Lightning callbacks (tests interrupt a
    run with one). TrainingInterrupted when the run stops before its last epoch."""
    bank = ImageBank.of_images(backbone, images, config.decode_workers, progress)
    captions, caption_of_image = prompt_captions(images["prompt"])
    caption_tokens = tokenizer_for(name)(captions)
    groups = torch.tensor(prompt_groups(images["prompt_key"]))
    history = EpochHistory(("train_loss",))
    loader = pretrain_loader(groups, config)
    trainer = resumable_trainer(
        config,
        [history, *callbacks],
        progress,
        checkpoints,
        generators=[loader.generator],  # the shuffling, restored on resume
        max_epochs=config.epochs,
    )
    module = ContrastiveModule(backbone, bank, caption_tokens, caption_of_image, config)
    fit_resumable(trainer, module, checkpoints, "pretraining", train_dataloaders=loader)
    return history
