"""Dev harness: detector quality on TRAINING crops damaged by damage.py (never the val set).

Usage: python scripts/tune_masks.py [N] [KIND...] [--lines JSON] [--scale S] [--grain G] [--zoom Z]
Prints per-kind tolerant P/R/F1 of the united mask, the clean flagged fraction (mean, max,
count above 1 %) with the per-detector share of false alarms, and seconds per megapixel.
--lines '{"net_clutter": 6}' overrides fields of ``scratches.LineParams`` for this run, to
trace the line detector's precision/recall trade-off without editing the defaults.
--scale 0.5 draws the damage on the photo enlarged 1/S times and shrinks the result back
(INTER_AREA), as a lower-resolution scan of the same print would show it: 1-px scratches
and specks. The ground truth keeps the module's rule (changed by > 2 levels in a channel),
against the clean photo put through the same enlarge-and-shrink.
--grain 4 adds film grain of 4 grey levels (std; clumps about 1.5 px, the same in every
channel) to each crop before the damage is drawn, as scans of real prints carry it: grain is
part of the photo, never of the ground truth.
--zoom 2 runs the detectors on each image enlarged twice (cubic) and shrinks the masks back
(a pixel is flagged when a quarter of its area was): a trial of detecting small scans at a
larger scale, not what ``restore`` does.
Crops are sampled evenly across six training sources; damaged cases are cached in /tmp.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.damage import DIFF_THRESHOLD, KINDS, synthesize
from archive_restore.evaluate import tolerant_scores
from archive_restore.masks.combine import detect_kinds, unite
from archive_restore.masks.net import HARNESS_SOURCES, harness_files

SOURCES = HARNESS_SOURCES


def candidate_files(n: int) -> list[Path]:
    """The evenly spaced files per source that ``photos(n)`` chooses its ``n`` from (the learned
    detector holds all of them out): ``masks.net.harness_files``."""
    return harness_files(n=n)


def photos(n: int) -> list[np.ndarray]:
    files = candidate_files(n)
    files = files[::max(1, len(files) // n)][:n] if len(files) > n else files
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def enlarged(im: np.ndarray, scale: float) -> np.ndarray:
    """(H, W, 3) uint8 enlarged 1/scale times (cubic); scale 1: ``im`` itself."""
    h, w = im.shape[:2]
    return im if scale == 1 else cv2.resize(im, (round(w / scale), round(h / scale)), interpolation=cv2.INTER_CUBIC)


def shrunk(im: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``im`` back to ``shape`` (H, W) with INTER_AREA (as a lower-resolution scan)."""
    return im if im.shape[:2] == shape else cv2.resize(im, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def grainy(im: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 with film grain of ``std`` grey levels added (same in every channel)."""
    if std <= 0:
        return im
    g = cv2.GaussianBlur(rng.normal(0, 1, im.shape[:2]).astype(np.float32), (0, 0), 0.7)
    g *= std / max(float(g.std()), 1e-6)
    return np.clip(im.astype(np.float32) + g[..., None] + 0.5, 0, 255).astype(np.uint8)


def cases(n: int, scale: float = 1.0, grain: float = 0.0) -> tuple[list[np.ndarray], dict[str, list]]:
    """(clean crops, kind -> [(damaged (H, W, 3) uint8, gt (H, W) bool)]), cached in /tmp.
    scale < 1: see the module docstring; the ground truth compares with the round-tripped clean crop."""
    cache = Path(f"/tmp/tune_cases_{n}_s{scale}_g{grain}.npz")
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return list(z["clean"]), z["cases"].item()
    imgs = [grainy(im, grain, np.random.default_rng(i)) for i, im in enumerate(photos(n))]
    clean = [shrunk(enlarged(im, scale), im.shape[:2]) for im in imgs]
    out = {}
    for ki, kind in enumerate(KINDS):
        out[kind] = []
        for i, im in enumerate(imgs):
            d = synthesize(enlarged(im, scale), np.random.default_rng(10_000 + 100 * ki + i), kinds=[kind])
            damaged = shrunk(d.damaged, im.shape[:2])
            gt = d.mask if scale == 1 else (np.abs(damaged.astype(np.int16) - clean[i]) > DIFF_THRESHOLD).any(-1)
            out[kind].append((damaged, gt))
    # crops differ in size: the trailing None keeps numpy from trying a (N, H, W, 3) array
    np.savez(cache, cases=np.array(out, dtype=object), clean=np.array(clean + [None], dtype=object)[:-1])
    return clean, out


def main(n: int = 40, *kinds: str, scale: float = 1.0, grain: float = 0.0, zoom: float = 1.0) -> None:
    imgs, cs = cases(n, scale, grain)
    cfg = MaskConfig()

    def kind_masks(im: np.ndarray) -> dict[str, np.ndarray]:
        """Per-kind masks of ``im``, detected on it enlarged ``zoom`` times and shrunk back."""
        if zoom == 1:
            return detect_kinds(im, cfg)
        big = cv2.resize(im, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
        return {k: shrunk(m.astype(np.float32), im.shape[:2]) > 0.25 for k, m in detect_kinds(big, cfg).items()}

    t0 = time.perf_counter()
    fr, per = [], {}
    for im in imgs:
        km = kind_masks(im)
        fr.append(unite(km, im.shape[:2], cfg.dilate).mean())
        for k, m in km.items():
            per[k] = per.get(k, 0.0) + m.mean() / len(imgs)
    dt = time.perf_counter() - t0
    mp = sum(im.shape[0] * im.shape[1] for im in imgs) / 1e6
    fr = np.array(fr)
    print(f"clean: mean {fr.mean()*100:.3f}% max {fr.max()*100:.2f}% >1%: {(fr > 0.01).sum()}/{len(fr)}  "
          + " ".join(f"{k} {v*100:.3f}%" for k, v in per.items()) + f"  ({dt/mp:.2f} s/MP)")
    for kind in kinds or KINDS:
        c = {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
        for damaged, gt in cs[kind]:
            s = tolerant_scores(unite(kind_masks(damaged), damaged.shape[:2], cfg.dilate), gt)
            for k in c:
                c[k] += s[k]
        p = c["tp_pred"] / max(c["tp_pred"] + c["fp"], 1)
        r = c["tp_gt"] / max(c["tp_gt"] + c["fn"], 1)
        print(f"{kind:10s} P {p:.3f} R {r:.3f} F1 {2*p*r/max(p+r,1e-9):.3f}", flush=True)


def use_line_params(overrides: dict) -> None:
    """Make ``masks.detect`` use ``LineParams(**overrides)`` in this process."""
    from archive_restore.masks import combine, scratches

    params = scratches.LineParams(**overrides)
    combine.detect_lines = functools.partial(scratches.detect_lines, p=params)
    print(f"line params: {params}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--lines" in args:
        i = args.index("--lines")
        use_line_params(json.loads(args[i + 1]))
        del args[i:i + 2]
    opts = {"scale": 1.0, "grain": 0.0, "zoom": 1.0}
    for name in opts:
        if f"--{name}" in args:
            i = args.index(f"--{name}")
            opts[name] = float(args[i + 1])
            del args[i:i + 2]
    main(int(args[0]) if args else 40, *args[1:], **opts)
