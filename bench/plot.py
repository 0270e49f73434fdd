"""PNG plots of bench/results/results.json; runs in the plot venv (.venvs/plot, matplotlib).

    .venvs/plot/bin/python bench/plot.py RESULTS.json OUT_DIR

Per shape: write_<shape>.png (rows/s and bytes on disk per write contender) and
read_<shape>.png (shuffled samples/s per read contender at each batch size, log scale).
Contenders that did not run are drawn as empty rows marked "did not run".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

DPI = 80
OURS = "#c0392b"
OTHERS = "#7f8c8d"


def _colour(name: str) -> str:
    return OURS if name.startswith("mosaicrs") else OTHERS


def _mark_missing(ax, labels: list[str], values: list[float | None]) -> None:
    for i, value in enumerate(values):
        if value is None:
            ax.text(0.01, i, "did not run", transform=ax.get_yaxis_transform(), va="center",
                    fontsize=8, color="black")


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def plot_write(shape: str, block: dict, out: Path) -> Path:
    writes = block["write"]
    labels = [w["label"] for w in writes]
    speed = [w["rows_per_s"] if w.get("ok") else None for w in writes]
    disk = [w["bytes_on_disk"] / 2**20 if w.get("ok") else None for w in writes]
    colours = [_colour(w["name"]) for w in writes]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.45 * len(writes) + 1.3), sharey=True)
    ys = range(len(writes))
    ax1.barh(ys, [v or 0 for v in speed], color=colours)
    ax1.set_yticks(list(ys), labels, fontsize=8)
    ax1.invert_yaxis()
    ax1.set_xlabel("rows/s (higher is better)")
    _mark_missing(ax1, labels, speed)
    ax2.barh(ys, [v or 0 for v in disk], color=colours)
    ax2.set_xlabel("MiB on disk (lower is better)")
    _mark_missing(ax2, labels, disk)
    fig.suptitle(f"Spark write, {shape}: {block['rows']:,} rows, local[2]", fontsize=10)
    return _save(fig, out / f"write_{shape}.png")


def plot_read(shape: str, block: dict, out: Path) -> Path:
    reads = block["read"]
    names, labels = [], {}
    for r in reads:
        if r["name"] not in labels:
            names.append(r["name"])
            labels[r["name"]] = r["label"]
    sizes = sorted({r["batch_size"] for r in reads})
    value = {
        (r["name"], r["batch_size"]): r["samples_per_s"] if r.get("ok") else None for r in reads
    }
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) * len(sizes) / 2 + 1.5))
    height = 0.8 / max(1, len(sizes))
    shades = ["#34495e", "#95a5a6", "#bdc3c7"]
    for k, size in enumerate(sizes):
        ys = [i + k * height for i in range(len(names))]
        vals = [value.get((n, size)) for n in names]
        bars = ax.barh(ys, [v or 0 for v in vals], height=height, label=f"B={size}",
                       color=shades[k % len(shades)])
        for bar, n in zip(bars, names):
            if n.startswith("mosaicrs"):
                bar.set_color(OURS if k == 0 else "#e6a09a")
    ax.set_xscale("log")
    ax.set_yticks([i + height * (len(sizes) - 1) / 2 for i in range(len(names))],
                  [labels[n] for n in names], fontsize=8)
    ax.invert_yaxis()
    missing = [n for n in names if all(value.get((n, s)) is None for s in sizes)]
    for i, n in enumerate(names):
        if n in missing:
            ax.text(0.01, i + height / 2, "did not run", transform=ax.get_yaxis_transform(),
                    va="center", fontsize=8)
    ax.set_xlabel("shuffled samples/s, log scale (higher is better)")
    handles = [Patch(color=shades[k % len(shades)], label=f"B={s}") for k, s in enumerate(sizes)]
    handles.append(Patch(color=OURS, label="mosaicrs"))
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(f"Read, {shape}: [B, {block['feature_width']}] float32 + label", fontsize=10)
    return _save(fig, out / f"read_{shape}.png")


def main(argv: list[str]) -> int:
    doc = json.loads(Path(argv[0]).read_text())
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for shape, block in doc["shapes"].items():
        print(plot_write(shape, block, out))
        print(plot_read(shape, block, out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
