"""Scratches and cracks: thin bright or dark lines, found by line integration of top-hat residuals.

A white (black) top-hat keeps structures thinner than ~7 px that are brighter (darker) than
their surroundings; averaging that residual along short lines at 12 orientations keeps only
what continues along a line (scratches, crack branches) and drops isolated texture. A pixel
is flagged when its own residual and the line-integrated residual both pass absolute floors
(grey levels, scaled by the sensitivity), and the line stands out of the local clutter (mean
residual in a box around it) by ``clutter_ratio``: lines lost in texture are left alone, by
design (the leave-alone gate comes first).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from archive_restore.masks._common import line_response, remove_small, thin_residuals


@dataclass(frozen=True)
class LineParams:
    """Floors are grey levels (0-255); lengths in pixels."""

    tophat: int = 7
    length: int = 21
    orientations: int = 12
    pixel_floor: float = 10.0
    line_floor: float = 8.0
    clutter_ratio: float = 3.0
    min_area: int = 12


def detect_lines(lum: np.ndarray, factor: float = 1.0, p: LineParams = LineParams()) -> np.ndarray:
    """lum: (H, W) float32 luma in [0, 255]. Returns (H, W) bool, True on scratch/crack pixels."""
    out = np.zeros(lum.shape, bool)
    for res in thin_residuals(lum, p.tophat):
        best, mean, _ = line_response(res, p.length, p.orientations)
        aniso = best - mean
        clutter = cv2.blur(res, (p.length, p.length))  # texture energy around the pixel
        m = (res > p.pixel_floor * factor) & (aniso > p.line_floor * factor) & (aniso > p.clutter_ratio * clutter)
        out |= m
    return remove_small(out, p.min_area)
