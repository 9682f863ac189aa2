"""Window geometry for running the generator on big scans: plan, crop, paste back. Pure functions.

Owns how an image of any size is cut into model-sized windows around its mask:

- ``plan_windows(mask, window, context)`` -> ``list[Window]``. The image is divided into a
  grid of *core* tiles of side ``window - 2*context``; only tiles holding mask pixels are
  kept, and each is shrunk to the tight bounding box of its mask pixels. A core whose mask
  is sparse (a thin slanted scratch, a few dust specks) is split in halves or quarters
  wherever that lowers the model's pixel count, down to twice ``min_context``, so long
  scratches are followed by a chain of narrow windows rather than covered by one giant box. Each window's
  ``box`` holds its core plus a margin of known image on every side (clipped to the image):
  ``context`` pixels for wide holes, down to ``min_context`` for thin scratches (the margin
  scales with the hole's width), so no window is larger than ``window`` x ``window``.
- Every mask pixel is pasted by exactly one window, so results can be pasted in any order:
  ``paste`` writes only mask pixels inside the window's core (and, when the window has an
  ``own`` mask, only those). Cores of the plain grid plan are disjoint.
- Whole holes stay whole: the body of a wide hole (a blotch or tear, ``ATOMIC_THICKNESS`` px
  or wider, without the scratches that run out of it) that the grid plan would cut between two
  cores is filled by ONE window of its own when it fits in a window: two windows filling two
  halves of one wide hole from different context disagree where they meet, a seam straight
  through the fill. The other windows leave its pixels to that window (their ``own`` masks).
- Windows that meet inside a wide hole run in *rounds*: two windows whose pasted pixels touch
  where the hole is ``ATOMIC_THICKNESS`` wide or wider (a tear larger than a window; not a
  thin scratch crossing a core's edge) never run in the same round, and a window of a later
  round reads what earlier rounds pasted in its box as known image (its ``known`` mask), so
  its fill continues theirs instead of meeting it at a seam. The rounds are a greedy
  colouring of the "touches" graph (a tear across a grid corner: its four windows touch each
  other, diagonals included, so they run one after another in four rounds; a tear across one
  grid line: two), except that a window with almost no known image in its box (``STARVED``:
  the tip of a torn-off corner) runs after every window it touches. ``plan_windows`` returns the
  windows ordered by round, and a window must not be cropped before every window of an
  earlier round is pasted.

Boxes are ``(y0, x0, y1, x1)`` half-open pixel rectangles in image coordinates.
No state is kept between calls; nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

Box = tuple[int, int, int, int]
# holes at least this wide (twice the farthest distance to known image, px) are never split
# between windows when one window can hold them, and windows that must share one run in
# rounds: below it a seam across the fill is a few pixels long and hidden in the hole's edges
ATOMIC_THICKNESS = 8.0
# a window sharing a wide hole with others, with less than this share of its box known image,
# runs after all of them (``_rounds``); chosen on torn corners and tears laid on the real old
# photos (scripts/seam_probe.py, docs/quality.md session 21), not on the validation set
STARVED = 0.25


@dataclass(frozen=True)
class Window:
    """One model window. box: crop region (core + context, clipped); core: the region whose
    mask pixels this window fills. Both (y0, x0, y1, x1), half-open, core inside box.
    own: None (the window pastes every mask pixel in its core) or a (core h, core w) bool
    array: the mask pixels of the core that this window pastes (the others belong to a
    whole-hole window).
    round: windows of one round are independent; a window of round r is cropped only after
    every window of rounds < r is pasted.
    known: None or a (box h, box w) bool array: mask pixels of the box that windows of earlier
    rounds paste, which this window reads as known image (``hole_mask``)."""

    box: Box
    core: Box
    own: Optional[np.ndarray] = field(default=None, compare=False, repr=False)
    round: int = 0
    known: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    @property
    def shape(self) -> tuple[int, int]:
        """(h, w) of the crop."""
        return self.box[2] - self.box[0], self.box[3] - self.box[1]


def _tight_bbox(mask: np.ndarray, y0: int, x0: int, y1: int, x1: int) -> Box | None:
    """Tight bbox of True pixels of mask[y0:y1, x0:x1], in image coordinates, or None."""
    sub = mask[y0:y1, x0:x1]
    rows = np.flatnonzero(sub.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sub[rows[0] : rows[-1] + 1].any(axis=0))
    return (y0 + int(rows[0]), x0 + int(cols[0]), y0 + int(rows[-1]) + 1, x0 + int(cols[-1]) + 1)


def _cost(boxes: list[Box], c: int, overhead: int) -> int:
    """Model pixels for windows around ``boxes`` with context ``c``, plus a per-window overhead."""
    return sum((y1 - y0 + 2 * c) * (x1 - x0 + 2 * c) + overhead for (y0, x0, y1, x1) in boxes)


def _split(bb: Box, rows: bool, cols: bool) -> list[Box]:
    y0, x0, y1, x1 = bb
    ys = [y0, (y0 + y1) // 2, y1] if rows else [y0, y1]
    xs = [x0, (x0 + x1) // 2, x1] if cols else [x0, x1]
    return [(ys[i], xs[j], ys[i + 1], xs[j + 1]) for i in range(len(ys) - 1) for j in range(len(xs) - 1)]


def _refine(mask: np.ndarray, cell: Box, min_core: int, c: int, overhead: int, out: list[Box]) -> None:
    """Append to ``out`` disjoint tight cores covering the mask pixels of ``cell``.

    Greedy: a core is split (in halves across its long side, or in quarters) only when the
    children's windows cost fewer model pixels than its own. A slanted scratch thus becomes
    a chain of long narrow bands, a diagonal one a staircase of small squares, a blotch one box.
    """
    bb = _tight_bbox(mask, *cell)
    if bb is None:
        return
    y0, x0, y1, x1 = bb
    h, w = y1 - y0, x1 - x0
    if max(h, w) <= min_core:
        out.append(bb)
        return
    best, best_cost = None, _cost([bb], c, overhead)
    for rows, cols in ((h > min_core, False), (False, w > min_core), (h > min_core, w > min_core)):
        if not (rows or cols):
            continue
        kids = [k for k in (_tight_bbox(mask, *part) for part in _split(bb, rows, cols)) if k is not None]
        cost = _cost(kids, c, overhead)
        if cost < best_cost:
            best, best_cost = kids, cost
    if best is None:
        out.append(bb)
        return
    for kid in best:
        _refine(mask, kid, min_core, c, overhead, out)


def occupied_cells(mask: np.ndarray, cell: int) -> list[Box]:
    """Grid cells of side ``cell`` (row-major order) that hold at least one True pixel.
    mask: (H, W) bool. Uses O(H*W/cell) extra memory."""
    H, W = mask.shape
    ys = np.arange(0, H, cell)
    xs = np.arange(0, W, cell)
    rows = np.logical_or.reduceat(mask, ys, axis=0)  # (len(ys), W)
    grid = np.logical_or.reduceat(rows, xs, axis=1)  # (len(ys), len(xs))
    cells = []
    for i, j in zip(*np.nonzero(grid)):
        y0, x0 = int(ys[i]), int(xs[j])
        cells.append((y0, x0, min(y0 + cell, H), min(x0 + cell, W)))
    return cells


def hole_thickness(mask: np.ndarray) -> float:
    """Width in pixels of the thickest part of the True regions of a (h, w) bool mask
    (twice the largest distance from a hole pixel to the nearest known pixel)."""
    import cv2

    if not mask.any():
        return 0.0
    padded = np.pad(mask, 1).astype(np.uint8)  # the crop border counts as known
    return 2.0 * float(cv2.distanceTransform(padded, cv2.DIST_L2, 3).max())


def context_for(thickness: float, context: int, min_context: int) -> int:
    """Known-context margin for a hole of this width: 3x the width, between min_context and
    context. A 3-px scratch needs far less surrounding image than a 60-px blotch."""
    return int(min(context, max(min_context, int(np.ceil(3 * thickness)))))


def _fit(lo: int, hi: int, side: int, limit: int) -> tuple[int, int]:
    """A span of length ``side`` centred on [lo, hi), shifted inside [0, limit)."""
    if side >= limit:
        return 0, limit
    start = (lo + hi - side) // 2
    start = min(max(0, start), limit - side)
    return start, start + side


def plan_windows(
    mask: np.ndarray,
    window: int = 512,
    context: int = 48,
    min_context: int = 16,
    quantum: int = 8,
    overhead: int = 1024,
) -> list[Window]:
    """Plan model windows covering every True pixel of ``mask``.

    mask: (H, W) bool, True = fill. window: max side of a window in pixels (before padding).
    context: the most known image kept around a core; each grid cell uses
        ``context_for(thickness of its holes)`` in [min_context, context] pixels (fewer only
        at the image border), so thin scratches get narrow bands, blotches get full context.
    Cores are split (down to ``2 * min_context``, the side that minimises window area per
        unit length of a diagonal scratch) only where that lowers the model pixels; each
        core then gets the context its own holes need (``context_for``).
    overhead: model-pixel cost charged per window when deciding splits (per-call work).
    quantum: window sides are rounded up to a multiple of this (few shapes batch better).
    Returns windows in a deterministic order: by round (see the module docstring), then
    whole-hole windows before grid windows, then row-major by grid cell and quadtree order.
    """
    if mask.ndim != 2:
        raise ValueError(f"plan_windows expects a (H, W) mask, got {mask.shape}")
    mask = mask.astype(bool, copy=False)
    args = (window, context, min(min_context, context), quantum)
    cores = _grid_cores(mask, window, context, min_context, overhead)
    whole = _split_holes(mask, cores, *args[:3])
    if not whole:
        return _rounds(mask, [Window(box=_box_for(mask, c, *args), core=c) for c in cores])
    rest = mask.copy()
    for core, own in whole:
        rest[core[0] : core[2], core[1] : core[3]] &= ~own
    out = []
    for c in _grid_cores(rest, window, context, min_context, overhead):
        crossed = any(_overlap(c, w) for w, _ in whole)
        out.append(Window(box=_box_for(rest, c, *args), core=c,
                          own=rest[c[0] : c[2], c[1] : c[3]].copy() if crossed else None))
    return _rounds(mask, [Window(box=_box_for(mask, core, *args), core=core, own=own) for core, own in whole] + out)


def _rounds(mask: np.ndarray, windows: list[Window]) -> list[Window]:
    """``windows`` with rounds and ``known`` masks set, ordered by round (stable).

    Two windows touch when they meet inside a wide hole (``_touch``). Windows that touch others
    are coloured greedily, in plan order: a window takes the lowest round that no touching
    window already coloured has. Windows with less than ``STARVED`` of their box known (deep
    inside a torn-off corner) come last, those with the most known image first, and each takes
    a round after every touching window already coloured, so it starts from their fills rather
    than from almost nothing. Windows that touch nothing stay in round 0 with ``known`` None.
    Only where two cores (grown by a pixel) overlap is anything compared: no full-size work."""
    n = len(windows)
    if n < 2:
        return windows
    cores = np.array([w.core for w in windows], np.int64)
    grown = cores + np.array([-1, -1, 1, 1])
    near: dict[int, list[int]] = {}
    for i in range(1, n):
        g = grown[i]
        hits = np.flatnonzero((grown[:i, 0] < g[2]) & (g[0] < grown[:i, 2]) & (grown[:i, 1] < g[3]) & (g[1] < grown[:i, 3]))
        for j in hits.tolist():
            if _touch(mask, windows[i], windows[j]):
                near.setdefault(i, []).append(j)
                near.setdefault(j, []).append(i)
    if not near:
        return windows
    share = {i: 1.0 - float(mask[w.box[0] : w.box[2], w.box[1] : w.box[3]].mean()) for i, w in enumerate(windows) if i in near}
    rounds = np.zeros(n, np.int64)
    done: set[int] = set()
    # windows with enough known image in plan order, then the starved ones, most known first
    for i in sorted(near, key=lambda k: (share[k] < STARVED, -share[k] if share[k] < STARVED else 0.0, k)):
        taken = {int(rounds[j]) for j in near[i] if j in done}
        if taken and share[i] < STARVED:
            rounds[i] = max(taken) + 1
        else:
            rounds[i] = next(r for r in range(len(taken) + 1) if r not in taken)
        done.add(i)
    out = []
    for i, w in enumerate(windows):
        known = None
        if rounds[i] > 0:
            y0, x0, y1, x1 = w.box
            for j in np.flatnonzero((rounds < rounds[i]) & (cores[:, 0] < y1) & (y0 < cores[:, 2])
                                    & (cores[:, 1] < x1) & (x0 < cores[:, 3])).tolist():
                cy0, cx0, cy1, cx1 = windows[j].core
                r = (max(y0, cy0), max(x0, cx0), min(y1, cy1), min(x1, cx1))
                if r[0] < r[2] and r[1] < r[3]:
                    part = _pasted(mask, windows[j], r)
                    if part.any():
                        if known is None:
                            known = np.zeros(w.shape, bool)
                        known[r[0] - y0 : r[2] - y0, r[1] - x0 : r[3] - x0] |= part
        out.append(Window(box=w.box, core=w.core, own=w.own, round=int(rounds[i]), known=known))
    return [out[i] for i in np.argsort(rounds, kind="stable")]


def _pasted(mask: np.ndarray, w: Window, r: Box) -> np.ndarray:
    """(r h, r w) bool: the pixels of rectangle ``r`` (inside the image) that window ``w`` pastes."""
    y0, x0, y1, x1 = r
    cy0, cx0, cy1, cx1 = w.core
    out = np.zeros((y1 - y0, x1 - x0), bool)
    iy0, ix0, iy1, ix1 = max(y0, cy0), max(x0, cx0), min(y1, cy1), min(x1, cx1)
    if iy0 < iy1 and ix0 < ix1:
        part = mask[iy0:iy1, ix0:ix1]
        if w.own is not None:
            part = part & w.own[iy0 - cy0 : iy1 - cy0, ix0 - cx0 : ix1 - cx0]
        out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = part
    return out


def _grow8(m: np.ndarray) -> np.ndarray:
    """(h, w) bool ``m`` grown by one pixel in all 8 directions (a new array)."""
    near = m.copy()
    near[1:] |= m[:-1]
    near[:-1] |= m[1:]
    grown = near.copy()
    grown[:, 1:] |= near[:, :-1]
    grown[:, :-1] |= near[:, 1:]
    return grown


def _touch(mask: np.ndarray, a: Window, b: Window) -> bool:
    """Whether windows ``a`` and ``b`` meet inside a wide hole: a pixel one pastes is 8-adjacent
    to a pixel the other pastes, at least ``ATOMIC_THICKNESS / 2`` px from known image (where a
    thin scratch crosses from one window to the other, a seam is a few pixels long)."""
    import cv2

    H, W = mask.shape
    r = (max(a.core[0], b.core[0]) - 1, max(a.core[1], b.core[1]) - 1,
         min(a.core[2], b.core[2]) + 1, min(a.core[3], b.core[3]) + 1)
    r = (max(0, r[0]), max(0, r[1]), min(H, r[2]), min(W, r[3]))
    if r[0] >= r[2] or r[1] >= r[3]:
        return False
    pa, pb = _pasted(mask, a, r), _pasted(mask, b, r)
    if not (pa.any() and pb.any()):
        return False
    meet = (_grow8(pa) & pb) | (_grow8(pb) & pa)  # the pixels of either next to the other
    if not meet.any():
        return False
    # distance to known image of the pixels where they meet, in a region reaching pad px past
    # them (its edges count as known: exact up to pad)
    pad = int(np.ceil(ATOMIC_THICKNESS / 2)) + 1
    by0, bx0, by1, bx1 = _tight_bbox(meet, 0, 0, *meet.shape)  # in r's coordinates
    y0, x0 = max(0, r[0] + by0 - pad), max(0, r[1] + bx0 - pad)
    region = np.pad(mask[y0 : min(H, r[0] + by1 + pad), x0 : min(W, r[1] + bx1 + pad)], 1).view(np.uint8)
    dist = cv2.distanceTransform(region, cv2.DIST_L2, 3)[1:-1, 1:-1]
    oy, ox = r[0] + by0 - y0, r[1] + bx0 - x0
    at = dist[oy : oy + by1 - by0, ox : ox + bx1 - bx0][meet[by0:by1, bx0:bx1]]
    return bool(at.max() >= ATOMIC_THICKNESS / 2)


def _grid_cores(mask: np.ndarray, window: int, context: int, min_context: int, overhead: int) -> list[Box]:
    """The disjoint tight cores of the grid plan (see ``plan_windows``), in its order."""
    core_side = max(16, window - 2 * context)
    min_context = min(min_context, context)
    min_core = min(core_side, 2 * min_context)
    cores: list[Box] = []
    for cell in occupied_cells(mask, core_side):
        _refine(mask, cell, min_core, min_context, overhead, cores)
    return cores


def _box_for(mask: np.ndarray, core: Box, window: int, context: int, min_context: int, quantum: int) -> Box:
    """The window box around ``core``: the context its holes need (``context_for``), sides
    rounded up to a multiple of ``quantum`` (few distinct shapes batch better) and at most
    ``window``, centred on the core and kept inside the image."""
    H, W = mask.shape
    cy0, cx0, cy1, cx1 = core
    c = context_for(hole_thickness(mask[cy0:cy1, cx0:cx1]), context, min_context)
    hs = min(window, -(-(cy1 - cy0 + 2 * c) // quantum) * quantum)
    ws = min(window, -(-(cx1 - cx0 + 2 * c) // quantum) * quantum)
    by0, by1 = _fit(cy0, cy1, hs, H)
    bx0, bx1 = _fit(cx0, cx1, ws, W)
    return (by0, bx0, by1, bx1)


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _split_holes(mask: np.ndarray, cores: list[Box], window: int, context: int,
                 min_context: int) -> list[tuple[Box, np.ndarray]]:
    """Wide holes that reach into two or more of ``cores`` and fit in one window with their
    context. A wide hole is an 8-connected piece of the mask's opening by a disc of
    ``ATOMIC_THICKNESS`` px (a blotch's body without a scratch that runs through or out of
    it: the scratch stays with the grid's windows), at least ``ATOMIC_THICKNESS`` wide.
    Returns (tight bbox, (bbox h, bbox w) bool of the hole's pixels) per hole, in scan order."""
    import cv2

    r = int(np.ceil(ATOMIC_THICKNESS / 2)) - 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m8 = np.ascontiguousarray(mask).view(np.uint8)
    thick = cv2.erode(m8, disc)
    bb = _tight_bbox(thick.view(bool), 0, 0, *mask.shape)
    if bb is None:  # no wide hole anywhere: nothing to keep whole
        return []
    H, W = mask.shape
    ry0, rx0, ry1, rx1 = max(0, bb[0] - 2 * r - 2), max(0, bb[1] - 2 * r - 2), min(H, bb[2] + 2 * r + 2), min(W, bb[3] + 2 * r + 2)
    body = cv2.dilate(thick[ry0:ry1, rx0:rx1], disc) & m8[ry0:ry1, rx0:rx1]
    n, labels, stats, _ = cv2.connectedComponentsWithStats(body, connectivity=8)
    taken = np.zeros(body.shape, bool)  # region pixels already given to a wide hole
    out = []
    for lab in range(1, n):
        x, y, w, h = (int(v) for v in stats[lab, :4])
        if h + 2 * min_context > window or w + 2 * min_context > window:
            continue
        t = hole_thickness(labels[y : y + h, x : x + w] == lab)
        if t < ATOMIC_THICKNESS:
            continue
        # the hole: its body and the mask's pixels along the body's edge that the opening
        # shaved off (else the rim would be filled by other windows)
        y0, x0, y1, x1 = max(0, y - r - 1), max(0, x - r - 1), min(body.shape[0], y + h + r + 1), min(body.shape[1], x + w + r + 1)
        own = cv2.dilate((labels[y0:y1, x0:x1] == lab).view(np.uint8), disc).view(bool)
        own &= m8[ry0 + y0 : ry0 + y1, rx0 + x0 : rx0 + x1].view(bool) & ~taken[y0:y1, x0:x1]
        tb = _tight_bbox(own, 0, 0, *own.shape)
        box = (ry0 + y0 + tb[0], rx0 + x0 + tb[1], ry0 + y0 + tb[2], rx0 + x0 + tb[3])
        own = own[tb[0] : tb[2], tb[1] : tb[3]]
        c = context_for(t, context, min_context)
        if box[2] - box[0] + 2 * c > window or box[3] - box[1] + 2 * c > window:
            continue
        holders = 0
        for core in cores:
            if _overlap(core, box):
                cy0, cx0, cy1, cx1 = max(core[0], box[0]), max(core[1], box[1]), min(core[2], box[2]), min(core[3], box[3])
                holders += bool(own[cy0 - box[0] : cy1 - box[0], cx0 - box[1] : cx1 - box[1]].any())
                if holders > 1:
                    out.append((box, own))
                    taken[box[0] - ry0 : box[2] - ry0, box[1] - rx0 : box[3] - rx0] |= own
                    break
    return out


def crop(array: np.ndarray, win: Window) -> np.ndarray:
    """Copy of ``array[box]`` for a (H, W) or (H, W, C) array of any dtype."""
    y0, x0, y1, x1 = win.box
    return array[y0:y1, x0:x1].copy()


def core_mask(mask_crop: np.ndarray, win: Window) -> np.ndarray:
    """The mask pixels this window pastes: ``mask_crop`` (h, w) bool restricted to the core
    (and to ``win.own`` when set), in crop coordinates. Returns a new (h, w) bool array."""
    y0, x0, _, _ = win.box
    cy0, cx0, cy1, cx1 = win.core
    keep = np.zeros_like(mask_crop, dtype=bool)
    inside = mask_crop[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    keep[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = inside if win.own is None else inside & win.own
    return keep


def hole_mask(mask_crop: np.ndarray, win: Window) -> np.ndarray:
    """The pixels the model fills in this window: ``mask_crop`` (h, w) bool less what earlier
    rounds have pasted (``win.known``). Returns ``mask_crop`` itself when nothing is known."""
    return mask_crop if win.known is None else mask_crop & ~win.known


def paste(dest: np.ndarray, patch: np.ndarray, mask_crop: np.ndarray, win: Window) -> np.ndarray:
    """Write ``patch`` into ``dest`` IN PLACE, only where ``mask_crop`` is True inside the core.

    dest: (H, W, C) image; patch: (h, w, C) same dtype, h, w = win.shape; mask_crop: (h, w)
    bool (the mask cropped with the same window). Every other pixel of dest is untouched.
    Returns ``dest``.
    """
    if patch.shape[:2] != win.shape or mask_crop.shape != win.shape:
        raise ValueError(f"paste: patch {patch.shape} / mask {mask_crop.shape} do not match window {win.shape}")
    y0, x0, y1, x1 = win.box
    keep = core_mask(mask_crop, win)
    region = dest[y0:y1, x0:x1]
    region[keep] = patch[keep]
    return dest


def window_pixels(windows: list[Window]) -> int:
    """Total pixels the model processes for ``windows`` (before padding)."""
    return sum(w.shape[0] * w.shape[1] for w in windows)
