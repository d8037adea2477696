"""The ground truth of a simulated export: true appeal per image, kept outside `data/`.

Only reporting and evaluation read it. A truth file records the manifest of the export it
was written with, so that a truth file left beside another export is refused rather than
silently joined to the wrong images.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from social_reward.data.export import Manifest, format_utc
from social_reward.errors import SocialRewardError

TRUTH_MANIFEST_KEY = b"social_reward.export_manifest"
TRUTH_COLUMNS = ("image_id", "appeal")


class TruthMismatchError(SocialRewardError, ValueError):
    """A truth file that belongs to another export."""


def read_truth(path: Path, manifest: Manifest) -> pd.DataFrame | None:
    """Image ids and true appeal (plus hidden attributes), or None when there is no truth file."""
    if not path.is_file():
        return None
    metadata = pq.read_schema(path).metadata or {}
    raw = metadata.get(TRUTH_MANIFEST_KEY)
    if raw is not None:
        recorded = json.loads(raw)
        expected = {"exported_at": format_utc(manifest.exported_at), "source": manifest.source}
        found = {key: recorded.get(key) for key in expected}
        if found != expected:
            raise TruthMismatchError(
                f"{path}: written for another export (source {found['source']!r}, exported_at "
                f"{found['exported_at']}), not for this one (source {expected['source']!r}, "
                f"exported_at {expected['exported_at']}); delete it or regenerate both with "
                "`social-reward simulate`"
            )
    table = pd.read_parquet(path)
    missing = [column for column in TRUTH_COLUMNS if column not in table.columns]
    if missing:
        raise TruthMismatchError(
            f"{path}: column(s) {missing} missing; rule: truth has {TRUTH_COLUMNS}"
        )
    return table
