"""Real servers for the tests (`evidently ui`, `prefect server start`, a Prefect worker):
started on a free local port in their own process group, waited for over HTTP, and always
stopped with the whole group; their output is quoted when they fail."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

HOST = "127.0.0.1"


def free_port(host: str = HOST) -> int:
    """A port nothing listens on now (the OS picks it; the server binds it just after)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def output_of(log: Path) -> str:
    text = log.read_text(encoding="utf-8", errors="replace") if log.is_file() else ""
    return text[-4000:] or "(no output)"


def stop(process: subprocess.Popen, grace_s: float = 15) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after grace_s."""
    if process.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)  # its own session: the group id is its pid
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def background(
    command: list[str], log: Path, cwd: Path | None = None, env: dict | None = None
) -> Iterator[subprocess.Popen]:
    """`command` running in its own process group while the block runs; output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as out:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group, stopped as a whole
        )
    try:
        yield process
    finally:
        stop(process)


def wait_for_http(
    process: subprocess.Popen, url: str, log: Path, timeout_s: float, command: list[str]
) -> None:
    """Until GET `url` answers 200; fails with the server's output if it exits or times out."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(url, timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise AssertionError(
                f"`{' '.join(command)}` exited with {process.returncode} before answering "
                f"HTTP; its output:\n{output_of(log)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(
                f"`{' '.join(command)}` did not answer GET {url} within {timeout_s:.0f} s; "
                f"its output:\n{output_of(log)}"
            )
        time.sleep(0.3)


def prefect_command() -> str:
    """This environment's `prefect` executable."""
    return str(Path(sys.executable).parent / "prefect")


def prefect_environment(home: Path, api: str | None = None, **settings: str) -> dict:
    """The environment of a Prefect process: its own home (database, profiles) and API."""
    environment = {**os.environ, "PREFECT_HOME": str(home), **settings}
    environment.pop("PREFECT_API_URL", None)
    if api is not None:
        environment["PREFECT_API_URL"] = api
    return environment


@contextmanager
def prefect_server(home: Path, logs: Path, timeout_s: float = 120) -> Iterator[str]:
    """`prefect server start` on a free port with its own database; yields its API URL."""
    port = free_port()
    command = [prefect_command(), "server", "start", "--host", HOST, "--port", str(port)]
    environment = prefect_environment(home, PREFECT_SERVER_UI_ENABLED="false")
    with background(command, logs / "prefect-server.log", env=environment) as server:
        api = f"http://{HOST}:{port}/api"
        wait_for_http(server, f"{api}/health", logs / "prefect-server.log", timeout_s, command)
        yield api
