"""Build a demo OUT folder + report from sample_archive/ before the real pipeline exists.

Masks come from the real detectors (``archive_restore.masks.detect``); the fill is a STAND-IN
(OpenCV Telea inpainting, not our model), and the manifest is written per docs/manifest.md.
Usage: python scripts/report_demo.py [INPUT_DIR] [OUT_DIR]   (defaults: sample_archive, /tmp/report_demo)
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from archive_restore import __version__
from archive_restore.config import MaskConfig
from archive_restore.masks import detect
from archive_restore.report import render


def main() -> None:
    input_root = Path(sys.argv[1] if len(sys.argv) > 1 else "sample_archive").resolve()
    out_dir = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/report_demo")
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"auto_mask": True, "mask_sensitivity": "default", "masks_dir": None, "model_id": None,
                "fill": "opencv-telea stand-in (demo)"}
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as manifest:
        for path in sorted(p for p in input_root.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".tif")):
            rel = path.relative_to(input_root).as_posix()
            t0 = time.perf_counter()
            rec = {"input": rel, "input_root": str(input_root), "input_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            try:
                with Image.open(path) as im:
                    fmt, mode = im.format, im.mode
                    rgb = np.asarray(im.convert("RGB"))
                t1 = time.perf_counter()
                found = detect(rgb, MaskConfig())
                t2 = time.perf_counter()
                filled = cv2.inpaint(rgb, found.mask.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA) if found.mask.any() else rgb
                t3 = time.perf_counter()
                (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                (out_dir / "masks" / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(filled).save(out_dir / rel, fmt)
                Image.fromarray(found.mask.astype(np.uint8) * 255).save(out_dir / "masks" / f"{rel}.png")
                t4 = time.perf_counter()
                rec.update(output=rel, mask=f"masks/{rel}.png", output_sha256=hashlib.sha256((out_dir / rel).read_bytes()).hexdigest(),
                           status="restored" if found.mask.any() else "unchanged", error=None,
                           width=rgb.shape[1], height=rgb.shape[0], format=fmt, mode=mode,
                           masked_fraction=float(found.mask.mean()), kind_pixels=found.kind_pixels, windows=0,
                           timings={"decode": t1 - t0, "mask": t2 - t1, "inpaint": t3 - t2, "encode": t4 - t3, "total": t4 - t0})
            except Exception as exc:  # noqa: BLE001 - per-item failure, recorded like the pipeline does
                rec.update(output=None, mask=None, output_sha256=None, status="failed", error=f"{type(exc).__name__}: {exc}",
                           width=None, height=None, format=None, mode=None, masked_fraction=0.0, kind_pixels={}, windows=0,
                           timings={"total": time.perf_counter() - t0})
            rec.update(provider=None, model_id=None, model_name="opencv-telea (demo stand-in)", settings=settings,
                       finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool_version=__version__)
            manifest.write(json.dumps(rec) + "\n")
            print(f"{rec['status']:9s} {rel}")
    print(render(out_dir))


if __name__ == "__main__":
    main()
