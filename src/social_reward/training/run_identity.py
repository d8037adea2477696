"""What identifies a training run's inputs: hashes of files, and a fingerprint over them and
the run's configuration (so a changed run never resumes a stale checkpoint)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

FINGERPRINT_CHARS = 16
HASH_CHUNK = 1 << 20


def file_digest(paths: list[Path]) -> str:
    """sha256 over the files' bytes, in order: the identity of a run's inputs."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as file:
            while chunk := file.read(HASH_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def run_fingerprint(*parts: object) -> str:
    """A short hash of JSON-serialisable parts (a config's dump, file digests)."""
    text = json.dumps(list(parts))
    return hashlib.sha256(text.encode()).hexdigest()[:FINGERPRINT_CHARS]


def folder_digest(folder: Path) -> str:
    """sha256 over every file below `folder` (a saved model): its path there and its bytes,
    in path order, so that a renamed or moved file changes it too."""
    digest = hashlib.sha256()
    for path in sorted(path for path in folder.rglob("*") if path.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(file_digest([path]).encode())
    return digest.hexdigest()
