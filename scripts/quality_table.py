"""Markdown tables from ``restore evaluate`` JSON files, for the model card and the README.

Usage: python scripts/quality_table.py LABEL=EVAL.json [LABEL=OTHER_EVAL.json ...]
The first file gives TELEA, NS and its model; each further file adds its model as a column
(e.g. ``context_encoder=eval_ce/evaluation.json``), measured on the same seeded cases.
"""

from __future__ import annotations

import json
import sys


def main() -> None:
    runs = []
    for arg in sys.argv[1:]:
        label, path = arg.split("=", 1)
        runs.append((label, json.loads(open(path).read())))
    (name, first), extra = runs[0], runs[1:]
    kinds = list(first["kinds"])
    cols = [("TELEA", first, "telea"), ("NS", first, "ns"), (name, first, "model")] + [(lab, d, "model") for lab, d in extra]
    for metric, fmt in (("psnr", "{:.2f}"), ("ssim", "{:.3f}"), ("texture", "{:.2f}")):
        print(f"\nMasked {metric.upper() if metric != 'texture' else 'texture ratio'} (ground-truth masks, {first['images']} photos):\n")
        print("| kind | " + " | ".join(c[0] for c in cols) + " |")
        print("|---" * (len(cols) + 1) + "|")
        for k in kinds:
            cells = []
            for _, d, key in cols:
                r = d["kinds"].get(k, {}).get("restoration_gt_mask", {}).get(key)
                cells.append(fmt.format(r[metric]) if r else "n/a")
            print(f"| {k} | " + " | ".join(cells) + " |")
    sp = first.get("seconds_per_mp", {})
    print("\nSeconds per megapixel: " + ", ".join(f"{k} {v:.3f}" for k, v in sp.items()))


if __name__ == "__main__":
    main()
