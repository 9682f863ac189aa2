"""Tone lock: fills of a monotone scan (grey, sepia, cyanotype stored as RGB) keep the scan's tone.

Owns ``ToneCurve``. Many archive scans are black-and-white or toned prints saved as RGB: every
pixel's colour is (nearly) a function of its brightness. The generator fills in RGB and can
drift off that function by several grey levels (a faint colour cast on a grey photo), which a
grey-mode file avoids by construction (``io.from_model_rgb`` averages the channels) and an RGB
file does not. ``ToneCurve.fit`` measures the scan's colour as a function of luma from the
known pixels (median chroma, RGB minus luma, per luma bin) and how far the known pixels' chroma
strays from it; when that spread is small (``MONO_MAX``: the scan is monotone), ``apply`` keeps
each fill pixel's luma exactly and allows its chroma no further from the curve than the known
pixels' own 99.9th percentile.
Colour photos (larger spread) get ``None`` from ``fit`` and are left exactly as filled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601, as OpenCV's RGB -> grey
BINS = 64
MIN_PER_BIN = 16
# a scan is monotone when 99.9 % of its known pixels' chroma lies within this distance (largest
# channel deviation, in [0,1] units) of its tone curve: 8 of 255 leaves room for JPEG's chroma
# noise and uneven toning, while a faded colour print's skin, sky and foliage stray 10-100 levels
MONO_MAX = 8.0 / 255.0
SAMPLE_PIXELS = 250_000  # the curve is fitted on about this many (strided) pixels
# Screen first: on a sparser strided sample of about SCREEN_PIXELS, a scan with more than
# SCREEN_FRACTION of its pixels over twice MONO_MAX from that sample's own curve is colour (the
# full test allows 0.1 % over MONO_MAX). Colour scans are then decided in 10-15 ms instead of
# 35-60; on 556 photos (old, cbsd68, training, toned and JPEG'd) every answer was the same
SCREEN_PIXELS = 20_000
SCREEN_FRACTION = 0.05


@dataclass(frozen=True)
class ToneCurve:
    """Chroma as a function of luma. curve: (BINS, 3) float32, RGB minus luma at the bin centres
    (0 for grey; red above blue for sepia); tol: allowed distance of a fill's chroma from the
    curve (largest channel deviation, [0,1] units)."""

    curve: np.ndarray
    tol: float

    @classmethod
    def fit(cls, pixels: np.ndarray, mask: np.ndarray | None = None) -> "ToneCurve | None":
        """pixels: (H, W, C) uint8/uint16 scan pixels (C 3 or 4; grey files return None, they
        need no lock); mask: (H, W) bool, True = to be filled (left out of the fit).
        Returns None for colour scans (spread above ``MONO_MAX``) or too few known pixels."""
        if pixels.ndim != 3 or pixels.shape[2] < 3:
            return None
        h, w = pixels.shape[:2]
        scale = float(np.iinfo(pixels.dtype).max)

        def known_rgb(step: int) -> np.ndarray:  # (N, 3) float32 in [0,1], a strided sample
            rgb = pixels[::step, ::step, :3].astype(np.float32) / scale
            return rgb.reshape(-1, 3) if mask is None else rgb[~mask[::step, ::step]]

        step = max(1, int(np.ceil(np.sqrt(h * w / SAMPLE_PIXELS))))
        screen = max(1, int(np.ceil(np.sqrt(h * w / SCREEN_PIXELS))))
        if screen >= 2 * step:
            # colour scans, nearly all of them, are told apart on a sparser sample: on a
            # monotone scan hardly any pixel strays twice the bound from that sample's own curve
            sub = _deviation(known_rgb(screen))
            if sub is not None and float(np.mean(sub[1] > 2 * MONO_MAX)) > SCREEN_FRACTION:
                return None
        rgb = known_rgb(step)
        if len(rgb) < MIN_PER_BIN * 4:
            return None
        fitted = _deviation(rgb)
        if fitted is None:
            return None
        curve, dev = fitted
        spread = float(np.percentile(dev, 99.9))
        if spread > MONO_MAX:
            return None
        return cls(curve=curve, tol=max(spread, 1.0 / 255.0))

    def apply(self, filled: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """filled: (h, w, 3) float32 RGB in [0,1] (a window's model output); mask: (h, w) bool.
        Returns a copy whose masked pixels keep their luma and have their chroma clamped, channel
        by channel, to within ``tol`` of the curve at that luma (then shifted so the luma is
        unchanged, and clipped to [0,1]); pixels outside the mask are returned unchanged."""
        out = np.array(filled, dtype=np.float32, copy=True)
        m = mask.astype(bool)
        if not m.any():
            return out
        v = out[m]
        y = v @ LUMA
        target = _lookup(self.curve, y)
        c = np.clip(v - y[:, None], target - self.tol, target + self.tol)
        c -= (c @ LUMA)[:, None]  # chroma carries no luma: the pixel keeps its brightness
        out[m] = np.clip(y[:, None] + c, 0.0, 1.0)
        return out


def _deviation(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The tone curve of (N, 3) float32 RGB pixels in [0,1] and each pixel's distance from it.
    Returns (curve (BINS, 3) float32, deviation (N,) float32: largest channel distance of the
    pixel's chroma from the curve at its luma), or None when fewer than 2 bins are populated."""
    y = rgb @ LUMA
    chroma = rgb - y[:, None]
    b = np.clip((y * BINS).astype(np.int64), 0, BINS - 1)
    curve = np.zeros((BINS, 3), np.float32)
    ok = np.zeros(BINS, bool)
    order = np.argsort(b, kind="stable")
    bounds = np.searchsorted(b[order], np.arange(BINS + 1))
    for i in range(BINS):
        s = order[bounds[i]:bounds[i + 1]]
        if len(s) >= MIN_PER_BIN:
            curve[i] = np.median(chroma[s], axis=0)
            ok[i] = True
    if ok.sum() < 2:
        return None
    idx = np.arange(BINS, dtype=np.float32)
    for k in range(3):  # empty bins: interpolated, held flat beyond the ends
        curve[:, k] = np.interp(idx, idx[ok], curve[ok, k])
    return curve, np.abs(chroma - _lookup(curve, y)).max(axis=1)


def _lookup(curve: np.ndarray, y: np.ndarray) -> np.ndarray:
    """curve (BINS, 3) at luma y (N,) in [0,1], linear between bin centres: (N, 3) float32."""
    pos = np.clip(y * BINS - 0.5, 0, BINS - 1)
    idx = np.arange(BINS, dtype=np.float32)
    return np.stack([np.interp(pos, idx, curve[:, k]) for k in range(3)], axis=1).astype(np.float32)
