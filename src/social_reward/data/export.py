"""The engagement export: the contract every stage reads (see the README, "The export").

One place for the table schemas, the manifest and the path rules, so that the simulator
that writes an export and the stages that read one agree by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.parquet as pq

from social_reward.errors import SocialRewardError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
IMAGES_FILE = "images.parquet"
REMIXES_FILE = "remixes.parquet"
USERS_FILE = "users.parquet"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_PROMPT_CHARS = 2000

UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

IMAGES_SCHEMA = pa.schema(
    [
        pa.field("image_id", pa.string(), nullable=False),
        pa.field("creator_id", pa.string(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("generator", pa.string(), nullable=False),
        pa.field("published_at", UTC_TIMESTAMP, nullable=False),
        pa.field("file", pa.string(), nullable=False),
        pa.field("width", pa.int64(), nullable=False),
        pa.field("height", pa.int64(), nullable=False),
        pa.field("impressions", pa.int64(), nullable=True),
    ]
)
REMIXES_SCHEMA = pa.schema(
    [
        pa.field("remix_id", pa.string(), nullable=False),
        pa.field("source_image_id", pa.string(), nullable=False),
        pa.field("remixer_id", pa.string(), nullable=False),
        pa.field("remixed_at", UTC_TIMESTAMP, nullable=False),
    ]
)
USERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("followers", pa.int64(), nullable=False),
        pa.field("is_influencer", pa.bool_(), nullable=False),
        pa.field("joined_at", UTC_TIMESTAMP, nullable=False),
    ]
)
# The tables by name, in the order rows depend on each other: users <- images <- remixes.
TABLE_FILES = {"users": USERS_FILE, "images": IMAGES_FILE, "remixes": REMIXES_FILE}
TABLE_SCHEMAS: dict[str, pa.Schema] = {
    IMAGES_FILE: IMAGES_SCHEMA,
    REMIXES_FILE: REMIXES_SCHEMA,
    USERS_FILE: USERS_SCHEMA,
}


class ExportError(SocialRewardError, ValueError):
    """An export that breaks the contract at file level: the pipeline stops here."""


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    exported_at: datetime
    source: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "schema_version": self.schema_version,
                "exported_at": format_utc(self.exported_at),
                "source": self.source,
            },
            indent=2,
        )


def format_utc(moment: datetime) -> str:
    """ISO-8601 with a `Z` suffix, the form the manifest uses."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_manifest(export_dir: Path) -> Manifest:
    """Read and check `manifest.json`; a broken manifest stops the pipeline with a clear message."""
    path = export_dir / MANIFEST_FILE
    if path.is_symlink():
        raise ExportError(
            f"{path}: a symbolic link (rule: an export's files are regular files inside it); "
            "copy the file into the export instead"
        )
    if not path.is_file():
        raise ExportError(f"{path}: file missing; an export must have a {MANIFEST_FILE}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ExportError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise ExportError(f"{path}: must be a JSON object, got {type(raw).__name__}")
    for key in ("schema_version", "exported_at", "source"):
        if key not in raw:
            raise ExportError(f"{path}: key '{key}' missing (rule: required key)")
    if raw["schema_version"] != SCHEMA_VERSION:
        raise ExportError(
            f"{path}: key 'schema_version' is {raw['schema_version']!r}; "
            f"rule: must be {SCHEMA_VERSION}"
        )
    exported_at = raw["exported_at"]
    try:
        moment = datetime.fromisoformat(str(exported_at).replace("Z", "+00:00"))
    except ValueError as error:
        raise ExportError(
            f"{path}: key 'exported_at' is {exported_at!r}; "
            "rule: ISO-8601 UTC timestamp, e.g. '2026-03-02T00:00:00Z'"
        ) from error
    if moment.tzinfo is None or moment.utcoffset() != UTC.utcoffset(None):
        raise ExportError(
            f"{path}: key 'exported_at' is {exported_at!r}; "
            "rule: must be in UTC, e.g. '2026-03-02T00:00:00Z'"
        )
    if not isinstance(raw["source"], str):
        raise ExportError(f"{path}: key 'source' must be a string, got {raw['source']!r}")
    return Manifest(SCHEMA_VERSION, moment.astimezone(UTC), raw["source"])


def write_table(table: pa.Table, path: Path) -> None:
    """Write one export table with fixed options, so that equal tables give equal bytes."""
    schema = TABLE_SCHEMAS[path.name]
    pq.write_table(table.cast(schema), path, compression="zstd", write_statistics=True)


def is_safe_relative_path(file: str) -> bool:
    """The contract's path rule: relative to `data/`, no absolute path, no `..`."""
    if not file or "\\" in file:
        return False
    path = PurePosixPath(file)
    return not path.is_absolute() and ".." not in path.parts
