"""Would line evidence find the thin damage the learned detector scores below its seed?
(Session 12's probe; it led to ``masks.learned.line_seeds``.)

Usage: python scripts/line_seed_probe.py GRAPH.onnx [--draw plain-balanced] [--n 144] [--sensitivity medium]
           [--oriented [--lengths 31,61] [--orients 16] [--scales 1] [--lows 0.3,0.5] [--ts 0.5,0.6,0.7]]
           [--sparse [--lows 0.3] [--ts 0.8]]

Session 11 found visible scratches scored 0.5-0.8 along their whole length, under medium's 0.98
seed, while clean edges reach 0.9 in short pieces. This probe keeps the sidecar's hysteresis
thresholds for every channel (not its line rule: the base is the network alone) and adds, on
the scratches channel only, a second way for a region to be kept:
- default: a connected region of ``p > LOW`` that is long (rotated bounding box's long side >=
  LENGTH px), thin (area / length <= WIDTH px) and of mean probability >= MEAN;
- ``--oriented``: the region of ``p > LOW`` around any pixel whose mean p along some straight
  segment (cv2.filter2D with one line kernel per orientation, on p max-pooled by SCALE) is > T;
- ``--sparse``: ``masks.learned.line_seeds`` (61 px, 24 orientations; grow LOW, mean T), the
  rule as shipped.
It scores the masks as ``detector_calibrate`` does (the same photos, clean twice and damaged
once, the union grown by ``MaskConfig.dilate``, 2 px tolerance) over a grid. Probabilities are
cached in /tmp/line_seed_probe/. A diagnosis: choose on one draw, confirm on the other
("plain-balanced" vs "stratified"), never on the validation set.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.damage import KINDS
from archive_restore.masks.combine import unite
from archive_restore.masks.learned import CHANNELS, hysteresis, line_seeds, probabilities, threshold
from archive_restore.masks.net import calibration_files

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import calibration_cases, score  # noqa: E402

CACHE = Path("/tmp/line_seed_probe")


def cases(graph: Path, draw: str, n: int) -> list[tuple[np.ndarray, np.ndarray | None, str | None]]:
    """[(p (4,H,W) float16, gt (H,W) bool or None, kind or None)]: the calibration images."""
    f = CACHE / f"{graph.stem}_{draw}_{n}.npz"
    if f.exists():
        z = np.load(f, allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        return [(z[f"p{i}"], z[f"g{i}"] if m else None, m) for i, m in enumerate(meta)]
    out = []
    for _, img, looked, d, kind in calibration_cases(calibration_files(draw=draw)[:n]):
        for im in (img, looked):
            out.append((probabilities(im, graph).astype(np.float16), None, None))
        out.append((probabilities(d.damaged, graph).astype(np.float16), d.mask, kind))
    CACHE.mkdir(exist_ok=True)
    np.savez(f, meta=json.dumps([k for _, _, k in out]), **{f"p{i}": p for i, (p, _, _) in enumerate(out)},
             **{f"g{i}": g for i, (_, g, _) in enumerate(out) if g is not None})
    return out


def line_regions(p: np.ndarray, low: float, length: float, width: float, mean: float) -> np.ndarray:
    """p: (H,W) float probabilities -> (H,W) bool: regions of ``p > low`` that are long and thin."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats((p > low).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    for j in range(1, n):
        if max(stats[j, cv2.CC_STAT_WIDTH], stats[j, cv2.CC_STAT_HEIGHT]) < length * 0.7:
            continue  # cannot be long in any direction
        ys, xs = np.nonzero(lab == j)
        (_, _), (a, b), _ = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
        ln = max(a, b)
        if ln >= length and len(xs) / ln <= width and float(p[ys, xs].mean()) >= mean:
            keep[j] = True
    return keep[lab]


def line_kernels(length: int, n: int = 16) -> list[np.ndarray]:
    """``n`` (length,length) float32 kernels, each the mean along one orientation's centred segment."""
    ks = []
    for a in np.arange(n) * np.pi / n:
        k = np.zeros((length, length), np.float32)
        c, r = length // 2, (length - 1) / 2
        cv2.line(k, (int(round(c - r * np.cos(a))), int(round(c - r * np.sin(a)))),
                 (int(round(c + r * np.cos(a))), int(round(c + r * np.sin(a)))), 1.0, 1)
        ks.append(k / k.sum())
    return ks


def oriented_mean(p: np.ndarray, ks: list[np.ndarray], scale: int = 1) -> np.ndarray:
    """p: (H,W) float -> (H,W) float: the largest mean of p along a segment through each pixel
    over the kernels' orientations; ``scale`` > 1 works on p max-pooled by that factor (thin
    lines survive max pooling) and brings the answer back up by nearest neighbour."""
    q = p
    if scale > 1:
        h, w = p.shape
        ph, pw = -(-h // scale) * scale, -(-w // scale) * scale
        q = np.pad(p, ((0, ph - h), (0, pw - w)), mode="edge").reshape(ph // scale, scale, pw // scale, scale).max(axis=(1, 3))
    m = np.max([cv2.filter2D(q, -1, k, borderType=cv2.BORDER_REFLECT) for k in ks], axis=0)
    if scale > 1:
        m = np.repeat(np.repeat(m, scale, 0), scale, 1)[:p.shape[0], :p.shape[1]]
    return m


def oriented_regions(p: np.ndarray, ks: list[np.ndarray], low: float, t: float, scale: int = 1) -> np.ndarray:
    """p: (H,W) float -> (H,W) bool: the regions of ``p > low`` holding a pixel whose mean
    probability along some orientation's segment is above ``t`` (evidence integrated along a line)."""
    m = oriented_mean(p, ks, scale)
    return hysteresis(np.where(m > t, 1.0, p * 0.999).astype(np.float32), 0.9995, low) if (m > t).any() else np.zeros(p.shape, bool)


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    graph = Path(argv[0])
    opt = {k: argv[argv.index(k) + 1] for k in ("--draw", "--n", "--sensitivity") if k in argv}
    draw, n, sens = opt.get("--draw", "plain-balanced"), int(opt.get("--n", 144)), opt.get("--sensitivity", "medium")
    data = cases(graph, draw, n)
    pairs = threshold(sens, graph)
    dil = MaskConfig().dilate
    base = []  # per case: (H,W) bool of every channel by the sidecar's thresholds
    for p, _, _ in data:
        m = np.zeros(p.shape[1:], bool)
        for c, ch in enumerate(CHANNELS):
            m |= hysteresis(p[c].astype(np.float32), *pairs[ch])
        base.append(m)

    def run(extra) -> dict:
        masks = [unite({"a": b, "b": extra(p[0].astype(np.float32))}, b.shape, dil) for b, (p, _, _) in zip(base, data)]
        return score([m for m, (_, g, _) in zip(masks, data) if g is None],
                     [(m, g, k) for m, (_, g, k) in zip(masks, data) if g is not None])

    def line(name: str, r: dict) -> str:
        return (f"{name:30s} {100 * r['clean_mean']:6.3f} % {100 * r['clean_over_1pct']:5.2f} % "
                + " ".join(f"{r['f1'][k]:.3f}/{r['recall'][k]:.2f}" for k in KINDS) + f"  {r['mean_f1']:.3f}")

    print(f"{graph.name}, {draw} x{n}, {sens}; F1/recall per kind ({', '.join(KINDS)}), clean mean and share over 1 %")
    print(line("sidecar thresholds", run(lambda p: np.zeros(p.shape, bool))), flush=True)
    if "--sparse" in argv:  # masks.learned.line_seeds: means taken lazily, at pixels above t only
        lows = [float(v) for v in argv[argv.index("--lows") + 1].split(",")] if "--lows" in argv else [0.3]
        ts = [float(v) for v in argv[argv.index("--ts") + 1].split(",")] if "--ts" in argv else [0.8]
        for low, t in itertools.product(lows, ts):
            print(line(f"+line_seeds L61 n24 grow{low} mean{t}", run(lambda p: line_seeds(p, t, low, 61, 24))), flush=True)
        return
    if "--oriented" in argv:
        grid = {k: [float(v) for v in argv[argv.index(k) + 1].split(",")] for k in ("--lengths", "--ts", "--lows", "--orients", "--scales") if k in argv}
        for length, no, sc in itertools.product(grid.get("--lengths", [31, 61]), grid.get("--orients", [16]), grid.get("--scales", [1])):
            ks = line_kernels(int(length), int(no))
            for low, t in itertools.product(grid.get("--lows", [0.3, 0.5]), grid.get("--ts", [0.5, 0.6, 0.7])):
                print(line(f"+or L{int(length)} n{int(no)} s{int(sc)} low{low} t{t}", run(lambda p: oriented_regions(p, ks, low, t, int(sc)))), flush=True)
        return
    for low, length, width, mean in itertools.product((0.5, 0.6, 0.7), (24, 40, 64), (3.0, 5.0), (0.6, 0.7)):
        if mean < low:
            continue
        print(line(f"+lines {low} L{length} W{width} m{mean}", run(lambda p: line_regions(p, low, length, width, mean))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
