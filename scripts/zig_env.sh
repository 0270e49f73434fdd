#!/usr/bin/env bash
# Prints, as `export` lines, the environment that
# `cargo zigbuild --release --target x86_64-unknown-linux-gnu.2.28` gives
# cargo: zig wrappers as linker and C/C++ compilers, linking against glibc
# 2.28. `make python` builds the Python extension with maturin under exactly
# these settings (maturin's own --zig writes wrappers at other paths, and
# cargo fingerprints the linker), so the crates that the extension shares
# with the JNI library (build.gradle) are compiled once, into
# target/x86_64-unknown-linux-gnu/release.
#
#   eval "$(bash scripts/zig_env.sh)"
#   maturin build --release --target x86_64-unknown-linux-gnu --compatibility manylinux_2_28 ...
set -euo pipefail
dump=$(mktemp)
trap 'rm -f "$dump"' EXIT
printf '#!/bin/sh\nexec env -0\n' > "$dump"
chmod +x "$dump"
# cargo-zigbuild runs $CARGO with its settings: here a program that prints them.
CARGO="$dump" cargo-zigbuild zigbuild --release --target x86_64-unknown-linux-gnu.2.28 |
  python3 -c '
import os, shlex, sys
env = dict(e.split("=", 1) for e in sys.stdin.read().split("\0") if "=" in e)
for key in sorted(env):
    if key not in ("_", "CARGO", "PWD", "SHLVL", "OLDPWD") and os.environ.get(key) != env[key]:
        print(f"export {key}={shlex.quote(env[key])}")
'
