"""Auto-mask detection time on a 6 MP scan, per sensitivity, 2 CPU cores.

Usage: python benchmarks/bench_masks.py [--mp 6] [--repeats 3] [--detector rules|learned]
The scan is ``bench_folder.photo`` (smooth shading, hard-edged shapes, grain) with synthetic
scratches and dust painted in (``damage.synthesize``); the figure is the median wall time of
``masks.detect`` after one warm-up. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _table import print_table
from bench_folder import photo

from archive_restore.config import MaskConfig
from archive_restore.damage import synthesize
from archive_restore.masks import detect


def scan(mp: float, seed: int = 0) -> np.ndarray:
    """(H,W,3) uint8 RGB of about ``mp`` megapixels at 3:2 (``bench_folder.photo``) with
    synthetic scratches and dust painted in."""
    rng = np.random.default_rng(seed)
    h = round((mp * 1e6 / 1.5) ** 0.5)
    return synthesize(photo(h, round(h * 1.5), rng), rng, kinds=["scratches", "dust"]).damaged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mp", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--detector", choices=("rules", "learned"), default="rules")
    args = ap.parse_args()
    img = scan(args.mp)
    rows = []
    for sens in ("low", "medium", "high"):
        cfg = MaskConfig(sensitivity=sens, detector=args.detector)
        detect(img, cfg)
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = detect(img, cfg)
            ts.append(time.perf_counter() - t)
        s = float(np.median(ts))
        rows.append({"detector": args.detector, "sensitivity": sens, "mp": round(img.shape[0] * img.shape[1] / 1e6, 2), "seconds": round(s, 3),
                     "s_per_mp": round(s / (img.shape[0] * img.shape[1] / 1e6), 3), "flagged_pct": round(100 * float(r.mask.mean()), 3)})
    print_table(rows, [("detector", "detector", ""), ("sensitivity", "sensitivity", ""), ("MP", "mp", ""), ("seconds", "seconds", ""),
                       ("s/MP", "s_per_mp", ""), ("flagged %", "flagged_pct", "")])
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
