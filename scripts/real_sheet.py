"""Contact sheet of auto masks on real old photos: input | mask overlay (red) per row.

Usage: python scripts/real_sheet.py OUT.png PHOTO...
"""

from __future__ import annotations

import sys

import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.masks import detect
from archive_restore.masks.batch import read_rgb


def main(out: str, *paths: str) -> None:
    rows = []
    for p in paths:
        im = read_rgb(__import__("pathlib").Path(p))
        m = detect(im, MaskConfig()).mask
        over = im.copy()
        over[m] = (255, 0, 0)
        rows.append(np.concatenate([im, over], 1))
        print(p, f"{m.mean() * 100:.2f}% flagged")
    w = max(r.shape[1] for r in rows)
    pairs = [np.concatenate([rows[i], rows[i + 1] if i + 1 < len(rows) else np.zeros_like(rows[i])], 1) for i in range(0, len(rows), 2)]
    Image.fromarray(np.concatenate(pairs, 0)).quantize(128, dither=Image.Dither.NONE).save(out, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
