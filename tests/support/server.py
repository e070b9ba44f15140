"""Run the service under test as a real subprocess, the way an operator would."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import httpx

from tests.support.services import free_port

__all__ = ["RunningServer", "ServerStartError"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


# Variables the configuration loader reads: a test that runs the CLI decides them, not the caller's shell.
CONFIG_VARIABLES = (
    "DATABASE_URL",
    "PG_USER",
    "PG_PASSWORD",
    "S3_ACCESS_KEY",
    "S3_SECRET_KEY",
    "S3_ENDPOINT_URL",
    "URL_SIGNING_SECRET_KEY",
    "REDIS_URL",
    "DATABASE_POOL_SIZE",
    "IN_MEMORY",
)


class ServerStartError(RuntimeError):
    pass


def _tail(path: Path, limit: int = 8000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - limit))
            return handle.read().decode(errors="replace")
    except OSError:
        return ""


class RunningServer:
    """`python -m konifer_edge serve ...` on 127.0.0.1, ready once `GET /health` answers 200.

    stdout and stderr go to `server.stdout.log` and `server.stderr.log` in `data_dir`, never to a
    pipe: nothing reads a pipe while the server runs, and a full pipe would stall its logging.
    """

    def __init__(
        self,
        data_dir: Path,
        config_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        port: int | None = None,
        startup_timeout: float = 60.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = data_dir
        self.config_path = config_path
        self.port = port if port is not None else free_port()
        self.host = "127.0.0.1"
        self.startup_timeout = startup_timeout
        self.stdout_path = data_dir / "server.stdout.log"
        self.stderr_path = data_dir / "server.stderr.log"
        self._env = dict(env or {})
        self._extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    @property
    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "konifer_edge", "serve",
            "--host", self.host,
            "--port", str(self.port),
            "--data-dir", str(self.data_dir),
            "--config", str(self.config_path),
            # One worker unless a test asks for more: many servers share one test PostgreSQL.
            *(() if "--workers" in self._extra_args else ("--workers", "1")),
            *self._extra_args,
        ]  # fmt: skip

    def start(self) -> RunningServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("server is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self._env}
        # The package is run from the checkout, installed or not.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_REPO_ROOT), env.get("PYTHONPATH")) if p)
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.process = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=_REPO_ROOT,
                # Its own process group, so stop() can also reap any workers it forked.
                start_new_session=True,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_problem = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code is not None:
                    raise ServerStartError(self._failure(f"exited with code {code} before becoming healthy"))
                try:
                    response = client.get(self.url("/health"))
                except httpx.HTTPError as exc:
                    last_problem = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        return
                    last_problem = f"/health answered {response.status_code}: {response.text[:200]}"
                time.sleep(0.1)
        raise ServerStartError(self._failure(f"not healthy within {self.startup_timeout:.0f}s (last: {last_problem})"))

    def _failure(self, what: str) -> str:
        return (
            f"konifer-edge server on port {self.port} {what}\n"
            f"command: {' '.join(self.command)}\n"
            f"--- stderr tail ({self.stderr_path}) ---\n{_tail(self.stderr_path)}\n"
            f"--- stdout tail ({self.stdout_path}) ---\n{_tail(self.stdout_path, 2000)}"
        )

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL to the whole group after `timeout`; returns the exit code."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(process)
                process.wait(timeout=10)
        # Workers that outlived their parent would keep the port and the data directory busy.
        self._kill_group(process)
        return process.returncode

    def kill(self) -> None:
        """Crash the server (SIGKILL), as a failure test would."""
        if self.process is not None:
            self._kill_group(self.process)
            self.process.wait(timeout=10)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def logs(self) -> str:
        return _tail(self.stderr_path, 64_000)

    def __enter__(self) -> RunningServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
