#!/usr/bin/env python3
"""Random mutation run: damaged datasets through `mosaicrs validate` and `head`.

Builds small datasets (uncompressed, zstd, lz4) with every common column type,
then makes MUTANTS damaged copies of them, spread over five kinds:

- index:       index.json mutated (bytes, or JSON fields set to hostile values)
- raw:         one shard mutated, the index untouched (bit-rot)
- rechecksum:  one uncompressed shard mutated and its checksum in the index
               updated, so that only the structural checks stand in the way
- zstd, lz4:   a compressed shard mutated and re-checksummed

Each mutant is run through `validate` and `head` (and `head --verify` for
bit-rot and index mutants), each with a timeout. Findings: a panic (exit 101 or "panicked" on stderr, even when caught),
an abort or other signal, a hang (timeout), and a wrong row (`head --verify`
exiting 0 with output that differs from the undamaged dataset's).

Usage: mutate.py --bin target/debug/mosaicrs [--mutants 9000] [--jobs 2]
Exits 1 when anything was found; prints a JSON summary.
"""

import argparse
import concurrent.futures
import json
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

KINDS = ["index", "raw", "rechecksum", "zstd", "lz4"]
HOSTILE = [-1, -64, 0, 1, 7, 2**31 - 1, 2**31, 2**32, 2**40, 2**63 - 1, -(2**63)]


def make_source(path: Path) -> None:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    n = 700
    table = pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "x": pa.array([i * 0.5 if i % 7 else None for i in range(n)], pa.float64()),
            "s": pa.array([f"row{i}" * (i % 4) if i % 5 else None for i in range(n)]),
            "b": pa.array([i % 3 == 0 for i in range(n)]),
            "small": pa.array([i % 100 for i in range(n)], pa.int16()),
            "ts": pa.array(
                [1_700_000_000_000_000 + i for i in range(n)], pa.timestamp("us", tz="UTC")
            ),
            "emb": pa.array([[float(i), float(-i), 0.5] for i in range(n)], pa.list_(pa.float32())),
            "tags": pa.array([[f"t{i}"] * (i % 3) for i in range(n)], pa.list_(pa.string())),
        }
    )
    with ipc.new_file(str(path), table.schema) as w:
        w.write_table(table)


def build(bin_path: str, work: Path) -> dict:
    source = work / "source.arrow"
    make_source(source)
    bases = {}
    for compression in ["none", "zstd", "lz4"]:
        out = work / f"base-{compression}"
        subprocess.run(
            [bin_path, "convert", str(source), str(out), "--compression", compression,
             "--batch-rows", "128", "--shard-size", "24k", "--quiet"],
            check=True, capture_output=True,
        )
        bases[compression] = out
    return bases


def checksum(data: bytes) -> str:
    import xxhash  # noqa: F401  (optional fast path)

    return "xxh3-64:%016x" % xxhash.xxh3_64_intdigest(data)


def mutate_bytes(rng: random.Random, data: bytearray, protect_tail: bool = False) -> bytearray:
    """One to four random byte-level mutations."""
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        op = rng.random()
        i = rng.randrange(len(data))
        if op < 0.35:
            data[i] ^= 1 << rng.randrange(8)
        elif op < 0.5:
            data[i] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        elif op < 0.75:
            # A hostile 4- or 8-byte integer over an aligned position: lengths,
            # offsets and counts in flatbuffers and buffer prefixes.
            size = rng.choice([4, 8])
            i = i - i % size
            value = rng.choice(HOSTILE)
            fmt = "<i" if size == 4 else "<q"
            value = max(min(value, 2 ** (size * 8 - 1) - 1), -(2 ** (size * 8 - 1)))
            data[i:i + size] = struct.pack(fmt, value)[: len(data) - i]
        elif op < 0.85:
            del data[i:i + rng.randint(1, 64)]
        elif op < 0.95:
            j = rng.randrange(len(data))
            chunk = data[j:j + rng.randint(1, 64)]
            data[i:i] = chunk
        else:
            del data[rng.randrange(len(data)):]
    return data


def mutate_index(rng: random.Random, text: bytes) -> bytes:
    if rng.random() < 0.5:
        return bytes(mutate_bytes(rng, bytearray(text)))
    index = json.loads(text)
    for _ in range(rng.randint(1, 3)):
        target = index
        shards = index.get("shards")
        if rng.random() < 0.7 and isinstance(shards, list) and shards:
            target = rng.choice(index["shards"])
        if not target:
            break
        key = rng.choice(list(target.keys()))
        choice = rng.random()
        if choice < 0.5:
            target[key] = rng.choice(HOSTILE + ["", "x", None, [], {}, "../etc/passwd", 1.5])
        elif choice < 0.7 and key == "shards" and isinstance(shards, list) and shards:
            shards.append(rng.choice(shards))
            rng.shuffle(shards)
        elif choice < 0.85 or not isinstance(shards, list):
            del target[key]
        else:
            index["shards"] = shards[::-1]
    return json.dumps(index).encode()


def make_mutant(rng: random.Random, kind: str, bases: dict, dest: Path) -> None:
    base = bases["none"] if kind in ("index", "raw", "rechecksum") else bases[kind]
    shutil.copytree(base, dest)
    index_path = dest / "index.json"
    if kind == "index":
        index_path.write_bytes(mutate_index(rng, index_path.read_bytes()))
        return
    index = json.loads(index_path.read_text())
    n = rng.randrange(len(index["shards"]))
    entry = index["shards"][n]
    shard = dest / entry["path"]
    data = mutate_bytes(rng, bytearray(shard.read_bytes()))
    shard.write_bytes(bytes(data))
    if kind != "raw":
        entry["checksum"] = checksum(bytes(data))
        old = entry["bytes"]
        entry["bytes"] = len(data)
        index["total_bytes"] += len(data) - old
        index_path.write_text(json.dumps(index))


def run_one(bin_path: str, args: list, timeout: float) -> dict:
    try:
        p = subprocess.run([bin_path, *args], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"outcome": "hang"}
    stderr = p.stderr.decode(errors="replace")
    if p.returncode < 0:
        return {"outcome": "abort", "signal": signal.Signals(-p.returncode).name,
                "stderr": stderr[-400:]}
    if p.returncode == 101 or "panicked" in stderr:
        return {"outcome": "panic", "stderr": stderr[-600:]}
    return {"outcome": "ok" if p.returncode == 0 else "error", "stdout": p.stdout}


def check_mutant(job):
    bin_path, seed, kind, bases, work, expected, timeout = job
    rng = random.Random(seed)
    dest = Path(work) / f"m{seed}"
    make_mutant(rng, kind, bases, dest)
    findings = []
    runs = 0
    results = {}
    commands = [
        ("validate", ["validate", str(dest)]),
        ("head", ["head", str(dest), "-n", "100000"]),
    ]
    # Verification changes nothing for re-checksummed mutants (their
    # checksums match): it is run where it can make a difference.
    if kind in ("raw", "index"):
        commands.append(("head --verify", ["head", "--verify", str(dest), "-n", "100000"]))
    for name, args in commands:
        r = run_one(bin_path, args, timeout)
        runs += 1
        results[name] = r["outcome"]
        if r["outcome"] in ("hang", "abort", "panic"):
            findings.append({"seed": seed, "kind": kind, "command": name, **{
                k: v for k, v in r.items() if k != "stdout"}})
        base_key = "none" if kind in ("index", "raw", "rechecksum") else kind
        # Bit-rot (the index untouched) must never be read as rows once
        # verification is on. Re-checksummed mutants are forgeries: their
        # values may differ, as long as nothing crashes.
        if name == "head --verify" and r["outcome"] == "ok" and kind == "raw":
            if r["stdout"] != expected[base_key]:
                findings.append({"seed": seed, "kind": kind, "command": name,
                                 "outcome": "wrong rows"})
    shutil.rmtree(dest, ignore_errors=True)
    return seed, kind, runs, results, findings


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/debug/mosaicrs")
    ap.add_argument("--mutants", type=int, default=9000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=20.0)
    ap.add_argument("--keep", help="copy the mutants that produced findings here")
    ap.add_argument("--start", type=int, default=0, help="first mutant number")
    ap.add_argument("--log", help="append one JSON line per mutant here")
    args = ap.parse_args()
    bin_path = str(Path(args.bin).resolve())
    work = Path(tempfile.mkdtemp(prefix="mosaicrs-mutate-"))
    try:
        bases = build(bin_path, work)
        expected = {
            k: subprocess.run([bin_path, "head", str(v), "-n", "100000"],
                              capture_output=True, check=True).stdout
            for k, v in bases.items()
        }
        jobs = [
            (bin_path, args.seed * 1_000_003 + i, KINDS[i % len(KINDS)],
             {k: str(v) for k, v in bases.items()}, str(work), expected, args.timeout)
            for i in range(args.start, args.start + args.mutants)
        ]
        log = open(args.log, "a") if args.log else None
        totals = {"mutants": 0, "runs": 0, "by_kind": {}, "outcomes": {}}
        findings = []
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for seed, kind, runs, results, found in pool.map(check_mutant, jobs):
                totals["mutants"] += 1
                totals["runs"] += runs
                totals["by_kind"][kind] = totals["by_kind"].get(kind, 0) + 1
                for name, outcome in results.items():
                    key = f"{name}: {outcome}"
                    totals["outcomes"][key] = totals["outcomes"].get(key, 0) + 1
                findings.extend(found)
                if log:
                    log.write(json.dumps({"seed": seed, "kind": kind, "runs": runs,
                                          "results": results, "findings": found}) + "\n")
                    log.flush()
                if totals["mutants"] % 500 == 0:
                    print(f"{totals['mutants']} mutants, {len(findings)} findings",
                          file=sys.stderr, flush=True)
        summary = {
            **totals,
            "panics": sum(f["outcome"] == "panic" for f in findings),
            "aborts": sum(f["outcome"] == "abort" for f in findings),
            "hangs": sum(f["outcome"] == "hang" for f in findings),
            "wrong_rows": sum(f["outcome"] == "wrong rows" for f in findings),
            "findings": findings[:50],
        }
        print(json.dumps(summary, indent=1))
        if args.keep and findings:
            keep = Path(args.keep)
            keep.mkdir(parents=True, exist_ok=True)
            for f in findings[:20]:
                make_mutant(random.Random(f["seed"]), f["kind"], bases, keep / f"m{f['seed']}")
        return 1 if findings else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
