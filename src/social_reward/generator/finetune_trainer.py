"""Reward fine-tuning of a generator: LoRA adapters (peft) on the denoiser's attention.

Two methods:
- `best_of_n`: sample `candidates` images per training prompt and round, keep the Social
  Reward's best of each, and fit the adapters to them with the ordinary denoising loss
  (the paper's "best of 20" turned into training data; RAFT-style).
- `draft`: sample with gradients through the last `draft_steps` DDIM steps and ascend the
  reward of the decoded image directly (DRaFT-K, Clark et al. 2024). A penalty on the
  squared distance between the tuned and the base model's prediction at those steps keeps
  the model near the base, so that it cannot run off to images only the reward likes.

The base weights stay frozen; only the adapters train and only they are saved, through
diffusers' own LoRA saving (`save_lora_adapter`) so that `load_lora_adapter` reads them.
An interrupted run resumes from its last epoch checkpoint (training/checkpoints.py), which
holds the adapters only: the base weights come from the base generator, as on a fresh start.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset
from tqdm import tqdm

from social_reward.generator.data import to_pil
from social_reward.generator.diffusion_trainer import denoising_loss, step_trainer
from social_reward.generator.finetune_config import FinetuneTrainerConfig
from social_reward.generator.pipeline import Generator, GeneratorError
from social_reward.generator.sampling import guided_prediction, sample, sample_batched
from social_reward.training.checkpoints import fit_resumable
from social_reward.training.epoch_history import EpochHistory
from social_reward.training.schedules import warmup_cosine

ADAPTER_NAME = "social_reward"
LORA_WEIGHTS_FILE = "pytorch_lora_weights.safetensors"  # diffusers' default name
FINETUNE_FILE = "finetune.json"  # how the adapters were made
SAFETENSORS_HEADER_SIZE = struct.Struct("<Q")  # the format's first 8 bytes: header length


def target_pattern(targets: Sequence[str]) -> str:
    """peft's target modules as one regular expression on module names.

    A list would do the same, but peft keeps it as a set, whose order (and so the bytes of
    the saved adapter's metadata) changes from one Python process to the next.
    """
    return rf".*\.({'|'.join(re.escape(target) for target in targets)})"


def add_lora(generator: Generator, config: FinetuneTrainerConfig) -> list[torch.nn.Parameter]:
    """Freeze the UNet and add trainable LoRA adapters to its attention projections."""
    from peft import LoraConfig

    generator.unet.requires_grad_(False)
    generator.unet.add_adapter(
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,
            init_lora_weights="gaussian",
            target_modules=target_pattern(config.lora_targets),
        ),
        adapter_name=ADAPTER_NAME,
    )
    return [p for p in generator.unet.parameters() if p.requires_grad]


def reward_scores_differentiable(reward, prompt_embeddings: torch.Tensor, images: torch.Tensor):
    """The reward's cosine for images in [0, 1], differentiable in the pixels.

    The reward's own preprocessing (resize to its input size, its mean and std) in tensor
    form, so that gradients reach the generator.
    """
    import torch.nn.functional as F

    cfg = reward.backbone.visual.preprocess_cfg
    size = reward.backbone.visual.image_size
    size = size if isinstance(size, int) else size[0]
    pixels = F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False)
    mean = torch.tensor(cfg["mean"], device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], device=images.device).view(1, 3, 1, 1)
    embeddings = reward.backbone.encode_image((pixels - mean) / std, normalize=True)
    return (embeddings * prompt_embeddings).sum(-1)


def best_of_n_picks(
    generator: Generator,
    reward,
    prompts: Sequence[str],
    config: FinetuneTrainerConfig,
    progress: bool = True,
) -> tuple[torch.Tensor, list[int], torch.Tensor, torch.Tensor]:
    """For each prompt and round, the reward's best of `candidates` samples.

    Returns the picked images, their prompt index, the picks' scores and the mean score of
    all candidates (what the selection gained). Seeds are fixed by (prompt, round, candidate).
    """
    rows = [
        (p, r, c)
        for p in range(len(prompts))
        for r in range(config.rounds)
        for c in range(config.candidates)
    ]
    seeds = [config.seed * 1_000_003 + n for n in range(len(rows))]
    texts = [prompts[p] for p, _, _ in rows]
    with tqdm(
        total=len(rows), desc="best-of-N candidates", unit="img", disable=not progress
    ) as bar:
        images = sample_batched(
            generator,
            texts,
            seeds,
            config.sampling_steps,
            config.guidance,
            config.batch_size,
            bar,
        )
    scores = torch.tensor(reward.score_pairs(texts, to_pil(images)))
    grouped = scores.view(len(prompts) * config.rounds, config.candidates)
    best = grouped.argmax(dim=1)
    picked_rows = torch.arange(len(grouped)) * config.candidates + best
    prompt_of_pick = [rows[int(n)][0] for n in picked_rows]
    return images[picked_rows], prompt_of_pick, grouped.max(dim=1).values, grouped.mean(dim=1)


class FinetuneModule(L.LightningModule):
    """One module for both methods; `config.method` picks the training step."""

    def __init__(
        self,
        generator: Generator,
        config: FinetuneTrainerConfig,
        prompts: Sequence[str],
        reward=None,
        picks: torch.Tensor | None = None,
        prompt_of_pick: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.unet = generator.unet
        self.config = config
        self.prompts = list(prompts)
        self.reward = reward
        self.picks = picks
        self.prompt_of_pick = list(prompt_of_pick or [])
        self.lora_parameters = add_lora(generator, config)
        # Checkpoints hold the adapters only (on_save_checkpoint): the frozen base is missing
        # from them by design.
        self.strict_loading = False
        if config.gradient_checkpointing:
            self.unet.enable_gradient_checkpointing()
        if reward is not None:
            reward.backbone.requires_grad_(False)
            self.prompt_embeddings = reward.embed_prompts(self.prompts)

    def on_fit_start(self) -> None:
        # Lightning moves registered modules; the generator's other parts and the reward
        # (frozen, not trained here) follow by hand.
        self.generator.to(self.device)
        if self.reward is not None:
            self.reward.to(self.device)
            self.prompt_embeddings = self.prompt_embeddings.to(self.device)
        if self.picks is not None:
            self.picks = self.picks.to(self.device)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen base weights (a whole UNet at real sizes) are the base generator's, which
        # the run's fingerprint covers: a checkpoint needs only what trains.
        trained = {name for name, parameter in self.named_parameters() if parameter.requires_grad}
        checkpoint["state_dict"] = {
            name: value for name, value in checkpoint["state_dict"].items() if name in trained
        }

    def training_step(self, batch: tuple[torch.Tensor]) -> torch.Tensor:
        rows = batch[0].cpu()
        if self.config.method == "best_of_n":
            loss = self.best_of_n_loss(rows)
        else:
            loss = self.draft_loss(rows)
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def best_of_n_loss(self, rows: torch.Tensor) -> torch.Tensor:
        latents = self.generator.to_latents(self.picks[rows])
        condition = self.generator.condition([self.prompts[self.prompt_of_pick[r]] for r in rows])
        return denoising_loss(self.generator, latents, condition, self.config.snr_gamma)

    def draft_loss(self, rows: torch.Tensor) -> torch.Tensor:
        prompts = [self.prompts[int(r)] for r in rows]
        seeds = torch.randint(0, 2**31 - 1, (len(rows),)).tolist()
        penalties: list[torch.Tensor] = []
        images = sample(
            self.generator,
            prompts,
            seeds,
            self.config.sampling_steps,
            self.config.guidance,
            grad_steps=self.config.draft_steps,
            on_grad_step=self.penalty_hook(penalties) if self.config.base_penalty else None,
        )
        reward = reward_scores_differentiable(self.reward, self.prompt_embeddings[rows], images)
        self.log("train_reward", reward.mean(), on_step=False, on_epoch=True)
        loss = -reward.mean()
        if penalties:
            loss = loss + self.config.base_penalty * torch.stack(penalties).mean()
        return loss

    def penalty_hook(self, penalties: list[torch.Tensor]):
        generator = self.generator

        def hook(latents, timestep, condition, empty, guidance, prediction):
            with torch.no_grad():
                generator.unet.disable_adapters()
                try:
                    base = guided_prediction(
                        generator, latents, timestep, condition, empty, guidance
                    )
                finally:
                    generator.unet.enable_adapters()
            penalties.append(((prediction - base) ** 2).mean())

        return hook

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.lora_parameters, lr=self.config.learning_rate)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, warmup_cosine(self.config.steps, self.config.warmup_fraction)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def finetune_loader(count: int, config: FinetuneTrainerConfig) -> DataLoader:
    """Rows of the picks (best_of_n) or of the training prompts (draft), reshuffled."""
    return DataLoader(
        TensorDataset(torch.arange(count)),
        batch_size=min(config.batch_size, count),
        shuffle=True,
        drop_last=count >= config.batch_size,
        generator=torch.Generator().manual_seed(config.seed),
    )


def save_lora(generator: Generator, folder: Path) -> None:
    generator.unet.save_lora_adapter(
        folder, adapter_name=ADAPTER_NAME, weight_name=LORA_WEIGHTS_FILE
    )
    sort_safetensors_metadata(folder / LORA_WEIGHTS_FILE)


def sort_safetensors_metadata(path: Path) -> None:
    """Rewrite a safetensors header with its `__metadata__` keys sorted, in place.

    safetensors (0.8) writes `__metadata__` in a random order (safetensors issue 584), and
    diffusers' LoRA files carry two keys, so the same adapters gave other bytes, and another
    DVC hash, on every run. Sorting keeps the header's length: only its order changes."""
    with path.open("r+b") as file:
        (length,) = SAFETENSORS_HEADER_SIZE.unpack(file.read(SAFETENSORS_HEADER_SIZE.size))
        header = json.loads(file.read(length))
        if "__metadata__" not in header:
            return
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
        encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
        if len(encoded) > length:
            raise GeneratorError(f"{path}: the sorted safetensors header does not fit")
        file.seek(SAFETENSORS_HEADER_SIZE.size)
        file.write(encoded.ljust(length))  # the format pads the header with spaces


def write_finetune_record(folder: Path, record: dict) -> None:
    """How the adapters in `folder` were made, beside them (`finetune.json`)."""
    (folder / FINETUNE_FILE).write_text(json.dumps(record, indent=2) + "\n")


def read_finetune_record(folder: Path) -> dict:
    path = folder / FINETUNE_FILE
    if not path.is_file():
        raise GeneratorError(f"{path}: file missing; run the `finetune` stage first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_lora(generator: Generator, folder: Path) -> Generator:
    """Adapters saved by `save_lora`, through diffusers' own LoRA loading."""
    generator.unet.load_lora_adapter(
        folder, prefix=None, adapter_name=ADAPTER_NAME, weight_name=LORA_WEIGHTS_FILE
    )
    return generator


@dataclass(frozen=True)
class FinetuneRun:
    history: EpochHistory  # loss (and, for draft, reward) per epoch
    trainable_parameters: int
    details: dict  # the method's own figures (best_of_n: candidates, picks, rewards)


def fit_lora(
    generator: Generator,
    reward,
    prompts: list[str],
    config: FinetuneTrainerConfig,
    checkpoints: Path,
    progress: bool = True,
    callbacks: Sequence[L.Callback] = (),
) -> FinetuneRun:
    """Add LoRA adapters to the generator and train them with `config.method`.

    An epoch checkpoint is kept in `checkpoints`, and a run finding one there resumes from it
    (best_of_n draws its picks again: they are seeded); `callbacks` are extra Lightning
    callbacks (tests interrupt a run with one). TrainingInterrupted when the run stops before
    its last step."""
    if config.method == "best_of_n":
        picks, prompt_of_pick, best, mean = best_of_n_picks(
            generator, reward, prompts, config, progress
        )
        module = FinetuneModule(generator, config, prompts, None, picks, prompt_of_pick)
        rows = len(picks)
        details = {
            "candidates": config.candidates,
            "picks": rows,
            "mean_candidate_reward": float(mean.mean()),
            "mean_pick_reward": float(best.mean()),
        }
    else:
        module = FinetuneModule(generator, config, prompts, reward)
        rows = len(prompts)
        details = {"draft_steps": config.draft_steps, "base_penalty": config.base_penalty}
    names = ("train_loss",) if config.method == "best_of_n" else ("train_loss", "train_reward")
    history = EpochHistory(names)
    loader = finetune_loader(rows, config)
    trainer = step_trainer(config, history, progress, checkpoints, loader, callbacks)
    fit_resumable(trainer, module, checkpoints, "fine-tuning", train_dataloaders=loader)
    return FinetuneRun(
        history=history,
        trainable_parameters=sum(p.numel() for p in module.lora_parameters),
        details=details,
    )
