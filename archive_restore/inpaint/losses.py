"""Training losses. Tensors are (B,C,H,W) float in [0,1]; masks (B,1,H,W) in {0,1}, 1 = hole.

Hole losses are normalised per sample by the number of hole pixels and then averaged over
the batch, so a 2-pixel scratch weighs as much as a large tear.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _per_sample_masked_mean(err: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``err`` (B,C,H,W) over ``mask`` (B,1,H,W) per sample, then over the batch."""
    num = (err * mask).flatten(1).sum(1)
    den = mask.flatten(1).sum(1) * err.shape[1]
    return (num / den.clamp_min(1.0)).mean()


def hole_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 inside the hole, per-sample normalised."""
    return _per_sample_masked_mean((pred - target).abs(), mask)


def hole_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MSE inside the hole (the source design's reconstruction loss), per-sample normalised."""
    return _per_sample_masked_mean((pred - target) ** 2, mask)


def whole_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 over the whole image (weights large holes more than ``hole_l1``)."""
    return (pred - target).abs().mean()


def dilate(mask: torch.Tensor, r: int) -> torch.Tensor:
    """Grow a (B,1,H,W) {0,1} mask by ``r`` pixels (square element)."""
    return F.max_pool2d(mask, 2 * r + 1, stride=1, padding=r) if r > 0 else mask


def gradient_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 between horizontal and vertical finite differences, on the hole grown by 1 px.

    Pushes fills to carry the edges and grain of the photo rather than a smooth average.
    """
    m = dilate(mask, 1)
    dxp, dxt = pred[..., :, 1:] - pred[..., :, :-1], target[..., :, 1:] - target[..., :, :-1]
    dyp, dyt = pred[..., 1:, :] - pred[..., :-1, :], target[..., 1:, :] - target[..., :-1, :]
    return _per_sample_masked_mean((dxp - dxt).abs(), m[..., :, 1:]) + _per_sample_masked_mean((dyp - dyt).abs(), m[..., 1:, :])


def ssim_map(x: torch.Tensor, y: torch.Tensor, win: int = 7) -> torch.Tensor:
    """Per-pixel SSIM (B,C,H,W) with a uniform ``win``x``win`` window, values in [-1,1]."""
    c1, c2 = 0.01**2, 0.03**2
    pad = win // 2
    mu_x = F.avg_pool2d(x, win, 1, pad, count_include_pad=False)
    mu_y = F.avg_pool2d(y, win, 1, pad, count_include_pad=False)
    sxx = F.avg_pool2d(x * x, win, 1, pad, count_include_pad=False) - mu_x**2
    syy = F.avg_pool2d(y * y, win, 1, pad, count_include_pad=False) - mu_y**2
    sxy = F.avg_pool2d(x * y, win, 1, pad, count_include_pad=False) - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 - SSIM averaged over the hole grown by 3 px, per-sample normalised."""
    return _per_sample_masked_mean(1.0 - ssim_map(pred, target), dilate(mask, 3))


def hole_patches(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """(B,1,h,w) {0,1}: the discriminator patches (``logits`` grid) that overlap the hole."""
    return F.adaptive_max_pool2d(mask, logits.shape[-2:])


def d_hinge(real_logits: torch.Tensor, fake_logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Hinge loss for the discriminator; logits (B,1,h,w), mask (B,1,H,W) {0,1}.

    With ``mask``, both terms count only patches that overlap the hole. Away from the hole
    the output *is* the original (the generator blends), so there a "fake" patch equals its
    "real" one; asking D to call the same pixels real and fake pins the loss at 2 and spends
    D's capacity on an impossible task (the floor gunet_v1's log shows).
    """
    if mask is None:
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    m = hole_patches(mask, fake_logits)
    n = m.sum().clamp_min(1.0)
    return (F.relu(1.0 - real_logits) * m).sum() / n + (F.relu(1.0 + fake_logits) * m).sum() / n


def g_hinge(fake_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Generator's hinge loss, counted on patches that overlap the hole (known patches are real)."""
    m = hole_patches(mask, fake_logits)
    return -(fake_logits * m).sum() / m.sum().clamp_min(1.0)


def feature_matching(fake_feats: list[torch.Tensor], real_feats: list[torch.Tensor]) -> torch.Tensor:
    """L1 between discriminator features of the fill and of the original."""
    return sum((f - r.detach()).abs().mean() for f, r in zip(fake_feats, real_feats)) / len(fake_feats)


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """PSNR in dB per sample (B,), inside ``mask`` when given (values in [0,1])."""
    err = (pred - target) ** 2
    if mask is None:
        mse = err.flatten(1).mean(1)
    else:
        mse = (err * mask).flatten(1).sum(1) / (mask.flatten(1).sum(1) * err.shape[1]).clamp_min(1.0)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-10))
