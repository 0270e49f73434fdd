#!/usr/bin/env python3
"""Fails when a shipped native library needs a glibc newer than the floor.

    scripts/check_glibc.py [--max 2.28] ARTIFACT...

Each ARTIFACT is a shared library, or a jar / wheel (zip) whose ``.so``
members are checked, including those of jars inside a wheel. Reads each
library's dynamic symbols with ``objdump -T`` (binutils) and prints every
symbol versioned above the floor, with the library it is in. Exit status 1
if there is any, or if an archive holds no library at all (a check that
checks nothing must not pass).
"""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, List, Tuple

# `0000000000000000      DF *UND*  0000000000000000 (GLIBC_2.34) __libc_start_main`
# (objdump puts the version in parentheses for undefined symbols, bare otherwise).
_SYMBOL = re.compile(r"\(?GLIBC_(\d+(?:\.\d+)+)\)?\s+(\S+)\s*$")


def parse_version(text: str) -> Tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def glibc_symbols(library: Path) -> List[Tuple[Tuple[int, ...], str]]:
    """(version, symbol) for every GLIBC_-versioned dynamic symbol of ``library``."""
    proc = subprocess.run(["objdump", "-T", str(library)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"check_glibc: objdump -T {library} failed: {proc.stderr.strip()}")
    out = []
    for line in proc.stdout.splitlines():
        m = _SYMBOL.search(line)
        if m:
            out.append((parse_version(m.group(1)), m.group(2)))
    return out


def libraries(artifact: Path, tmp: Path) -> Iterator[Tuple[str, Path]]:
    """(display name, file) for each shared library in ``artifact``."""
    if not zipfile.is_zipfile(artifact):
        yield str(artifact), artifact
        return

    def walk(zf: zipfile.ZipFile, prefix: str) -> Iterator[Tuple[str, Path]]:
        for info in zf.infolist():
            name = info.filename
            if name.endswith(".so") or ".so." in Path(name).name:
                target = tmp / f"lib{len(list(tmp.iterdir()))}.so"
                target.write_bytes(zf.read(info))
                yield f"{prefix}!{name}", target
            elif name.endswith(".jar"):
                with zipfile.ZipFile(io.BytesIO(zf.read(info))) as inner:
                    yield from walk(inner, f"{prefix}!{name}")

    with zipfile.ZipFile(artifact) as zf:
        yield from walk(zf, str(artifact))


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", default="2.28", help="the glibc floor (default 2.28)")
    parser.add_argument("artifacts", nargs="+", type=Path)
    args = parser.parse_args(argv)
    floor = parse_version(args.max)

    failures = 0
    for artifact in args.artifacts:
        if not artifact.exists():
            print(f"check_glibc: {artifact} does not exist", file=sys.stderr)
            failures += 1
            continue
        with tempfile.TemporaryDirectory() as tmp:
            found = 0
            for name, lib in libraries(artifact, Path(tmp)):
                found += 1
                symbols = glibc_symbols(lib)
                newest = max((v for v, _ in symbols), default=())
                above = sorted({(v, s) for v, s in symbols if v > floor})
                for version, symbol in above:
                    print(f"check_glibc: {name}: {symbol} needs GLIBC_{'.'.join(map(str, version))}"
                          f" (floor {args.max})", file=sys.stderr)
                failures += len(above)
                if not above:
                    print(f"check_glibc: {name}: ok (newest GLIBC_"
                          f"{'.'.join(map(str, newest)) or 'none'})")
            if found == 0:
                print(f"check_glibc: {artifact} holds no shared library", file=sys.stderr)
                failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
