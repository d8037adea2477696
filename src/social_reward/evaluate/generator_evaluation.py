"""Does reward fine-tuning make images other judges prefer too? (stage `evaluate_generator`)

For each held-out prompt (the pairs' test split) and fixed seeds, the base and the
fine-tuned generator draw an image from the same noise; every judge compares the two:
- `social_reward`: the reward that was optimised (a win here is expected, not proof);
- `clip_score`: the backbone's cosine, i.e. prompt alignment (should not drop);
- external scorers (PickScore, HPS v2, aesthetic, ImageReward) where local weights are given;
- `truth_judge` on simulated exports: a model trained on the true appeal that never saw a
  remix count (`evaluate/truth_judge.py`), the stand-in for the paper's user study.
On simulated exports, also what the images show: per attribute (colour, subject,
background, style), how often the base's, the fine-tuned's and the export's real images of
the held-out prompts show the prompt's word, read by the attribute judge
(`evaluate/attribute_rates.py`); a tune that wins by forgetting the subject shows here.
Also: prompt consistency of both generators (the backbone ranks an image made for a prompt
above one made for another), diversity (so that collapse and reward hacking show), and
best-of-N at inference without fine-tuning (the reward's pick of N base samples against a
random one, judged by the truth judge).

Outputs: `metrics/generator.json`, `plots/generator/win_rates.csv` (a DVC plot),
`reports/generator/comparison.png` (base beside fine-tuned, same prompts and seeds) and
`reports/generator/attributes.png` (the attribute rates of real, base and fine-tuned images).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from social_reward.artifacts import METRIC_DIGITS, TEST_SPLIT
from social_reward.config.evaluate_generator import EvaluateGeneratorConfig
from social_reward.data.export import read_manifest
from social_reward.data.truth import read_truth
from social_reward.evaluate.attribute_rates import AttributeRates
from social_reward.evaluate.external import build_external_scorers
from social_reward.evaluate.scorers import ImageScorer, RewardScorer
from social_reward.evaluate.truth_judge import TRUTH_JUDGE, JudgeScorer, fit_truth_judge
from social_reward.generator import metrics as M
from social_reward.generator.data import split_prompts, to_pil
from social_reward.generator.finetune_trainer import load_lora, read_finetune_record
from social_reward.generator.grid import save_grid
from social_reward.generator.pipeline import load_generator
from social_reward.generator.sampling import sample_batched
from social_reward.reward.backbone import load_saved_backbone
from social_reward.reward.model import SocialReward

REWARD = "social_reward"
CLIP_SCORE = "clip_score"
EVALUATION_SEED_OFFSET = 10**6  # evaluation seeds never coincide with fine-tuning's
WIN_RATES_FILE = "win_rates.csv"  # a DVC plot
COMPARISON_GRID = "comparison.png"
ATTRIBUTES_CHART = "attributes.png"


def draw(generator, prompts, seeds, config: EvaluateGeneratorConfig, label: str, adapters: bool):
    """Samples with the fine-tuned adapters on or off, from the same noise."""
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


@dataclass(frozen=True)
class GeneratorComparison:
    """The metrics, and the images both generators drew (same prompts, same seeds)."""

    metrics: dict
    prompts: list[str]  # held-out prompts, each drawn `seeds_per_prompt` times
    base: torch.Tensor  # [images, 3, H, W] in [0, 1]
    tuned: torch.Tensor


def compare_generators(
    config: EvaluateGeneratorConfig, progress: bool = True
) -> GeneratorComparison:
    """Base and fine-tuned generator on the held-out prompts, under every judge."""
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
        attributes = AttributeRates(config, truth, progress)
        metrics["attribute_judge"] = attributes.judge_metrics()
        metrics["attributes"] = {
            "real": attributes.real,
            "base": attributes.rates(texts, base),
            "tuned": attributes.rates(texts, tuned),
        }

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

    return GeneratorComparison(metrics, prompts, base, tuned)


def write_outputs(config: EvaluateGeneratorConfig, comparison: GeneratorComparison) -> None:
    """The win rates as a DVC plot, and base beside fine-tuned images of a few prompts."""
    metrics, prompts = comparison.metrics, comparison.prompts
    base, tuned, per_prompt = comparison.base, comparison.tuned, config.seeds_per_prompt
    config.plots_dir.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        [
            {"judge": name, "win_rate": row["win_rate"], "low": row["low"], "high": row["high"]}
            for name, row in metrics["win_rate"].items()
        ]
    ).round(METRIC_DIGITS).to_csv(config.plots_dir / WIN_RATES_FILE, index=False)
    shown = prompts[: config.grid_prompts]
    seeds = min(config.grid_seeds, per_prompt)
    rows, labels = [], []
    for n, prompt in enumerate(shown):
        start = n * per_prompt
        rows.append(torch.cat([base[start : start + seeds], tuned[start : start + seeds]]))
        labels.append(prompt)
    if "attributes" in metrics:
        attribute_chart(metrics["attributes"], config.report_dir / ATTRIBUTES_CHART)
    columns = [f"base {s}" for s in range(seeds)] + [f"tuned {s}" for s in range(seeds)]
    save_grid(
        rows,
        labels,
        config.report_dir / COMPARISON_GRID,
        f"Held-out prompts: base (left) and fine-tuned ({metrics['method']}, right), same seeds",
        columns,
    )


def attribute_chart(rates: dict[str, dict[str, float]], path) -> None:
    """Grouped bars: per attribute, the share of real, base and fine-tuned images that show
    the prompt's word."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = list(rates)
    attributes = list(rates[sources[0]])
    width = 0.8 / len(sources)
    figure, axis = plt.subplots(figsize=(6.4, 3.2))
    for n, source in enumerate(sources):
        positions = np.arange(len(attributes)) + (n - (len(sources) - 1) / 2) * width
        axis.bar(positions, [rates[source][a] for a in attributes], width, label=source)
    axis.set_xticks(np.arange(len(attributes)), attributes)
    axis.set_ylim(0, 1)
    axis.set_ylabel("images showing the prompt's word")
    axis.set_title("Held-out prompts: what real, base and fine-tuned images show", fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
