"""Stage `evaluate_generator`: does reward fine-tuning make images other judges prefer too?

For each held-out prompt (the pairs' test split) and fixed seeds, the base and the
fine-tuned generator draw an image from the same noise; every judge compares the two:
- `social_reward`: the reward that was optimised (a win here is expected, not proof);
- `clip_score`: the backbone's cosine, i.e. prompt alignment (should not drop);
- external scorers (PickScore, HPS v2, aesthetic, ImageReward) where local weights are given;
- `truth_judge` on simulated exports: a model trained on the true appeal that never saw a
  remix count (`generator/judge.py`), the stand-in for the paper's user study.
Also: prompt consistency of both generators (the backbone ranks an image made for a prompt
above one made for another), diversity (so that collapse and reward hacking show), and
best-of-N at inference without fine-tuning (the reward's pick of N base samples against a
random one, judged by the truth judge).

Outputs: `metrics/generator.json`, `plots/generator/win_rates.csv` (a DVC plot) and
`reports/generator/comparison.png` (base beside fine-tuned, same prompts and seeds).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from social_reward.config import EvaluateGeneratorConfig
from social_reward.evaluate.scorers import ImageScorer, RewardScorer
from social_reward.export import read_manifest
from social_reward.generator.data import TEST_SPLIT, split_prompts
from social_reward.generator.finetune_trainer import read_finetune_record
from social_reward.truth import read_truth

REWARD = "social_reward"
CLIP_SCORE = "clip_score"
TRUTH_JUDGE = "truth_judge"
EVALUATION_SEED_OFFSET = 10**6  # evaluation seeds never coincide with fine-tuning's
DIGITS = 4


def _rounded(value):
    if isinstance(value, float):
        return round(value, DIGITS)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def draw(generator, prompts, seeds, config: EvaluateGeneratorConfig, label: str, adapters: bool):
    """Samples with the fine-tuned adapters on or off, from the same noise."""
    from social_reward.generator.sampling import sample_batched

    if adapters:
        generator.unet.enable_adapters()
    else:
        generator.unet.disable_adapters()
    with tqdm(total=len(prompts), desc=f"sample {label}", unit="img") as bar:
        return sample_batched(
            generator,
            prompts,
            seeds,
            config.sampling_steps,
            config.guidance,
            config.batch_size,
            bar,
        )


class JudgeScorer(ImageScorer):
    """The truth judge's predicted appeal, behind the common scorer interface."""

    name = TRUTH_JUDGE

    def __init__(self, judge) -> None:
        self.judge = judge

    def score_images(self, prompts, images) -> np.ndarray:
        from torchvision.transforms.functional import pil_to_tensor

        from social_reward.evaluate.scorers import open_rgb

        pixels = torch.stack([pil_to_tensor(open_rgb(image)) for image in images]).float() / 255
        return self.judge.judge(list(prompts), pixels).numpy().astype(np.float64)


def fit_truth_judge(config: EvaluateGeneratorConfig, truth: pd.DataFrame, progress: bool):
    """Train the judge on the non-test images; report its accuracy on the test images."""
    from social_reward.generator.data import decode_pixels
    from social_reward.generator.judge import JudgeSettings, train_judge
    from social_reward.pretrain import read_image_splits

    images = read_image_splits(config.pairs_dir).merge(
        truth[["image_id", "appeal"]], on="image_id", how="inner"
    )
    settings = JudgeSettings(seed=config.seed, **config.judge.model_dump())
    pixels = decode_pixels(list(images["path"]), config.judge.image_size, progress=progress)
    train = torch.from_numpy((images["split"] != TEST_SPLIT).to_numpy())
    judge = train_judge(
        list(images.loc[train.numpy(), "prompt"]),
        pixels[train],
        torch.tensor(images.loc[train.numpy(), "appeal"].to_numpy(), dtype=torch.float32),
        settings,
        progress,
    )
    test = images[~train.numpy()].reset_index(drop=True)
    test = test.assign(judged=judge.judge(list(test["prompt"]), pixels[~train] / 255).numpy())
    pairs = test.merge(test, on="prompt_key", suffixes=("_a", "_b"))
    pairs = pairs[
        (pairs["image_id_a"] < pairs["image_id_b"]) & (pairs["appeal_a"] != pairs["appeal_b"])
    ]
    agree = np.sign(pairs["judged_a"] - pairs["judged_b"]) == np.sign(
        pairs["appeal_a"] - pairs["appeal_b"]
    )
    return judge, {"test_pair_accuracy": float(agree.mean()), "test_pairs": len(pairs)}


def run_evaluate_generator(config: EvaluateGeneratorConfig, progress: bool = True) -> dict:
    from social_reward.evaluate.external import build_external_scorers
    from social_reward.generator import metrics as M
    from social_reward.generator.data import to_pil
    from social_reward.generator.finetune_trainer import load_lora
    from social_reward.generator.pipeline import load_generator
    from social_reward.reward.backbone import load_saved_backbone
    from social_reward.reward.model import SocialReward

    started = time.perf_counter()
    torch.manual_seed(config.seed)
    prompts = split_prompts(config.pairs_dir, TEST_SPLIT)
    record = read_finetune_record(config.tuned_dir)
    generator = load_lora(load_generator(config.base_dir), config.tuned_dir).to(config.device)
    generator.unet.eval()
    per_prompt = config.seeds_per_prompt
    texts = [prompt for prompt in prompts for _ in range(per_prompt)]
    prompt_of_image = np.repeat(np.arange(len(prompts)), per_prompt)
    seeds = [EVALUATION_SEED_OFFSET + config.seed * per_prompt + n for n in range(per_prompt)]
    seeds = seeds * len(prompts)
    base = draw(generator, texts, seeds, config, "base", adapters=False)
    tuned = draw(generator, texts, seeds, config, "fine-tuned", adapters=True)

    backbone, name = load_saved_backbone(config.backbone_dir)
    clip = SocialReward(backbone, name, batch_size=config.batch_size).to(config.device)
    reward = SocialReward.from_pretrained(config.reward_dir, config.batch_size).to(config.device)
    judges: list[ImageScorer] = [RewardScorer(REWARD, reward), RewardScorer(CLIP_SCORE, clip)]
    judges += build_external_scorers(config.external.model_dump(), batch_size=config.batch_size)
    metrics: dict = {
        "method": record["method"],
        "held_out_prompts": len(prompts),
        "seeds_per_prompt": per_prompt,
    }
    truth = read_truth(config.truth, read_manifest(config.validated_dir))
    judge = None
    if truth is not None:
        judge, metrics["truth_judge"] = fit_truth_judge(config, truth, progress)
        judges.append(JudgeScorer(judge))

    base_pil, tuned_pil = to_pil(base), to_pil(tuned)
    scores = {
        scorer.name: (
            scorer.score_images(texts, base_pil),
            scorer.score_images(texts, tuned_pil),
        )
        for scorer in judges
    }
    metrics["win_rate"] = {
        judge_name: M.win_rate(
            tuned_scores,
            base_scores,
            prompt_of_image,
            config.bootstrap_resamples,
            config.seed,
            config.level,
        )
        for judge_name, (base_scores, tuned_scores) in scores.items()
    }

    # Prompt consistency: every held-out prompt against every image of both generators.
    prompt_embeddings = clip.embed_prompts(prompts)
    embeddings = {"base": clip.embed_images(base_pil), "fine_tuned": clip.embed_images(tuned_pil)}
    metrics["prompt_consistency"] = {
        label: M.prompt_consistency((prompt_embeddings @ emb.T).numpy(), prompt_of_image)
        for label, emb in embeddings.items()
    }
    diversity = {
        "base": M.diversity(base, embeddings["base"], prompt_of_image),
        "fine_tuned": M.diversity(tuned, embeddings["fine_tuned"], prompt_of_image),
    }
    diversity["ratio"] = {
        space: diversity["fine_tuned"][space] / diversity["base"][space]
        for space in ("pixel", "embedding")
    }
    metrics["diversity"] = diversity

    groups = per_prompt // config.best_of_n
    if judge is not None and groups:
        used = np.concatenate(
            [
                np.arange(p * per_prompt, p * per_prompt + groups * config.best_of_n)
                for p in range(len(prompts))
            ]
        )
        group_of_image = used // config.best_of_n
        reward_base, judge_base = scores[REWARD][0], scores[TRUTH_JUDGE][0]
        metrics["best_of_n"] = {
            "n": config.best_of_n,
            "groups": len(np.unique(group_of_image)),
            "truth_judge_win_rate": M.best_of_n_wins(
                reward_base[used], judge_base[used], group_of_image
            ),
        }

    write_outputs(config, metrics, prompts, base, tuned, per_prompt)
    print(f"generator evaluated in {time.perf_counter() - started:.0f} s")
    metrics = _rounded(metrics)
    config.metrics.parent.mkdir(parents=True, exist_ok=True)
    config.metrics.write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    return metrics


def write_outputs(config, metrics, prompts, base, tuned, per_prompt) -> None:
    from social_reward.generator.grid import save_grid

    config.plots_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [
            {"judge": name, "win_rate": row["win_rate"], "low": row["low"], "high": row["high"]}
            for name, row in metrics["win_rate"].items()
        ]
    ).round(DIGITS).to_csv(config.plots_dir / "win_rates.csv", index=False)
    shown = prompts[: config.grid_prompts]
    seeds = min(config.grid_seeds, per_prompt)
    rows, labels = [], []
    for n, prompt in enumerate(shown):
        start = n * per_prompt
        rows.append(torch.cat([base[start : start + seeds], tuned[start : start + seeds]]))
        labels.append(prompt)
    columns = [f"base {s}" for s in range(seeds)] + [f"tuned {s}" for s in range(seeds)]
    save_grid(
        rows,
        labels,
        config.report_dir / "comparison.png",
        f"Held-out prompts: base (left) and fine-tuned ({metrics['method']}, right), same seeds",
        columns,
    )
