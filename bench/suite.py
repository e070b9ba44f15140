"""The konifer-edge benchmark suite. Run it through bench/run.sh, which installs what it needs.

Starts konifer-edge, nginx, thumbor and ipx on 127.0.0.1, drives them with wrk, and writes
bench/results/<date>-<host>.json, .png and .md. Every figure in those files comes from this run.
See bench/README.md for what each scenario measures.

Environment knobs (all optional):
  BENCH_DURATION=8          seconds per wrk run (1, 8 and 32 connections each)
  BENCH_WARMUP=2            seconds of warm-up load before each series
  BENCH_SCALE_DURATION=5    seconds per wrk run in the scale scenario
  BENCH_SCALE_1M=0          skip the 1,000,000-asset level (saves ~3-5 minutes)
  BENCH_KONIFER_WORKERS=N   konifer-edge --workers (default: the number of cores)
  BENCH_PROFILE=0           skip the py-spy profiles of missed goals
  BENCH_KEEP_TMP=1          keep bench/tmp/<run> (data directories, logs) after the run
  BENCH_ONLY=hot,cold       run only these scenarios (for trying the suite out; goals need all)

The parts, one module each: settings.py (paths and knobs), processes.py (starting and stopping servers, plain
HTTP), machine.py (the machine, memory and other load), load.py (wrk), konifer.py and peers.py (the servers
measured), scenarios.py and scale.py (what is measured), goals.py (pass or miss), profiles.py (py-spy of the
missed goals) and report.py (the files written). This module runs them in order.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import machine
import settings
from goals import evaluate_goals
from konifer import Konifer
from photo import make_photo
from processes import stop_all
from profiles import profile_missed
from report import write
from scale import scale_scenario
from scenarios import Run, prepare, scenario_cold, scenario_hot, scenario_newest, scenario_revalidate, scenario_store
from settings import BENCH, CONNECTIONS, CORES, PROFILE, RESULTS, log, want


def guarded(result: dict[str, Any], name: str, action: Callable[[], Any]) -> Any:
    """Run one scenario; a failure is recorded in the results and the suite goes on."""
    try:
        return action()
    except Exception as error:
        log(f"{name}: FAILED: {error!r}")
        result["failures"].append({"scenario": name, "error": repr(error)[-3000:]})
        return None


def main() -> int:
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
        "machine": machine.machine_info(),
        "config": settings.described(),
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
    for name in [*(f"cold-c{c}" for c in CONNECTIONS), "cold-paired"]:
        shutil.copy(photo, images / f"{name}.jpg")  # fresh sources for the peers' cold runs: no result cache answers

    konifer = Konifer(tmp)
    sampler = machine.watch(lambda: konifer.service.pid, konifer.postmaster_pid)
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
        sampler.stop()
        konifer.stop()
        stop_all()

    result["incidents"] = konifer.incidents
    result["memory"] = sampler.memory()
    result["machine"]["loadavg_at_end"] = machine.loadavg()
    result["elapsed_s"] = round(time.monotonic() - suite_started, 1)

    write(result, prefix)
    if os.environ.get("BENCH_KEEP_TMP") != "1":
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


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
