"""Evidently snapshots saved as HTML and JSON that are the same bytes for the same data."""

from __future__ import annotations

import json
import re
from pathlib import Path

RANDOM_ID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


def save_snapshot(snapshot, html_path: Path) -> None:
    """HTML and JSON of a snapshot; the HTML's random element ids made deterministic, so
    that the same data gives the same file."""
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
