"""Dust specks and hairs: small compact bright or dark spots that stand out from smooth surroundings.

Top-hat residual with a 9 px square (spots up to ~8 px across), a pixel floor in grey levels,
and a clutter test (the spot must exceed the mean residual around it several times), so
textured regions (foliage, fur, gravel) are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import thin_residuals


@dataclass(frozen=True)
class DustParams:
    tophat: int = 9
    pixel_floor: float = 22.0
    clutter_box: int = 25
    clutter_ratio: float = 12.0
    max_crowd: float = 30.0
    max_extent: int = 12            # px, bounding box of a speck
    max_aspect: float = 3.0


def detect_specks(lum: np.ndarray, factor: float = 1.0, p: DustParams = DustParams()) -> np.ndarray:
    """lum: (H, W) float32 luma in [0, 255]. Returns (H, W) bool, True on dust/hair pixels."""
    out = np.zeros(lum.shape, bool)
    for res in thin_residuals(lum, p.tophat):
        clutter = cv2.blur(res, (p.clutter_box, p.clutter_box))
        core = (res > p.pixel_floor * factor) & (res > p.clutter_ratio * clutter)
        if not core.any():
            continue
        # isolation: few other candidate pixels nearby (texture highlights come in crowds)
        crowd = cv2.blur(core.astype(np.float32), (p.clutter_box, p.clutter_box)) * (p.clutter_box ** 2)
        core &= crowd < p.max_crowd
        if not core.any():
            continue
        # grow cores into the speck's soft edge: half the floor, connected to a core
        grow = (res > 0.5 * p.pixel_floor * factor) & (cv2.dilate(core.astype(np.uint8), None) > 0)
        out |= grow
    if not out.any():
        return out
    # specks are compact: lines (edge halos, wires, scratches) are not dust
    n, lab, st, _ = cv2.connectedComponentsWithStats(out.astype(np.uint8), connectivity=8)
    w, h, area = st[:, cv2.CC_STAT_WIDTH], st[:, cv2.CC_STAT_HEIGHT], st[:, cv2.CC_STAT_AREA]
    keep = (np.maximum(w, h) <= p.max_extent) & (np.maximum(w, h) <= p.max_aspect * np.maximum(np.minimum(w, h), 1))
    keep[0] = False
    return keep[lab]
