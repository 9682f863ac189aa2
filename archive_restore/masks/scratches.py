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
   stands well above the local clutter (mean capped |lum - median7| around it) and
   continues — or, on very flat photo, is simply clear. Hysteresis: components must hold a
   strong seed and be long enough (80 px; 20 px and thin on flat photo).
4. Colour: a component more colourful than the ring around it is scene (painted lines);
   scratches expose white base or black binder.
5. Cracks: sparse, wide networks of ridge evidence (no continuation needed).
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
    asym: float = 0.75           # penalty on |side1 - side2| (lines along object boundaries)
    reach: int = 41              # px, continuation line
    cover: float = 0.45          # fraction of the continuation line with ridge evidence
    flat_floor: float = 10.0     # ridge of a line kept without continuation ...
    flat_clutter: float = 15.0   # ... where it stands this far above the clutter
    flat_level: float = 2.0      # clutter below this is "flat photo" ...
    flat_min_length: float = 20.0  # ... where a component this long is enough
    short_width: float = 3.0     # px, area / length of a component shorter than min_length
    strong: float = 40.0         # ridge contrast of a seed
    weak: float = 10.0           # ridge contrast of support
    clutter_box: int = 31
    clutter_cap: float = 12.0    # grey levels
    strong_clutter: float = 10.0  # seed ridge / mean |residual| around it
    weak_clutter: float = 4.0
    min_length: float = 80.0     # px, bounding-box diagonal of a kept component
    net_floor: float = 15.0      # ridge of crack-network evidence ...
    net_clutter: float = 10.0     # ... and its ratio to the clutter
    net_length: float = 60.0     # px, bounding-box diagonal of a network
    net_fill: float = 0.15       # area / bounding-box area
    net_area: int = 150          # px
    max_chroma_gain: float = 12.0  # a line may not be more colourful than its surroundings by more
    net_join: int = 5            # px, gaps bridged between pieces of one network


def detect_lines(lum: np.ndarray, res: np.ndarray, factor: float = 1.0, p: LineParams = LineParams(),
                 chroma: np.ndarray | None = None) -> np.ndarray:
    """lum: (H, W) float32 luma; res: ``median_residual(lum, 7)`` (texture measure);
    chroma: (H, W) float32 max-min of RGB, enables the colour test (None skips it).
    Returns (H, W) bool, True on scratch/crack pixels."""
    # texture energy around the pixel; each pixel's share is capped so that the damage's own
    # thin strong lines barely raise it (texture has many moderate residuals, a line few big ones)
    clutter = box_mean(np.minimum(np.abs(res), p.clutter_cap), p.clutter_box)
    # each test "ridge > floor and ridge > ratio * clutter" is one compare against a map
    # computed once per tile (the same decisions, a third of the per-orientation work)
    weak_thr = np.maximum(clutter * p.weak_clutter, p.weak * factor)
    net_thr = np.maximum(clutter * p.net_clutter, p.net_floor * factor)
    flat_thr = np.maximum(clutter * p.flat_clutter, p.flat_floor * factor)
    strong_thr = np.maximum(clutter * p.strong_clutter, p.strong * factor)
    very_flat = clutter < p.flat_level
    reach = dict((round(t, 6), k) for k, t in line_kernels(p.reach // 2 | 1, p.orientations))
    out = np.zeros(lum.shape, bool)
    strong_b = np.zeros(lum.shape, bool)
    strong_d = np.zeros(lum.shape, bool)
    weak_b = np.zeros(lum.shape, bool)
    weak_d = np.zeros(lum.shape, bool)
    net = np.zeros(lum.shape, bool)
    half = (lum.shape[1] // 2 or 1, lum.shape[0] // 2 or 1)
    for bright, dark, t in oriented_ridges(lum, p.length, p.orientations, p.side, p.asym):
        k = reach[round(t, 6)]
        for ridge, strong, weak in ((bright, strong_b, weak_b), (dark, strong_d, weak_d)):
            ev = ridge > weak_thr
            if not ev.any():
                continue
            net |= ridge > net_thr
            # continuation at half resolution (a coverage fraction survives it; 4x cheaper)
            small = cv2.resize(ev.view(np.uint8).astype(np.float32), half, interpolation=cv2.INTER_AREA)
            small = cv2.filter2D(small, -1, k, borderType=cv2.BORDER_CONSTANT)
            cov = cv2.resize(small, (ev.shape[1], ev.shape[0]), interpolation=cv2.INTER_LINEAR)
            # on flat photo a clear thin line needs no long continuation (crack networks
            # turn every 10-30 px); in texture it must continue
            flat_ok = ridge > flat_thr
            ev &= (cov >= p.cover) | flat_ok
            weak |= ev
            strong |= ev & (ridge > strong_thr)
            # on very flat photo (sky, walls, skin in shade) a clear line is its own seed
            strong |= ev & flat_ok & very_flat
    # crack networks: branching, kinked thin lines without long straight runs; kept when the
    # component spreads wide but sparse (a bounding box mostly empty, many pixels in it)
    if net.any():
        joined = cv2.dilate(net.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (p.net_join, p.net_join)))
        n, lab, st, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        w, h = st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT]
        area = np.bincount(lab[net], minlength=n)
        keep = (np.hypot(w, h) >= p.net_length) & (area <= p.net_fill * w * h) & (area >= p.net_area)
        keep[0] = False
        out |= keep[lab] & net
    for strong, weak in ((strong_b, weak_b), (strong_d, weak_d)):
        if not strong.any():
            continue
        lab, n, st, keep = hysteresis(strong, weak)
        length = np.hypot(st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT])
        sel = lab > 0
        mclut = np.bincount(lab[sel], clutter[sel], n) / np.maximum(np.bincount(lab[sel], minlength=n), 1)
        keep &= length >= np.where(mclut < p.flat_level, p.flat_min_length, p.min_length)
        # a short component must be thin: a dust speck on flat photo lights the filter at
        # every angle and leaves a star about one kernel long
        area = st[:, cv2.CC_STAT_AREA]
        keep &= (length >= p.min_length) | (area <= p.short_width * length)
        if chroma is not None and keep.any():
            keep &= ~_more_colourful(lab, n, keep, chroma, p.max_chroma_gain)
        out |= keep[lab]
    if chroma is not None and net.any() and out.any():
        n, lab = cv2.connectedComponents(out.astype(np.uint8), connectivity=8)
        keep = np.ones(n, bool)
        keep[0] = False
        keep &= ~_more_colourful(lab, n, keep, chroma, p.max_chroma_gain)
        out = keep[lab]
    return out


def _more_colourful(lab: np.ndarray, n: int, keep: np.ndarray, chroma: np.ndarray, gain: float) -> np.ndarray:
    """(n,) bool: components whose pixels are more colourful (mean max-min of RGB) than the
    ring 2-5 px around them by more than ``gain`` levels. Scratches expose white base or
    black binder, never a stronger colour than the photo: painted road lines, coloured
    wires and rims are."""
    m = keep[lab]
    k5 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (11, 11))
    near = cv2.dilate(lab.astype(np.float32) * m, k5)  # label of the nearest-ish kept component
    ring = (cv2.dilate(m.astype(np.uint8), k5) > 0) & ~(cv2.dilate(m.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))) > 0)
    lin = np.bincount(lab[m], chroma[m], n) / np.maximum(np.bincount(lab[m], minlength=n), 1)
    rl = near[ring].astype(np.int64)
    rng = np.bincount(rl, chroma[ring], n) / np.maximum(np.bincount(rl, minlength=n), 1)
    return keep & (lin > rng + gain)
