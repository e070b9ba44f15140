"""What the machine is and what it does meanwhile: its description for the results, the memory of the
konifer-edge process tree, and the CPU that other people's processes take during a run (noise)."""

from __future__ import annotations

import json
import os
import platform
import resource
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from settings import CORES, REPO, VENV_PYTHON


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                found.extend(int(p) for p in handle.read().split())
    except OSError:
        pass
    return found


def _tree(pid: int) -> list[int]:
    pids, queue = [], [pid]
    while queue:
        current = queue.pop()
        pids.append(current)
        queue.extend(_children(current))
    return pids


def _status_kb(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Every 100 ms: the summed RSS of the konifer-edge process tree (granian's main process and its
    workers); every second: the PSS of the embedded PostgreSQL, which runs outside that tree."""

    def __init__(self, root_pid: Callable[[], int], postmaster_pid: Callable[[], int | None]) -> None:
        super().__init__(daemon=True)
        self.root_pid = root_pid
        self.postmaster_pid = postmaster_pid
        self.samples: list[tuple[float, int, int]] = []  # (monotonic, tree RSS kB, postgres PSS kB)
        self._halt = threading.Event()

    def run(self) -> None:
        tick = 0
        postgres_kb = 0
        while not self._halt.is_set():
            tree_kb = sum(_status_kb(pid, "VmRSS") for pid in _tree(self.root_pid()))
            if tick % 10 == 0:
                postmaster = self.postmaster_pid()
                postgres_kb = sum(_pss_kb(pid) for pid in _tree(postmaster)) if postmaster else 0
            self.samples.append((time.monotonic(), tree_kb, postgres_kb))
            tick += 1
            self._halt.wait(0.1)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def peak_mb(self, start: float | None = None, end: float | None = None) -> float:
        values = [s[1] for s in self.samples if (start is None or s[0] >= start) and (end is None or s[0] <= end)]
        return round(max(values, default=0) / 1024, 1)

    def memory(self) -> dict[str, Any]:
        """The run's memory for the results: peaks and the samples thinned to at most ~600 points."""
        return {
            "konifer_tree_peak_rss_mb": self.peak_mb(),
            "postgres_peak_pss_mb": round(max((s[2] for s in self.samples), default=0) / 1024, 1),
            "samples": len(self.samples),
            "timeline": _timeline(self.samples),
        }


def _timeline(samples: list[tuple[float, int, int]]) -> list[list[float]]:
    """[seconds since start, tree MB, postgres MB] per kept sample."""
    if not samples:
        return []
    t0 = samples[0][0]
    step = max(1, len(samples) // 600)
    return [[round(t - t0, 1), round(rss / 1024, 1), round(pg / 1024, 1)] for t, rss, pg in samples[::step]]


def _no_postmaster() -> int | None:
    return None


# The server being watched: set once by watch(), read by every wrk run (its peak RSS, and whose CPU is ours).
_sampler: RssSampler | None = None
_postmaster: Callable[[], int | None] = _no_postmaster


def watch(root_pid: Callable[[], int], postmaster_pid: Callable[[], int | None]) -> RssSampler:
    """Start sampling the konifer-edge tree and count its PostgreSQL as the suite's own CPU from now on."""
    global _sampler, _postmaster
    _postmaster = postmaster_pid
    _sampler = RssSampler(root_pid, postmaster_pid)
    _sampler.start()
    return _sampler


def peak_rss_mb(start: float, end: float) -> float | None:
    """The konifer-edge tree's peak RSS between two monotonic times, if it is being watched."""
    return None if _sampler is None else _sampler.peak_mb(start, end)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_jiffies(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def cpu_snapshot() -> tuple[float, int, int, float]:
    """(time, busy jiffies of the machine, steal jiffies, CPU seconds of the suite's own processes).

    The suite's own: this process and everything it started (the servers, wrk, reaped children) and
    the embedded PostgreSQL. What the machine spent beyond that is other people's load: noise."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    busy = values[0] + values[1] + values[2] + values[5] + values[6]  # user nice system irq softirq
    steal = values[7] if len(values) > 7 else 0
    postmaster = _postmaster()
    pids = set(_tree(os.getpid())) | (set(_tree(postmaster)) if postmaster else set())
    ours = sum(_proc_jiffies(pid) for pid in pids) / CLOCK_TICKS
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.monotonic(), busy, steal, ours + children.ru_utime + children.ru_stime


def other_load(before: tuple[float, int, int, float], after: tuple[float, int, int, float]) -> dict[str, float]:
    elapsed = max(1e-6, after[0] - before[0])
    capacity = elapsed * CORES
    busy = (after[1] - before[1]) / CLOCK_TICKS
    steal = (after[2] - before[2]) / CLOCK_TICKS
    ours = after[3] - before[3]
    return {
        "suite_cpu_pct": round(100 * ours / capacity, 1),
        "other_cpu_pct": round(100 * max(0.0, busy - ours) / capacity, 1),
        "steal_pct": round(100 * steal / capacity, 1),
    }


def command_output(command: list[str], cwd: Path | None = None) -> str:
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=cwd)
        return (completed.stdout + completed.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable: {error}"


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_kb = _meminfo_kb("MemTotal")
    vips = json.loads(
        command_output(
            [
                str(VENV_PYTHON),
                "-c",
                (
                    "import json, pyvips; print(json.dumps({'pyvips': pyvips.__version__, 'libvips': "
                    "'%d.%d.%d' % (pyvips.version(0), pyvips.version(1), pyvips.version(2))}))"
                ),
            ]
        )
    )
    packages = command_output(
        [
            str(VENV_PYTHON),
            "-c",
            (
                "import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
                "('granian', 'litestar', 'asyncpg', 'obstore', 'msgspec', 'pgserver')}))"
            ),
        ]
    )
    try:
        package_versions = json.loads(packages)
    except json.JSONDecodeError:
        package_versions = {"error": packages}
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    dirty = command_output(
        [
            "git",
            "-C",
            str(REPO),
            "status",
            "--porcelain",
            "--untracked-files=all",
            "--",
            "konifer_edge",
            "pyproject.toml",
        ]
    )
    return {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model,
        "cores": CORES,
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _os_release(),
        "python": command_output([str(VENV_PYTHON), "-c", "import sys; print(sys.version.split()[0])"]),
        "libvips": vips["libvips"],
        "pyvips": vips["pyvips"],
        "packages": package_versions,
        "nginx": command_output(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": command_output(["wrk", "-v"]).splitlines()[0],
        "konifer_edge_commit": commit,
        "konifer_edge_dirty": bool(dirty.strip()),
        "konifer_edge_uncommitted": [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()],
        "loadavg_at_start": loadavg(),
    }


def _meminfo_kb(field: str) -> int:
    with open("/proc/meminfo") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
