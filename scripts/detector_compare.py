"""Compare learned detectors, each at its own calibrated thresholds, on photos neither trained on.

Usage: python scripts/detector_compare.py A.onnx B.onnx ... [--sensitivity medium] [--draw plain-balanced] [--n 400]

The photos are a draw of ``masks.net.calibration_files`` (default "plain-balanced":
detector_v2's held-out photos with portraits thinned to 1/6, which every detector trained here
held out; see that function for the others). Protocol as ``scripts/detector_calibrate.py``: each
photo clean, clean with a seeded archive look, and damaged with one kind in turn; masks as
``restore`` makes them (hysteresis per channel with the sidecar's thresholds, the union grown by
``MaskConfig.dilate``), F1 with a 2 px tolerance. Prints a table, portraits and the rest apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

from archive_restore.damage import KINDS
from archive_restore.masks.net import calibration_files

sys.path.insert(0, str(Path(__file__).parent))
from detector_calibrate import calibration_cases, graph_mask, score  # noqa: E402


def main(argv: list[str]) -> None:
    graphs = [Path(a) for a in argv if a.endswith(".onnx")]
    if not graphs:
        raise SystemExit(__doc__)
    opt = {k: argv[argv.index(k) + 1] for k in ("--sensitivity", "--draw", "--n") if k in argv}
    sens, which, n = opt.get("--sensitivity", "medium"), opt.get("--draw", "plain-balanced"), int(opt.get("--n", 400))
    files = calibration_files(draw=which)[:n]
    rows = {g: {"faces": ([], []), "others": ([], [])} for g in graphs}
    for i, (f, img, looked, d, kind) in enumerate(calibration_cases(files)):
        group = "faces" if f.parent.name == "utkface" else "others"
        for g in graphs:
            def mask(im):
                return graph_mask(im, sens, g)
            clean, damaged = rows[g][group]
            clean += [mask(img), mask(looked)]
            damaged.append((mask(d.damaged), d.mask, kind))
        if (i + 1) % 100 == 0:
            print(f"{i + 1}/{len(files)} photos", file=sys.stderr, flush=True)
    print(f"{len(files)} photos of the {which} calibration draw, {sens}; F1 per kind (2 px tolerance)")
    print(f"{'detector':28s} {'photos':7s} {'clean %':>8s} {'>1 %':>6s} " + " ".join(k[:9].ljust(9) for k in KINDS) + " mean")
    for g in graphs:
        for group in ("others", "faces", "all"):
            if group == "all":
                clean = rows[g]["faces"][0] + rows[g]["others"][0]
                damaged = rows[g]["faces"][1] + rows[g]["others"][1]
            else:
                clean, damaged = rows[g][group]
            if not clean:
                continue
            r = score(clean, damaged)
            print(f"{g.stem:28s} {group:7s} {100 * r['clean_mean']:8.3f} {100 * r['clean_over_1pct']:6.2f} "
                  + " ".join(f"{r['f1'][k]:.3f}".ljust(9) for k in KINDS) + f" {r['mean_f1']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
