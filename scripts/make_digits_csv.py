#!/usr/bin/env python3
"""Writes scikit-learn's digits data set (bundled with scikit-learn, no
download) as CSV: 64 pixel columns f0..f63 (0..16) and an integer label.

Usage: make_digits_csv.py OUT.csv
"""
import sys

from sklearn.datasets import load_digits


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    digits = load_digits()
    header = [f"f{i}" for i in range(digits.data.shape[1])] + ["label"]
    with open(sys.argv[1], "w", encoding="ascii") as out:
        out.write(",".join(header) + "\n")
        for pixels, label in zip(digits.data, digits.target):
            out.write(",".join(str(int(p)) for p in pixels) + f",{int(label)}\n")
    print(f"wrote {len(digits.target)} rows to {sys.argv[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
