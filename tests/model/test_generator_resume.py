"""Interrupted `generator_pretrain` and `finetune` runs resume from their epoch checkpoints and
end as if never stopped: the noise, timesteps and DRaFT seeds draw from torch's global
generator, the loaders shuffle with their own, and the EMA is the module's own state; all of
it is in the checkpoint. Runs are params.yaml's sections, shrunk: a narrow UNet, a dozen
images of four training prompts, a few steps over two epochs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from social_reward.artifacts import IMAGE_SPLITS_FILE, TRAIN_SPLIT
from social_reward.config.finetune import FinetuneConfig
from social_reward.config.generator import GeneratorModelConfig
from social_reward.config.generator_pretrain import GeneratorPretrainConfig
from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone
from social_reward.reward.model import SocialReward
from social_reward.stages.finetune import run as run_finetune
from social_reward.stages.generator_pretrain import DENOISER_CHECKPOINTS
from social_reward.stages.generator_pretrain import run as run_generator_pretrain
from social_reward.training.checkpoints import LAST_CHECKPOINT
from tests.conftest import small_vae, stage_config
from tests.model.interruption import EpochsRun, interrupt_after_first_epoch

PROMPTS = 4  # training prompt groups kept
IMAGES_PER_PROMPT = 3
PRETRAIN_BATCH, PRETRAIN_STEPS = 4, 5  # 12 images: three steps in the first epoch, two after
FINETUNE_BATCH, FINETUNE_STEPS = 2, 3  # 4 prompts: two steps in the first epoch, one after


def outputs(*paths: Path) -> dict[str, bytes]:
    """Every file a run wrote (folders walked): what a resumed run must repeat byte for byte."""
    files = [file for path in paths for file in ([path] if path.is_file() else path.rglob("*"))]
    return {str(file): file.read_bytes() for file in sorted(files) if file.is_file()}


def relative(files: dict[str, bytes], root: Path) -> dict[str, bytes]:
    return {str(Path(name).relative_to(root)): data for name, data in files.items()}


@pytest.fixture(scope="module")
def small_pairs(stage_pairs, tmp_path_factory) -> Path:
    """The pairs stage's image list cut to a few images of a few training prompts."""
    images = pd.read_parquet(stage_pairs / IMAGE_SPLITS_FILE)
    train = images[images["split"] == TRAIN_SPLIT]
    keys = sorted(train["prompt_key"].unique())[:PROMPTS]
    kept = train[train["prompt_key"].isin(keys)].groupby("prompt_key").head(IMAGES_PER_PROMPT)
    folder = tmp_path_factory.mktemp("small-pairs")
    kept.reset_index(drop=True).to_parquet(folder / IMAGE_SPLITS_FILE, index=False)
    return folder


def pretrain_config(small_pairs, small_unet, training_inputs, out: Path):
    return stage_config(
        "generator_pretrain",
        pairs_dir=small_pairs,
        backbone_dir=training_inputs.backbone_dir,
        unet=str(small_unet),
        autoencoder=stage_config("generator_pretrain").autoencoder.model_copy(
            update={"model": str(small_vae(small_unet)), "steps": 4, "batch_size": 4}
        ),
        out_dir=out / "generator_base",
        metrics=out / "generator_pretrain.json",
        log=out / "generator_pretrain.csv",
        samples=out / "samples.png",
        checkpoint_dir=out / "checkpoints",
        steps=PRETRAIN_STEPS,
        batch_size=PRETRAIN_BATCH,
        decode_workers=1,
        sample_prompts=1,
        sample_seeds=1,
        sampling_steps=2,
    )


def pretrain(config: GeneratorPretrainConfig, callbacks: tuple = ()) -> dict[str, bytes]:
    run_generator_pretrain(
        GeneratorModelConfig(pretrained=None), config, progress=False, callbacks=callbacks
    )
    written = outputs(config.out_dir, config.metrics, config.log, config.samples)
    return relative(written, config.out_dir.parent)


@pytest.fixture(scope="module")
def pretrained(small_pairs, small_unet, training_inputs, tmp_path_factory):
    """The uninterrupted generator_pretrain run: its config and what it wrote."""
    config = pretrain_config(
        small_pairs, small_unet, training_inputs, tmp_path_factory.mktemp("generator-pretrain")
    )
    return config, pretrain(config)


def test_interrupted_generator_pretraining_resumes_to_the_uninterrupted_weights(
    small_pairs, small_unet, training_inputs, pretrained, tmp_path
):
    _, uninterrupted = pretrained
    config = pretrain_config(small_pairs, small_unet, training_inputs, tmp_path)
    interrupt_after_first_epoch(lambda callbacks: pretrain(config, callbacks), "generator")
    # The autoencoder finished (its last checkpoint is kept until the run completes); the
    # denoiser stopped after its first epoch.
    (checkpoint,) = config.checkpoint_dir.rglob(f"{DENOISER_CHECKPOINTS}/*.ckpt")
    assert checkpoint.name == LAST_CHECKPOINT
    assert "ema" in torch.load(checkpoint, weights_only=True)
    assert not config.out_dir.exists()

    epochs = EpochsRun()
    resumed = pretrain(config, callbacks=(epochs,))
    assert epochs.epochs == [1]  # the first epoch's three steps came from the checkpoint
    assert resumed.keys() == uninterrupted.keys()
    assert resumed == uninterrupted  # EMA weights, metrics, loss plot, samples
    assert not checkpoint.parent.parent.exists()


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory) -> Path:
    torch.manual_seed(1)
    reward = SocialReward(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE)
    return reward.save_pretrained(tmp_path_factory.mktemp("reward"))


def finetune_config(small_pairs, base_dir: Path, reward_dir: Path, out: Path) -> FinetuneConfig:
    return stage_config(
        "finetune",
        pairs_dir=small_pairs,
        base_dir=base_dir,
        reward_dir=reward_dir,
        out_dir=out / "generator",
        metrics=out / "finetune.json",
        log=out / "finetune.csv",
        checkpoint_dir=out / "checkpoints",
        steps=FINETUNE_STEPS,
        batch_size=FINETUNE_BATCH,
        sampling_steps=2,
        accelerator="cpu",
    )


def finetune(config: FinetuneConfig, callbacks: tuple = ()) -> dict[str, bytes]:
    run_finetune(config, progress=False, callbacks=callbacks)
    written = outputs(config.out_dir, config.metrics, config.log)
    return relative(written, config.out_dir.parent)


def test_interrupted_fine_tuning_resumes_to_the_uninterrupted_adapters(
    small_pairs, pretrained, reward_dir, tmp_path
):
    base_dir = pretrained[0].out_dir
    config = finetune_config(small_pairs, base_dir, reward_dir, tmp_path / "uninterrupted")
    assert config.method == "draft"  # params.yaml's method
    uninterrupted = finetune(config)

    config = finetune_config(small_pairs, base_dir, reward_dir, tmp_path / "interrupted")
    interrupt_after_first_epoch(lambda callbacks: finetune(config, callbacks), "fine-tuning")
    (checkpoint,) = config.checkpoint_dir.rglob("*.ckpt")
    saved = torch.load(checkpoint, weights_only=True)["state_dict"]
    assert saved and all("lora" in name for name in saved)  # the adapters only, not the base

    epochs = EpochsRun()
    resumed = finetune(config, callbacks=(epochs,))
    assert epochs.epochs == [1]
    assert resumed == uninterrupted  # adapters, finetune.json, metrics, loss plot
    assert not checkpoint.parent.exists()
