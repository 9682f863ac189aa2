"""Evaluation: synthetic damage on clean photos -> detection, restoration and speed figures.

Owns the metrics (tolerant precision/recall/F1/IoU, PSNR/SSIM inside a mask, texture ratio)
and the ``restore evaluate`` run. numpy + OpenCV only; the model runs through ONNX Runtime
via ``archive_restore.runtime.session`` when available, and fills exactly as ``restore folder``
does (``pipeline.restore_pixels``: windows along the damage, tone lock), so its quality and
seconds per megapixel are the product's.

Classical baselines: ``cv2.inpaint`` TELEA and Navier-Stokes (radius 3) always, and
``cv2.xphoto.inpaint`` FSR_FAST when OpenCV's contrib modules are installed
(``opencv-contrib-python-headless`` in place of ``opencv-python-headless``); without them the
FSR column is left out and the report says why.

Kinds: the synthetic damage kinds of ``archive_restore.damage`` (detection and restoration)
and ``centre_square`` (restoration only: the Context Encoder's centre hole, 1/4 of the area,
which no detector is meant to find).
"""

from __future__ import annotations

import cv2
import numpy as np

from archive_restore.pipeline import restore_pixels
from archive_restore.runtime.grain import add_grain

TOLERANCE = 2  # px
RESTORE_ONLY_KINDS = ("centre_square",)


def has_fsr() -> bool:
    """True when this OpenCV build has the contrib ``xphoto`` module (FSR inpainting)."""
    return hasattr(cv2, "xphoto") and hasattr(cv2.xphoto, "INPAINT_FSR_FAST")


def centre_square(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre-square case of (H, W, 3) uint8 ``image``: (damaged copy with the hole painted
    paper-white, (H, W) bool mask of the middle half in each direction, 1/4 of the area)."""
    h, w = image.shape[:2]
    mask = np.zeros((h, w), bool)
    mask[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    damaged = image.copy()
    damaged[mask] = (237, 232, 217)
    return damaged, mask


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


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two (H, W, 3) uint8 images, over ``mask`` ((H, W) bool) pixels if given."""
    d = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        d = d[mask.astype(bool)]
    mse = float(np.mean(d * d)) if d.size else 0.0
    return 99.0 if mse <= 1e-10 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM (Gaussian window sigma 1.5) of the luma of two (H, W, 3) uint8 images."""
    x = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    y = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = lambda z: cv2.GaussianBlur(z, (11, 11), 1.5)  # noqa: E731
    mx, my = g(x), g(y)
    vx, vy, cxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))


def texture_ratio(fill: np.ndarray, orig: np.ndarray, mask: np.ndarray, grow: int = 2) -> float:
    """High-frequency energy (mean squared Laplacian of luma) of ``fill`` inside the mask
    grown by ``grow`` px, divided by the original's. Blurry fills are far below 1."""
    m = _grow(mask, grow)
    lap = lambda im: cv2.Laplacian(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32), cv2.CV_32F)  # noqa: E731
    ef, eo = float(np.mean(lap(fill)[m] ** 2)), float(np.mean(lap(orig)[m] ** 2))
    return ef / eo if eo > 1e-9 else float("nan")


# --------------------------------------------------------------------------- the run

def _prf(c: dict[str, int]) -> dict[str, float]:
    p = c["tp_pred"] / max(c["tp_pred"] + c["fp"], 1)
    r = c["tp_gt"] / max(c["tp_gt"] + c["fn"], 1)
    f1 = 2 * p * r / max(p + r, 1e-12)
    iou = c["tp_gt"] / max(c["tp_gt"] + c["fn"] + c["fp"], 1)
    return {"precision": p, "recall": r, "f1": f1, "iou": iou}


def fill_hole(method: str, image: np.ndarray, mask: np.ndarray, model=None) -> np.ndarray:
    """(H, W, 3) uint8 fill of ``mask`` by ``method`` in telea / ns / fsr_fast / model.
    The model fills as ``restore folder`` does (``pipeline.restore_pixels``: the same windows
    along the damage, batches and tone lock), so its figures are the product's."""
    if method == "telea":
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
    if method == "ns":
        return cv2.inpaint(image, mask.astype(np.uint8) * 255, 3, cv2.INPAINT_NS)
    if method == "fsr_fast":  # xphoto's mask is the other way round: non-zero = known pixel
        out = np.empty_like(image)
        cv2.xphoto.inpaint(image, (~mask).astype(np.uint8) * 255, out, cv2.xphoto.INPAINT_FSR_FAST)
        res = image.copy()
        res[mask] = out[mask]
        return res
    return restore_pixels(model, image, mask)


def library_versions() -> dict[str, str]:
    """Versions of the libraries the figures depend on, the synthetic damage included: captions
    are drawn with ``cv2.putText``, whose Hershey faces OpenCV 5 replaced with built-in fonts
    that 5.0 and 5.1 draw differently (OpenCV 4.8 to 4.14 draw identical damage; hence the
    pin below 5 in pyproject.toml)."""
    from importlib import metadata

    out: dict[str, str] = {"opencv": cv2.__version__, "numpy": np.__version__}
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def load_model(path: str | None, pyramid: bool = True):
    """An InpaintSession for ``path`` (or the default model), or (None, reason) when unavailable.
    pyramid: the session's pyramid pre-fill of thick holes (``runtime.session``)."""
    try:
        from archive_restore.runtime.session import CPU, InpaintSession, default_model_path
    except Exception as exc:  # runtime not merged / onnxruntime missing
        return None, f"runtime unavailable ({type(exc).__name__}: {exc})"
    from pathlib import Path

    p = Path(path) if path else Path(default_model_path(CPU))  # evaluation runs on the CPU
    if not p.exists():
        return None, f"no model file at {p}"
    try:
        return InpaintSession(p, device="cpu", pyramid=pyramid), None
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def rescan(image: np.ndarray, s: int) -> np.ndarray:
    """The print of ``image`` ((H, W, 3) uint8 RGB, or (H, W) bool ground truth) scanned at
    ``s`` times the resolution: (s*H, s*W), bicubic for pixels, nearest for masks; s = 1 as is."""
    if s == 1:
        return image
    if image.dtype == bool:
        return cv2.resize(image.astype(np.uint8), None, fx=s, fy=s, interpolation=cv2.INTER_NEAREST) > 0
    return cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_CUBIC)


def run_evaluation(images: list[tuple[str, np.ndarray]], kinds: tuple[str, ...], cfg, model=None,
                   seed: int = 0, sheet_cases: int = 0, grain: float = 0.0,
                   scan_scale: int = 1, restoration: bool = True) -> tuple[dict, list[np.ndarray]]:
    """Evaluate detection and restoration on ``images`` ((name, (H,W,3) uint8 RGB) pairs).

    Case i of kind k is damaged with ``numpy.random.default_rng([seed, kind index, i])``.
    model: None or an object with ``fill(list of (h,w,3) float32 [0,1], list of (h,w) bool)``.
    grain: > 0 adds a ``model+grain`` method (the model's fill with ``runtime.grain.add_grain``
        at this strength, seeded by the case index) and uses it end to end, as ``restore folder
        --grain`` does.
    scan_scale: each photo is damaged as it is, then the damaged print, its ground truth and the
        clean photo are ``rescan``-ed at this many times the resolution before detection and
        restoration (the tolerance grows to ``TOLERANCE * scan_scale`` px): how the tool does on
        high-resolution scans, where the same damage is that many times wider in pixels. The
        fills get the nearest-enlarged ground truth grown by ``scan_scale`` px (the enlarged
        damage's soft bicubic edge reaches past it), and are measured inside that hole.
    restoration: False measures detection only (no fills, no end-to-end PSNR, no sheet rows).
    Returns (the JSON-ready report, contact-sheet rows (damaged|mask|TELEA|model|original)).
    """
    import time

    from archive_restore.damage import KINDS, synthesize
    from archive_restore.masks import detect

    fsr = has_fsr()
    grained = model is not None and grain > 0
    methods = ["telea", "ns"] + (["fsr_fast"] if fsr else []) + (["model"] if model is not None else [])
    methods += ["model+grain"] if grained else []
    if not restoration:
        methods, grained, sheet_cases = [], False, 0
    e2e_method = "model+grain" if grained else "model" if model is not None else "telea"
    if scan_scale < 1:
        raise ValueError(f"scan_scale must be >= 1, got {scan_scale}")
    tol = TOLERANCE * scan_scale
    report: dict = {"images": len(images), "kinds": {}, "tolerance_px": tol, "scan_scale": scan_scale,
                    "fill_hole_grown_px": scan_scale if scan_scale > 1 else 0,
                    "sensitivity": cfg.sensitivity, "detector": cfg.detector,
                    "detector_graph": cfg.detector_graph, "mask_scales": cfg.scales, "seed": seed, "restoration": restoration,
                    "methods": methods, "grain": grain if grained else 0.0,
                    "fsr_fast": "measured" if fsr else "left out: this OpenCV has no contrib xphoto module",
                    "versions": library_versions()}
    det_time = 0.0
    fill_time = {m: 0.0 for m in methods}  # summed over kinds, as is mp_fill
    mp_det = 0.0
    mp_fill = 0.0
    clean_fr = []
    for name, im in images:
        im = rescan(im, scan_scale)
        t = time.perf_counter()
        clean_fr.append(float(detect(im, cfg).mask.mean()))
        det_time += time.perf_counter() - t
        mp_det += im.shape[0] * im.shape[1] / 1e6
    report["clean_flagged"] = {"mean": float(np.mean(clean_fr)) if clean_fr else 0.0,
                               "max": float(np.max(clean_fr)) if clean_fr else 0.0,
                               "over_1pct": int(sum(f > 0.01 for f in clean_fr))}
    rows: list[np.ndarray] = []
    for kind in kinds:
        restore_only = kind in RESTORE_ONLY_KINDS
        if restore_only and not restoration:
            continue
        ki = len(KINDS) + RESTORE_ONLY_KINDS.index(kind) if restore_only else KINDS.index(kind)
        c = {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
        rest = {m: {"psnr": [], "ssim": [], "texture": []} for m in methods}
        e2e, dmg_psnr = [], []
        ft = {m: 0.0 for m in methods}
        mpk = 0.0
        for i, (name, im) in enumerate(images):
            if restore_only:
                damaged, gt = centre_square(im)
                auto = None
            else:
                d = synthesize(im, np.random.default_rng([seed, ki, i]), kinds=[kind])
                damaged, gt = d.damaged, d.mask
            im, damaged, gt = rescan(im, scan_scale), rescan(damaged, scan_scale), rescan(gt, scan_scale)
            if not restore_only:
                t = time.perf_counter()
                auto = detect(damaged, cfg).mask
                det_time += time.perf_counter() - t
                mp_det += im.shape[0] * im.shape[1] / 1e6
                s = tolerant_scores(auto, gt, tol)
                for k in c:
                    c[k] += s[k]
            if not gt.any() or not restoration:
                continue
            # enlarged, the damage's soft (bicubic) edge reaches past the nearest-enlarged ground
            # truth: the fills get a hole grown by the scale, so they do not keep that edge
            hole = _grow(gt, scan_scale) if scan_scale > 1 else gt
            fills = {}
            dts = {}
            for m in methods:
                t = time.perf_counter()
                if m == "model+grain":  # the model's fill (listed before it) plus the grain
                    fills[m] = add_grain(fills["model"], hole, seed=i, strength=grain)
                    dts[m] = dts["model"] + time.perf_counter() - t
                else:
                    fills[m] = fill_hole(m, damaged, hole, model)
                    dts[m] = time.perf_counter() - t
                ft[m] += dts[m]
                smap = ssim_map(fills[m], im)
                rest[m]["psnr"].append(psnr(fills[m], im, hole))
                rest[m]["ssim"].append(float(smap[hole].mean()))
                rest[m]["texture"].append(texture_ratio(fills[m], im, hole))
            mpk += im.shape[0] * im.shape[1] / 1e6
            if auto is not None:
                if not auto.any():
                    e2e.append(psnr(damaged, im))
                else:
                    fixed = fill_hole("telea" if model is None else "model", damaged, auto, model)
                    if grained:
                        fixed = add_grain(fixed, auto, seed=i, strength=grain)
                    e2e.append(psnr(fixed, im))
                dmg_psnr.append(psnr(damaged, im))
            if len(rows) < sheet_cases * len(kinds) and i < sheet_cases:
                mvis = np.repeat(gt[..., None].astype(np.uint8) * 255, 3, 2)
                if auto is not None:
                    mvis[auto & ~gt] = (255, 0, 0)
                blank = np.full_like(im, 128)
                rows.append(np.concatenate([damaged, mvis, fills["telea"], fills.get("model", blank), im], 1))
        mp_fill += mpk
        for m in methods:
            fill_time[m] += ft[m]
        agg = {m: {k: float(np.nanmean(v)) if v else None for k, v in r.items()} for m, r in rest.items()}
        report["kinds"][kind] = {
            "detection": None if restore_only else _prf(c), "counts": None if restore_only else c,
            "restoration_gt_mask": agg,
            "fill_seconds_per_mp": {m: ft[m] / max(mpk, 1e-9) for m in methods},
            "end_to_end": {"method": e2e_method,
                           "psnr": float(np.mean(e2e)) if e2e else None,
                           "damaged_psnr": float(np.mean(dmg_psnr)) if dmg_psnr else None},
        }
    report["seconds_per_mp"] = {"detection": det_time / max(mp_det, 1e-9),
                                **{f"fill_{m}": fill_time[m] / max(mp_fill, 1e-9) for m in methods}}
    return report, rows
