"""Stage `evaluate_generator`: does reward fine-tuning make images other judges prefer too?

For each held-out prompt (the pairs' test split) and fixed seeds, the base and the
fine-tuned generator draw an image from the same noise; every judge compares the two: the
reward that was optimised (a win here is expected, not proof), the backbone's CLIP score
(prompt alignment should not drop), external scorers where local weights are given, and on
simulated exports the truth judge. Also prompt consistency, diversity, and best-of-N at
inference (`evaluate/generator_evaluation.py`).

Outputs: `metrics/generator.json`, `plots/generator/win_rates.csv` (a DVC plot) and
`reports/generator/comparison.png` (base beside fine-tuned, same prompts and seeds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from social_reward.artifacts import StageResult, write_metrics
from social_reward.config.evaluate_generator import EvaluateGeneratorConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.data.gates import require_passed
from social_reward.evaluate.generator_evaluation import compare_generators, write_outputs


def run(config: EvaluateGeneratorConfig, progress: bool = True) -> dict:
    started = time.perf_counter()
    comparison = compare_generators(config, progress)
    write_outputs(config, comparison)
    print(f"generator evaluated in {time.perf_counter() - started:.0f} s")
    return write_metrics(config.metrics, comparison.metrics)


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, EvaluateGeneratorConfig)
    require_passed(config.gate_verdicts, config.validated_dir)
    metrics = run(config)
    return StageResult(
        written=(config.metrics, config.plots_dir, config.report_dir),
        summary=[json.dumps(metrics)],
    )
