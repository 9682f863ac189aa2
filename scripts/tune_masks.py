"""Dev harness: detector quality on TRAINING crops damaged by damage.py (never the val set).

Usage: python scripts/tune_masks.py [N] [KIND...] [--lines JSON]
Prints per-kind tolerant P/R/F1 of the united mask, the clean flagged fraction (mean, max,
count above 1 %) with the per-detector share of false alarms, and seconds per megapixel.
--lines '{"net_clutter": 6}' overrides fields of ``scratches.LineParams`` for this run, to
trace the line detector's precision/recall trade-off without editing the defaults.
Crops are sampled evenly across six training sources; damaged cases are cached in /tmp.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.config import MaskConfig
from archive_restore.damage import KINDS, synthesize
from archive_restore.evaluate import tolerant_scores
from archive_restore.masks import detect
from archive_restore.masks.combine import detect_kinds

SOURCES = ("debian_wallpapers", "camvid", "bsds500_traintest", "sunhays80", "imagenet_sample", "utkface")


def photos(n: int) -> list[np.ndarray]:
    root = Path("/work/shared/data/train")
    per = n // len(SOURCES) + 1
    files = []
    for sub in SOURCES:
        fs = sorted((root / sub).glob("*"))
        fs = [f for f in fs if f.suffix.lower() in (".jpg", ".png", ".jpeg")]
        files += fs[:: max(1, len(fs) // per)][:per]
    files = files[::max(1, len(files) // n)][:n] if len(files) > n else files
    return [np.asarray(Image.open(f).convert("RGB")) for f in files]


def cases(n: int) -> tuple[list[np.ndarray], dict[str, list]]:
    cache = Path(f"/tmp/tune_cache_{n}.npz")
    imgs = photos(n)
    if cache.exists():
        z = np.load(cache, allow_pickle=True)
        return imgs, z["cases"].item()
    out = {}
    for ki, kind in enumerate(KINDS):
        out[kind] = []
        for i, im in enumerate(imgs):
            d = synthesize(im, np.random.default_rng(10_000 + 100 * ki + i), kinds=[kind])
            out[kind].append((d.damaged, d.mask))
    np.savez(cache, cases=np.array(out, dtype=object))
    return imgs, out


def main(n: int = 40, *kinds: str) -> None:
    imgs, cs = cases(n)
    cfg = MaskConfig()
    t0 = time.perf_counter()
    fr, per = [], {}
    for im in imgs:
        km = detect_kinds(im, cfg)
        fr.append(detect(im, cfg).mask.mean())
        for k, m in km.items():
            per[k] = per.get(k, 0.0) + m.mean() / len(imgs)
    dt = time.perf_counter() - t0
    mp = sum(im.shape[0] * im.shape[1] for im in imgs) / 1e6
    fr = np.array(fr)
    print(f"clean: mean {fr.mean()*100:.3f}% max {fr.max()*100:.2f}% >1%: {(fr > 0.01).sum()}/{len(fr)}  "
          + " ".join(f"{k} {v*100:.3f}%" for k, v in per.items()) + f"  ({dt/mp/2:.2f} s/MP)")
    for kind in kinds or KINDS:
        c = {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
        for damaged, gt in cs[kind]:
            s = tolerant_scores(detect(damaged, cfg).mask, gt)
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
    main(int(args[0]) if args else 40, *args[1:])
