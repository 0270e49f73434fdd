"""The Rust baseline of the Python loader's benchmarks: epochs of the same loader driven
in Rust alone, by ``mosaicrs-loader-bench --epochs-from-stdin`` (crates/mosaicrs-bench).

That process builds the loader once, configured as ``mosaicrs.torch.Loader(data, B,
label="label", seed=..., num_threads=..., prefetch=...)`` configures it, and runs each
epoch it is sent into a ring of Rust-owned buffers filled by the same batch plan, with no
Python per batch. It stays alive between epochs, so a benchmark can alternate epochs of
the two loaders on the same data with both warm, and take their ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent


def default_binary() -> Path:
    """The release build of the loader bench binary, else a debug build, else the release
    path (which does not exist)."""
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "mosaicrs-loader-bench"
        if path.is_file():
            return path
    return REPO / "target" / "release" / "mosaicrs-loader-bench"


def _torch_lib_env() -> dict:
    """The environment with this interpreter's libtorch on LD_LIBRARY_PATH (the binary
    links it)."""
    import torch

    lib = str(Path(torch.__file__).resolve().parent / "lib")
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = ":".join(p for p in (lib, env.get("LD_LIBRARY_PATH", "")) if p)
    env["RUST_BACKTRACE"] = "0"
    return env


class RustEpochs:
    """A running ``mosaicrs-loader-bench --epochs-from-stdin``; ``run(epoch)`` runs one
    epoch there and returns its figures (``batches``, ``samples``, ``seconds``,
    ``cpu_seconds``). ``ready`` holds what the loader is (workers, prefetch, ring,
    steps_per_epoch)."""

    def __init__(
        self,
        data: str,
        batch_size: int,
        *,
        seed: int,
        workers: int,
        prefetch: int,
        binary: Optional[Path] = None,
    ) -> None:
        self.binary = Path(binary) if binary is not None else default_binary()
        if not self.binary.is_file():
            raise FileNotFoundError(
                f"not built: {self.binary} is missing (cargo build --release -p mosaicrs-bench)"
            )
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self._proc = subprocess.Popen(
            [
                str(self.binary),
                "--data", str(data),
                "--batch-size", str(batch_size),
                "--seed", str(seed),
                "--workers", str(workers),
                "--prefetch", str(prefetch),
                "--epochs-from-stdin",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=_torch_lib_env(),
        )
        self.ready = self._read()

    def run(self, epoch: int) -> dict:
        assert self._proc.stdin is not None
        self._proc.stdin.write(f"{int(epoch)}\n")
        self._proc.stdin.flush()
        return self._read()

    def _read(self) -> dict:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(timeout=30)
            self._stderr.seek(0)
            raise RuntimeError(
                f"{self.binary.name} exited with {self._proc.returncode}: "
                f"{self._stderr.read()[-2000:].strip()}"
            )
        return json.loads(line)

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._stderr.close()

    def __enter__(self) -> "RustEpochs":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
