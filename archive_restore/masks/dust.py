"""Dust specks and hairs: small compact bright or dark spots that stand out from smooth surroundings.

Residual ``lum - median9(lum)`` (spots up to ~8 px across keep their full contrast). A speck
is a connected set of pixels past an absolute floor whose peak also stands well above the
local clutter (mean capped |residual| around it), small and compact; a hair is a thin curved
component (short, 1-2 px wide) on smooth surroundings. Texture (foliage, gravel, fur) raises
the clutter and is left alone, by design.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import box_mean, median_residual


@dataclass(frozen=True)
class DustParams:
    median: int = 9
    seed_floor: float = 25.0        # grey levels: peak of a speck
    grow_floor: float = 8.0         # grey levels: pixels joined to a seed
    clutter_box: int = 31
    clutter_cap: float = 12.0
    clutter_ratio: float = 20.0     # peak / clutter
    max_chroma_gain: float = 15.0   # grey levels of chroma above the local median
    max_ring_spread: float = 0.25   # ring std / peak contrast (0 disables the ring test)
    max_extent: int = 12            # px, bounding box of a speck
    max_aspect: float = 3.0
    hair_extent: int = 60           # px, bounding box of a hair
    hair_width: float = 3.0         # px, area / bounding-box diagonal of a hair
    hair_ratio: float = 30.0       # peak / clutter for hairs (they look like scene lines)


def detect_specks(lum: np.ndarray, factor: float = 1.0, p: DustParams = DustParams(),
                  chroma: np.ndarray | None = None) -> np.ndarray:
    """lum: (H, W) float32 luma in [0, 255]; chroma: (H, W) float32 max-min of RGB or None
    (skips the colour test). Returns (H, W) bool, True on dust/hair pixels."""
    res = median_residual(lum, p.median)
    clutter = box_mean(np.minimum(np.abs(res), p.clutter_cap), p.clutter_box) + 0.5
    out = np.zeros(lum.shape, bool)
    # seeds of bright (r = res) and dark (r = -res) specks: past the floor and the clutter
    seeds = [(r, (r > p.seed_floor * factor) & (r > p.clutter_ratio * clutter)) for r in (res, -res)]
    if chroma is not None:
        # dust is grey-white or black: a speck more colourful than its surroundings is scene
        # (berries, flowers, lights, coloured print dots); one test for both polarities
        grey = _grey(chroma, seeds[0][1] | seeds[1][1], p.median, p.max_chroma_gain)
        seeds = [(r, seed & grey) for r, seed in seeds]
    for r, seed in seeds:
        if not seed.any():
            continue
        grow = r > p.grow_floor * factor
        n, lab, st, _ = cv2.connectedComponentsWithStats(grow.astype(np.uint8), connectivity=8)
        has = np.zeros(n, bool)
        has[np.unique(lab[seed])] = True
        peak_ratio = np.zeros(n)
        np.maximum.at(peak_ratio, lab[seed], (r / clutter)[seed])
        w, h, area = st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT], st[:, cv2.CC_STAT_AREA]
        big, small = np.maximum(w, h), np.maximum(np.minimum(w, h), 1)
        speck = (big <= p.max_extent) & (big <= p.max_aspect * small)
        hair = (big <= p.hair_extent) & (area <= p.hair_width * np.hypot(w, h)) & (peak_ratio >= p.hair_ratio)
        keep = has & (speck | hair)
        keep[0] = False
        if keep.any() and p.max_ring_spread > 0:
            keep &= _uniform_ring(lum, lab * keep[lab], n, r, p.max_ring_spread)
        out |= keep[lab]
    return out


def _grey(chroma: np.ndarray, where: np.ndarray, size: int, gain: float) -> np.ndarray:
    """(H, W) bool, True at pixels of ``where`` whose colourfulness exceeds its median over
    the ``size`` square around it by less than ``gain`` (False elsewhere). chroma: (H, W)
    float32 in [0, 255]. The median is ``cv2.medianBlur``'s (uint8, replicated border); seeds
    are few, so it is taken at those pixels only unless they are many."""
    ys, xs = np.nonzero(where)
    out = np.zeros(where.shape, bool)
    if ys.size == 0:
        return out
    c8 = np.clip(chroma, 0, 255).astype(np.uint8)
    if ys.size * size * size > c8.size:  # many seeds: one whole-image median is cheaper
        out[ys, xs] = (chroma - cv2.medianBlur(c8, size))[ys, xs] < gain
        return out
    k = size // 2
    padded = cv2.copyMakeBorder(c8, k, k, k, k, cv2.BORDER_REPLICATE)
    d = np.arange(size)
    patches = padded[(ys[:, None] + d)[:, :, None], (xs[:, None] + d)[:, None, :]].reshape(ys.size, -1)
    med = np.partition(patches, patches.shape[1] // 2, axis=1)[:, patches.shape[1] // 2]
    out[ys, xs] = (chroma[ys, xs] - med) < gain
    return out


def _uniform_ring(lum: np.ndarray, lab: np.ndarray, n: int, r: np.ndarray, spread: float) -> np.ndarray:
    """(n,) bool: components whose surrounding ring (2-3 px out) is even: its luma std is
    below ``spread`` times the component's peak contrast. Dust lies on the photo; corners of
    roofs, chimneys and road markings, which also stand out of a median, have an uneven ring."""
    lab32 = lab.astype(np.float32)
    outer = cv2.dilate(lab32, cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7)))
    inner = cv2.dilate(lab32, cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3)))
    ring = (outer > 0) & (inner == 0)
    rl = outer[ring].astype(np.int64)
    v = lum[ring].astype(np.float64)
    cnt = np.maximum(np.bincount(rl, minlength=n), 1)
    mean = np.bincount(rl, v, n) / cnt
    std = np.sqrt(np.maximum(np.bincount(rl, v * v, n) / cnt - mean * mean, 0))
    peak = np.zeros(n)
    m = lab > 0
    np.maximum.at(peak, lab[m], r[m])
    ok = std <= spread * peak
    ok[0] = False
    return ok
