"""Time ``runtime.grain.add_grain`` alone on a generated grainy scan.

Usage: python benchmarks/bench_grain.py [--mp 6] [--repeats 5] [--grain-std 6]

The scan is flat grey with white luma grain of ``--grain-std`` levels, damaged like
``bench_folder.py``'s scans (5 long 3-px lines and 30 specks, about 1 % of the pixels),
filled by cv2.inpaint TELEA (a smooth fill, so every hole block gets grain). Prints the
median and all times, and the std of the noise that was added.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from archive_restore.runtime.grain import add_grain  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mp", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--grain-std", type=float, default=6.0)
    a = ap.parse_args()
    h = int(round((a.mp * 1e6 / 1.5) ** 0.5))
    w = int(round(h * 1.5))
    rng = np.random.default_rng(0)
    im = np.clip(128 + rng.normal(0, a.grain_std, (h, w, 1)), 0, 255).astype(np.uint8).repeat(3, 2)
    m = np.zeros((h, w), np.uint8)
    for _ in range(5):
        cv2.line(m, (int(rng.integers(0, w)), 0), (int(rng.integers(0, w)), h - 1), 255, 3)
    for _ in range(30):
        cv2.circle(m, (int(rng.integers(0, w)), int(rng.integers(0, h))), 4, 255, -1)
    filled = cv2.inpaint(im, m, 3, cv2.INPAINT_TELEA)
    mask = m > 0
    times = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        out = add_grain(filled, mask, seed=0)
        times.append(time.perf_counter() - t)
    added = (out.astype(np.float32) - filled)[mask]
    print(f"{w}x{h} ({w * h / 1e6:.1f} MP), {mask.mean() * 100:.2f} % filled: add_grain median "
          f"{np.median(times):.3f} s ({', '.join(f'{t:.3f}' for t in times)}); added noise std {added.std():.2f} levels")


if __name__ == "__main__":
    main()
