"""Draws the PNG chart of one suite result. Runs in bench/.venvs/tools (matplotlib).

Usage: chart.py RESULT.json OUT.png
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

CONNECTIONS = ("1", "8", "32")
COLOURS = {
    "nginx": "#7f7f7f",
    "granian_ceiling": "#bcbd22",
    "granian_rsgi_ceiling": "#dbdb8d",
    "konifer": "#2b7a3d",
    "konifer_content_entry": "#2b7a3d",
    "konifer_entry_content": "#74c476",
    "thumbor": "#3182bd",
    "ipx": "#e6550d",
}
LABELS = {
    "nginx": "nginx static",
    "granian_ceiling": "bare ASGI on Granian",
    "granian_rsgi_ceiling": "bare RSGI on Granian",
    "konifer": "konifer-edge",
    "konifer_content_entry": "konifer /-/content/entry/0",
    "konifer_entry_content": "konifer /-/entry/0/content",
    "thumbor": "thumbor",
    "ipx": "ipx",
}


def _bars(ax, block: dict, title: str, metric: str = "req_s", log: bool = True) -> None:
    servers = [s for s, runs in block.items() if isinstance(runs, dict) and "1" in runs]
    if not servers:
        ax.set_visible(False)
        return
    width = 0.8 / len(servers)
    for i, server in enumerate(servers):
        values = [block[server].get(c, {}).get(metric) or 0 for c in CONNECTIONS]
        xs = [j + i * width for j in range(len(CONNECTIONS))]
        ax.bar(xs, values, width, label=LABELS.get(server, server), color=COLOURS.get(server))
    ax.set_xticks([j + width * (len(servers) - 1) / 2 for j in range(len(CONNECTIONS))])
    ax.set_xticklabels([f"{c} conn" for c in CONNECTIONS])
    ax.set_title(title, fontsize=10)
    ax.set_ylabel("requests/s" if metric == "req_s" else metric.replace("_ms", " (ms)"))
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)


def main() -> None:
    result = json.loads(Path(sys.argv[1]).read_text())
    scenarios = result["scenarios"]
    fig, axes = plt.subplots(3, 3, figsize=(17, 14))
    machine = result["machine"]
    fig.suptitle(
        f"konifer-edge benchmarks {result['date']} - {machine['cpu_model']}, {machine['cores']} cores, "
        f"libvips {machine['libvips']}, {result['config']['konifer_workers']} worker(s)",
        fontsize=12,
    )
    _bars(axes[0][0], scenarios.get("hot", {}), "1. hot cached variant w=400 (req/s, log)")
    _bars(axes[0][1], scenarios.get("hot", {}), "1. hot cached variant: p99 latency (ms, log)", "p99_ms")
    _bars(axes[0][2], scenarios.get("revalidate", {}), "2. If-None-Match -> 304 (req/s, log)")

    newest = {}
    for key, label in (("newest_metadata", "metadata"), ("newest_link", "link")):
        if "konifer" in scenarios.get(key, {}):
            newest[label] = scenarios[key]["konifer"]
    if "nginx" in scenarios.get("hot", {}):
        newest["nginx static (reference)"] = scenarios["hot"]["nginx"]
    if "store" in scenarios:
        newest["store (POST 1 MB)"] = scenarios["store"]["konifer"]
    ax = axes[1][0]
    names = list(newest)
    width = 0.8 / max(1, len(names))
    for i, name in enumerate(names):
        ax.bar(
            [j + i * width for j in range(3)],
            [newest[name].get(c, {}).get("req_s") or 0 for c in CONNECTIONS],
            width,
            label=name,
        )
    ax.set_xticks([j + width * (len(names) - 1) / 2 for j in range(3)])
    ax.set_xticklabels([f"{c} conn" for c in CONNECTIONS])
    ax.set_yscale("log")
    ax.set_title("3. newest metadata / link, 5. store (konifer-edge, req/s, log)", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)

    cold = scenarios.get("cold", {})
    _bars(
        axes[1][1],
        {k: v for k, v in cold.items() if k in ("konifer", "thumbor", "ipx")},
        "4. cold renders (renders/s)",
        log=False,
    )
    ax = axes[1][2]
    labels, values, colours = [], [], []
    for server in ("konifer", "thumbor", "ipx"):
        if isinstance(cold.get(server), dict) and "1" in cold[server]:
            labels.append(LABELS[server])
            values.append(cold[server]["1"]["p50_ms"] or 0)
            colours.append(COLOURS[server])
    paired = cold.get("paired", {})
    if paired.get("server_median_ms"):
        labels.append("konifer-edge, in turns")
        values.append(paired["server_median_ms"])
        colours.append("#2b7a3d")
        for peer, block in paired.get("peers", {}).items():
            labels.append(f"{LABELS.get(peer, peer)}, in turns")
            values.append(block["median_ms"])
            colours.append(COLOURS.get(peer, "#777777"))
        labels.append("pyvips, in turns")
        values.append(paired["pyvips_median_ms"])
        colours.append("#555555")
    reference = cold.get("pyvips_in_process", {})
    if "jpegsave_q80" in reference:
        labels.append("pyvips in-process")
        values.append(reference["jpegsave_q80"]["median_ms"])
        colours.append("#555555")
        labels.append("pyvips + optimize_coding")
        values.append(reference["jpegsave_q80_optimize_coding"]["median_ms"])
        colours.append("#999999")
    if values:
        ax.barh(labels, values, color=colours)
        goal_base = paired.get("pyvips_median_ms") or reference.get("jpegsave_q80", {}).get("median_ms")
        if goal_base:
            ax.axvline(1.1 * goal_base, color="red", linestyle="--", linewidth=1, label="goal: 1.1x pyvips (in turns)")
            ax.legend(fontsize=7)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.0f} ms", va="center", fontsize=8)
    ax.set_title("4. cold render, median per render, one at a time (ms)", fontsize=10)
    ax.set_xlabel("ms")

    scale = scenarios.get("scale")
    ax = axes[2][0]
    if scale:
        levels = scale["levels"]
        styles = {"cached": "-", "uncached": "--"}
        markers = {"one_path": "o", "across_paths": "s"}
        for server, block in scale["servers"].items():
            for layout in ("one_path", "across_paths"):
                done = [n for n in levels if str(n) in block[layout]]
                ax.plot(
                    done,
                    [block[layout][str(n)]["1"]["p50_ms"] for n in done],
                    styles.get(server, "-") + markers[layout],
                    label=f"{server}, {layout.replace('_', ' ')}",
                )
            done = [n for n in levels if str(n) in block["control"]]
            ax.plot(
                done,
                [block["control"][str(n)]["1"]["p50_ms"] for n in done],
                ":",
                color="grey",
                alpha=0.6,
                label=f"{server}, control path",
            )
        ax.set_xscale("log")
        ax.set_xlabel("assets")
        ax.set_ylabel("p50 ms (1 connection)")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax.set_title("newest metadata p50 vs number of assets", fontsize=10)

    ax = axes[2][1]
    timeline = result.get("memory", {}).get("timeline", [])
    if timeline:
        ax.plot([t[0] for t in timeline], [t[1] for t in timeline], label="konifer-edge tree RSS")
        ax.plot([t[0] for t in timeline], [t[2] for t in timeline], label="embedded PostgreSQL PSS")
        ax.set_xlabel("seconds into the run")
        ax.set_ylabel("MB")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax.set_title(
        f"memory (peak tree RSS {result.get('memory', {}).get('konifer_tree_peak_rss_mb', 0):.0f} MB)", fontsize=10
    )

    ax = axes[2][2]
    ax.axis("off")
    lines = []
    for goal in result.get("goals", []):
        mark = {True: "PASS", False: "MISS", None: "n/a"}[goal["pass"]]
        wrapped = textwrap.wrap(goal["goal"], 62)
        lines.append(f"{mark}  {wrapped[0]}")
        lines.extend(f"      {rest}" for rest in wrapped[1:])
    ax.text(0, 1, "Goals\n\n" + "\n".join(lines), va="top", family="monospace", fontsize=7.5, wrap=True)

    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(sys.argv[2], dpi=90)


if __name__ == "__main__":
    main()
