"""Contact sheet of the pyramid pre-fill on large holes: damaged | NS | model without the
pyramid | model with it | original, one row per photo.

Usage: python scripts/pyramid_sheet.py OUT.jpg [--model M.onnx] [--train DIR]
Photos: one per source of DIR (default ../shared/data/train) that gunet_v2 never trained on
(not in models/gunet_v2_card/train_files.txt), seeded; even rows get the centre square, odd
rows synthetic blotches. Prints the masked PSNR of each column per row.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.damage import damage_mask
from archive_restore.evaluate import fill_hole, psnr
from archive_restore.masks.batch import read_rgb
from archive_restore.runtime.session import InpaintSession, default_model_path

SOURCES = ("bsds500_traintest", "camvid", "imagenet_sample", "sunhays80", "utkface", "imagenet_sample")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--train", type=Path, default=Path("../shared/data/train"))
    args = ap.parse_args()
    used = set(Path("models/gunet_v2_card/train_files.txt").read_text().split())
    rng = np.random.default_rng(7)
    model = args.model or Path(default_model_path())
    on = InpaintSession(model, device="cpu", pyramid=True)
    off = InpaintSession(model, device="cpu", pyramid=False)
    rows = []
    for i, src in enumerate(SOURCES):
        files = [f for f in sorted((args.train / src).rglob("*.*"))
                 if f.suffix.lower() in (".jpg", ".png") and str(f.relative_to(args.train)) not in used]
        f = files[rng.integers(len(files))]
        im = read_rgb(f)
        h, w = im.shape[:2]
        if i % 2 == 0:
            m = np.zeros((h, w), bool)
            m[h // 4:3 * h // 4, w // 4:3 * w // 4] = True
        else:
            m = damage_mask((h, w), np.random.default_rng(i), "blotches")
        damaged = im.copy()
        damaged[m] = 255
        cols = [fill_hole("ns", im, m), fill_hole("model", im, m, off), fill_hole("model", im, m, on)]
        print(f.name, "NS / no pyramid / pyramid:", " / ".join(f"{psnr(c, im, m):.2f}" for c in cols), "dB")
        rows.append(np.concatenate([damaged, *cols, im], 1)[:200])
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0))) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out, quality=85)


if __name__ == "__main__":
    main()
