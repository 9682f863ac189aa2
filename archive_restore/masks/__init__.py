"""Automatic damage detection: image -> bool mask, per damage kind.

Public entry point: ``detect(image, cfg) -> MaskResult``. Two detectors, chosen by
``MaskConfig.detector``: "rules", one OpenCV module per kind (scratches/cracks, dust, text,
blotches) tiled by ``combine``; "learned", the small network of ``net`` run from its ONNX
export by ``learned`` (the shipped graph, or ``MaskConfig.detector_graph``). Both give
per-kind masks that ``combine.unite`` joins and dilates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from archive_restore.config import MaskConfig


@dataclass
class MaskResult:
    """mask: (H, W) bool, True = fill. kind_pixels: pixels flagged per damage kind."""

    mask: np.ndarray
    kind_pixels: dict[str, int] = field(default_factory=dict)


def detect(image: np.ndarray, cfg: MaskConfig = MaskConfig()) -> MaskResult:
    """Find damage in ``image`` ((H, W, 3) uint8 RGB, as a viewer shows it) at native resolution.

    Returns the united mask grown by ``cfg.dilate`` px and the (undilated) pixel count per
    kind. Grey scans arrive as three equal channels. Raises ValueError on bad input or config.
    """
    from archive_restore.masks.combine import detect_kinds, unite

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect expects (H,W,3) uint8 RGB, got {image.shape} {image.dtype}")
    if cfg.detector not in ("rules", "learned"):
        raise ValueError(f"unknown detector {cfg.detector!r}; choose rules or learned")
    if cfg.detector_graph is not None and cfg.detector != "learned":
        raise ValueError("a detector graph is run by the learned detector only (detector='learned')")
    if cfg.detector == "rules":
        kinds = detect_kinds(image, cfg)
    else:
        from archive_restore.masks.learned import detect_kinds_learned

        kinds = detect_kinds_learned(image, cfg.sensitivity, cfg.kinds, cfg.detector_graph)
    mask = unite(kinds, image.shape[:2], cfg.dilate)
    return MaskResult(mask=mask, kind_pixels={k: int(m.sum()) for k, m in kinds.items()})
