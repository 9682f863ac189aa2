"""Shared test helpers: a fake inference session with the ``InpaintSession`` interface."""

from __future__ import annotations

import numpy as np
import pytest


class FakeSession:
    """Fills holes with the mean colour of each window's known pixels (deterministic, no ONNX).

    Same interface as ``runtime.session.InpaintSession``: provider, model_id, model_name,
    pad_multiple, fill(images (h,w,3) float32 [0,1], masks (h,w) bool) -> list of (h,w,3).
    """

    provider = "FakeExecutionProvider"
    model_id = "f" * 64
    model_name = "fake_mean_fill"
    pad_multiple = 8

    def __init__(self) -> None:
        self.calls = 0
        self.windows = 0

    def fill(self, images, masks):
        self.calls += 1
        self.windows += len(images)
        out = []
        for img, m in zip(images, masks):
            assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
            assert m.dtype == bool and m.shape == img.shape[:2]
            known = img[~m]
            colour = known.mean(axis=0) if known.size else np.full(3, 0.5, np.float32)
            o = img.copy()
            o[m] = colour
            out.append(o)
        return out


@pytest.fixture
def fake_session():
    return FakeSession()
