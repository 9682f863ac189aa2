"""Grain re-synthesis for filled holes (numpy and OpenCV only, no model).

Owns ``add_grain``: after the generator has filled a hole, the fill is smoother than the scan
around it (its high-frequency energy is 30-70 % of the photo's, ``models/gunet_v2.md``), so a
repaired scratch shows as a soft streak across film grain. ``add_grain`` measures the grain
amplitude of the known pixels around each hole, measures how much the fill already has, and adds
zero-mean luma noise inside the hole to make up the difference. Nothing outside the mask
changes; the noise is the same in R, G and B, so grayscale and sepia scans stay free of colour;
it is seeded, so a run is reproducible.

The grain amplitude is a robust one: the median absolute Laplacian of the known pixels in each
block's neighbourhood, so that edges and lines next to a hole (which the generator continues
itself) do not count as grain. Noise is white: the 4-neighbour Laplacian of white noise of
standard deviation s has variance 20 s^2.
"""

from __future__ import annotations

import cv2
import numpy as np

# Variance of the 4-neighbour Laplacian (cv2.Laplacian, ksize 1) of unit white noise: 16 + 4.
_LAP_GAIN = 20.0
# median |x| of a zero-mean Gaussian is 0.6745 sigma
_MAD_TO_SIGMA = 1.4826
# histogram bins of the block medians, in 8-bit levels of |Laplacian|
_BIN, _NBINS = 0.5, 256


def _luma(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 luma of an (H, W) or (H, W, C) image, in the image's own levels."""
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.shape[2] <= 2:  # grey, or grey + alpha
        return image[..., 0].astype(np.float32)
    rgb = image[..., :3].astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _median_of(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median (bin centre, 8-bit levels) and count of each row of (N, NBINS) histograms."""
    n = hist.sum(axis=1)
    k = np.argmax(np.cumsum(hist, axis=1) >= (n[:, None] + 1) // 2, axis=1)
    return ((k + 0.5) * _BIN).astype(np.float32), n


def _row_hists(image: np.ndarray, mask: np.ndarray, by: int, block: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of |Laplacian| of luma (8-bit levels, 0.5-level bins) in each block of block
    row ``by``: over its known pixels (not within 2 px of the hole, whose edge mixes fill and
    scan) and over its hole pixels. Returns two (ceil(W / block), NBINS) int64 arrays."""
    h, w = mask.shape
    a, b = by * block, min((by + 1) * block, h)
    a2, b2 = max(a - 2, 0), min(b + 2, h)  # context rows for the Laplacian and the 2-px margin
    lap = np.abs(cv2.Laplacian(_luma(image[a2:b2]) * scale, cv2.CV_32F, borderType=cv2.BORDER_REFLECT))[a - a2: b - a2]
    m2 = mask[a2:b2].astype(np.uint8)
    near = cv2.dilate(m2, np.ones((5, 5), np.uint8))[a - a2: b - a2].astype(bool)
    hole = m2[a - a2: b - a2].astype(bool)
    q = np.minimum(lap * (1.0 / _BIN), _NBINS - 1).astype(np.int64) + (np.arange(w) // block)[None, :] * _NBINS
    nbx = -(-w // block)
    known_h = np.bincount(q[~near], minlength=nbx * _NBINS).reshape(nbx, _NBINS)
    hole_h = np.bincount(q[hole], minlength=nbx * _NBINS).reshape(nbx, _NBINS)
    return known_h, hole_h


def grain_blocks(image: np.ndarray, mask: np.ndarray, block: int = 32, reach: int = 1,
                 strength: float = 1.0) -> np.ndarray:
    """Standard deviation of the luma noise to add in each block's hole pixels.

    image: (H, W) or (H, W, C) uint8 or uint16 image, already filled inside ``mask``.
    mask: (H, W) bool, True where the image was filled.
    block: side of the square blocks the amplitude is estimated in; reach: neighbouring blocks
    (each way) whose known pixels also count, so a hole wider than a block still has a ring.
    strength: scales the added variance (1 = make up the full difference).
    Per block: target = (1.4826 median |Laplacian| of the known pixels around it)^2, have = the
    same over the block's hole pixels; the added variance is strength * max(target - have, 0) / 20
    (undetermined where fewer than 64 known pixels are around). Works one block row at a time,
    holding 2 reach + 1 rows of histograms, so memory does not grow with the scan.
    Returns (ceil(H / block), ceil(W / block)) float32 in the image's levels; NaN for blocks
    without hole pixels or with too little scan around them.
    """
    h, w = mask.shape
    nby, nbx = -(-h // block), -(-w // block)
    sig = np.full((nby, nbx), np.nan, np.float32)
    padded = np.zeros((nby * block, w), bool)
    padded[:h] = mask
    has_hole = padded.reshape(nby, block, w).any(axis=(1, 2))
    if not has_hole.any():
        return sig
    top = float(np.iinfo(image.dtype).max)
    scale = 255.0 / top
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for by in np.nonzero(has_hole)[0]:
        rows = range(max(by - reach, 0), min(by + reach + 1, nby))
        for r in rows:
            if r not in cache:
                cache[r] = _row_hists(image, mask, r, block, scale)
        for r in [r for r in cache if r < by - reach]:  # no later block row needs these
            del cache[r]
        hist = np.sum([cache[r][0] for r in rows], axis=0)  # (nbx, NBINS): blocks above and below
        if reach:  # and left and right
            c = np.cumsum(np.pad(hist, ((reach + 1, reach), (0, 0))), axis=0)
            hist = c[2 * reach + 1:] - c[: -2 * reach - 1]
        ring, n_ring = _median_of(hist)
        have, n_hole = _median_of(cache[by][1])
        var = strength * np.maximum((_MAD_TO_SIGMA * ring) ** 2 - (_MAD_TO_SIGMA * have) ** 2, 0.0) / _LAP_GAIN
        var[(n_ring < 64) | (n_hole == 0)] = np.nan
        sig[by] = np.sqrt(var) / scale
    return sig


def grain_sigma(image: np.ndarray, mask: np.ndarray, block: int = 32, reach: int = 1,
                strength: float = 1.0) -> np.ndarray:
    """``grain_blocks`` as an (H, W) float32 map: each hole pixel's noise std in the image's
    levels, 0 outside the mask (for inspection and tests; ``add_grain`` does not build it)."""
    sig = np.nan_to_num(grain_blocks(image, mask, block, reach, strength), nan=0.0)
    full = np.repeat(np.repeat(sig, block, axis=0), block, axis=1)[: mask.shape[0], : mask.shape[1]]
    return np.where(mask, full, 0.0).astype(np.float32)


def _smooth_rows(sig: np.ndarray, valid: np.ndarray, by: int, block: int, w: int) -> np.ndarray:
    """(block, W) float32: block row ``by`` of the block stds, interpolated bilinearly between
    block centres over the blocks that have a value (``valid`` 1; normalised, so a block without
    holes does not pull its neighbours' grain down), so the amplitude has no steps at block edges."""
    lo, hi = max(by - 1, 0), min(by + 2, sig.shape[0])
    size = (sig.shape[1] * block, (hi - lo) * block)
    num = cv2.resize(sig[lo:hi] * valid[lo:hi], size, interpolation=cv2.INTER_LINEAR)
    den = cv2.resize(valid[lo:hi], size, interpolation=cv2.INTER_LINEAR)
    off = (by - lo) * block
    num, den = num[off: off + block, :w], den[off: off + block, :w]
    return np.where(den > 1e-3, num / np.maximum(den, 1e-3), 0.0).astype(np.float32)


def add_grain(image: np.ndarray, mask: np.ndarray, seed: int = 0, strength: float = 1.0,
              block: int = 32) -> np.ndarray:
    """A copy of ``image`` with grain added inside ``mask`` (see the module docstring).

    image: (H, W) or (H, W, C) uint8 or uint16, filled inside ``mask``; mask: (H, W) bool.
    The same noise value goes to every colour channel (grey: (H, W, 1) or grey + alpha; RGB or
    RGBA: the first three; alpha untouched); values are rounded and clipped to the dtype's
    range. Pixels outside the mask are returned unchanged. Noise is drawn block row by block
    row from ``numpy.random.default_rng(seed)``, so the same call gives the same image.
    """
    if image.dtype not in (np.uint8, np.uint16):
        raise TypeError(f"add_grain takes uint8 or uint16 images, not {image.dtype}")
    out = image.copy()
    if strength <= 0:
        return out
    sig = grain_blocks(image, mask, block=block, strength=strength)
    valid = np.isfinite(sig).astype(np.float32)
    sig = np.nan_to_num(sig, nan=0.0)
    if not sig.any():
        return out
    rng = np.random.default_rng(seed)
    top = float(np.iinfo(image.dtype).max)
    view = out if out.ndim == 3 else out[..., None]
    nc = 1 if view.shape[2] <= 2 else 3  # colour channels; alpha is never touched
    h, w = mask.shape
    for by in np.nonzero(sig.any(axis=1))[0]:
        a, b = by * block, min((by + 1) * block, h)
        s_px = _smooth_rows(sig, valid, by, block, w)[: b - a]
        hole = mask[a:b] & (s_px > 0)
        if not hole.any():
            continue
        noise = rng.standard_normal(int(hole.sum())).astype(np.float32) * s_px[hole]
        stripe = view[a:b]
        vals = stripe[hole][:, :nc].astype(np.float32) + noise[:, None]
        sel = stripe[hole]
        sel[:, :nc] = np.clip(vals + 0.5, 0, top).astype(image.dtype)
        stripe[hole] = sel
    return out
