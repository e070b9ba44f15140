"""Where the suite's files are, the knobs it reads from the environment, and the few helpers every part uses.

The knobs are read once, at import, so every module sees the same run settings (see suite.py's docstring).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
# The in-process reference renders with as many libvips threads per image as the server does
# (variant-generation.vips-concurrency, 1 by default, chosen for throughput), so the cold-render
# ratio compares the same work: what is left is the server's own cost.
REFERENCE_ENV = {**os.environ, "VIPS_CONCURRENCY": "1"}
KONIFER = REPO / ".venv" / "bin" / "konifer-edge"
TOOLS = BENCH / ".venvs" / "tools"
THUMBOR_VENV = BENCH / ".venvs" / "thumbor"
NODE_DIR = BENCH / ".node"
LUA = BENCH / "lua" / "bench.lua"
RESULTS = BENCH / "results"
HOST = "127.0.0.1"

CONNECTIONS = (1, 8, 32)
DURATION = float(os.environ.get("BENCH_DURATION", "8"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "2"))
SCALE_DURATION = float(os.environ.get("BENCH_SCALE_DURATION", "5"))
SCALE_LEVELS = (10, 1_000, 100_000) + (() if os.environ.get("BENCH_SCALE_1M") == "0" else (1_000_000,))
CORES = os.cpu_count() or 1
KONIFER_WORKERS = int(os.environ.get("BENCH_KONIFER_WORKERS", str(CORES)))
PROFILE = os.environ.get("BENCH_PROFILE", "1") != "0"
ONLY = {s for s in os.environ.get("BENCH_ONLY", "").split(",") if s}
# Cold widths: request i asks COLD_LOW + (i * 397) % COLD_SPAN (see bench.lua), distinct for COLD_SPAN requests.
COLD_LOW, COLD_SPAN = 200, 1800
WRK_TIMEOUT = "30s"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def want(scenario: str) -> bool:
    return not ONLY or scenario in ONLY


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cold_widths(count: int, threads: int = 1) -> list[int]:
    """The widths bench.lua's cold mode asks, in order, for one thread of `threads`."""
    return [COLD_LOW + ((threads * k) * 397) % COLD_SPAN for k in range(count)]


def described() -> dict[str, object]:
    """The run's settings as the results record them."""
    return {
        "duration_s": DURATION,
        "warmup_s": WARMUP,
        "connections": list(CONNECTIONS),
        "scale_duration_s": SCALE_DURATION,
        "scale_levels": list(SCALE_LEVELS),
        "konifer_workers": KONIFER_WORKERS,
        "nginx_workers": CORES,
        "thumbor_processes": CORES,
        "ipx_processes": 1,
        "wrk_threads": "min(connections, 2)",
        "wrk_timeout": WRK_TIMEOUT,
        "cold_widths": f"{COLD_LOW} + (i * 397) % {COLD_SPAN}, each asked once",
        "only": sorted(ONLY),
    }


def fmt(value: float | None, digits: int = 1) -> str:
    """A figure for a table or a log line; `-` where nothing was measured."""
    return "-" if value is None else f"{value:,.{digits}f}"
