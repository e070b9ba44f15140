"""A decoder fault for test_decoder_isolation, imported into each decode process by the server's
`KONIFER_EDGE_DECODER_PRELOAD` (see imaging/decode_process.py), never into production.

An upload that carries the value of `KONIFER_EDGE_TEST_FAULT_MARKER` followed by ":abort" makes the
decode process abort, as a native decoder crash would; followed by ":hang", it hangs. Decode
processes look up `examine_upload` by name when they run a task, so they run the version here.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from konifer_edge.imaging import decode_process
from konifer_edge.imaging.original import ExaminedOriginal, OriginalJob

ENV_FAULT_MARKER = "KONIFER_EDGE_TEST_FAULT_MARKER"

_MARKER = os.environ[ENV_FAULT_MARKER].encode()
_examine_upload = decode_process.examine_upload


def examine_upload(upload: decode_process.SharedUpload, job: OriginalJob) -> ExaminedOriginal:
    content = Path(upload.path).read_bytes()
    if _MARKER + b":abort" in content:
        os.abort()
    if _MARKER + b":hang" in content:
        time.sleep(3600)
    return _examine_upload(upload, job)


decode_process.examine_upload = examine_upload
