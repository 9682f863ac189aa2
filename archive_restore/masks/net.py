"""The learned damage detector's networks, their training data and ONNX export (needs torch:
``pip install -e .[train]``). ``masks.learned`` runs the exported graph without torch.

Three architectures (a checkpoint's "arch" says which): ``Detector`` ("unet", detector_v2), a
U-Net whose first level runs at full resolution (0.18 M parameters); ``ContextDetector``
("unet_ctx"), the same plus a 1/8-scale context branch (0.49 M parameters, receptive field
about 360 px instead of 130, 17 % more work per pixel), which can start from a v2 checkpoint
(``--init-from``); and ``FastDetector`` ("s2d", detector_v3), which folds the image 4x4 into
channels so it runs at 1/4 scale and below (0.42 M parameters, 1/5 of v2's work per pixel); and
``SplitDecoderDetector`` ("unet_ctx_split"), unet_ctx with a decoder that convolves before it
upsamples (no full-resolution concatenation), distilled from a trained unet_ctx (``distill``)
to compute the same function faster. Each says, per pixel and per
damage kind, whether ``damage.synthesize`` changed the pixel: the ground truth ``restore
evaluate`` scores against. They train on crops of the training photos only, with
``inpaint.data.archive_look`` (grey/sepia, fading, grain, JPEG) applied before the damage and,
on half of the damaged crops, a second light grain after it (a scan's grain lies over a print's
scratches too). ``--clumped-grain SHARE`` also gives that share of all crops, clean or damaged,
``clumped_grain`` last, and ``--blown-bright SHARE`` over-exposes only the highlights of that
share of photos before the damage (``blown_bright``); both are in the shipped detector_v7's
recipe (models/detector_v7.md). ``--blown SHARE`` over-exposes whole photos (``blown_out``;
session-10 trial: it taught the network that warm brick is a blotch) and ``--focal GAMMA`` trains
with the focal loss (``focal_bce``) instead of plain per-pixel BCE (session-11 trial: worse on
every kind than its BCE pair); neither is shipped (docs/quality.md).
``--ignore LEVELS`` leaves damage pixels the damage changed by that many grey levels or less out
of the loss (session-13 trial, trained beside a step-matched control, not yet evaluated), and
``--steps N`` stops a run after N steps with the cosine over the steps, so two runs sharing the
CPU get the same schedule. ``--speckle SHARE`` gives that share of all crops dense fine specks
labelled as dust (``speckle``: the dust of real scratched prints, session 17), and ``--scuffs
SHARE`` a field of short fine scratches without a long one (``scuffs``, the same prints).
Damage is drawn on the whole photo, then cropped, so its size follows the photo's as
``restore evaluate`` draws it; 35 % of the photos stay clean. Sources are drawn evenly, faces
at ``FACE_SHARE`` (they are two thirds of the files; scans hold streets, gravel, fabric and
foliage that must be left alone).

Held out of training (``held_out_files``): the 42 harness photos of ``scripts/tune_masks.py``
and both calibration draws of ``calibration_files()`` (400 photos each), on which ``restore``'s
thresholds are chosen. ``export --int8`` writes an int8 graph (ONNX Runtime static
quantization), about twice as fast on the CPU.

Usage: python -m archive_restore.masks.net train RUN [--minutes 120] [--size 128] [--batch 16] [--data DIR] [--lr 1e-3]
                                                   [--arch unet|s2d|unet_ctx] [--cosine] [--init-from CKPT] [--clumped-grain 0.25]
                                                   [--blown 0.15] [--blown-bright 0.2] [--focal 2] [--ignore 8]
                                                   [--steps N] [--threads 2] [--speckle 0.3] [--scuffs 0.3] [--turned 0.5]
                                                   [--average 0.998]   (also RUN/average.pt: the weights' moving average)
                                                   (unet_ctx: detector_v4 and the shipped detector_v7; unet: detector_v2)
       python -m archive_restore.masks.net distill RUN TEACHER.pt [--minutes 60] [--lr 5e-4] [--trunk-lr 1e-4] [--size 192]
                                                   [--batch 12] [--init-from STUDENT.pt]   (unet_ctx -> unet_ctx_split)
                                                   [--views dihedral]   (unet_ctx_split -> itself, its views averaged)
       (train and distill: [--device cpu|cuda] [--workers N], N processes drawing crops; a GPU lease needs ~one per core)
       python -m archive_restore.masks.net export RUN/last.pt OUT.onnx [--int8]
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
IGNORE = 255  # damaged_crop's target value for a damage pixel left out of the loss (``--ignore``)
FACE_SHARE = 1 / 6  # portraits' share of training crops and calibration photos (they are 2/3 of the files)
HARNESS_SOURCES = ("debian_wallpapers", "camvid", "bsds500_traintest", "sunhays80", "imagenet_sample", "utkface")


def harness_files(root: Path = TRAIN_ROOT, n: int = 40) -> list[Path]:
    """The photos ``scripts/tune_masks.py`` samples its harness from (evenly spaced per source)."""
    per = n // len(HARNESS_SOURCES) + 1
    files: list[Path] = []
    for sub in HARNESS_SOURCES:
        fs = sorted(f for f in (root / sub).glob("*") if f.suffix.lower() in (".jpg", ".png", ".jpeg"))
        files += fs[:: max(1, len(fs) // per)][:per]
    return files


def calibration_files(root: Path = TRAIN_ROOT, n: int = 400, draw: str = "stratified") -> list[Path]:
    """Training photos (seeded draws, harness excluded) held out to choose thresholds on.

    draw "stratified" (``n`` photos, drawn per source as the training crops are: portraits at
    ``FACE_SHARE``, the other sources evenly): detector_v3 and later never trained on them.
    draw "plain" (``n`` photos following the file counts, so 70 % portraits): detector_v2's
    held-out photos. Its thresholds were chosen on them, and on portraits thin damage is easy
    and nothing is falsely flagged, so they were too loose for textured photos (cbsd68 clean
    0.144 % vs 0.05 % budgeted). draw "plain-balanced": the plain draw with portraits thinned
    (seeded) to ``FACE_SHARE``, a fair set for any detector that held the plain draw out."""
    held = set(harness_files(root))
    rest = [f for f in list_images(root) if f not in held]
    rng = np.random.default_rng(20261130)
    if draw in ("plain", "plain-balanced"):
        files = sorted(rest[i] for i in rng.choice(len(rest), size=min(n, len(rest)), replace=False))
        if draw == "plain":
            return files
        faces = [f for f in files if f.parent.name == "utkface"]
        others = [f for f in files if f.parent.name != "utkface"]
        keep = round(len(others) * FACE_SHARE / (1 - FACE_SHARE))
        pick = np.random.default_rng(6).choice(len(faces), size=min(keep, len(faces)), replace=False)
        return sorted(others + [faces[i] for i in pick])
    if draw != "stratified":
        raise ValueError(f"unknown calibration draw {draw!r}; choose stratified, plain or plain-balanced")
    groups: dict[str, list[Path]] = {}
    for f in rest:
        groups.setdefault(f.parent.name, []).append(f)
    others = sorted(k for k in groups if k != "utkface")
    quota = {k: round(n * (1 - FACE_SHARE) / len(others)) for k in others}
    if "utkface" in groups:
        quota["utkface"] = n - sum(quota.values())
    out: list[Path] = []
    for k in sorted(quota):
        g = groups[k]
        out += [g[i] for i in rng.choice(len(g), size=min(len(g), quota[k]), replace=False)]
    return sorted(out)


def held_out_files(root: Path = TRAIN_ROOT) -> set[Path]:
    """Every photo a detector must not train on: the harness and both calibration draws."""
    return set(harness_files(root)) | set(calibration_files(root)) | set(calibration_files(root, draw="plain"))


def training_files(root: Path = TRAIN_ROOT) -> list[Path]:
    """The photos under ``root`` a detector may train on (``held_out_files`` removed)."""
    held = held_out_files(root)
    return [f for f in list_images(root) if f not in held]


def conv(cin: int, cout: int, stride: int = 1, dil: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, dil, dilation=dil), nn.LeakyReLU(0.1))


class Detector(nn.Module):
    """detector_v2 (arch "unet"). (B,3,H,W) float RGB in [0,1], H and W multiples of 4 -> (B,4,H,W)
    logits, one channel per ``CHANNELS`` key. Receptive field about 130 px (three dilated convs at 1/4 scale)."""

    multiple = 4
    context = 128  # px of context each tile keeps per side at run time (receptive field radius about 66)

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
        x3 = self.widen(self.e3(x2))
        y = self.d2(torch.cat([F.interpolate(x3, scale_factor=2.0), x2], 1))
        y = self.d1(torch.cat([F.interpolate(y, scale_factor=2.0), x1], 1))
        return self.out(y)

    def widen(self, x3: torch.Tensor) -> torch.Tensor:
        """The 1/4-scale features before decoding; ``ContextDetector`` adds its context here."""
        return x3


class FastDetector(nn.Module):
    """detector_v3. (B,3,H,W) float RGB in [0,1], H and W multiples of 16 -> (B,4,H,W) logits.

    The image is folded 4x4 into 48 channels (pixel unshuffle) so every convolution runs at 1/4
    scale or below, and the logits are unfolded back (pixel shuffle): a 1-px scratch is a
    pattern across the folded channels, its position within the 4x4 cell is learned by the last
    1x1 layer. Levels 1/4, 1/8, 1/16 (32/64/96 channels, dilations 2 and 4 at the bottom):
    receptive field about 200 px, 0.42 M parameters, about 5x less work per pixel (6k vs 28k
    multiply-adds) than ``Detector`` (v2), which runs its first level at full resolution.
    Tried in session 8 and not shipped: in 60 CPU minutes it learned thin damage far more slowly
    than v2 (32 features per 4x4 cell at the first layer; docs/quality.md, session 8)."""

    multiple = 16
    context = 128  # receptive field radius about 100

    def __init__(self, w: tuple[int, int, int, int] = (32, 64, 96, 24)):
        super().__init__()
        a, b, c, d = w
        self.e1 = nn.Sequential(conv(48, a), conv(a, a))
        self.e2 = nn.Sequential(conv(a, b, 2), conv(b, b))
        self.e3 = nn.Sequential(conv(b, c, 2), conv(c, c, dil=2), conv(c, c, dil=4))
        self.d2 = conv(c + b, b)
        self.d1 = conv(b + a, d)
        self.out = nn.Conv2d(d, 16 * len(CHANNELS), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.e1(F.pixel_unshuffle(x * 2 - 1, 4))
        x2 = self.e2(x1)
        x3 = self.e3(x2)
        y = self.d2(torch.cat([F.interpolate(x3, scale_factor=2.0), x2], 1))
        y = self.d1(torch.cat([F.interpolate(y, scale_factor=2.0), x1], 1))
        return F.pixel_shuffle(self.out(y), 4)


class ContextDetector(Detector):
    """arch "unet_ctx": ``Detector`` (v2) plus a context branch at 1/8 scale. (B,3,H,W) float RGB
    in [0,1], H and W multiples of 8 -> (B,4,H,W) logits.

    The branch (96 channels: a stride-2 conv, then dilations 2, 4 and 8) adds its 1x1 projection,
    upsampled, to v2's 1/4-scale features; the receptive field grows from about 130 to about
    360 px, so a faint line can be judged by where it runs over a much longer stretch (a scratch
    crosses objects, a wire or an edge follows them), at about 17 % more work per pixel. The
    projection starts at zero, so a net initialised from a v2 checkpoint (``train --init-from``)
    starts out computing exactly v2."""

    multiple = 8
    context = 192  # receptive field radius about 190

    def __init__(self, w: tuple[int, int, int] = (16, 32, 64), cw: int = 96):
        super().__init__(w)
        c = w[2]
        self.c4 = nn.Sequential(conv(c, cw, 2), conv(cw, cw, dil=2), conv(cw, cw, dil=4), conv(cw, cw, dil=8))
        self.c4_out = nn.Conv2d(cw, c, 1)
        nn.init.zeros_(self.c4_out.weight)
        nn.init.zeros_(self.c4_out.bias)

    def widen(self, x3: torch.Tensor) -> torch.Tensor:
        return x3 + F.interpolate(self.c4_out(self.c4(x3)), scale_factor=2.0)


class SplitDecoderDetector(ContextDetector):
    """arch "unet_ctx_split": ``ContextDetector``'s encoder and context branch with a cheaper
    decoder. (B,3,H,W) float RGB in [0,1], H and W multiples of 8 -> (B,4,H,W) logits.

    Each ``ContextDetector`` decoder level is ``conv3x3(cat(up(coarse), skip))``: at full
    resolution that upsamples 32 channels, concatenates 48 and convolves 48 -> 16, half of the
    int8 graph's time on the CPU. Here each level is ``leaky(conv3x3_b(skip) + up(conv3x3_a(coarse)))``:
    the coarse term is convolved *before* it is upsampled, at a quarter of the pixels, and only
    the level's own width (16 at full resolution) is upsampled and added; no concatenation.
    Nearest upsampling makes the coarse term constant over each 2x2 cell, so one more 16 -> 16
    convolution at full resolution (``d1c``, residual: ``y + leaky(conv(y))``) mixes the fused
    features across cells. The input's
    ``x * 2 - 1`` is folded into the first kernel (in the int8 graph that scaling cost a
    quantized Mul, a float Sub and a re-quantization of the full-resolution input).
    ``from_context`` builds one from a trained ``ContextDetector``: every encoder and context
    weight is the teacher's, the skip convolutions are the skip half of the teacher's
    concatenated kernel (exact), the coarse ones start from the teacher's kernel averaged over
    the four upsampling phases, ``d1c`` starts at zero; ``distill`` then trains the
    student to reproduce the teacher's logits."""

    def __init__(self, w: tuple[int, int, int] = (16, 32, 64), cw: int = 96):
        super().__init__(w, cw)
        a, b, c = w
        del self.d2, self.d1
        self.d2a, self.d2b = nn.Conv2d(c, b, 3, 1, 1, bias=False), nn.Conv2d(b, b, 3, 1, 1)
        self.d1a, self.d1b = nn.Conv2d(b, a, 3, 1, 1, bias=False), nn.Conv2d(a, a, 3, 1, 1)
        self.d1c = conv(a, a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.e1(x)  # the teacher's x * 2 - 1 is folded into e1's first kernel (``from_context``)
        x2 = self.e2(x1)
        x3 = self.widen(self.e3(x2))
        y = F.leaky_relu(self.d2b(x2) + F.interpolate(self.d2a(x3), scale_factor=2.0), 0.1)
        y = F.leaky_relu(self.d1b(x1) + F.interpolate(self.d1a(y), scale_factor=2.0), 0.1)
        return self.out(y + self.d1c(y))

    @classmethod
    def from_context(cls, teacher: ContextDetector) -> "SplitDecoderDetector":
        """A student sharing every encoder, context and head weight of ``teacher`` (copied)."""
        net = cls()
        own = net.state_dict()
        net.load_state_dict({k: v for k, v in teacher.state_dict().items() if k in own}, strict=False)
        first = net.e1[0][0]
        with torch.no_grad():  # conv(2x - 1) = conv'(x): w' = 2w, b' = b - sum(w) (differs only in the 1-px zero border)
            first.bias.sub_(first.weight.sum(dim=(1, 2, 3)))
            first.weight.mul_(2.0)
            net.d1c[0].weight.zero_()  # the residual conv adds nothing yet
            net.d1c[0].bias.zero_()
        for (ta, tb), tconv in (((net.d2a, net.d2b), teacher.d2[0]), ((net.d1a, net.d1b), teacher.d1[0])):
            wt = tconv.weight.detach()
            n = ta.in_channels
            with torch.no_grad():
                tb.weight.copy_(wt[:, n:])
                tb.bias.copy_(tconv.bias.detach())
                ta.weight.copy_(_phase_average(wt[:, :n]))
        return net


def _phase_average(w: torch.Tensor) -> torch.Tensor:
    """(O,I,3,3) kernel applied after 2x nearest upsampling -> the (O,I,3,3) kernel at the coarse
    scale whose result, upsampled, equals the original averaged over the four output phases
    (per axis: taps -1, 0, +1 become (w[-1], w[-1] + 2 w[0] + w[1], w[1]) / 2)."""
    m = torch.tensor([[0.5, 0.0, 0.0], [0.5, 1.0, 0.5], [0.0, 0.0, 0.5]], dtype=w.dtype)  # coarse tap <- fine tap
    return torch.einsum("ab,cd,oibd->oiac", m, m, w)


ARCHS = {"unet": Detector, "s2d": FastDetector, "unet_ctx": ContextDetector,
         "unet_ctx_split": SplitDecoderDetector}  # checkpoint "arch" -> class (absent: "unet", v2)


class Probabilities(nn.Module):
    """The exported graph: (1,3,H,W) float RGB in [0,1] -> (1,4,H,W) probabilities in [0,1]."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def damaged_crop(img: np.ndarray, rng: np.random.Generator, size: int, clean_share: float = 0.35,
                 clumped: float = 0.0, blown: float = 0.0, bright: float = 0.0, ignore: float = 0.0,
                 speckled: float = 0.0, scuffed: float = 0.0, turned: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """One training pair from a (H,W,3) uint8 photo: (size,size,3) uint8 and (4,size,size) bool
    targets (``CHANNELS`` order); with ``ignore`` > 0, uint8 targets in {0, 1, ``IGNORE``}: a
    damage pixel the damage changed by ``ignore`` grey levels or less (in every channel) is
    ``IGNORE``, left out of the loss. Why: ``damage.synthesize``'s ground truth counts every
    change above 2 levels, and a fifth of the scratch and crack pixels changed by 3-8 levels
    lie under grain of that size; asking the net to call them damage teaches it to hedge on
    thin lines. Evaluation still scores against the full ground truth. No random numbers are
    drawn for it, so the crop stream is the same with or without it. The photo may be enlarged
    up to 2x first (scale variety: scans are softer per pixel than the training photos, while
    damage stays sharp). ``clumped``: the
    share of crops, clean or damaged, given ``clumped_grain`` last; ``blown``: the share of photos
    over-exposed (``blown_out``) before the damage; ``bright``: the share with only their
    highlights over-exposed (``blown_bright``); ``speckled``: the share of crops, clean or
    damaged, given ``speckle`` (dense fine specks, labelled dust) before the clumped grain;
    ``scuffed``: the share given ``scuffs`` (a field of short fine scratches, labelled scratches)
    before that. ``turned``: the share of crops given one of the 7 other views of the square
    (quarter turns, each mirrored or not), crop and targets alike, last: scans come turned, and
    v8, trained without it, scores a scratch by which way it runs (session 27). All 0 in v4's
    recipe; detector_v7's last stages used clumped 0.25 and bright 0.2."""
    if rng.random() < 0.35:
        f = rng.uniform(1.0, 2.0)
        img = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    img = archive_look(np.ascontiguousarray(img), rng, 0.6)
    if blown and rng.random() < blown:  # (as for clumped below)
        img = blown_out(img, rng)
    if bright and rng.random() < bright:  # (as for clumped below)
        img = blown_bright(img, rng)
    h, w = img.shape[:2]
    target = np.zeros((len(CHANNELS), h, w), bool)
    faint = None
    if rng.random() >= clean_share:
        d = synthesize(img, rng)
        if ignore:
            faint = np.abs(d.damaged.astype(np.int16) - img.astype(np.int16)).max(axis=2) <= ignore
        img = d.damaged
        for c, kinds in enumerate(CHANNELS.values()):
            for k in kinds:
                if k in d.kind_masks:
                    target[c] |= d.kind_masks[k]
        if rng.random() < 0.5:  # grain over the damage as well
            img = _add_grey(img, rng.normal(0.0, rng.uniform(1.0, 4.0), (h, w)).astype(np.float32))
    if scuffed and rng.random() < scuffed:  # (as for clumped below)
        img, lines = scuffs(img, rng)
        target[0] |= lines
    if speckled and rng.random() < speckled:  # (as for clumped below)
        img, specks = speckle(img, rng)
        target[1] |= specks
    if clumped and rng.random() < clumped:  # at 0 no number is drawn: the shipped recipe's stream stays as it was
        img = clumped_grain(img, rng)
    y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    crop = (slice(y, y + size), slice(x, x + size))
    target = target[(slice(None), *crop)]
    if ignore:  # marked on the crop only, not on the whole (possibly enlarged) photo
        t = target.astype(np.uint8)
        if faint is not None:
            t[target & faint[crop]] = IGNORE
        target = t
    out = img[crop]
    if turned and rng.random() < turned:  # (as for clumped above)
        view = int(rng.integers(1, 8))
        k, mirror = view % 4, view >= 4
        out, target = np.rot90(out, k, axes=(0, 1)), np.rot90(target, k, axes=(1, 2))
        if mirror:
            out, target = out[:, ::-1], target[:, :, ::-1]
    return np.ascontiguousarray(out), np.ascontiguousarray(target)


def _add_grey(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """(H,W,3) uint8 plus an (H,W) float32 field on every channel, rounded and clipped to uint8."""
    return np.clip(img.astype(np.float32) + g[..., None] + 0.5, 0, 255).astype(np.uint8)


def blown_out(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H,W,3) uint8 -> the same over-exposed (gain 1.2-1.8 on all channels, clipped at 255): the
    flat, grain-free whites of blown skies, white clothes and walls that real scans have and that
    are not damage."""
    return np.clip(img.astype(np.float32) * rng.uniform(1.2, 1.8) + 0.5, 0, 255).astype(np.uint8)


def blown_bright(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H,W,3) uint8 -> the same with only its brightest region over-exposed: the gain (1.2-1.8)
    is weighted by a smooth ramp of the blurred luminance from its 60th to its 90th percentile,
    at least 48 grey levels wide (a ramp as narrow as the percentiles broke a softly shaded grey
    backdrop into white, stain-like blobs). Highlights clip to flat white; mid-tones and shadows,
    and their texture, stay as they were (``blown_out`` scales the whole photo)."""
    lum = cv2.GaussianBlur(img.astype(np.float32).mean(axis=2), (0, 0), 6.0)
    lo, hi = np.percentile(lum, (60, 90))
    w = np.clip((lum - lo) / max(float(hi - lo), 48.0), 0.0, 1.0)
    w = w * w * (3 - 2 * w)  # smoothstep
    gain = 1.0 + (rng.uniform(1.2, 1.8) - 1.0) * w
    return np.clip(img.astype(np.float32) * gain[..., None] + 0.5, 0, 255).astype(np.uint8)


def clumped_grain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H,W,3) uint8 -> the same with a scan's clumped silver grain over everything (damage
    included): white noise blurred to 1-3 px clumps, then scaled to a std of 2-7 grey levels, so
    speckled skies and walls carry many small bright and dark specks that are not dust."""
    g = cv2.GaussianBlur(rng.normal(0.0, 1.0, img.shape[:2]).astype(np.float32), (0, 0), rng.uniform(0.6, 1.4))
    g *= rng.uniform(2.0, 7.0) / max(float(g.std()), 1e-6)
    return _add_grey(img, g)


def scuffs(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H,W,3) uint8 -> (the same with a field of short fine scratches, (H,W) bool: the pixels
    they changed by more than ``damage.DIFF_THRESHOLD`` levels, the scratches label).

    Real scratched prints (``old_photos/scratched``; bd_h's sky) often carry dozens of short, fine,
    mostly white scratches sharing a direction, with no long scratch at all. ``damage.py`` draws
    such scuffs only beside its long scratches; detector_v8 flags almost none of bd_h's, although
    it finds synthetic scratches pasted into the same photo (docs/quality.md, session 17). Here: 8-40 scratches per 256 px square of photo (at
    least 8), 3-15 % of its diagonal long, 70 % within about 15 degrees of one direction, 1 px
    (a fifth 2 px), 85 % white, at 0.4-1 intensity along a smooth profile, slightly softened."""
    from archive_restore.damage import _bright_colour, _curve, _dark_colour, _draw_stroke, _smooth_profile, _to_alpha, changed, is_grey, paint

    h, w = img.shape[:2]
    diag = float(np.hypot(h, w))
    n = max(8, int(rng.integers(8, 41) * (h * w / 65536.0) ** 0.5))
    main = rng.uniform(0, np.pi)
    out, grey = img.astype(np.float32), is_grey(img)
    for white in (True, False):
        canvas = np.zeros((h, w), np.uint8)
        for _ in range(n):
            if (rng.random() < 0.85) != white:
                continue
            a = main + rng.normal(0, 0.25) if rng.random() < 0.7 else rng.uniform(0, np.pi)
            p0 = np.array([rng.uniform(0, w), rng.uniform(0, h)])
            pts = _curve(rng, p0, a, diag * rng.uniform(0.03, 0.15), rng.normal(0, 0.02))
            inten = rng.uniform(0.4, 1.0) * np.clip(0.4 + 0.8 * _smooth_profile(rng, len(pts), 4), 0, 1)
            _draw_stroke(canvas, pts, inten, 1 if rng.random() < 0.8 else 2)
        alpha = _to_alpha(canvas, blur=float(rng.uniform(0.0, 0.5)))
        out = paint(out, [(alpha, _bright_colour(rng) if white else _dark_colour(rng))], rng, grey)
    res = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return res, changed(img, res)


def speckle(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(H,W,3) uint8 -> (the same with dense fine specks, (H,W) bool: the pixels they changed by
    more than ``damage.DIFF_THRESHOLD`` levels in some channel, the dust label).

    Real scratched prints (``old_photos/scratched``; bd_h's sky, for one) carry dust as thousands
    of 1-2 px specks, mostly white, over about 0.2-3 % of the photo, where ``damage.py``'s dust
    draws tens of soft 1-8 px specks per 256 px crop. detector_v8, trained on those alone, scores
    such a sky as clean, and 1 % of white 1-px specks over synthetic scratches halve the scratch
    pixels it scores above 0.95 (docs/quality.md, session 17). Here: a density drawn
    log-uniformly in [0.2 %, 3 %] of the pixels, three quarters of the specks white (215-255),
    the rest near-black (5-60), neutral grey in every channel, a quarter of them 2 px, at alpha
    0.5-1, soft (Gaussian 0.3-0.5 px) in 40 % of the photos."""
    from archive_restore.damage import changed

    h, w = img.shape[:2]
    n = int(rng.poisson(np.exp(rng.uniform(np.log(0.002), np.log(0.03))) * h * w))
    ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
    alpha = rng.uniform(0.5, 1.0, n).astype(np.float32)
    white = rng.random(n) < 0.75
    level = np.where(white, rng.uniform(215, 255, n), rng.uniform(5, 60, n)).astype(np.float32)
    a = np.zeros((h, w), np.float32)
    c = np.zeros((h, w), np.float32)
    two = rng.random(n) < 0.25
    horiz = rng.random(n) < 0.5
    for dy, dx, sel in ((0, 0, np.ones(n, bool)), (1, 0, two & ~horiz), (0, 1, two & horiz)):
        y, x = np.minimum(ys[sel] + dy, h - 1), np.minimum(xs[sel] + dx, w - 1)
        a[y, x], c[y, x] = alpha[sel], level[sel]
    if rng.random() < 0.4:
        sigma = float(rng.uniform(0.3, 0.5))
        wsum = cv2.GaussianBlur(a, (0, 0), sigma)
        c = cv2.GaussianBlur(a * c, (0, 0), sigma) / np.maximum(wsum, 1e-6)
        a = np.clip(wsum * 2.0, 0.0, 1.0)
    out = img.astype(np.float32) * (1.0 - a[..., None]) + (a * c)[..., None]
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    return out, changed(img, out)


class Crops(torch.utils.data.IterableDataset):
    """Endless (image (3,S,S) float [0,1], target (4,S,S) {0,1}) pairs; the stream is a function
    of (seed, worker): a run seeds it with its starting step, so a resumed run draws new crops."""

    def __init__(self, files: list[Path], size: int, seed: int, **looks: float):
        """``looks``: ``damaged_crop``'s keyword shares (clumped, blown, bright, ignore, speckled,
        scuffed, turned), passed on as they are."""
        self.size, self.seed, self.looks = size, seed, looks
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(f.parent.name, []).append(f)
        self.groups = [groups[k] for k in sorted(groups)]
        others = sum(k != "utkface" for k in groups)
        face = FACE_SHARE / (1 - FACE_SHARE) * others
        w = np.array([face if k == "utkface" else 1.0 for k in sorted(groups)])
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
            im, t = damaged_crop(img, rng, self.size, **self.looks)
            yield (torch.from_numpy(im.transpose(2, 0, 1).copy()).float() / 255, torch.from_numpy(t.astype(np.float32)))


def focal_bce(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Mean focal loss (Lin et al. 2017) of (B,C,H,W) logits against {0,1} targets of the same
    shape (``IGNORE`` marks pixels left out: the mean is over the others): each pixel's BCE
    times (1 - p_t)^gamma, p_t the probability given to the true class.
    gamma 0 is plain BCE. Why: the thresholds are set by the rare clean pixels the net scores
    highest (edges, wires) and the damage it scores lowest; plain BCE spends most of its weight on
    the millions of easy clean pixels, the focal weight moves it to those hard ones."""
    keep = target != IGNORE
    target = target * keep
    bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if gamma:
        p = torch.sigmoid(logits)
        p_t = p * target + (1 - p) * (1 - target)
        bce = (1 - p_t).pow(gamma) * bce
    return (bce * keep).sum() / keep.sum().clamp(min=1)


def cosine_factor(frac: float) -> float:
    """The learning-rate factor ``frac`` (0..1) of the way along a half cosine from 1 to 5 %."""
    return float(0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))


def load_matching(net: nn.Module, weights: dict) -> dict:
    """Load into ``net`` the tensors of ``weights`` whose names and shapes it has (the rest keep
    their initialisation). Returns the tensors taken."""
    own = net.state_dict()
    taken = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    net.load_state_dict(taken, strict=False)
    return taken


def _device(name: str) -> torch.device:
    """The generator's ``inpaint.train.resolve_device``: cpu, cuda (which must be there: no
    silent fall-back to the CPU) or auto."""
    from archive_restore.inpaint.train import resolve_device

    return resolve_device(name)


def _autocast(dev: torch.device):
    """bfloat16 autocast on CUDA (the losses are taken in float32); nothing on the CPU."""
    import contextlib

    return torch.autocast("cuda", dtype=torch.bfloat16) if dev.type == "cuda" else contextlib.nullcontext()


def _tick(run: Path, state: dict, step: int, ema: float, opt, t0: float, last: float, done: bool) -> float:
    """After a training step: write ``state`` to RUN/last.pt (atomically) every 250 steps and at
    the end, print progress once a minute and at the end. Returns the time of the last print."""
    if step % 250 == 0 or done:
        torch.save(state, run / "tmp.pt")
        (run / "tmp.pt").replace(run / "last.pt")
    if time.monotonic() - last > 60 or done:
        last = time.monotonic()
        print(f"step {step} loss {ema:.4f} lr {opt.param_groups[0]['lr']:.2e} {(last - t0) / 60:.1f} min", flush=True)
    return last


def train(run: Path, minutes: float, size: int = 128, batch: int = 16, root: Path = TRAIN_ROOT, lr: float = 1e-3,
          arch: str = "unet", cosine: bool = False, init_from: Path | None = None, clumped: float = 0.0,
          blown: float = 0.0, focal: float = 0.0, bright: float = 0.0, ignore: float = 0.0, steps: int = 0,
          threads: int = 2, speckled: float = 0.0, scuffed: float = 0.0, device: str = "cpu", workers: int = 1,
          turned: float = 0.0, average: float = 0.0) -> None:
    """Train (or resume) RUN/last.pt for ``minutes`` of wall time, or for ``steps`` steps from
    where it starts when ``steps`` > 0 (then the cosine runs over the steps, so two runs sharing
    the CPU get the same schedule); checkpoints every 250 steps.
    ``lr`` also replaces a resumed optimizer's rate (to anneal a continued run); ``cosine``
    lowers it along a half cosine over the ``minutes`` to 5 % of ``lr``. A resumed run keeps the
    checkpoint's architecture. ``init_from``: a new run (no RUN/last.pt yet) starts from that
    checkpoint's weights where names and shapes match (e.g. unet_ctx from a v2 checkpoint: the
    new context branch starts at zero), a fresh optimizer, and the checkpoint's step count.
    ``clumped``, ``blown``, ``bright``: shares of crops given ``clumped_grain`` / ``blown_out`` /
    ``blown_bright`` (0 = v4's recipe; detector_v7 trained with clumped 0.25 throughout its last
    139 minutes and bright 0.2 in the final 24). ``focal``: the focal loss's gamma (``focal_bce``;
    0 = plain BCE, the shipped recipe). ``ignore``: leave damage pixels changed by this many grey
    levels or less out of the loss (``damaged_crop``; 0 = every ground-truth pixel, the shipped
    recipe). ``turned``: the share of crops turned and/or mirrored (``damaged_crop``; 0 = every
    shipped detector up to v8). ``speckled``, ``scuffed``: the shares of crops given ``speckle`` and ``scuffs`` (0 =
    every shipped detector up to v8). ``threads``: torch's intra-op threads. ``device``: "cpu" or
    "cuda" (a GPU lease: bfloat16 autocast, checkpoints load on either); ``workers``: processes
    drawing the damaged crops (one is enough for the CPU; a GPU needs about one per core).
    ``average`` > 0 (e.g. 0.998): also keep an exponential moving average of the weights,
    ``avg = average * avg + (1 - average) * w`` after each step (started from this run's first
    weights, so a fine-tune's average begins at its init), written with each checkpoint to
    RUN/average.pt, a checkpoint ``export`` reads like any other (no optimizer). A resumed run
    resumes the average from it; 0 = none (every shipped detector up to v8)."""
    if not 0.0 <= average < 1.0:
        raise ValueError(f"average must be in [0, 1), not {average}")
    torch.set_num_threads(threads)
    dev = _device(device)
    run.mkdir(parents=True, exist_ok=True)
    files = training_files(root)
    print(f"{len(files)} training photos (harness and calibration photos held out)", flush=True)
    ck = run / "last.pt"
    state = torch.load(ck, weights_only=True, map_location="cpu") if ck.exists() else None
    arch = state.get("arch", "unet") if state else arch
    net = ARCHS[arch]().to(dev)
    opt = torch.optim.Adam(net.parameters(), lr)
    step = 0
    if state:
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        for g in opt.param_groups:
            g["lr"] = lr
        step = int(state["step"])
        if init_from is not None:
            print(f"resuming {ck}: --init-from {init_from} is ignored", flush=True)
    elif init_from is not None:
        src = torch.load(init_from, weights_only=True, map_location="cpu")
        weights = src["net"] if "net" in src else src
        own = net.state_dict()
        taken = load_matching(net, weights)
        if not taken:
            raise ValueError(f"{init_from}: no weights match arch {arch}")
        step = int(src.get("step", 0)) if "net" in src else 0
        print(f"initialised {len(taken)}/{len(own)} tensors from {init_from} (step {step}); new: "
              + (", ".join(sorted({k.split('.')[0] for k in own if k not in taken})) or "none"), flush=True)
    recipe = {"clumped": clumped, "blown": blown, "focal": focal, "bright": bright, "ignore": ignore,
              "speckled": speckled, "scuffed": scuffed, "turned": turned}  # saved in checkpoints (absent: 0, v4's recipe)
    if state and (was := {k: float(state.get(k, 0.0)) for k in recipe}) != recipe:
        print(f"note: {ck} was trained with {was}; this run uses {recipe}", flush=True)
    print(f"arch {arch}, {sum(p.numel() for p in net.parameters()) / 1e6:.3f} M parameters, from step {step},"
          f" clumped grain {clumped}, blown {blown}, blown bright {bright}, focal gamma {focal}, ignore <= {ignore} levels,"
          f" speckled {speckled}, scuffed {scuffed}, turned {turned}", flush=True)
    looks = {k: v for k, v in recipe.items() if k != "focal"}
    loader = torch.utils.data.DataLoader(Crops(files, size, step, **looks), batch_size=batch, num_workers=max(1, workers),
                                         pin_memory=dev.type == "cuda")
    avg = None
    if average:
        saved = run / "average.pt"
        start_from = torch.load(saved, weights_only=True, map_location="cpu")["net"] if state and saved.exists() else net.state_dict()
        avg = {k: v.detach().to(dev, torch.float32).clone() for k, v in start_from.items()}
    t0 = last = time.monotonic()
    start = step
    ema = None
    for x, y in loader:
        if cosine:
            frac = min(1.0, (step - start) / steps if steps else (time.monotonic() - t0) / (minutes * 60))
            for g in opt.param_groups:
                g["lr"] = lr * cosine_factor(frac)
        x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
        with _autocast(dev):
            logits = net(x)
        loss = focal_bce(logits.float(), y, focal)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if avg is not None:
            with torch.no_grad():
                for k, v in net.state_dict().items():
                    if v.is_floating_point():
                        avg[k].lerp_(v.float(), 1.0 - average)
                    else:
                        avg[k].copy_(v)
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        done = step - start >= steps if steps else time.monotonic() - t0 > minutes * 60
        if avg is not None and (step % 250 == 0 or done):
            torch.save({"net": {k: v.cpu() for k, v in avg.items()}, "step": step, "arch": arch, "average": average, **recipe},
                       run / "average.tmp")
            (run / "average.tmp").replace(run / "average.pt")
        last = _tick(run, {"net": net.state_dict(), "opt": opt.state_dict(), "step": step, "arch": arch, **recipe},
                     step, ema, opt, t0, last, done)
        if done:
            break


def distill(run: Path, teacher_ckpt: Path, minutes: float, size: int = 192, batch: int = 12, root: Path = TRAIN_ROOT,
            lr: float = 5e-4, trunk_lr: float = 1e-4, clumped: float = 0.25, bright: float = 0.2, threads: int = 2,
            clip: float = 8.0, init_from: Path | None = None, views: str = "", device: str = "cpu", workers: int = 1) -> None:
    """Train (or resume) RUN/last.pt, a ``SplitDecoderDetector`` built from the ``ContextDetector``
    checkpoint ``teacher_ckpt`` (``from_context``), for ``minutes`` of wall time, by mean squared
    error between the student's and the teacher's logits, both clipped to [-``clip``, ``clip``]
    (the thresholds lie at logits -0.4 to 3.9; beyond 8 nothing changes). The new decoder and
    the head learn at ``lr``, the encoder and context branch (the teacher's weights) at
    ``trunk_lr``; both anneal along a half cosine to 5 %. The crops are the teacher's training
    looks (``Crops``; ``clumped``, ``bright``: detector_v7's last stage), held-out photos
    excluded; ground truth is not used. ``init_from``: a new run starts from that student
    checkpoint's weights where names and shapes match (a fresh optimizer). Checkpoints every 250
    steps carry the teacher's step as "step" and the distillation's as "distill_step".

    ``views`` "dihedral" (self-distillation, session 27): the teacher may be a ``SplitDecoderDetector``
    too, and then the student starts as its copy; the target is the teacher's probability averaged
    over views of the crop (``view_average``: the 8 flips and transposes for the scratches and dust
    channels, the 4 flips for text and blotches, which it has not seen turned), so the student
    learns the agreement of its own views in one pass. ``device``, ``workers``: as ``train``'s."""
    torch.set_num_threads(threads)
    dev = _device(device)
    run.mkdir(parents=True, exist_ok=True)
    tstate = torch.load(teacher_ckpt, weights_only=True, map_location="cpu")
    teacher = from_state(tstate, teacher_ckpt)
    if views not in ("", "dihedral"):
        raise ValueError(f"views must be '' or 'dihedral', not {views!r}")
    own = views and isinstance(teacher, SplitDecoderDetector)
    if not own and (not isinstance(teacher, ContextDetector) or isinstance(teacher, SplitDecoderDetector)):
        raise ValueError(f"{teacher_ckpt}: the teacher must be a unet_ctx checkpoint (or unet_ctx_split with views)")
    for q in teacher.parameters():
        q.requires_grad_(False)
    tstep = int(tstate.get("step", 0))
    net = from_state(tstate, teacher_ckpt) if own else SplitDecoderDetector.from_context(teacher)  # own: its copy
    teacher, net = teacher.to(dev), net.to(dev)
    decoder = ("d2a", "d2b", "d1a", "d1b", "d1c", "out")
    groups = [{"params": [q for n, q in net.named_parameters() if n.split(".")[0] in decoder], "base": lr},
              {"params": [q for n, q in net.named_parameters() if n.split(".")[0] not in decoder], "base": trunk_lr}]
    opt = torch.optim.Adam([{"params": g["params"], "lr": g["base"]} for g in groups])
    ck = run / "last.pt"
    step = 0
    if ck.exists():
        state = torch.load(ck, weights_only=True, map_location="cpu")
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step = int(state["distill_step"])
    elif init_from is not None:
        taken = load_matching(net, torch.load(init_from, weights_only=True, map_location="cpu")["net"])
        print(f"initialised {len(taken)}/{len(net.state_dict())} tensors from {init_from}", flush=True)
    print(f"student {sum(q.numel() for q in net.parameters())} parameters, from distillation step {step}", flush=True)
    net.train()
    loader = torch.utils.data.DataLoader(Crops(training_files(root), size, 10_000_000 + step, clumped=clumped, bright=bright),
                                         batch_size=batch, num_workers=max(1, workers), pin_memory=dev.type == "cuda")
    t0 = last = time.monotonic()
    ema = None
    for x, _ in loader:
        frac = min(1.0, (time.monotonic() - t0) / (minutes * 60))
        for g, spec in zip(opt.param_groups, groups):
            g["lr"] = spec["base"] * cosine_factor(frac)
        x = x.to(dev, non_blocking=True)
        with torch.no_grad(), _autocast(dev):
            target = (view_average(teacher, x) if views else teacher(x)).float().clamp(-clip, clip)
        with _autocast(dev):
            out = net(x)
        loss = F.mse_loss(out.float().clamp(-clip, clip), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        done = time.monotonic() - t0 > minutes * 60
        last = _tick(run, {"net": net.state_dict(), "opt": opt.state_dict(), "step": tstep, "teacher_step": tstep, "distill_step": step,
                           "arch": "unet_ctx_split", "teacher": str(teacher_ckpt), "clumped": clumped, "bright": bright, "views": views},
                     step, ema, opt, t0, last, done)
        if done:
            break


# the views of a square crop that ``view_average`` averages, as (transpose, flip rows, flip columns);
# each is its own inverse once transposed back
DIHEDRAL = [(t, fr, fc) for t in (False, True) for fr in (False, True) for fc in (False, True)]
TURNED_CHANNELS = (0, 1)  # scratches and dust: no preferred orientation; text and blotches (2, 3) keep
# to the flips (text turned a quarter is not what the network learned, and scored .74 F1 averaged so)


def view_average(net: nn.Module, x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x: (N,3,S,S) RGB in [0,1] -> (N,4,S,S) logits of ``net``'s probability averaged over views
    of x: all 8 ``DIHEDRAL`` views for ``TURNED_CHANNELS``, the 4 without a transpose for the others."""
    turned, flips = [], []
    for t, fr, fc in DIHEDRAL:
        v = x.transpose(2, 3) if t else x
        dims = [d for d, on in ((2, fr), (3, fc)) if on]
        v = v.flip(dims) if dims else v
        p = torch.sigmoid(net(v).float())
        p = p.flip(dims) if dims else p
        p = p.transpose(2, 3) if t else p
        turned.append(p)
        if not t:
            flips.append(p)
    p8, p4 = torch.stack(turned).mean(0), torch.stack(flips).mean(0)
    n = len(TURNED_CHANNELS)
    assert TURNED_CHANNELS == tuple(range(n))  # the turned channels come first: a slice, on any device
    p = torch.cat([p8[:, :n], p4[:, n:]], 1).clamp(eps, 1 - eps)
    return torch.log(p) - torch.log1p(-p)


def load(ckpt: Path) -> nn.Module:
    """A trained detector from a checkpoint (``torch.load(weights_only=True)``: no pickled code);
    its class is ``ARCHS[checkpoint["arch"]]`` (v2 checkpoints have no "arch": the U-Net)."""
    return from_state(torch.load(ckpt, weights_only=True, map_location="cpu"), ckpt)


def from_state(state: dict, ckpt: Path | str = "checkpoint") -> nn.Module:
    """``load``'s network from an already loaded checkpoint dict (``ckpt`` names it in errors)."""
    arch = state.get("arch", "unet") if "net" in state else "unet"
    if arch not in ARCHS:
        raise ValueError(f"{ckpt}: unknown detector architecture {arch!r}; known: {sorted(ARCHS)}")
    net = ARCHS[arch]()
    net.load_state_dict(state["net"] if "net" in state else state)
    return net.eval()


def _quantize(fp32: Path, out: Path, files: list[Path] | None = None) -> dict:
    """Write an int8 copy of the fp32 graph ``fp32`` to ``out`` (ONNX Runtime static
    quantization, QDQ, 7-bit weights per channel; the final Sigmoid stays float so the probabilities
    keep their resolution near the thresholds). Activation ranges come from 32 damaged crops
    of training photos (``files``: the photos to draw them from, default the training set).
    Returns how far the int8 probabilities lie from the fp32 ones on 16
    other crops (mean and 99.9th percentile of the absolute difference)."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    if files is None:
        files = training_files()
    rng = np.random.default_rng(4)
    picks = [files[i] for i in rng.choice(len(files), 48, replace=len(files) < 48)]
    crops = []
    for f in picks:
        im = read_rgb(f)
        if min(im.shape[:2]) >= 192:
            crops.append(np.ascontiguousarray(damaged_crop(im, rng, 192)[0].transpose(2, 0, 1)[None], np.float32) / 255)

    class Reader(CalibrationDataReader):
        def __init__(self, xs):
            self.xs = iter(xs)

        def get_next(self):
            x = next(self.xs, None)
            return None if x is None else {"image": x}

    sig = [n.name for n in onnx.load(str(fp32)).graph.node if n.op_type == "Sigmoid"]
    quantize_static(str(fp32), str(out), Reader(crops[:32]), quant_format=QuantFormat.QDQ, per_channel=True,
                    reduce_range=True,  # 7-bit weights: see inpaint.export.INT8_WEIGHTS
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=sig)
    a = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    d = np.concatenate([np.abs(a.run(None, {"image": x})[0] - b.run(None, {"image": x})[0]).ravel() for x in crops[32:]])
    return {"mean_abs_diff": round(float(d.mean()), 5), "p999_abs_diff": round(float(np.quantile(d, 0.999)), 4), "crops": len(crops) - 32}


def export(ckpt: Path, out: Path, int8: bool = False, int8_files: list[Path] | None = None) -> None:
    """Write the detector as ONNX (dynamic H/W, multiples of the net's ``multiple``) and check it
    against torch (refused above 1e-4), with a JSON sidecar (channels, provenance;
    ``scripts/detector_calibrate.py`` adds thresholds). int8: the file written is the
    quantized graph (``_quantize``; its distance from fp32 goes into the sidecar), which the
    thresholds are then calibrated on."""
    import json

    import onnxruntime as ort

    step = int(torch.load(ckpt, weights_only=True, map_location="cpu").get("step", -1))
    det = load(ckpt)
    net = Probabilities(det).eval()
    x = torch.rand(1, 3, 96, 128)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.onnx")
    torch.onnx.export(net, (x,), str(tmp), input_names=["image"], output_names=["prob"], opset_version=17,
                      dynamic_axes={"image": {2: "h", 3: "w"}, "prob": {2: "h", 3: "w"}}, dynamo=False)
    sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    for shape in ((1, 3, 96, 128), (1, 3, 208, 144)):
        x = torch.rand(*shape)
        with torch.no_grad():
            ref = net(x).numpy()
        got = sess.run(None, {"image": x.numpy()})[0]
        err = float(np.abs(ref - got).max())
        if err > 1e-4:
            raise RuntimeError(f"ONNX export differs from torch by {err} at {shape}")
    quant = None
    if int8:
        q = out.with_suffix(".int8.tmp.onnx")
        quant = _quantize(tmp, q, int8_files)
        q.replace(out)
        tmp.unlink()
    else:
        tmp.replace(out)
    meta = {"channels": list(CHANNELS), "multiple": det.multiple, "context": det.context,
            "input": f"(1,3,H,W) float RGB in [0,1], H and W multiples of {det.multiple}",
            "output": "(1,4,H,W) damage probability per channel", "step": step,
            "trained_by": "python -m archive_restore.masks.net train RUN --minutes M", "thresholds": {}}
    if quant:
        meta["int8"] = quant
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB), fp32 parity checked" + (f"; int8 vs fp32 {quant}" if quant else ""))


def main(argv: list[str]) -> None:
    if not argv or "-h" in argv or "--help" in argv or (len(argv) > 1 and argv[1].startswith("-")):
        raise SystemExit(__doc__)  # usage, never a run into a folder named like an option
    opt = {k: argv[argv.index(k) + 1] for k in ("--minutes", "--size", "--batch", "--data", "--lr", "--arch", "--init-from", "--clumped-grain", "--blown", "--focal",
                                                 "--blown-bright", "--ignore", "--steps", "--threads", "--trunk-lr", "--speckle", "--scuffs", "--views", "--device", "--workers", "--turned", "--average") if k in argv}
    if argv and argv[0] == "train":
        train(Path(argv[1]), float(opt.get("--minutes", 120)), int(opt.get("--size", 128)), int(opt.get("--batch", 16)),
              Path(opt.get("--data", TRAIN_ROOT)), float(opt.get("--lr", 1e-3)), opt.get("--arch", "unet"), "--cosine" in argv,
              Path(opt["--init-from"]) if "--init-from" in opt else None, float(opt.get("--clumped-grain", 0.0)),
              float(opt.get("--blown", 0.0)), float(opt.get("--focal", 0.0)), float(opt.get("--blown-bright", 0.0)),
              float(opt.get("--ignore", 0.0)), int(opt.get("--steps", 0)), int(opt.get("--threads", 2)),
              float(opt.get("--speckle", 0.0)), float(opt.get("--scuffs", 0.0)), opt.get("--device", "cpu"), int(opt.get("--workers", 1)),
              float(opt.get("--turned", 0.0)), float(opt.get("--average", 0.0)))
    elif argv and argv[0] == "distill":
        distill(Path(argv[1]), Path(argv[2]), float(opt.get("--minutes", 60)), int(opt.get("--size", 192)), int(opt.get("--batch", 12)),
                Path(opt.get("--data", TRAIN_ROOT)), float(opt.get("--lr", 5e-4)), float(opt.get("--trunk-lr", 1e-4)),
                float(opt.get("--clumped-grain", 0.25)), float(opt.get("--blown-bright", 0.2)), int(opt.get("--threads", 2)),
                init_from=Path(opt["--init-from"]) if "--init-from" in opt else None, views=opt.get("--views", ""),
                device=opt.get("--device", "cpu"), workers=int(opt.get("--workers", 1)))
    elif argv and argv[0] == "export":
        export(Path(argv[1]), Path(argv[2]), "--int8" in argv)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
