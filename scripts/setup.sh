#!/usr/bin/env bash
# Installs everything the build, tests and demo need on a fresh Debian/Ubuntu
# machine: system packages (apt-get, when missing), the project venv (.venv),
# and checks for the Rust toolchain. Idempotent: a second run does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v gradle >/dev/null 2>&1 || need_apt+=(gradle)
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust with rustup (https://rustup.rs) and re-run" >&2
  exit 1
fi

VENV=${VENV:-.venv}
# SETUP_REQUIREMENTS=scripts/requirements-demo.txt (make demo) installs only
# what the demo runs; scripts/requirements.txt includes that list.
requirements=${SETUP_REQUIREMENTS:-scripts/requirements.txt}
demo_stamp="$VENV/.installed-demo-$(sha256sum scripts/requirements-demo.txt | cut -c1-16)"
if [ "$requirements" = scripts/requirements-demo.txt ]; then
  stamp=$demo_stamp
else
  stamp="$VENV/.installed-$(cat scripts/requirements.txt scripts/requirements-demo.txt | sha256sum | cut -c1-16)"
fi
if [ ! -f "$stamp" ]; then
  echo "setup: installing $requirements into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$requirements"
  if [ "$stamp" = "$demo_stamp" ]; then
    rm -f "$VENV"/.installed-demo-*
  else
    rm -f "$VENV"/.installed-*
  fi
  touch "$stamp" "$demo_stamp"
fi
