"""``restore masks``: auto masks for a folder of scans, written for review and editing.

Layout contract (what ``restore folder --masks DIR`` reads, and the layout of ``restore
folder``'s own ``OUT/masks/``): the mask of ``INPUT_DIR/a/b.jpg`` is ``OUT/a/b.jpg.png``
(``io.mask_name``), 8-bit grey, 255 = fill, 0 = keep. (Before session 21 it was
``OUT/a/b.png``, which ``b.jpg`` and ``b.tif`` would share; ``--masks`` still reads that when
unambiguous.)
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from archive_restore.config import DEFAULT_MAX_PIXELS, MaskConfig


@dataclass
class MaskJob:
    """One scan: rel path (POSIX) under the input dir, mask file written or the error."""

    rel: str
    out: Path | None = None
    flagged: float = 0.0
    kind_pixels: dict[str, int] | None = None
    error: str | None = None
    kept: bool = False  # a mask was already there (perhaps edited by hand) and was left as it is


def read_rgb(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A scan as (H, W, 3) uint8 RGB as a viewer shows it, through ``io.read_scan`` (the same
    reader, orientation handling and decompression-bomb guard as ``restore folder``)."""
    from archive_restore import io as aio

    return aio.to_rgb8(aio.read_scan(path, max_pixels=max_pixels).pixels)


def list_images(root: Path) -> list[Path]:
    """Image files under ``root`` (recursive, sorted, ``io.walk_scans``: hidden entries not
    walked). Entries the walk refuses (an unreadable folder, a link leaving ``root``) are listed
    too, so that reading them fails and is counted rather than silently missing. Links to
    photos outside ``root`` are photos (an evaluation set built from links)."""
    from archive_restore.io import walk_scans

    return [path for _, path, _ in walk_scans(root, links_out_ok=True)]


def write_masks(input_dir: Path, out_dir: Path, cfg: MaskConfig, force: bool = False,
                ignored: "collections.Counter | None" = None, on_start: Callable[[int], None] | None = None,
                activity: Callable[[str, str, float], None] | None = None) -> Iterator[MaskJob]:
    """Detect and write a mask per image; yields one ``MaskJob`` per file (errors included).
    The scans are those ``restore folder`` would walk (``pipeline.list_inputs``: the same
    extensions, and a file symlink leaving the input folder fails here as it fails there).
    A mask already in ``out_dir`` is kept (``kept``; it may hold a person's edits, and a rerun
    after adding scans should only add theirs) unless ``force``. ``ignored``: as for
    ``io.walk_scans`` (what the walk passed over). ``on_start``: called with the number of
    scans found, before the first; ``activity``: (rel, stage, share done) as a scan is
    "reading" and "detecting" (the share of the detector's work, per tile; ``masks.detect``)."""
    from archive_restore.io import ImageError, mask_name, write_mask
    from archive_restore.masks import detect
    from archive_restore.pipeline import list_inputs, mark_case_collisions, report_activity

    tasks = list_inputs(input_dir, exclude=[out_dir], ignored=ignored)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = mark_case_collisions(tasks, out_dir)  # A.jpg and a.jpg may share one mask file there
    if on_start is not None:
        on_start(len(tasks))

    def tell(rel: str, stage: str, share: float) -> None:
        report_activity(activity, rel, stage, share)

    for rel, path, error in tasks:
        job = MaskJob(rel=rel)
        if error is not None:
            job.error = error
            yield job
            continue
        target = out_dir / mask_name(rel)
        if not force and os.path.lexists(target):
            job.out, job.kept = target, True
            yield job
            continue
        try:
            tell(rel, "reading", 0.0)
            image = read_rgb(path)
            tell(rel, "detecting", 0.0)
            res = detect(image, cfg, progress=lambda f, rel=rel: tell(rel, "detecting", f))
            write_mask(target, res.mask)
            job.out, job.flagged, job.kind_pixels = target, float(res.mask.mean()), res.kind_pixels
        except ImageError as exc:  # per-file failure: recorded, the batch goes on
            job.error = str(exc)
        except Exception as exc:
            job.error = f"{type(exc).__name__}: {exc}"
        yield job
