"""What runs inside a decode process (imaging/decode_pool.py starts them; nothing else imports this).

The forkserver imports this module once, so libvips is loaded and set up for untrusted input
(imaging/vips.py) before any decode process is forked from it. Nothing here touches the server
worker's state: no event loop, no connection pool, no metrics.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import msgspec

from konifer_edge.imaging.original import ExaminedOriginal, OriginalJob, examine_original
from konifer_edge.imaging.vips import pyvips

# A module each decode process imports as it starts (a dotted name on the server's sys.path). The
# test suite puts a decoder fault into decode processes this way (tests/support/decoder_faults.py);
# a server has no use for it.
ENV_DECODER_PRELOAD = "KONIFER_EDGE_DECODER_PRELOAD"


class SharedUpload(msgspec.Struct, frozen=True):
    """Where a decode process reads the upload: a memory file the server worker holds open."""

    path: str


def start_decoder(vips_concurrency: int) -> None:
    """Set up a new decode process: libvips' threads per operation as the server worker has them."""
    pyvips.concurrency_set(vips_concurrency)
    preload = os.environ.get(ENV_DECODER_PRELOAD)
    if preload:
        importlib.import_module(preload)


def read_back(upload: SharedUpload) -> bytes:
    """Proves that a decode process starts and can read what the server worker shares."""
    return Path(upload.path).read_bytes()


def examine_upload(upload: SharedUpload, job: OriginalJob) -> ExaminedOriginal:
    return examine_original(Path(upload.path).read_bytes(), job)
