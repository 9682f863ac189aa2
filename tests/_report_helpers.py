"""Synthetic `restore folder` output for the report tests: small sepia "photos" with
scratches, dust and a blotch as input, the clean image as output, the damage as mask, and
a manifest written per docs/manifest.md. No real pipeline or model involved."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HOSTILE = "<img src=x onerror=alert(1)>.jpg"


def sepia_scene(w: int, h: int, seed: int) -> np.ndarray:
    """A little landscape (sky, sun, hills, grain) in sepia: (h, w, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    lum = 0.82 - 0.35 * y / h
    sx, sy, sr = rng.uniform(0.2, 0.8) * w, rng.uniform(0.15, 0.35) * h, 0.07 * min(w, h)
    lum = np.where((x - sx) ** 2 + (y - sy) ** 2 < sr**2, 0.97, lum)
    for k, shade in enumerate((0.55, 0.38, 0.22)):
        ridge = h * (0.45 + 0.15 * k) + 0.06 * h * np.sin(x / w * (3 + 2 * k) * np.pi + rng.uniform(0, 6))
        lum = np.where(y > ridge, shade + 0.1 * (y - ridge) / h, lum)
    lum = lum * (1 - 0.35 * (((x / w - 0.5) ** 2 + (y / h - 0.5) ** 2) * 2))  # vignette
    lum = np.clip(lum + rng.normal(0, 0.012, lum.shape), 0, 1)
    rgb = np.stack([lum * 255, lum * 220 + 12, lum * 170 + 20], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def damage(img: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Scratches, dust and one blotch: (damaged image, bool mask, kind_pixels)."""
    rng = np.random.default_rng(seed + 1000)
    h, w = img.shape[:2]
    kinds = {k: np.zeros((h, w), bool) for k in ("scratches", "dust", "blotches")}
    for _ in range(3):
        x0, slope = rng.integers(0, w), rng.uniform(-0.15, 0.15)
        ys = np.arange(h)
        xs = np.clip((x0 + slope * ys).astype(int), 0, w - 2)
        kinds["scratches"][ys, xs] = kinds["scratches"][ys, xs + 1] = True
    for _ in range(25):
        cy, cx = rng.integers(2, h - 2), rng.integers(2, w - 2)
        kinds["dust"][cy - 1:cy + 2, cx - 1:cx + 1] = True
    by, bx = rng.integers(h // 4, h // 2), rng.integers(w // 4, w // 2)
    yy, xx = np.mgrid[0:h, 0:w]
    r = 0.06 if seed % 2 == 0 else 0.03  # every other image: a blotch big enough to need review
    kinds["blotches"] |= ((yy - by) / (r * h)) ** 2 + ((xx - bx) / (1.5 * r * w)) ** 2 < 1
    out = img.copy()
    out[kinds["scratches"]] = 245
    out[kinds["dust"]] = 20
    out[kinds["blotches"]] = (out[kinds["blotches"]] * 0.4 + 140).astype(np.uint8)
    mask = kinds["scratches"] | kinds["dust"] | kinds["blotches"]
    return out, mask, {k: int(v.sum()) for k, v in kinds.items()}


def record(name: str, input_root: Path, **over: Any) -> dict[str, Any]:
    """A manifest record with plausible values; keyword arguments override fields."""
    rec: dict[str, Any] = {
        "input": name, "input_root": str(input_root), "output": name, "mask": f"masks/{name}.png",
        "input_sha256": hashlib.sha256(("in" + name).encode()).hexdigest(),
        "output_sha256": hashlib.sha256(("out" + name).encode()).hexdigest(),
        "status": "restored", "error": None, "width": 64, "height": 48, "format": "JPEG", "mode": "RGB",
        "masked_fraction": 0.01, "kind_pixels": {"scratches": 20, "dust": 10, "text": 0, "blotches": 0},
        "windows": 1, "timings": {"decode": 0.01, "mask": 0.1, "inpaint": 0.5, "encode": 0.02, "total": 0.63},
        "provider": "CPUExecutionProvider", "model_id": "f" * 64, "model_name": "lama-archive-small",
        "settings": {"auto_mask": True, "mask_sensitivity": 0.5, "masks_dir": None, "model_id": "f" * 64,
                     "window": 512, "context": 64, "jpeg": "match-input"},
        "finished_at": "2026-11-24T10:00:00+00:00", "tool_version": "0.1.0",
    }
    rec.update(over)
    return rec


def many_records(input_root: Path, n: int, seed: int, fail_every: int, error: str) -> list[dict[str, Any]]:
    """``n`` records in folders of 500: every ``fail_every``-th failed with ``error`` (``{i}`` is
    filled in), the rest restored or unchanged with random masked fractions, kinds and timings."""
    rng = np.random.default_rng(seed)
    recs = []
    for i in range(n):
        name = f"box{i // 500:02d}/scan {i:05d}.tif"
        if i % fail_every == 0:
            recs.append(record(name, input_root, status="failed", error=error.format(i=i), output=None,
                               mask=None, output_sha256=None, masked_fraction=0.0, kind_pixels={}))
        else:
            mf = float(rng.uniform(0, 0.08))
            recs.append(record(name, input_root, width=4000, height=3000, masked_fraction=mf,
                               kind_pixels={"scratches": int(mf * 6e6), "dust": int(rng.integers(0, 900)), "text": 0, "blotches": 0},
                               status="restored" if mf > 0.001 else "unchanged",
                               timings={k: round(float(rng.uniform(0.01, 3)), 4) for k in ("decode", "mask", "inpaint", "encode", "total")},
                               finished_at=f"2026-11-24T{10 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}+00:00"))
    return recs


def make_run(root: Path, names: list[str], size: tuple[int, int] = (96, 72), failed: dict[str, str] | None = None,
             seed: int = 0) -> tuple[Path, Path, list[dict[str, Any]]]:
    """Write scans/ (damaged inputs), out/ (clean outputs, masks, manifest.jsonl) under root.
    ``failed`` maps names to error texts (input written, no output). Returns (input_root, out_dir, records)."""
    failed = failed or {}
    input_root, out_dir = root / "scans", root / "out"
    recs = []
    for i, name in enumerate(names):
        w, h = size
        clean = sepia_scene(w, h, seed + i)
        damaged, mask, kinds = damage(clean, seed + i)
        fmt = "PNG" if name.lower().endswith(".png") else "JPEG"
        (input_root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(damaged).save(input_root / name, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        if name in failed:
            recs.append(record(name, input_root, status="failed", error=failed[name], output=None, mask=None,
                               output_sha256=None, masked_fraction=0.0, kind_pixels={}, width=w, height=h,
                               finished_at=f"2026-11-24T10:{i % 60:02d}:00+00:00"))
            continue
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / "masks" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(clean).save(out_dir / name, fmt, **({"quality": 92} if fmt == "JPEG" else {}))
        Image.fromarray(mask.astype(np.uint8) * 255).save(out_dir / "masks" / f"{name}.png")
        recs.append(record(name, input_root, width=w, height=h, format=fmt, masked_fraction=float(mask.mean()),
                           kind_pixels={**kinds, "text": 0}, finished_at=f"2026-11-24T10:{i % 60:02d}:00+00:00",
                           timings={"decode": 0.02, "mask": 0.3, "inpaint": 1.2 + 0.1 * i, "encode": 0.05,
                                    "total": 1.57 + 0.1 * i}))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(out_dir, recs)
    return input_root, out_dir, recs


def write_manifest(out_dir: Path, recs: list[dict[str, Any]], extra_lines: list[str] = ()) -> None:
    with open(out_dir / "manifest.jsonl", "w", encoding="utf-8") as fh:
        for r in recs:
            fh.write(json.dumps(r) + "\n")
        for line in extra_lines:
            fh.write(line + "\n")


def page_data(html: str) -> dict[str, Any]:
    """The JSON blob embedded in report.html."""
    start = html.index('<script type="application/json" id="report-data">') + len('<script type="application/json" id="report-data">')
    end = html.index("</script>", start)
    return json.loads(html[start:end])


def raw_record(data: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an item's manifest record as report.js does."""
    order = data["orders"][item["xo"]]
    return {k: (data["shared"][item["xs"][k]] if k in item["xs"] else item["x"][k]) for k in order}


def items_by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Page items keyed by input name, with "raw" (the record) and "links" added as report.js builds them."""
    from urllib.parse import quote

    def enc(p: str) -> str:
        return "/".join(quote(seg, safe="!'()*~") for seg in p.split("/"))

    out = {}
    for it in data["items"]:
        raw = raw_record(data, it)
        f = it.get("l", "")
        links = [data["roots"][it["ri"]] + enc(raw["input"]) if "i" in f else None,
                 enc(raw["output"]) if "o" in f else None, enc(raw["mask"]) if "m" in f else None]
        out[raw["input"]] = {**it, "n": raw["input"], "raw": raw, "links": links}
    return out
