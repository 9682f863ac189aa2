"""Dev harness: detector quality on TRAINING crops damaged by damage.py (never the val set).

Usage: python scripts/tune_masks.py [N]  -> per-kind tolerant P/R/F1 and clean flagged fraction.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.damage import KINDS, synthesize
from archive_restore.evaluate import tolerant_scores
from archive_restore.masks import detect


def photos(n: int) -> list[np.ndarray]:
    root = Path("/work/shared/data/train")
    files = []
    for sub, step in (("debian_wallpapers", 7), ("camvid", 23), ("bsds500_traintest", 31), ("imagenet_sample", 97)):
        files += sorted((root / sub).glob("*.jpg"))[::step][: n // 4 + 1]
    return [np.asarray(Image.open(f).convert("RGB")) for f in files[:n]]


def main(n: int = 24) -> None:
    imgs = photos(n)
    cfg = MaskConfig()
    t0 = time.perf_counter()
    fr = [detect(im, cfg).mask.mean() for im in imgs]
    dt = time.perf_counter() - t0
    mp = sum(im.shape[0] * im.shape[1] for im in imgs) / 1e6
    print(f"clean: mean {np.mean(fr)*100:.3f}% max {np.max(fr)*100:.3f}%  {dt/mp:.2f} s/MP")
    for ki, kind in enumerate(KINDS):
        tp = fp = fn = 0
        for i, im in enumerate(imgs):
            d = synthesize(im, np.random.default_rng(10_000 + 100 * ki + i), kinds=[kind])
            s = tolerant_scores(detect(d.damaged, cfg).mask, d.mask)
            tp += s["tp_pred"]; fp += s["fp"]; fn += s["fn"]
            tpr = s["tp_gt"]
        p = tp / max(tp + fp, 1)
        print(f"{kind:10s} P {p:.3f}", end=" ")
        # recall needs gt-side counts
        tot_gt = rec = 0
        for i, im in enumerate(imgs):
            d = synthesize(im, np.random.default_rng(10_000 + 100 * ki + i), kinds=[kind])
            s = tolerant_scores(detect(d.damaged, cfg).mask, d.mask)
            rec += s["tp_gt"]; tot_gt += s["tp_gt"] + s["fn"]
        r = rec / max(tot_gt, 1)
        print(f"R {r:.3f} F1 {2*p*r/max(p+r,1e-9):.3f}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
