"""DuckDB for the stages: one way to connect, register an export's tables and run SQL files."""

from __future__ import annotations

from datetime import datetime
from importlib.resources import files
from pathlib import Path

import duckdb

from social_reward.data.export import IMAGES_FILE, REMIXES_FILE, USERS_FILE, Manifest, read_manifest

SQL_PACKAGE = "social_reward.data.sql"


def read_sql(name: str) -> str:
    """The text of `src/social_reward/data/sql/<name>`."""
    return files(SQL_PACKAGE).joinpath(name).read_text(encoding="utf-8")


def connect(
    threads: int | None = None, memory_limit: str | None = None, spill_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with the shared macros loaded; beyond `memory_limit` DuckDB
    spills to `spill_dir`."""
    config: dict[str, str | int] = {}
    if threads:
        config["threads"] = threads
    if memory_limit:
        config["memory_limit"] = memory_limit
    if spill_dir:
        config["temp_directory"] = str(spill_dir)
    connection = duckdb.connect(config=config)
    connection.execute(read_sql("macros.sql"))
    return connection


def register_export(connection: duckdb.DuckDBPyConnection, export_dir: Path) -> None:
    """Expose an export's three tables as the views `images`, `remixes` and `users`."""
    for view, file in (("images", IMAGES_FILE), ("remixes", REMIXES_FILE), ("users", USERS_FILE)):
        register_parquet(connection, view, export_dir / file)


def create_image_features(connection: duckdb.DuckDBPyConnection, exported_at: datetime) -> None:
    """Create the table `image_features` (sql/image_features.sql) from the registered export."""
    query = read_sql("image_features.sql").strip().rstrip(";")
    connection.execute(
        f"CREATE OR REPLACE TABLE image_features AS {query}", {"exported_at": exported_at}
    )


def open_export(
    export_dir: Path,
    threads: int | None = None,
    memory_limit: str | None = None,
    spill_dir: Path | None = None,
) -> tuple[duckdb.DuckDBPyConnection, Manifest]:
    """A connection with an export's tables and its `image_features`, and its manifest."""
    manifest = read_manifest(export_dir)
    connection = connect(threads, memory_limit, spill_dir)
    register_export(connection, export_dir)
    create_image_features(connection, manifest.exported_at)
    return connection, manifest


def register_parquet(connection: duckdb.DuckDBPyConnection, name: str, path: Path) -> None:
    """Expose a parquet file as a view called `name`."""
    connection.read_parquet(str(path)).create_view(name, replace=True)
