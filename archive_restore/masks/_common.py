"""Shared building blocks of the detectors: luma, thin-structure residuals, line integration.

All functions take and return float32 arrays in grey levels (0-255 scale) unless stated.
"""

from __future__ import annotations

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


def thin_residuals(lum: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """White and black top-hat of ``lum`` with a ``size`` square: structures thinner than
    ``size`` brighter (first) or darker (second) than their surroundings. (H, W) float32 >= 0."""
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    bright = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, k)
    dark = cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, k)
    return bright, dark


@lru_cache(maxsize=16)
def line_kernels(length: int, n: int) -> tuple[np.ndarray, ...]:
    """``n`` normalised (sum 1) float32 line kernels of ``length`` px at angles k*pi/n."""
    out = []
    c = length // 2
    for i in range(n):
        t = np.pi * i / n
        k = np.zeros((length, length), np.uint8)
        dx, dy = np.cos(t) * c, np.sin(t) * c
        cv2.line(k, (int(round((c - dx) * 16)), int(round((c - dy) * 16))),
                 (int(round((c + dx) * 16)), int(round((c + dy) * 16))), 255, 1, cv2.LINE_AA, 4)
        kf = k.astype(np.float32)
        out.append(kf / kf.sum())
    return tuple(out)


def line_response(res: np.ndarray, length: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean of ``res`` along a ``length``-px line, at ``n`` orientations: (max, mean, min) over them.

    res: (H, W) float32 >= 0. Returns two (H, W) float32 maps. ``max - mean`` is high only
    where the residual continues along one direction (evidence integrated along scratches)
    and low on isotropic texture, blobs and flat areas.
    """
    best = low = total = None
    for k in line_kernels(length, n):
        r = cv2.filter2D(res, -1, k, borderType=cv2.BORDER_REFLECT)
        if best is None:
            best, low, total = r, r.copy(), r.copy()
        else:
            best = np.maximum(best, r)
            np.minimum(low, r, out=low)
            total += r
    return best, total * (1.0 / n), low


def remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    """(H, W) bool without 8-connected components smaller than ``min_area`` pixels."""
    if min_area <= 1 or not mask.any():
        return mask
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[lab]
