"""Recall of thin damage by how strongly the damage changed each pixel, for learned detectors.

Usage: python scripts/recall_by_change.py A.onnx [B.onnx ...] [--sensitivity medium] [--n 200]

Photos: the first N of the "plain-balanced" calibration draw (held out of every detector's
training; the thresholds are chosen on it, so this is a diagnosis, not a score to quote as
held-out quality). Photo i gets a seeded archive look and scratches (even i) or cracks (odd i).
Each ground-truth pixel is binned by the largest change the damage made to it in any channel
(grey levels; the ground truth counts changes above 2) and counted as found when the mask
``restore`` makes (hysteresis with the sidecar's thresholds, grown by ``MaskConfig.dilate``)
lies within 2 px of it: the F1 tolerance. Prints, per kind, each bin's share of the ground truth
and its recall. Question it answers: are the misses faint damage, or plainly visible damage?
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from archive_restore.damage import synthesize
from archive_restore.evaluate import TOLERANCE, _grow
from archive_restore.inpaint.data import archive_look, read_rgb
from archive_restore.masks.net import calibration_files

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import graph_mask  # noqa: E402

BINS = (2, 8, 16, 32, 64, 256)  # change in grey levels: (2, 8], (8, 16], ... (64, 255]


def main(argv: list[str]) -> None:
    graphs = [Path(a) for a in argv if a.endswith(".onnx")]
    if not graphs:
        raise SystemExit(__doc__)
    opt = {k: argv[argv.index(k) + 1] for k in ("--sensitivity", "--n") if k in argv}
    sens, n = opt.get("--sensitivity", "medium"), int(opt.get("--n", 200))
    files = calibration_files(draw="plain-balanced")[:n]
    nb = len(BINS) - 1
    total = {k: np.zeros(nb) for k in ("scratches", "cracks")}
    found = {g: {k: np.zeros(nb) for k in total} for g in graphs}
    for i, f in enumerate(files):
        kind = ("scratches", "cracks")[i % 2]
        rng = np.random.default_rng([777, i])
        looked = archive_look(read_rgb(f), rng, 0.6)
        d = synthesize(looked, rng, kinds=[kind])
        change = np.abs(d.damaged.astype(np.int16) - looked.astype(np.int16)).max(axis=2)[d.mask]
        b = np.clip(np.digitize(change, BINS, right=True) - 1, 0, nb - 1)  # (lo, hi]
        total[kind] += np.bincount(b, minlength=nb)
        for g in graphs:
            near = _grow(graph_mask(d.damaged, sens, g), TOLERANCE)[d.mask]
            found[g][kind] += np.bincount(b, weights=near, minlength=nb)
    heads = " ".join(f"{f'{lo + 1}-{hi}':>8s}" for lo, hi in zip(BINS[:-1], BINS[1:]))
    print(f"{len(files)} plain-balanced photos, {sens}; ground-truth pixels by change (grey levels)")
    for k in total:
        print(f"{k:10s} {'share':24s} {heads}   all")
        print(f"{'':10s} {'':24s} " + " ".join(f"{v:8.3f}" for v in total[k] / total[k].sum()))
        for g in graphs:
            r = found[g][k] / np.maximum(total[k], 1)
            print(f"{'':10s} {'recall ' + g.stem:24s} " + " ".join(f"{v:8.3f}" for v in r) + f" {found[g][k].sum() / total[k].sum():6.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
