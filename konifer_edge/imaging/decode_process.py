"""What runs inside a decode process (imaging/decode_pool.py starts them; nothing else imports this).

The forkserver imports this module once, so libvips is loaded and set up for untrusted input
(imaging/vips.py) before any decode process is forked from it. Nothing here touches the server
worker's state: no event loop, no connection pool, no metrics.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from konifer_edge.imaging.original import ExaminedOriginal, OriginalJob, examine_original
from konifer_edge.imaging.vips import pyvips

# For the test suite only: a decode process started with this variable set aborts, or hangs, on an
# upload that contains the variable's value followed by ":abort" or ":hang". It is read once, when
# a decode process starts, so that crash isolation can be proven without a real decoder defect.
ENV_TEST_FAULT_MARKER = "KONIFER_EDGE_TEST_FAULT_MARKER"

_test_fault_marker: bytes | None = None


class SharedUpload(msgspec.Struct, frozen=True):
    """Where a decode process reads the upload: a memory file the server worker holds open."""

    path: str


def start_decoder(vips_concurrency: int) -> None:
    """Set up a new decode process: libvips' threads per operation as the server worker has them."""
    global _test_fault_marker
    pyvips.concurrency_set(vips_concurrency)
    marker = os.environ.get(ENV_TEST_FAULT_MARKER)
    _test_fault_marker = marker.encode() if marker else None


def read_back(upload: SharedUpload) -> bytes:
    """Proves that a decode process starts and can read what the server worker shares."""
    return Path(upload.path).read_bytes()


def examine_upload(upload: SharedUpload, job: OriginalJob) -> ExaminedOriginal:
    content = Path(upload.path).read_bytes()
    if _test_fault_marker is not None:
        _act_on_test_fault(content, _test_fault_marker)
    return examine_original(content, job)


def _act_on_test_fault(content: bytes, marker: bytes) -> None:
    if marker + b":abort" in content:
        os.abort()
    if marker + b":hang" in content:
        time.sleep(3600)
