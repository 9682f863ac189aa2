"""Seam probe (``runtime.windows``): does the fill jump where two windows meet inside a hole?

Usage:
    python scripts/seam_probe.py                  # tears, thin scratches and torn corners on the real old photos
    python scripts/seam_probe.py --kinds tear --scale 3 --sheet /tmp/seams.png
    python scripts/seam_probe.py --kinds corner --starved 0     # torn corners, starving windows not held back

Each real old photo in ../shared/data/old_photos is enlarged ``--scale`` times (Lanczos), so
it spans several windows, and gets seeded holes laid across the window grid's lines:

- ``tear``: one irregular blotch, 440-620 px by 300-460 px (larger than one 512-px window can
  hold, so the windows must share it), centred on a grid corner;
- ``scratch``: three curved 3-6 px scratches, each crossing several grid lines;
- ``corner``: a torn-off corner, 45-70 % of the photo's width and height, with a jagged edge:
  the windows at its tip see almost no known image (``--starved`` sets
  ``windows.STARVED``, the known share below which such a window waits for its neighbours).

The holes are painted paper white (``cv2.inpaint``, the classical pre-fill, reads a hole's
edge pixels, so the true photo must not be left under the mask) and the scan is filled as
``restore folder`` fills it (``pipeline.restore_pixels``, default runtime, int8 model unless
``--model``). Where two mask pixels side by side are pasted by two
different windows (a *boundary pair*, from the plan's ``core_mask``s), the probe takes the
absolute grey step between them, and compares it with the steps between side-by-side pixels
of the same window 3-4 px further along the same row or column (the fill's own texture). A
seam shows as a boundary step well above its neighbours. Also printed: masked PSNR against
the enlarged photo. ``--sheet`` writes crops around the worst boundaries (fill | horizontal
gradient x4) to look at.
"""

from __future__ import annotations

import argparse
import glob
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from archive_restore.config import RuntimeConfig
from archive_restore.damage import _blob
from archive_restore.evaluate import psnr
from archive_restore.pipeline import plan_fill, restore_pixels
from archive_restore.runtime import windows as win
from archive_restore.runtime.session import InpaintSession

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
CORE = 512 - 2 * 48  # the grid plan's core side with the default runtime


def tear_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool: one irregular blotch centred near a grid corner, larger than a window."""
    H, W = shape
    bh, bw = int(rng.integers(300, 461)), int(rng.integers(440, 621))
    bh, bw = min(bh, H - 8), min(bw, W - 8)
    cy = min(max(CORE, bh // 2 + 4), H - bh // 2 - 4) + int(rng.integers(-40, 41))
    cx = min(max(CORE, bw // 2 + 4), W - bw // 2 - 4) + int(rng.integers(-40, 41))
    cy, cx = min(max(cy, bh // 2 + 4), H - bh // 2 - 4), min(max(cx, bw // 2 + 4), W - bw // 2 - 4)
    m = np.zeros(shape, bool)
    m[cy - bh // 2 : cy - bh // 2 + bh, cx - bw // 2 : cx - bw // 2 + bw] = _blob(rng, bh, bw, 0.6) > 0
    return m


def scratch_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool: three gently curved scratches, 3-6 px wide, across the photo."""
    H, W = shape
    canvas = np.zeros(shape, np.uint8)
    for _ in range(3):
        horizontal = rng.random() < 0.5
        n = 200
        t = np.linspace(0, 1, n)
        a, ph = rng.uniform(10, 60), rng.uniform(0, 2 * np.pi)
        if horizontal:
            y0 = rng.uniform(0.15, 0.85) * H
            pts = np.stack([t * W, y0 + a * np.sin(2 * np.pi * t + ph) + rng.uniform(-0.1, 0.1) * H * t], 1)
        else:
            x0 = rng.uniform(0.15, 0.85) * W
            pts = np.stack([x0 + a * np.sin(2 * np.pi * t + ph) + rng.uniform(-0.1, 0.1) * W * t, t * H], 1)
        cv2.polylines(canvas, [np.rint(pts).astype(np.int32)], False, 1, int(rng.integers(3, 7)))
    return canvas.astype(bool)


def corner_mask(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool: a torn-off corner (a random one of four) with a jagged tear line."""
    H, W = shape
    cw, ch = int(W * rng.uniform(0.45, 0.7)), int(H * rng.uniform(0.45, 0.7))
    t = np.linspace(0, 1, 24)[1:-1]
    edge = np.stack([cw * (1 - t), ch * t], 1) + rng.normal(0, 0.03 * min(cw, ch), (t.size, 2))
    pts = np.concatenate([[[0, 0], [cw, 0]], edge, [[0, ch]]]).astype(np.int32)
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [pts], 1)
    k = int(rng.integers(4))
    m = m[::-1] if k & 1 else m
    m = m[:, ::-1] if k & 2 else m
    return np.ascontiguousarray(m).astype(bool)


def owners(mask: np.ndarray, windows: list[win.Window]) -> np.ndarray:
    """(H, W) int32: index of the window that pastes each mask pixel, -1 elsewhere."""
    lab = np.full(mask.shape, -1, np.int32)
    for i, w in enumerate(windows):
        y0, x0, y1, x1 = w.box
        keep = win.core_mask(mask[y0:y1, x0:x1], w)
        lab[y0:y1, x0:x1][keep] = i
    return lab


def seam_steps(grey: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Boundary steps and their neighbours' steps (grey levels), and boundary pixel positions.

    grey: (H, W) float32 in grey levels; lab: ``owners``. For each pair of side-by-side mask
    pixels of two different windows, the step between them and the mean step between
    same-window pixel pairs 3 and 4 px away on both sides along the same line (pairs without
    such neighbours are dropped)."""
    bsteps, nsteps, where = [], [], []
    for axis in (1, 0):
        g = grey if axis == 1 else grey.T
        lb = lab if axis == 1 else lab.T
        a, b = lb[:, :-1], lb[:, 1:]
        ys, xs = np.nonzero((a >= 0) & (b >= 0) & (a != b))  # pair (y, x) | (y, x + 1)
        W = g.shape[1]
        for y, x in zip(ys, xs):
            ns = []
            for k in (-4, -3, 3, 4):
                u, v = x + k, x + k + 1
                if 0 <= u and v < W and lb[y, u] >= 0 and lb[y, u] == lb[y, v]:
                    ns.append(abs(g[y, v] - g[y, u]))
            if len(ns) >= 2:
                bsteps.append(abs(g[y, x + 1] - g[y, x]))
                nsteps.append(float(np.mean(ns)))
                where.append((int(y), int(x)) if axis == 1 else (int(x), int(y)))
    return np.asarray(bsteps, np.float32), np.asarray(nsteps, np.float32), where


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["tear", "scratch", "corner"], choices=["tear", "scratch", "corner"])
    ap.add_argument("--starved", type=float, default=None, help="windows.STARVED for this run (default: as shipped)")
    ap.add_argument("--scale", type=float, default=3.0)
    ap.add_argument("--model", default=None, help="ONNX generator (default: the shipped int8 one)")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--sheet", default=None, help="write crops around the worst boundaries here (PNG)")
    args = ap.parse_args()

    if args.starved is not None:
        win.STARVED = args.starved
    sess = InpaintSession(args.model, device="cpu")
    rt = RuntimeConfig()
    files = sorted(glob.glob(str(DATA / "old_photos" / "*" / "*")))
    if args.limit:
        files = files[: args.limit]
    tiles = []
    for kind in args.kinds:
        rows, t0 = [], time.perf_counter()
        for i, f in enumerate(files):
            im = np.asarray(Image.open(f).convert("RGB"))
            s = args.scale if max(im.shape[:2]) < 1000 else 1.0
            im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_LANCZOS4) if s != 1 else im
            rng = np.random.default_rng(1000 + i)
            m = {"tear": tear_mask, "scratch": scratch_mask, "corner": corner_mask}[kind](im.shape[:2], rng)
            damaged = im.copy()
            damaged[m] = 255  # paper white: what a window reading an unfilled hole would see
            out = restore_pixels(sess, damaged, m, rt)
            windows, _ = plan_fill(im, m, rt)
            grey = out.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
            bs, ns, where = seam_steps(grey, owners(m, windows))
            if bs.size == 0:
                continue
            rows.append((Path(f).name, float(bs.mean()), float(ns.mean()), psnr(out, im, m), len(windows)))
            if args.sheet and kind in ("tear", "corner"):
                y, x = where[int(np.argmax(np.abs(bs - ns)))]
                y0, x0 = min(max(0, y - 96), im.shape[0] - 192), min(max(0, x - 96), im.shape[1] - 192)
                crop = out[y0 : y0 + 192, x0 : x0 + 192]
                gx = np.abs(cv2.Sobel(grey[y0 : y0 + 192, x0 : x0 + 192], cv2.CV_32F, 1, 0, ksize=1)) * 4
                tiles.append(np.concatenate([crop, np.repeat(np.clip(gx, 0, 255).astype(np.uint8)[..., None], 3, 2)], 1))
        b = np.array([r[1] for r in rows])
        n = np.array([r[2] for r in rows])
        p = np.array([r[3] for r in rows])
        print(f"{kind}: {len(rows)} photos with boundary pairs, {time.perf_counter() - t0:.0f} s")
        print(f"  boundary step {b.mean():.2f} grey levels, neighbours {n.mean():.2f}; "
              f"photos with boundary > 2x neighbours: {int((b > 2 * n).sum())}; masked PSNR {p.mean():.2f} dB; "
              f"windows per photo {np.mean([r[4] for r in rows]):.1f}")
    if args.sheet and tiles:
        rows_ = [np.concatenate(tiles[i : i + 3], 1) for i in range(0, len(tiles) - len(tiles) % 3, 3)][:6]
        Image.fromarray(np.concatenate(rows_, 0)).save(args.sheet)
        print("sheet:", args.sheet)


if __name__ == "__main__":
    main()
