"""Decode processes: the first full look at client bytes happens where a crash costs one upload.

A damaged image can crash a native decoder inside libvips (the upload fuzzer found such crashes,
rare and timing-dependent). In the server worker that ends the process and every request in flight
on it. Here it ends one decode process: the upload is answered 400 `undecodable_image`, the crash
is logged and counted, and a fresh process takes the dead one's place.

The processes are pebble's ProcessPool. It knows which task a dead process was running, so only that
task fails (ProcessExpired); concurrent.futures' ProcessPoolExecutor instead breaks as a whole on
one crash and fails every task in it. Cancelling a running pebble task terminates its process, so a
decode that outlasts `render-timeout` is stopped rather than left holding a core. The processes are
reused across uploads (a small upload's round trip costs a few milliseconds; a process per upload
would cost a fork and pebble's start-up each time) and forked from a forkserver that has already
imported libvips (imaging/decode_process.py): measured here, the next upload after a crash is
answered about 0.1 s later (most of it pebble noticing the death on its 0.1 s tick), against
about 0.35 s with processes spawned from scratch. None inherits the worker's event loop or pools.

Admission works as in the render pool (imaging/pool.py): `decode-workers + queue-size` uploads at
a time and 503 `render_queue_full` past that; 503 `render_timeout` after `render-timeout`.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager

from pebble import ProcessExpired, ProcessPool

from konifer_edge.domain.errors import BadRequest, ServiceUnavailable
from konifer_edge.imaging import decode_process
from konifer_edge.imaging.decode_process import SharedUpload
from konifer_edge.imaging.original import ExaminedOriginal, OriginalJob
from konifer_edge.observability import metrics

log = logging.getLogger(__name__)


class DecodePool:
    def __init__(self, workers: int, queue_size: int, timeout_seconds: float, vips_concurrency: int) -> None:
        self.workers = max(1, workers)
        self._timeout = timeout_seconds
        self._vips_concurrency = vips_concurrency
        self._context = multiprocessing.get_context("forkserver")
        # What every decode process needs, imported once: libvips and our decoding, and pebble's worker
        # loop. Not the default, `__main__`, which would be the worker's.
        self._context.set_forkserver_preload([decode_process.__name__, ProcessPool.__module__])
        self._pool: ProcessPool | None = None
        self._replacement: asyncio.Future[ProcessPool] | None = None
        capacity = self.workers + max(0, queue_size)
        self._admitted = asyncio.BoundedSemaphore(capacity)
        metrics.IMAGING_CAPACITY.labels("decode").set(capacity)
        for cause in ("crash", "timeout"):
            # At 0 from the start: an alert on their increase must see the first failure.
            metrics.DECODE_FAILURES.labels(cause)

    async def start(self) -> None:
        """Start the processes before the first upload needs them; fails if they cannot work."""
        await self._working_pool()

    async def examine(self, content: bytes, job: OriginalJob) -> ExaminedOriginal:
        if self._admitted.locked():
            raise ServiceUnavailable("The image pipeline is busy; retry shortly", reason="render_queue_full")
        async with self._admitted:
            metrics.IMAGING_IN_USE.labels("decode").inc()
            try:
                with _shared(content) as upload:
                    async with asyncio.timeout(self._timeout):
                        return await self._examine(upload, job, len(content))
            except TimeoutError:
                metrics.DECODE_FAILURES.labels("timeout").inc()
                log.warning(
                    "a %d-byte upload was not decoded within %gs; its decode was stopped", len(content), self._timeout
                )
                raise ServiceUnavailable(
                    f"The image took longer than {self._timeout:g}s to process; retry shortly", reason="render_timeout"
                ) from None
            finally:
                metrics.IMAGING_IN_USE.labels("decode").dec()

    async def _examine(self, upload: SharedUpload, job: OriginalJob, size: int) -> ExaminedOriginal:
        # pebble declares the whole pool broken when a process dies idle, or dies before pebble has
        # learnt which task it took (a rare race with a crash). Tasks in flight then fail without
        # having caused it: each gets one more try on a fresh pool.
        for _ in range(2):
            pool = await self._working_pool()
            try:
                # Cancelling this future (a timeout, a client gone) terminates the process running it.
                future = pool.schedule(decode_process.examine_upload, args=(upload, job))
            except RuntimeError:  # pebble's word for a pool that broke since it was checked
                continue
            try:
                return await asyncio.wrap_future(future)
            except ProcessExpired as died:
                metrics.DECODE_FAILURES.labels("crash").inc()
                log.error(
                    "decode process %s died (%s) while reading a %d-byte upload; answered 400 undecodable_image",
                    died.pid,
                    _describe_exit(died.exitcode),
                    size,
                )
                raise BadRequest(
                    "The image cannot be decoded: the decoder failed on it", reason="undecodable_image"
                ) from None
            except BrokenProcessPool:
                continue
        raise ServiceUnavailable("The image decoder is restarting; retry shortly", reason="decoder_unavailable")

    async def _working_pool(self) -> ProcessPool:
        if self._pool is not None and self._pool.active:
            return self._pool
        if self._replacement is None:
            self._replacement = asyncio.ensure_future(self._replace())
        # Shielded: a request that gives up must not abandon a pool half started.
        return await asyncio.shield(self._replacement)

    async def _replace(self) -> ProcessPool:
        try:
            broken, self._pool = self._pool, None
            if broken is not None:
                log.warning("the decode pool broke; starting a new one")
                # Stopping waits up to seconds per process: never on the event loop, and nobody waits for it.
                threading.Thread(target=_dispose, args=(broken,), name="decode-pool-dispose", daemon=True).start()
            self._pool = await asyncio.to_thread(self._started_pool)
            return self._pool
        finally:
            self._replacement = None

    def _started_pool(self) -> ProcessPool:
        pool = ProcessPool(
            max_workers=self.workers,
            initializer=decode_process.start_decoder,
            initargs=(self._vips_concurrency,),
            context=self._context,
        )
        try:
            with _shared(b"ready") as upload:
                if pool.schedule(decode_process.read_back, args=(upload,)).result() != b"ready":
                    raise RuntimeError("a decode process read something else than the worker shared")
        except BaseException:
            _dispose(pool)
            raise
        return pool

    def shutdown(self) -> None:
        if self._pool is not None:
            _dispose(self._pool)


def _dispose(pool: ProcessPool) -> None:
    pool.stop()  # type: ignore[no-untyped-call]
    pool.join()


@contextmanager
def _shared(content: bytes) -> Iterator[SharedUpload]:
    """The upload in a memory file that the decode process reads through /proc.

    One copy reaches the process. Pickling the bytes into pebble's pipe instead costs three (the
    pickle, the pipe's buffer, the unpickled object) and, measured here, about six times as long for
    a 50 MB upload. A memory file is not bound by /dev/shm's size (64 MiB in a default container) and
    leaks nothing: the kernel frees it with its last descriptor, even if the worker dies.
    """
    descriptor = os.memfd_create("konifer-edge-upload")
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(descriptor, view) :]
        yield SharedUpload(path=f"/proc/{os.getpid()}/fd/{descriptor}")
    finally:
        os.close(descriptor)


def _describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            pass
    return f"exit code {code}"
