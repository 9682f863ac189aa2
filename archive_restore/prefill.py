"""Classical pre-fill of holes, shared by training data and the runtime (numpy + OpenCV only).

The generator learns a correction on top of this fill, so both sides must compute it the
same way: this module is the one definition.
"""

from __future__ import annotations

import cv2
import numpy as np

METHODS = ("telea", "ns", "none")


def prefill(image: np.ndarray, mask: np.ndarray, method: str = "telea", radius: int = 3) -> np.ndarray:
    """Fill ``mask`` pixels of ``image`` with a classical inpainting.

    image: (H, W, 3) uint8 RGB. mask: (H, W) bool, True = hole.
    Returns (H, W, 3) uint8; pixels outside the mask are unchanged, and the fill depends on
    them only: the hole's own values are zeroed before ``cv2.inpaint``, whose solvers (TELEA and
    Navier-Stokes alike) otherwise read a few of them (NS: up to 2 grey levels on about 0.4 % of
    a hole's pixels, on one cbsd68 photo), so a training crop's fill (made from the clean photo)
    differed slightly from a scan's (made from the damage).
    ``method="none"`` fills the hole with the mean colour of the known pixels.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"prefill expects (H,W,3) uint8, got {image.shape} {image.dtype}")
    m = mask.astype(bool)
    if not m.any():
        return image.copy()
    if method == "none":
        out = image.copy()
        known = image[~m]
        out[m] = known.mean(axis=0).astype(np.uint8) if known.size else 128
        return out
    flags = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}.get(method)
    if flags is None:
        raise ValueError(f"unknown prefill method {method!r}; choose from {METHODS}")
    known = image.copy()
    known[m] = 0
    return cv2.inpaint(known, m.astype(np.uint8) * 255, radius, flags)
