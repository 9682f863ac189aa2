"""Measure classical pre-fill options on TRAINING crops: masked PSNR per damage kind and time.

Usage: python scripts/prefill_options.py [N]   (N crops, default 120, sampled across sources)
The generator learns a correction on top of the best of these, so the choice is measured,
never tuned on the validation set.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from archive_restore.damage import KINDS
from archive_restore.inpaint.data import list_images, make_mask, read_rgb
from archive_restore.prefill import prefill

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "train"


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 120
    files = list_images(ROOT)
    rng = np.random.default_rng(7)
    picks = [files[i] for i in rng.choice(len(files), n, replace=False)]
    options = [("telea", 3), ("telea", 5), ("ns", 3), ("ns", 5), ("none", 0)]
    kinds = list(KINDS) + ["centre_square"]
    res = {o: {k: [] for k in kinds} for o in options}
    secs = {o: 0.0 for o in options}
    for i, f in enumerate(picks):
        img = read_rgb(f)
        for k in kinds:
            m = make_mask(img.shape[:2], np.random.default_rng([i, kinds.index(k)]), k)
            for o in options:
                t = time.perf_counter()
                out = prefill(img, m, o[0], o[1])
                secs[o] += time.perf_counter() - t
                err = ((out[m].astype(np.float64) - img[m]) ** 2).mean()
                res[o][k].append(10 * np.log10(255.0**2 / max(err, 1e-10)))
    print("| prefill | " + " | ".join(kinds) + " | ms/crop-kind |")
    print("|---" * (len(kinds) + 2) + "|")
    for o in options:
        cells = " | ".join(f"{np.mean(res[o][k]):.2f}" for k in kinds)
        print(f"| {o[0]} r={o[1]} | {cells} | {1000 * secs[o] / (n * len(kinds)):.2f} |")


if __name__ == "__main__":
    main()
