"""`konifer-edge sweep`: what it asks of the operator and what it prints (the sweep itself is
services/sweep.py): a progress line on stderr, then one line per object and a summary per bucket."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from konifer_edge.cli.common import config_from_env, database, load_or_exit

if TYPE_CHECKING:
    from konifer_edge.services.sweep import SweepReport
    from konifer_edge.storage.object_store import ListedObject, ObjectStore


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sweep`` on the main parser's sub-commands."""
    sweep_parser = commands.add_parser(
        "sweep", help="remove objects no variant references (orphans) and retry queued object removals now"
    )
    sweep_parser.add_argument("--data-dir", type=Path, default=Path("data"))
    sweep_parser.add_argument("--config", type=Path, default=config_from_env(), help="as serve's")
    sweep_parser.add_argument(
        "--bucket", action="append", dest="buckets", metavar="BUCKET", help="repeatable (default: every configured one)"
    )
    sweep_parser.add_argument(
        "--min-age", type=_min_age, default="1h", help="keep orphans younger than this, e.g. 30m (default 1h)"
    )
    sweep_parser.add_argument("--dry-run", action="store_true", help="report, remove nothing")
    sweep_parser.set_defaults(handler=sweep_command)


def _min_age(text: str) -> timedelta:
    from konifer_edge.config.decode import parse_duration

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def sweep_command(args: argparse.Namespace) -> int:
    """Remove objects no variant row references; retry queued object removals now."""
    from konifer_edge.app import configured_buckets, object_store_for
    from konifer_edge.services.sweep import refusal

    config = load_or_exit(args.config)
    refused = refusal(config)
    if refused is not None:
        print(f"sweep: {refused}", file=sys.stderr)
        return 2
    data_dir: Path = args.data_dir.resolve()
    buckets = sorted(set(args.buckets or configured_buckets(config)))
    dsn, _embedded = database(config, data_dir)  # the embedded server, if any, runs until we return
    objects = object_store_for(config, data_dir)
    return run(dsn, objects, buckets, min_age=args.min_age, dry_run=args.dry_run)


def run(
    dsn: str,
    objects: ObjectStore,
    buckets: Sequence[str],
    *,
    min_age: timedelta,
    dry_run: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Sweep and print: 0 when all went well, 1 when an object could not be removed or a bucket listed."""
    import asyncpg

    from konifer_edge.services.sweep import SweepError, sweep

    progress = TextProgress(err, live=err.isatty())
    try:
        report = asyncio.run(sweep(dsn, objects, buckets, min_age=min_age, dry_run=dry_run, progress=progress))
    except SweepError as error:
        progress.finish()
        print(f"sweep: {error}", file=err)
        return 2
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        progress.finish()
        print(f"sweep: cannot use the database: {type(error).__name__}: {error}", file=err)
        return 2
    finally:
        progress.finish()
    for line in format_report(report):
        print(line, file=out)
    return 0 if report.ok else 1


class TextProgress:
    """A one-line progress bar on a terminal; one summary line per phase anywhere else.

    On a terminal the line is redrawn in place (at most ten times a second). Written to a file or
    a pipe, carriage returns would only clutter the log, so each phase prints its final count.
    """

    _WIDTH = 30
    _INTERVAL = 0.1

    def __init__(self, stream: TextIO, *, live: bool) -> None:
        self._stream = stream
        self._live = live
        self._label = ""
        self._total: int | None = None
        self._done = 0
        self._drawn_at = 0.0
        self._active = False

    def start(self, label: str, total: int | None) -> None:
        self.finish()
        self._label, self._total, self._done, self._active = label, total, 0, True
        self._draw(force=True)

    def advance(self, count: int = 1) -> None:
        self._done += count
        self._draw(force=False)

    def finish(self) -> None:
        if not self._active:
            return
        self._active = False
        if self._live:
            self._draw(force=True)
            self._stream.write("\n")
        else:
            self._stream.write(self._line() + "\n")
        self._stream.flush()

    def _line(self) -> str:
        if self._total is None:
            return f"{self._label}: {self._done}"
        total = max(self._total, 1)
        filled = min(self._WIDTH, self._WIDTH * self._done // total)
        bar = "#" * filled + "." * (self._WIDTH - filled)
        percent = min(100, 100 * self._done // total)
        return f"{self._label} [{bar}] {percent:3d}% {self._done}/{self._total}"

    def _draw(self, *, force: bool) -> None:
        if not self._live:
            return
        now = time.monotonic()
        if not force and now - self._drawn_at < self._INTERVAL:
            return
        self._drawn_at = now
        self._stream.write("\r\x1b[2K" + self._line())
        self._stream.flush()


def _describe(item: ListedObject) -> str:
    return f"{item.size} bytes, modified {item.last_modified:%Y-%m-%dT%H:%M:%SZ}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % length == 0:
            return f"{seconds // length}{unit}"
    return f"{seconds}s"


def format_report(report: SweepReport) -> Iterable[str]:
    """The lines `sweep` prints: one per object it removed, would remove or left, then a summary."""
    dry = report.dry_run
    pending = report.pending
    if dry:
        yield f"queued removals: {pending.queued} would be retried now"
    else:
        for bucket_name, key, error in pending.failures:
            yield f"failed   {bucket_name}/{key}: {error}"
        yield f"queued removals: {pending.queued} retried, {pending.removed} removed, {len(pending.failures)} failed"
    for bucket in report.buckets:
        if bucket.error is not None:
            yield f"bucket {bucket.bucket}: {bucket.error}"
            continue
        for item in bucket.young:
            yield f"young    {bucket.bucket}/{item.key} ({_describe(item)}): kept, may belong to a store in flight"
        verb = "orphan  " if dry or bucket.refused else "removed "
        failed = {item.key for item, _ in bucket.failures}
        for item in bucket.orphans:
            if item.key not in failed:
                yield f"{verb} {bucket.bucket}/{item.key} ({_describe(item)})"
        for item, error in bucket.failures:
            yield f"failed   {bucket.bucket}/{item.key}: {error}"
        summary = (
            f"bucket {bucket.bucket}: {_count(bucket.listed, 'object')}, {bucket.referenced} referenced,"
            f" {bucket.queued} queued for removal, {len(bucket.young)} younger than {_duration(report.min_age)},"
            f" {_count(len(bucket.orphans), 'orphan')}"
        )
        if bucket.refused is not None:
            summary += f"; refused: {bucket.refused}"
        elif dry:
            summary += " (dry run: nothing removed)"
        else:
            summary += f": {bucket.removed} removed, {len(bucket.failures)} failed"
        yield summary
