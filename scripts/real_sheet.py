"""Contact sheet of auto masks on real old photos: input | mask overlay (red) | restored, per row.

Usage: python scripts/real_sheet.py OUT.png [--sensitivity medium | --sensitivities medium high] [--detector rules|learned|both]
                                    [--model M.onnx] [--width W] [--graphs A.onnx B.onnx ...] PHOTO...
The restored column fills the auto mask with the default ONNX model (CPU), as `restore folder
--auto-mask` would. --detector both shows input | rules (red) | learned (red) | restored with
the learned mask. --width shrinks each panel to at most W px wide (the masks are made at full size).
--graphs compares learned detector graphs instead (each with its own sidecar thresholds): input |
one mask per graph | restored with the last graph's mask.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.evaluate import fill_hole
from archive_restore.masks import detect
from archive_restore.masks.batch import read_rgb
from archive_restore.runtime.session import InpaintSession, default_model_path

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import graph_mask  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("photos", type=Path, nargs="+")
    ap.add_argument("--sensitivity", default="medium")
    ap.add_argument("--sensitivities", nargs="+", default=None, help="one mask panel per sensitivity (and graph); the last one is restored")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--detector", choices=("rules", "learned", "both"), default="rules")
    ap.add_argument("--width", type=int, default=0)
    ap.add_argument("--graphs", type=Path, nargs="+", default=[])
    args = ap.parse_args()
    sess = InpaintSession(args.model or Path(default_model_path()), device="cpu")
    rows = []
    for p in args.photos:
        im = read_rgb(p)
        names = args.graphs or (["rules", "learned"] if args.detector == "both" else [args.detector])
        panels = [im]
        for sens in args.sensitivities or [args.sensitivity]:
            for name in names:
                if args.graphs:
                    m = graph_mask(im, sens, name)
                else:
                    m = detect(im, MaskConfig(sensitivity=sens, detector=name)).mask
                over = im.copy()
                over[m] = (255, 0, 0)
                panels.append(over)
                print(p, name, sens, f"{m.mean() * 100:.2f}% flagged")
        panels.append(fill_hole("model", im, m, sess) if m.any() else im)
        if args.width and im.shape[1] > args.width:
            size = (args.width, round(im.shape[0] * args.width / im.shape[1]))
            panels = [np.asarray(Image.fromarray(q).resize(size, Image.LANCZOS)) for q in panels]
        rows.append(np.concatenate(panels, 1))
    w = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0))) for r in rows]
    Image.fromarray(np.concatenate(rows, 0)).save(args.out, optimize=True)


if __name__ == "__main__":
    main()
