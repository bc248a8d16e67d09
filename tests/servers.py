"""Real `hxchat serve` processes for end-to-end and browser tests.

Each server runs in its own process on a free loopback port with its own environment;
`wait_ready` polls /healthz; `stop` ends it (SIGTERM, then SIGKILL) and is always
called, also when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers import eventually_sync

FOREIGN_SETTINGS = ("HXCHAT_", "OPENAI_", "GOOGLE_", "GEMINI_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30) -> None:
        def ready() -> None:
            if self.process.poll() is not None:
                raise RuntimeError(f"hxchat serve exited early:\n{self.log()}")
            status = 0
            with contextlib.suppress(httpx.HTTPError):
                status = httpx.get(f"{self.url}/healthz", timeout=1).status_code
            assert status == 200, f"hxchat serve is not ready (/healthz: {status}):\n{self.log()}"

        eventually_sync(ready, within=timeout, interval=0.1)

    def wait_started(self, processes: int, timeout: float = 30) -> None:
        """Wait until `processes` worker processes have finished starting up: /healthz
        answers as soon as the first one has, and until the others have, it takes every
        connection."""

        def started() -> None:
            log = self.log()
            count = log.count("Application startup complete.")
            assert count >= processes, f"{count} of {processes} workers started:\n{log}"

        eventually_sync(started, within=timeout, interval=0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def hxchat_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment without the settings a developer may have exported
    (hxchat's and the model providers'), plus `env`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_SETTINGS)}
    environment.update(env)
    return environment


def run_hxchat(
    workdir: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the `hxchat` command to its end (as `python -m hxchat`, the same entry point)."""
    return subprocess.run(
        [sys.executable, "-m", "hxchat", *args],
        cwd=workdir,
        env=hxchat_environment(env),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def add_account(workdir: Path, env: dict[str, str], name: str, password: str, *extra: str) -> None:
    """A password account made as an operator makes one: `hxchat users add NAME
    --password-stdin` (`extra`: `--admin`, `--email E`)."""
    added = run_hxchat(
        workdir, env, "users", "add", name, "--password-stdin", *extra, stdin=password + "\n"
    )
    assert added.returncode == 0, added.stderr


def start_server(workdir: Path, env: dict[str, str], *args: str, port: int | None = None) -> Server:
    port = port or free_port()
    environment = hxchat_environment(env)
    log_path = workdir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "hxchat", "serve", "--port", str(port), *args],
            cwd=workdir,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, log_path)


@contextlib.contextmanager
def serving(workdir: Path, env: dict[str, str], *args: str) -> Iterator[Server]:
    server = start_server(workdir, env, *args)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
