"""Markdown tables from ``restore evaluate`` JSON files, for the model card and the README.

Usage: python scripts/quality_table.py LABEL=EVAL.json [LABEL=OTHER_EVAL.json ...]
The first file gives TELEA, NS and its model; each further file adds its model as a column
(e.g. ``context_encoder=eval_ce/evaluation.json``), measured on the same seeded cases.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)  # usage
    runs = []
    for arg in sys.argv[1:]:
        label, path = arg.split("=", 1)
        runs.append((label, json.loads(open(path).read())))
    (name, first), extra = runs[0], runs[1:]
    kinds = list(first["kinds"])
    fsr = [("FSR_FAST", first, "fsr_fast")] if "fsr_fast" in first.get("methods", []) else []
    cols = [("TELEA", first, "telea"), ("NS", first, "ns")] + fsr + [(name, first, "model")] + [(lab, d, "model") for lab, d in extra]
    for metric, fmt in (("psnr", "{:.2f}"), ("ssim", "{:.3f}"), ("texture", "{:.2f}")):
        print(f"\nMasked {metric.upper() if metric != 'texture' else 'texture ratio'} (ground-truth masks, {first['images']} photos):\n")
        gain = metric == "psnr"
        head = [c[0] for c in cols] + ([f"{name} − best of TELEA/NS", f"{name} − FSR_FAST"][: 1 + bool(fsr)] if gain else [])
        print("| kind | " + " | ".join(head) + " |")
        print("|---" * (len(head) + 1) + "|")
        for k in kinds:
            cells = []
            for _, d, key in cols:
                r = d["kinds"].get(k, {}).get("restoration_gt_mask", {}).get(key)
                cells.append(fmt.format(r[metric]) if r else "n/a")
            if gain:
                g = first["kinds"][k]["restoration_gt_mask"]
                cells.append(f"{g['model']['psnr'] - max(g['telea']['psnr'], g['ns']['psnr']):+.2f}")
                if fsr:
                    cells.append(f"{g['model']['psnr'] - g['fsr_fast']['psnr']:+.2f}")
            print(f"| {k} | " + " | ".join(cells) + " |")
    print("\nFill seconds per megapixel, per kind:\n")
    methods = first.get("methods", [])
    print("| kind | " + " | ".join(methods) + " |")
    print("|---" * (len(methods) + 1) + "|")
    for k in kinds:
        fs = first["kinds"][k].get("fill_seconds_per_mp", {})
        print(f"| {k} | " + " | ".join(f"{fs[m]:.3f}" if m in fs else "n/a" for m in methods) + " |")
    sp = first.get("seconds_per_mp", {})
    print("\nSeconds per megapixel: " + ", ".join(f"{k} {v:.3f}" for k, v in sp.items()))


if __name__ == "__main__":
    main()
