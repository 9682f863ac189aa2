"""Generator cost on this machine: params, GFLOPs, and images/s for PyTorch eager vs ONNX Runtime.

Usage: python benchmarks/bench_generator.py [--arch gated_unet] [--sizes 256 512] [--repeats 5]
                                            [--onnx export/gunet_v3.onnx export/gunet_v3_int8.onnx]
Exports a random-init checkpoint of the architecture (speed does not depend on the weights),
then times both back ends on the same inputs in the same run. ``--onnx`` also times the given
exported graphs (e.g. fp32 against int8) through ONNX Runtime on the same inputs, in turn,
repeat by repeat. Prints tables and JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _table import print_table

from archive_restore.inpaint.checkpoint import save_checkpoint
from archive_restore.inpaint.export import export_checkpoint
from archive_restore.inpaint.model import build_generator, count_params, default_config


def conv_gflops(model: torch.nn.Module, h: int, w: int) -> float:
    """Multiply-adds x2 of every Conv2d/ConvTranspose2d for one (1,3,h,w) forward, in GFLOPs."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1]
        cin = mod.in_channels // mod.groups
        total += 2 * k * cin * out.shape[1] * out.shape[2] * out.shape[3] * (1 if isinstance(mod, torch.nn.Conv2d) else 1)

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        model(torch.rand(1, 3, h, w), torch.zeros(1, 1, h, w))
    for hk in hooks:
        hk.remove()
    return total / 1e9


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--arch", default="gated_unet")
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--onnx", nargs="*", default=[], help="exported graphs (with sidecars) to time as well")
    args = ap.parse_args()
    import onnxruntime as ort

    torch.set_num_threads(torch.get_num_threads())
    cfg = default_config(args.arch)
    model = build_generator(cfg).eval()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        ck = Path(td) / f"{args.arch}.pth"
        save_checkpoint(ck, model, cfg, step=0)
        res = export_checkpoint(ck, Path(td) / f"{args.arch}.onnx")
        sess = ort.InferenceSession(str(res.onnx_path), providers=["CPUExecutionProvider"])
        for s in args.sizes:
            x = np.random.rand(1, 3, s, s).astype(np.float32)
            m = (np.random.rand(1, 1, s, s) > 0.9).astype(np.float32)
            tx, tm = torch.from_numpy(x), torch.from_numpy(m)
            with torch.no_grad():
                t_eager = timeit(lambda: model(tx, tm), args.repeats)
            t_ort = timeit(lambda: sess.run(None, {"image": x, "mask": m}), args.repeats)
            rows.append(
                {
                    "arch": args.arch,
                    "size": s,
                    "params": count_params(model),
                    "gflops": round(conv_gflops(model, s, s), 2),
                    "eager_s": round(t_eager, 4),
                    "ort_s": round(t_ort, 4),
                    "eager_img_per_s": round(1 / t_eager, 2),
                    "ort_img_per_s": round(1 / t_ort, 2),
                    "ort_speedup": round(t_eager / t_ort, 2),
                    "threads": torch.get_num_threads(),
                }
            )
    print_table(rows, [("arch", "arch", ""), ("size", "size", ""), ("params", "params", ","), ("GFLOPs", "gflops", ""),
                       ("eager s", "eager_s", ""), ("ORT s", "ort_s", ""), ("eager i/s", "eager_img_per_s", ""),
                       ("ORT i/s", "ort_img_per_s", ""), ("ORT/eager", "ort_speedup", "")])
    print(json.dumps(rows))
    if args.onnx:
        graphs = time_graphs([Path(g) for g in args.onnx], args.sizes, args.repeats)
        print_table(graphs, [("graph", "graph", ""), ("precision", "precision", ""), ("size", "size", ""), ("ORT s", "ort_s", ""),
                             ("vs first", "vs_first", "")])
        print(json.dumps(graphs))


def time_graphs(paths: list[Path], sizes: list[int], repeats: int) -> list[dict]:
    """Median ONNX Runtime seconds per (1,3,s,s) window for each graph; the graphs take turns
    within each repeat, so a busy machine slows them alike."""
    import onnxruntime as ort

    from archive_restore.runtime.session import load_sidecar

    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in paths]
    rows = []
    for s in sizes:
        rng = np.random.default_rng(s)
        feed = {"image": rng.random((1, 3, s, s), dtype=np.float32),
                "mask": (rng.random((1, 1, s, s)) > 0.9).astype(np.float32)}
        times: list[list[float]] = [[] for _ in sessions]
        for sess in sessions:
            sess.run(None, feed)  # warm-up
        for _ in range(repeats):
            for i, sess in enumerate(sessions):
                t = time.perf_counter()
                sess.run(None, feed)
                times[i].append(time.perf_counter() - t)
        med = [float(np.median(t)) for t in times]
        for p, m in zip(paths, med):
            rows.append({"graph": p.name, "precision": load_sidecar(p).get("precision", "fp32"), "size": s,
                         "ort_s": round(m, 4), "vs_first": round(med[0] / m, 2)})
    return rows


if __name__ == "__main__":
    main()
