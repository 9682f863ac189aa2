"""Generators and discriminator: shapes, ranges, blending, gradients, factory errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from archive_restore.config import ModelConfig
from archive_restore.inpaint.model import build_discriminator, build_generator, default_config


def _mask(b: int, h: int, w: int) -> torch.Tensor:
    m = torch.zeros(b, 1, h, w)
    m[:, :, h // 3 : h // 2, :] = 1.0  # a band
    m[:, :, :, w // 5] = 1.0  # a 1-px scratch
    return m


@pytest.mark.parametrize("arch", ["gated_unet", "context_encoder"])
@pytest.mark.parametrize("hw", [(64, 64), (37, 53), (128, 96)])
def test_generator_shape_range_and_blend(arch, hw):
    torch.manual_seed(0)
    model = build_generator(default_config(arch)).eval()
    h, w = hw
    image, mask = torch.rand(2, 3, h, w), _mask(2, h, w)
    with torch.no_grad():
        out = model(image, mask)
    assert out.shape == (2, 3, h, w)
    assert torch.isfinite(out).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    # known pixels are the input, exactly
    assert torch.equal(out * (1 - mask), image * (1 - mask))


def test_untrained_residual_generator_returns_its_prefill():
    """The near-zero head makes an untrained gated_unet equal to its input (the pre-fill)."""
    model = build_generator(ModelConfig()).eval()
    image, mask = torch.rand(1, 3, 48, 48), _mask(1, 48, 48)
    with torch.no_grad():
        out = model(image, mask)
    assert (out - image).abs().max() < 5e-3


@pytest.mark.parametrize("arch", ["gated_unet", "context_encoder"])
def test_every_parameter_gets_a_gradient(arch):
    torch.manual_seed(0)
    model = build_generator(default_config(arch)).train()
    image, mask, target = torch.rand(2, 3, 64, 64), _mask(2, 64, 64), torch.rand(2, 3, 64, 64)
    loss = ((model(image, mask) - target) ** 2).mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not missing, f"no gradient for {missing}"


def test_discriminator_patch_logits_and_gradients():
    d = build_discriminator("patchgan", width=16)
    image, mask = torch.rand(2, 3, 64, 64), _mask(2, 64, 64)
    logits, feats = d(image, mask)
    assert logits.shape[0] == 2 and logits.shape[1] == 1 and logits.shape[-1] > 1
    assert len(feats) == 4
    logits.mean().backward()
    assert all(p.grad is not None for p in d.parameters() if p.requires_grad)


def test_factory_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown generator"):
        build_generator(ModelConfig(arch="resnet9000"))
    with pytest.raises(ValueError, match="unknown discriminator"):
        build_discriminator("stylegan")
    with pytest.raises(ValueError):
        default_config("nope")


@pytest.mark.parametrize("method", ["ns", "telea"])
def test_prefill_reads_only_the_known_pixels(method):
    """cv2.inpaint's solvers (Navier-Stokes and TELEA alike) read a few hole pixels: a training
    crop's fill (made from the clean photo) differed from a scan's (made from the damage). The
    fill must depend on the known pixels only, and leave them as they are."""
    from archive_restore.prefill import prefill

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:96, 0:128]
    img = np.stack([xx * 2, yy * 2, (xx + yy)], -1).astype(np.float64) + rng.normal(0, 6, (96, 128, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    mask = np.zeros((96, 128), np.uint8)
    cv2.circle(mask, (60, 50), 14, 1, -1)
    cv2.line(mask, (0, 5), (127, 90), 1, 2)
    mask = mask.astype(bool)
    white, noisy = img.copy(), img.copy()
    white[mask] = 255
    noisy[mask] = rng.integers(0, 256, (int(mask.sum()), 3))
    a, b, c = (prefill(x, mask, method, 3) for x in (img, white, noisy))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(a[~mask], img[~mask]) and not np.array_equal(a[mask], img[mask])
