"""The files one run writes: the JSON of every figure, the chart (bench/chart.py) and the Markdown report
(the table of every scenario, the notes under it and the goals)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from settings import BENCH, CONNECTIONS, REPO, RESULTS, TOOLS, fmt, log

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
    "granian_rsgi_ceiling": "bare RSGI on Granian (ceiling)",
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
                    f"| {title} | {SERVER_NAMES.get(server, server)} | {c} | {fmt(r['req_s'])} | "
                    f"{fmt(r['p50_ms'], 2)} | {fmt(r['p90_ms'], 2)} | {fmt(r['p99_ms'], 2)} | "
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
            f"In turns, width by width ({paired['renders']} fresh widths, one request at a time, the order "
            f"rotating): konifer-edge {paired['server_median_ms']:.1f} ms per render (request to last byte), pyvips "
            f"in-process encoding as konifer-edge does {paired['pyvips_median_ms']:.1f} ms (median of per-width "
            f"ratios {paired['median_of_pair_ratios']:.2f}x)"
            + (
                f", pyvips with Q=80 alone {paired['plain']['median_ms']:.1f} ms "
                f"({paired['plain']['median_of_pair_ratios']:.2f}x)"
                if paired.get("plain")
                else ""
            )
            + "".join(
                f", {name} {peer['median_ms']:.1f} ms (konifer-edge / {name}, median of per-width ratios "
                f"{peer['median_of_pair_ratios']:.2f}x)"
                for name, peer in paired.get("peers", {}).items()
            )
            + ".",
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
                    f"| {level:,} | {server} | {fmt(one['1']['p50_ms'], 2)} | {fmt(one['1']['p99_ms'], 2)} | "
                    f"{one['8']['req_s']:,.0f} | {fmt(many['1']['p50_ms'], 2)} | {fmt(many['1']['p99_ms'], 2)} | "
                    f"{many['8']['req_s']:,.0f} | {fmt(block['control'][str(level)]['1']['p50_ms'], 2)} |"
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


def write(result: dict[str, Any], prefix: str) -> None:
    """bench/results/<prefix>.json, .png and .md; the report is printed too."""
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
