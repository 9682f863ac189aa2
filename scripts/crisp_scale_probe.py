"""Detector P/R/F1 on soft high-resolution scans with crisp damage: held-out training photos
(``calibration_files``, stratified; never trained or tuned on, never cbsd68) enlarged S times
(bicubic), then damaged at that size (``damage.synthesize``: thin, sharp damage, the native
pass's own ground), with ``MaskConfig.scales`` native and auto. The counterpart of
``scan_scale_probe.py``, where the damage is enlarged with the photo.

Usage: python scripts/crisp_scale_probe.py N [S]   (session 26: 100 2)
"""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import calibration_cases, prf
from archive_restore.masks.net import calibration_files
from archive_restore.masks import detect
from archive_restore.damage import synthesize, KINDS
from archive_restore.evaluate import rescan, tolerant_scores
from archive_restore.config import MaskConfig
N = int(sys.argv[1]); S = int(sys.argv[2]) if len(sys.argv) > 2 else 2
files = calibration_files(draw="stratified")[:N]
Z = lambda: {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
cnt = {v: {k: Z() for k in KINDS} for v in ("native", "auto")}
for i, (f, img, looked, d, kind) in enumerate(calibration_cases(files)):
    up = rescan(looked, S)
    dd = synthesize(up, np.random.default_rng([7, i]), kinds=[kind])
    for v in cnt:
        sc = tolerant_scores(detect(dd.damaged, MaskConfig(scales=v)).mask, dd.mask)
        for c in sc: cnt[v][kind][c] += sc[c]
for v in cnt:
    out = [f"{k[:5]} {p:.2f}/{r:.2f}/{f:.3f}" for k in KINDS for p, r, f in [prf(cnt[v][k])]]
    print(f"crisp damage on x{S} soft scans, {v:6s}: " + "  ".join(out))
