#!/usr/bin/env bash
# Creates one small venv per Spark release that the connector is tested on:
# .venvs/spark-<version>, with only pyspark, pyarrow, numpy (pyspark.ml), pytest and
# pytest-timeout from PyPI.
# The 3.5 line's jars also compile the 3.5 connector jar (build.gradle).
# Idempotent: a venv whose stamp names the current package list is kept.
# One run at a time per venv (flock on .venvs/spark-<version>.lock): `make test`
# creates them in the background (scripts/background.sh) while `make jar` asks
# for the 3.5 one, which then waits for that install instead of racing it.
#
#   scripts/spark_venvs.sh            # every version in SPARK_TEST_VERSIONS
#   scripts/spark_venvs.sh 3.5.9      # just these
set -euo pipefail
cd "$(dirname "$0")/.."

# The newest patch of each line and minor release (see docs/CONNECTOR.md).
SPARK_TEST_VERSIONS=${SPARK_TEST_VERSIONS:-"3.5.9 4.0.5 4.1.4 4.2.1 4.3.0"}
versions=("$@")
[ ${#versions[@]} -gt 0 ] || read -r -a versions <<< "$SPARK_TEST_VERSIONS"

PACKAGES="pyarrow numpy pytest pytest-timeout"
mkdir -p .venvs
for version in "${versions[@]}"; do
  venv=".venvs/spark-$version"
  stamp="$venv/.installed"
  exec {lock}> "$venv.lock"
  flock "$lock"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$PACKAGES" ]; then
    exec {lock}>&-
    continue
  fi
  echo "spark venvs: installing into $venv (pyspark==$version $PACKAGES)"
  [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "pyspark==$version" $PACKAGES
  echo "$PACKAGES" > "$stamp"
  exec {lock}>&-
done
