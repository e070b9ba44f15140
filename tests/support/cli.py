"""Running `python -m konifer_edge` as the operator does, and cleaning up after the embedded PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
import sys
from pathlib import Path

from tests.support.server import CONFIG_VARIABLES

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env(overrides: dict[str, str] | None) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name not in CONFIG_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)
    env.update(overrides or {})
    return env


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "konifer_edge", *args],
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def check_config(
    tmp_path: Path, name: str, text: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli("check-config", str(write(tmp_path, name, text)), cwd=tmp_path, env=env)


def assert_refused(result: subprocess.CompletedProcess[str], key: str) -> None:
    assert result.returncode != 0, f"accepted:\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert key in result.stderr, f"{key!r} not named in stderr:\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr


def stop_leftover_postgres(pgdata: Path) -> None:
    """Stop an embedded PostgreSQL a killed or failed server left running in ``pgdata``."""
    if not (pgdata / "postmaster.pid").exists():
        return
    from pgserver._commands import POSTGRES_BIN_PATH

    owner = pwd.getpwuid(pgdata.stat().st_uid).pw_name
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
            user=owner,
        )
