"""Resident memory of a process tree, sampled from /proc on a background thread.

Standard library only, so every contender venv can import it. Processes are put in
three groups by their command: the JVM (`java`: in Spark local mode the driver JVM is
also the executor), Python processes (the driver script itself and PySpark's Python
workers, or DataLoader workers), and anything else (a Rust binary). Each sample sums
VmRSS per group; the sampler keeps the peak of each group and of the total, taken at
the same instant, so the total is a real simultaneous peak and not a sum of peaks.
RSS counts file-backed pages that are mapped and resident (memory-mapped shards), and
shared pages once per process that maps them.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

GROUPS = ("jvm", "python", "other")


def _parent_map() -> dict[int, list[int]]:
    """Children of every process, from the parent id in /proc/<pid>/stat."""
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            # The command name in field 2 may hold spaces: split after its closing ')'.
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants that are alive now."""
    kids = _parent_map()
    seen: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.append(pid)
        stack.extend(kids.get(pid, []))
    return seen


def rss_bytes(pid: int) -> int:
    """VmRSS of one process in bytes; 0 when it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def group_of(pid: int) -> str:
    """Which group a process belongs to, by the name of its executable."""
    try:
        exe = os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        try:
            exe = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return "other"
    if exe == "java":
        return "jvm"
    if exe.startswith("python"):
        return "python"
    return "other"


def snapshot(root: int) -> dict[str, int]:
    """RSS per group of the tree under `root`, right now."""
    totals = dict.fromkeys(GROUPS, 0)
    for pid in process_tree(root):
        totals[group_of(pid)] += rss_bytes(pid)
    return totals


class PeakSampler:
    """Samples the tree under `root` every `interval_s` until stopped.

    Use as a context manager around the work being measured; `result()` gives the RSS
    per group at the start and the peaks seen while it ran.
    """

    def __init__(self, root: int | None = None, interval_s: float = 0.1) -> None:
        self.root = os.getpid() if root is None else root
        self.interval_s = interval_s
        self.start = snapshot(self.root)
        self.peak = dict(self.start)
        self.peak_total = sum(self.start.values())
        self.samples = 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _take(self) -> None:
        now = snapshot(self.root)
        for group, value in now.items():
            self.peak[group] = max(self.peak[group], value)
        self.peak_total = max(self.peak_total, sum(now.values()))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._take()

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def result(self) -> dict:
        """JSON-ready figures: peak and start RSS per group, and the peak total."""
        out: dict = {"peak_total_rss_bytes": self.peak_total, "samples": self.samples}
        for group in GROUPS:
            out[f"peak_{group}_rss_bytes"] = self.peak[group]
            out[f"start_{group}_rss_bytes"] = self.start[group]
        return out


if __name__ == "__main__":
    with PeakSampler() as sampler:
        time.sleep(0.2)
    print(sampler.result())
