"""Plot a training run's validation curve: masked-PSNR gain over the pre-fill per kind vs step.

Usage: python scripts/val_curve.py RUN_DIR/metrics.jsonl OUT.png [--md]
Reads the ``"event": "val"`` records written by ``restore train``; draws with OpenCV (no
matplotlib needed) and, with --md, prints a Markdown table of the same numbers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)  # usage
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    lines = [json.loads(l) for l in src.read_text().splitlines()]
    recs = [r for r in lines if r.get("event") == "val"]
    start = next((r for r in lines if r.get("event") == "start"), {})
    prefill = start.get("model_config", {}).get("prefill", "classical").upper()
    kinds = [k for k, v in recs[0].items() if isinstance(v, dict)]
    steps = np.array([r["step"] for r in recs])
    gains = {k: np.array([r[k]["model"] - r[k]["prefill"] for r in recs]) for k in kinds}
    W, H, m = 900, 500, 60
    img = np.full((H, W, 3), 255, np.uint8)
    lo = min(0.0, min(g.min() for g in gains.values()))
    hi = max(0.5, max(g.max() for g in gains.values()))
    sx = lambda s: int(m + (W - 2 * m) * s / max(steps.max(), 1))
    sy = lambda v: int(H - m - (H - 2 * m) * (v - lo) / (hi - lo))
    cv2.rectangle(img, (m, m), (W - m, H - m), (0, 0, 0), 1)
    for v in np.linspace(lo, hi, 6):
        cv2.line(img, (m - 4, sy(v)), (W - m, sy(v)), (225, 225, 225), 1)
        cv2.putText(img, f"{v:+.2f}", (4, sy(v) + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.line(img, (m, sy(0)), (W - m, sy(0)), (120, 120, 120), 1)
    for s in np.linspace(0, steps.max(), 6):
        cv2.putText(img, f"{int(s)}", (sx(s) - 12, H - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for i, k in enumerate(kinds):
        c = COLOURS[i % len(COLOURS)][::-1]
        pts = np.array([[sx(s), sy(v)] for s, v in zip(steps, gains[k])], np.int32)
        cv2.polylines(img, [pts], False, c, 2, cv2.LINE_AA)
        cv2.putText(img, k, (m + 10 + 140 * i, m - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.45, c, 1, cv2.LINE_AA)
    cv2.putText(img, f"masked PSNR gain over the model's own {prefill} pre-fill (dB) vs training step", (m, H - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    dst.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dst), img)
    if "--md" in sys.argv:
        print("| step | " + " | ".join(kinds) + " |")
        print("|---" * (len(kinds) + 1) + "|")
        for j, s in enumerate(steps):
            print(f"| {s} | " + " | ".join(f"{recs[j][k]['model']:.2f} ({gains[k][j]:+.2f})" for k in kinds) + " |")


if __name__ == "__main__":
    main()
