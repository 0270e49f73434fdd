"""One virtual environment per Python contender, so that version pins never collide.

Each contender named in bench/requirements/<name>.txt gets `.venvs/<name>`, created
with the standard `venv` module and filled by pip from PyPI with the pinned versions in
that file (`MOSAICRS_BENCH_VENVS=DIR` puts them in DIR instead). A stamp file carrying the hash of the requirements makes a second run free.
A contender that fails to install is reported with pip's own last words, and the suite
goes on without it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
REQUIREMENTS_DIR = BENCH_DIR / "requirements"
VENVS_DIR = Path(os.environ.get("MOSAICRS_BENCH_VENVS") or REPO_ROOT / ".venvs")
SHARED_VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"


@dataclass
class VenvStatus:
    """Where a contender's interpreter is, or why there is none."""

    name: str
    python: Path | None
    error: str | None = None
    install_s: float | None = None

    def as_json(self) -> dict:
        return {
            "name": self.name,
            "python": str(self.python) if self.python else None,
            "error": self.error,
            "install_s": self.install_s,
            "requirements": str(REQUIREMENTS_DIR / f"{self.name}.txt"),
        }


def _stamp_name(requirements: Path) -> str:
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    return f".installed-{digest}"


def _tail(text: str, lines: int = 6) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def ensure(name: str, install: bool = True, log=print) -> VenvStatus:
    """Return the contender's interpreter, creating its venv first when allowed.

    With `install=False` a venv that is not already complete is reported as missing
    (the smoke run uses this so that it never downloads anything).
    """
    requirements = REQUIREMENTS_DIR / f"{name}.txt"
    if not requirements.is_file():
        return VenvStatus(name, None, f"no requirements file {requirements}")
    venv = VENVS_DIR / name
    python = venv / "bin" / "python"
    stamp = venv / _stamp_name(requirements)
    if stamp.is_file() and python.is_file():
        return VenvStatus(name, python)
    failed = venv / ".install-failed"
    if not install:
        reason = f"venv {venv} is not installed (run `make bench-venvs`)"
        if failed.is_file():
            reason = failed.read_text().strip()
        return VenvStatus(name, None, reason)

    log(f"bench: installing contender venv {venv} from {requirements.name} (PyPI, pinned)")
    started = time.monotonic()
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [str(python), "-m", "pip", "install", "-q", "-r", str(requirements)],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode != 0:
            reason = (
                f"`{Path(step[0]).name} {' '.join(step[1:])}`"
                f" failed (exit {proc.returncode}): {_tail(proc.stderr or proc.stdout)}"
            )
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(reason + "\n")
            log(f"bench: contender venv {name} did not install: {reason}")
            return VenvStatus(name, None, reason, time.monotonic() - started)
    for old in venv.glob(".installed-*"):
        old.unlink()
    failed.unlink(missing_ok=True)
    stamp.touch()
    elapsed = time.monotonic() - started
    log(f"bench: venv {name} ready in {elapsed:.0f} s")
    return VenvStatus(name, python, None, elapsed)


def main(argv: list[str]) -> int:
    """`python bench/venvs.py [NAME...]`: install the named (default: all) contender venvs."""
    names = argv or sorted(p.stem for p in REQUIREMENTS_DIR.glob("*.txt"))
    bad = [s for s in (ensure(n) for n in names) if s.python is None]
    for status in bad:
        print(f"bench: {status.name}: {status.error}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
