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


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path


def _human(v: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _panel(ax, ys, values: list[float | None], colours, xlabel: str, fmt=None) -> None:
    """One horizontal bar panel with the value at each bar's end."""
    bars = ax.barh(ys, [v or 0 for v in values], color=colours)
    for bar, v in zip(bars, values):
        if v is None:
            ax.text(0.01, bar.get_y() + bar.get_height() / 2, "did not run",
                    transform=ax.get_yaxis_transform(), va="center", fontsize=8)
        else:
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " " + (fmt or _human)(v),
                    va="center", fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.margins(x=0.25)


def plot_write(shape: str, block: dict, out: Path) -> Path:
    writes = block["write"]
    ok = [w.get("ok") for w in writes]
    speed = [w["rows_per_s"] if k else None for w, k in zip(writes, ok)]
    disk = [w["bytes_on_disk"] / 2**20 if k else None for w, k in zip(writes, ok)]
    rss = [w["memory"]["peak_total_rss_bytes"] / 2**30 if k else None for w, k in zip(writes, ok)]
    colours = [_colour(w["name"]) for w in writes]
    fig, axes = plt.subplots(1, 3, figsize=(11, 0.45 * len(writes) + 1.3), sharey=True)
    ys = list(range(len(writes)))
    _panel(axes[0], ys, speed, colours, "rows/s (higher is better)")
    _panel(axes[1], ys, disk, colours, "MiB on disk (lower is better)", lambda v: f"{v:.0f}")
    _panel(axes[2], ys, rss, colours, "peak RSS of all processes, GiB", lambda v: f"{v:.2f}")
    axes[0].set_yticks(ys, [w["label"] for w in writes], fontsize=8)
    axes[0].invert_yaxis()
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
