"""Generators and discriminators (PyTorch), and the one factory that builds them.

Contract shared by every generator: ``forward(image, mask) -> image`` with
image ``(B,3,H,W)`` float32 in [0,1], RGB, whose hole already carries the classical
pre-fill named in ``ModelConfig.prefill`` (see ``archive_restore.prefill``), and
mask ``(B,1,H,W)`` float32 in {0,1}, 1 = fill. The output is ``(B,3,H,W)`` in [0,1]
and equals the input outside the mask: blending the prediction into the known pixels
happens here, inside ``forward``, so training, export and the runtime share it.
Any H and W work: the generators pad internally to their multiple and crop back.

Why the default ``gated_unet`` looks the way it does:
- *Gated convolutions* (Yu et al., "Free-Form Image Inpainting with Gated Convolution")
  learn per-pixel, per-channel how much to trust each input, which suits free-form masks
  from 1-pixel scratches to large tears better than vanilla convs that treat hole pixels
  like valid ones.
- *A U-Net with skips* keeps full-resolution detail around thin damage; *dilated residual
  blocks at 1/8 resolution* (dilations 2, 4, 8) give a receptive field of several hundred
  pixels for large holes without FFTs (which export badly to ONNX and ran slowly in its DFT).
- *Residual on a classical pre-fill*: the network sees OpenCV's Navier-Stokes fill inside the
  hole and predicts a correction (near-zero-initialised head, so an untrained model equals its
  pre-fill). Every training step then goes to texture and structure instead of re-learning
  colour; the issue's measurement of a blank-hole U-Net (still 2-9 dB below TELEA after 30 CPU
  minutes) is why. NS radius 3 was chosen by ``scripts/prefill_options.py`` on 150 training
  crops: masked PSNR scratches/cracks/dust/text/blotches 28.9/31.7/31.0/30.5/24.6 dB vs TELEA's
  28.3/30.2/29.3/29.4/24.2 and a mean-colour hole's 14-15 dB, at 4.3 vs 5.5 ms per 256 px crop.
- Widths (16, 32, 64, 128) are sized for the runtime budget: a 512x512 window in well under
  0.5 s on 2 CPU cores with ONNX Runtime (see ``benchmarks/bench_generator.py``).
- Grayscale and sepia scans: the generator works in RGB; the runtime feeds grayscale scans as
  three equal channels and averages the output back (no colour cast possible), and training
  applies grayscale/sepia/fading so the model meets such scans.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from archive_restore.config import ModelConfig

GENERATORS = ("gated_unet", "context_encoder")
DISCRIMINATORS = ("patchgan",)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, int, int]:
    """Replicate-pad ``x`` (B,C,H,W) on the bottom/right to multiples of ``multiple``.

    Returns the padded tensor and the original H and W (for cropping back).
    """
    h, w = x.shape[-2], x.shape[-1]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="replicate"), h, w


def blend(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Known pixels from ``image``, hole pixels from ``pred``; all (B,C,H,W), mask in {0,1}."""
    return pred * mask + image * (1.0 - mask)


class GatedConv2d(nn.Module):
    """``leaky_relu(conv_f(x)) * sigmoid(conv_g(x))``.

    Two convolutions rather than one conv with 2*out channels and a Split: ONNX Runtime
    fuses each activation into its conv and keeps its blocked (NCHWc) layout, where a Split
    forces layout reorders; measured ~30% faster in ONNX Runtime on this CPU for the same
    parameters. LeakyReLU rather than ELU for the same reason (ELU does not fuse).
    """

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1):
        super().__init__()
        pad = dilation * (k - 1) // 2
        self.feat = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation)
        self.gate = nn.Conv2d(cin, cout, k, stride=stride, padding=pad, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.feat(x), 0.2) * torch.sigmoid(self.gate(x))


class GatedResBlock(nn.Module):
    """``x + GatedConv(x)`` with a dilation: context at 1/8 resolution."""

    def __init__(self, ch: int, dilation: int):
        super().__init__()
        self.body = GatedConv2d(ch, ch, 3, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest 2x upsampling of ``x`` to the spatial size of ``like``."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class GatedUNet(nn.Module):
    """Gated-conv U-Net, 3 downsamplings, dilated residual bottleneck (see module docstring).

    pad multiple: 8 (padded internally).
    """

    pad_multiple = 8

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if len(cfg.widths) != 4:
            raise ValueError(f"gated_unet needs 4 widths, got {cfg.widths}")
        w0, w1, w2, w3 = cfg.widths
        self.residual = cfg.residual
        self.enc0 = GatedConv2d(4, w0, 5)
        self.enc1 = nn.Sequential(GatedConv2d(w0, w1, 3, stride=2), GatedConv2d(w1, w1, 3))
        self.enc2 = nn.Sequential(GatedConv2d(w1, w2, 3, stride=2), GatedConv2d(w2, w2, 3))
        self.enc3 = GatedConv2d(w2, w3, 3, stride=2)
        self.bottleneck = nn.Sequential(*[GatedResBlock(w3, d) for d in cfg.bottleneck_dilations])
        self.dec2 = GatedConv2d(w3 + w2, w2, 3)
        self.dec1 = GatedConv2d(w2 + w1, w1, 3)
        self.dec0 = GatedConv2d(w1 + w0, w0, 3)
        self.head = nn.Conv2d(w0, 3, 3, padding=1)
        if self.residual:
            # near-zero, not zero: an untrained model equals its pre-fill to ~1e-3, yet
            # gradients reach every layer from the first step.
            nn.init.normal_(self.head.weight, std=1e-4)
            nn.init.zeros_(self.head.bias)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (B,3,H,W) in [0,1] (hole pre-filled), mask (B,1,H,W) in {0,1} -> (B,3,H,W) in [0,1]."""
        x, h, w = pad_to_multiple(torch.cat([image * 2.0 - 1.0, mask], dim=1), self.pad_multiple)
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        b = self.bottleneck(self.enc3(e2))
        d2 = self.dec2(torch.cat([_up(b, e2), e2], dim=1))
        d1 = self.dec1(torch.cat([_up(d2, e1), e1], dim=1))
        d0 = self.dec0(torch.cat([_up(d1, e0), e0], dim=1))
        out = self.head(d0)[..., :h, :w]
        pred = (image + out).clamp(0.0, 1.0) if self.residual else torch.sigmoid(out)
        return blend(pred, image, mask)


class ContextEncoder(nn.Module):
    """The source design's baseline (Pathak et al., "Context Encoders"), made fully convolutional.

    Encoder: 5 stride-2 4x4 convs with BatchNorm + LeakyReLU(0.2) (128 -> 4 px at the 128x128
    input it was designed for); a 3x3 conv bottleneck standing in for the channel-wise FC;
    decoder: 5 transposed 4x4 convs with BatchNorm + ReLU, then a sigmoid. It sees the same
    (image, mask) contract; its default config uses a mean-colour hole (``prefill="none"``) and
    no residual, as in the source. pad multiple: 32 (padded internally).
    """

    pad_multiple = 32

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.widths[0]
        chans = [min(w * 2**i, w * 8) for i in range(5)]
        enc: list[nn.Module] = []
        cin = 4
        for i, c in enumerate(chans):
            enc += [nn.Conv2d(cin, c, 4, 2, 1)]
            if i > 0:
                enc += [nn.BatchNorm2d(c)]
            enc += [nn.LeakyReLU(0.2)]
            cin = c
        self.encoder = nn.Sequential(*enc)
        self.bottleneck = nn.Sequential(nn.Conv2d(cin, cin, 3, padding=1), nn.BatchNorm2d(cin), nn.LeakyReLU(0.2))
        dec: list[nn.Module] = []
        for c in reversed([w] + chans[:-1]):
            dec += [nn.ConvTranspose2d(cin, c, 4, 2, 1), nn.BatchNorm2d(c), nn.ReLU()]
            cin = c
        self.decoder = nn.Sequential(*dec)
        self.head = nn.Conv2d(cin, 3, 3, padding=1)
        self.residual = cfg.residual

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """image (B,3,H,W) in [0,1], mask (B,1,H,W) in {0,1} -> (B,3,H,W) in [0,1]."""
        x, h, w = pad_to_multiple(torch.cat([image * 2.0 - 1.0, mask], dim=1), self.pad_multiple)
        out = self.head(self.decoder(self.bottleneck(self.encoder(x))))[..., :h, :w]
        pred = (image + torch.tanh(out)).clamp(0.0, 1.0) if self.residual else torch.sigmoid(out)
        return blend(pred, image, mask)


class PatchGAN(nn.Module):
    """Spectral-normalised PatchGAN on (image, mask): one real/fake logit per ~70x70 patch.

    forward(image (B,3,H,W) in [0,1], mask (B,1,H,W)) -> (logits (B,1,H/8,W/8), features list)
    The features feed a feature-matching loss; the mask input lets it focus on filled regions.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        sn = nn.utils.spectral_norm
        chans = [width, width * 2, width * 4, width * 4]
        layers = []
        cin = 4
        for i, c in enumerate(chans):
            stride = 2 if i < 3 else 1
            layers.append(nn.Sequential(sn(nn.Conv2d(cin, c, 4, stride, 1)), nn.LeakyReLU(0.2)))
            cin = c
        self.layers = nn.ModuleList(layers)
        self.out = sn(nn.Conv2d(cin, 1, 4, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = torch.cat([image * 2.0 - 1.0, mask], dim=1)
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return self.out(x), feats


def default_config(arch: str) -> ModelConfig:
    """The default ``ModelConfig`` for an architecture name; unknown names raise ``ValueError``."""
    if arch == "gated_unet":
        return ModelConfig()
    if arch == "context_encoder":
        return ModelConfig(arch="context_encoder", widths=(64,), bottleneck_dilations=(), prefill="none", residual=False)
    raise ValueError(f"unknown generator {arch!r}; choose from {GENERATORS}")


def sized_config(cfg: ModelConfig, widths: str | None = None, dilations: str | None = None) -> ModelConfig:
    """``cfg`` with its gated_unet widths and/or bottleneck dilations replaced, each given as
    comma-separated positive integers ("24,48,96,192"); None keeps the field. Raises
    ``ValueError`` on malformed lists, on a width count other than 4, and for other archs."""

    def ints(text: str, name: str) -> tuple[int, ...]:
        try:
            vals = tuple(int(v) for v in text.split(","))
        except ValueError:
            raise ValueError(f"--{name} must be comma-separated integers, got {text!r}") from None
        if not vals or min(vals) < 1:
            raise ValueError(f"--{name} must be positive integers, got {text!r}")
        return vals

    if widths is None and dilations is None:
        return cfg
    if cfg.arch != "gated_unet":
        raise ValueError(f"--widths and --dilations apply to gated_unet, not {cfg.arch}")
    out = cfg
    if widths is not None:
        w = ints(widths, "widths")
        if len(w) != 4:
            raise ValueError(f"--widths needs 4 values (full, 1/2, 1/4, 1/8 resolution), got {len(w)}")
        out = replace(out, widths=w)
    if dilations is not None:
        out = replace(out, bottleneck_dilations=ints(dilations, "dilations"))
    return out


def build_generator(cfg: ModelConfig) -> nn.Module:
    """The one factory from a ``ModelConfig`` to a generator; unknown names raise ``ValueError``."""
    if cfg.arch == "gated_unet":
        return GatedUNet(cfg)
    if cfg.arch == "context_encoder":
        return ContextEncoder(cfg)
    raise ValueError(f"unknown generator {cfg.arch!r}; choose from {GENERATORS}")


def build_discriminator(name: str = "patchgan", width: int = 64) -> nn.Module:
    """The factory for discriminators; unknown names raise ``ValueError``."""
    if name == "patchgan":
        return PatchGAN(width)
    raise ValueError(f"unknown discriminator {name!r}; choose from {DISCRIMINATORS}")


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
