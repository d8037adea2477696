"""Stage `evaluate`: every scorer side by side on the test split.

- Remix-labelled test pairs: pairwise accuracy (ties half, and the reference code's "ties
  count as correct"), a bootstrap interval, and accuracy by segment (creator reach, prompt
  popularity, generator).
- With a truth file (a simulated export): accuracy on every same-prompt test image pair whose
  true appeal differs, Spearman correlation with appeal within prompts, best-of-N picks.
- The confounder audit (rendered image pairs that differ only by a trace) and the ablation
  (the same training on naive pairs), side by side with the debiased reward.
- Outputs: `metrics/evaluate.json`, `plots/evaluate/` (accuracy table and chart), and
  `reports/evaluate/` (an Evidently report of score distributions, the best-of-N grid).
"""

from __future__ import annotations

import json
from pathlib import Path

from social_reward.artifacts import StageResult, write_metrics
from social_reward.config.evaluate import EvaluateConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.data.gates import require_passed
from social_reward.evaluate.report import write_reports
from social_reward.evaluate.reward_evaluation import evaluate_rewards


def run(config: EvaluateConfig) -> dict:
    evaluation = evaluate_rewards(config)
    write_reports(
        config,
        evaluation.metrics,
        train_scores=evaluation.train_scores,
        test_scores=evaluation.test_scores,
        test_images=evaluation.test_images,
        truth=evaluation.truth,
    )
    return write_metrics(config.metrics, evaluation.metrics)


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, EvaluateConfig)
    require_passed(config.gate_verdicts, config.validated_dir)
    metrics = run(config)
    summary = [
        f"{section} accuracy: "
        + json.dumps(
            {name: values["accuracy"] for name, values in metrics[section]["scorers"].items()}
        )
        for section in ("remix_pairs", "truth")
        if section in metrics
    ]
    if "ablation" in metrics:
        summary.append(f"ablation: {json.dumps(metrics['ablation'])}")
    return StageResult(
        written=(config.metrics, config.report_dir, config.plots_dir), summary=summary
    )
