"""Stage `pairs`: preference pairs (prompt, positive image, negative image) in DuckDB.

Writes `artifacts/pairs/{train,val,test}.parquet`, every image's split (`images.parquet`),
the other mode's pairs on the same prompt splits for the ablation (`ablation/`, `modes.json`
says which is which) and `metrics/pairs.json`: counts, confounder balance and, on a
simulated export with a truth file, how often each mode's positive really is the more
appealing image. The rules are set-based SQL (`data/pairing.py`, `data/sql/`).
"""

from __future__ import annotations

import json
from pathlib import Path

from social_reward.artifacts import StageResult, write_metrics
from social_reward.config.pairs import PairsConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.data.duck import open_export
from social_reward.data.gates import require_passed
from social_reward.data.pairing import pairs_metrics, register_truth, write_pairs
from social_reward.data.truth import read_truth


def run(config: PairsConfig) -> dict:
    connection, manifest = open_export(
        config.validated_dir, config.threads, config.memory_limit, config.spill_dir
    )
    truth = read_truth(config.truth, manifest)
    if truth is not None:
        register_truth(connection, truth)
    comparison = write_pairs(connection, config, with_truth=truth is not None)
    return write_metrics(config.metrics, pairs_metrics(config.mode, comparison))


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, PairsConfig)
    require_passed(config.gate_verdicts, config.validated_dir)
    metrics = run(config)
    summary = [f"{config.mode} pairs: {json.dumps(metrics['pairs'])}"]
    if "truth_agreement" in metrics:
        summary.append(f"truth agreement: {json.dumps(metrics['truth_agreement'])}")
    return StageResult(written=(config.out_dir, config.metrics), summary=summary)
