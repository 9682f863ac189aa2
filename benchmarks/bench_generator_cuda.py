"""Generator throughput on a CUDA GPU through PyTorch (the training back end), windows/s.

Usage: python benchmarks/bench_generator_cuda.py [--checkpoint models/gunet_v3.pth] [--size 512]
       [--batches 1 16 64] [--repeats 20]

`restore folder --device cuda` runs the ONNX graph with onnxruntime-gpu's CUDA provider; where
that package is not installed (it is too large to carry to a leased GPU here), this measures
the same network's GPU cost through PyTorch instead, fp32 and bf16 autocast, timed with CUDA
events after a warm-up. Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json

import torch
from _table import print_table

from archive_restore.inpaint.checkpoint import load_generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", default="models/gunet_v3.pth")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible to PyTorch")
    model = load_generator(args.checkpoint)[0].cuda().eval().to(memory_format=torch.channels_last)
    rows = []
    for b in args.batches:
        x = torch.rand(b, 3, args.size, args.size, device="cuda").contiguous(memory_format=torch.channels_last)
        m = (torch.rand(b, 1, args.size, args.size, device="cuda") > 0.9).float()
        for prec in ("fp32", "bf16"):
            with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=prec == "bf16"):
                for _ in range(3):
                    model(x, m)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(args.repeats):
                    model(x, m)
                end.record()
                torch.cuda.synchronize()
            s = start.elapsed_time(end) / 1000 / args.repeats
            rows.append({"batch": b, "size": args.size, "precision": prec, "s_per_batch": round(s, 5),
                         "windows_per_s": round(b / s, 1), "mp_per_s": round(b * args.size**2 / s / 1e6, 1)})
    print(torch.cuda.get_device_name(), "torch", torch.__version__)
    print_table(rows, [("precision", "precision", ""), ("batch", "batch", ""), ("size", "size", ""),
                       ("s/batch", "s_per_batch", ""), ("win/s", "windows_per_s", ""), ("MP/s", "mp_per_s", "")])
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
