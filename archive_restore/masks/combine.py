"""Unite the per-kind detectors over native-resolution tiles, clean and dilate the result.

Tiling bounds memory (a 6000x4000 scan is processed in ``cfg.tile`` squares plus
``cfg.overlap`` context; only each tile's centre is kept). Floors are absolute grey levels
scaled by the sensitivity, so a tile and the whole image give the same answer.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.masks._common import (
    colourfulness,
    luma,
    median_residual,
    sensitivity_factor,
)
from archive_restore.masks.blotches import detect_blotches
from archive_restore.masks.dust import detect_specks
from archive_restore.masks.scratches import detect_lines
from archive_restore.masks.text import detect_text

# MaskConfig.kinds names -> the detector that covers them ("cracks" share the line detector)
KNOWN_KINDS = ("scratches", "cracks", "dust", "text", "blotches")


def detect_tile(image: np.ndarray, cfg: MaskConfig, where: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """image: (h, w, 3) uint8 RGB tile; where: (its first row in the image, image height),
    None for a whole image. Returns kind -> (h, w) bool, before dilation."""
    factor = sensitivity_factor(cfg.sensitivity)
    unknown = set(cfg.kinds) - set(KNOWN_KINDS)
    if unknown:
        raise ValueError(f"unknown mask kinds {sorted(unknown)}; choose from {KNOWN_KINDS}")
    lum = luma(image)
    out: dict[str, np.ndarray] = {}
    chroma = colourfulness(image)
    if "scratches" in cfg.kinds or "cracks" in cfg.kinds:
        out["scratches"] = detect_lines(lum, median_residual(lum, 7), factor, chroma=chroma)
    if "dust" in cfg.kinds:
        out["dust"] = detect_specks(lum, factor, chroma=chroma)
    if "text" in cfg.kinds:
        out["text"] = detect_text(image, lum, factor, where=where, chroma=chroma)
    if "blotches" in cfg.kinds:
        out["blotches"] = detect_blotches(image, lum, factor, chroma=chroma)
    return out


def detect_kinds(image: np.ndarray, cfg: MaskConfig) -> dict[str, np.ndarray]:
    """image: (H, W, 3) uint8 RGB. Returns kind -> (H, W) bool, tiled at native resolution.

    Tiles run on ``cfg.threads`` threads; each tile's result depends only on its own pixels,
    so the answer is the same for any thread count."""
    if cfg.threads < 0:
        raise ValueError(f"MaskConfig.threads must be >= 0, got {cfg.threads}")
    h, w = image.shape[:2]
    t, ov = max(64, cfg.tile), max(0, cfg.overlap)
    if h <= t + 2 * ov and w <= t + 2 * ov:
        return detect_tile(image, cfg)
    threads = cfg.threads or min(4, os.cpu_count() or 1)

    def one(yx: tuple[int, int]) -> tuple[int, int, int, int, dict[str, np.ndarray]]:
        y, x = yx
        y0, x0 = max(0, y - ov), max(0, x - ov)
        y1, x1 = min(h, y + t + ov), min(w, x + t + ov)
        return y, x, y0, x0, detect_tile(np.ascontiguousarray(image[y0:y1, x0:x1]), cfg, where=(y0, h))

    origins = [(y, x) for y in range(0, h, t) for x in range(0, w, t)]
    out: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for y, x, y0, x0, part in pool.map(one, origins):
            for k, m in part.items():
                if k not in out:
                    out[k] = np.zeros((h, w), bool)
                out[k][y:min(h, y + t), x:min(w, x + t)] = m[y - y0:min(h, y + t) - y0, x - x0:min(w, x + t) - x0]
    return out


def unite(kind_masks: dict[str, np.ndarray], shape: tuple[int, int], dilate: int) -> np.ndarray:
    """Union of kind masks, grown by ``dilate`` px (ellipse). (H, W) bool."""
    mask = np.zeros(shape, bool)
    for m in kind_masks.values():
        mask |= m
    if dilate > 0 and mask.any():
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * dilate + 1, 2 * dilate + 1))
        mask = cv2.dilate(mask.astype(np.uint8), k) > 0
    return mask
