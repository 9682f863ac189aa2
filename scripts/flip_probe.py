"""Does averaging the generator's fills over flips help? Masked PSNR and texture ratio per kind.

Usage: python scripts/flip_probe.py [MODEL.onnx]   (default: the shipped generator, fp32)

Photos: the first 48 of the "plain" calibration draw (``masks.net.calibration_files``) that the
default generator did not train on (``models/gunet_v2_card/train_files.txt``). Each gets one
seeded damage per kind (and the centre square); holes are the ground-truth masks. Fills: NS,
the model, the mean of the model's fills of the photo as is and flipped left-right, and the
mean over all four flips. Prints "PSNR dB / texture ratio" per kind and fill (issue 7's
metrics, ``archive_restore.evaluate``). Session 11's figures are in docs/quality.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from archive_restore.damage import synthesize
from archive_restore.evaluate import centre_square, fill_hole, load_model, psnr, texture_ratio
from archive_restore.inpaint.data import read_rgb
from archive_restore.masks.net import calibration_files

KINDS = ("scratches", "cracks", "dust", "text", "blotches", "centre")
FILLS = ("ns", "model", "flips2", "flips4")


def main(argv: list[str]) -> None:
    model, why = load_model(argv[0] if argv else None)
    if model is None:
        raise SystemExit(f"no model: {why}")
    used = set(Path("models/gunet_v2_card/train_files.txt").read_text().split())
    files = [f for f in calibration_files(draw="plain") if f"{f.parent.name}/{f.name}" not in used][:48]
    score = {k: {m: ([], []) for m in FILLS} for k in KINDS}

    def fill(im: np.ndarray, m: np.ndarray, fy: bool, fx: bool) -> np.ndarray:
        """(H,W,3) float32 in [0,1]: the model's fill of the flipped photo, flipped back."""
        sl = (slice(None, None, -1 if fy else 1), slice(None, None, -1 if fx else 1))
        return model.fill([np.ascontiguousarray(im[sl]).astype(np.float32) / 255], [np.ascontiguousarray(m[sl])])[0][sl]

    for i, f in enumerate(files):
        im = read_rgb(f)
        rng = np.random.default_rng([5, i])
        for k in KINDS:
            if k == "centre":
                dmg, gt = centre_square(im)
            else:
                d = synthesize(im, rng, kinds=[k])
                dmg, gt = d.damaged, d.mask
            if not gt.any():
                continue
            outs = [fill(dmg, gt, fy, fx) for fy, fx in ((0, 0), (0, 1), (1, 0), (1, 1))]
            fills = {"ns": fill_hole("ns", dmg, gt)}
            for name, o in (("model", outs[0]), ("flips2", (outs[0] + outs[1]) / 2), ("flips4", sum(outs) / 4)):
                res = dmg.copy()
                res[gt] = np.clip(o * 255 + 0.5, 0, 255).astype(np.uint8)[gt]
                fills[name] = res
            for m, fl in fills.items():
                score[k][m][0].append(psnr(fl, im, gt))
                score[k][m][1].append(texture_ratio(fl, im, gt))
    print(f"{len(files)} photos; masked PSNR dB / texture ratio")
    for k in KINDS:
        print(f"{k:10s} " + "  ".join(f"{m}: {np.mean(score[k][m][0]):.2f} / {np.mean(score[k][m][1]):.2f}" for m in FILLS))


if __name__ == "__main__":
    main(sys.argv[1:])
