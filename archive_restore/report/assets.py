"""Preview images for the report: grid thumbnails (long side <= 512 px), viewer previews
(long side <= 1600 px) of the input ("before") and output ("after"), and a translucent
mask overlay, all under ``OUT_DIR/report_assets/``.

Owns the asset cache. Each image's assets share one key derived from the manifest's
content hashes plus the size and mtime of the files, so a rebuild regenerates only what
changed (or what was missing before and exists now). A ``<key>.json`` sidecar, written
last, marks a complete set and remembers per-file errors, so missing or corrupt files
become placeholders and are not retried until they change. Full-size scans are never
copied into the report.

Decoding here is preview-only (8-bit RGB for a browser) and deliberately tolerant; the
archival read path is ``archive_restore.io``.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from archive_restore import io as aio
from archive_restore.io import TEMP_MARK, AtomicFile

ASSET_DIR = "report_assets"
ASSET_VERSION = "1"  # bump when the rendering of assets changes
GRID_SIDE = 512
VIEW_SIDE = 1600
MASK_RGB = (255, 0, 170)  # overlay colour: magenta reads on both colour and grey scans
MASK_ALPHA = 140  # 0..255 for any covered preview pixel (thin scratches stay visible)
_SUFFIXES = ("b512.jpg", "b1600.jpg", "a512.jpg", "a1600.jpg", "m512.png", "m1600.png", "json")


@dataclass(frozen=True)
class Sources:
    """Absolute paths of one image's files (any may be None when the manifest has none)."""

    before: Path | None
    after: Path | None
    mask: Path | None
    before_sha: str | None
    after_sha: str | None


def _stat_sig(path: Path | None) -> str:
    if path is None:
        return "none"
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def asset_key(src: Sources) -> str:
    """Cache key: changes when any source's hash, size, mtime or existence changes."""
    parts = [ASSET_VERSION, str(src.before), src.before_sha or "", _stat_sig(src.before),
             str(src.after), src.after_sha or "", _stat_sig(src.after), str(src.mask), _stat_sig(src.mask)]
    return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _atomic_write(path: Path, write) -> None:
    """Call ``write(binary file)`` on a temp file that replaces ``path`` only on success."""
    with AtomicFile(path) as fh:
        write(fh)


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(w, h) scaled so the long side is at most ``side`` (never enlarged)."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def _shrink(im: Image.Image, side: int) -> Image.Image:
    """Area-average downscale (OpenCV INTER_AREA: several times faster than Pillow's Lanczos
    on a busy 2-core machine, and alias-free for reductions) to long side <= ``side``."""
    size = _fit(im.size, side)
    if size == im.size:
        return im
    import cv2

    arr = cv2.resize(np.asarray(im), size, interpolation=cv2.INTER_AREA)
    return Image.fromarray(arr, im.mode)


def _to_rgb8(im: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, or 8-bit grey ("L", turned RGB after the shrink: a third of
    the memory at full size), for a browser preview (16-bit scaled, alpha on white). 16-bit grey
    is scaled in place, in its own dtype: a 150 MP scan's preview took 3.8 GB in 64-bit integers."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.array(im, dtype=np.uint16)  # native order, whatever the file's
        np.right_shift(arr, 8, out=arr)
        return Image.fromarray(arr.astype(np.uint8), "L")
    if im.mode == "I":
        arr = np.asarray(im)
        return Image.fromarray(np.clip(arr >> 8, 0, 255).astype(np.uint8), "L")
    if im.mode == "F":
        arr = np.nan_to_num(np.asarray(im, dtype=np.float32))
        hi = float(arr.max()) if arr.size else 1.0
        scale = 255.0 if hi <= 1.0 else (255.0 / 65535.0 if hi > 255 else 1.0)
        return Image.fromarray(np.clip(arr * scale, 0, 255).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, rgba).convert("RGB")
    if im.mode == "RGB":
        im.load()
        return im
    return im.convert("RGB")


_T = Image.Transpose
_TRANSPOSE = {2: _T.FLIP_LEFT_RIGHT, 3: _T.ROTATE_180, 4: _T.FLIP_TOP_BOTTOM, 5: _T.TRANSPOSE,
              6: _T.ROTATE_270, 7: _T.TRANSVERSE, 8: _T.ROTATE_90}


def _open_preview(path: Path, side: int, max_pixels: int = aio.DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB image whose long side is <= side, as a viewer shows it
    (EXIF orientation applied). Falls back to OpenCV for files Pillow can open but not decode
    (e.g. 16-bit colour TIFF). Raises on unreadable files, and on files with more than
    ``max_pixels`` pixels to decode (the run's decompression-bomb limit: a scan the run refused
    is not decoded for its preview either; a JPEG counts at the reduced scale it is decoded at)."""
    with open(path, "rb") as fp:
        try:
            im = aio.open_image(fp, max_pixels)  # the exact size check is below
        except Image.DecompressionBombError as exc:  # Pillow's own guard: twice the limit
            raise OSError(f"over the {max_pixels}-pixel limit: no preview decoded") from exc
        except UnidentifiedImageError as exc:  # its message names the file object, not the problem
            raise OSError("not a readable image (unknown format or corrupt header)") from exc
        with im:
            im.draft("RGB", (side, side))  # JPEG: decode at reduced scale, much faster
            w, h = im.size
            if w * h > max_pixels:
                raise OSError(f"{w}x{h} is over the {max_pixels}-pixel limit: no preview decoded")
            orientation = 1 if aio.pillow_made_upright(im) else im.getexif().get(0x0112, 1)
            try:
                im = _to_rgb8(im)
            except (OSError, ValueError, SyntaxError) as exc:
                return _open_preview_cv2(path, side, exc)
    im = _shrink(im, side).convert("RGB")
    if orientation in _TRANSPOSE:
        im = im.transpose(_TRANSPOSE[orientation])
    return im


def _open_preview_cv2(path: Path, side: int, why: BaseException) -> Image.Image:
    """OpenCV's decode of a file whose header Pillow read (size checked) but whose pixels it
    could not decode; OpenCV applies a TIFF's orientation itself."""
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError(f"cannot decode: {why}") from why
    if arr.dtype == np.uint16:
        arr = (arr >> 8).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGB)
    elif arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    return _shrink(Image.fromarray(arr).convert("RGB"), side)


def _mask_overlays(path: Path, sizes: list[tuple[int, int]]) -> list[Image.Image]:
    """Mask file -> one RGBA overlay per size: MASK_RGB with MASK_ALPHA wherever any source
    pixel under a preview pixel is masked (area-averaged, so 1-px scratches survive).
    The file is decoded once; sizes should be given largest first."""
    with open(path, "rb") as fp, aio.open_image(fp) as im:
        if im.mode in ("I;16", "I;16L", "I;16B", "I", "F"):
            m = Image.fromarray((np.asarray(im) > 0).astype(np.uint8) * 255, "L")
        else:
            m = im.convert("L")
    import cv2

    arr = (np.asarray(m) > 0).astype(np.uint8) * 255
    out = []
    for w, h in sizes:
        if arr.shape[:2] != (h, w):
            arr = cv2.resize(arr, (w, h), interpolation=cv2.INTER_AREA)
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., :3] = MASK_RGB
        rgba[..., 3] = np.where(arr > 0, MASK_ALPHA, 0)
        out.append(Image.fromarray(rgba, "RGBA"))
    return out


def _save_jpeg(im: Image.Image, path: Path, quality: int) -> None:
    _atomic_write(path, lambda fh: im.save(fh, "JPEG", quality=quality))


def _save_png(im: Image.Image, path: Path) -> None:
    _atomic_write(path, lambda fh: im.save(fh, "PNG", compress_level=3))


def build_one(asset_dir: Path, key: str, src: Sources) -> dict[str, Any]:
    """Make (or reuse) one image's assets. Returns the sidecar dict:
    ``{"b": bool, "a": bool, "m": bool, "w": int, "h": int, "errors": {role: text}}``
    where b/a/m say which of before/after/mask previews exist and w/h is the viewer
    preview size in px. Never raises for problems with the source files."""
    meta_path = asset_dir / f"{key}.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if isinstance(meta, dict) and meta.get("v") == ASSET_VERSION:
            return meta
    except (OSError, ValueError):
        pass
    meta = {"v": ASSET_VERSION, "b": False, "a": False, "m": False, "w": 0, "h": 0, "errors": {}}
    roles = (("before", src.before), ("after", src.after), ("mask", src.mask))
    if not any(p is not None and p.is_file() for _, p in roles):
        # Nothing to decode: no sidecar, so a file appearing later is picked up (its stat changes the key anyway).
        meta["errors"] = {role: "file not found" for role, p in roles if p is not None}
        return meta
    size: tuple[int, int] | None = None
    for role, path, flag in (("after", src.after, "a"), ("before", src.before, "b")):
        if path is None:
            continue
        try:
            big = _open_preview(path, VIEW_SIDE)
            small = _shrink(big, GRID_SIDE)
            _save_jpeg(big, asset_dir / f"{key}.{flag}1600.jpg", 85)
            _save_jpeg(small, asset_dir / f"{key}.{flag}512.jpg", 80)
            meta[flag] = True
            if size is None:
                size = big.size
        except FileNotFoundError:
            meta["errors"][role] = "file not found"
        except Exception as exc:  # noqa: BLE001 - any decoder failure becomes a placeholder
            meta["errors"][role] = f"{type(exc).__name__}: {exc}"[:300]
    if size is not None:
        meta["w"], meta["h"] = size
    if src.mask is not None and size is not None:
        try:
            big, small = _mask_overlays(src.mask, [size, _fit(size, GRID_SIDE)])
            _save_png(big, asset_dir / f"{key}.m1600.png")
            _save_png(small, asset_dir / f"{key}.m512.png")
            meta["m"] = True
        except FileNotFoundError:
            meta["errors"]["mask"] = "file not found"
        except Exception as exc:  # noqa: BLE001
            meta["errors"]["mask"] = f"{type(exc).__name__}: {exc}"[:300]
    _atomic_write(meta_path, lambda fh: fh.write(json.dumps(meta).encode("utf-8")))
    return meta


def build_all(out_dir: Path, jobs: list[tuple[str, Sources]], workers: int | None = None) -> list[dict[str, Any]]:
    """Build assets for every (key, sources) job in ``out_dir/report_assets`` (created if
    needed), then delete asset files whose key no longer appears. Returns the sidecars in
    job order."""
    asset_dir = out_dir / ASSET_DIR
    asset_dir.mkdir(parents=True, exist_ok=True)
    workers = workers or max(1, min(4, os.cpu_count() or 1))
    if workers == 1 or len(jobs) < 4:
        metas = [build_one(asset_dir, k, s) for k, s in jobs]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            metas = list(pool.map(lambda job: build_one(asset_dir, *job), jobs))
    live = {k for k, _ in jobs}
    for entry in os.scandir(asset_dir):
        name = entry.name
        key, _, suffix = name.partition(".")
        if suffix in _SUFFIXES and len(key) == 24 and key not in live:
            try:
                os.unlink(entry.path)
            except OSError:
                pass
        elif name.startswith(".tmp-") or (name.startswith(".") and TEMP_MARK in name):  # a killed build's temps
            try:
                os.unlink(entry.path)
            except OSError:
                pass
    return metas
