"""Scratches and cracks: thin bright or dark lines, found by a matched ridge filter with
evidence integrated along the line.

1. Ridge filter (``_common.oriented_ridges``): at 12 orientations, the mean luma along a
   21-px line minus the brighter (darker) of the two parallel lines 5 px to each side. A
   step edge (object boundary) lies between its sides and scores <= 0; a scratch scores
   its contrast.
2. Continuation: per orientation, the fraction of a longer (``reach``-px) line, same
   angle, that also carries ridge evidence. Scratches continue; hair, eyes, fabric and
   foliage, whose ridges turn quickly, do not.
3. A pixel is a line pixel when, at some orientation, its ridge passes an absolute floor,
   stands well above the local clutter (mean |lum - median7| around it) and continues.
   Hysteresis: components must hold a strong seed and be long enough.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import box_mean, hysteresis, line_kernels, oriented_ridges


@dataclass(frozen=True)
class LineParams:
    """Floors are grey levels (0-255); lengths in pixels."""

    length: int = 21
    orientations: int = 12
    side: float = 5.0
    asym: float = 0.5            # penalty on |side1 - side2| (lines along object boundaries)
    reach: int = 41              # px, continuation line
    cover: float = 0.45          # fraction of the continuation line with ridge evidence
    strong: float = 40.0         # ridge contrast of a seed
    weak: float = 10.0           # ridge contrast of support
    clutter_box: int = 31
    strong_clutter: float = 5.0  # seed ridge / mean |residual| around it
    weak_clutter: float = 2.5
    min_length: float = 60.0     # px, bounding-box diagonal of a kept component


def detect_lines(lum: np.ndarray, res: np.ndarray, factor: float = 1.0, p: LineParams = LineParams()) -> np.ndarray:
    """lum: (H, W) float32 luma; res: ``median_residual(lum, 7)`` (texture measure).
    Returns (H, W) bool, True on scratch/crack pixels."""
    clutter = box_mean(np.abs(res), p.clutter_box)
    reach = dict((round(t, 6), k) for k, t in line_kernels(p.reach // 2 | 1, p.orientations))
    out = np.zeros(lum.shape, bool)
    strong_b = np.zeros(lum.shape, bool)
    strong_d = np.zeros(lum.shape, bool)
    weak_b = np.zeros(lum.shape, bool)
    weak_d = np.zeros(lum.shape, bool)
    for bright, dark, t in oriented_ridges(lum, p.length, p.orientations, p.side, p.asym):
        k = reach[round(t, 6)]
        for ridge, strong, weak in ((bright, strong_b, weak_b), (dark, strong_d, weak_d)):
            ev = (ridge > p.weak * factor) & (ridge > p.weak_clutter * clutter)
            if not ev.any():
                continue
            # continuation at half resolution (a coverage fraction survives it; 4x cheaper)
            small = cv2.resize(ev.astype(np.float32), (ev.shape[1] // 2 or 1, ev.shape[0] // 2 or 1), interpolation=cv2.INTER_AREA)
            small = cv2.filter2D(small, -1, k, borderType=cv2.BORDER_CONSTANT)
            cov = cv2.resize(small, (ev.shape[1], ev.shape[0]), interpolation=cv2.INTER_LINEAR)
            ev &= cov >= p.cover
            weak |= ev
            strong |= ev & (ridge > p.strong * factor) & (ridge > p.strong_clutter * clutter)
    for strong, weak in ((strong_b, weak_b), (strong_d, weak_d)):
        if not strong.any():
            continue
        lab, n, st, keep = hysteresis(strong, weak)
        length = np.hypot(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT])
        keep &= length >= p.min_length
        out |= keep[lab]
    return out
