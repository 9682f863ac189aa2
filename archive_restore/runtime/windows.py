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
- Cores are disjoint and together hold every mask pixel exactly once, so results can be
  pasted in any order: ``paste`` writes only mask pixels inside the window's core.

Boxes are ``(y0, x0, y1, x1)`` half-open pixel rectangles in image coordinates.
No state is kept between calls; nothing here imports torch or onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Window:
    """One model window. box: crop region (core + context, clipped); core: the region whose
    mask pixels this window fills. Both (y0, x0, y1, x1), half-open, core inside box."""

    box: Box
    core: Box

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
    Returns windows in a deterministic order (row-major by grid cell, then quadtree order).
    """
    if mask.ndim != 2:
        raise ValueError(f"plan_windows expects a (H, W) mask, got {mask.shape}")
    mask = mask.astype(bool, copy=False)
    H, W = mask.shape
    core_side = max(16, window - 2 * context)
    min_context = min(min_context, context)
    out = []
    min_core = min(core_side, 2 * min_context)
    for cell in occupied_cells(mask, core_side):
        cores: list[Box] = []
        _refine(mask, cell, min_core, min_context, overhead, cores)
        for (cy0, cx0, cy1, cx1) in cores:
            t = hole_thickness(mask[cy0:cy1, cx0:cx1])
            c = context_for(t, context, min_context)
            # sides rounded up to a multiple of ``quantum`` (centred, kept inside the image):
            # few distinct shapes, so windows batch together, at little extra area
            hs = min(window, -(-(cy1 - cy0 + 2 * c) // quantum) * quantum)
            ws = min(window, -(-(cx1 - cx0 + 2 * c) // quantum) * quantum)
            by0, by1 = _fit(cy0, cy1, hs, H)
            bx0, bx1 = _fit(cx0, cx1, ws, W)
            out.append(Window(box=(by0, bx0, by1, bx1), core=(cy0, cx0, cy1, cx1)))
    return out


def crop(array: np.ndarray, win: Window) -> np.ndarray:
    """Copy of ``array[box]`` for a (H, W) or (H, W, C) array of any dtype."""
    y0, x0, y1, x1 = win.box
    return array[y0:y1, x0:x1].copy()


def core_mask(mask_crop: np.ndarray, win: Window) -> np.ndarray:
    """The mask pixels this window pastes: ``mask_crop`` (h, w) bool restricted to the core,
    in crop coordinates. Returns a new (h, w) bool array."""
    y0, x0, _, _ = win.box
    cy0, cx0, cy1, cx1 = win.core
    keep = np.zeros_like(mask_crop, dtype=bool)
    keep[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = mask_crop[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return keep


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
