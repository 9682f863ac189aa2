"""``restore masks``: auto masks for a folder of scans, written for review and editing.

Layout contract (what ``restore folder --masks DIR`` reads): the mask of
``INPUT_DIR/a/b.jpg`` is ``OUT/a/b.png``, 8-bit grey, 255 = fill, 0 = keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from archive_restore.config import MaskConfig

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class MaskJob:
    """One scan: rel path (POSIX) under the input dir, mask file written or the error."""

    rel: str
    out: Path | None = None
    flagged: float = 0.0
    kind_pixels: dict[str, int] | None = None
    error: str | None = None


def read_rgb(path: Path) -> np.ndarray:
    """A scan as (H, W, 3) uint8 RGB with EXIF orientation applied; 16-bit is scaled to 8-bit.

    TEMPORARY: a small local reader until ``archive_restore.io.read_scan`` lands; switch to it then.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im).astype(np.float64)
            a = np.clip(a / (65535.0 if a.max() > 255 else 255.0) * 255.0 + 0.5, 0, 255).astype(np.uint8)
            return np.repeat(a[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, sorted), by suffix."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def mask_path(out_dir: Path, rel: Path) -> Path:
    """``OUT/<rel with its extension replaced by .png>``."""
    return out_dir / rel.with_suffix(".png")


def write_masks(input_dir: Path, out_dir: Path, cfg: MaskConfig) -> Iterator[MaskJob]:
    """Detect and write a mask per image; yields one ``MaskJob`` per file (errors included)."""
    from PIL import Image

    from archive_restore.masks import detect

    for path in list_images(input_dir):
        rel = path.relative_to(input_dir)
        job = MaskJob(rel=rel.as_posix())
        try:
            image = read_rgb(path)
            res = detect(image, cfg)
            target = mask_path(out_dir, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".tmp")
            Image.fromarray(res.mask.astype(np.uint8) * 255).save(tmp, format="PNG")
            tmp.replace(target)
            job.out, job.flagged, job.kind_pixels = target, float(res.mask.mean()), res.kind_pixels
        except Exception as exc:  # per-file failure: recorded, the batch goes on
            job.error = f"{type(exc).__name__}: {exc}"
        yield job
