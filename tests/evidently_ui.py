"""The real `evidently ui` for the tests: started on a free local port over a workspace,
waited for over HTTP, and always stopped with its whole process group."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import HOST, background, free_port, wait_for_http

EVIDENTLY = Path(sys.executable).parent / "evidently"  # this environment's CLI


@contextmanager
def evidently_ui(workspace: Path, log: Path, startup_timeout_s: float = 60) -> Iterator[str]:
    """`evidently ui --workspace <workspace>` on a free port; yields its base URL once
    GET /api/version answers 200. Its stdout and stderr go to `log`, quoted on failure."""
    assert EVIDENTLY.is_file(), f"{EVIDENTLY} missing: the environment has no evidently CLI"
    port = free_port()
    command = [str(EVIDENTLY), "ui", "--workspace", str(workspace), "--host", HOST]
    command += ["--port", str(port)]
    base = f"http://{HOST}:{port}"
    with background(command, log) as server:
        wait_for_http(server, f"{base}/api/version", log, startup_timeout_s, command)
        yield base
