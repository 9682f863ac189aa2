"""Overlaid text: orange/red camera date stamps (by colour and stroke shape) and white/black captions.

Date stamps: saturated orange-red pixels (high red minus blue and minus half green) that form
thin strokes (top-hat on an "orangeness" channel), grouped into a horizontal row of several
glyph pieces; the row is then filled out with its faint glow and anti-aliased fringe.
Captions and handwriting: near-white or near-black neutral strokes thinner than ~15 px that
line up into a horizontal row of several glyphs of similar height. Rows are joined with a gap
that scales with the glyph height, so large and small text group the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import colourfulness


@dataclass(frozen=True)
class TextParams:
    stamp_floor: float = 60.0       # orangeness top-hat, grey levels
    glow_floor: float = 12.0        # orangeness top-hat of the glow/fringe kept inside a stamp row
    caption_floor: float = 80.0     # luma top-hat of neutral strokes, grey levels
    stroke: int = 15                # top-hat size: strokes thinner than this
    min_row_width: int = 30         # px: a text row is at least this wide
    min_row_aspect: float = 2.0     # width / height of a text row
    min_glyphs: int = 4             # separate stroke components in a row
    max_glyph_cv: float = 0.6       # spread (std/mean) of glyph heights in a caption row
    max_stroke_cv: float = 0.25     # spread (std/mean) of glyph stroke widths in a caption row
    join: float = 1.2               # gap bridged along a row, in glyph heights
    orange_offset: float = 40.0     # red - max(blue, green / 2) above this is "orange"
    red_min: float = 150.0          # red channel floor of a stamp pixel
    stamp_band: float = 0.22        # stamps lie in the top or bottom 22 % of the image
    max_green: float = 0.65         # green / red ceiling of a stamp pixel
    stamp_glyphs: int = 2           # separate pieces in a stamp row (merged digits count once)


def _rows(cand: np.ndarray, p: TextParams, same_height: bool, min_glyphs: int,
          band: tuple[int, int, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Keep candidates that belong to a horizontal row of several glyphs.

    band: (tile's first row in the image, image height, fraction): rows must lie inside the
    top or bottom ``fraction`` of the image. Returns (kept candidate pixels, (H, W) bool
    mask of the kept closed rows)."""
    empty = np.zeros(cand.shape, bool)
    ng, glab, gst, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=8)
    if ng <= 2:
        return empty, empty
    gh = gst[1:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    tall = gh[gh >= 4]
    hmed = float(np.median(tall)) if len(tall) else 6.0
    jw = int(max(7, min(61, p.join * hmed))) | 1
    closed = cv2.morphologyEx(cand.astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (jw, max(3, jw // 4) | 1)))
    n, lab, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
    w = stats[:, cv2.CC_STAT_WIDTH]
    h = stats[:, cv2.CC_STAT_HEIGHT]
    area = stats[:, cv2.CC_STAT_AREA]
    fill = area / np.maximum(w * h, 1)
    keep = (w >= p.min_row_width) & (w >= p.min_row_aspect * h) & (fill > 0.25)
    if band is not None:
        y0, full_h, frac = band
        top = stats[:, cv2.CC_STAT_TOP] + y0
        keep &= (top + h <= frac * full_h) | (top >= (1.0 - frac) * full_h)
    keep[0] = False
    if not keep.any():
        return empty, empty
    # the row each glyph belongs to: the closed label under one of its pixels
    first = np.full(ng, -1, np.int64)
    flat = glab.ravel()
    idx = np.flatnonzero(flat)
    first[flat[idx[::-1]]] = idx[::-1]
    row_of = lab.ravel()[first[1:]]
    if same_height:  # stroke width of each glyph: twice its deepest distance-transform value
        dt = cv2.distanceTransform(cand.astype(np.uint8), cv2.DIST_L2, 3)
        sw = np.zeros(ng)
        np.maximum.at(sw, flat[idx], dt.ravel()[idx])  # glyph pixels only: background is label 0
        sw = sw[1:]
    for r in np.flatnonzero(keep):
        sel = (row_of == r) & (gh >= 3)
        hs = gh[sel]
        if len(hs) < min_glyphs or (same_height and hs.std() > p.max_glyph_cv * hs.mean()):
            keep[r] = False
        elif same_height and sw[sel].std() > p.max_stroke_cv * sw[sel].mean():
            keep[r] = False  # printed text has one stroke width; tree tops and roof tiles do not
    return keep[lab] & cand, keep[lab]


def detect_text(image: np.ndarray, lum: np.ndarray, factor: float = 1.0, p: TextParams = TextParams(),
                where: tuple[int, int] | None = None, chroma: np.ndarray | None = None) -> np.ndarray:
    """image: (H, W, 3) uint8 RGB; lum: its luma float32; where: (first row of this tile in
    the image, image height), None for a whole image; chroma: ``_common.colourfulness(image)`` if
    the caller has it. Returns (H, W) bool text pixels."""
    y0, full_h = where if where is not None else (0, image.shape[0])
    r, g, b = (c.astype(np.float32) for c in cv2.split(image))
    # stamp inks are orange-red: green at most ~0.6 of red (yellow paint and foliage are not)
    orange = np.clip(np.minimum(r - b, r - 0.5 * g) - p.orange_offset, 0, None) * (r > p.red_min) * (g < p.max_green * r)
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (p.stroke, p.stroke))
    oth = cv2.morphologyEx(orange, cv2.MORPH_TOPHAT, k)
    # camera date stamps sit near the top or bottom edge; orange print elsewhere (postage
    # stamps, signs, posters) is part of the picture
    out, boxes = _rows(oth > p.stamp_floor * factor, p, same_height=False, min_glyphs=p.stamp_glyphs,
                       band=(y0, full_h, p.stamp_band))
    if boxes.any():  # the stamp's glow and fringe, inside its row grown by a few px
        near = cv2.dilate(boxes.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (7, 7))) > 0
        out |= near & (oth > p.glow_floor * factor)
    if chroma is None:
        chroma = colourfulness(image)
    neutral = chroma < 40
    bright = cv2.morphologyEx(lum, cv2.MORPH_TOPHAT, k)
    dark = cv2.morphologyEx(lum, cv2.MORPH_BLACKHAT, k)
    cap = neutral & (((bright > p.caption_floor * factor) & (lum > 200)) | ((dark > p.caption_floor * factor) & (lum < 50)))
    out |= _rows(cap, p, same_height=True, min_glyphs=p.min_glyphs)[0]
    return out
