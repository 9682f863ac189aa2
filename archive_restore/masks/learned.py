"""The learned damage detector at run time: the ONNX graph that ``masks.net`` exports, run by
ONNX Runtime on the CPU at native resolution in overlapping tiles (no torch needed).

The graph maps (1,3,H,W) float RGB in [0,1] (H, W multiples of the sidecar's "multiple", 4 when
absent) to (1,4,H,W) probabilities, one channel per ``CHANNELS`` kind. Masks use hysteresis per channel: a connected region of
pixels above the "grow" probability is flagged when it holds a pixel above the "seed" one, so a
faint stretch of a scratch joins its strong core while isolated weak responses stay out. The
pairs for each sensitivity are read from the graph's JSON sidecar
(``{"channels": [...], "thresholds": {"medium": {"scratches": {"seed": s, "grow": g}, ...}}}``),
where they were chosen on held-out training photos (``scripts/detector_calibrate.py``).

The scratches channel has a second way in (``line_seeds``), for long thin damage the network
scores only moderately along its whole length: where the sidecar has
``{"lines": {"length": L, "orients": n, "grow": g, "mean": {"medium": t, ...}}}``, a pixel with
``p > t`` whose mean probability along some straight L-px segment through it (n orientations)
is above t seeds the region of ``p > g`` around it. Evidence is integrated along the line, so
a faint scratch that is long is found while a short bright edge is not. Regular families of
parallel bars (fences, railings) and regular lattices of lines (wire mesh, window grids) are then
taken out of the scratches mask (``drop_bar_families``, ``drop_lattices``). At high sensitivity
a third way in, independent of the network, is ``masks.white_lines``: crisp near-white
scratches on flat ground (the bare paper of real scratched prints).

Memory: ``detect_kinds_learned`` takes the network's answer one tile row at a time and links
regions across rows (``masks.bands``), so the scan's four probability maps (16 bytes a pixel)
and their labels are never held whole; what grows with the scan's area is its grow maps at one
bit a pixel and the output masks (session 23: an 8000 x 12000 scan's detection peaks at 3.1 GB
instead of 5.0 GB, with the same masks).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from archive_restore.masks._common import line_offsets
from archive_restore.masks.bands import BandRegions, pack, unpack
from archive_restore.masks.white_lines import white_lines

CHANNELS = ("scratches", "dust", "text", "blotches")
DEFAULT_DETECTOR_NAME = "detector_v8_int8"
TILE = 2048  # kept centre of each tile (192 px of context each side costs 41 % more pixels, 128 px 27 %);
# running a 6 MP scan whole instead saved about 0.15 s of detection but raised the peak memory of
# `restore folder --auto-mask` (two scans in flight) from 2.3 to 3.2 GB with no gain end to end
# (docs/quality.md, session 17), so scans are tiled as before
OVERLAP = 128  # context on each side when the sidecar has no "context"; TILE and the context are
# multiples of the sidecar's "multiple", so every tile's fold and coarsest grid line up with the whole image's

# sensitivities at which ``white_lines`` (crisp near-white scratches on flat ground, the paper
# base of real scratched prints, which the network scores low) joins the scratches mask: only
# high, since on flat ground a thin white straight line can also be a road marking or a
# horizon (held-out training photos: 0.017 -> 0.043 % of clean pixels at medium; docs/quality.md, session 18)
WHITE_LINES_AT = ("high",)

_lock = threading.Lock()
_sessions: dict[str, tuple[object, dict]] = {}
THREADS = min(4, os.cpu_count() or 1)  # ONNX Runtime's threads per run
# Decode workers detect in parallel. Where two runs at once would want more cores than there
# are, they take turns: no slower, and ONNX Runtime then holds one tile's activations instead
# of one per worker (two 48 MP scans in flight on 2 cores: peak 4.80 -> 3.57 GB, 207 -> 208 s;
# session 23).
ONE_RUN_AT_A_TIME = (os.cpu_count() or 1) < 2 * THREADS
_run_lock = threading.Lock()


def default_detector_path() -> Path:
    """The shipped detector: ``export/<DEFAULT_DETECTOR_NAME>.onnx`` in the source tree."""
    from archive_restore.runtime.session import repo_root

    return repo_root() / "export" / f"{DEFAULT_DETECTOR_NAME}.onnx"


def _session(path: Path) -> tuple[object, dict]:
    """(onnxruntime.InferenceSession, sidecar dict) for ``path``, built once per process."""
    key = str(Path(path).resolve())
    with _lock:
        if key not in _sessions:
            try:
                import onnxruntime as ort
            except ImportError as exc:
                raise RuntimeError("the learned detector needs ONNX Runtime: pip install -e .[cpu] (or .[gpu])") from exc
            path = Path(path)
            side = path.with_suffix(".json")
            if not path.is_file() or not side.is_file():
                raise FileNotFoundError(f"learned detector not found: {path} and its sidecar {side.name} are both needed")
            meta = json.loads(side.read_text())
            if tuple(meta.get("channels", ())) != CHANNELS:
                raise ValueError(f"{side}: expected channels {list(CHANNELS)}, found {meta.get('channels')}")
            so = ort.SessionOptions()
            so.intra_op_num_threads = THREADS
            sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            _sessions[key] = (sess, meta)
        return _sessions[key]


def _run(sess, tile: np.ndarray, multiple: int) -> np.ndarray:
    """(h,w,3) uint8 -> (4,h,w) float32 probabilities (edge-padded to multiples of ``multiple``)."""
    h, w = tile.shape[:2]
    ph, pw = -(-h // multiple) * multiple, -(-w // multiple) * multiple
    x = np.pad(tile, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], np.float32) / np.float32(255)
    with _run_lock if ONE_RUN_AT_A_TIME else contextlib.nullcontext():
        return sess.run(None, {"image": x})[0][0, :, :h, :w]


def _bands(image: np.ndarray, path: Path | str | None, tile: int, overlap: int | None, progress=None):
    """Yield (y0, (4, h, W) float32 probabilities of image rows y0 .. y0 + h), one tile row at
    a time from the top; together they are ``probabilities(image, path, tile, overlap)``.
    ``progress``: called with the share of the scan's pixels run so far (0..1] after each tile."""
    sess, meta = _session(path or default_detector_path())
    m = int(meta.get("multiple", 4))
    if overlap is None:
        overlap = int(meta.get("context", OVERLAP))
    if tile % m or overlap % m:
        raise ValueError(f"tile {tile} and context {overlap} must be multiples of the graph's {m} px grid")
    h, w = image.shape[:2]
    if h <= tile + 2 * overlap and w <= tile + 2 * overlap:
        p = _run(sess, image, m)
        if progress is not None:
            progress(1.0)
        yield 0, p
        return
    for y in range(0, h, tile):
        ye = min(h, y + tile)
        out = np.empty((len(CHANNELS), ye - y, w), np.float32)
        for x in range(0, w, tile):
            y0, x0 = max(0, y - overlap), max(0, x - overlap)
            y1, x1 = min(h, y + tile + overlap), min(w, x + tile + overlap)
            p = _run(sess, image[y0:y1, x0:x1], m)
            xe = min(w, x + tile)
            out[:, :, x:xe] = p[:, y - y0:ye - y0, x - x0:xe - x0]
            if progress is not None:
                progress((y * w + xe * (ye - y)) / (h * w))
        yield y, out


def probabilities(image: np.ndarray, path: Path | str | None = None, tile: int = TILE, overlap: int | None = None) -> np.ndarray:
    """image: (H,W,3) uint8 RGB -> (4,H,W) float32 damage probabilities in [0,1].

    Large images run in ``tile`` squares with ``overlap`` px of context kept on each side; only
    each tile's centre is kept, so the answer does not depend on where a scan is cut. ``overlap``
    defaults to the sidecar's "context" (about the graph's receptive field radius), else ``OVERLAP``.
    ``detect_kinds_learned`` does not hold this whole array: it takes it a tile row at a time."""
    bands = list(_bands(image, path, tile, overlap))
    return bands[0][1] if len(bands) == 1 else np.concatenate([b for _, b in bands], axis=1)


def _pair(t, where: str) -> tuple[float, float]:
    seed, grow = (float(t), float(t)) if isinstance(t, (int, float)) else (float(t["seed"]), float(t["grow"]))
    if not 0 < grow <= seed < 1:
        raise ValueError(f"{where} needs 0 < grow <= seed < 1, got {t}")
    return seed, grow


def threshold(sensitivity: str, path: Path | str | None = None) -> dict[str, tuple[float, float]]:
    """channel -> (seed, grow) probabilities at ``sensitivity`` (low/medium/high), seed >= grow.

    The sidecar gives, per sensitivity, one number, one {"seed", "grow"} pair, or a pair (or
    number) per channel."""
    p = path or default_detector_path()
    _, meta = _session(p)
    if sensitivity not in ("low", "medium", "high"):
        raise ValueError(f"unknown sensitivity {sensitivity!r}; choose low, medium or high")
    side = Path(p).with_suffix(".json")
    if sensitivity not in meta.get("thresholds", {}):
        raise ValueError(f"{side} has no {sensitivity} threshold (calibrate it first)")
    t = meta["thresholds"][sensitivity]
    if isinstance(t, dict) and set(t) == set(CHANNELS):
        return {c: _pair(t[c], f"{side}: {sensitivity} {c}") for c in CHANNELS}
    pair = _pair(t, f"{side}: {sensitivity}")
    return {c: pair for c in CHANNELS}


def above(p: np.ndarray, t: float) -> np.ndarray:
    """(h,w) float32 probabilities -> (h,w) uint8, 255 where p > t (``cv2.compare``, which takes
    a 1x1 map for a scalar and refuses it: that one pixel is compared by numpy)."""
    if p.size == 1:
        return np.where(p > t, np.uint8(255), np.uint8(0))
    return cv2.compare(p, float(t), cv2.CMP_GT)


def hysteresis(p: np.ndarray, seed: float, grow: float) -> np.ndarray:
    """p: (H,W) float probabilities -> (H,W) bool: the 8-connected regions of ``p > grow``
    that contain a pixel with ``p > seed``."""
    strong = p > seed
    if grow >= seed or not strong.any():
        return strong
    n, labels = cv2.connectedComponents(above(p, grow), connectivity=8)
    keep = np.zeros(n, bool)
    keep[labels[strong]] = True
    keep[0] = False
    return keep[labels]


def line_means(p: np.ndarray, ys: np.ndarray, xs: np.ndarray, offs: np.ndarray, padded: np.ndarray | None = None) -> np.ndarray:
    """p: (H,W) float32; ys, xs: (K,) pixel coordinates -> (K,) float32: at each pixel, the
    largest mean of p along the segments ``offs`` (``line_offsets``) centred on it (the map is
    mirrored at its borders; ``padded``: that mirrored map, when the caller already has it).
    Costs orients x length gathers of K values."""
    r = int(np.abs(offs).max())
    q = np.pad(p, r, mode="reflect") if padded is None else padded
    w = q.shape[1]
    flat = q.ravel()
    base = (ys + r) * w + (xs + r)
    best = np.zeros(len(ys), np.float32)
    for o in offs:
        acc = np.zeros(len(ys), np.float32)
        for d in o[:, 0] * w + o[:, 1]:
            acc += flat[base + d]
        np.maximum(best, acc / np.float32(len(o)), out=best)
    return best


def _line_seeded(labels: np.ndarray, n: int, ys: np.ndarray, xs: np.ndarray, mean: float, offs: np.ndarray,
                 padded: np.ndarray) -> np.ndarray:
    """(n,) bool: which of ``labels``' n labels hold a candidate (ys, xs: (K,) positions in
    ``labels``, whose map mirrored by the offsets' reach is ``padded``) with a line mean above
    ``mean``. Label 0 is included as it comes; callers drop it.

    One such pixel is enough for a label, so the means are taken lazily: first at every 64th
    candidate, then at the rest only in labels still without one (the answer is the same as
    taking them everywhere; a long scratch is mostly settled in the first pass)."""
    keep = np.zeros(n, bool)
    if not len(ys):
        return keep
    lab = labels[ys, xs]
    first = np.zeros(len(ys), bool)
    first[::64] = True
    for pick in (first, ~first):
        pick &= ~keep[lab]
        if pick.any():
            hit = line_means(padded, ys[pick], xs[pick], offs, padded) > mean
            keep[lab[pick][hit]] = True
    return keep


def line_seeds(p: np.ndarray, mean: float, grow: float, length: int, orients: int) -> np.ndarray:
    """p: (H,W) float32 probabilities -> (H,W) bool: the 8-connected regions of ``p > grow``
    holding a pixel with ``p > mean`` whose mean along some ``length``-px segment through it
    (``orients`` orientations) exceeds ``mean`` (means taken lazily: ``_line_seeded``)."""
    ys, xs = np.nonzero(p > mean)
    out = np.zeros(p.shape, bool)
    if not len(ys):
        return out
    n, labels = cv2.connectedComponents(above(p, grow), connectivity=8)
    offs = line_offsets(length, orients)
    keep = _line_seeded(labels, n, ys, xs, mean, offs, np.pad(p, int(np.abs(offs).max()), mode="reflect"))
    keep[0] = False
    return keep[labels]


# Bar families (``drop_bar_families``): fences, railings, balusters. At least BARS parallel
# bars, each at least BAR_LEN px long, spaced regularly (std of the gaps <= BAR_CV x their mean)
# and apart (the profile between two bars below BAR_VALLEY x the lower bar's height).
BARS, BAR_LEN, BAR_CV, BAR_VALLEY, BAR_OUTLIER = 8, 10, 0.3, 0.35, 3.0


def _profile(t: np.ndarray) -> np.ndarray:
    """Pixel count per 1-px bin of the projections ``t`` (N,) float, splatted linearly (rounding
    them leaves a comb of empty bins at some angles) and smoothed with [1, 2, 1] / 4."""
    t = t - t.min()
    i = np.floor(t).astype(np.int64)
    f = t - i
    h = np.bincount(i, 1 - f, minlength=int(i.max()) + 2) + np.bincount(i + 1, f, minlength=int(i.max()) + 2)
    return np.convolve(h, [0.25, 0.5, 0.25], mode="same")


def _percentile90(v: np.ndarray) -> float:
    """``np.percentile(v, 90)`` (linear interpolation) of a 1-D array by partial sorting, several
    times faster on the short profiles ``drop_bar_families`` takes 18 of per region."""
    pos = 0.9 * (len(v) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    part = np.partition(v, (lo, hi))
    return float(part[lo] + (pos - lo) * (part[hi] - part[lo]))


def _runs(on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs of True in the 1-D bool array ``on``."""
    d = np.diff(np.concatenate([[0], on.astype(np.int8), [0]]))
    return np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """(H,W) bool -> (n, labels (H,W) int32, stats (n,5)): its 8-connected components as
    ``cv2.connectedComponentsWithStats`` gives them (label 0 is the background)."""
    n, lab, st, _ = cv2.connectedComponentsWithStats(np.ascontiguousarray(mask, dtype=bool).view(np.uint8), connectivity=8)
    return n, lab, st


def drop_bar_families(mask: np.ndarray, min_area: int = 120, orients: int = 18,
                      cc: tuple[int, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H,W) bool scratches mask -> the same without regular families of parallel bars; ``mask``
    itself (not a copy) when nothing goes. ``cc``: ``components(mask)`` when the caller has it.

    A fence, railing or row of balusters is many thin straight bars at an even spacing: the
    scratches channel scores each bar like a scratch and hysteresis joins them through the rail
    into one region. Real and synthetic scratch bundles have 2-4 lines (``damage.py``), film rain
    is irregular. For each 8-connected component (at least ``min_area`` px and 32 px long, its
    minimum-area rectangle at least BAR_LEN px wide), its pixels are projected across each of
    ``orients`` directions (10 degrees apart: a 40-px bar 5 degrees off still gives a 4-px run);
    the profile's runs above max(BAR_LEN, half its 90th percentile) are the bars. When there are at least BARS of them,
    evenly spaced (gaps' std <= BAR_CV x mean, mean >= 4 px), narrower than half a gap, with clear
    valleys between them and holding 40 % of the component, the family is scene structure:
    - every bar about as long as the others (none over BAR_OUTLIER x the median): the whole
      component goes;
    - otherwise (a long scratch along or across the fence) only the typical bars' pixels go.
    Checked on held-out training photos (docs/quality.md, session 15): it removed one railing
    (7 % of a clean photo) and no synthetic damage but part of a scratch that crossed that
    railing.
    """
    n, lab, st = components(mask) if cc is None else cc
    out = mask
    for j in range(1, n):
        x, y, w, h, area = st[j]
        if area < min_area or max(w, h) < 32:
            continue
        ys, xs = np.nonzero(lab[y:y + h, x:x + w] == j)
        k = -(-len(xs) // 20000)  # very large regions: every k-th pixel, counts times k
        sy, sx = ys[::k], xs[::k]
        if min(cv2.minAreaRect(np.stack([sx, sy], 1).astype(np.float32))[1]) < BAR_LEN:
            continue  # a straight line or a thin strip: no room for a row of bars
        for th in np.arange(orients) * np.pi / orients:
            prof = _profile(sx * np.cos(th) + sy * np.sin(th)) * k
            a, b = _runs(prof >= max(BAR_LEN, 0.5 * _percentile90(prof)))
            if len(a) < BARS:
                continue
            peaks = np.array([prof[p:q].max() for p, q in zip(a, b)])
            lows = np.array([prof[q:p].min() for q, p in zip(b[:-1], a[1:])])
            gaps = np.diff((a + b - 1) / 2.0)
            if ((lows > BAR_VALLEY * np.minimum(peaks[:-1], peaks[1:])).any()
                    or np.median(b - a) > 0.5 * np.median(gaps)
                    or gaps.mean() < 4 or gaps.std() > BAR_CV * gaps.mean()
                    or sum(float(prof[p:q].sum()) for p, q in zip(a, b)) < 0.4 * area):
                continue
            if out is mask:
                out = mask.copy()
            sub = out[y:y + h, x:x + w]
            typical = peaks <= BAR_OUTLIER * np.median(peaks)
            if typical.all():
                sub[lab[y:y + h, x:x + w] == j] = False
            else:
                inbar = np.zeros(len(prof) + 1, bool)
                for p, q, ok in zip(a, b, typical):
                    inbar[p:q] = ok
                t = xs * np.cos(th) + ys * np.sin(th)
                gone = inbar[np.clip(np.round(t - t.min()).astype(np.int64), 0, len(prof))]
                sub[ys[gone], xs[gone]] = False
            break
    return out


def _autocorrelation(m: np.ndarray) -> np.ndarray:
    """(H,W) bool -> its autocorrelation over shifts, fftshifted (zero shift at (H2 // 2, W2 // 2)
    of the padded (H2, W2) grid), divided by the pixel count: 1 at zero shift, and at a shift s
    the share of pixels whose s-shifted position is also in ``m``."""
    h, w = m.shape
    hh, ww = cv2.getOptimalDFTSize(2 * h), cv2.getOptimalDFTSize(2 * w)
    f = np.zeros((hh, ww), np.float32)
    f[:h, :w] = m
    spec = cv2.dft(f, flags=cv2.DFT_COMPLEX_OUTPUT)
    a = cv2.idft(cv2.mulSpectrums(spec, spec, 0, conjB=True), flags=cv2.DFT_REAL_OUTPUT | cv2.DFT_SCALE)
    return np.fft.fftshift(a) / max(float(m.sum()), 1.0)


def lattice_vector(m: np.ndarray, rmin: int = 6) -> tuple[int, int] | None:
    """The shortest repeat (dy, dx) of a regular lattice of lines in (H,W) bool ``m``, or None.

    A shift s is a lattice repeat when the autocorrelation is a local maximum of at least 0.5 at
    s (6 px <= |s| <= a quarter of the region), stays at least 0.45 at 2s and 0.35 at 3s (it
    repeats), and is at least 0.25 lower at s / 2 (a peak, not the ridge a straight line or a
    long edge has along itself). A bundle of 2-4 parallel scratches fails at 3s; crack networks
    and crossing scratches have no such peaks."""
    a = _autocorrelation(m)
    cy, cx = a.shape[0] // 2, a.shape[1] // 2
    rmax = min(m.shape) / 4
    if rmax < 2 * rmin:
        return None
    ys, xs = np.nonzero((a >= cv2.dilate(a, np.ones((5, 5), np.uint8))) & (a > 0.5))
    dy, dx = ys - cy, xs - cx
    r = np.hypot(dy, dx)
    ok = (r >= rmin) & (r <= rmax) & ((dy > 0) | ((dy == 0) & (dx > 0)))  # one of each +-s pair

    def at(y: float, x: float) -> float:
        y, x = int(round(cy + y)), int(round(cx + x))
        if not (0 <= y < a.shape[0] and 0 <= x < a.shape[1]):
            return 0.0
        return float(a[max(y - 1, 0): y + 2, max(x - 1, 0): x + 2].max())

    for v, y, x in sorted(zip(a[ys[ok], xs[ok]], dy[ok], dx[ok]), reverse=True)[:12]:
        if at(2 * y, 2 * x) >= 0.45 and at(3 * y, 3 * x) >= 0.35 and at(y / 2, x / 2) <= v - 0.25:
            return int(y), int(x)
    return None


def drop_lattices(mask: np.ndarray, min_area: int = 400, min_side: int = 48, window: int = 768,
                  cc: tuple[int, np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H,W) bool scratches mask -> the same without regular lattices of lines (wire mesh, window
    grids, tiled or woven patterns): the case ``drop_bar_families`` misses, where the crossing
    lines fill the valleys between bars. ``mask`` itself when nothing goes; ``cc``:
    ``components(mask)`` when the caller has it.

    Regions of at least ``min_area`` px, ``min_side`` px on each side and covering 15 % of their
    bounding box (a long scratch or a crack network covers far less) are tested with
    ``lattice_vector`` on their central ``window`` square. Where a repeat s is found, the pixels
    whose position shifted by +s or -s is also in the region (grown by 1 px) go: the lattice's
    lines, while a scratch across it keeps the pixels that do not line up with the lattice.
    """
    n, lab, st = components(mask) if cc is None else cc
    out = mask
    for j in range(1, n):
        x, y, w, h, area = st[j]
        if area < min_area or min(w, h) < min_side or area < 0.15 * w * h:
            continue
        m = lab[y:y + h, x:x + w] == j
        oy, ox = max((h - window) // 2, 0), max((w - window) // 2, 0)
        v = lattice_vector(m[oy: oy + window, ox: ox + window])
        if v is None:
            continue
        dy, dx = v
        pad = np.pad(m, ((abs(dy), abs(dy)), (abs(dx), abs(dx))))
        fwd = pad[abs(dy) + dy: abs(dy) + dy + h, abs(dx) + dx: abs(dx) + dx + w]
        bwd = pad[abs(dy) - dy: abs(dy) - dy + h, abs(dx) - dx: abs(dx) - dx + w]
        lined_up = cv2.dilate((fwd | bwd).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        if out is mask:
            out = mask.copy()
        out[y:y + h, x:x + w][m & lined_up] = False
    return out


def line_rule(sensitivity: str, path: Path | str | None = None) -> dict | None:
    """The sidecar's line rule at ``sensitivity`` as ``line_seeds`` keywords (mean, grow,
    length, orients), or None where the sidecar has none (or none at this sensitivity)."""
    p = path or default_detector_path()
    _, meta = _session(p)
    rule = meta.get("lines")
    if not rule or rule.get("mean", {}).get(sensitivity) is None:
        return None
    out = {"mean": float(rule["mean"][sensitivity]), "grow": float(rule["grow"]),
           "length": int(rule["length"]), "orients": int(rule["orients"])}
    if not (0 < out["grow"] < out["mean"] < 1 and out["length"] >= 3 and out["orients"] >= 1):
        raise ValueError(f"{Path(p).with_suffix('.json')}: bad line rule {rule}")
    return out


def detector_id(path: Path | str | None = None) -> str:
    """sha256 of the ONNX graph and its sidecar (thresholds included): a manifest records it, so
    a rerun with another detector redoes the masks. Raises FileNotFoundError when missing."""
    import hashlib

    p = Path(path or default_detector_path())
    h = hashlib.sha256()
    for f in (p, p.with_suffix(".json")):
        if not f.is_file():
            raise FileNotFoundError(f"learned detector not found: {f}")
        h.update(f.read_bytes())
    return h.hexdigest()


def detect_kinds_learned(image: np.ndarray, sensitivity: str, kinds: tuple[str, ...], path: Path | str | None = None,
                         tile: int = TILE, progress=None) -> dict[str, np.ndarray]:
    """image: (H,W,3) uint8 RGB. Returns kind -> (H,W) bool (before dilation) for the
    ``CHANNELS`` kinds named in ``kinds`` ("cracks" selects the scratches channel too).

    The answer is ``hysteresis`` of each channel of ``probabilities(image, path, tile)`` with
    the sensitivity's pair, the scratches channel united with its ``line_seeds`` (and, at
    ``WHITE_LINES_AT``, ``white_lines``), fences and lattices then taken out. The scan is taken
    a tile row at a time (``_bands``) and the regions are linked across rows by
    ``bands.BandRegions``, so no whole-scan probabilities or labels are held: each rule keeps its
    grow map at 1 bit per pixel, and the line rule the scratches probabilities of two tile rows
    (its means reach ``length // 2`` rows into the next one). ``progress``: as ``_bands``'s, called
    from this thread as the network's tiles are run (the rules after the last tile follow)."""
    wanted = {"scratches" if k == "cracks" else k for k in kinds}
    unknown = wanted - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown mask kinds {sorted(unknown)}; choose from {CHANNELS}")
    pairs = threshold(sensitivity, path)
    rule = line_rule(sensitivity, path) if "scratches" in wanted else None
    h, w = image.shape[:2]
    rules = [(c, k, *pairs[k]) for c, k in enumerate(CHANNELS) if k in wanted]  # (channel, kind, seed, grow)
    regions = {k: BandRegions() for _, k, _, _ in rules}
    grows: dict[str, list[np.ndarray]] = {k: [] for k in regions}  # per kind per band: packed grow map (one band: labels)
    rows: list[tuple[int, int]] = []  # (y0, y1) per band
    lines, line_grows = BandRegions(), []
    r = 0
    if rule is not None:
        offs = line_offsets(rule["length"], rule["orients"])
        r = int(np.abs(offs).max())
        if tile < r:
            raise ValueError(f"tile {tile} is shorter than the line rule's reach ({r} px)")
    state: dict = {"above": None, "waiting": None}  # line rule: rows above the waiting band; (band, y0, p0, labels, n)

    def whole() -> bool:
        """The scan is one band: its labels are kept for the second pass instead of the packed
        grow map, so it is not labelled twice."""
        return rows == [(0, h)]

    def kept(g: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return labels if whole() else pack(g)

    def hyst(c: int, k: str, seed: float, grow: float, p: np.ndarray) -> None:
        g = above(p[c], grow)
        _, _, labels = regions[k].add(g, p[c] > seed)
        grows[k].append(kept(g, labels))

    def seed_lines(below: np.ndarray | None) -> None:
        """Seed the line regions of the waiting band: its line means read ``r`` rows above it
        (kept from the band before) and below it (``below``: the next band's scratches
        probabilities, None at the scan's foot), mirrored at the scan's edges as ``line_seeds``
        mirrors them."""
        band, y0, p0, labels, n = state["waiting"]
        y1 = y0 + len(p0)
        ya, yb = max(0, y0 - r), min(h, y1 + r)
        parts = ([state["above"]] if y0 > 0 else []) + [p0] + ([below[: yb - y1]] if below is not None else [])
        strip = np.concatenate(parts) if len(parts) > 1 else p0
        padded = np.pad(strip, ((r - (y0 - ya), r - (yb - y1)), (r, r)), mode="reflect")
        ys, xs = np.nonzero(p0 > rule["mean"])
        keep = _line_seeded(labels, n, ys, xs, rule["mean"], offs, padded)
        keep[0] = False
        lines.seed(band, np.nonzero(keep)[0])
        state["above"] = strip[max(0, y1 - r) - ya: y1 - ya]

    def line_band(y0: int, p0: np.ndarray) -> None:
        if state["waiting"] is not None:
            seed_lines(p0)
        g = above(p0, rule["grow"])
        band, n, labels = lines.add(g)
        line_grows.append(kept(g, labels))
        state["waiting"] = (band, y0, p0, labels, n)

    def band_mask(regs: BandRegions, b: int, held: np.ndarray) -> np.ndarray:
        return regs.mask(b, labels=held) if whole() else regs.mask(b, unpack(held, w))

    def finish(k: str) -> np.ndarray:
        m = np.empty((h, w), bool)
        for b, (y0, y1) in enumerate(rows):
            m[y0:y1] = band_mask(regions[k], b, grows[k][b])
            if k == "scratches" and rule is not None:
                m[y0:y1] |= band_mask(lines, b, line_grows[b])
        return m

    # the rules' OpenCV and numpy work releases the GIL: two threads take a 6 MP scan's rules
    # from 0.43 to 0.29 s (docs/quality.md, session 17)
    with ThreadPoolExecutor(2) as pool:
        white = pool.submit(white_lines, image) if "scratches" in wanted and sensitivity in WHITE_LINES_AT else None
        for y0, p in _bands(image, path, tile, None, progress):
            rows.append((y0, y0 + p.shape[1]))
            jobs = [pool.submit(hyst, *rl, p) for rl in rules]
            if rule is not None:
                jobs.append(pool.submit(line_band, y0, p[0].copy()))
            for j in jobs:
                j.result()
            del p, jobs
        # the last band's line seeds run next to the other kinds' second pass
        tail = pool.submit(seed_lines, None) if rule is not None else None
        done = {k: pool.submit(finish, k) for k in regions if k != "scratches"}
        if tail is not None:
            tail.result()
        if "scratches" in regions:
            done["scratches"] = pool.submit(finish, "scratches")
        out = {k: done[k].result() for k in regions}
        if white is not None:
            out["scratches"] |= white.result()
    if "scratches" in out:
        m = out["scratches"]
        cc = components(m)
        bars = drop_bar_families(m, cc=cc)
        out["scratches"] = drop_lattices(bars, cc=cc if bars is m else None)
    return out
