"""Wall time and machine CPU use of each `make test` stage, printed at the
end of the run.

The Makefile's stage recipes call `stage_times.py begin <stage>` first and
`stage_times.py end <stage>` last; the `test` recipe calls `report <since>`
with the time make started, and the table lists every stage that ran since
then, slowest first, with the total. Each edge records the time and the
machine's busy and total CPU jiffies (/proc/stat), so the table also shows
how many of the machine's cores were busy during the stage: a stage well
under all of them leaves a core idle that another stage could use. The
figure is the whole machine's, so stages that run side by side (and
anything else running) share it. Times live in target/stage-times/ (one
file per stage, overwritten by the next run). Stdlib only: it runs before
the venv exists.

Usage: python3 scripts/stage_times.py begin|end STAGE
       python3 scripts/stage_times.py report SINCE_EPOCH_SECONDS
"""

import os
import sys
import time
from pathlib import Path

DIR = Path(__file__).resolve().parents[1] / "target" / "stage-times"


def cpu_jiffies():
    """(busy, total) jiffies of all cores since boot, or None off Linux.
    Busy is everything but idle and iowait."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # guest and guest_nice (fields 9, 10) are already counted in user and nice.
    total = sum(fields[:8])
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return total - idle, total


def record(stage: str, edge: str) -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    jiffies = cpu_jiffies()
    cpu = "" if jiffies is None else f" {jiffies[0]} {jiffies[1]}"
    # A new file renamed over the old one: a target/ whose files are hard
    # links to another checkout's keeps that checkout's times intact.
    path = DIR / f"{stage}.{edge}"
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(f"{time.time():.3f}{cpu}\n")
    os.replace(tmp, path)


def read(path: Path):
    """(epoch seconds, busy jiffies or None, total jiffies or None), or None."""
    try:
        values = path.read_text().split()
        seconds = float(values[0])
        if len(values) >= 3:
            return seconds, int(values[1]), int(values[2])
        return seconds, None, None
    except (OSError, ValueError, IndexError):
        return None


def busy_share(start, end):
    """The share of the machine's CPU time that was busy between two edges."""
    if start[1] is None or end[1] is None or end[2] <= start[2]:
        return None
    return (end[1] - start[1]) / (end[2] - start[2])


def report(since: float) -> None:
    rows = []
    for start_file in sorted(DIR.glob("*.begin")) if DIR.is_dir() else []:
        stage = start_file.name[: -len(".begin")]
        start, end = read(start_file), read(DIR / f"{stage}.end")
        if start is None or start[0] < since:
            continue
        if end is None or end[0] < start[0]:
            rows.append((stage, None, None))
        else:
            rows.append((stage, end[0] - start[0], busy_share(start, end)))
    if not rows:
        print("stage times: no stage recorded")
        return
    cores = os.cpu_count() or 1
    total = time.time() - since
    width = max(len(s) for s, _, _ in rows)
    print(f"\nmake test: {total / 60:.1f} min; stages, slowest first, with the share of "
          f"the machine's {cores} cores that was busy:")
    for stage, seconds, share in sorted(rows, key=lambda r: -(r[1] or 0.0)):
        shown = "did not finish" if seconds is None else f"{seconds:7.0f} s"
        cpu = "" if share is None else f"  cpu {share * 100:3.0f}% ({share * cores:.1f} cores)"
        print(f"  {stage:<{width}}  {shown}{cpu}")


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
