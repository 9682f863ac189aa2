"""Checkpoints: a plain dict of tensors and primitives, written atomically, read with
``torch.load(weights_only=True)`` so a checkpoint can never unpickle arbitrary objects.

Layout: ``{"format", "model_config": dict, "state_dict", "step": int, "train_config": dict|None,
"extra": dict}``; training checkpoints add discriminator and optimizer states under ``extra``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archive_restore.config import ModelConfig, from_dict, to_dict
from archive_restore.inpaint.model import build_generator
from archive_restore.io import AtomicFile

FORMAT = "archive-restore/checkpoint/1"
REQUIRED = ("format", "model_config", "state_dict", "step")


class CheckpointError(ValueError):
    """A file is missing, truncated, foreign or unsafe; the message says which in one line."""


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` through ``io.AtomicFile``: a killed run never leaves a half-written checkpoint."""
    with AtomicFile(Path(path)) as f:
        torch.save(obj, f)


def save_checkpoint(
    path: Path,
    model: nn.Module,
    model_config: ModelConfig,
    step: int,
    train_config: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint dict atomically (see module docstring)."""
    atomic_torch_save(
        {
            "format": FORMAT,
            "model_config": to_dict(model_config),
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "step": int(step),
            "train_config": to_dict(train_config) if train_config is not None else None,
            "extra": extra or {},
        },
        path,
    )


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and validate a checkpoint dict; raises ``CheckpointError`` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint is empty: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles before refusing them; we say why
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or unsafe files
        msg = str(exc)
        if "Weights only load failed" in msg or "Unsupported global" in msg or "GLOBAL" in msg:
            raise CheckpointError(f"refusing {path}: it contains pickled Python objects, not only tensors") from exc
        first = msg.strip().splitlines()[0] if msg.strip() else type(exc).__name__
        raise CheckpointError(f"not a readable checkpoint (truncated or corrupt, or not a torch file): {path} "
                              f"({type(exc).__name__}: {first})") from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"not an archive-restore checkpoint: {path} holds a {type(ckpt).__name__}")
    missing = [k for k in REQUIRED if k not in ckpt]
    if missing:
        raise CheckpointError(f"not an archive-restore checkpoint: {path} lacks keys {missing}")
    if ckpt["format"] != FORMAT:
        raise CheckpointError(f"unsupported checkpoint format {ckpt['format']!r} in {path}")
    return ckpt


def load_generator(path: Path) -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """Build the generator a checkpoint describes and load its weights (eval mode, CPU)."""
    ckpt = load_checkpoint(path)
    try:
        cfg = from_dict(ModelConfig, ckpt["model_config"])
        model = build_generator(cfg)
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (ValueError, RuntimeError, TypeError) as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        # torch's first line is only "Error(s) in loading state_dict for X:"; the next says what
        detail = " ".join(lines[:2])[:300] if lines else type(exc).__name__
        raise CheckpointError(f"checkpoint {path} does not match its model config: {detail}") from exc
    model.eval()
    return model, cfg, ckpt
