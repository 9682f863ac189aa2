"""Automatic damage detection: image -> bool mask, per damage kind.

Public entry point: ``detect(image, cfg, progress=None) -> MaskResult``. Two detectors, chosen by
``MaskConfig.detector``: "rules", one OpenCV module per kind (scratches/cracks, dust, text,
blotches) tiled by ``combine``; "learned", the small network of ``net`` run from its ONNX
export by ``learned`` (the shipped graph, or ``MaskConfig.detector_graph``). Both give
per-kind masks that ``combine.unite`` joins and dilates.

Scale (session 26): both detectors see damage as it looks on the ~256 px photos they were
trained and tuned on. On a big scan whose pixels are finer than its detail (a print scanned at
600 dpi or more: the same damage many pixels wide, and soft), ``detect`` also runs the detector
on the scan shrunk to the scale where its detail is as fine as its pixels (``coarse_level``:
halved while it is soft, ``sharp_share``, and its short side stays >= ``LEVEL_MIN_SIDE``) and
adds what it finds there beyond what the native pass found (``beyond_native``).
``MaskConfig.scales="native"`` turns this off; photos under 512 px are never shrunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np

from archive_restore.config import MaskConfig


@dataclass
class MaskResult:
    """mask: (H, W) bool, True = fill. kind_pixels: pixels flagged per damage kind."""

    mask: np.ndarray
    kind_pixels: dict[str, int] = field(default_factory=dict)


LEVEL_MIN_SIDE = 256  # a coarse level is searched while the scan's short side / its factor >= this
SHARP_STEP = 24  # grey levels: a pixel further than this from the scan shrunk by 2 and enlarged back is sharp detail
TEXTURE_STEP = 4  # grey levels per half-size pixel (L1 of Sobel / 8; with rounding about 3.5): flatter is untextured
TEXTURE_FLOOR = 0.05  # sharp_share's denominator is at least this share of the scan, so a few crisp specks on a
# nearly flat soft scan (all the texture it has) do not make it look sharp
SOFT_MAX = 0.02  # a scan is soft (oversampled: its detail is coarser than its pixels) when under this share of it is sharp


def sharp_share(image: np.ndarray) -> float:
    """Share of the textured pixels of ``image`` ((H, W, 3) uint8 RGB) whose grey value lies
    more than ``SHARP_STEP`` levels from the same scan shrunk by 2 (area) and enlarged back
    (bilinear): the detail a scan at half the resolution would lose. Textured: the half-size
    scan's gradient there is at least ``TEXTURE_STEP`` levels a pixel, so the flat (or grainy)
    scanner bed, mount or border around a print does not make a sharp print look soft (session
    26's review: sharp photos on a bed 3x their size, 1/9 of the scan, were shrunk, and their
    clean pixels flagged up to 7 %). On 100 held-out photos (``scripts/scan_scale_probe.py``'s
    draw): as they are, median 4.9 % (a quarter under ``SOFT_MAX``, all under 512 px, so never
    shrunk); on a flat bed 3x their size none under it, on a grainy one (sigma 2) 8 %; enlarged
    2x bicubic, median 0.19 % and 94 % under it (with grain 95 %).
    The denominator is at least ``TEXTURE_FLOOR`` of the scan: otherwise a nearly flat soft scan
    would be judged by its few crisp dust specks alone (a review found 10 specks on a flat soft
    scan enough to stop its coarse level), and a print under 1/20 of its bed is diluted again."""
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    if h < 4 or w < 4:
        return 1.0
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[:h, :w]
    half = cv2.resize(g, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    back = cv2.resize(half, (w, h), interpolation=cv2.INTER_LINEAR)
    sharp = cv2.threshold(cv2.absdiff(g, back), SHARP_STEP, 255, cv2.THRESH_BINARY)[1]
    gx = cv2.Sobel(half, cv2.CV_16S, 1, 0, ksize=3)
    gy = cv2.Sobel(half, cv2.CV_16S, 0, 1, ksize=3)
    grad = cv2.addWeighted(cv2.convertScaleAbs(gx), 0.125, cv2.convertScaleAbs(gy), 0.125, 0)  # ~ levels a pixel
    # grown by a (half-size) pixel: a central difference is zero on a 1-px ridge itself (a thin line)
    textured = cv2.dilate(cv2.threshold(grad, TEXTURE_STEP - 1, 255, cv2.THRESH_BINARY)[1], np.ones((3, 3), np.uint8))
    textured = cv2.resize(textured, (w, h), interpolation=cv2.INTER_NEAREST)
    n = max(cv2.countNonZero(textured), TEXTURE_FLOOR * h * w)
    return cv2.countNonZero(cv2.bitwise_and(sharp, textured, dst=sharp)) / n


def _check_scales(scales: str) -> None:
    if scales not in ("auto", "native"):
        raise ValueError(f"unknown scales {scales!r}; choose auto or native")


def coarse_level(image: np.ndarray, scales: str = "auto") -> tuple[int, np.ndarray] | None:
    """(s, the scan shrunk by s) for the one coarse level searched besides the native scan
    (``image``: (H, W, 3) uint8 RGB), or None. The scan is halved (s = 2, 4, 8, ...) while it
    is soft (``sharp_share < SOFT_MAX``) and the halved short side stays >= ``LEVEL_MIN_SIDE``:
    the level is where the scan's detail is first as fine as its pixels, the scale of the
    photos the detectors learned on. None for ``scales="native"``, for photos under 512 px, and
    for scans whose own pixels hold sharp detail: there damage is drawn at the scale the
    detectors know, and shrinking would only turn, say, an album page of small photos into
    thumbnails they were never tuned on (4 x 4 held-out photos of 256 px: 0.55 % of pixels
    flagged natively, 3.2 % when levels 2 and 4 were searched regardless).

    Only the coarsest soft level, not every one on the way: a level where the scan is still
    soft is the blurred view the detectors see as specks (real scratched prints enlarged 4x:
    with levels 2 and 4, specks all over bd_h's crowd, 0.19 % of the photo flagged as scanned
    and 3.64 % enlarged; with level 4 alone 1.05 %, most of it the native pass's)."""
    _check_scales(scales)
    found, cur, s = None, image, 2
    while scales == "auto" and min(image.shape[:2]) // s >= LEVEL_MIN_SIDE and sharp_share(cur) < SOFT_MAX:
        cur = shrink(cur, 2)
        found = (s, cur)
        s *= 2
    return found


def shrink(image: np.ndarray, s: int) -> np.ndarray:
    """(H, W, 3) uint8 -> (ceil(H/s), ceil(W/s), 3) uint8: area averages of s x s blocks (the
    scan edge-padded to a multiple of ``s``), as a scanner at 1/s the resolution sees the print."""
    h, w = image.shape[:2]
    hp, wp = -(-h // s) * s, -(-w // s) * s
    if (hp, wp) != (h, w):
        image = np.pad(image, ((0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    return cv2.resize(image, (wp // s, hp // s), interpolation=cv2.INTER_AREA)


def enlarge(mask: np.ndarray, s: int, shape: tuple[int, int]) -> np.ndarray:
    """A (h, w) bool mask of ``shrink(image, s)`` -> (H, W) bool on the scan of ``shape``:
    bilinear at s x, kept above one half, so regions keep smooth edges, not s-px steps."""
    h, w = shape
    up = cv2.resize(mask.astype(np.uint8) * 255, (mask.shape[1] * s, mask.shape[0] * s), interpolation=cv2.INTER_LINEAR)
    return up[:h, :w] > 127


REACH = 2  # a level of factor s adds what lies more than REACH * s px from native finds (see beyond_native)


def _within(mask: np.ndarray, r: int) -> np.ndarray:
    """(H, W) bool: pixels at most ``r`` px (city-block) from a True pixel of ``mask``."""
    if not mask.any():
        return np.zeros(mask.shape, bool)
    src = np.where(mask, np.uint8(0), np.uint8(255))
    if r < 255:  # 8-bit distances saturate at 255
        return cv2.distanceTransform(src, cv2.DIST_L1, 3, dstType=cv2.CV_8U) <= r
    return cv2.distanceTransform(src, cv2.DIST_L1, 3) <= r


def beyond_native(found: np.ndarray, near_native: np.ndarray, r: int) -> np.ndarray:
    """What a coarse level adds: the pixels of ``found`` ((H, W) bool, its mask enlarged) more
    than ``r`` px from the native masks (``near_native``: the pixels within ``r`` of them), and
    the pixels of ``found`` within ``r`` px of those (city-block), so they meet what the native
    pass flagged.

    ``detect`` takes ``r = REACH * s`` for the level of factor s, whose mask is only accurate to
    a few times s: around damage the native pass found (thin enough to be drawn at its own
    resolution) it is a fatter outline, which this leaves out (on held-out photos enlarged 2x
    with crisp specks drawn at that size, 95 % of what the levels added lay around native
    finds, and 8 % of it was damage; dust F1 .851 native, .756 with the outlines, .838 without,
    50 photos).
    Damage wide in pixels, which the native pass finds in pieces if at all, reaches further
    than ``r`` and is kept whole, the ring between it and the native pieces included."""
    seeds = found & ~near_native
    if not seeds.any():
        return seeds
    return _within(seeds, r) & found


def detect(image: np.ndarray, cfg: MaskConfig = MaskConfig(), progress: Callable[[float], None] | None = None) -> MaskResult:
    """Find damage in ``image`` ((H, W, 3) uint8 RGB, as a viewer shows it) at native resolution
    and, with ``cfg.scales`` "auto", also at the ``coarse_level`` of a big soft scan.

    Returns the united mask grown by ``cfg.dilate`` px and the (undilated) pixel count per
    kind. Grey scans arrive as three equal channels. Raises ValueError on bad input or config.
    ``progress``: called, in this thread, with the share of the work done (0..1, rising, ending
    at 1): the native pass is 4/5 of it when a coarse level is possible and the level the rest
    (the learned detector reports after each tile, the rules after each level), so a person
    waiting on a 150 MP scan sees it move.

    Why a coarse level: the detectors see damage as it looks on the ~256 px photos they learned
    and were tuned on. The same damaged print scanned at 2x the resolution has scratches,
    specks and stains 2x as wide in pixels and softer: on 100 held-out training photos enlarged
    2x, the native pass found 18 % of the scratch pixels (F1 .30) and at 4x 1 %; with the coarse
    level the F1 of every kind is back within .05 of the photos' own (docs/quality.md, session
    26). The level runs the whole detector (its thresholds, line and fence rules) on the shrunk
    scan, and what it finds is enlarged back and added where the native pass found nothing.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"detect expects (H,W,3) uint8 RGB, got {image.shape} {image.dtype}")
    if cfg.detector not in ("rules", "learned"):
        raise ValueError(f"unknown detector {cfg.detector!r}; choose rules or learned")
    if cfg.detector_graph is not None and cfg.detector != "learned":
        raise ValueError("a detector graph is run by the learned detector only (detector='learned')")
    _check_scales(cfg.scales)  # before the native pass, not after it
    shape = image.shape[:2]
    # the share of the work reported for the native pass: with a level possible (s >= 2, a
    # quarter of the pixels or less) 4/5, and 1 at the end when there turns out to be none
    native_share = 0.8 if cfg.scales == "auto" and min(shape) >= 2 * LEVEL_MIN_SIDE else 1.0

    def part(start: float, share: float) -> Callable[[float], None] | None:
        return None if progress is None else (lambda f: progress(start + share * f))

    kinds = _detect_kinds(image, cfg, part(0.0, native_share))
    level = coarse_level(image, cfg.scales)  # after the native pass: its shrunk scan is not held through it
    if level is None and native_share < 1.0 and progress is not None:
        progress(1.0)
    if level is not None:
        s, small = level
        found = {k: enlarge(m, s, shape) for k, m in _detect_kinds(small, cfg, part(native_share, 1.0 - native_share)).items()
                 if m.any()}
        if found:
            native, union = np.zeros(shape, bool), np.zeros(shape, bool)
            for m in kinds.values():
                native |= m
            for m in found.values():
                union |= m
            added = beyond_native(union, _within(native, REACH * s), REACH * s)
            for k, m in found.items():
                kinds[k] |= m & added
    from archive_restore.masks.combine import unite

    mask = unite(kinds, shape, cfg.dilate)
    return MaskResult(mask=mask, kind_pixels={k: int(m.sum()) for k, m in kinds.items()})


def _detect_kinds(image: np.ndarray, cfg: MaskConfig, progress: Callable[[float], None] | None = None) -> dict[str, np.ndarray]:
    """kind -> (H, W) bool, undilated, at ``image``'s own resolution, by ``cfg.detector``;
    ``progress`` as ``detect``'s, for this level alone."""
    if cfg.detector == "rules":
        from archive_restore.masks.combine import detect_kinds

        found = detect_kinds(image, cfg)
        if progress is not None:
            progress(1.0)
        return found
    from archive_restore.masks.learned import detect_kinds_learned

    return detect_kinds_learned(image, cfg.sensitivity, cfg.kinds, cfg.detector_graph, progress=progress)
