"""`restore folder` throughput and memory next to the I/O floor and a cv2 TELEA pipeline.

Usage:
    python benchmarks/bench_folder.py [--n 200] [--mp 6] [--scratches 5] [--model M.onnx (default: what restore folder loads on --device; int8 on the CPU)]
                                      [--device cpu] [--workers 2] [--work DIR] [--json out.json]

Generates an archive of N photo-like JPEG scans of MP megapixels (3:2) with scratch-like
user masks (long thin lines, 2-4 px wide, plus a few dust specks), then measures, on the
same files in the same run, each in its own subprocess (so peak RSS is per pipeline):

  floor    decode + encode only (``io.read_scan`` + ``io.write_image``), ``--workers`` threads
  telea    decode + user mask + ``cv2.inpaint`` TELEA (radius 3) + encode, ``--workers`` threads
  fsr      the same with ``cv2.xphoto.inpaint`` FSR_FAST, only when OpenCV contrib is installed
  learned  ``pipeline.restore_folder`` with the ONNX model (``--masks``), as `restore folder` runs

and prints images/s, MP/s, seconds and peak RSS per pipeline, plus learned/telea and
learned/floor time ratios. Without ``--model`` the shipped default model is used, or, when
none is shipped, a random-init export of the default architecture (speed does not depend on
weights; this needs torch in the benchmark's parent process only).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


# ----------------------------------------------------------------------------- archive


def photo(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8 photo-like image: smooth shading, edges and film grain."""
    import cv2

    small = rng.random((max(2, h // 64), max(2, w // 64), 3)).astype(np.float32)
    base = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * 200 + 20
    for _ in range(6):  # a few hard-edged shapes
        c = tuple(int(v) for v in rng.integers(0, [w, h]))
        cv2.circle(base, c, int(rng.integers(h // 20, h // 4)), tuple(float(v) for v in rng.integers(20, 230, 3)), -1)
    base += rng.normal(0, 4, (h, w, 1)).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def scratch_mask(h: int, w: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w) uint8 mask, 255 = fill: n long thin scratches (slightly bent) and dust specks."""
    import cv2

    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        x0, x1 = rng.integers(0, w, 2)
        pts = np.stack([np.linspace(x0, x1, 8), np.linspace(0, h - 1, 8)], axis=1)
        pts[:, 0] += rng.normal(0, w * 0.01, 8)
        cv2.polylines(m, [pts.astype(np.int32)], False, 255, int(rng.integers(2, 5)))
    for _ in range(30):
        cv2.circle(m, tuple(int(v) for v in rng.integers(0, [w, h])), int(rng.integers(1, 5)), 255, -1)
    return m


def make_archive(root: Path, n: int, mp: float, scratches: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``root/scans/box_k/scan_i.jpg`` and ``root/masks/...png``; returns both folders."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    w = int(round((mp * 1e6 * 1.5) ** 0.5))
    h = int(round(mp * 1e6 / w))
    scans, masks = root / "scans", root / "masks"
    bases = [photo(h, w, rng) for _ in range(min(n, 4))]
    for i in range(n):
        rel = Path(f"box_{i // 50:02d}") / f"scan_{i:04d}.jpg"
        img = bases[i % len(bases)]
        if i >= len(bases):
            img = np.roll(img, int(rng.integers(0, w)), axis=1)
        (scans / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(scans / rel, quality=90, dpi=(600, 600))
        (masks / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(scratch_mask(h, w, scratches, rng)).save((masks / rel).with_suffix(".png"))
    return scans, masks


def default_or_random_model(work: Path, device: str) -> Path:
    """The graph `restore folder` would load on ``device`` (int8 on the CPU), or a random-init export."""
    from archive_restore.runtime.session import default_model_path, providers_for

    p = default_model_path(providers_for(device)[0])
    if p.is_file():
        return p
    from archive_restore.inpaint.checkpoint import save_checkpoint
    from archive_restore.inpaint.export import export_checkpoint
    from archive_restore.inpaint.model import build_generator, default_config

    cfg = default_config("gated_unet")
    ckpt = work / "random_gated_unet.pth"
    save_checkpoint(ckpt, build_generator(cfg), cfg, step=0)
    out = work / "random_gated_unet.onnx"
    export_checkpoint(ckpt, out)
    print(f"note: no shipped model at {p}; using a random-init export {out}", file=sys.stderr)
    return out


# ----------------------------------------------------------------------------- phases (subprocess)


def _files(scans: Path) -> list[Path]:
    return sorted(p for p in scans.rglob("*.jpg"))


def phase_floor(scans: Path, masks: Path, out: Path, workers: int, **_) -> dict:
    from archive_restore import io as aio

    def one(p: Path) -> int:
        s = aio.read_scan(p)
        aio.write_image(out / p.relative_to(scans), s.pixels, s)
        return s.width * s.height

    with ThreadPoolExecutor(workers) as ex:
        return {"pixels": sum(ex.map(one, _files(scans)))}


def _phase_classical(scans: Path, masks: Path, out: Path, workers: int, method: str) -> dict:
    """decode + user mask + a classical fill (telea or fsr_fast) + encode, ``workers`` threads."""
    from archive_restore import io as aio
    from archive_restore.evaluate import fill_hole

    def one(p: Path) -> int:
        rel = p.relative_to(scans)
        s = aio.read_scan(p)
        m = aio.read_mask((masks / rel).with_suffix(".png"), (s.height, s.width))
        filled = fill_hole(method, s.pixels, m, None)
        aio.write_image(out / rel, aio.from_model_rgb(s.pixels, filled.astype(np.float32) / 255.0, m), s)
        return s.width * s.height

    with ThreadPoolExecutor(workers) as ex:
        return {"pixels": sum(ex.map(one, _files(scans)))}


def phase_telea(scans: Path, masks: Path, out: Path, workers: int, **_) -> dict:
    return _phase_classical(scans, masks, out, workers, "telea")


def phase_fsr(scans: Path, masks: Path, out: Path, workers: int, **_) -> dict:
    return _phase_classical(scans, masks, out, workers, "fsr_fast")


def phase_learned(scans: Path, masks: Path, out: Path, workers: int, model: str, device: str, **_) -> dict:
    import dataclasses

    from archive_restore.config import RuntimeConfig
    from archive_restore.pipeline import restore_folder
    from archive_restore.runtime.session import InpaintSession

    rt = dataclasses.replace(RuntimeConfig(), workers=workers, device=device)
    sess = InpaintSession(Path(model), device=device, batch=rt.batch)
    t = time.perf_counter()
    s = restore_folder(scans, out, masks_dir=masks, runtime=rt, session=sess, handle_sigint=False)
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return {
        "pixels": sum(r["width"] * r["height"] for r in recs if r["width"]),
        "seconds_in_run": time.perf_counter() - t,
        "failed": s.counts["failed"],
        "provider": sess.provider,
        "windows_per_image": float(np.mean([r["windows"] for r in recs])),
        "masked_fraction": float(np.mean([r["masked_fraction"] for r in recs])),
        "stage_seconds": {k: float(np.mean([r["timings"].get(k, 0.0) for r in recs])) for k in ("decode", "mask", "inpaint", "encode", "total")},
        "torch_imported": "torch" in sys.modules,
    }


PHASES = {"floor": phase_floor, "telea": phase_telea, "fsr": phase_fsr, "learned": phase_learned}


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB. (ru_maxrss would include the parent's
    peak: Linux carries it across fork+exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_phase_child(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t = time.perf_counter()
    res = PHASES[args.phase](Path(args.scans), Path(args.masks), out, args.workers, model=args.model, device=args.device)
    res["seconds"] = time.perf_counter() - t
    res["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(res), flush=True)


def run_phase(name: str, scans: Path, masks: Path, out: Path, args: argparse.Namespace, model: Path) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--scans", str(scans), "--masks", str(masks), "--out", str(out),
           "--workers", str(args.workers), "--model", str(model), "--device", args.device]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr[-3000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of scans")
    ap.add_argument("--mp", type=float, default=6.0, help="megapixels per scan")
    ap.add_argument("--scratches", type=int, default=5)
    ap.add_argument("--model", default=None)
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=None, help="working folder (default: a temp folder, deleted)")
    ap.add_argument("--json", default=None, help="also write the results here")
    ap.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--scans", help=argparse.SUPPRESS)
    ap.add_argument("--masks", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.phase:
        run_phase_child(args)
        return
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_folder_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = Path(args.model) if args.model else default_or_random_model(work, args.device)
        t = time.perf_counter()
        scans, masks = make_archive(work / "archive", args.n, args.mp, args.scratches)
        print(f"generated {args.n} scans of {args.mp} MP in {time.perf_counter() - t:.1f} s under {work}", file=sys.stderr)
        results = {}
        from archive_restore.evaluate import has_fsr

        for name in ("floor", "telea") + (("fsr",) if has_fsr() else ()) + ("learned",):
            results[name] = run_phase(name, scans, masks, work / f"out_{name}", args, model)
            r = results[name]
            print(f"{name:8s} {r['seconds']:8.1f} s  {args.n / r['seconds']:6.2f} img/s  {r['pixels'] / 1e6 / r['seconds']:7.1f} MP/s  peak RSS {r['peak_rss_mb']:7.0f} MB", flush=True)
        L = results["learned"]
        summary = {
            "n": args.n, "mp": args.mp, "scratches": args.scratches, "workers": args.workers, "device": args.device,
            "provider": L.get("provider"), "model": str(model), "cpu_count": os.cpu_count(),
            "learned_over_telea": L["seconds"] / results["telea"]["seconds"],
            "learned_over_floor": L["seconds"] / results["floor"]["seconds"],
            "results": results,
        }
        if "fsr" in results:
            summary["fsr_over_learned"] = results["fsr"]["seconds"] / L["seconds"]
            print(f"fsr_fast/learned = {summary['fsr_over_learned']:.2f}x")
        print(f"learned/telea = {summary['learned_over_telea']:.2f}x   learned/floor = {summary['learned_over_floor']:.2f}x   "
              f"windows/image {L['windows_per_image']:.1f}   masked {100 * L['masked_fraction']:.2f}%   provider {L['provider']}")
        print(json.dumps(summary, indent=2))
        if args.json:
            Path(args.json).write_text(json.dumps(summary, indent=2))
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
