"""Auto-mask detection time on a 6 MP scan, per sensitivity, 2 CPU cores.

Usage: python benchmarks/bench_masks.py [--mp 6] [--repeats 3] [--detector rules|learned]
                                        [--graphs A.onnx B.onnx ...] [--sensitivities medium ...]
                                        [--scales auto native]
The scan is ``bench_folder.photo`` (smooth shading, hard-edged shapes, grain) with synthetic
scratches and dust painted in (``damage.synthesize``); the figure is the median wall time of
``masks.detect`` after one warm-up. ``--graphs``: learned detector graphs (each with its JSON
sidecar, run as ``MaskConfig.detector_graph``) timed in turn within each repeat, so a busy
machine slows them alike; the shipped one when absent. ``--scales``: ``MaskConfig.scales`` values
timed in turn the same way (default: the default, auto). Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

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
    ap.add_argument("--graphs", nargs="+", type=Path, default=None, help="learned detector graphs to time in turn")
    ap.add_argument("--sensitivities", nargs="+", default=["low", "medium", "high"])
    ap.add_argument("--scales", nargs="+", choices=("auto", "native"), default=[MaskConfig.scales])
    args = ap.parse_args()
    img = scan(args.mp)
    graphs = args.graphs or [None]
    runs = [(g, sc) for g in graphs for sc in args.scales]
    rows = []
    for sens in args.sensitivities:
        cfg = MaskConfig(sensitivity=sens, detector="learned" if args.graphs else args.detector)
        cfgs = [dataclasses.replace(cfg, scales=sc, detector_graph=None if g is None else str(g)) for g, sc in runs]
        ts: dict[int, list[float]] = {i: [] for i in range(len(runs))}
        flagged = {}
        for rep in range(args.repeats + 1):  # the first round warms up
            for i, c in enumerate(cfgs):
                t = time.perf_counter()
                r = detect(img, c)
                if rep:
                    ts[i].append(time.perf_counter() - t)
                flagged[i] = round(100 * float(r.mask.mean()), 3)
        for i, (g, sc) in enumerate(runs):
            s = float(np.median(ts[i]))
            mp = img.shape[0] * img.shape[1] / 1e6
            rows.append({"detector": cfg.detector if g is None else g.stem, "scales": sc, "sensitivity": sens, "mp": round(mp, 2),
                         "seconds": round(s, 3), "s_per_mp": round(s / mp, 3), "flagged_pct": flagged[i]})
    print_table(rows, [("detector", "detector", ""), ("scales", "scales", ""), ("sensitivity", "sensitivity", ""), ("MP", "mp", ""), ("seconds", "seconds", ""),
                       ("s/MP", "s_per_mp", ""), ("flagged %", "flagged_pct", "")])
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
