"""Dev trial: a small learned damage detector, compared with the rule detectors at MATCHED false
alarms on the tuning harness (training crops only; never the validation set).

Usage:
  python scripts/detector_trial.py train RUN [--minutes 80] [--size 128] [--batch 16]
  python scripts/detector_trial.py eval RUN/last.pt [--n 40] [--real DIR]
  python scripts/detector_trial.py val RUN/last.pt CLEAN_DIR --t T [--json OUT.json]

train: a 3-level U-Net (16/32/64 channels, about 0.1 M parameters) learns, per pixel, whether
  ``damage.synthesize`` changed it (the evaluation's ground truth), on 128² crops of the
  training photos with ``inpaint.data.archive_look`` (grey/sepia, fading, grain) applied
  before the damage; 40 % of crops stay clean. The 40 photos of ``scripts/tune_masks.py`` are
  left out. Checkpoints RUN/last.pt every 250 steps (``torch.load(weights_only=True)``).
eval: the united rule mask and the learned mask (probability > t, grown by the same
  ``MaskConfig.dilate``) on the harness: clean crops' flagged share (mean and worst), and per
  kind P/R/F1 with the 2-px tolerance, for a sweep of t, so the two can be compared where they
  flag clean crops equally. With --real, the flagged share on each real scan in DIR (they hold
  real damage too, so it is an upper bound on false alarms).
val: ``restore evaluate``'s detection figures on CLEAN_DIR (e.g. cbsd68) with the learned mask
  at a threshold chosen on the harness, in place of the rules. A measurement only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tune_masks import candidate_files, cases  # noqa: E402

from archive_restore.config import MaskConfig  # noqa: E402
from archive_restore.damage import synthesize  # noqa: E402
from archive_restore.evaluate import tolerant_scores  # noqa: E402
from archive_restore.inpaint.data import archive_look, list_images, read_rgb  # noqa: E402
from archive_restore.masks.combine import detect_kinds, unite  # noqa: E402

TRAIN = Path("/work/shared/data/train")


def conv(cin: int, cout: int, stride: int = 1, dil: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dilation=dil), nn.LeakyReLU(0.1))


class Detector(nn.Module):
    """(B,3,H,W) float RGB in [0,1], H and W multiples of 4 -> (B,1,H,W) damage logits."""

    def __init__(self, w: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        a, b, c = w
        self.e1 = nn.Sequential(conv(3, a), conv(a, a))
        self.e2 = nn.Sequential(conv(a, b, 2), conv(b, b))
        self.e3 = nn.Sequential(conv(b, c, 2), conv(c, c, dil=2), conv(c, c, dil=4), conv(c, c, dil=8))
        self.d2 = conv(c + b, b)
        self.d1 = conv(b + a, a)
        self.out = nn.Conv2d(a, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.e1(x * 2 - 1)
        x2 = self.e2(x1)
        x3 = self.e3(x2)
        y = self.d2(torch.cat([F.interpolate(x3, scale_factor=2.0), x2], 1))
        y = self.d1(torch.cat([F.interpolate(y, scale_factor=2.0), x1], 1))
        return self.out(y)


class Crops(torch.utils.data.IterableDataset):
    """Endless (image (3,S,S) float [0,1], target (1,S,S) {0,1}) pairs; the stream is a function
    of (seed, worker): a run seeds it with its starting step, so a resumed run draws new crops."""

    def __init__(self, files: list[Path], size: int, seed: int):
        self.files, self.size, self.seed = files, size, seed

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        s = self.size
        while True:
            try:
                img = read_rgb(self.files[rng.integers(len(self.files))])
            except ValueError:
                continue
            h, w = img.shape[:2]
            if min(h, w) < s:
                continue
            y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            img = archive_look(np.ascontiguousarray(img[y:y + s, x:x + s]), rng, 0.6)
            if rng.random() < 0.4:
                dam, gt = img, np.zeros((s, s), bool)
            else:
                d = synthesize(img, rng)
                dam, gt = d.damaged, d.mask
            yield (torch.from_numpy(dam.transpose(2, 0, 1).copy()).float() / 255,
                   torch.from_numpy(gt[None].astype(np.float32)))


def train(run: Path, minutes: float, size: int, batch: int) -> None:
    torch.set_num_threads(2)
    run.mkdir(parents=True, exist_ok=True)
    held = set(candidate_files(40))
    files = [f for f in list_images(TRAIN) if f not in held]
    print(f"{len(files)} training photos, {len(held)} harness photos held out", flush=True)
    net = Detector()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    step = 0
    ck = run / "last.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
    loader = torch.utils.data.DataLoader(Crops(files, size, step), batch_size=batch, num_workers=1)
    t0, last = time.monotonic(), time.monotonic()
    ema = None
    for x, y in loader:
        logits = net(x)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        done = time.monotonic() - t0 > minutes * 60
        if step % 250 == 0 or done:
            torch.save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step}, run / "tmp.pt")
            (run / "tmp.pt").replace(ck)
        if time.monotonic() - last > 60 or done:
            last = time.monotonic()
            print(f"step {step} loss {ema:.4f} {(time.monotonic() - t0) / 60:.1f} min", flush=True)
        if done:
            break


def predict(net: Detector, im: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 -> (H,W) float32 damage probability (replicate-padded to a multiple of 4)."""
    h, w = im.shape[:2]
    ph, pw = -(-h // 4) * 4, -(-w // 4) * 4
    x = np.pad(im, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    with torch.no_grad():
        p = torch.sigmoid(net(torch.from_numpy(x.transpose(2, 0, 1).copy()).float()[None] / 255))
    return p[0, 0, :h, :w].numpy()


def grow(m: np.ndarray, r: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m.astype(np.uint8), k) > 0 if r > 0 and m.any() else m


def evaluate(ckpt: Path, n: int, real: Path | None) -> None:
    torch.set_num_threads(2)
    net = Detector()
    state = torch.load(ckpt, weights_only=True)
    net.load_state_dict(state["net"])
    net.eval()
    cfg = MaskConfig()
    clean, cs = cases(n)
    pc = [predict(net, im) for im in clean]
    ts = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    # flagged share of each clean crop, per detector ("rules" or a threshold)
    clean_fr = {"rules": [unite(detect_kinds(im, cfg), im.shape[:2], cfg.dilate).mean() for im in clean]}
    clean_fr.update({t: [grow(p > t, cfg.dilate).mean() for p in pc] for t in ts})
    counts = {m: {} for m in ["rules", *ts]}
    for kind, items in cs.items():
        preds = [predict(net, d) for d, _ in items]
        for m in counts:
            c = {"tp_pred": 0, "fp": 0, "tp_gt": 0, "fn": 0}
            for p, (d, gt) in zip(preds, items):
                pred = unite(detect_kinds(d, cfg), d.shape[:2], cfg.dilate) if m == "rules" else grow(p > m, cfg.dilate)
                s = tolerant_scores(pred, gt)
                c = {k: c[k] + s[k] for k in c}
            counts[m][kind] = c

    def prf(c: dict) -> str:
        p = c["tp_pred"] / max(c["tp_pred"] + c["fp"], 1)
        rc = c["tp_gt"] / max(c["tp_gt"] + c["fn"], 1)
        return f"{p:.2f}/{rc:.2f}/{2 * p * rc / max(p + rc, 1e-9):.3f}"

    print(f"step {state['step']}, {len(clean)} harness crops; per kind P/R/F1 (2 px tolerance)")
    print("detector   clean mean / max   " + "".join(k.ljust(17) for k in cs))
    for m in counts:
        fm, fx = np.mean(clean_fr[m]), np.max(clean_fr[m])
        name = "rules" if m == "rules" else f"p > {m}"
        print(f"{name:10s} {100 * fm:5.2f} % / {100 * fx:5.1f} %  " + "".join(prf(counts[m][k]).ljust(17) for k in cs))
    if real:
        for f in sorted(real.rglob("*.png")) + sorted(real.rglob("*.jpg")):
            im = read_rgb(f)
            p = predict(net, im)
            rule = unite(detect_kinds(im, cfg), im.shape[:2], cfg.dilate).mean()
            print(f"{f.relative_to(real)}: rules {100 * rule:.2f} %, learned " +
                  ", ".join(f"t {t}: {100 * grow(p > t, cfg.dilate).mean():.2f} %" for t in ts))


def validate(ckpt: Path, folder: Path, t: float, out: Path | None) -> None:
    """``restore evaluate``'s detection figures on ``folder`` with the learned mask (p > t,
    grown by ``MaskConfig.dilate``) in place of the rules: a measurement, never a tuning set."""
    import json

    from archive_restore import masks as masks_mod
    from archive_restore.evaluate import run_evaluation

    torch.set_num_threads(2)
    net = Detector()
    net.load_state_dict(torch.load(ckpt, weights_only=True)["net"])
    net.eval()
    cfg = MaskConfig()
    masks_mod.detect = lambda im, c=cfg: masks_mod.MaskResult(mask=grow(predict(net, im) > t, cfg.dilate))
    files = sorted(f for f in folder.iterdir() if f.suffix.lower() in (".png", ".jpg", ".jpeg"))
    images = [(f.name, read_rgb(f)) for f in files]
    report, _ = run_evaluation(images, ("scratches", "cracks", "dust", "text", "blotches"), cfg)
    for k, v in report["kinds"].items():
        d = v["detection"]
        print(f"{k:10s} P {d['precision']:.3f} R {d['recall']:.3f} F1 {d['f1']:.3f} IoU {d['iou']:.3f}")
    cf = report["clean_flagged"]
    print(f"clean: mean {100 * cf['mean']:.3f} %, max {100 * cf['max']:.2f} %, over 1 %: {cf['over_1pct']}; "
          f"detection {report['seconds_per_mp']['detection']:.2f} s/MP")
    if out:
        out.write_text(json.dumps(report, indent=1))


def main() -> None:
    a = sys.argv[1:]
    opt = {k: a[a.index(k) + 1] for k in ("--minutes", "--size", "--batch", "--n", "--real", "--t", "--json") if k in a}
    if a[0] == "train":
        train(Path(a[1]), float(opt.get("--minutes", 80)), int(opt.get("--size", 128)), int(opt.get("--batch", 16)))
    elif a[0] == "val":
        validate(Path(a[1]), Path(a[2]), float(opt.get("--t", 0.5)), Path(opt["--json"]) if "--json" in opt else None)
    elif a[0] == "eval":
        evaluate(Path(a[1]), int(opt.get("--n", 40)), Path(opt["--real"]) if "--real" in opt else None)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
