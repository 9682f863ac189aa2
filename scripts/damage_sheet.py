"""Render a contact sheet of synthetic damage (docs/damage_examples.png): one row per kind.

Each row: three damaged crops, then the ground-truth mask of the last one.
Usage: python scripts/damage_sheet.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.damage import KINDS, synthesize

SRC = sorted(Path("/work/shared/data/train/debian_wallpapers").glob("*.jpg"))[::37] + sorted(
    Path("/work/shared/data/train/camvid").glob("*.jpg"))[::97]


def main(out: str = "docs/damage_examples.png") -> None:
    rows = []
    for ki, kind in enumerate(list(KINDS) + ["mixed"]):
        tiles = []
        for j in range(3):
            img = np.asarray(Image.open(SRC[(ki * 3 + j) % len(SRC)]).convert("RGB"))
            if (ki + j) % 4 == 3:  # grey scans too
                g = np.asarray(Image.fromarray(img).convert("L"))
                img = np.stack([g] * 3, -1)
            rng = np.random.default_rng(1000 * ki + j)
            d = synthesize(img, rng, kinds=None if kind == "mixed" else [kind])
            tiles.append(d.damaged)
        tiles.append(np.repeat(d.mask[..., None].astype(np.uint8) * 255, 3, 2))
        rows.append(np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=128) for t in tiles], 1))
    sheet = np.concatenate(rows, 0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(128, dither=Image.Dither.NONE).save(out, optimize=True)  # keep it < 500 KB
    print(out, sheet.shape)


if __name__ == "__main__":
    main(*sys.argv[1:])
