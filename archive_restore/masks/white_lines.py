"""Crisp white scratches on flat ground: the paper base showing through a print's scraped emulsion.

A scratch across a print takes the emulsion off and leaves a line of bare paper: near-white,
not more colourful than the picture around it, one or two pixels wide at scan resolution,
straight over tens of pixels and often broken into dashes. Real scratched prints
(``old_photos/scratched``: bd_h's and bd_i's skies and roads) carry dozens of them, among
thousands of white specks, and the learned detector (``masks.learned``) scores most of them low
(docs/quality.md, sessions 17-18). This rule finds them by that physics, and only where a
mistake is unlikely: on flat ground, where no scene detail is one or two pixels wide.

``white_lines(image)`` flags the connected pieces of a bright thin residual that hold at least
``min_seeds`` seed pixels. A seed pixel:
1. stands ``contrast`` grey levels above the 5x5 median of the luma and is near-white (luma
   >= ``white``), and is a hairline: at least ``thin`` of that residual is left above the 3x3
   median too (a 1-px line is not its own 3x3 median; a 2-3 px white road marking or window
   bar largely is);
2. is not more colourful than its 5x5 median surroundings by more than ``chroma_gain``
   (max - min of RGB; painted lines and lit coloured edges are scene);
3. lies on flat ground: the 5x5 median luma varies by less than ``flat`` grey levels on
   average in a 15x15 neighbourhood (sky, road, wall, paper; not foliage, crowds, facades);
4. continues: along some straight ``length``-px segment through it (``orients``
   orientations) at least ``cover`` of the pixels are bright residual too (dashes count; an
   isolated speck does not);
5. along that segment, the ground on its two sides (the median luma ``side`` px to each side)
   differs by less than ``asym`` grey levels: a scratch crosses one surface, while a bright
   moulding, kerb or pool edge runs between two.
A piece grows over the residual above ``grow`` x ``contrast`` on ground up to twice as
textured. Dark scratches (a scraped negative prints dark) are not this rule's: the learned
detector covers them.

Values are grey levels of 0-255 luma. The defaults were chosen by eye on the real scratched and
faded photos and checked for false alarms on held-out training photos, never on the
validation set (docs/quality.md, session 18).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import line_offsets


@dataclass(frozen=True)
class WhiteLineParams:
    contrast: float = 30.0     # above the 5x5 median luma
    white: float = 190.0       # luma of a seed pixel
    chroma_gain: float = 8.0   # seed's (max - min RGB) over its surroundings' median
    flat: float = 3.0          # mean |median luma - its 7x7 mean| over 9x9 (about 15x15 in all)
    length: int = 21           # px, the continuation segment
    orients: int = 24
    cover: float = 0.5         # share of the segment that is bright residual
    side: float = 3.0          # px, the two sides' distance from the line
    asym: float = 6.0          # grey levels, largest |side1 - side2|
    thin: float = 0.5          # a seed's residual over the 3x3 median / over the 5x5 one
    grow: float = 0.6          # x contrast, the residual a piece grows over
    min_seeds: int = 4         # seed pixels a piece needs


def _gather_means(q: np.ndarray, base: np.ndarray, taps: np.ndarray, w: int) -> np.ndarray:
    """q: padded map, raveled; base: (K,) flat indices of the pixels -> (orients, K) float32
    means of q along each orientation's taps (``w``: the padded map's width)."""
    out = np.empty((len(taps), len(base)), np.float32)
    for o, t in enumerate(taps):
        acc = np.zeros(len(base), np.float32)
        for d in t[:, 0] * w + t[:, 1]:
            acc += q[base + d]
        out[o] = acc / np.float32(len(t))
    return out


BAND = 1024  # rows of the scan taken at a time (plus ``_halo`` rows of context each side)


def white_lines(image: np.ndarray, p: WhiteLineParams = WhiteLineParams(), band: int = BAND) -> np.ndarray:
    """image: (H,W,3) uint8 RGB -> (H,W) bool: crisp near-white scratches on flat ground (see the
    module docstring). Cost: a few full-image OpenCV passes plus line sums at the candidates only.

    The pixel rules (1-5) are local: they run ``band`` rows at a time with enough rows of context
    on each side (``_halo``) to give each row what the whole image gives it, so only the grow
    map (1 byte a pixel) and its labels are held for the whole scan, not the rules' dozen
    full-size maps (about 30 bytes a pixel)."""
    h, w = image.shape[:2]
    out = np.zeros((h, w), bool)
    if h < 5 or w < 5:
        return out
    halo = _halo(p)
    region = np.zeros((h, w), bool)
    seeds_y, seeds_x = [], []
    for y0 in range(0, h, band):
        y1 = min(h, y0 + band)
        a, b = max(0, y0 - halo), min(h, y1 + halo)
        ys, xs, reg = _band_rules(image[a:b], p, y0 - a, y1 - a)
        region[y0:y1] = reg
        seeds_y.append(ys + y0)
        seeds_x.append(xs)
    ys, xs = np.concatenate(seeds_y), np.concatenate(seeds_x)
    if not len(ys):
        return out
    n, lab = cv2.connectedComponents(region.view(np.uint8), connectivity=8)
    counts = np.bincount(lab[ys, xs], minlength=n)
    keep = counts >= p.min_seeds
    keep[0] = False
    return keep[lab]


def _offsets(p: WhiteLineParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The continuation segment and its two side segments ((orients, length, 2) offsets each)
    and their largest reach in px."""
    seg, s1, s2 = (line_offsets(p.length, p.orients, shift) for shift in (0.0, p.side, -p.side))
    return seg, s1, s2, int(max(np.abs(seg).max(), np.abs(s1).max(), np.abs(s2).max()))


def _halo(p: WhiteLineParams) -> int:
    """Rows of context a band needs each side: the segments' reach plus the 5x5 median under
    the maps they read (2), or the texture measure's reach (5x5 median, 7x7 and 9x9 means: 9)."""
    return max(_offsets(p)[3] + 2, 9) + 1


def _band_rules(image: np.ndarray, p: WhiteLineParams, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """image: (h, W, 3) uint8 rows of the scan whose rows c0 .. c1 are the band's own, the rest
    context (or the scan's edge). -> (seed rows, seed columns) in band coordinates (K,) and the
    band's (c1 - c0, W) bool grow map, seeds included."""
    h, w = image.shape[:2]
    none = np.zeros(0, np.int64)
    lum = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    bg = cv2.medianBlur(lum, 5)
    res = cv2.subtract(lum.astype(np.int16), bg.astype(np.int16))
    bgf = bg.astype(np.float32)
    tex = cv2.blur(np.abs(bgf - cv2.blur(bgf, (7, 7))), (9, 9))
    region = ((res > p.grow * p.contrast) & (tex < 2 * p.flat))[c0:c1]
    bright = res > p.contrast
    cand = bright & (lum >= p.white)
    cand[:c0] = False
    cand[c1:] = False
    if not cand.any():
        return none, none, region
    res3 = cv2.subtract(lum.astype(np.int16), cv2.medianBlur(lum, 3).astype(np.int16))
    cand &= res3.astype(np.float32) >= p.thin * res.astype(np.float32)
    r_, g_, b_ = cv2.split(image)  # OpenCV's per-pixel max and min: numpy's max over axis 2 takes 0.25 s at 6 MP
    chroma = cv2.subtract(cv2.max(cv2.max(r_, g_), b_), cv2.min(cv2.min(r_, g_), b_))
    chroma_bg = cv2.medianBlur(chroma, 5)
    cand &= tex < p.flat
    cand &= chroma.astype(np.int16) <= chroma_bg.astype(np.int16) + p.chroma_gain
    ys, xs = np.nonzero(cand)
    if not len(ys):
        return none, none, region
    seg, s1, s2, r = _offsets(p)
    wp = w + 2 * r
    base = (ys + r) * wp + (xs + r)
    on = np.pad(bright.astype(np.float32), r, mode="constant").ravel()
    cover = _gather_means(on, base, seg, wp)
    best = cover.argmax(axis=0)
    ok = cover[best, np.arange(len(ys))] >= p.cover
    if not ok.any():
        return none, none, region
    ys, xs, base, best = ys[ok], xs[ok], base[ok], best[ok]
    g = np.pad(bgf, r, mode="edge").ravel()
    asym = np.empty(len(ys), np.float32)
    for o in np.unique(best):
        at = best == o
        a = _gather_means(g, base[at], s1[o:o + 1], wp)[0] - _gather_means(g, base[at], s2[o:o + 1], wp)[0]
        asym[at] = np.abs(a)
    keep_seed = asym < p.asym
    ys, xs = ys[keep_seed] - c0, xs[keep_seed]
    region[ys, xs] = True
    return ys, xs, region
