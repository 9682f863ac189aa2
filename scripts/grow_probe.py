"""Would letting the scratches channel grow further find the thin damage v7 misses, without
flooding real texture? (Sessions 13 and 14's probe; nothing it tries is shipped.)

Usage: python scripts/grow_probe.py GRAPH.onnx [--draw plain-balanced] [--n 144]
       python scripts/grow_probe.py GRAPH.onnx --real PHOTO...

The base is the sidecar's medium rule as ``restore`` runs it (hysteresis per channel, the
scratches channel's line rule). Only the scratches mask changes; each variant starts from the
base scratches mask S and the scratches probabilities p:
- ``grow G``: S plus the 8-connected regions of p > G that touch S (a seed of 0.98 with a low
  grow, a pair ``detector_calibrate``'s LADDER never offers);
- ``thin G/K``: the same, but only the added parts thinner than K px (not kept by an opening
  with a K-px ellipse), so that a wide textured area next to a line does not flood in;
- ``thin G/K line L W``: of those thin additions, only the 8-connected pieces at least L px long
  (minimum-area rectangle) and at most W px wide on average (area / length).
Without --real it scores each variant as ``detector_calibrate`` does (the same photos, clean
twice and damaged once, the union grown by ``MaskConfig.dilate``, 2 px tolerance); the
probabilities are cached with ``line_seed_probe.cases``. Choose on one draw, confirm on the
other, never on the validation set. With --real it prints the share of each real photo that
each variant flags (the photos have no ground truth: look at them).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from archive_restore.config import MaskConfig
from archive_restore.damage import KINDS
from archive_restore.masks.batch import read_rgb
from archive_restore.masks.combine import unite
from archive_restore.masks.learned import CHANNELS, hysteresis, line_rule, line_seeds, probabilities, threshold

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import score  # noqa: E402
from line_seed_probe import cases  # noqa: E402


def touching(p: np.ndarray, s: np.ndarray, grow: float) -> np.ndarray:
    """(H,W) bool: ``s`` plus the 8-connected regions of ``p > grow`` that touch it."""
    n, lab = cv2.connectedComponents((p > grow).astype(np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[np.unique(lab[s])] = True
    keep[0] = False
    return keep[lab] | s


def thin(p: np.ndarray, s: np.ndarray, grow: float, k: int) -> np.ndarray:
    """``touching``, its additions limited to the parts an opening with a k-px ellipse removes."""
    g = touching(p, s, grow).astype(np.uint8)
    wide = cv2.morphologyEx(g, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    return s | ((g > 0) & ~wide)


def thin_lines(p: np.ndarray, s: np.ndarray, grow: float, k: int, length: float, width: float) -> np.ndarray:
    """``thin``, keeping only added pieces at least ``length`` px long and ``width`` px wide at most."""
    extra = thin(p, s, grow, k) & ~s
    n, lab, st, _ = cv2.connectedComponentsWithStats(extra.astype(np.uint8), connectivity=8)
    ok = np.zeros(n, bool)
    for j in range(1, n):
        x, y, w, h, area = st[j]
        ys, xs = np.nonzero(lab[y:y + h, x:x + w] == j)
        (_, _), (a, b), _ = cv2.minAreaRect(np.stack([xs, ys], 1).astype(np.float32))
        ln = max(a, b, 1.0)
        ok[j] = area >= 3 and ln >= length and area / ln <= width
    return s | ok[lab]


VARIANTS = {"base": lambda p, s: s}
for _g in (0.8, 0.5):
    VARIANTS[f"grow {_g}"] = lambda p, s, g=_g: touching(p, s, g)
for _k in (3, 5):
    VARIANTS[f"thin 0.5/{_k}"] = lambda p, s, k=_k: thin(p, s, 0.5, k)
for _ln, _w in ((4, 2.0), (4, 3.0), (8, 2.0)):
    VARIANTS[f"thin 0.5/3 line {_ln} {_w}"] = lambda p, s, ln=_ln, w=_w: thin_lines(p, s, 0.5, 3, ln, w)


def split(p: np.ndarray, graph: Path) -> tuple[np.ndarray, np.ndarray]:
    """p: (4,H,W) probabilities -> (base scratches mask, union of the other channels' masks)."""
    pairs = threshold("medium", graph)
    q = p[0].astype(np.float32)
    s = hysteresis(q, *pairs["scratches"])
    rule = line_rule("medium", graph)
    if rule:
        s |= line_seeds(q, **rule)
    o = np.zeros(s.shape, bool)
    for c, ch in enumerate(CHANNELS[1:], 1):
        o |= hysteresis(p[c].astype(np.float32), *pairs[ch])
    return s, o


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    graph = Path(argv[0])
    dil = MaskConfig().dilate
    if "--real" in argv:
        photos = argv[argv.index("--real") + 1:]
        print("photo".ljust(34) + " ".join(v[:12].rjust(12) for v in VARIANTS))
        for f in photos:
            p = probabilities(read_rgb(f), graph)
            s, o = split(p, graph)
            q = p[0].astype(np.float32)
            print(str(f)[-34:].ljust(34) + " ".join(f"{100 * unite({'a': o, 'b': v(q, s)}, o.shape, dil).mean():11.2f}%"
                                                    for v in VARIANTS.values()), flush=True)
        return
    draw = argv[argv.index("--draw") + 1] if "--draw" in argv else "plain-balanced"
    n = int(argv[argv.index("--n") + 1]) if "--n" in argv else 144
    data = cases(graph, draw, n)
    base = [split(p, graph) for p, _, _ in data]
    print(f"{n} photos of the {draw} draw, medium; clean mean, clean photos over 1 %, F1/recall per kind, mean F1")
    for name, v in VARIANTS.items():
        masks = [unite({"a": o, "b": v(p[0].astype(np.float32), s)}, o.shape, dil) for (s, o), (p, _, _) in zip(base, data)]
        r = score([m for m, (_, g, _) in zip(masks, data) if g is None],
                  [(m, g, k) for m, (_, g, k) in zip(masks, data) if g is not None])
        print(f"{name:26s} {100 * r['clean_mean']:6.3f} % {100 * r['clean_over_1pct']:5.2f} % "
              + " ".join(f"{r['f1'][k]:.3f}/{r['recall'][k]:.2f}" for k in KINDS) + f"  {r['mean_f1']:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
