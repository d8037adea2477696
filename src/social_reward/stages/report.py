"""Stage `report`: one page per run, `reports/index.html`, for its reviewers.

It links every report of the run, shows the gates and key figures, the image grids and the
DVC plots, the reward's model card (`reports/model_card.md`), the export's `data.dvc` hash,
the git commit and the parameters, and adds the run's Evidently snapshots to the local
Evidently workspace. It shows every stage, so it reads the whole of params.yaml.
"""

from __future__ import annotations

import json
from pathlib import Path

from social_reward.artifacts import StageResult
from social_reward.config.params import load_params
from social_reward.config.section import DEFAULT_PARAMS
from social_reward.ops.site import build_site


def main(params: Path = DEFAULT_PARAMS) -> StageResult:
    loaded = load_params(params)
    written = build_site(loaded)
    return StageResult(
        written=(loaded.report.site, loaded.report.model_card, loaded.report.workspace),
        summary=[json.dumps(written), f"open {written['site']} in a browser"],
    )
