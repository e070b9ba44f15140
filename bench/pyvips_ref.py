"""The in-process reference for cold renders: pyvips doing the render work with no server around it.

For each width: thumbnail_buffer(photo bytes, width) then jpegsave_buffer(Q=80), timed one at a
time, like a server rendering one request after another. Each width is also encoded with
optimize_coding=True, the option konifer-edge's JPEG encoder uses (alternating which of the two goes
first), so the cost of that option can be told apart from the cost of the server. Run with the same
interpreter (so the same pyvips and libvips) as the server. Prints one JSON object.

Usage: pyvips_ref.py PHOTO WIDTH[,WIDTH...]
       pyvips_ref.py PHOTO WIDTH[,WIDTH...] --paired PORT TEMPLATE [--peer NAME PORT TEMPLATE]...

With --paired, each width is rendered by every participant in turn: by the server (GET TEMPLATE with "{w}"
replaced, on one keep-alive connection, each width never asked before), by each --peer the same way, and
in-process twice: encoded as konifer-edge encodes (Q=80 with optimize_coding) and with Q=80 alone.
The order rotates from width to width. All of them see the same moment's machine, so drifting
load from other processes cancels out of the per-width ratios; these are the figures the cold goals are
judged on.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
from pathlib import Path

import pyvips


def _render(source: bytes, width: int, **save: object) -> int:
    return len(pyvips.Image.thumbnail_buffer(source, width).jpegsave_buffer(Q=80, **save))


def _timed_pair(source: bytes, widths: list[int]) -> tuple[list[float], list[float]]:
    """Both encodings per width, alternating which goes first, so drift in the machine's load hits both alike."""
    plain: list[float] = []
    optimized: list[float] = []
    for index, width in enumerate(widths):
        order = [(plain, {}), (optimized, {"optimize_coding": True})]
        if index % 2:
            order.reverse()
        for times, save in order:
            start = time.perf_counter()
            _render(source, width, **save)
            times.append((time.perf_counter() - start) * 1000)
    return plain, optimized


def _summary(times: list[float]) -> dict[str, object]:
    ordered = sorted(times)
    return {
        "renders": len(times),
        "median_ms": round(statistics.median(times), 3),
        "mean_ms": round(statistics.fmean(times), 3),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], 3),
        "min_ms": round(ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
        "per_render_ms": [round(t, 3) for t in times],
    }


def _fetch(connection: http.client.HTTPConnection, name: str, path: str) -> None:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise SystemExit(f"{name} answered {response.status} for {path}")


def _paired(source: bytes, widths: list[int], servers: list[tuple[str, int, str]]) -> dict[str, object]:
    """`servers` is the server under test first, then the peers: (name, port, template)."""
    connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=120) for name, port, _ in servers}
    templates = {name: template for name, _, template in servers}
    # "pyvips" encodes as konifer-edge does (optimize_coding, as sharp and thumbor do too): the same work.
    # "pyvips_plain" is jpegsave at Q=80 alone, the reference as first written, reported beside it.
    local_work: dict[str, dict[str, object]] = {"pyvips": {"optimize_coding": True}, "pyvips_plain": {}}
    participants = [name for name, _, _ in servers] + list(local_work)
    times: dict[str, list[float]] = {name: [] for name in participants}
    for index, width in enumerate(widths):
        shift = index % len(participants)
        for name in participants[shift:] + participants[:shift]:
            start = time.perf_counter()
            if name in local_work:
                _render(source, width, **local_work[name])
            else:
                _fetch(connections[name], name, templates[name].replace("{w}", str(width)))
            times[name].append((time.perf_counter() - start) * 1000)
    for connection in connections.values():
        connection.close()
    server = times[servers[0][0]]
    local = times["pyvips"]
    result: dict[str, object] = {
        "renders": len(widths),
        "server_median_ms": round(statistics.median(server), 3),
        "pyvips_median_ms": round(statistics.median(local), 3),
        "ratio_of_medians": round(statistics.median(server) / statistics.median(local), 3),
        "median_of_pair_ratios": round(statistics.median(a / b for a, b in zip(server, local, strict=True)), 3),
        "server_ms": [round(t, 3) for t in server],
        "pyvips_ms": [round(t, 3) for t in local],
        "pyvips_encoding": "Q=80, optimize_coding (as konifer-edge encodes)",
        "plain": {
            "encoding": "Q=80",
            "median_ms": round(statistics.median(times["pyvips_plain"]), 3),
            "median_of_pair_ratios": round(
                statistics.median(a / b for a, b in zip(server, times["pyvips_plain"], strict=True)), 3
            ),
        },
        "order": "rotating: " + ", ".join(participants),
        "peers": {},
    }
    for name, _, _ in servers[1:]:
        theirs = times[name]
        result["peers"][name] = {  # type: ignore[index]
            "median_ms": round(statistics.median(theirs), 3),
            "median_of_pair_ratios": round(statistics.median(a / b for a, b in zip(server, theirs, strict=True)), 3),
            "ms": [round(t, 3) for t in theirs],
        }
    return result


def main() -> None:
    source = Path(sys.argv[1]).read_bytes()
    widths = [int(w) for w in sys.argv[2].split(",")]
    # The server's libvips runs without the operation cache; so does the reference.
    pyvips.cache_set_max(0)
    for width in widths[:2]:  # warm up: load the codecs and size the thread pool once
        _render(source, width)
    result: dict[str, object] = {
        "pyvips": pyvips.__version__,
        "libvips": f"{pyvips.version(0)}.{pyvips.version(1)}.{pyvips.version(2)}",
        "concurrency": pyvips.concurrency_get() if hasattr(pyvips, "concurrency_get") else None,
        "widths": widths,
    }
    if "--paired" in sys.argv:
        at = sys.argv.index("--paired")
        servers = [("konifer", int(sys.argv[at + 1]), sys.argv[at + 2])]
        servers += [
            (sys.argv[i + 1], int(sys.argv[i + 2]), sys.argv[i + 3])
            for i, arg in enumerate(sys.argv)
            if arg == "--peer"
        ]
        result["paired"] = _paired(source, widths, servers)
    else:
        plain, optimized = _timed_pair(source, widths)
        result["jpegsave_q80"] = _summary(plain)
        result["jpegsave_q80_optimize_coding"] = _summary(optimized)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
