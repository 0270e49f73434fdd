#!/usr/bin/env bash
# Runs a slow download beside the stages that compute, and joins it where its
# result is first needed (`make test` starts the Spark venvs and the crates
# here while setup, lint and the Rust tests run; see the Makefile's
# `background` target).
#
#   scripts/background.sh start NAME CMD...   # CMD in the background, logged
#   scripts/background.sh wait NAME           # its exit status; its log if it failed
#
# A job belongs to the make run that started it (MAKE_STARTED, exported by the
# Makefile): `wait` in a run that started no such job returns at once, so a
# stage run on its own (`make test-spark`) does the work itself. Every job
# command is idempotent and safe to run beside its foreground twin.
# Files: target/background/NAME.{log,pid,run,rc}.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=target/background
RUN=${MAKE_STARTED:-}

usage() { echo "usage: $0 start NAME CMD... | wait NAME" >&2; exit 2; }
[ $# -ge 2 ] || usage
op=$1 name=$2
shift 2
log=$DIR/$name.log pidf=$DIR/$name.pid runf=$DIR/$name.run rcf=$DIR/$name.rc

case $op in
start)
  [ $# -ge 1 ] || usage
  mkdir -p "$DIR"
  rm -f "$log" "$pidf" "$runf" "$rcf"
  echo "$RUN" > "$runf"
  # The rc file is written last, through a rename: `wait` sees it whole.
  ( set +e; started=$SECONDS
    "$@" > "$log" 2>&1 < /dev/null
    rc=$?
    echo "background $name: exit $rc after $((SECONDS - started)) s" >> "$log"
    echo $rc > "$rcf.tmp" && mv "$rcf.tmp" "$rcf" ) > /dev/null 2>&1 &
  echo $! > "$pidf"
  echo "background $name: started ($*), log $log"
  ;;
wait)
  [ -f "$runf" ] && [ "$(cat "$runf")" = "$RUN" ] || exit 0
  started=$SECONDS
  while [ ! -f "$rcf" ]; do
    if ! kill -0 "$(cat "$pidf")" 2>/dev/null && [ ! -f "$rcf" ]; then
      echo "background $name: died without an exit status; its log ($log):" >&2
      cat "$log" >&2
      exit 1
    fi
    sleep 1
  done
  rc=$(cat "$rcf")
  if [ "$rc" != 0 ]; then
    echo "background $name failed (exit $rc); its log ($log):" >&2
    cat "$log" >&2
    exit 1
  fi
  echo "background $name: done (waited $((SECONDS - started)) s)"
  ;;
*) usage ;;
esac
