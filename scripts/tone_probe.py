"""Tone lock probe (``runtime.tone``): does locking a monotone scan's fills to its tone curve
change their colour error and PSNR?

Usage:
    python scripts/tone_probe.py                       # the real old photos in ../shared/data/old_photos
    python scripts/tone_probe.py --toned 60            # 60 training photos made grey / sepia / cyan + JPEG q85

Each photo gets seeded scratches and blotches (``damage.damage_mask``), the default model fills
them, and the fill is scored inside the mask with and without ``ToneCurve.apply``: masked PSNR
(dB) and chroma error (mean over the hole of the largest channel difference between the fill's
and the original's chroma, RGB minus luma, in grey levels). Photos that ``ToneCurve.fit`` calls
colour are listed without a lock column (the lock leaves them alone).
"""

from __future__ import annotations

import argparse
import glob
import io
from pathlib import Path

import numpy as np
from PIL import Image

from archive_restore.damage import damage_mask
from archive_restore.evaluate import psnr
from archive_restore.runtime.session import InpaintSession
from archive_restore.runtime.tone import LUMA, ToneCurve

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def chroma_err(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    ca, cb = a - (a @ LUMA)[..., None], b - (b @ LUMA)[..., None]
    return float(np.abs(ca - cb).max(axis=2)[m].mean() * 255)


def score(sess: InpaintSession, u8: np.ndarray, seed: int) -> tuple[bool, list[float]]:
    h, w = u8.shape[:2]
    rng = np.random.default_rng(seed)
    m = damage_mask((h, w), rng, "scratches") | damage_mask((h, w), rng, "blotches")
    im = u8.astype(np.float32) / 255
    out = sess.fill([im], [m])[0]
    q = lambda x: np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)  # noqa: E731  (as written to an 8-bit file)
    res = [psnr(q(out), u8, m), chroma_err(q(out) / 255.0, im, m)]
    tc = ToneCurve.fit(u8, m)
    if tc is not None:
        lk = q(tc.apply(out, m))
        res += [psnr(lk, u8, m), chroma_err(lk / 255.0, im, m), tc.tol * 255]
    return tc is not None, res


def tone(y: np.ndarray, kind: int) -> np.ndarray:
    """(H, W) luma in [0,1] -> a grey (0), sepia (1) or cyanotype-like (2) RGB print."""
    if kind == 0:
        t = np.stack([y, y, y], -1)
    elif kind == 1:
        t = np.stack([y + 0.24 * (1 - y) * y, y * 0.88 + 0.02, y * 0.70 + 0.03], -1)
    else:
        t = np.stack([y * 0.75 + 0.02, y * 0.9 + 0.04, y + 0.08], -1)
    return np.clip(t, 0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--toned", type=int, default=0, help="use N toned training photos instead of the old photos")
    ap.add_argument("--model", default=None, help="ONNX generator (default: the CPU's default graph)")
    args = ap.parse_args()
    sess = InpaintSession(args.model, device="cpu")
    print("photo | monotone | PSNR | chroma err | locked PSNR | locked chroma err | tol")
    if not args.toned:
        for f in sorted(glob.glob(str(DATA / "old_photos" / "*" / "*"))):
            mono, res = score(sess, np.asarray(Image.open(f).convert("RGB")), 1)
            print(f"{Path(f).parent.name}/{Path(f).name} | {'yes' if mono else 'no'} | " + " | ".join(f"{x:.2f}" for x in res))
        return
    files = sorted(glob.glob(str(DATA / "train" / "**" / "*.jpg"), recursive=True) + glob.glob(str(DATA / "train" / "**" / "*.png"), recursive=True))
    pick = np.random.default_rng(7).choice(len(files), args.toned, replace=False)
    rows: dict[int, list[tuple[bool, list[float]]]] = {}
    for i, k in enumerate(pick):
        rgb = np.asarray(Image.open(files[k]).convert("RGB")).astype(np.float32) / 255
        buf = io.BytesIO()
        Image.fromarray(np.rint(tone(rgb @ LUMA, i % 3) * 255).astype(np.uint8)).save(buf, "JPEG", quality=85)
        rows.setdefault(i % 3, []).append(score(sess, np.asarray(Image.open(buf).convert("RGB")), 100 + i))
    for kind, v in rows.items():
        locked = np.array([r for mono, r in v if mono])
        line = f"{['grey', 'sepia', 'cyanotype'][kind]}: {len(v)} photos, {len(locked)} monotone"
        if len(locked):
            line += " | on those: PSNR %.3f, chroma err %.2f | locked: PSNR %.3f, chroma err %.2f | tol %.1f" % tuple(locked.mean(0))
        print(line)


if __name__ == "__main__":
    main()
