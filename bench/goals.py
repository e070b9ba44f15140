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


def _newest_metadata(s: dict[str, Any], nginx32: float | None) -> dict[str, Any]:
    m32 = _at(s.get("newest_metadata", {}).get("konifer"), 32, "req_s")
    if m32 is None or nginx32 is None:
        return _goal("newest-metadata", "metadata of the newest asset >= 0.4x nginx req/s")
    ratio, measured = _share_of_nginx(m32, nginx32)
    return _goal(
        "newest-metadata",
        "metadata of the newest asset >= 0.4x nginx req/s (32 connections)",
        measured,
        ">= 0.4x",
        ratio >= 0.4,
        f"at {ratio / 0.4:.1%} of target",
        "newest_metadata",
    )


def _cold_render(s: dict[str, Any]) -> dict[str, Any]:
    """From the interleaved pairs when there are some, else from wrk's p50 at 1 connection against the
    reference measured on its own."""
    cold = s.get("cold", {})
    paired = cold.get("paired", {})
    reference = cold.get("pyvips_in_process", {}).get("jpegsave_q80", {}).get("median_ms")
    k_p50 = _at(cold.get("konifer"), 1, "p50_ms")
    if paired.get("server_median_ms"):
        ratio = paired["ratio_of_medians"]
        unpaired = f"; unpaired, wrk p50 {k_p50:.1f} ms vs {reference:.1f} ms" if k_p50 and reference else ""
        how = "interleaved with the server's"
        measured = (
            f"{paired['server_median_ms']:.1f} ms vs pyvips {paired['pyvips_median_ms']:.1f} ms ({ratio:.2f}x; "
            f"median of per-width ratios {paired['median_of_pair_ratios']:.2f}x){unpaired}"
        )
    elif reference and k_p50 is not None:
        ratio = k_p50 / reference
        how = "1 connection"
        measured = f"{k_p50:.1f} ms vs pyvips {reference:.1f} ms ({ratio:.2f}x)"
    else:
        return _goal("cold-render", "cold render <= 1.3x pyvips in-process")
    return _goal(
        "cold-render",
        f"cold render <= 1.3x pyvips in-process (median per render, {how})",
        measured,
        "<= 1.3x",
        ratio <= 1.3,
        f"{ratio / 1.3 - 1:+.1%} vs the limit",
        "cold",
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
        _newest_metadata(s, nginx32),
        _cold_render(s),
        *(_ahead_of(s, peer) for peer in ("thumbor", "ipx")),
        *(_scale(s["scale"]) if s.get("scale") else []),
    ]
