"""The sweep's progress bar: redrawn in place on a terminal, one line per phase anywhere else."""

from __future__ import annotations

import io

from konifer_edge.cli.sweep import TextProgress


def test_off_a_terminal_each_phase_prints_one_final_line() -> None:
    stream = io.StringIO()
    progress = TextProgress(stream, live=False)

    progress.start("listing assets", None)
    progress.advance(1000)
    progress.advance(234)
    progress.start("removing orphans from assets", 4)
    for _ in range(4):
        progress.advance()
    progress.finish()
    progress.finish()

    assert stream.getvalue().splitlines() == [
        "listing assets: 1234",
        "removing orphans from assets [##############################] 100% 4/4",
    ]


def test_on_a_terminal_the_line_is_redrawn_in_place() -> None:
    stream = io.StringIO()
    progress = TextProgress(stream, live=True)

    progress.start("retrying queued removals", 10)
    progress.advance(5)
    progress.finish()

    text = stream.getvalue()
    assert text.startswith("\r\x1b[2Kretrying queued removals [..............................]   0% 0/10")
    assert text.endswith("\r\x1b[2Kretrying queued removals [###############...............]  50% 5/10\n")
    assert "\n" not in text[:-1]
