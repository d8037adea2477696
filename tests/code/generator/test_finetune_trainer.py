"""Reward fine-tuning mechanics: LoRA only on attention, base frozen, diffusers' own LoRA
saving and loading, best-of-N picks, and DRaFT's reward gradient and base penalty."""

from __future__ import annotations

import json

import lightning as L
import pytest
import torch
from safetensors import safe_open

from social_reward.generator.data import to_pil
from social_reward.generator.finetune_trainer import (
    LORA_WEIGHTS_FILE,
    FinetuneModule,
    add_lora,
    best_of_n_picks,
    finetune_loader,
    load_lora,
    save_lora,
    target_pattern,
)
from social_reward.generator.sampling import sample
from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone
from social_reward.reward.model import SocialReward
from tests.code.generator.conftest import build_small
from tests.conftest import stage_config

PROMPTS = ["a red star on a navy background", "a blue ring on a white background"]
SAVES = 8  # unsorted, two metadata keys come out in one order with chance 1/2 per save


def finetune_config(**changes):
    small = dict(
        method="best_of_n",
        steps=2,
        batch_size=2,
        sampling_steps=2,
        candidates=3,
        rounds=2,
        lora_rank=2,
        learning_rate=0.05,
        warmup_fraction=0.0,
    )
    return stage_config("finetune", **{**small, **changes})


@pytest.fixture(scope="module")
def reward() -> SocialReward:
    torch.manual_seed(1)
    return SocialReward(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE, batch_size=4)


def fit(module: FinetuneModule, rows: int, config) -> None:
    L.Trainer(
        max_steps=config.steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
    ).fit(module, finetune_loader(rows, config))


def unet_state(generator) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in generator.unet.state_dict().items()}


def test_best_of_n_picks_are_the_rewards_best_of_each_group(generator, reward):
    config = finetune_config()
    picks, prompt_of_pick, best, mean = best_of_n_picks(generator, reward, PROMPTS, config, False)
    assert picks.shape[0] == len(PROMPTS) * config.rounds
    assert prompt_of_pick == [0, 0, 1, 1]
    rescored = torch.tensor(reward.score_pairs([PROMPTS[p] for p in prompt_of_pick], to_pil(picks)))
    assert torch.allclose(rescored, best, atol=1e-5)
    assert (best >= mean).all()


def test_best_of_n_trains_only_the_lora_adapters_on_attention(generator, reward):
    config = finetune_config()
    picks, prompt_of_pick, _, _ = best_of_n_picks(generator, reward, PROMPTS, config, False)
    module = FinetuneModule(generator, config, PROMPTS, None, picks, prompt_of_pick)
    before = unet_state(generator)
    trainable = [n for n, p in generator.unet.named_parameters() if p.requires_grad]
    assert trainable and all("lora" in name for name in trainable)
    assert all(any(t in name for t in ("to_q", "to_k", "to_v", "to_out")) for name in trainable)
    fit(module, len(picks), config)
    after = generator.unet.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora" in name for name in changed)


def test_saved_adapters_load_back_through_diffusers(
    generator, reward, backbone_dir, small_unet, tmp_path
):
    config = finetune_config()
    picks, prompt_of_pick, _, _ = best_of_n_picks(generator, reward, PROMPTS, config, False)
    fit(FinetuneModule(generator, config, PROMPTS, None, picks, prompt_of_pick), len(picks), config)
    save_lora(generator, tmp_path / "lora")
    assert (tmp_path / "lora" / LORA_WEIGHTS_FILE).is_file()
    tuned = sample(generator, PROMPTS, [4, 5], steps=2, guidance=2.0)

    # Saved bytes do not depend on the process: peft's targets are one pattern, not a set.
    with safe_open(str(tmp_path / "lora" / LORA_WEIGHTS_FILE), "pt") as saved:
        metadata = json.loads(saved.metadata()["lora_adapter_metadata"])
    assert metadata["target_modules"] == target_pattern(config.lora_targets)

    fresh = load_lora(build_small(backbone_dir, small_unet), tmp_path / "lora")
    assert torch.allclose(sample(fresh, PROMPTS, [4, 5], steps=2, guidance=2.0), tuned, atol=1e-5)
    fresh.unet.disable_adapters()
    base = sample(fresh, PROMPTS, [4, 5], steps=2, guidance=2.0)
    assert not torch.allclose(base, tuned, atol=1e-4)


def test_saving_the_same_adapters_again_gives_the_same_bytes(generator, tmp_path):
    """safetensors writes the header's metadata in a random order on each save; the saved
    file must not depend on it (DVC hashes it, forced reruns compare it)."""
    add_lora(generator, finetune_config())
    saved = set()
    for attempt in range(SAVES):
        save_lora(generator, tmp_path / str(attempt))
        saved.add((tmp_path / str(attempt) / LORA_WEIGHTS_FILE).read_bytes())
    assert len(saved) == 1
    with safe_open(str(tmp_path / "0" / LORA_WEIGHTS_FILE), "pt") as reloaded:
        assert list(reloaded.metadata()) and reloaded.keys()


def test_draft_ascends_the_reward_through_the_last_step(generator, reward):
    config = finetune_config(method="draft", steps=3, draft_steps=1, base_penalty=1.0)
    module = FinetuneModule(generator, config, PROMPTS, reward)
    # The adapters start as the identity (LoRA's B is zero): no distance from the base yet.
    penalties: list[torch.Tensor] = []
    hook = module.penalty_hook(penalties)
    sample(generator, PROMPTS, [0, 1], steps=2, guidance=2.0, grad_steps=1, on_grad_step=hook)
    assert penalties and penalties[0].item() == pytest.approx(0.0, abs=1e-12)
    loss = module.draft_loss(torch.tensor([0, 1]))
    loss.backward()
    grads = [p.grad for p in module.lora_parameters if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for n, p in generator.unet.named_parameters() if "lora" not in n)
    assert all(p.grad is None for p in reward.backbone.parameters())
