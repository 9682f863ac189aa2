"""How much does grain re-synthesis (``runtime.grain.add_grain``) move the fill metrics?

Usage: python scripts/grain_probe.py [--n-per-source 10] [--strengths 0 0.5 1] [--model PATH]
       [--photos DIR] [--sheet OUT.png]
       python scripts/grain_probe.py --real OUT.jpg PHOTO... [--strengths 1]

Photos: by default held-out TRAINING photos (``shared/data/train`` files that are not in
``models/gunet_v2_card/train_files.txt``, so the default generator never saw them), the first
``n`` of each source in sorted order; never the validation set. Each photo is damaged once per
kind as ``restore evaluate`` does (same seeds, ground-truth masks), filled by TELEA, NS, FSR_FAST (when
this OpenCV has the contrib xphoto module) and the model, and the model's fill is then given grain at each strength. Prints masked PSNR, SSIM and
texture ratio per kind and method. --sheet writes crops (damaged | model | model + grain |
original) of the first photos so the grain can be looked at.

--real runs ``restore folder --auto-mask`` (default model and detector) on real scans in a
temporary folder and writes, per photo, the 160-px crop with the most filled pixels, zoomed 3x:
input | restored | restored with grain at the last strength.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from archive_restore.damage import KINDS, synthesize
from archive_restore.evaluate import (RESTORE_ONLY_KINDS, centre_square, fill_hole, has_fsr, load_model,
                                      psnr, ssim_map, texture_ratio)
from archive_restore.masks.batch import read_rgb
from archive_restore.runtime.grain import add_grain

ROOT = Path(__file__).resolve().parent.parent
TRAIN = ROOT.parent / "shared" / "data" / "train"


def held_out(n_per_source: int) -> list[Path]:
    """The first ``n_per_source`` images of each training source that gunet_v2 did not train on."""
    seen = set((ROOT / "models/gunet_v2_card/train_files.txt").read_text().split())
    out = []
    for src in sorted(p for p in TRAIN.iterdir() if p.is_dir()):
        files = sorted(f for f in src.rglob("*") if f.suffix.lower() in (".jpg", ".jpeg", ".png"))
        files = [f for f in files if str(f.relative_to(TRAIN)) not in seen]
        out += files[:n_per_source]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-per-source", type=int, default=10)
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--photos", default=None, help="a folder of photos instead of the held-out training ones")
    ap.add_argument("--sheet", default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--real", nargs="+", default=None, metavar=("OUT.jpg", "PHOTO"))
    a = ap.parse_args()
    if a.real:
        real_sheet(Path(a.real[0]), [Path(p) for p in a.real[1:]], a.strengths[-1])
        return
    model, why = load_model(a.model)
    if model is None:
        raise SystemExit(why)
    paths = sorted(Path(a.photos).iterdir()) if a.photos else held_out(a.n_per_source)
    images = [(p.name, read_rgb(p)) for p in paths]
    print(f"{len(images)} photos")
    kinds = list(KINDS) + list(RESTORE_ONLY_KINDS)
    classical = ["telea", "ns"] + (["fsr_fast"] if has_fsr() else [])
    methods = classical + [f"model+g{s:g}" for s in a.strengths]
    rows = []
    for ki, kind in enumerate(kinds):
        res = {m: {"psnr": [], "ssim": [], "tex": []} for m in methods}
        for i, (name, im) in enumerate(images):
            if kind in RESTORE_ONLY_KINDS:
                damaged, gt = centre_square(im)
            else:
                d = synthesize(im, np.random.default_rng([a.seed, ki, i]), kinds=[kind])
                damaged, gt = d.damaged, d.mask
            if not gt.any():
                continue
            fills = {m: fill_hole(m, damaged, gt) for m in classical}
            base = fill_hole("model", damaged, gt, model)
            for s in a.strengths:
                fills[f"model+g{s:g}"] = base if s == 0 else add_grain(base, gt, seed=i, strength=s)
            for m in methods:
                res[m]["psnr"].append(psnr(fills[m], im, gt))
                res[m]["ssim"].append(float(ssim_map(fills[m], im)[gt].mean()))
                res[m]["tex"].append(texture_ratio(fills[m], im, gt))
            if a.sheet and i < 3 and len(a.strengths) > 1:
                rows.append(np.concatenate([damaged, base, fills[f"model+g{a.strengths[-1]:g}"], im], 1))
        print(f"\n{kind}")
        for m in methods:
            r = res[m]
            print(f"  {m:12s} psnr {np.mean(r['psnr']):6.2f}  ssim {np.mean(r['ssim']):.3f}  "
                  f"texture {np.nanmean(r['tex']):.2f} (median {np.nanmedian(r['tex']):.2f})")
    if a.sheet and rows:
        wmax = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 4), (0, wmax - r.shape[1]), (0, 0))) for r in rows]
        cv2.imwrite(a.sheet, cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR))


def real_sheet(out: Path, photos: list[Path], strength: float, side: int = 160) -> None:
    """Input | restored | restored + grain crops of real scans (see the module docstring)."""
    import shutil
    import tempfile

    from archive_restore.pipeline import restore_folder

    with tempfile.TemporaryDirectory() as tmp:
        inp = Path(tmp) / "in"
        inp.mkdir()
        for p in photos:
            shutil.copy(p, inp / p.name)
        restore_folder(inp, Path(tmp) / "out", auto_mask=True, handle_sigint=False)
        rows = []
        for p in photos:
            mfile = Path(tmp) / "out" / "masks" / f"{p.name}.png"
            if not mfile.is_file():
                print(f"{p.name}: nothing flagged (or failed: see the manifest), left out")
                continue
            src, res = read_rgb(p), read_rgb(Path(tmp) / "out" / p.name)
            m = cv2.imread(str(mfile), cv2.IMREAD_GRAYSCALE) > 0
            g = add_grain(res, m, seed=0, strength=strength)
            dens = cv2.boxFilter(m.astype(np.float32), -1, (side, side))
            y, x = np.unravel_index(int(np.argmax(dens)), dens.shape)
            y = int(np.clip(y - side // 2, 0, max(m.shape[0] - side, 0)))
            x = int(np.clip(x - side // 2, 0, max(m.shape[1] - side, 0)))
            crops = [c[y:y + side, x:x + side] for c in (src, res, g)]
            rows.append(np.concatenate([cv2.resize(c, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST)
                                        for c in crops], 1))
            print(f"{p.name}: {m.mean() * 100:.2f} % filled, crop at ({x}, {y})")
        wmax = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 6), (0, wmax - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
        cv2.imwrite(str(out), cv2.cvtColor(np.concatenate(rows, 0), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])


if __name__ == "__main__":
    main()
