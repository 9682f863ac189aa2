"""The learned damage detector's network, its training data and its ONNX export (needs torch:
``pip install -e .[train]``). ``masks.learned`` runs the exported graph without torch.

The detector is a small U-Net (16/32/64 channels, about 0.1 M parameters) that says, per pixel
and per damage kind, whether ``damage.synthesize`` changed the pixel: the same ground truth
``restore evaluate`` scores against. It trains on crops of the training photos only, with
``inpaint.data.archive_look`` (grey/sepia, fading, grain, JPEG) applied before the damage and,
on half of the damaged crops, a second light grain after it (a scan's grain lies over a print's
scratches too). Damage is drawn on the whole photo, then cropped, so its size follows the
photo's as ``restore evaluate`` draws it; 35 % of the photos stay clean. Sources are drawn
evenly, faces at a quarter (they are two thirds of the files; scans hold streets, gravel,
fabric and foliage that must be left alone).

Held out of training: the 42 harness photos of ``scripts/tune_masks.py`` and
``calibration_files()`` (400 photos), on which ``restore``'s thresholds are chosen.

Usage: python -m archive_restore.masks.net train RUN [--minutes 120] [--size 128] [--batch 16] [--data DIR] [--lr 1e-3]
       python -m archive_restore.masks.net export RUN/last.pt OUT.onnx
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

from archive_restore.damage import synthesize
from archive_restore.inpaint.data import archive_look, list_images, read_rgb

# output channel -> the damage.py kinds it answers for (the rule detectors' kind names)
CHANNELS = {"scratches": ("scratches", "cracks"), "dust": ("dust",), "text": ("text",), "blotches": ("blotches",)}
TRAIN_ROOT = Path("/work/shared/data/train")
HARNESS_SOURCES = ("debian_wallpapers", "camvid", "bsds500_traintest", "sunhays80", "imagenet_sample", "utkface")


def harness_files(root: Path = TRAIN_ROOT, n: int = 40) -> list[Path]:
    """The photos ``scripts/tune_masks.py`` samples its harness from (evenly spaced per source)."""
    per = n // len(HARNESS_SOURCES) + 1
    files: list[Path] = []
    for sub in HARNESS_SOURCES:
        fs = sorted(f for f in (root / sub).glob("*") if f.suffix.lower() in (".jpg", ".png", ".jpeg"))
        files += fs[:: max(1, len(fs) // per)][:per]
    return files


def calibration_files(root: Path = TRAIN_ROOT, n: int = 400) -> list[Path]:
    """``n`` training photos (seeded draw, harness excluded) held out to choose thresholds on."""
    held = set(harness_files(root))
    rest = [f for f in list_images(root) if f not in held]
    idx = np.random.default_rng(20261130).choice(len(rest), size=n, replace=False)
    return sorted(rest[i] for i in idx)


def conv(cin: int, cout: int, stride: int = 1, dil: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dilation=dil), nn.LeakyReLU(0.1))


class Detector(nn.Module):
    """(B,3,H,W) float RGB in [0,1], H and W multiples of 4 -> (B,4,H,W) logits, one channel per
    ``CHANNELS`` key. Receptive field about 130 px (three dilated convs at 1/4 scale)."""

    def __init__(self, w: tuple[int, int, int] = (16, 32, 64)):
        super().__init__()
        a, b, c = w
        self.e1 = nn.Sequential(conv(3, a), conv(a, a))
        self.e2 = nn.Sequential(conv(a, b, 2), conv(b, b))
        self.e3 = nn.Sequential(conv(b, c, 2), conv(c, c, dil=2), conv(c, c, dil=4), conv(c, c, dil=8))
        self.d2 = conv(c + b, b)
        self.d1 = conv(b + a, a)
        self.out = nn.Conv2d(a, len(CHANNELS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.e1(x * 2 - 1)
        x2 = self.e2(x1)
        x3 = self.e3(x2)
        y = self.d2(torch.cat([F.interpolate(x3, scale_factor=2.0), x2], 1))
        y = self.d1(torch.cat([F.interpolate(y, scale_factor=2.0), x1], 1))
        return self.out(y)


class Probabilities(nn.Module):
    """The exported graph: (1,3,H,W) float RGB in [0,1] -> (1,4,H,W) probabilities in [0,1]."""

    def __init__(self, net: Detector):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def damaged_crop(img: np.ndarray, rng: np.random.Generator, size: int, clean_share: float = 0.35) -> tuple[np.ndarray, np.ndarray]:
    """One training pair from a (H,W,3) uint8 photo: (size,size,3) uint8 and (4,size,size) bool
    targets (``CHANNELS`` order). The photo may be enlarged up to 1.5x first (scale variety)."""
    if rng.random() < 0.3:
        f = rng.uniform(1.0, 1.5)
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    img = archive_look(np.ascontiguousarray(img), rng, 0.6)
    h, w = img.shape[:2]
    target = np.zeros((len(CHANNELS), h, w), bool)
    if rng.random() >= clean_share:
        d = synthesize(img, rng)
        img = d.damaged
        for c, kinds in enumerate(CHANNELS.values()):
            for k in kinds:
                if k in d.kind_masks:
                    target[c] |= d.kind_masks[k]
        if rng.random() < 0.5:  # grain over the damage as well
            g = rng.normal(0.0, rng.uniform(1.0, 4.0), (h, w)).astype(np.float32)
            img = np.clip(img.astype(np.float32) + g[..., None] + 0.5, 0, 255).astype(np.uint8)
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(img[y:y + size, x:x + size]), target[:, y:y + size, x:x + size]


class Crops(torch.utils.data.IterableDataset):
    """Endless (image (3,S,S) float [0,1], target (4,S,S) {0,1}) pairs; the stream is a function
    of (seed, worker): a run seeds it with its starting step, so a resumed run draws new crops."""

    def __init__(self, files: list[Path], size: int, seed: int):
        self.size, self.seed = size, seed
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(f.parent.name, []).append(f)
        self.groups = [groups[k] for k in sorted(groups)]
        w = np.array([5 / 3 if k == "utkface" else 1.0 for k in sorted(groups)])  # faces: 1/4 of 6 sources
        self.weights = w / w.sum()

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id if info else 0])
        while True:
            g = self.groups[rng.choice(len(self.groups), p=self.weights)]
            try:
                img = read_rgb(g[rng.integers(len(g))])
            except ValueError:
                continue
            if min(img.shape[:2]) < self.size:
                continue
            im, t = damaged_crop(img, rng, self.size)
            yield (torch.from_numpy(im.transpose(2, 0, 1).copy()).float() / 255, torch.from_numpy(t.astype(np.float32)))


def train(run: Path, minutes: float, size: int = 128, batch: int = 16, root: Path = TRAIN_ROOT, lr: float = 1e-3) -> None:
    """Train (or resume) RUN/last.pt for ``minutes`` of wall time; checkpoints every 250 steps.
    ``lr`` also replaces a resumed optimizer's rate (to anneal a continued run)."""
    torch.set_num_threads(2)
    run.mkdir(parents=True, exist_ok=True)
    held = set(harness_files(root)) | set(calibration_files(root))
    files = [f for f in list_images(root) if f not in held]
    print(f"{len(files)} training photos, {len(held)} held out (harness + calibration)", flush=True)
    net = Detector()
    opt = torch.optim.Adam(net.parameters(), lr)
    step = 0
    ck = run / "last.pt"
    if ck.exists():
        state = torch.load(ck, weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        for g in opt.param_groups:
            g["lr"] = lr
        step = int(state["step"])
    loader = torch.utils.data.DataLoader(Crops(files, size, step), batch_size=batch, num_workers=1)
    t0 = last = time.monotonic()
    ema = None
    for x, y in loader:
        loss = F.binary_cross_entropy_with_logits(net(x), y)
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


def load(ckpt: Path) -> Detector:
    """A trained Detector from a checkpoint (``torch.load(weights_only=True)``: no pickled code)."""
    state = torch.load(ckpt, weights_only=True, map_location="cpu")
    net = Detector()
    net.load_state_dict(state["net"] if "net" in state else state)
    return net.eval()


def export(ckpt: Path, out: Path) -> None:
    """Write the detector as ONNX (dynamic H/W, multiples of 4) and check it against torch, with
    a JSON sidecar (channels, provenance; ``scripts/detector_calibrate.py`` adds thresholds)."""
    import json

    import onnxruntime as ort

    step = int(torch.load(ckpt, weights_only=True, map_location="cpu").get("step", -1))
    net = Probabilities(load(ckpt)).eval()
    x = torch.rand(1, 3, 96, 128)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(net, (x,), str(tmp), input_names=["image"], output_names=["prob"], opset_version=17,
                      dynamic_axes={"image": {2: "h", 3: "w"}, "prob": {2: "h", 3: "w"}}, dynamo=False)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 96, 128), (1, 3, 200, 148)):
        x = torch.rand(*shape)
        with torch.no_grad():
            ref = net(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        err = float(np.abs(ref - got).max())
        if err > 1e-4:
            raise RuntimeError(f"ONNX export differs from torch by {err} at {shape}")
    tmp.replace(out)
    meta = {"channels": list(CHANNELS), "input": "(1,3,H,W) float RGB in [0,1], H and W multiples of 4",
            "output": "(1,4,H,W) damage probability per channel", "step": step,
            "trained_by": "python -m archive_restore.masks.net train RUN --minutes M", "thresholds": {}}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB), parity checked")


def main(argv: list[str]) -> None:
    opt = {k: argv[argv.index(k) + 1] for k in ("--minutes", "--size", "--batch", "--data", "--lr") if k in argv}
    if argv and argv[0] == "train":
        train(Path(argv[1]), float(opt.get("--minutes", 120)), int(opt.get("--size", 128)), int(opt.get("--batch", 16)),
              Path(opt.get("--data", TRAIN_ROOT)), float(opt.get("--lr", 1e-3)))
    elif argv and argv[0] == "export":
        export(Path(argv[1]), Path(argv[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
