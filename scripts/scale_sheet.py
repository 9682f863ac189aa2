"""Contact sheet: real old photos as scanned, and the same photos enlarged as a higher-resolution
scan shows them, with the auto masks (red) at native resolution only and with the coarse levels.

Usage: python scripts/scale_sheet.py OUT.png [--zoom 4] [--width 300] [--sensitivity medium] PHOTO...
Columns: input | mask of the photo as it is | mask of the photo enlarged --zoom times (bicubic),
scales native | the same, scales auto (``MaskConfig.scales``); each panel shrunk to --width px
(the masks are made at full size). Prints the share of pixels each mask flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.evaluate import rescan
from archive_restore.masks import detect
from archive_restore.masks.batch import read_rgb


def overlay(image: np.ndarray, mask: np.ndarray, width: int) -> np.ndarray:
    """(H,W,3) uint8 with ``mask`` painted red, shrunk (area) to ``width`` px wide."""
    vis = image.copy()
    vis[mask] = (255, 0, 0)
    h = round(image.shape[0] * width / image.shape[1])
    return cv2.resize(vis, (width, h), interpolation=cv2.INTER_AREA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--zoom", type=int, default=4)
    ap.add_argument("--width", type=int, default=300)
    ap.add_argument("--sensitivity", default="medium")
    args = ap.parse_args()
    rows = []
    for f in args.photos:
        im = read_rgb(f)
        big = rescan(im, args.zoom)  # as restore evaluate --scan-scale enlarges
        panels, shares = [overlay(im, np.zeros(im.shape[:2], bool), args.width)], []
        for image, scales in ((im, "auto"), (big, "native"), (big, "auto")):
            m = detect(image, MaskConfig(sensitivity=args.sensitivity, scales=scales)).mask
            shares.append(f"{100 * m.mean():.2f} %")
            panels.append(overlay(image, m, args.width))
        print(f"{f.name}: as scanned {shares[0]}; x{args.zoom} native {shares[1]}, auto {shares[2]}")
        h = max(p.shape[0] for p in panels)
        rows.append(np.concatenate([np.pad(p, ((0, h - p.shape[0]), (0, 4), (0, 0))) for p in panels], 1))
    w = max(r.shape[1] for r in rows)
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0))) for r in rows], 0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
