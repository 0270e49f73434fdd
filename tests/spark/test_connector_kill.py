"""`kill -9` of a whole Spark application (driver and executors: local mode)
at random moments of a write and of the driver's commit: the dataset is the
old one or the new one, never torn, and `mosaicrs vacuum` then leaves nothing
that the index does not list.

`MOSAICRS_KILL_TRIALS` sets the number of kills (default 3: one at a random
moment of the writes, the others 0-15 ms after the driver starts a commit;
`make soak-spark-kill` runs 40). Trials alternate overwrite and append. Spark
4 only: the commit is the line-independent MosaicrsBatchWrite and the native
library, and each trial starts a JVM (about 30 s on two cores).
"""

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli

from .conftest import SPARK_4, kept_shards, stray_files
from .kill_job import ROWS
from .readback import read_table

HERE = Path(__file__).resolve().parent
TRIALS = int(os.environ.get("MOSAICRS_KILL_TRIALS", "3"))

pytestmark = pytest.mark.skipif(not SPARK_4, reason="run on the Spark 4 line; see the docstring")


class Job:
    """kill_job.py in its own process group, its output read line by line."""

    def __init__(self, jar, out, mode):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "kill_job.py"), str(jar), str(out), mode],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.committed = -1
        self.commits_started = 0
        self.lines = []
        self.changed = threading.Condition()
        self.first_commit = threading.Event()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("committed "):
                self.committed = int(line.split()[1])
                self.first_commit.set()
            elif "is committing" in line:
                with self.changed:
                    self.commits_started += 1
                    self.changed.notify_all()

    def wait_for_commit_start(self, write, timeout):
        """Blocks until the driver has started the commit of write `write`."""
        with self.changed:
            return self.changed.wait_for(lambda: self.commits_started > write, timeout)

    def kill(self):
        """Kills the job, then reads what it printed to the end: the pipe
        keeps every line written before the kill."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.reader.join(timeout=60)

    def log(self):
        return "".join(self.lines[-40:])


def ids_of_writes(writes):
    return sorted(i for w in writes for i in range(w * ROWS, (w + 1) * ROWS))


def kill_once(jar, out, mode, at_commit, rng):
    job = Job(jar, out, mode)
    try:
        assert job.first_commit.wait(timeout=240), "the job never committed:\n" + job.log()
        if at_commit:
            # The commit of the write after the last one printed, not a line
            # of an earlier commit still in the pipe.
            assert job.wait_for_commit_start(job.committed + 1, timeout=120), \
                "no commit started:\n" + job.log()
            time.sleep(rng.uniform(0, 0.015))
        else:
            time.sleep(rng.uniform(0, 1.5))
    finally:
        job.kill()
    # The last write the job printed as committed before it died. The job
    # prints each commit before it starts the next write, so the dataset is
    # that write or, committed but not yet printed, the next one.
    return job.committed, job


def test_kill_9_during_writes_and_commits_leaves_old_or_new(connector_jar, mosaicrs_cli,
                                                            tmp_path):
    rng = random.Random(int(os.environ.get("MOSAICRS_KILL_SEED", "20261130")))
    seen = []
    for trial in range(TRIALS):
        mode = "overwrite" if trial % 2 == 0 else "append"
        out = tmp_path / f"trial{trial}"
        last, job = kill_once(connector_jar, out, mode, at_commit=trial > 0, rng=rng)
        # Old or new: the writes 0..last committed for certain; write last + 1
        # may have committed before the kill without being printed.
        candidates = {
            k: ([k] if mode == "overwrite" else list(range(k + 1))) for k in (last, last + 1)
        }
        run_cli(mosaicrs_cli, "validate", out)
        info = json.loads(run_cli(mosaicrs_cli, "inspect", out, "--json").stdout)
        ids = sorted(read_table(out).column("id").to_pylist())
        held = [k for k, writes in candidates.items() if ids == ids_of_writes(writes)]
        assert held, (f"trial {trial} ({mode}): {len(ids)} rows match neither write "
                      f"{last} nor {last + 1}:\n{job.log()}")
        assert info["rows"] == len(ids)

        # Whatever the kill left (a killed write's shards, a temporary index)
        # vacuum removes. A kill between a commit's version record (the commit
        # point) and the head that follows it leaves the head one version
        # behind: vacuum rolls it forward first, so the dataset is then the
        # write the record committed. Nothing else may change.
        vacuumed = run_cli(mosaicrs_cli, "vacuum", out, "--grace-hours", "0", "--delete")
        assert stray_files(out) == []
        after = sorted(read_table(out).column("id").to_pylist())
        allowed = [k for k, writes in candidates.items()
                   if k >= held[0] and after == ids_of_writes(writes)]
        assert allowed, (f"trial {trial} ({mode}): after vacuum {len(after)} rows, "
                         f"before {len(ids)}:\n{vacuumed.stdout}")
        report = run_cli(mosaicrs_cli, "validate", out).stdout
        assert "unlisted" not in report, report
        assert kept_shards(out) == set(os.listdir(out)) - {"index.json", "_versions"}
        seen.append((mode, last, held[0], vacuumed.stdout.count("deleted ")))
    print("kills (mode, last printed commit, write held, files vacuumed):", seen)
