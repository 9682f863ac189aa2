"""Detector P/R/F1 when the damaged photo is scanned at s x the resolution (the damaged photo
enlarged bicubic, its ground truth nearest; tolerance 2*s px), with ``MaskConfig.scales``
native and auto, on held-out training photos (``calibration_files``, stratified: never trained
or tuned on, never cbsd68). Clean: the looked photos at each scale, and album pages (4 x 4
held-out photos of 256 px in one image).

Usage: python scripts/scan_scale_probe.py N SENSITIVITY [learned|rules]   (session 26: 100 medium)"""
import sys, time, dataclasses
import numpy as np, cv2
sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from detector_calibrate import calibration_cases, prf
from archive_restore.masks.net import calibration_files
from archive_restore import masks
from archive_restore.damage import KINDS
from archive_restore.evaluate import rescan, tolerant_scores
from archive_restore.config import MaskConfig

N = int(sys.argv[1]); sens = sys.argv[2]; det = sys.argv[3] if len(sys.argv) > 3 else "learned"
scales = [1, 2, 4]
variants = ["native", "auto"]
files = calibration_files(draw="stratified")[:N]
Z = lambda: {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
cnt = {(v, s): {k: Z() for k in KINDS} for v in variants for s in scales}
clean = {(v, s): [] for v in variants for s in scales}
mos = {v: [] for v in variants}
cfg = MaskConfig(sensitivity=sens, detector=det)
def mask_of(im, v):
    return masks.detect(im, dataclasses.replace(cfg, scales=v)).mask
t0 = time.time()
looks = []
for i, (f, img, looked, d, kind) in enumerate(calibration_cases(files)):
    looks.append(cv2.resize(looked, (256, 256), interpolation=cv2.INTER_AREA))
    for s in scales:
        im, lk, gt = rescan(d.damaged, s), rescan(looked, s), rescan(d.mask, s)
        for v in variants:
            if s == 1 and v != "native" and masks.coarse_level(im) is None:
                sc, fr = sc_n, fr_n
            else:
                sc = tolerant_scores(mask_of(im, v), gt, tol=2 * s); fr = mask_of(lk, v).mean()
            if v == "native": sc_n, fr_n = sc, fr
            for c in cnt[(v, s)][kind]:
                cnt[(v, s)][kind][c] += sc[c]
            clean[(v, s)].append(fr)
for j in range(0, len(looks) - 15, 16):
    m = np.concatenate([np.concatenate(looks[j + 4 * r: j + 4 * r + 4], axis=1) for r in range(4)], axis=0)
    for v in variants:
        mos[v].append(mask_of(m, v).mean())
print(f"{len(files)} photos, {sens}, {det}, {time.time()-t0:.0f} s")
for (v, s) in cnt:
    f1 = {k: prf(cnt[(v, s)][k]) for k in KINDS}
    cl = np.array(clean[(v, s)])
    print(f"{v:13s} x{s}: clean {100*cl.mean():.3f} % ({(cl>0.01).sum()}>1%)  " + "  ".join(f"{k[:5]} {v_[0]:.2f}/{v_[1]:.2f}/{v_[2]:.3f}" for k, v_ in f1.items()))
for v in variants if len(looks) >= 16 else []:  # album pages need 16 photos
    a = np.array(mos[v]); print(f"{v:13s} album pages 4x4 of 256 px: clean {100*a.mean():.3f} % ({(a>0.01).sum()}>1% of {len(a)}) max {100*a.max():.2f}%")
