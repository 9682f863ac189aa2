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


_LAPLACE = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]).view(1, 1, 3, 3)
_LUMA = (0.299, 0.587, 0.114)


def laplacian_luma(x: torch.Tensor) -> torch.Tensor:
    """(B,3,H,W) RGB in [0,1] -> (B,1,H,W) 4-neighbour Laplacian of luma (replicate border):
    the high-frequency signal ``evaluate.texture_ratio`` measures."""
    y = _LUMA[0] * x[:, 0:1] + _LUMA[1] * x[:, 1:2] + _LUMA[2] * x[:, 2:3]
    return F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), _LAPLACE.to(x.device, x.dtype))


def texture_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, win: int = 7) -> torch.Tensor:
    """L1 between the local high-frequency *amplitude* of the fill and of the original.

    Amplitude = sqrt of the mean squared luma Laplacian over the hole pixels (grown by 1 px)
    of a ``win``x``win`` neighbourhood. It matches how much grain and fine texture the fill
    carries, not where each grain sits: pixel losses alone reward a smooth average (the
    0.3-0.7 texture ratio of gunet_v2), while this term costs a fill that is too smooth or
    too noisy. Per-sample normalised over the grown hole; pred, target (B,3,H,W) in [0,1].
    """
    m = dilate(mask, 1)
    pad = win // 2
    den = F.avg_pool2d(m, win, 1, pad).clamp_min(1e-6)
    amp = lambda x: torch.sqrt(F.avg_pool2d(laplacian_luma(x) ** 2 * m, win, 1, pad) / den + 1e-6)
    return _per_sample_masked_mean((amp(pred) - amp(target)).abs(), m)


def texture_ratio(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per sample (B,): mean squared luma Laplacian of ``pred`` over the hole grown by 2 px,
    divided by the original's (``evaluate.texture_ratio`` in torch; blurry fills are << 1)."""
    m = dilate(mask, 2)
    e = lambda x: (laplacian_luma(x) ** 2 * m).flatten(1).sum(1)
    return e(pred) / e(target).clamp_min(1e-12)


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
