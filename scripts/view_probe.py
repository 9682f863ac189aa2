"""Probe (session 27): the learned detector with its probabilities averaged over views of the image.

Usage: python scripts/view_probe.py --views GRAPH.onnx=f2|f4|d8 [--views ...] -- SCRIPT.py ARGS...

Runs SCRIPT (e.g. ``scripts/detector_calibrate.py`` or ``scripts/detector_compare.py``) with
``masks.learned._run`` replaced, for the named graphs only, by the mean of the network's
probabilities over views of each tile: f2 as is and flipped left-right; f4 also flipped
upside down and both; d8 also the four of those transposed (the dihedral group). The graphs
should be copies of a shipped one (with its sidecar) under their own names, so that
``detector_calibrate.py --write`` stores each copy's thresholds beside it. Session 27 ran:

    for v in f2 f4 t8; do cp export/detector_v8_int8.onnx runs/tta/detector_v8${v}_int8.onnx; cp export/detector_v8_int8.json runs/tta/detector_v8${v}_int8.json; done
    python scripts/view_probe.py --views runs/tta/detector_v8f2_int8.onnx=f2 ... -- scripts/detector_calibrate.py runs/tta/detector_v8f2_int8.onnx --draw plain-balanced --write
    python scripts/view_probe.py --views ...f2...=f2 --views ...f4...=f4 --views ...t8...=d8 -- scripts/detector_compare.py export/detector_v8_int8.onnx runs/tta/*.onnx --draw stratified --n 300

Each view costs one more run of the network; the point is what a network that agreed with its
own views would score (``masks.net.distill --views dihedral`` trains one).
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import numpy as np

from archive_restore.masks import learned

FLIPS = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1]]
VIEWS = {"f2": FLIPS[:2], "f4": FLIPS, "d8": FLIPS + [lambda a, f=f: f(a.swapaxes(0, 1)) for f in FLIPS]}


def averaged(run, views):
    """``learned._run`` -> the same signature averaging over ``views`` (functions of an (h,w,...)
    array that only move pixels; each is undone through the index grid it maps)."""

    def _run(sess, tile: np.ndarray, multiple: int) -> np.ndarray:
        h, w = tile.shape[:2]
        idx = np.arange(h * w).reshape(h, w)
        acc = np.zeros((len(learned.CHANNELS), h * w), np.float32)
        for v in views:
            p = run(sess, np.ascontiguousarray(v(tile)), multiple)  # (4, h', w') of the view
            acc[:, v(idx).ravel()] += p.reshape(p.shape[0], -1)
        return (acc / len(views)).reshape(-1, h, w)

    return _run


def main(argv: list[str]) -> None:
    if "--" not in argv:
        raise SystemExit(__doc__)
    cut = argv.index("--")
    own, rest = argv[:cut], argv[cut + 1:]
    chosen = {}
    for i, a in enumerate(own):
        if a == "--views":
            graph, name = own[i + 1].rsplit("=", 1)
            chosen[str(Path(graph).resolve())] = averaged(learned._run, VIEWS[name])
    plain = learned._run

    def _run(sess, tile, multiple):
        special = chosen.get(str(Path(getattr(sess, "_model_path", "")).resolve()))
        return (special or plain)(sess, tile, multiple)

    learned._run = _run
    sys.argv = rest
    sys.path.insert(0, str(Path(rest[0]).parent))
    runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
