"""What does ``masks.white_lines`` add to the learned detector? (Session 18's check.)

Usage: python scripts/white_lines_probe.py [--draw stratified] [--n 150] [--sensitivity medium]
           [--graph export/detector_v8_int8.onnx]

On the held-out training photos of ``detector_calibrate`` (clean twice, damaged once, the same
seeded cases), scores the learned detector's mask without the rule (``WHITE_LINES_AT`` emptied)
and with the rule's mask added (grown like the rest), and lists the clean photos the rule
flags most. Never run it on the validation set.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.masks import learned
from archive_restore.masks.net import calibration_files
from archive_restore.masks.white_lines import white_lines

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import calibration_cases, graph_mask, score  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draw", default="stratified")
    ap.add_argument("--n", type=int, default=150)
    ap.add_argument("--sensitivity", default="medium")
    ap.add_argument("--graph", type=Path, default=learned.default_detector_path())
    a = ap.parse_args()
    learned.WHITE_LINES_AT = ()  # the base is the detector without the rule
    d = MaskConfig().dilate
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1))

    def rule(img: np.ndarray) -> np.ndarray:
        return cv2.dilate(white_lines(img).astype(np.uint8), k) > 0

    base_c, comb_c, base_d, comb_d, alone = [], [], [], [], []
    for f, img, looked, dmg, kind in calibration_cases(calibration_files(draw=a.draw)[: a.n]):
        for im in (img, looked):
            b, r = graph_mask(im, a.sensitivity, a.graph), rule(im)
            base_c.append(b)
            comb_c.append(b | r)
            alone.append((float(r.mean()), f.name))
        b, r = graph_mask(dmg.damaged, a.sensitivity, a.graph), rule(dmg.damaged)
        base_d.append((b, dmg.mask, kind))
        comb_d.append((b | r, dmg.mask, kind))
    for name, (c, dd) in {"detector": (base_c, base_d), "detector + white_lines": (comb_c, comb_d)}.items():
        s = score(c, dd)
        print(f"{name}: clean {100 * s['clean_mean']:.4f} % mean, {100 * s['clean_over_1pct']:.2f} % of images over 1 %, "
              f"max {100 * s['clean_max']:.2f} %; F1 {s['f1']} (mean {s['mean_f1']}); recall {s['recall']}; precision {s['precision']}")
    print(f"the rule alone on clean images: {100 * np.mean([v for v, _ in alone]):.4f} % mean; most flagged:",
          ", ".join(f"{n} {100 * v:.2f} %" for v, n in sorted(alone, reverse=True)[:8]))


if __name__ == "__main__":
    main()
