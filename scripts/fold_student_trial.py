"""Trial (not shipped): a 2x2-folded student of detector_v8, for issue 4's 0.5 s target.

Usage: python scripts/fold_student_trial.py train RUN [--minutes 30]
       python scripts/fold_student_trial.py export RUN/last.pt OUT.onnx   (int8, sidecar copied from v8's)

``FoldStudent`` runs nothing at full resolution: the image is folded 2x2 into 12 channels
(pixel unshuffle), two 32-channel convolutions at half resolution stand in for v8's full-
resolution first level and its stride-2 convolution, v8's 1/4 and 1/8 levels and its coarse
decoder follow unchanged, and a half-resolution head (skip + coarse, a residual conv) emits
4 x 4 logits per 2x2 cell, unfolded by pixel shuffle. Random-weight int8 graphs on a
2000x2432 tile: 0.58 s against v8's 0.89 s (session 16).

Training distils v8 two ways at once: the folded trunk's half-resolution features regress
v8's (``e2`` output, so v8's coarse layers, copied, work from the start) and the logits
regress v8's (clipped to +-8), on v8's training looks (``masks.net.Crops``), held-out photos
excluded. The new layers learn at 1e-3, the copied ones at 1e-4, half-cosine to 5 %.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from archive_restore.masks import net as N

TEACHER = Path("models/detector_v8.pt")


class FoldStudent(N.ContextDetector):
    multiple = 8
    context = 192

    def __init__(self, w: tuple[int, int, int] = (16, 32, 64), cw: int = 96):
        super().__init__(w, cw)
        a, b, c = w
        del self.d2, self.d1, self.e1
        self.f1 = nn.Sequential(N.conv(12, b), N.conv(b, b))
        self.e2 = nn.Sequential(N.conv(b, b))
        self.d2a, self.d2b = nn.Conv2d(c, b, 3, 1, 1, bias=False), nn.Conv2d(b, b, 3, 1, 1)
        self.ha, self.hb = nn.Conv2d(b, b, 3, 1, 1, bias=False), nn.Conv2d(b, b, 3, 1, 1)
        self.hc = N.conv(b, b)
        self.out = nn.Conv2d(b, 16, 1)

    def logits_and_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,3,H,W) in [0,1] -> ((B,4,H,W) logits, (B,32,H/2,W/2) features standing in for v8's ``e2`` output)."""
        x1 = self.f1(F.pixel_unshuffle(x, 2))
        x2 = self.e2(x1)
        x3 = self.widen(self.e3(x2))
        y = F.leaky_relu(self.d2b(x2) + F.interpolate(self.d2a(x3), scale_factor=2.0), 0.1)
        z = F.leaky_relu(self.hb(x1) + self.ha(y), 0.1)
        return F.pixel_shuffle(self.out(z + self.hc(z)), 2), x2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_and_features(x)[0]


def train(run: Path, minutes: float, size: int = 192, batch: int = 12) -> None:
    torch.set_num_threads(2)
    run.mkdir(parents=True, exist_ok=True)
    teacher = N.load(TEACHER)
    for q in teacher.parameters():
        q.requires_grad_(False)
    net = FoldStudent()
    copied = {k: v for k, v in teacher.state_dict().items() if k.split(".")[0] in ("e3", "c4", "c4_out", "d2a", "d2b")}
    net.load_state_dict(copied, strict=False)
    new = [q for k, q in net.named_parameters() if k not in copied]
    old = [q for k, q in net.named_parameters() if k in copied]
    opt = torch.optim.Adam([{"params": new, "lr": 1e-3}, {"params": old, "lr": 1e-4}])
    base = [1e-3, 1e-4]
    loader = torch.utils.data.DataLoader(N.Crops(N.training_files(), size, 20_000_000, clumped=0.25, bright=0.2),
                                         batch_size=batch, num_workers=1)
    t0 = last = time.monotonic()
    step, ema = 0, None
    for x, _ in loader:
        frac = min(1.0, (time.monotonic() - t0) / (minutes * 60))
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * N.cosine_factor(frac)
        with torch.no_grad():
            t2 = teacher.e2(teacher.e1(x))
            target = teacher(x).clamp(-8, 8)
        logits, x2 = net.logits_and_features(x)
        feat, lg = F.mse_loss(x2, t2), F.mse_loss(logits.clamp(-8, 8), target)
        loss = feat + lg
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        ema = (feat.item(), lg.item()) if ema is None else (0.98 * ema[0] + 0.02 * feat.item(), 0.98 * ema[1] + 0.02 * lg.item())
        done = time.monotonic() - t0 > minutes * 60
        if step % 250 == 0 or done:
            torch.save({"net": net.state_dict(), "step": step}, run / "tmp.pt")
            (run / "tmp.pt").replace(run / "last.pt")
        if time.monotonic() - last > 60 or done:
            last = time.monotonic()
            print(f"step {step} feature {ema[0]:.4f} logits {ema[1]:.4f} {(last - t0) / 60:.1f} min", flush=True)
        if done:
            break


def export(ckpt: Path, out: Path) -> None:
    net = FoldStudent()
    net.load_state_dict(torch.load(ckpt, weights_only=True)["net"])
    prob = N.Probabilities(net.eval()).eval()
    fp = out.with_suffix(".fp32.onnx")
    torch.onnx.export(prob, (torch.rand(1, 3, 96, 128),), str(fp), input_names=["image"], output_names=["prob"], opset_version=17,
                      dynamic_axes={"image": {2: "h", 3: "w"}, "prob": {2: "h", 3: "w"}}, dynamo=False)
    q = N._quantize(fp, out)
    meta = json.loads(Path("export/detector_v8_int8.json").read_text())
    meta["int8"] = q
    meta["trained_by"] = "scripts/fold_student_trial.py (trial)"
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out}; int8 vs fp32 {q}")


if __name__ == "__main__":
    a = sys.argv[1:]
    if a and a[0] == "train":
        train(Path(a[1]), float(a[a.index("--minutes") + 1]) if "--minutes" in a else 30.0)
    elif a and a[0] == "export":
        export(Path(a[1]), Path(a[2]))
    else:
        raise SystemExit(__doc__)
