"""Auto-mask detection time on a 6 MP scan, per sensitivity, 2 CPU cores.

Usage: python benchmarks/bench_masks.py [--mp 6] [--repeats 3]
The scan is a cbsd68-sized training-like photo tiled up to the size with synthetic scratches
and dust painted in (``damage.synthesize``); the figure is the median wall time of
``masks.detect`` after one warm-up. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.damage import synthesize
from archive_restore.masks import detect


def scan(mp: float, seed: int = 0) -> np.ndarray:
    """(H,W,3) uint8 RGB of about ``mp`` megapixels at 3:2, photo-like, with damage."""
    rng = np.random.default_rng(seed)
    h = round((mp * 1e6 / 1.5) ** 0.5)
    w = round(h * 1.5)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    g = 110 + 50 * np.sin(x / 230.0) * np.cos(y / 170.0) + 25 * np.sin((x + y) / 37.0)
    noise = cv2.resize(rng.normal(0, 14, (h // 24, w // 24)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    g = np.clip(g + noise + rng.normal(0, 3, (h, w)), 0, 255)
    img = np.stack([g, g * 0.93 + 6, g * 0.82 + 18], -1).astype(np.uint8)
    return synthesize(img, rng, kinds=["scratches", "dust"]).damaged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mp", type=float, default=6.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    img = scan(args.mp)
    rows = []
    for sens in ("low", "medium", "high"):
        cfg = MaskConfig(sensitivity=sens)
        detect(img, cfg)
        ts = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            r = detect(img, cfg)
            ts.append(time.perf_counter() - t)
        s = float(np.median(ts))
        rows.append({"sensitivity": sens, "mp": round(img.shape[0] * img.shape[1] / 1e6, 2), "seconds": round(s, 3),
                     "s_per_mp": round(s / (img.shape[0] * img.shape[1] / 1e6), 3), "flagged_pct": round(100 * float(r.mask.mean()), 3)})
    print(f"{'sens.':<9}{'MP':>6}{'seconds':>9}{'s/MP':>8}{'flagged %':>11}")
    for r in rows:
        print(f"{r['sensitivity']:<9}{r['mp']:>6}{r['seconds']:>9}{r['s_per_mp']:>8}{r['flagged_pct']:>11}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
