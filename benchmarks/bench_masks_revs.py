"""The learned detector's run-time code against an earlier revision's, on the same 6 MP scan.

Usage: python benchmarks/bench_masks_revs.py REV [--repeats 8] [--mp 6] [--sensitivity medium]

REV's ``archive_restore/masks/learned.py`` is read with ``git show`` and loaded as a module
beside today's; both run the shipped graph (each with its own ONNX Runtime session) on
``bench_masks.scan`` in turn within each repeat, so a busy machine slows them alike. Checks that
the two masks are identical, then prints the median seconds of each (network, hysteresis, line
rule, fence and lattice rules, union and dilation), after one warm-up round.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import time
from pathlib import Path

import numpy as np
from bench_masks import scan

from archive_restore.config import MaskConfig
from archive_restore.masks import learned
from archive_restore.masks.combine import unite

ROOT = Path(__file__).resolve().parents[1]


def load_rev(rev: str):
    """``archive_restore.masks.learned`` as it was at git revision ``rev``, as a fresh module."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:archive_restore/masks/learned.py"],
                         capture_output=True, text=True, check=True).stdout
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(f"learned_{rev}", loader=None))
    exec(compile(src, f"{rev}:learned.py", "exec"), mod.__dict__)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rev")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--mp", type=float, default=6.0)
    ap.add_argument("--sensitivity", default="medium")
    args = ap.parse_args()
    img = scan(args.mp)
    kinds, dil = MaskConfig().kinds, MaskConfig().dilate
    mods = {args.rev: load_rev(args.rev), "today": learned}

    def run(mod) -> np.ndarray:
        return unite(mod.detect_kinds_learned(img, args.sensitivity, kinds), img.shape[:2], dil)

    masks = {k: run(m) for k, m in mods.items()}  # also the warm-up
    a, b = masks.values()
    if not np.array_equal(a, b):
        raise SystemExit(f"the masks differ: {int((a != b).sum())} pixels")
    ts: dict[str, list[float]] = {k: [] for k in mods}
    for _ in range(args.repeats):
        for k, m in mods.items():
            t = time.perf_counter()
            run(m)
            ts[k].append(time.perf_counter() - t)
    print(f"{img.shape[1]}x{img.shape[0]} scan, {args.sensitivity}, identical masks ({100 * a.mean():.2f} % flagged)")
    for k, v in ts.items():
        print(f"{k:>10s}: median {np.median(v):.3f} s  (runs {' '.join(f'{x:.2f}' for x in v)})")


if __name__ == "__main__":
    main()
