"""Peak memory and time of auto-mask detection on large scans, 2 CPU cores.

Usage: python benchmarks/bench_mask_memory.py [--mp 24 48] [--sensitivity medium] [--scales auto native] [--dir DIR]
Each scan is ``bench_masks.scan(mp)`` (generated shading, shapes and grain with synthetic
scratches and dust) saved as a JPEG (quality 92) in DIR (kept between runs; a temporary folder
when absent). A fresh Python process per scan reads it as ``restore folder`` does
(``masks.batch.read_rgb``) and runs ``masks.detect`` with the default learned detector; it
reports its resident memory before detection and its peak (VmHWM, ``bench_folder.peak_rss_mb``,
so the figure includes the decoded scan and the ONNX Runtime session; ``ru_maxrss`` would carry
over the peak of this parent, which generates the scans), the seconds of ``detect`` and the
flagged share, once per ``--scales`` value (``MaskConfig.scales``). Prints a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench_folder import peak_rss_mb
from archive_restore.config import MaskConfig
from archive_restore.masks import detect
from archive_restore.masks.batch import read_rgb

def rss_gb():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0]) / 1e6

img = read_rgb(Path(sys.argv[1]))
before = rss_gb()
t = time.perf_counter()
r = detect(img, MaskConfig(sensitivity=sys.argv[2], scales=sys.argv[4]))
dt = time.perf_counter() - t
print(json.dumps({"shape": list(img.shape[:2]), "seconds": round(dt, 2), "rss_before_gb": round(before, 2),
                  "peak_gb": round(peak_rss_mb() * 1024 / 1e6, 2),
                  "flagged_pct": round(100 * float(r.mask.mean()), 3)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mp", type=float, nargs="+", default=[24.0, 48.0])
    ap.add_argument("--sensitivity", default="medium")
    ap.add_argument("--scales", nargs="+", choices=("auto", "native"), default=["auto"])
    ap.add_argument("--dir", type=Path, default=None, help="where the generated scans are kept")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from _table import print_table
    from bench_masks import scan
    from PIL import Image

    with tempfile.TemporaryDirectory() as tmp:
        root = (args.dir or Path(tmp)).resolve()  # the child runs there, importing the installed package
        root.mkdir(parents=True, exist_ok=True)
        rows = []
        for mp in args.mp:
            path = root / f"scan_{mp:g}mp.jpg"
            if not path.exists():
                Image.fromarray(scan(mp)).save(path, quality=92)
            for sc in args.scales:
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), args.sensitivity, str(Path(__file__).resolve().parent), sc],
                                     check=True, capture_output=True, text=True, cwd=root).stdout
                rows.append({"mp": mp, "sensitivity": args.sensitivity, "scales": sc} | json.loads(out.strip().splitlines()[-1]))
        for r in rows:
            r["size"] = "x".join(map(str, r["shape"]))
        print_table(rows, [("MP", "mp", "g"), ("size", "size", ""), ("scales", "scales", ""), ("seconds", "seconds", ".2f"),
                           ("RSS before GB", "rss_before_gb", ".2f"), ("peak GB", "peak_gb", ".2f"),
                           ("flagged %", "flagged_pct", ".3f")])
        print(json.dumps(rows))


if __name__ == "__main__":
    main()
