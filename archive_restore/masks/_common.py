"""Shared building blocks of the detectors: luma, median residuals, oriented ridge filters.

All functions take and return float32 arrays in grey levels (0-255 scale) unless stated.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache

import cv2
import numpy as np

# multiplier on every absolute response floor: lower = more sensitive
SENSITIVITY = {"low": 1.35, "medium": 1.0, "high": 0.75}


def sensitivity_factor(name: str) -> float:
    """Factor applied to absolute floors for ``name`` in low/medium/high; raises on others."""
    try:
        return SENSITIVITY[name]
    except KeyError:
        raise ValueError(f"unknown mask sensitivity {name!r}; choose from {tuple(SENSITIVITY)}") from None


def luma(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 luma in [0, 255] (Rec. 601)."""
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def colourfulness(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) float32 colourfulness: max - min of the channels, in
    [0, 255] (0 on grey). Computed with OpenCV's SIMD min/max, several times faster than
    numpy's reduction over the channel axis."""
    r, g, b = cv2.split(image)
    return cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b)).astype(np.float32)


def median_residual(lum: np.ndarray, size: int) -> np.ndarray:
    """Signed ``lum - median(lum, size)``: (H, W) float32. Thin lines and small spots (narrower
    than about size/2) stand out with their full contrast; step edges and smooth shading,
    which a median keeps, give ~0. lum: (H, W) float32 in [0, 255]."""
    u8 = np.clip(lum + 0.5, 0, 255).astype(np.uint8)
    return lum - cv2.medianBlur(u8, size).astype(np.float32)


@lru_cache(maxsize=16)
def line_kernels(length: int, n: int) -> tuple[tuple[np.ndarray, float], ...]:
    """``n`` normalised (sum 1) float32 anti-aliased line kernels of ``length`` px at angles
    k*pi/n, each with its angle in radians."""
    out = []
    c = length // 2
    for i in range(n):
        t = np.pi * i / n
        k = np.zeros((length, length), np.uint8)
        dx, dy = np.cos(t) * c, np.sin(t) * c
        cv2.line(k, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
                 (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 255, 1, cv2.LINE_AA, 4)
        kf = k.astype(np.float32)
        # crop all-zero border rows/columns symmetrically (the anchor stays at the centre):
        # near-axis kernels become 21x3 instead of 21x21, several times cheaper to apply
        rows, cols = np.flatnonzero(kf.any(axis=1)), np.flatnonzero(kf.any(axis=0))
        r = min(rows[0], length - 1 - rows[-1])
        c0 = min(cols[0], length - 1 - cols[-1])
        kf = kf[r:length - r, c0:length - c0]
        out.append((np.ascontiguousarray(kf / kf.sum()), t))
    return tuple(out)


def line_offsets(length: int, orients: int, shift: float = 0.0) -> np.ndarray:
    """(orients, length, 2) int64 (dy, dx): the taps of centred straight segments of ``length``
    px (unit spacing), one per orientation in [0, pi), moved ``shift`` px perpendicular to
    themselves (the sides of a line: ``masks.white_lines``)."""
    i = np.arange(length) - (length - 1) / 2
    a = np.arange(orients) * np.pi / orients
    dy = np.sin(a)[:, None] * i + np.cos(a)[:, None] * shift
    dx = np.cos(a)[:, None] * i - np.sin(a)[:, None] * shift
    return np.stack([np.rint(dy), np.rint(dx)], -1).astype(np.int64)


def _shift(a: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``a`` translated by (dx, dy) px (bilinear, replicated border)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(a, m, (a.shape[1], a.shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def box_mean(a: np.ndarray, size: int) -> np.ndarray:
    """Mean of ``a`` over a ``size`` square (reflected border). (H, W) float32."""
    return cv2.blur(a, (size, size), borderType=cv2.BORDER_REFLECT)


def hysteresis(strong: np.ndarray, weak: np.ndarray) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
    """8-connected components of ``weak`` that hold a ``strong`` pixel.

    Returns (labels (H, W) int32, n, stats as cv2.connectedComponentsWithStats, keep (n,) bool).
    """
    n, lab, stats, _ = cv2.connectedComponentsWithStats((weak | strong).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[strong])] = True
    keep[0] = False
    return lab, n, stats, keep


def remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """(H, W) bool without 8-connected components smaller than ``min_area`` pixels."""
    if min_area <= 1 or not mask.any():
        return mask
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[lab]


def oriented_ridges(lum: np.ndarray, length: int, n: int, side: float, asym: float = 0.0) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Matched ridge filter on luma at ``n`` orientations: per orientation (bright, dark, angle).

    The mean of ``lum`` along a ``length``-px line is compared with the same mean on the two
    parallel lines ``side`` px away: a bright (dark) ridge is above (below) both sides, a step
    edge lies between them and scores <= 0. Each score is further reduced by ``asym`` times
    the difference between the two sides (a line along an object boundary has unequal sides; a
    scratch over flat photo has equal ones). Maps are (H, W) float32 in grey levels
    (negative = no ridge). A generator: one orientation's maps live at a time, so a large
    tile costs a few maps of memory, not 2n."""
    for k, t in line_kernels(length, n):
        r = cv2.filter2D(lum, -1, k, borderType=cv2.BORDER_REFLECT)
        nx, ny = -np.sin(t) * side, np.cos(t) * side
        s1, s2 = _shift(r, nx, ny), _shift(r, -nx, -ny)
        pen = cv2.absdiff(s1, s2)
        pen *= asym
        hi, lo = cv2.max(s1, s2), cv2.min(s1, s2)
        yield cv2.subtract(cv2.subtract(r, hi), pen), cv2.subtract(cv2.subtract(lo, r), pen), t
