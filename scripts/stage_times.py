"""Wall time of each `make test` stage, printed at the end of the run.

The Makefile's stage recipes call `stage_times.py begin <stage>` first and
`stage_times.py end <stage>` last; the `test` recipe calls `report <since>`
with the time make started, and the table lists every stage that ran since
then, slowest first, with the total. Times live in target/stage-times/ (one
file per stage, overwritten by the next run). Stdlib only: it runs before
the venv exists.

Usage: python3 scripts/stage_times.py begin|end STAGE
       python3 scripts/stage_times.py report SINCE_EPOCH_SECONDS
"""

import sys
import time
from pathlib import Path

DIR = Path(__file__).resolve().parents[1] / "target" / "stage-times"


def record(stage: str, edge: str) -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    (DIR / f"{stage}.{edge}").write_text(f"{time.time():.3f}\n")


def read(path: Path):
    try:
        return float(path.read_text())
    except (OSError, ValueError):
        return None


def report(since: float) -> None:
    rows = []
    for start_file in sorted(DIR.glob("*.begin")) if DIR.is_dir() else []:
        stage = start_file.name[: -len(".begin")]
        start, end = read(start_file), read(DIR / f"{stage}.end")
        if start is None or start < since:
            continue
        rows.append((stage, None if end is None or end < start else end - start))
    if not rows:
        print("stage times: no stage recorded")
        return
    total = time.time() - since
    width = max(len(s) for s, _ in rows)
    print(f"\nmake test: {total / 60:.1f} min; stages, slowest first:")
    for stage, seconds in sorted(rows, key=lambda r: -(r[1] or 0.0)):
        shown = "did not finish" if seconds is None else f"{seconds:7.0f} s"
        print(f"  {stage:<{width}}  {shown}")


def main(argv) -> int:
    if len(argv) == 3 and argv[1] in ("begin", "end"):
        record(argv[2], argv[1])
        return 0
    if len(argv) == 3 and argv[1] == "report":
        report(float(argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
