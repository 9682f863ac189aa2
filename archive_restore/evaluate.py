"""Evaluation: synthetic damage on clean photos -> detection, restoration and speed figures.

Owns the metrics (tolerant precision/recall/F1/IoU, PSNR/SSIM inside a mask, texture ratio)
and the ``restore evaluate`` run. numpy + OpenCV only; the model runs through ONNX Runtime
via ``archive_restore.runtime.session`` when available.
"""

from __future__ import annotations

import cv2
import numpy as np

TOLERANCE = 2  # px


def _grow(mask: np.ndarray, r: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def tolerant_scores(pred: np.ndarray, gt: np.ndarray, tol: int = TOLERANCE) -> dict[str, int]:
    """Pixel counts with a ``tol``-px tolerance. pred, gt: (H, W) bool.

    tp_pred: predicted pixels within tol of a GT pixel; fp: the other predicted pixels.
    tp_gt: GT pixels within tol of a predicted pixel; fn: the other GT pixels.
    precision = tp_pred/(tp_pred+fp), recall = tp_gt/(tp_gt+fn), IoU = tp_gt/(tp_gt+fn+fp).
    """
    pred = pred.astype(bool)
    gt = gt.astype(bool)
    near_gt = _grow(gt, tol) if gt.any() else np.zeros_like(gt)
    near_pred = _grow(pred, tol) if pred.any() else np.zeros_like(pred)
    tp_pred = int((pred & near_gt).sum())
    tp_gt = int((gt & near_pred).sum())
    return {"tp_pred": tp_pred, "fp": int(pred.sum()) - tp_pred, "tp_gt": tp_gt, "fn": int(gt.sum()) - tp_gt}
