"""Evidently snapshots saved as HTML and JSON.

`<name>.html` and `<name>.json` (the results) are the same bytes for the same data;
`<name>.snapshot.json` is the full snapshot, which the `report` stage adds to the Evidently
workspace (it carries the run's timestamp).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

RANDOM_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


SNAPSHOT_SUFFIX = ".snapshot.json"


def snapshot_path(html_path: Path) -> Path:
    """Where the full snapshot of the report at `html_path` is saved."""
    return html_path.with_suffix(SNAPSHOT_SUFFIX)


def save_snapshot(snapshot, html_path: Path) -> None:
    """HTML, JSON results and the full snapshot; the HTML's random element ids made
    deterministic, so that the same data gives the same file."""
    html_path.parent.mkdir(parents=True, exist_ok=True)
    snapshot.save_html(str(html_path))
    text = html_path.read_text(encoding="utf-8")
    stable: dict[str, str] = {}

    def replace(match: re.Match) -> str:
        token = match.group(0)
        if token not in stable:
            number = f"{len(stable) + 1:032x}"
            stable[token] = (
                "-".join((number[:8], number[8:12], number[12:16], number[16:20], number[20:]))
                if "-" in token
                else number
            )
        return stable[token]

    html_path.write_text(RANDOM_ID.sub(replace, text), encoding="utf-8")
    html_path.with_suffix(".json").write_text(
        json.dumps(snapshot.dict(), indent=2, sort_keys=True, default=str) + "\n",
        encoding="utf-8",
    )
    # The workspace's own storage format (Snapshot.save_json writes only the results).
    from evidently.legacy.utils import NumpyEncoder

    snapshot_path(html_path).write_text(
        json.dumps(snapshot.to_snapshot_model().dict(), cls=NumpyEncoder), encoding="utf-8"
    )
