"""Where a Spark write's time goes: a JFR and a `perf` profile of format("mosaicrs").

Runs bench/connector_write_bench.py (mosaicrs only, or --only) in a child process
with a JFR recording of the driver JVM (local mode: the tasks run there), and,
where `perf` is installed, `perf record` of that JVM. Then prints:

- from JFR, the Java samples of the write tasks (stacks through Spark's
  WritingSparkTask) by category: Spark's row iteration (what `noop` also
  pays), the connector's column writers (stacks through MosaicrsDataWriter),
  and time in native calls;
- from perf, the CPU samples of the task threads (`Executor task launch
  worker`, which also build the cached DataFrame once) by category: JIT-compiled
  Java, the JVM itself, the JNI library, libc and the kernel (file writes).

    .venv/bin/python bench/write_profile.py [--rows 1000000] [--repeats 6]
"""

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=6)
    p.add_argument("--only", default="mosaicrs")
    p.add_argument("--jar", default=None)
    p.add_argument("--keep", default=None,
                   help="folder to keep the .jfr and perf.data in (else a temp folder, removed)")
    return p.parse_args()


def java_child(pid: int) -> Optional[int]:
    """The Spark driver JVM below `pid` (not the launcher JVM that spark-submit runs first)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        parent = int(fields[1])
        if b"deploy.SparkSubmit" in cmdline and java_ancestor(parent, pid):
            return int(entry)
    return None


def java_ancestor(pid: int, ancestor: int) -> bool:
    for _ in range(8):
        if pid <= 1:
            return False
        if pid == ancestor:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            return False
    return False


def jfr_breakdown(jfr: str) -> Tuple[int, collections.Counter, collections.Counter]:
    text = subprocess.run(
        ["jfr", "print", "--events", "jdk.ExecutionSample,jdk.NativeMethodSample",
         "--stack-depth", "96", jfr],
        check=True, capture_output=True, text=True).stdout
    categories: collections.Counter = collections.Counter()
    tops: collections.Counter = collections.Counter()
    n = 0
    for kind, body in re.findall(r"(jdk\.\w+Sample) \{(.*?)\n\}", text, re.S):
        stack = body.split("stackTrace = [", 1)[1].split("\n  ]", 1)[0]
        frames = [line.strip() for line in stack.strip().split("\n")
                  if line.strip() and line.strip() != "..."]
        if not frames or not any("WritingSparkTask" in f for f in frames):
            continue
        if any("ColumnBuilder" in f or "CachedRDDBuilder" in f for f in frames):
            continue  # the cached DataFrame being built, not written
        top = frames[0]
        if kind == "jdk.NativeMethodSample":
            if "NativeBridge" not in top:
                continue  # a task thread blocked in some other native call
            what = "native call: " + top.split("(")[0].rsplit(".", 1)[1]
        elif not any("io.mosaicrs.spark.MosaicrsDataWriter.write(" in f for f in frames):
            what = "Spark row iteration (and the task loop)"
        elif top.startswith("org.apache.spark"):
            what = "row getters called by the column writers (UnsafeRow reads)"
        else:
            what = "mosaicrs column writers (JVM)"
        n += 1
        categories[what] += 1
        tops[top.split(" line")[0]] += 1
    return n, categories, tops


def perf_breakdown(data: str) -> Dict[str, float]:
    """% of the task threads' CPU samples per part; the JNI library ships without symbols,
    so its time (copying the JVM's arrays, validation, IPC encoding, checksum) is one part."""
    out = subprocess.run(
        ["perf", "report", "-i", data, "--no-children", "--comm", "Executor task l",
         "--sort", "dso,sym", "--stdio", "-g", "none"],
        capture_output=True, text=True).stdout
    groups: Dict[str, float] = collections.defaultdict(float)
    total = 0.0
    for line in out.splitlines():
        m = re.match(r"\s+([\d.]+)%\s+(.*?)\s+\[(.)\]\s+(.*)$", line)
        if not m:
            continue
        pct, dso, _, sym = float(m.group(1)), m.group(2).strip(), m.group(3), m.group(4).strip()
        total += pct
        if "libmosaicrs_jni" in dso:
            groups["JNI library (copy in, validation, IPC encoding, checksum)"] += pct
        elif dso.startswith("[JIT]"):
            groups["JIT-compiled Java (Spark rows, column writers)"] += pct
        elif dso == "libjvm.so":
            groups["JVM runtime (GC, compiler stubs, JNI array copies)"] += pct
        elif dso.startswith("[kernel"):
            groups["kernel (file writes, fsync, page cache, scheduling)"] += pct
        elif dso.startswith("libc"):
            groups["libc (memcpy, malloc)"] += pct
        else:
            groups["other: " + dso] += pct
    return {what: 100 * pct / total for what, pct in groups.items()} if total else {}


def main():
    args = parse_args()
    folder = args.keep or tempfile.mkdtemp(prefix="mosaicrs-write-profile-")
    os.makedirs(folder, exist_ok=True)
    jfr = os.path.join(folder, "write.jfr")
    perf_data = os.path.join(folder, "perf.data")
    command = [sys.executable, os.path.join(ROOT, "bench", "connector_write_bench.py"),
               "--rows", str(args.rows), "--repeats", str(args.repeats), "--only", args.only,
               "--conf", "spark.driver.extraJavaOptions=-XX:StartFlightRecording=filename="
               f"{jfr},settings=profile -XX:+UnlockDiagnosticVMOptions -XX:+DebugNonSafepoints"]
    if args.jar:
        command += ["--jar", args.jar]
    print("$", " ".join(command), flush=True)
    bench = subprocess.Popen(command)
    perf = None
    if shutil.which("perf"):
        pid = None
        for _ in range(600):
            pid = java_child(bench.pid)
            if pid or bench.poll() is not None:
                break
            time.sleep(0.1)
        if pid:
            perf = subprocess.Popen(["perf", "record", "-F", "499", "-p", str(pid), "-o",
                                     perf_data], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
    rc = bench.wait()
    if perf:
        perf.wait()
    if rc != 0:
        sys.exit(f"the bench failed (exit {rc})")

    n, categories, tops = jfr_breakdown(jfr)
    print(f"\nJFR: {n} samples of write tasks ({jfr})")
    for what, count in categories.most_common():
        print(f"{100 * count / n:6.1f}%  {what}")
    print("top frames:")
    for what, count in tops.most_common(15):
        print(f"{100 * count / n:6.1f}%  {what}")
    if perf:
        print(f"\nperf: CPU samples of the task threads ({perf_data}), % of their total")
        for what, pct in sorted(perf_breakdown(perf_data).items(), key=lambda kv: -kv[1]):
            print(f"{pct:6.1f}%  {what}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
