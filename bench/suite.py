"""The konifer-edge benchmark suite. Run it through bench/run.sh, which installs what it needs.

Starts konifer-edge, nginx, thumbor and ipx on 127.0.0.1, drives them with wrk, and writes
bench/results/<date>-<host>.json, .png and .md. Every figure in those files comes from this run.
See bench/README.md for what each scenario measures.

Environment knobs (all optional):
  BENCH_DURATION=8          seconds per wrk run (1, 8 and 32 connections each)
  BENCH_WARMUP=2            seconds of warm-up load before each series
  BENCH_SCALE_DURATION=5    seconds per wrk run in the scale scenario
  BENCH_SCALE_1M=1          also seed and measure 1,000,000 assets (adds ~3-5 minutes)
  BENCH_KONIFER_WORKERS=N   konifer-edge --workers (default: the number of cores)
  BENCH_PROFILE=0           skip the py-spy profiles of missed goals
  BENCH_KEEP_TMP=1          keep bench/tmp/<run> (data directories, logs) after the run
  BENCH_ONLY=hot,cold       run only these scenarios (for trying the suite out; goals need all)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

sys.path.insert(0, str(BENCH))
from photo import make_photo  # noqa: E402

CONNECTIONS = (1, 8, 32)
DURATION = float(os.environ.get("BENCH_DURATION", "8"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "2"))
SCALE_DURATION = float(os.environ.get("BENCH_SCALE_DURATION", "5"))
SCALE_LEVELS = (10, 1_000, 100_000) + ((1_000_000,) if os.environ.get("BENCH_SCALE_1M") == "1" else ())
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


# ---------------------------------------------------------------------------------------------
# processes


class Service:
    """A server started by the suite in its own session, stopped by its process group."""

    def __init__(
        self,
        name: str,
        command: list[str],
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


SERVICES: list[Service] = []


def start_service(*args: Any, **kwargs: Any) -> Service:
    service = Service(*args, **kwargs)
    SERVICES.append(service)
    return service


def stop_all() -> None:
    while SERVICES:
        SERVICES.pop().stop()


def wait_http(
    port: int, path: str, timeout: float, service: Service | None = None, ok: tuple[int, ...] = (200,)
) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            raise RuntimeError(f"{service.name} exited during start-up:\n{service.tail()}")
        try:
            status, _, _ = http_request(port, "GET", path, timeout=2)
            if status in ok:
                return
            last = status
        except OSError as error:
            last = error
        time.sleep(0.2)
    raise RuntimeError(f"no answer on port {port}{path} within {timeout}s (last: {last})")


def http_request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        connection.close()


def multipart(metadata: dict[str, object], filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = "konifer-bench-" + uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="metadata"\r\n'
        f"Content-Type: application/json\r\n\r\n".encode()
        + json.dumps(metadata).encode()
        + b"\r\n",
        f'--{boundary}\r\nContent-Disposition: form-data; name="asset"; filename="{filename}"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + content
        + b"\r\n",
        f"--{boundary}--\r\n".encode(),
    ]
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# ---------------------------------------------------------------------------------------------
# memory


def _children(pid: int) -> list[int]:
    found = []
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


SAMPLER: RssSampler | None = None


def _no_postmaster() -> int | None:
    return None


POSTMASTER: Callable[[], int | None] = _no_postmaster
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
    postmaster = POSTMASTER()
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


# ---------------------------------------------------------------------------------------------
# wrk


def wrk(port: int, connections: int, duration: float, mode_args: list[str], *, label: str) -> dict[str, Any]:
    threads = min(connections, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={WRK_TIMEOUT}",
        "-s",
        str(LUA),
        f"http://{HOST}:{port}",
        "--",
        *mode_args,
    ]
    before = cpu_snapshot()
    started = before[0]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=duration + 90)
    after = cpu_snapshot()
    ended = after[0]
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if completed.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed for {label}: rc={completed.returncode}\n{completed.stdout}\n{completed.stderr}")
    raw = json.loads(line[len("WRKJSON ") :])
    seconds = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    errors = raw["errors"]
    result = {
        "connections": connections,
        "threads": threads,
        "duration_s": round(seconds, 2),
        "requests": raw["requests"],
        "req_s": round(raw["requests"] / seconds, 1) if seconds else 0.0,
        "mb_s": round(raw["bytes"] / seconds / 1e6, 2) if seconds else 0.0,
        "p50_ms": round(lat["p50"] / 1000, 3),
        "p75_ms": round(lat["p75"] / 1000, 3),
        "p90_ms": round(lat["p90"] / 1000, 3),
        "p99_ms": round(lat["p99"] / 1000, 3),
        "p999_ms": round(lat["p999"] / 1000, 3),
        "mean_ms": round(lat["mean"] / 1000, 3),
        "max_ms": round(lat["max"] / 1000, 3),
        "errors": errors,
        "error_count": sum(errors.values()),
        **other_load(before, after),
    }
    if not raw["requests"]:  # nothing completed: there is no latency to report, only the zero
        for key in ("p50_ms", "p75_ms", "p90_ms", "p99_ms", "p999_ms", "mean_ms", "max_ms"):
            result[key] = None
        result["note"] = "no request completed within the run"
    if SAMPLER is not None:
        result["konifer_tree_peak_rss_mb"] = SAMPLER.peak_mb(started, ended)
    flag = f" ERRORS {errors}" if result["error_count"] else ""
    if result["other_cpu_pct"] >= 10:
        flag += f" (other load {result['other_cpu_pct']:.0f}% of the machine)"
    log(
        f"  {label:<34} c={connections:<3} {result['req_s']:>9.1f} req/s  p50 {_fmt(result['p50_ms'], 2):>8}  "
        f"p90 {_fmt(result['p90_ms'], 2):>8}  p99 {_fmt(result['p99_ms'], 2):>8} ms{flag}"
    )
    return result


def url_file(tmp: Path, name: str, paths: list[str]) -> Path:
    path = tmp / f"urls-{name}.txt"
    path.write_text("\n".join(paths) + "\n")
    return path


def series(
    port: int,
    mode_args: list[str],
    *,
    label: str,
    warmup: bool = True,
    duration: float = DURATION,
    connections: tuple[int, ...] = CONNECTIONS,
    warmup_duration: float = WARMUP,
) -> dict[str, Any]:
    if warmup and WARMUP > 0:
        wrk(port, 8, warmup_duration, mode_args, label=label + " (warm-up)")
    return {str(c): wrk(port, c, duration, mode_args, label=label) for c in connections}


# ---------------------------------------------------------------------------------------------
# machine


def _command_output(command: list[str], cwd: Path | None = None) -> str:
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
        _command_output(
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
    packages = _command_output(
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
    commit = _command_output(["git", "-C", str(REPO), "rev-parse", "HEAD"])
    dirty = _command_output(
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
        "python": _command_output([str(VENV_PYTHON), "-c", "import sys; print(sys.version.split()[0])"]),
        "libvips": vips["libvips"],
        "pyvips": vips["pyvips"],
        "packages": package_versions,
        "nginx": _command_output(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": _command_output(["wrk", "-v"]).splitlines()[0],
        "konifer_edge_commit": commit,
        "konifer_edge_dirty": bool(dirty.strip()),
        "konifer_edge_uncommitted": [line.split(maxsplit=1)[-1] for line in dirty.splitlines() if line.strip()],
        "loadavg_at_start": _loadavg(),
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


def _loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


# ---------------------------------------------------------------------------------------------
# servers


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
        incident = {
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


def start_nginx(tmp: Path, static: Path) -> tuple[Service, int]:
    port = free_port()
    conf_dir = tmp / "nginx"
    conf_dir.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(
        f"  {kind}_temp_path {conf_dir / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    conf = conf_dir / "nginx.conf"
    conf.write_text(
        f"{user}worker_processes {CORES};\ndaemon off;\npid {conf_dir / 'nginx.pid'};\n"
        f"error_log {conf_dir / 'error.log'} warn;\nevents {{ worker_connections 4096; }}\n"
        "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  keepalive_requests 1000000;\n"
        f"  keepalive_timeout 120s;\n  types {{ image/jpeg jpg; }}\n{temp}"
        f"  server {{\n    listen {HOST}:{port};\n    root {static};\n  }}\n}}\n"
    )
    service = start_service("nginx", ["nginx", "-c", str(conf), "-e", str(conf_dir / "error.log")], tmp / "nginx.log")
    wait_http(port, "/photo-400.jpg", 20, service)
    return service, port


def start_thumbor(tmp: Path, images: Path) -> tuple[Service, int]:
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if not binary.exists():
        raise RuntimeError(_install_error("thumbor") or f"{binary} is missing")
    port = free_port()
    conf = tmp / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = '{images}'\n"
        "ALLOW_UNSAFE_URL = True\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        # thumbor's own result cache: the hot scenario serves rendered results from it.
        "RESULT_STORAGE = 'thumbor.result_storages.file_storage'\n"
        f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = '{tmp / 'thumbor-results'}'\n"
        "RESULT_STORAGE_STORES_UNSAFE = True\n"
        "QUALITY = 80\n"
    )
    service = start_service(
        "thumbor",
        [str(binary), "-p", str(port), "-i", HOST, "-c", str(conf), "-l", "error", "--processes", str(CORES)],
        tmp / "thumbor.log",
    )
    wait_http(port, "/healthcheck", 60, service)
    return service, port


def start_ipx(tmp: Path, images: Path) -> tuple[Service, int]:
    entry = NODE_DIR / "node_modules" / "ipx" / "bin" / "ipx.mjs"
    if not entry.exists():
        raise RuntimeError(_install_error("ipx") or f"{entry} is missing")
    port = free_port()
    service = start_service(
        "ipx",
        ["node", str(entry), "serve", "--dir", str(images)],
        tmp / "ipx.log",
        env={"PORT": str(port), "HOST": HOST},
        cwd=NODE_DIR,
    )
    wait_http(port, "/w_16/photo.jpg", 60, service)
    return service, port


def start_ceiling(tmp: Path, static: Path) -> tuple[Service, int]:
    """A bare ASGI app on Granian (bench/ceiling_app.py) serving the same bytes: the stack's own ceiling."""
    port = free_port()
    granian = REPO / ".venv" / "bin" / "granian"
    options = ["--interface", "asgi", "--host", HOST, "--port", str(port), "--workers", str(KONIFER_WORKERS)]
    service = start_service(
        "granian-ceiling",
        [str(granian), *options, "--loop", "auto", "--no-log", "--working-dir", str(BENCH), "ceiling_app:app"],
        tmp / "granian-ceiling.log",
        env={"BENCH_CEILING_FILE": str(static / "photo-400.jpg")},
        cwd=BENCH,
    )
    wait_http(port, "/", 30, service)
    return service, port


def _install_error(name: str) -> str | None:
    log_path = BENCH / "tmp" / f"install-{name}.log"
    if log_path.exists():
        text = log_path.read_text(errors="replace").strip()
        if text:
            return f"install of {name} failed: " + "\n".join(text.splitlines()[-15:])
    return None


def peer_versions() -> dict[str, Any]:
    versions: dict[str, Any] = {}
    python = THUMBOR_VENV / "bin" / "python"
    if python.exists():
        out = _command_output(
            [
                str(python),
                "-c",
                (
                    "import json, importlib.metadata as m; "
                    "print(json.dumps({p: m.version(p) for p in ('thumbor', 'pillow')}))"
                ),
            ]
        )
        try:
            versions["thumbor"] = json.loads(out)
        except json.JSONDecodeError:
            versions["thumbor"] = {"error": out}
    if (NODE_DIR / "node_modules" / "ipx").exists():
        out = _command_output(
            [
                "node",
                "-e",
                (
                    "const s=require('sharp');"
                    "const p=JSON.parse(require('fs').readFileSync('node_modules/ipx/package.json','utf8'));"
                    "console.log(JSON.stringify({ipx:p.version,sharp:s.versions.sharp,libvips:s.versions.vips,"
                    "node:process.versions.node}))"
                ),
            ],
            cwd=NODE_DIR,
        )
        try:
            versions["ipx"] = json.loads(_last_json_line(out))
        except (json.JSONDecodeError, ValueError):
            versions["ipx"] = {"error": out}
    return versions


def _last_json_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            return line
    raise ValueError(text)


# ---------------------------------------------------------------------------------------------
# the scale scenario: rows seeded straight into the server's PostgreSQL


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


async def _seed(dsn: str, low: int, high: int) -> dict[str, float]:
    """Add entries [low, high - 1) at /scale/one (the last one of the level is stored through the API, so the
    server's own write path invalidates its caches), and assets [low, high) ten to a path under /scale/many
    (new paths only: no path already read changes)."""
    import asyncpg

    connection = await asyncpg.connect(dsn)
    timings = {}
    try:
        original = await connection.fetchrow(
            "SELECT v.bucket, v.store_key, v.size_bytes, v.content_hash"
            " FROM variant v JOIN asset a ON a.id = v.asset_id"
            " WHERE a.path = '/bench/photo' AND a.entry_id = 0 AND v.transformation_key = ''"
        )
        assert original is not None
        for layout, path_sql, entry_sql, last in (
            ("one_path", "'/scale/one'", "g", high - 2),
            ("across_paths", "'/scale/many/' || (g / 10)", "g % 10", high - 1),
        ):
            started = time.monotonic()
            if last < low:
                timings[layout] = 0.0
                continue
            async with connection.transaction():
                # Each seeded asset gets one variant row: its original, pointing at the real stored photo.
                await connection.execute(
                    "WITH seeded AS ("
                    " INSERT INTO asset (id, path, entry_id, alt, source, created_at, modified_at)"
                    f" SELECT gen_random_uuid(), {path_sql}, {entry_sql}, 'seeded', 'upload',"
                    "  timestamptz '2020-01-01' + g * interval '1 millisecond',"
                    "  timestamptz '2020-01-01' + g * interval '1 millisecond'"
                    " FROM generate_series($1::bigint, $2::bigint) AS g RETURNING id, created_at)"
                    " INSERT INTO variant (id, asset_id, transformation_key, bucket, store_key, width, height, format,"
                    " page_count, loop, content_type, size_bytes, content_hash, created_at, last_accessed_at)"
                    " SELECT gen_random_uuid(), id, '', $3, $4, 3000, 2000, 'jpg', 1, 0, 'image/jpeg', $5, $6,"
                    "  created_at, created_at FROM seeded",
                    low,
                    last,
                    original["bucket"],
                    original["store_key"],
                    original["size_bytes"],
                    original["content_hash"],
                )
                await connection.execute(
                    "INSERT INTO asset_path (path, last_entry_id)"
                    f" SELECT {path_sql}, max({entry_sql}) FROM generate_series($1::bigint, $2::bigint) AS g GROUP BY 1"
                    " ON CONFLICT (path) DO UPDATE SET last_entry_id = GREATEST(asset_path.last_entry_id,"
                    " EXCLUDED.last_entry_id)",
                    low,
                    last,
                )
            timings[layout] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        await connection.execute("ANALYZE asset")
        await connection.execute("ANALYZE variant")
        timings["analyze"] = round(time.monotonic() - started, 2)
        counts = await connection.fetchrow(
            "SELECT (SELECT count(*) FROM asset WHERE path = '/scale/one') AS one,"
            " (SELECT count(*) FROM asset WHERE path LIKE '/scale/many/%') AS many"
        )
        assert counts is not None
        timings["rows_one_path"] = counts["one"]
        timings["rows_across_paths"] = counts["many"]
    finally:
        await connection.close()
    return timings


def scale_scenario(konifer: Konifer, tmp: Path, photo_bytes: bytes) -> dict[str, Any]:
    """Newest metadata as the table grows, on the server as configured (its resolution cache answers repeated
    reads) and on a second server over the same database with `cache.resolution-entries = 0`, so that every
    request runs the PostgreSQL queries: the cost of a cache miss, or of a path written often."""
    config = tmp / "uncached.toml"
    config.write_text(
        "[cache]\nresolution-entries = 0\n"
        f"[object-store.filesystem]\nmount-path = {json.dumps(str(konifer.data / 'objects'))}\n"
    )
    # It joins the first server's PostgreSQL as an external database, so stopping it stops nothing else.
    uncached = Konifer(
        tmp, name="konifer-uncached", config=config, data=tmp / "uncached-data", database_url=konifer.dsn
    )
    servers = {"cached": konifer, "uncached": uncached}
    out: dict[str, Any] = {
        "levels": list(SCALE_LEVELS),
        "seeding_s": {},
        "servers": {name: {"one_path": {}, "across_paths": {}, "control": {}} for name in servers},
        "uncached_config": "cache.resolution-entries = 0 (same database and objects, same workers)",
    }
    one_urls = url_file(tmp, "scale-one", ["/assets/scale/one/-/metadata"])
    # The control: the newest metadata of a path that never grows, measured at every level right before the
    # others. If it moves as much as they do, the machine moved (other load), not the table.
    control_urls = url_file(tmp, "scale-control", ["/assets/bench/photo/-/metadata"])
    previous = 0
    try:
        for level in SCALE_LEVELS:
            log(f"scale: seeding to {level:,} assets per layout")
            out["seeding_s"][str(level)] = asyncio.run(_seed(konifer.dsn, previous, level))
            stored = konifer.store("scale/one", photo_bytes)
            if stored["entryId"] != level - 1:
                raise RuntimeError(f"scale: the store at /scale/one got entry {stored['entryId']}, not {level - 1}")
            previous = level
            for name, server in servers.items():
                status, _, body = http_request(server.port, "GET", "/assets/scale/one/-/metadata")
                newest = json.loads(body).get("entryId") if status == 200 else None
                if newest != level - 1:
                    raise RuntimeError(f"scale: {name} says the newest at /scale/one is {newest} ({status})")
            paths = max(1, level // 10)
            picks = sorted({(i * paths) // 50 for i in range(50)})
            many_urls = url_file(tmp, f"scale-many-{level}", [f"/assets/scale/many/{k}/-/metadata" for k in picks])
            for name, server in servers.items():
                block = out["servers"][name]
                for key, urls, connections in (
                    ("control", control_urls, (1,)),
                    ("one_path", one_urls, (1, 8)),
                    ("across_paths", many_urls, (1, 8)),
                ):
                    block[key][str(level)] = series(
                        server.port,
                        ["urls", str(urls)],
                        label=f"scale {name} {key} {level:,}",
                        duration=SCALE_DURATION,
                        connections=connections,
                        warmup=True,
                        warmup_duration=1,
                    )
    finally:
        uncached.stop()
    return out


# ---------------------------------------------------------------------------------------------
# goals


def _at(result: dict[str, Any] | None, connections: int, key: str) -> float | None:
    if not result or str(connections) not in result:
        return None
    value = result[str(connections)].get(key)
    return None if value is None else float(value)


def evaluate_goals(s: dict[str, Any]) -> list[dict[str, Any]]:
    goals: list[dict[str, Any]] = []

    def add(
        goal_id: str, text: str, measured: str, target: str, passed: bool | None, margin: str, scenario: str | None
    ) -> None:
        goals.append(
            {
                "id": goal_id,
                "goal": text,
                "measured": measured,
                "target": target,
                "pass": passed,
                "margin": margin,
                "profile_scenario": scenario,
            }
        )

    hot = s.get("hot", {})
    nginx32 = _at(hot.get("nginx"), 32, "req_s")
    for key, spelling in (
        ("konifer_content_entry", "/-/content/entry/0"),
        ("konifer_entry_content", "/-/entry/0/content"),
    ):
        rps = _at(hot.get(key), 32, "req_s")
        p99 = _at(hot.get(key), 32, "p99_ms")
        if rps is None or nginx32 is None or p99 is None:
            add(
                f"hot-{key}",
                f"hot cached variant ({spelling}) >= 0.5x nginx req/s, p99 < 5 ms at 32 conns",
                "not measured",
                "",
                None,
                "",
                None,
            )
            continue
        ratio = rps / nginx32
        passed = ratio >= 0.5 and p99 < 5.0
        add(
            f"hot-{key}",
            f"hot cached variant ({spelling}) >= 0.5x nginx req/s and p99 < 5 ms at 32 connections",
            f"{rps:,.0f} req/s = {ratio:.3f}x nginx ({nginx32:,.0f}); p99 {p99:.1f} ms",
            ">= 0.5x; p99 < 5 ms",
            passed,
            f"req/s at {ratio / 0.5:.1%} of target; p99 {p99 / 5.0:.1f}x the limit",
            "hot",
        )

    reval = s.get("revalidate", {}).get("konifer")
    hot_best = [_at(hot.get(k), 32, "req_s") for k in ("konifer_content_entry", "konifer_entry_content")]
    hot_ref = max((h for h in hot_best if h is not None), default=None)
    r32 = _at(reval, 32, "req_s")
    if r32 is not None and hot_ref is not None:
        ratio = r32 / hot_ref
        add(
            "revalidate",
            "304 revalidation >= hot path req/s (32 connections)",
            f"{r32:,.0f} req/s vs hot {hot_ref:,.0f} ({ratio:.2f}x)",
            ">= 1.0x",
            ratio >= 1.0,
            f"{ratio - 1:+.1%}",
            "revalidate",
        )
    else:
        add("revalidate", "304 revalidation >= hot path req/s", "not measured", "", None, "", None)

    meta = s.get("newest_metadata", {}).get("konifer")
    m32 = _at(meta, 32, "req_s")
    if m32 is not None and nginx32 is not None:
        ratio = m32 / nginx32
        add(
            "newest-metadata",
            "metadata of the newest asset >= 0.4x nginx req/s (32 connections)",
            f"{m32:,.0f} req/s = {ratio:.3f}x nginx ({nginx32:,.0f})",
            ">= 0.4x",
            ratio >= 0.4,
            f"at {ratio / 0.4:.1%} of target",
            "newest_metadata",
        )
    else:
        add("newest-metadata", "metadata of the newest asset >= 0.4x nginx req/s", "not measured", "", None, "", None)

    cold = s.get("cold", {})
    paired = cold.get("paired", {})
    reference = cold.get("pyvips_in_process", {}).get("jpegsave_q80", {}).get("median_ms")
    k_p50 = _at(cold.get("konifer"), 1, "p50_ms")
    if paired.get("server_median_ms"):
        ratio = paired["ratio_of_medians"]
        unpaired = f"; unpaired, wrk p50 {k_p50:.1f} ms vs {reference:.1f} ms" if k_p50 and reference else ""
        add(
            "cold-render",
            "cold render <= 1.3x pyvips in-process (median per render, interleaved with the server's)",
            f"{paired['server_median_ms']:.1f} ms vs pyvips {paired['pyvips_median_ms']:.1f} ms ({ratio:.2f}x; "
            f"median of per-width ratios {paired['median_of_pair_ratios']:.2f}x){unpaired}",
            "<= 1.3x",
            ratio <= 1.3,
            f"{ratio / 1.3 - 1:+.1%} vs the limit",
            "cold",
        )
    elif reference and k_p50 is not None:
        ratio = k_p50 / reference
        add(
            "cold-render",
            "cold render <= 1.3x pyvips in-process (median per render, 1 connection)",
            f"{k_p50:.1f} ms vs pyvips {reference:.1f} ms ({ratio:.2f}x)",
            "<= 1.3x",
            ratio <= 1.3,
            f"{ratio / 1.3 - 1:+.1%} vs the limit",
            "cold",
        )
    else:
        add("cold-render", "cold render <= 1.3x pyvips in-process", "not measured", "", None, "", None)

    for peer in ("thumbor", "ipx"):
        comparisons = []
        for scenario, keys in (
            ("hot", ("konifer_content_entry", "konifer_entry_content")),
            ("revalidate", ("konifer",)),
            ("cold", ("konifer",)),
        ):
            block = s.get(scenario, {})
            if not isinstance(block.get(peer), dict) or "32" not in block.get(peer, {}):
                continue
            for c in CONNECTIONS:
                ours = min((v for v in (_at(block.get(k), c, "req_s") for k in keys) if v is not None), default=None)
                theirs = _at(block.get(peer), c, "req_s")
                if ours is None or theirs is None:
                    continue
                comparisons.append((scenario, c, ours, theirs))
        if not comparisons:
            reason = s.get("peers", {}).get(peer, {}).get("error", "not measured")
            add(f"ahead-{peer}", f"ahead of {peer} on every shared scenario", str(reason)[:200], "", None, "", None)
            continue
        behind = [(sc, c, o, t) for sc, c, o, t in comparisons if o < t]
        measured = "; ".join(f"{sc}@{c}: {o:,.0f} vs {t:,.0f} req/s" for sc, c, o, t in comparisons)
        worst = min(comparisons, key=lambda x: x[2] / x[3] if x[3] else float("inf"))
        add(
            f"ahead-{peer}",
            f"ahead of {peer} on every shared scenario (req/s at 1, 8 and 32 connections)",
            measured,
            "konifer >= peer everywhere",
            not behind,
            f"worst: {worst[0]}@{worst[1]} at {worst[2] / worst[3]:.2f}x the peer" if worst[3] else "",
            behind[0][0] if behind else None,
        )

    scale = s.get("scale")
    if scale:
        for server, block in scale["servers"].items():
            control = {int(n): block["control"][n]["1"]["p50_ms"] for n in block.get("control", {})}
            for layout in ("one_path", "across_paths"):
                p50 = {int(n): block[layout][n]["1"]["p50_ms"] for n in block[layout]}
                if not p50:
                    continue
                smallest, largest = min(p50), max(p50)
                ratio = p50[largest] / p50[smallest] if p50[smallest] else float("inf")
                spread = max(p50.values()) / min(p50.values()) if min(p50.values()) else float("inf")
                normalised = ""
                relative = None
                if control.get(smallest) and control.get(largest):
                    relative = (p50[largest] / control[largest]) / (p50[smallest] / control[smallest])
                    normalised = f"; divided by the control path measured alongside: {relative:.2f}x"
                add(
                    f"scale-{server}-{layout}",
                    f"newest metadata flat within 20% from {smallest:,} to {largest:,} assets "
                    f"({layout.replace('_', ' ')}, {server}, p50 at 1 connection)",
                    ", ".join(f"{n:,}: {v:.2f} ms" for n, v in sorted(p50.items()))
                    + f" (largest/smallest {ratio:.2f}x)",
                    "<= 1.20x (raw, or divided by the control)",
                    ratio <= 1.2 or (relative is not None and relative <= 1.2),
                    f"{ratio - 1:+.1%}, widest spread {spread - 1:+.1%}{normalised}",
                    "newest_metadata" if server == "cached" else None,
                )
    return goals


# ---------------------------------------------------------------------------------------------
# profiles of missed goals


def _parse_flamegraph(svg: Path) -> dict[str, Any]:
    """Top frames of a py-spy flame graph, in % of all samples: self time (samples whose innermost frame it
    is) and total time (samples with it anywhere on the stack, counted once per stack)."""
    pattern = re.compile(
        r'<g><title>(.*?) \([\d,]+ samples?, [\d.]+%\)</title><rect [^>]*?y="([\d.]+)"'
        r'[^>]*?fg:x="(\d+)" fg:w="(\d+)"'
    )
    frames = [
        (_unescape(name), float(y), int(x), int(w))
        for name, y, x, w in pattern.findall(svg.read_text(errors="replace"))
    ]
    total = max((w for name, _, _, w in frames if name == "all"), default=0)
    if not frames or not total:
        return {"samples": 0, "top_self": [], "top_total": []}
    rows = sorted({y for _, y, _, _ in frames})
    depth = {y: i for i, y in enumerate(rows)}  # py-spy draws an icicle: deeper frames further down
    by_depth: dict[int, list[tuple[int, int, str]]] = {}
    for name, y, x, w in frames:
        by_depth.setdefault(depth[y], []).append((x, w, name))
    for level in by_depth.values():
        level.sort()
    self_samples: dict[str, int] = {}
    total_samples: dict[str, int] = {}

    def walk(level: int, x: int, w: int, stack: frozenset[str]) -> None:
        children = [c for c in by_depth.get(level + 1, []) if x <= c[0] < x + w]
        covered = 0
        for cx, cw, cname in children:
            covered += cw
            if cname not in stack:  # recursion: count the outermost occurrence only
                total_samples[cname] = total_samples.get(cname, 0) + cw
            walk(level + 1, cx, cw, stack | {cname})
        return_self = w - covered
        if return_self > 0 and level in by_depth:
            name = next((n for fx, fw, n in by_depth[level] if fx == x and fw == w), None)
            if name is not None:
                self_samples[name] = self_samples.get(name, 0) + return_self

    root_level = min(by_depth)
    for x, w, name in by_depth[root_level]:
        total_samples[name] = total_samples.get(name, 0) + w
        walk(root_level, x, w, frozenset({name}))
    # Where the samples without Python frames went, for the reader of the summary.
    for name in list(self_samples):
        if name.startswith("process ") or "granian/server/mp.py" in name:
            self_samples["(native: granian/uvloop/extension code, no Python frame)"] = self_samples.get(
                "(native: granian/uvloop/extension code, no Python frame)", 0
            ) + self_samples.pop(name)

    def top(counts: dict[str, int], n: int) -> list[dict[str, Any]]:
        ranked = sorted(
            ((k, v) for k, v in counts.items() if k != "all" and not _scaffolding(k)), key=lambda kv: -kv[1]
        )[:n]
        return [{"frame": _short_frame(name), "pct": round(100 * value / total, 1)} for name, value in ranked]

    return {"samples": total, "top_self": top(self_samples, 15), "top_total": top(total_samples, 25)}


_SCAFFOLDING = (
    "granian/server/",
    "multiprocessing/",
    "konifer_edge/cli.py",
    "<module>",
    "threading.py",
    "concurrent/futures/thread.py",
    "asyncio/events.py",
    "asyncio/base_events.py",
    "asyncio/runners.py",
)


def _scaffolding(name: str) -> bool:
    """Frames on every stack of their thread (process start-up, thread bootstraps): no information."""
    return any(part in name for part in _SCAFFOLDING)


def _short_frame(name: str) -> str:
    """`process 123:"...konifer-edge serve ..."` -> `process 123 (no Python frame: native code)`."""
    if name.startswith("process "):
        return name.split(":", 1)[0] + " (no Python frame: native code)"
    return name


def _unescape(text: str) -> str:
    return (
        text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&apos;", "'")
        .replace("&amp;", "&")
    )


def profile(konifer: Konifer, name: str, mode_args: list[str], prefix: str, connections: int = 32) -> dict[str, Any]:
    py_spy = TOOLS / "bin" / "py-spy"
    svg = RESULTS / f"{prefix}-profile-{name}.svg"
    if not py_spy.exists():
        return {"scenario": name, "error": f"{py_spy} is missing"}
    load = subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            "-d14s",
            f"--timeout={WRK_TIMEOUT}",
            "-s",
            str(LUA),
            f"http://{HOST}:{konifer.port}",
            "--",
            *mode_args,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        time.sleep(2)
        completed = subprocess.run(
            [
                str(py_spy),
                "record",
                "-o",
                str(svg),
                "--pid",
                str(konifer.service.pid),
                "--duration",
                "10",
                "--subprocesses",
                "--format",
                "flamegraph",
                "--nonblocking",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        try:
            load.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(load.pid, signal.SIGKILL)
            load.wait(5)
    if completed.returncode != 0 or not svg.exists():
        return {"scenario": name, "error": (completed.stdout + completed.stderr)[-1500:]}
    summary = _parse_flamegraph(svg)
    log(
        f"profile {name}: {svg.relative_to(REPO)}; top self: "
        + ", ".join(f"{t['frame']} {t['pct']}%" for t in summary["top_self"][:5])
    )
    return {"scenario": name, "connections": connections, "svg": str(svg.relative_to(REPO)), **summary}


# ---------------------------------------------------------------------------------------------
# report


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


SCENARIO_TITLES = {
    "hot": "1 hot cached variant (w=400)",
    "revalidate": "2 revalidation (If-None-Match -> 304)",
    "newest_metadata": "3 metadata of newest",
    "newest_link": "3 link of newest",
    "cold": "4 cold render (distinct widths)",
    "store": "5 store (multipart POST, 1 MB JPEG)",
}
SERVER_NAMES = {
    "nginx": "nginx (static file)",
    "granian_ceiling": "bare ASGI on Granian (ceiling)",
    "konifer_content_entry": "konifer-edge `/-/content/entry/0`",
    "konifer_entry_content": "konifer-edge `/-/entry/0/content`",
    "konifer": "konifer-edge",
    "thumbor": "thumbor",
    "ipx": "ipx",
}


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        f"## konifer-edge benchmarks, {result['date']} on {m['hostname']}",
        "",
        f"{m['cpu_model']}, {m['cores']} cores, {m['ram_gib']} GiB, Linux {m['kernel']}, Python {m['python']}, "
        f"libvips {m['libvips']} (pyvips {m['pyvips']}); konifer-edge with {result['config']['konifer_workers']} "
        f"worker(s); wrk runs of {result['config']['duration_s']:g} s; load average at start "
        f'{", ".join(str(x) for x in m["loadavg_at_start"])}. "other load" is the share of the machine\'s CPU '
        "that processes outside the suite used during that run: where it is high, the figure is low.",
        "",
        "| scenario | server | conns | req/s | p50 ms | p90 ms | p99 ms | errors | other load |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    scenarios = result["scenarios"]
    for key, title in SCENARIO_TITLES.items():
        for server, runs in scenarios.get(key, {}).items():
            if not isinstance(runs, dict) or "1" not in runs:
                continue
            for c in CONNECTIONS:
                r = runs.get(str(c))
                if r is None:
                    continue
                lines.append(
                    f"| {title} | {SERVER_NAMES.get(server, server)} | {c} | {_fmt(r['req_s'])} | "
                    f"{_fmt(r['p50_ms'], 2)} | {_fmt(r['p90_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | "
                    f"{r['error_count']} | {r.get('other_cpu_pct', 0):.0f}% |"
                )
    cold = scenarios.get("cold", {})
    ref = cold.get("pyvips_in_process")
    if ref and "jpegsave_q80" in ref:
        lines += [
            "",
            f"pyvips in-process, same widths ({ref['jpegsave_q80']['renders']} renders, one at a time): "
            f"median {ref['jpegsave_q80']['median_ms']:.1f} ms per render with jpegsave Q=80, "
            f"{ref['jpegsave_q80_optimize_coding']['median_ms']:.1f} ms with optimize_coding as konifer-edge encodes.",
        ]
    paired = cold.get("paired", {})
    if paired.get("server_median_ms"):
        lines += [
            "",
            f"Interleaved, width by width ({paired['renders']} fresh widths, one request at a time): konifer-edge "
            f"{paired['server_median_ms']:.1f} ms per render (request to last byte), pyvips in-process "
            f"{paired['pyvips_median_ms']:.1f} ms: {paired['ratio_of_medians']:.2f}x.",
        ]
    for peer in ("thumbor", "ipx"):
        info = result["peers"].get(peer, {})
        if info.get("error"):
            lines += ["", f"{peer}: not measured: {info['error'][:300]}"]
    scale = scenarios.get("scale")
    if scale:
        lines += [
            "",
            "Newest metadata as the table grows: p50 / p99 ms at 1 connection and req/s at 8, on the server as "
            "configured (`cached`: its resolution cache answers repeated reads) and on a second server over the "
            f"same database with {scale['uncached_config']} (`uncached`: every request queries PostgreSQL). "
            "The control is `/bench/photo` (one asset), measured alongside each level.",
            "",
            "| assets | server | one path p50 | p99 | req/s@8 | across paths p50 | p99 | req/s@8 | control p50 |",
            "|--:|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for level in scale["levels"]:
            for server, block in scale["servers"].items():
                if str(level) not in block["one_path"]:
                    continue
                one = block["one_path"][str(level)]
                many = block["across_paths"][str(level)]
                lines.append(
                    f"| {level:,} | {server} | {_fmt(one['1']['p50_ms'], 2)} | {_fmt(one['1']['p99_ms'], 2)} | "
                    f"{one['8']['req_s']:,.0f} | {_fmt(many['1']['p50_ms'], 2)} | {_fmt(many['1']['p99_ms'], 2)} | "
                    f"{many['8']['req_s']:,.0f} | {_fmt(block['control'][str(level)]['1']['p50_ms'], 2)} |"
                )
        seeding = ", ".join(
            f"{int(n):,}: {v['one_path'] + v['across_paths'] + v['analyze']:.1f} s"
            for n, v in scale["seeding_s"].items()
        )
        lines += ["", f"Seeding time per level (both layouts and ANALYZE): {seeding}."]
    memory = result.get("memory", {})
    if memory:
        lines += [
            "",
            f"Peak RSS of the konifer-edge process tree (sampled every 100 ms over the whole run): "
            f"{memory['konifer_tree_peak_rss_mb']:,.1f} MB; embedded PostgreSQL peak PSS "
            f"{memory['postgres_peak_pss_mb']:,.1f} MB.",
        ]
    for incident in result.get("incidents", []):
        lines += [
            "",
            f"**konifer-edge stopped answering** after {incident['after']} ({incident['what']}); "
            "the suite restarted it on the same data directory.",
        ]
    for failure in result.get("failures", []):
        lines += ["", f"**{failure['scenario']} failed**: `{failure['error'][:400]}`"]
    lines += ["", "| goal | measured | target | result | margin |", "|---|---|---|---|---|"]
    for goal in result.get("goals", []):
        verdict = {True: "**pass**", False: "**miss**", None: "n/a"}[goal["pass"]]
        lines.append(f"| {goal['goal']} | {goal['measured']} | {goal['target']} | {verdict} | {goal['margin']} |")
    for prof in result.get("profiles", []):
        if prof.get("svg"):
            lines += [
                "",
                f"Profile under `{prof['scenario']}` at {prof.get('connections', 32)} connections ({prof['svg']}, "
                f"{prof['samples']} samples), top self time: "
                + ", ".join(f"`{t['frame']}` {t['pct']}%" for t in prof["top_self"][:8]),
            ]
        elif prof.get("error"):
            lines += ["", f"Profile under `{prof['scenario']}` failed: `{prof['error'][-300:]}`"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# the run


class Run:
    """What the scenarios share: the servers, their ports, the photo and the URLs."""

    def __init__(self, tmp: Path, photo: Path, konifer: Konifer) -> None:
        self.tmp = tmp
        self.photo = photo
        self.photo_bytes = photo.read_bytes()
        self.konifer = konifer
        self.hot_a = "/assets/bench/photo/-/content/entry/0?w=400"
        self.hot_b = "/assets/bench/photo/-/entry/0/content?w=400"
        self.konifer_etag = ""
        self.nginx_port = 0
        self.nginx_etag = ""
        self.peers: dict[str, int] = {}
        self.peer_hot = {"thumbor": "/unsafe/400x0/photo.jpg", "ipx": "/w_400/photo.jpg"}
        self.peer_etags: dict[str, str] = {}
        self.ceiling_port = 0

    def urls(self, name: str, paths: list[str]) -> str:
        return str(url_file(self.tmp, name, paths))


def prepare(run: Run, result: dict[str, Any]) -> None:
    """Store the photo, render w=400 once, and start nginx (with those bytes), thumbor and ipx."""
    konifer = run.konifer
    stored = konifer.store("bench/photo", run.photo_bytes)
    if stored.get("entryId") != 0:
        raise RuntimeError(f"the first store got entry {stored.get('entryId')}, not 0")
    status, headers, variant_bytes = http_request(konifer.port, "GET", run.hot_a)
    if status != 200 or headers.get("k-cache-status") != "miss":
        raise RuntimeError(f"the first render answered {status} {headers}")
    status_b, headers_b, body_b = http_request(konifer.port, "GET", run.hot_b)
    if status_b != 200 or headers_b.get("k-cache-status") != "hit" or body_b != variant_bytes:
        raise RuntimeError(f"Konifer's spelling answered {status_b} {headers_b.get('k-cache-status')}")
    run.konifer_etag = headers["etag"]
    result["variant_w400"] = {"konifer_bytes": len(variant_bytes), "content_type": headers.get("content-type")}

    static = run.tmp / "static"
    static.mkdir()
    (static / "photo-400.jpg").write_bytes(variant_bytes)
    _, run.nginx_port = start_nginx(run.tmp, static)
    _, nginx_headers, nginx_bytes = http_request(run.nginx_port, "GET", "/photo-400.jpg")
    if nginx_bytes != variant_bytes:
        raise RuntimeError("nginx does not serve the variant's bytes")
    run.nginx_etag = nginx_headers["etag"]
    try:
        _, run.ceiling_port = start_ceiling(run.tmp, static)
        result["peers"]["granian_ceiling"] = {
            "serves": "the same bytes from memory: a bare ASGI app on Granian with konifer-edge's workers, "
            "no framework, database or logging (bench/ceiling_app.py)",
            "workers": KONIFER_WORKERS,
        }
    except Exception as error:
        log(f"granian ceiling: not available: {error}")
        result["peers"]["granian_ceiling"] = {"error": str(error)[-2000:]}
    result["peers"]["nginx"] = {
        "version": result["machine"]["nginx"],
        "workers": CORES,
        "serves": "the konifer-edge w=400 variant's bytes as a static file",
    }

    images = run.photo.parent
    for name, starter in (("thumbor", start_thumbor), ("ipx", start_ipx)):
        try:
            _, port = starter(run.tmp, images)
            run.peers[name] = port
            result["peers"][name] = {"port": port}
        except Exception as error:  # recorded, and the suite carries on without this peer
            log(f"{name}: not available: {error}")
            result["peers"][name] = {"error": str(error)[-2000:]}
    for name, versions in peer_versions().items():
        result["peers"].setdefault(name, {})["versions"] = versions
    for name, port in run.peers.items():
        http_request(port, "GET", run.peer_hot[name])  # the first render, into thumbor's result storage
        status, peer_headers, body = http_request(port, "GET", run.peer_hot[name])
        result["peers"][name]["w400"] = {
            "status": status,
            "bytes": len(body),
            "content_type": peer_headers.get("content-type"),
            "etag": peer_headers.get("etag"),
        }
        if status == 200 and peer_headers.get("etag"):
            run.peer_etags[name] = peer_headers["etag"]
    result["peers"].setdefault("thumbor", {})["hot_caching"] = (
        "thumbor's file result storage: renders once, then serves the stored result"
    )
    result["peers"].setdefault("ipx", {})["hot_caching"] = (
        "none: ipx has no result cache, every request renders from the source file"
    )


def scenario_hot(run: Run) -> dict[str, Any]:
    hot: dict[str, Any] = {}
    hot["nginx"] = series(run.nginx_port, ["urls", run.urls("nginx-hot", ["/photo-400.jpg"])], label="nginx static")
    if run.ceiling_port:
        hot["granian_ceiling"] = series(
            run.ceiling_port, ["urls", run.urls("ceiling-hot", ["/photo-400.jpg"])], label="granian bare ASGI"
        )
    hot["konifer_content_entry"] = series(
        run.konifer.port, ["urls", run.urls("k-hot-a", [run.hot_a])], label="konifer /-/content/entry/0"
    )
    hot["konifer_entry_content"] = series(
        run.konifer.port, ["urls", run.urls("k-hot-b", [run.hot_b])], label="konifer /-/entry/0/content"
    )
    for name, port in run.peers.items():
        hot[name] = series(port, ["urls", run.urls(f"{name}-hot", [run.peer_hot[name]])], label=name)
    return hot


def scenario_revalidate(run: Run) -> dict[str, Any]:
    reval: dict[str, Any] = {}
    checks = {
        "nginx": (run.nginx_port, "/photo-400.jpg", run.nginx_etag),
        **({"granian_ceiling": (run.ceiling_port, "/photo-400.jpg", '"ceiling"')} if run.ceiling_port else {}),
        "konifer": (run.konifer.port, run.hot_b, run.konifer_etag),
    }
    for name, port in run.peers.items():
        if name in run.peer_etags:
            checks[name] = (port, run.peer_hot[name], run.peer_etags[name])
    for name, (port, path, etag) in checks.items():
        status, _, _ = http_request(port, "GET", path, headers={"If-None-Match": etag})
        if status != 304:
            reval[name] = {"error": f"If-None-Match {etag} answered {status}, not 304"}
            log(f"  {name}: no 304 ({status}); skipped")
            continue
        reval[name] = series(
            port, ["urls", run.urls(f"{name}-304", [path]), f"If-None-Match: {etag}"], label=f"{name} 304"
        )
    return reval


def scenario_newest(run: Run, key: str, path: str) -> dict[str, Any]:
    status, _, body = http_request(run.konifer.port, "GET", path)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
    return {"konifer": series(run.konifer.port, ["urls", run.urls(key, [path])], label=f"konifer {key}")}


def _settle(port: int, path: str, seconds: float = 60) -> None:
    """Wait until a server answers again after a run left work queued (renders of abandoned requests)."""
    deadline = time.monotonic() + seconds
    time.sleep(2)
    while time.monotonic() < deadline:
        try:
            http_request(port, "GET", path, timeout=10)
            return
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"port {port} did not answer {path} within {seconds:.0f} s after the run")


def scenario_cold(run: Run, result: dict[str, Any]) -> dict[str, Any]:
    konifer = run.konifer
    cold: dict[str, Any] = {"konifer": {}, "widths": result["config"]["cold_widths"]}
    for c in CONNECTIONS:
        entry = konifer.store(f"bench/cold-c{c}", run.photo_bytes)["entryId"]
        template = f"/assets/bench/cold-c{c}/-/entry/{entry}/content?w={{w}}"
        cold["konifer"][str(c)] = wrk(
            konifer.port,
            c,
            DURATION,
            ["cold", template, str(COLD_LOW), str(COLD_SPAN), str(min(c, 2))],
            label="konifer cold",
        )
        konifer.ensure_ready(f"cold renders at {c} connections")
    for name, port in run.peers.items():
        runs = {}
        for c in CONNECTIONS:
            template = f"/unsafe/{{w}}x0/cold-c{c}.jpg" if name == "thumbor" else f"/w_{{w}}/cold-c{c}.jpg"
            runs[str(c)] = wrk(
                port,
                c,
                DURATION,
                ["cold", template, str(COLD_LOW), str(COLD_SPAN), str(min(c, 2))],
                label=f"{name} cold",
            )
            _settle(port, run.peer_hot[name])
        cold[name] = runs
    # The goal's figure: server and in-process renders interleaved, width by width, on a fresh copy.
    entry = konifer.store("bench/cold-paired", run.photo_bytes)["entryId"]
    log("paired: konifer-edge and pyvips in-process, interleaved over 40 fresh widths")
    template = f"/assets/bench/cold-paired/-/entry/{entry}/content?w={{w}}"
    widths = ",".join(map(str, cold_widths(40)))
    paired = subprocess.run(
        [
            str(VENV_PYTHON),
            str(BENCH / "pyvips_ref.py"),
            str(run.photo),
            widths,
            "--paired",
            str(konifer.port),
            template,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=REFERENCE_ENV,
    )
    if paired.returncode != 0:
        cold["paired"] = {"error": (paired.stdout + paired.stderr)[-2000:]}
    else:
        cold["paired"] = json.loads(paired.stdout)["paired"]
        log(
            f"  paired: konifer-edge {cold['paired']['server_median_ms']:.1f} ms, pyvips "
            f"{cold['paired']['pyvips_median_ms']:.1f} ms per render ({cold['paired']['ratio_of_medians']:.2f}x)"
        )
    renders = max(20, min(300, cold["konifer"]["1"]["requests"]))
    reference_widths = cold_widths(renders)
    log(f"pyvips in-process reference over the same {renders} widths")
    completed = subprocess.run(
        [str(VENV_PYTHON), str(BENCH / "pyvips_ref.py"), str(run.photo), ",".join(map(str, reference_widths))],
        capture_output=True,
        text=True,
        timeout=900,
        env=REFERENCE_ENV,
    )
    if completed.returncode != 0:
        cold["pyvips_in_process"] = {"error": completed.stderr[-2000:]}
    else:
        cold["pyvips_in_process"] = json.loads(completed.stdout)
        ref = cold["pyvips_in_process"]
        log(
            f"  pyvips median {ref['jpegsave_q80']['median_ms']:.1f} ms per render "
            f"(with optimize_coding {ref['jpegsave_q80_optimize_coding']['median_ms']:.1f} ms)"
        )
    return cold


def scenario_store(run: Run) -> dict[str, Any]:
    body, content_type = multipart({"alt": "bench store"}, "photo.jpg", run.photo_bytes)
    body_file = run.tmp / "store-body.bin"
    body_file.write_bytes(body)
    status, _, answer = http_request(
        run.konifer.port, "POST", "/assets/bench/stores/check", body=body, headers={"Content-Type": content_type}
    )
    if status != 201:
        raise RuntimeError(f"store answered {status}: {answer[:200]!r}")
    runs = {
        str(c): wrk(
            run.konifer.port,
            c,
            DURATION,
            ["post", str(body_file), content_type, f"/assets/bench/stores/c{c}"],
            label="konifer store",
        )
        for c in CONNECTIONS
    }
    return {"konifer": runs, "body_bytes": len(body)}


def guarded(result: dict[str, Any], name: str, action: Callable[[], Any]) -> Any:
    """Run one scenario; a failure is recorded in the results and the suite goes on."""
    try:
        return action()
    except Exception as error:
        log(f"{name}: FAILED: {error!r}")
        result["failures"].append({"scenario": name, "error": repr(error)[-3000:]})
        return None


def main() -> int:
    global SAMPLER, POSTMASTER
    started_wall = dt.datetime.now()
    run_id = started_wall.strftime("%Y%m%d-%H%M%S")
    tmp = BENCH / "tmp" / run_id
    tmp.mkdir(parents=True)
    (tmp / "xdg").mkdir(mode=0o700)
    RESULTS.mkdir(exist_ok=True)
    prefix = f"{started_wall:%Y-%m-%d}-{socket.gethostname()}"
    result: dict[str, Any] = {
        "schema": 1,
        "date": f"{started_wall:%Y-%m-%d}",
        "started_at": started_wall.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {
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
        },
        "peers": {},
        "scenarios": {},
        "failures": [],
        "profiles": [],
    }
    suite_started = time.monotonic()
    log(f"run {run_id}: {result['machine']['cpu_model']}, {CORES} cores, load {result['machine']['loadavg_at_start']}")

    images = tmp / "images"
    photo = make_photo(images / "photo.jpg")
    result["photo"] = {"width": 3000, "height": 2000, "bytes": photo.stat().st_size, "quality": 90}
    log(f"photo: {photo} ({photo.stat().st_size:,} bytes)")
    for c in CONNECTIONS:  # fresh sources for the peers' cold runs, so no result cache can answer them
        shutil.copy(photo, images / f"cold-c{c}.jpg")

    konifer = Konifer(tmp)
    POSTMASTER = konifer.postmaster_pid
    SAMPLER = RssSampler(lambda: konifer.service.pid, konifer.postmaster_pid)
    SAMPLER.start()
    run = Run(tmp, photo, konifer)
    scenarios = result["scenarios"]
    try:
        prepare(run, result)
        steps: list[tuple[str, str, Callable[[], Any]]] = [
            ("hot", "scenario 1: hot cached variant", lambda: scenario_hot(run)),
            ("revalidate", "scenario 2: revalidation (If-None-Match -> 304)", lambda: scenario_revalidate(run)),
            (
                "newest_metadata",
                "scenario 3: metadata of the newest asset at a path",
                lambda: scenario_newest(run, "newest_metadata", "/assets/bench/photo/-/metadata"),
            ),
            (
                "newest_link",
                "scenario 3: link of the newest asset at a path",
                lambda: scenario_newest(run, "newest_link", "/assets/bench/photo"),
            ),
            ("cold", "scenario 4: cold renders of distinct widths", lambda: scenario_cold(run, result)),
            ("store", "scenario 5: stores (multipart POST of a 1 MB JPEG)", lambda: scenario_store(run)),
            (
                "scale",
                "scale: newest metadata as the asset table grows",
                lambda: scale_scenario(konifer, tmp, run.photo_bytes),
            ),
        ]
        for key, title, action in steps:
            if not want(key.split("_")[0]):
                continue
            log(title)
            outcome = guarded(result, key, action)
            if outcome is not None:
                scenarios[key] = outcome
            konifer.ensure_ready(key)

        result["goals"] = evaluate_goals({**scenarios, "peers": result["peers"]})
        for goal in result["goals"]:
            verdict = {True: "pass", False: "MISS", None: "n/a"}[goal["pass"]]
            log(f"goal {verdict:<4} {goal['goal']}: {goal['measured']} ({goal['margin']})")
        if PROFILE:
            profile_missed(run, result, prefix)
    finally:
        SAMPLER.stop()
        konifer.stop()
        stop_all()

    result["incidents"] = konifer.incidents
    result["memory"] = {
        "konifer_tree_peak_rss_mb": SAMPLER.peak_mb(),
        "postgres_peak_pss_mb": round(max((s[2] for s in SAMPLER.samples), default=0) / 1024, 1),
        "samples": len(SAMPLER.samples),
        "timeline": _timeline(SAMPLER.samples),
    }
    result["machine"]["loadavg_at_end"] = _loadavg()
    result["elapsed_s"] = round(time.monotonic() - suite_started, 1)

    json_path = RESULTS / f"{prefix}.json"
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    png_path = RESULTS / f"{prefix}.png"
    chart = subprocess.run(
        [str(TOOLS / "bin" / "python"), str(BENCH / "chart.py"), str(json_path), str(png_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if chart.returncode != 0:
        log(f"chart failed: {chart.stderr[-1500:]}")
    table = markdown(result)
    (RESULTS / f"{prefix}.md").write_text(table)
    print()
    print(table)
    log(
        f"wrote {json_path.relative_to(REPO)}, {png_path.relative_to(REPO)}, "
        f"{(RESULTS / f'{prefix}.md').relative_to(REPO)} in {result['elapsed_s']:.0f} s"
    )
    if os.environ.get("BENCH_KEEP_TMP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def profile_missed(run: Run, result: dict[str, Any], prefix: str) -> None:
    """py-spy of the server under each scenario whose goal was missed, 32 connections, 10 s."""
    konifer = run.konifer
    missed: list[str] = []
    for goal in result["goals"]:
        if goal["pass"] is False and goal["profile_scenario"] and goal["profile_scenario"] not in missed:
            missed.append(goal["profile_scenario"])
    for name in missed:
        try:
            if name == "cold":
                entry = konifer.store("bench/cold-profile", run.photo_bytes)["entryId"]
                mode = [
                    "cold",
                    f"/assets/bench/cold-profile/-/entry/{entry}/content?w={{w}}",
                    str(COLD_LOW),
                    str(COLD_SPAN),
                    "2",
                ]
            elif name == "revalidate":
                mode = ["urls", run.urls("p-304", [run.hot_b]), f"If-None-Match: {run.konifer_etag}"]
            elif name == "newest_metadata":
                mode = ["urls", run.urls("p-meta", ["/assets/bench/photo/-/metadata"])]
            else:
                mode = ["urls", run.urls("p-hot", [run.hot_b])]
            # Cold renders at 32 connections can wedge the server (see the incidents), so they are profiled at 8.
            connections = 8 if name == "cold" else 32
            log(f"profiling konifer-edge under '{name}' (py-spy, 10 s, {connections} connections)")
            result["profiles"].append(profile(konifer, name, mode, prefix, connections))
            konifer.ensure_ready(f"profile {name}")
        except Exception as error:
            result["profiles"].append({"scenario": name, "error": repr(error)[-2000:]})


def _timeline(samples: list[tuple[float, int, int]]) -> list[list[float]]:
    """The RSS samples thinned to at most ~600 points: [seconds since start, tree MB, postgres MB]."""
    if not samples:
        return []
    t0 = samples[0][0]
    step = max(1, len(samples) // 600)
    return [[round(t - t0, 1), round(rss / 1024, 1), round(pg / 1024, 1)] for t, rss, pg in samples[::step]]


def _on_signal(signum: int, _frame: object) -> None:
    stop_all()
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        raise SystemExit(main())
    finally:
        stop_all()
