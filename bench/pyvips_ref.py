"""The in-process reference for cold renders: pyvips doing the render work with no server around it.

For each width: thumbnail_buffer(photo bytes, width) then jpegsave_buffer(Q=80), timed one at a
time, like a server rendering one request after another. Each width is also encoded with
optimize_coding=True, the option konifer-edge's JPEG encoder uses (alternating which of the two goes
first), so the cost of that option can be told apart from the cost of the server. Run with the same
interpreter (so the same pyvips and libvips) as the server. Prints one JSON object.

Usage: pyvips_ref.py PHOTO WIDTH[,WIDTH...]
       pyvips_ref.py PHOTO WIDTH[,WIDTH...] --paired PORT TEMPLATE

With --paired, each width is rendered twice, back to back in alternating order: once by the server
(GET TEMPLATE with "{w}" replaced, on one keep-alive connection, each width never asked before) and
once in-process. Both see the same moment's machine, so drifting load from other processes cancels
out of the ratio; this is the figure the cold-render goal is judged on.
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


def _paired(source: bytes, widths: list[int], port: int, template: str) -> dict[str, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    server: list[float] = []
    local: list[float] = []
    for index, width in enumerate(widths):
        steps = ["server", "local"] if index % 2 == 0 else ["local", "server"]
        for step in steps:
            start = time.perf_counter()
            if step == "server":
                connection.request("GET", template.replace("{w}", str(width)))
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"the server answered {response.status} for width {width}")
                server.append((time.perf_counter() - start) * 1000)
            else:
                _render(source, width)
                local.append((time.perf_counter() - start) * 1000)
    connection.close()
    ratios = [a / b for a, b in zip(server, local, strict=True)]
    return {
        "renders": len(widths),
        "server_median_ms": round(statistics.median(server), 3),
        "pyvips_median_ms": round(statistics.median(local), 3),
        "ratio_of_medians": round(statistics.median(server) / statistics.median(local), 3),
        "median_of_pair_ratios": round(statistics.median(ratios), 3),
        "server_ms": [round(t, 3) for t in server],
        "pyvips_ms": [round(t, 3) for t in local],
    }


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
        result["paired"] = _paired(source, widths, int(sys.argv[at + 1]), sys.argv[at + 2])
    else:
        plain, optimized = _timed_pair(source, widths)
        result["jpegsave_q80"] = _summary(plain)
        result["jpegsave_q80_optimize_coding"] = _summary(optimized)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
