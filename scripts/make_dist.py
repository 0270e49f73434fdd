#!/usr/bin/env python3
"""Writes the release artifacts into one folder (`make dist`):

    scripts/make_dist.py --out dist WHEEL CONNECTOR_JAR...

- the wheel, as built;
- each connector jar as ``<artifactId>-<version>.jar`` with its Maven POM
  ``<artifactId>-<version>.pom`` (``io.mosaicrs:mosaicrs-spark-4_2.13:<version>``;
  Spark and Scala are ``provided``: the cluster has them), ready for
  ``mvn deploy:deploy-file -Dfile=... -DpomFile=...``;
- ``SHA256SUMS`` over all of them, in ``sha256sum -c`` format.

The version is the workspace's (Cargo.toml), which the wheel carries too.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import sys
from pathlib import Path
from typing import List
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parent.parent
GROUP_ID = "io.mosaicrs"

# artifactId -> (Spark line, Scala binary version, the oldest Spark of the line).
LINES = {
    "mosaicrs-spark-3.5_2.12": ("3.5", "2.12", "3.5.0"),
    "mosaicrs-spark-4_2.13": ("4.x", "2.13", "4.0.0"),
}


def workspace_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    match = re.search(r'^version\s*=\s*"([^"]+)"', section, re.M)
    if not match:
        raise SystemExit("make_dist: no version in Cargo.toml's [workspace.package]")
    return match.group(1)


def pom(artifact_id: str, version: str) -> str:
    line, scala, spark = LINES[artifact_id]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0"
         xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
         xsi:schemaLocation="http://maven.apache.org/POM/4.0.0 https://maven.apache.org/xsd/maven-4.0.0.xsd">
  <modelVersion>4.0.0</modelVersion>
  <groupId>{GROUP_ID}</groupId>
  <artifactId>{escape(artifact_id)}</artifactId>
  <version>{escape(version)}</version>
  <packaging>jar</packaging>
  <name>mosaicrs Spark connector (Spark {line}, Scala {scala})</name>
  <description>Spark DataSource V2 that writes and reads mosaicrs datasets (Arrow IPC shards); carries its native library for linux-x86_64, glibc 2.28 and newer.</description>
  <licenses>
    <license>
      <name>Apache-2.0</name>
      <url>https://www.apache.org/licenses/LICENSE-2.0</url>
    </license>
  </licenses>
  <dependencies>
    <dependency>
      <groupId>org.apache.spark</groupId>
      <artifactId>spark-sql_{scala}</artifactId>
      <version>{spark}</version>
      <scope>provided</scope>
    </dependency>
  </dependencies>
</project>
"""


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("wheel", type=Path)
    parser.add_argument("jars", type=Path, nargs="+")
    args = parser.parse_args(argv)

    version = workspace_version()
    if f"-{version}-" not in args.wheel.name:
        raise SystemExit(f"make_dist: {args.wheel.name} is not version {version}")
    args.out.mkdir(parents=True, exist_ok=True)
    written = [Path(shutil.copy2(args.wheel, args.out))]
    for jar in args.jars:
        artifact_id = jar.name.removesuffix(".jar")
        if artifact_id not in LINES:
            raise SystemExit(f"make_dist: {jar} is not a connector jar ({', '.join(LINES)})")
        target = args.out / f"{artifact_id}-{version}.jar"
        shutil.copy2(jar, target)
        pom_path = args.out / f"{artifact_id}-{version}.pom"
        pom_path.write_text(pom(artifact_id, version))
        written += [target, pom_path]

    lines = []
    for path in sorted(written):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{digest}  {path.name}\n")
    (args.out / "SHA256SUMS").write_text("".join(lines))
    for path in sorted(written):
        print(f"{path}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
