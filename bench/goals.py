"""The goals the suite holds konifer-edge to, judged from one run's scenarios (see bench/README.md).

Each goal is one row: what was measured, the target, pass / miss / n/a (not measured) and the margin, and the
scenario to profile when it is missed.
"""

from __future__ import annotations

from typing import Any

from settings import CONNECTIONS

HOT_KEYS = ("konifer_content_entry", "konifer_entry_content")


def _at(result: dict[str, Any] | None, connections: int, key: str) -> float | None:
    if not result or str(connections) not in result:
        return None
    value = result[str(connections)].get(key)
    return None if value is None else float(value)


def _goal(
    goal_id: str,
    text: str,
    measured: str = "not measured",
    target: str = "",
    passed: bool | None = None,
    margin: str = "",
    scenario: str | None = None,
) -> dict[str, Any]:
    """One row; with the id and the text alone, a goal that this run could not measure."""
    return {
        "id": goal_id,
        "goal": text,
        "measured": measured,
        "target": target,
        "pass": passed,
        "margin": margin,
        "profile_scenario": scenario,
    }


def _share_of_nginx(rps: float, nginx: float) -> tuple[float, str]:
    ratio = rps / nginx
    return ratio, f"{rps:,.0f} req/s = {ratio:.3f}x nginx ({nginx:,.0f})"


def _hot(s: dict[str, Any], nginx32: float | None) -> list[dict[str, Any]]:
    goals = []
    hot = s.get("hot", {})
    for key, spelling in zip(HOT_KEYS, ("/-/content/entry/0", "/-/entry/0/content"), strict=True):
        rps = _at(hot.get(key), 32, "req_s")
        p99 = _at(hot.get(key), 32, "p99_ms")
        if rps is None or nginx32 is None or p99 is None:
            goals.append(
                _goal(f"hot-{key}", f"hot cached variant ({spelling}) >= 0.5x nginx req/s, p99 < 5 ms at 32 conns")
            )
            continue
        ratio, measured = _share_of_nginx(rps, nginx32)
        goals.append(
            _goal(
                f"hot-{key}",
                f"hot cached variant ({spelling}) >= 0.5x nginx req/s and p99 < 5 ms at 32 connections",
                f"{measured}; p99 {p99:.1f} ms",
                ">= 0.5x; p99 < 5 ms",
                ratio >= 0.5 and p99 < 5.0,
                f"req/s at {ratio / 0.5:.1%} of target; p99 {p99 / 5.0:.1f}x the limit",
                "hot",
            )
        )
    return goals


def _revalidate(s: dict[str, Any]) -> dict[str, Any]:
    hot = s.get("hot", {})
    hot_ref = max((h for h in (_at(hot.get(k), 32, "req_s") for k in HOT_KEYS) if h is not None), default=None)
    r32 = _at(s.get("revalidate", {}).get("konifer"), 32, "req_s")
    if r32 is None or hot_ref is None:
        return _goal("revalidate", "304 revalidation >= hot path req/s")
    ratio = r32 / hot_ref
    return _goal(
        "revalidate",
        "304 revalidation >= hot path req/s (32 connections)",
        f"{r32:,.0f} req/s vs hot {hot_ref:,.0f} ({ratio:.2f}x)",
        ">= 1.0x",
        ratio >= 1.0,
        f"{ratio - 1:+.1%}",
        "revalidate",
    )


def _newest(s: dict[str, Any], nginx32: float | None, key: str, what: str, share: float) -> dict[str, Any]:
    m32 = _at(s.get(key, {}).get("konifer"), 32, "req_s")
    goal_id = key.replace("_", "-")
    if m32 is None or nginx32 is None:
        return _goal(goal_id, f"{what} of the newest asset >= {share}x nginx req/s")
    ratio, measured = _share_of_nginx(m32, nginx32)
    return _goal(
        goal_id,
        f"{what} of the newest asset >= {share}x nginx req/s (32 connections)",
        measured,
        f">= {share}x",
        ratio >= share,
        f"at {ratio / share:.1%} of target",
        key,
    )


def _cold_render(s: dict[str, Any]) -> list[dict[str, Any]]:
    """From the paired run: every participant renders each fresh width in turns, so each width gives one
    time ratio per peer and the goals take the median of those ratios."""
    paired = s.get("cold", {}).get("paired", {})
    if not paired.get("server_median_ms"):
        return [
            _goal("cold-pyvips", "cold render <= 1.1x pyvips in-process"),
            *(_goal(f"cold-{peer}", f"cold render no slower than {peer}") for peer in ("ipx", "thumbor")),
        ]
    ratio = paired["median_of_pair_ratios"]
    plain = paired.get("plain")
    beside = (
        f"; against Q=80 alone ({plain['median_ms']:.1f} ms) {plain['median_of_pair_ratios']:.2f}x" if plain else ""
    )
    goals = [
        _goal(
            "cold-pyvips",
            "cold render <= 1.1x pyvips doing the same work in-process on the same libvips (JPEG Q=80 with "
            "optimize_coding, as konifer-edge encodes; median of per-width time ratios, in turns)",
            f"{paired['server_median_ms']:.1f} ms vs pyvips {paired['pyvips_median_ms']:.1f} ms; median of "
            f"per-width ratios {ratio:.2f}x{beside}",
            "<= 1.1x",
            ratio <= 1.1,
            f"{ratio / 1.1 - 1:+.1%} vs the limit",
            "cold",
        )
    ]
    for peer in ("ipx", "thumbor"):
        theirs = paired.get("peers", {}).get(peer)
        if not theirs:
            reason = s.get("peers", {}).get(peer, {}).get("error", "not measured")
            goals.append(_goal(f"cold-{peer}", f"cold render no slower than {peer}", str(reason)[:200]))
            continue
        peer_ratio = theirs["median_of_pair_ratios"]
        goals.append(
            _goal(
                f"cold-{peer}",
                f"cold render no slower than {peer} (median of per-width time ratios, in turns)",
                f"{paired['server_median_ms']:.1f} ms vs {peer} {theirs['median_ms']:.1f} ms; median of "
                f"per-width ratios {peer_ratio:.2f}x",
                "<= 1.0x",
                peer_ratio <= 1.0,
                f"{peer_ratio - 1:+.1%}",
                "cold",
            )
        )
    return goals


def _memory(s: dict[str, Any]) -> dict[str, Any]:
    """Memory bounded by configuration, not by load: in every scenario, quadrupling the connections (8 to 32)
    may not grow the process tree's peak RSS by more than 20%."""
    growth = []
    for key, block in s.items():
        if not isinstance(block, dict):
            continue
        for server in ("konifer", *HOT_KEYS):
            runs = block.get(server)
            if not isinstance(runs, dict):
                continue
            at8 = _at(runs, 8, "konifer_tree_peak_rss_mb")
            at32 = _at(runs, 32, "konifer_tree_peak_rss_mb")
            if at8 and at32:
                growth.append((at32 / at8, f"{key}: {at8:,.0f} -> {at32:,.0f} MB"))
    if not growth:
        return _goal("memory", "peak RSS bounded by configuration, not by load")
    worst = max(growth)
    return _goal(
        "memory",
        "peak RSS bounded by configuration, not by load (tree peak at 32 vs 8 connections, every scenario)",
        "; ".join(text for _, text in growth),
        "<= 1.2x",
        worst[0] <= 1.2,
        f"worst {worst[0]:.2f}x ({worst[1]})",
    )


def _ahead_of(s: dict[str, Any], peer: str) -> dict[str, Any]:
    comparisons = []
    for scenario, keys in (("hot", HOT_KEYS), ("revalidate", ("konifer",)), ("cold", ("konifer",))):
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
        return _goal(f"ahead-{peer}", f"ahead of {peer} on every shared scenario", str(reason)[:200])
    behind = [(sc, c, o, t) for sc, c, o, t in comparisons if o < t]
    worst = min(comparisons, key=lambda x: x[2] / x[3] if x[3] else float("inf"))
    return _goal(
        f"ahead-{peer}",
        f"ahead of {peer} on every shared scenario (req/s at 1, 8 and 32 connections)",
        "; ".join(f"{sc}@{c}: {o:,.0f} vs {t:,.0f} req/s" for sc, c, o, t in comparisons),
        "konifer >= peer everywhere",
        not behind,
        f"worst: {worst[0]}@{worst[1]} at {worst[2] / worst[3]:.2f}x the peer" if worst[3] else "",
        behind[0][0] if behind else None,
    )


def _scale(scale: dict[str, Any]) -> list[dict[str, Any]]:
    goals = []
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
            goals.append(
                _goal(
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
            )
    return goals


def evaluate_goals(s: dict[str, Any]) -> list[dict[str, Any]]:
    """Every goal, in the order of the results table; `s` is the scenarios with the peers under "peers"."""
    nginx32 = _at(s.get("hot", {}).get("nginx"), 32, "req_s")
    return [
        *_hot(s, nginx32),
        _revalidate(s),
        _newest(s, nginx32, "newest_metadata", "metadata", 0.4),
        _newest(s, nginx32, "newest_link", "link", 0.3),
        *_cold_render(s),
        *(_ahead_of(s, peer) for peer in ("thumbor", "ipx")),
        *(_scale(s["scale"]) if s.get("scale") else []),
        _memory(s),
    ]
