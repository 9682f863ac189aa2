"""Shared fixtures: tiny checkpoints and exported models made on the fly (CPU, seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_cfg():
    from archive_restore.config import ModelConfig

    return ModelConfig(widths=(8, 8, 16, 16), bottleneck_dilations=(2, 1))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_model_cfg) -> Path:
    """A random-init gated_unet checkpoint written by ``save_checkpoint``."""
    import torch

    from archive_restore.inpaint.checkpoint import save_checkpoint
    from archive_restore.inpaint.model import build_generator

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    save_checkpoint(path, build_generator(tiny_model_cfg), tiny_model_cfg, step=7)
    return path


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory, tiny_checkpoint) -> Path:
    """``tiny_checkpoint`` exported and verified: the .onnx path (sidecar beside it)."""
    from archive_restore.inpaint.export import export_checkpoint

    out = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    return export_checkpoint(tiny_checkpoint, out).onnx_path
