"""Copy the latest benchmark table into the README, so the README never shows a figure typed by hand.

    .venv/bin/python bench/readme.py [bench/results/<date>-<host>.md]

Takes the machine line, every row at 32 connections and the goals table from a results file that
bench/suite.py wrote (the newest one by default), and replaces what stands between the
`<!-- bench:start -->` and `<!-- bench:end -->` markers in README.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
TABLE = "| scenario | server | conns | req/s | p50 ms | p90 ms | p99 ms | errors | other load |"


def excerpt(results: Path) -> str:
    lines = results.read_text().splitlines()
    machine = next(line for line in lines if line.endswith("where it is high, the figure is low."))
    header = lines.index(TABLE)
    rows = [line for line in lines[header + 2 :] if line.startswith("| ") and line.split(" | ")[2] == "32"]
    goals_at = lines.index("| goal | measured | target | result | margin |")
    goals = []
    for line in lines[goals_at:]:
        if not line.startswith("|"):
            break
        goals.append(line)
    relative = results.relative_to(ROOT)
    chart = relative.with_suffix(".png")
    return "\n".join(
        [
            f"Latest run ([full table]({relative}), [chart]({chart})), at 32 connections:",
            "",
            machine,
            "",
            *lines[header : header + 2],
            *rows,
            "",
            "Goals (from the same run):",
            "",
            *goals,
        ]
    )


def main() -> None:
    if len(sys.argv) > 1:
        results = Path(sys.argv[1]).resolve()
    else:
        suite_runs = [path for path in (ROOT / "bench" / "results").glob("*.md") if TABLE in path.read_text()]
        results = max(suite_runs, key=lambda path: path.stat().st_mtime)
    readme = README.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no {START} ... {END} section")
    README.write_text(pattern.sub(lambda _: f"{START}\n{excerpt(results)}\n{END}", readme))
    print(f"README.md now shows {results.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
