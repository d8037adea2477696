"""The preference trainer: an open_clip backbone fine-tuned on (prompt, remixed, other) pairs.

Lightning does the loop, the devices and the checkpoints; this module holds what is ours:
- `PrefixCache`: when the lower blocks are frozen (the unlock mode), their outputs for each
  image (and its mirror, for augmentation) and each prompt are computed once and reused at
  every step. Only the trainable upper blocks run in the loop. The uncached path computes
  the same thing from pixels; both give the same scores (tested).
- `ShardedBatchSampler`: one global order of pairs per epoch, each process taking its slice
  of every batch, so that N-process DDP with batch B/N matches one process with batch B.
- Random choices (which view of an image) come from generators seeded by (seed, step), so a
  run resumed from a checkpoint continues exactly as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pandas as pd
import torch
from torch.utils.data import DataLoader, Sampler
from torchmetrics import MeanMetric

from social_reward.config.section import ParamsError
from social_reward.reward.backbone import tokenizer_for, unlock, vision_blocks, vision_embeddings
from social_reward.reward.data import ImageBank, PairSet, images_of_pairs, pair_set
from social_reward.reward.losses import LOSSES, neutrality_penalty, score_margin
from social_reward.reward.prefix import (
    encode_image_prefix,
    encode_image_suffix,
    encode_text_prefix,
    encode_text_suffix,
    frozen_block_count,
)
from social_reward.reward.trainer_config import RewardTrainerConfig
from social_reward.training.checkpoints import fit_resumable, resumable_trainer
from social_reward.training.epoch_history import EpochHistory

PREFIX_BATCH = 128  # images per forward pass when the cache is filled
STEP_SEED_STRIDE = 1_000_003  # separates the seeds of steps from run seeds
BEST_CHECKPOINT = "best.ckpt"


def _trainable(module: torch.nn.Module | torch.nn.Parameter | None) -> bool:
    if module is None:
        return False
    if isinstance(module, torch.nn.Parameter):
        return module.requires_grad
    return any(parameter.requires_grad for parameter in module.parameters())


def cacheable_blocks(backbone: torch.nn.Module) -> tuple[int | None, int | None]:
    """How many lower blocks of each tower can be cached (None: the embeddings train)."""
    visual = backbone.visual
    text_embeddings = [backbone.token_embedding, backbone.positional_embedding]
    vision = (
        None
        if any(_trainable(part) for part in vision_embeddings(visual))
        else frozen_block_count(vision_blocks(visual))
    )
    text = (
        None
        if any(_trainable(part) for part in text_embeddings)
        else frozen_block_count(backbone.transformer.resblocks)
    )
    return vision, text


@dataclass
class PrefixCache:
    """Outputs of the frozen lower blocks: per image and view, and per distinct prompt."""

    images: torch.Tensor  # [views, images, tokens, width]
    texts: dict[str, torch.Tensor]  # split -> [prompts, context, width]
    vision_blocks: int
    text_blocks: int

    @classmethod
    @torch.no_grad()
    def compute(
        cls,
        backbone: torch.nn.Module,
        bank: ImageBank,
        tokens: dict[str, torch.Tensor],
        views: int,
        vision_blocks: int,
        text_blocks: int,
    ) -> PrefixCache:
        training = backbone.training
        device = next(backbone.parameters()).device
        backbone.eval()  # normalisation statistics as the model stands, not of a batch
        per_view = []
        for view in range(views):
            chunks = []
            for start in range(0, len(bank.pixels), PREFIX_BATCH):
                pixels = bank.normalise(bank.pixels[start : start + PREFIX_BATCH]).to(device)
                pixels = pixels.flip(-1) if view else pixels
                chunks.append(encode_image_prefix(backbone, pixels, vision_blocks))
            per_view.append(torch.cat(chunks))
        backbone.train(training)
        return cls(
            images=torch.stack(per_view),
            texts={
                split: encode_text_prefix(backbone, ids.to(device), text_blocks)
                for split, ids in tokens.items()
            },
            vision_blocks=vision_blocks,
            text_blocks=text_blocks,
        )


class ShardedBatchSampler(Sampler[list[int]]):
    """Batches of a seeded global order; each of `world_size` processes takes its slice."""

    def __init__(
        self, size: int, batch_size: int, seed: int, shuffle: bool, rank: int, world_size: int
    ) -> None:
        if batch_size % world_size:
            raise ValueError(
                f"train.batch_size {batch_size} must divide by the number of processes "
                f"{world_size} (each takes an equal slice of every batch)"
            )
        self.size, self.batch_size, self.seed, self.shuffle = size, batch_size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed * STEP_SEED_STRIDE + self.epoch)
        return torch.randperm(self.size, generator=generator)

    def __iter__(self):
        order = self._order()
        # Training drops a last incomplete batch (equal slices); evaluation keeps every pair.
        stop = len(order) - len(order) % self.batch_size if self.shuffle else len(order)
        for start in range(0, stop, self.batch_size):
            yield order[start : start + self.batch_size][self.rank :: self.world_size].tolist()

    def __len__(self) -> int:
        if self.shuffle:
            return self.size // self.batch_size
        return -(-self.size // self.batch_size)


class PairDataModule(L.LightningDataModule):
    """Pairs as batches of model inputs: cached prefix states, or normalised pixels."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        bank: ImageBank,
        pair_sets: dict[str, PairSet],
        tokens: dict[str, torch.Tensor],
        config: RewardTrainerConfig,
    ) -> None:
        super().__init__()
        self.backbone = backbone  # unlocked already: the frozen prefix is known
        self.bank = bank
        self.pair_sets = pair_sets  # "train", "val"
        self.tokens = tokens  # split -> [prompts, context] token ids
        self.config = config
        self.views = 2 if config.flip_views else 1
        vision, text = cacheable_blocks(backbone)
        self.cached = config.cache_prefix and vision is not None and text is not None
        self.blocks = (vision, text) if self.cached else (None, None)
        self.cache: PrefixCache | None = None
        self.samplers: dict[str, ShardedBatchSampler] = {}

    def setup(self, stage: str) -> None:
        if self.cached and self.cache is None:
            vision, text = self.blocks
            # setup runs before Lightning moves the model: fill the cache on the run's device.
            if self.trainer is not None:
                self.backbone.to(self.trainer.strategy.root_device)
            self.cache = PrefixCache.compute(
                self.backbone, self.bank, self.tokens, self.views, vision, text
            )

    def _views(self, split: str, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which view (0: as is, 1: mirrored) of each positive and negative image: drawn per
        (seed, epoch, pair), so batching, processes and resuming do not change it."""
        if split != "train" or self.views == 1:
            return torch.zeros_like(index), torch.zeros_like(index)
        epoch = self.samplers[split].epoch
        generator = torch.Generator().manual_seed(self.config.seed * STEP_SEED_STRIDE + epoch)
        views = torch.randint(0, self.views, (len(self.pair_sets[split]), 2), generator=generator)
        return views[index, 0], views[index, 1]

    def _images(self, split: str, rows: torch.Tensor, views: torch.Tensor) -> torch.Tensor:
        if self.cached:
            return self.cache.images[views, rows]
        pixels = self.bank.normalise(self.bank.pixels[rows])
        flipped = views.bool()
        pixels[flipped] = pixels[flipped].flip(-1)
        return pixels

    def collate(self, split: str, indices: list[int]) -> dict[str, torch.Tensor]:
        pairs = self.pair_sets[split]
        index = torch.tensor(indices, dtype=torch.long)
        prompt_rows = pairs.prompt_rows[index]
        pos_views, neg_views = self._views(split, index)
        batch = {
            "tokens": self.tokens[split][prompt_rows],
            "positive": self._images(split, pairs.pos_rows[index], pos_views),
            "negative": self._images(split, pairs.neg_rows[index], neg_views),
            "sides": pairs.sides[index],
        }
        if self.cached:
            batch["prompt_states"] = self.cache.texts[split][prompt_rows]
        return batch

    def _loader(self, split: str) -> DataLoader:
        sampler = ShardedBatchSampler(
            len(self.pair_sets[split]),
            self.config.batch_size,
            self.config.seed,
            shuffle=split == "train",
            rank=self.trainer.global_rank,
            world_size=self.trainer.world_size,
        )
        self.samplers[split] = sampler
        return DataLoader(
            range(len(self.pair_sets[split])),
            batch_sampler=sampler,
            collate_fn=lambda indices: self.collate(split, indices),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")


class RewardModule(L.LightningModule):
    """Scores = cosine of prompt and image embeddings; trained on pairs with the chosen loss.

    Batches hold either prefix states (`PairDataModule` cached the frozen blocks) or pixels
    and token ids; `blocks` says where the cached prefix stops in each tower.
    """

    def __init__(
        self,
        backbone: torch.nn.Module,
        config: RewardTrainerConfig,
        blocks: tuple[int | None, int | None] = (None, None),
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.config = config
        self.loss_function = LOSSES[config.loss]
        self.vision_blocks, self.text_blocks = blocks
        # Summed over every validation pair, whichever process holds it: averaging each
        # process's mean would weigh unequal shards (an odd last batch) unequally.
        self.val_accuracy = MeanMetric()

    def train(self, mode: bool = True) -> RewardModule:
        super().train(mode)
        # Batch statistics would differ between a batch's positive and negative images and
        # between cached and uncached runs: batch norms keep their pretrained statistics.
        for module in self.backbone.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self

    def on_train_start(self) -> None:
        # Lightning never calls train() itself (it only restores modes after validation), and
        # PrefixCache.compute leaves the backbone as nn.Module.train set it: apply the rule above.
        self.train()

    def embed(self, batch: dict[str, torch.Tensor]):
        model = self.backbone
        if self.vision_blocks is None:
            prompt = model.encode_text(batch["tokens"], normalize=True)
            positive = model.encode_image(batch["positive"], normalize=True)
            negative = model.encode_image(batch["negative"], normalize=True)
        else:
            prompt = encode_text_suffix(
                model, batch["prompt_states"], batch["tokens"], self.text_blocks
            )
            positive = encode_image_suffix(model, batch["positive"], self.vision_blocks)
            negative = encode_image_suffix(model, batch["negative"], self.vision_blocks)
        return prompt, positive, negative

    @staticmethod
    def outcomes(prompt: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor):
        """Per pair: 1 when the positive scores higher, 1/2 on a tie, else 0."""
        margin = score_margin(prompt, positive, negative)
        return (margin > 0).float() + 0.5 * (margin == 0).float()

    def training_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        prompt, positive, negative = self.embed(batch)
        loss = self.loss_function(
            prompt, positive, negative, self.backbone.logit_scale, self.config.margin
        )
        if self.config.neutrality_weight:
            loss = loss + self.config.neutrality_weight * neutrality_penalty(
                prompt, positive, negative, batch["sides"]
            )
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        # Beside val_accuracy, the gap between the two says how much the run memorises.
        outcome = self.outcomes(prompt.detach(), positive.detach(), negative.detach())
        self.log(
            "train_accuracy",
            outcome.mean(),
            batch_size=len(outcome),
            on_step=False,
            on_epoch=True,
            sync_dist=True,
        )
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor]) -> None:
        self.val_accuracy.update(self.outcomes(*self.embed(batch)))
        self.log("val_accuracy", self.val_accuracy, on_epoch=True, prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            [parameter for parameter in self.backbone.parameters() if parameter.requires_grad],
            lr=self.config.learning_rate,
            weight_decay=self.config.weight_decay,
        )


def check_batch_split(config: RewardTrainerConfig) -> None:
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


@dataclass(frozen=True)
class FittedReward:
    """What a training run learned, besides the backbone's weights (trained in place)."""

    history: EpochHistory  # train loss, train and validation accuracy per epoch
    best_epoch: int  # the epoch whose weights were kept (the last without keep_best_epoch)
    cached_prefix: bool  # the frozen lower blocks were computed once
    trained_parameter_tensors: int
    main_process: bool  # rank 0, the process that writes the outputs


def fit_reward(
    backbone: torch.nn.Module,
    name: str,
    train_pairs: pd.DataFrame,
    val_pairs: pd.DataFrame,
    config: RewardTrainerConfig,
    checkpoints: Path,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
    label: str = "training",
) -> FittedReward:
    """Fine-tune `backbone` (architecture `name`) on the pairs, in place, with Lightning.

    An epoch checkpoint is kept in `checkpoints` (one file, overwritten), and a run finding
    one there resumes from it (one that does not load is set aside: `resume_point`);
    `callbacks` are extra Lightning callbacks (tests interrupt a run with one).
    TrainingInterrupted (training/checkpoints.py), its message starting with `label`, when
    the run stops before its last epoch."""
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    images = images_of_pairs(train_pairs, val_pairs)
    bank = ImageBank.of_images(backbone, images, config.decode_workers, progress)
    pair_sets = {"train": pair_set(train_pairs, bank), "val": pair_set(val_pairs, bank)}
    tokenize = tokenizer_for(name)
    tokens = {split: tokenize(pairs.prompts) for split, pairs in pair_sets.items()}
    trained_parameters = unlock(backbone, config.unlock)
    data = PairDataModule(backbone, bank, pair_sets, tokens, config)
    module = RewardModule(backbone, config, data.blocks)

    history = EpochHistory(("train_loss", "train_accuracy", "val_accuracy"))
    # The epoch with the best accuracy on validation prompts (never seen in training) is the
    # one kept; with a patience, training also stops once it stopped improving.
    best = ModelCheckpoint(
        dirpath=checkpoints,
        filename=Path(BEST_CHECKPOINT).stem,
        monitor="val_accuracy",
        mode="max",
        save_top_k=1,
        enable_version_counter=False,
    )
    stopping = (
        [EarlyStopping("val_accuracy", mode="max", patience=config.early_stopping_patience)]
        if config.early_stopping_patience
        else []
    )
    trainer = resumable_trainer(
        config,
        # `best` before the epoch checkpoint (`resumable_trainer` adds it last), so that the
        # epoch's best is in what a resumed run restores (checkpoint callbacks run in order).
        [history, best, *stopping, *callbacks],
        progress,
        checkpoints,
        max_epochs=config.epochs,
        use_distributed_sampler=False,  # ShardedBatchSampler shards every batch itself
        num_sanity_val_steps=0,
    )
    fit_resumable(trainer, module, checkpoints, label, datamodule=data)
    best_epoch = len(history.rows)
    if config.keep_best_epoch and best.best_model_path:
        kept = torch.load(best.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(kept["state_dict"])
        best_epoch = int(kept["epoch"]) + 1
    return FittedReward(
        history=history,
        best_epoch=best_epoch,
        cached_prefix=data.cached,
        trained_parameter_tensors=len(trained_parameters),
        main_process=trainer.global_rank == 0,
    )
