"""The scenarios: what the servers share (the Run), the preparation, and one function per scenario that
returns its figures (see bench/README.md for what each one measures). The scale scenario is in scale.py."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from konifer import Konifer
from load import series, url_file, wrk
from peers import CEILINGS, peer_versions, start_ceiling, start_ipx, start_nginx, start_thumbor
from processes import http_request, multipart
from settings import (
    BENCH,
    COLD_LOW,
    COLD_SPAN,
    CONNECTIONS,
    CORES,
    DURATION,
    KONIFER_WORKERS,
    REFERENCE_ENV,
    VENV_PYTHON,
    cold_widths,
    log,
)


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
        self.ceiling_ports: dict[str, int] = {}

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
    for name, (interface, _, _) in CEILINGS.items():
        try:
            _, run.ceiling_ports[name] = start_ceiling(run.tmp, static, name)
            result["peers"][name] = {
                "serves": f"the same bytes from memory: a bare {interface.upper()} app on Granian with "
                "konifer-edge's workers, no framework, database or logging (bench/ceiling_*.py)",
                "workers": KONIFER_WORKERS,
            }
        except Exception as error:
            log(f"{name}: not available: {error}")
            result["peers"][name] = {"error": str(error)[-2000:]}
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
    for name, port in run.ceiling_ports.items():
        hot[name] = series(
            port, ["urls", run.urls(f"{name}-hot", ["/photo-400.jpg"])], label=f"granian {CEILINGS[name][2]}"
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
        **{name: (port, "/photo-400.jpg", '"ceiling"') for name, port in run.ceiling_ports.items()},
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
    # The goals' figures: the server, each peer and pyvips in-process in turns, width by width, each width
    # the first request of its variant everywhere (the peers read their own fresh copy, cold-paired.jpg).
    entry = konifer.store("bench/cold-paired", run.photo_bytes)["entryId"]
    log(f"paired: konifer-edge, {', '.join(run.peers) or 'no peers'} and pyvips in-process, in turns over 40 widths")
    template = f"/assets/bench/cold-paired/-/entry/{entry}/content?w={{w}}"
    widths = ",".join(map(str, cold_widths(40)))
    peer_templates = {"thumbor": "/unsafe/{w}x0/cold-paired.jpg", "ipx": "/w_{w}/cold-paired.jpg"}
    peer_args = [arg for name, port in run.peers.items() for arg in ("--peer", name, str(port), peer_templates[name])]
    paired = subprocess.run(
        [
            str(VENV_PYTHON),
            str(BENCH / "pyvips_ref.py"),
            str(run.photo),
            widths,
            "--paired",
            str(konifer.port),
            template,
            *peer_args,
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
        pairs = cold["paired"]
        log(
            f"  paired: konifer-edge {pairs['server_median_ms']:.1f} ms, pyvips {pairs['pyvips_median_ms']:.1f} ms "
            f"per render (median of per-width ratios {pairs['median_of_pair_ratios']:.2f}x)"
            + "".join(
                f", {name} {peer['median_ms']:.1f} ms ({peer['median_of_pair_ratios']:.2f}x)"
                for name, peer in pairs.get("peers", {}).items()
            )
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
