"""Stage `profile`: what the export holds and how strongly raw remix counts follow confounders.

Writes `metrics/profile.json` (read by `dvc metrics show`) and a plot for people: the remix
distribution and raw remixes against followers, exposure and (with a truth file) appeal.
"""

from __future__ import annotations

import json
from pathlib import Path

from social_reward.artifacts import StageResult, write_metrics
from social_reward.config.profile import ProfileConfig
from social_reward.config.section import DEFAULT_PARAMS, load_section
from social_reward.data.duck import open_export
from social_reward.data.gates import require_passed
from social_reward.data.profiling import image_features, plot_profile, summarise
from social_reward.data.truth import read_truth


def run(config: ProfileConfig) -> dict:
    connection, manifest = open_export(config.validated_dir)
    features, remix_count, user_count = image_features(connection)
    truth = read_truth(config.truth, manifest)
    metrics = write_metrics(config.metrics, summarise(features, remix_count, user_count, truth))
    plot_profile(features, truth, config, config.plot)
    return metrics


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    config = load_section(params, ProfileConfig)
    require_passed(config.gate_verdicts, config.validated_dir)
    metrics = run(config)
    return StageResult(
        written=(config.metrics, config.plot),
        summary=[
            json.dumps({"counts": metrics["counts"], "follow": metrics["raw_remixes_follow"]})
        ],
    )
