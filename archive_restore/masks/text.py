"""Overlaid text: orange/red camera date stamps (by colour and stroke shape) and white/black captions.

Date stamps: saturated orange-red pixels (hue in 0-25 deg, high saturation and value) that form
thin strokes (top-hat on an "orangeness" channel), grouped into a short horizontal row.
Captions and handwriting: near-white or near-black neutral strokes thinner than ~15 px that
line up into a horizontal text row (closing along rows, row-shaped component test).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class TextParams:
    stamp_floor: float = 60.0       # orangeness top-hat, grey levels
    caption_floor: float = 80.0     # luma top-hat of neutral strokes, grey levels
    stroke: int = 15                # top-hat size: strokes thinner than this
    min_row_width: int = 30         # px: a text row is at least this wide
    min_row_aspect: float = 2.0     # width / height of a text row
    min_glyphs: int = 4             # separate stroke components in a row
    max_glyph_cv: float = 0.6       # spread (std/mean) of glyph heights in a row


def _rows(cand: np.ndarray, p: TextParams, join: int) -> np.ndarray:
    """Keep candidates that belong to a horizontal row-shaped cluster. (H, W) bool."""
    u = cand.astype(np.uint8)
    closed = cv2.morphologyEx(u, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (join, max(3, join // 3))))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    if n <= 1:
        return np.zeros(cand.shape, bool)
    w = stats[:, cv2.CC_STAT_WIDTH]
    h = stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA]
    fill = area / np.maximum(w * h, 1)
    keep = (w >= p.min_row_width) & (w >= p.min_row_aspect * h) & (fill > 0.25)
    keep[0] = False
    if not keep.any():
        return np.zeros(cand.shape, bool)
    # a row of text holds several glyph-sized stroke components of similar height
    ng, glab, gst, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    gh = gst[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    row_of = np.zeros(ng - 1, np.int64)
    ys, xs = gst[1:, cv2.CC_STAT_TOP], gst[1:, cv2.CC_STAT_LEFT]
    # the row a glyph belongs to: the closed label under any one of its pixels
    first = np.full(ng, -1, np.int64)
    flat = glab.ravel()
    idx = np.flatnonzero(flat)
    first[flat[idx[::-1]]] = idx[::-1]
    row_of = lab.ravel()[first[1:]]
    for r in np.flatnonzero(keep):
        hs = gh[(row_of == r) & (gh >= 3)]
        if len(hs) < p.min_glyphs or hs.std() > p.max_glyph_cv * hs.mean():
            keep[r] = False
    return keep[lab] & cand


def detect_text(image: np.ndarray, lum: np.ndarray, factor: float = 1.0, p: TextParams = TextParams()) -> np.ndarray:
    """image: (H, W, 3) uint8 RGB; lum: its luma float32. Returns (H, W) bool text pixels."""
    f = image.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    orange = np.clip(np.minimum(r - b, r - 0.5 * g) - 40.0, 0, None) * (r > 150)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (p.stroke, p.stroke))
    stamp = cv2.morphologyEx(orange, cv2.MORPH_TOPHAT, k) > p.stamp_floor * factor
    out = _rows(stamp, p, join=9)
    chroma = f.max(axis=2) - f.min(axis=2)
    neutral = chroma < 40
    bright = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, k)
    dark = cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, k)
    cap = neutral & (((bright > p.caption_floor * factor) & (lum > 200)) | ((dark > p.caption_floor * factor) & (lum < 50)))
    out |= _rows(cap, p, join=11)
    return out
