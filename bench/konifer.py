"""konifer-edge as the suite runs it: started on its embedded PostgreSQL, watched, and restarted after an incident."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from processes import http_request, multipart, start_service, wait_http
from settings import HOST, KONIFER, KONIFER_WORKERS, PROFILE, TOOLS, free_port, log


class Konifer:
    def __init__(
        self,
        tmp: Path,
        *,
        name: str = "konifer-edge",
        config: Path | None = None,
        data: Path | None = None,
        database_url: str | None = None,
    ) -> None:
        self.tmp = tmp
        self.name = name
        self.config = config
        self.database_url = database_url
        self.port = free_port()
        self.data = data or tmp / "konifer-data"
        self.starts = 0
        self.incidents: list[dict[str, Any]] = []
        self._start()

    def _start(self) -> None:
        self.starts += 1
        config = ["--config", str(self.config)] if self.config else []
        address = ["--host", HOST, "--port", str(self.port)]
        self.service = start_service(
            self.name,
            [str(KONIFER), "serve", *address, "--data-dir", str(self.data), "--workers", str(KONIFER_WORKERS), *config],
            self.tmp / f"{self.name}-{self.starts}.log",
            env={"XDG_RUNTIME_DIR": str(self.tmp / "xdg")}
            | ({"DATABASE_URL": self.database_url} if self.database_url else {}),
        )
        wait_http(self.port, "/ready", 120, self.service)

    def ready(self, within: float) -> bool:
        """Whether /ready (which takes a database connection from the pool) answers 200 within `within` s."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                status, _, _ = http_request(self.port, "GET", "/ready", timeout=max(1.0, deadline - time.monotonic()))
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.5)
        return False

    def ensure_ready(self, after: str, within: float = 45) -> None:
        """After a scenario: if the server no longer answers, record it and start it again on the same data."""
        if self.ready(within):
            return
        log(f"konifer-edge stopped answering /ready after {after}; restarting it (recorded in the results)")
        incident: dict[str, Any] = {
            "after": after,
            "at": dt.datetime.now().isoformat(timespec="seconds"),
            "what": f"/ready did not answer within {within:.0f} s",
        }
        if PROFILE and (TOOLS / "bin" / "py-spy").exists():
            dump = subprocess.run(
                [str(TOOLS / "bin" / "py-spy"), "dump", "--pid", str(self.service.pid), "--subprocesses"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            incident["py_spy_dump"] = (dump.stdout + dump.stderr)[-6000:]
        try:
            incident["database"] = asyncio.run(asyncio.wait_for(_database_state(self.dsn), 20))
        except Exception as error:
            incident["database"] = {"error": repr(error)}
        self.incidents.append(incident)
        self.stop()
        self._start()

    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postgres" / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:@/postgres?host={self.data / 'postgres'}"

    def store(self, path: str, content: bytes, filename: str = "photo.jpg") -> dict[str, Any]:
        body, content_type = multipart({"alt": "bench"}, filename, content)
        status, _, data = http_request(
            self.port, "POST", f"/assets/{path}", body=body, headers={"Content-Type": content_type}
        )
        if status != 201:
            raise RuntimeError(f"store at {path} answered {status}: {data[:300]!r}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def stop(self) -> None:
        self.service.stop(30)
        postmaster = self.postmaster_pid()
        if postmaster is not None:  # the embedded PostgreSQL normally stops with the server; make sure
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and Path(f"/proc/{postmaster}").exists():
                time.sleep(0.2)
            if Path(f"/proc/{postmaster}").exists():
                os.kill(postmaster, signal.SIGINT)


async def _database_state(dsn: str) -> dict[str, Any]:
    """What the server's connections are doing (for an incident): sessions by state, advisory locks held."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        sessions = await connection.fetch(
            "SELECT state, wait_event_type, count(*) AS n FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1, 2 ORDER BY 3 DESC"
        )
        locks = await connection.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
        return {"client_sessions": [dict(r) for r in sessions], "advisory_locks_held": locks}
    finally:
        await connection.close()
