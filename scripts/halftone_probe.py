"""Does the auto-mask leave halftone prints alone (newspaper and magazine photos)?

Usage: python scripts/halftone_probe.py [--n 40] [--sensitivity medium]

The first N photos of the detectors' stratified held-out draw (``masks.net.calibration_files``,
which no shipped detector trained on; not cbsd68), enlarged 2-3x so that the screen is finer
than the picture, are printed as an amplitude-modulated dot screen (45 degrees,
PERIOD px, ink on paper) and "scanned" two ways:
- optical: the screen rendered at 4x, blurred by BLUR x PERIOD (the scanner's optics), then
  area-sampled, as a real scanner does;
- aliased: thresholded at the scan's own pixels (no optical low-pass), which gives moire.
No damage is painted: every flagged pixel is a false alarm. Prints the mean and largest share
flagged and the count over 1 %, per setting, next to the same photos unprinted.
"""

from __future__ import annotations

import argparse
import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.masks import detect
from archive_restore.masks.batch import read_rgb

PAPER = np.array([0.96, 0.93, 0.86], np.float32)
INK = np.array([0.12, 0.10, 0.09], np.float32)


def halftone(rgb: np.ndarray, period: float, blur: float = 0.2, ss: int = 4, angle: float = 45.0) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> the same size printed with a dot screen of ``period`` px and
    scanned: rendered at ``ss`` x, blurred (Gaussian, blur * period px), area-sampled
    (``ss`` = 1: thresholded at the scan's pixels, aliased)."""
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    h, w = g.shape
    big = cv2.resize(g, (w * ss, h * ss), interpolation=cv2.INTER_LINEAR) if ss > 1 else g
    yy, xx = np.mgrid[0: h * ss, 0: w * ss].astype(np.float32) / ss
    a = np.deg2rad(angle)
    u, v = xx * np.cos(a) + yy * np.sin(a), -xx * np.sin(a) + yy * np.cos(a)
    screen = (np.cos(2 * np.pi * u / period) + np.cos(2 * np.pi * v / period)) / 4 + 0.5
    dots = cv2.GaussianBlur((big > screen).astype(np.float32), (0, 0), blur * period * ss)
    if ss > 1:
        dots = cv2.resize(dots, (w, h), interpolation=cv2.INTER_AREA)
    out = INK + dots[..., None] * (PAPER - INK)
    return np.clip(out * 255 + 0.5, 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--sensitivity", default="medium")
    a = ap.parse_args()
    from archive_restore.masks.net import calibration_files

    files = calibration_files(draw="stratified")[: a.n]
    cfg = MaskConfig(sensitivity=a.sensitivity)
    settings = [("unprinted", 2, None, None, None), ("optical", 2, 2.5, 0.2, 4), ("optical", 2, 3, 0.2, 4),
                ("optical", 2, 3, 0.35, 4), ("optical", 2, 4, 0.2, 4), ("optical", 3, 4, 0.2, 4),
                ("aliased", 2, 3, 0.35, 1), ("aliased", 3, 3, 0.35, 1)]
    print(f"{len(files)} photos, {a.sensitivity}")
    for name, scale, period, blur, ss in settings:
        fr = []
        for f in files:
            im = cv2.resize(read_rgb(f), None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            if period:
                im = halftone(im, period, blur, ss)
            fr.append(float(detect(im, cfg).mask.mean()))
        fr = np.array(fr)
        what = name if period is None else f"{name}, period {period} px, blur {blur}"
        print(f"x{scale} {what}: mean {fr.mean() * 100:.3f} %, max {fr.max() * 100:.2f} %, "
              f"over 1 %: {(fr > 0.01).sum()}/{len(fr)}", flush=True)


if __name__ == "__main__":
    main()
