"""Blotches, stains and tears: irregular patches of paper white (emulsion gone), brown stain or dark mould.

Paper-white loss: near-white, neutral, flat pixels (low local variance) forming a patch that is
much brighter than the ring of photo around it. Stains: brownish shift of hue inside a patch
relative to its surroundings. Absolute floors in grey levels; patches must have a minimum area.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import colourfulness, remove_small


@dataclass(frozen=True)
class BlotchParams:
    white_floor: float = 205.0     # luma of paper white
    max_chroma: float = 30.0
    flat_std: float = 3.0          # local std (grey levels) inside a loss
    ring_contrast: float = 40.0    # patch brighter than surroundings by this much
    min_area: int = 40
    max_aspect: float = 3.0        # bounding-box aspect of a patch
    max_border: float = 0.4        # share of an image side a patch may run along (tears bite less)
    ring_fraction: float = 0.6     # share of the ring that must be darker by ring_contrast / 2
    max_side: float = 0.75         # share of one side a patch may line within the margin below
    border_margin: int = 8         # px from a side (scans often carry a thin dark frame) ...
    border_margin_frac: float = 0.02  # ... or this share of the short side, if more


def detect_blotches(image: np.ndarray, lum: np.ndarray, factor: float = 1.0, p: BlotchParams = BlotchParams(),
                    chroma: np.ndarray | None = None) -> np.ndarray:
    """image: (H, W, 3) uint8 RGB; lum: luma float32; chroma: ``_common.colourfulness(image)`` if
    the caller has it. Returns (H, W) bool blotch pixels."""
    if chroma is None:
        chroma = colourfulness(image)
    mean = cv2.blur(lum, (5, 5))
    std = np.sqrt(np.clip(cv2.blur(lum * lum, (5, 5)) - mean * mean, 0, None))
    cand = (lum > p.white_floor) & (chroma < p.max_chroma) & (std < p.flat_std * (2 - factor))
    cand = remove_small(cand, p.min_area)
    if not cand.any():
        return cand
    n, lab, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    out = np.zeros(cand.shape, bool)
    H, W = lum.shape
    touch = border_contact(lab, n, 1).sum(1)
    near = border_contact(lab, n, max(p.border_margin, round(p.border_margin_frac * min(H, W)))).max(1)
    for i in range(1, n):
        x, y, w, h, a = stats[i]
        # open sky or a white wall running off the picture, also when a scanner's thin dark
        # frame keeps it a few px from the edge (a tear may bite into a side, not line it)
        if touch[i] > p.max_border or near[i] > p.max_side:
            continue
        if max(w, h) > p.max_aspect * min(w, h):  # planks, window frames, stripes: not a patch
            continue
        pad = max(4, int(0.5 * max(w, h)))
        y0, y1, x0, x1 = max(0, y - pad), min(lum.shape[0], y + h + pad), max(0, x - pad), min(lum.shape[1], x + w + pad)
        comp = lab[y0:y1, x0:x1] == i
        ring = cv2.dilate(comp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))) > 0
        ring &= ~cv2.dilate(comp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))).astype(bool)
        if not ring.any():
            continue
        inside = lum[y0:y1, x0:x1][comp].mean()
        around = np.median(lum[y0:y1, x0:x1][ring])
        darker = float(np.mean(lum[y0:y1, x0:x1][ring] < inside - 0.5 * p.ring_contrast * factor))
        if inside - around > p.ring_contrast * factor and darker >= p.ring_fraction and comp.sum() < 0.25 * lum.size:
            # include the soft edge: dilate into pixels brighter than the surroundings
            soft = cv2.dilate(comp.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))) > 0
            soft &= lum[y0:y1, x0:x1] > around + 0.25 * (inside - around)
            out[y0:y1, x0:x1] |= soft
    return out


def border_contact(lab: np.ndarray, n: int, margin: int) -> np.ndarray:
    """(n, 4) float in [0, 1]: per component of ``lab`` (H, W) int32, the share of each image
    side (top, bottom, left, right) it reaches within ``margin`` px (1 = on the edge itself)."""
    H, W = lab.shape
    m = max(1, min(margin, H, W))
    out = np.zeros((n, 4))
    for side, band in enumerate((lab[:m], lab[H - m:], lab[:, :m].T, lab[:, W - m:].T)):
        # (label, position along the side) pairs, each counted once however deep the band
        pos = np.broadcast_to(np.arange(band.shape[1]), band.shape)
        pairs = np.unique(band.astype(np.int64) * band.shape[1] + pos)
        out[:, side] = np.bincount(pairs // band.shape[1], minlength=n)[:n] / band.shape[1]
    return out
