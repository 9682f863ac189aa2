"""Checkpoint -> verified, self-contained ONNX graph + JSON sidecar.

An export that was never compared is not an export: ``export_checkpoint`` runs the full
``onnx.checker``, then runs ONNX Runtime and PyTorch on several random shapes (odd ones
included) and refuses to write the model if they disagree by more than the bound.

Graph contract: inputs ``image`` (B,3,H,W) and ``mask`` (B,1,H,W), output ``restored``
(B,3,H,W), dynamic B, H and W. (ONNX is single-assignment, so the output cannot also be
called ``image``; ONNX Runtime rejects such a graph as a duplicate definition.)
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archive_restore import __version__
from archive_restore.config import to_dict
from archive_restore.inpaint.checkpoint import load_generator
from archive_restore.io import sha256_file, write_bytes_atomic
from archive_restore.runtime.session import SIDECAR_FORMAT, sidecar_path

INPUTS = ("image", "mask")
OUTPUT = "restored"
PARITY_SHAPES = ((1, 517, 389), (2, 64, 96), (1, 256, 256), (1, 33, 17))
FP32_BOUND = 1e-4
# fp16 weights and activations carry ~3 decimal digits; outputs in [0,1] differ from the fp32
# PyTorch reference by a few 1e-3 through a deep network. 2e-2 (5/255) catches real breakage.
FP16_BOUND = 2e-2


class ExportError(RuntimeError):
    """The export failed its checks; the message says which in one line."""


@dataclass(frozen=True)
class ExportResult:
    onnx_path: Path
    sidecar_path: Path
    sidecar: dict[str, Any]

    def summary_rows(self) -> list[tuple[str, str]]:
        s = self.sidecar
        return [
            ("model", f"{s['model']['name']} ({s['model']['config']['arch']})"),
            ("parameters", f"{s['model']['params']:,}"),
            ("training step", str(s["step"])),
            ("opset / precision", f"{s['opset']} / {s['precision']}"),
            ("parity max |diff|", f"{s['parity']['max_abs_diff']:.2e} (bound {s['parity']['bound']:.0e})"),
            ("parity shapes", ", ".join("x".join(map(str, sh)) for sh in s["parity"]["shapes"])),
            ("onnx size", f"{s['onnx_bytes'] / 1e6:.2f} MB"),
            ("onnx sha256", s["onnx_sha256"][:16] + "…"),
            ("sidecar", str(self.sidecar_path)),
        ]


def random_case(shape: tuple[int, int, int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A parity test case: image (B,3,H,W) float32 in [0,1] and a free-form mask (B,1,H,W) in {0,1}
    made of random strokes and boxes (so both hole and known paths of the graph are exercised)."""
    b, h, w = shape
    image = rng.random((b, 3, h, w), dtype=np.float32)
    mask = np.zeros((b, 1, h, w), np.float32)
    for i in range(b):
        for _ in range(3):
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            y1, x1 = rng.integers(0, h), rng.integers(0, w)
            n = max(abs(y1 - y0), abs(x1 - x0), 1)
            ys = np.linspace(y0, y1, n + 1).astype(int)
            xs = np.linspace(x0, x1, n + 1).astype(int)
            mask[i, 0, ys, xs] = 1.0
        y, x = rng.integers(0, h), rng.integers(0, w)
        mask[i, 0, y : y + max(1, h // 5), x : x + max(1, w // 5)] = 1.0
    return image, mask


def _onnx_export(model: torch.nn.Module, path: Path, opset: int, dtype: torch.dtype) -> None:
    example = (torch.rand(1, 3, 64, 64, dtype=dtype), (torch.rand(1, 1, 64, 64) > 0.7).to(dtype))
    axes = {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript-based exporter: 5x faster to export than dynamo here and verified below.
        torch.onnx.export(
            model,
            example,
            str(path),
            dynamo=False,
            input_names=list(INPUTS),
            output_names=[OUTPUT],
            dynamic_axes={"image": axes, "mask": axes, OUTPUT: axes},
            opset_version=opset,
            do_constant_folding=True,
        )


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    fp16: bool = False,
    opset: int = 17,
    shapes: tuple[tuple[int, int, int], ...] = PARITY_SHAPES,
    seed: int = 0,
) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (.onnx) and ``out`` with .json (sidecar), verified.

    Raises ``CheckpointError`` for a bad checkpoint and ``ExportError`` when the checker or the
    ONNX Runtime vs PyTorch comparison fails (nothing is left at ``out`` then).
    """
    import onnx
    import onnxruntime as ort

    from archive_restore.inpaint.model import count_params

    checkpoint, out = Path(checkpoint), Path(out)
    model, cfg, ckpt = load_generator(checkpoint)
    out.parent.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if fp16 else torch.float32
    ref_model = model.float()
    exp_model = build_copy(model, dtype)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=".onnx.tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        try:
            _onnx_export(exp_model, tmp, opset, dtype)
        except Exception as exc:
            raise ExportError(f"torch.onnx.export failed: {str(exc).strip().splitlines()[0]}") from exc
        proto = onnx.load(str(tmp), load_external_data=False)
        if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
            raise ExportError("export produced external data; the model must be one self-contained file")
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except Exception as exc:
            raise ExportError(f"onnx.checker rejected the graph: {str(exc).strip().splitlines()[0]}") from exc
        names_in = [i.name for i in proto.graph.input]
        names_out = [o.name for o in proto.graph.output]
        if names_in != list(INPUTS) or names_out != [OUTPUT]:
            raise ExportError(f"graph has inputs {names_in} and outputs {names_out}, expected {list(INPUTS)} -> [{OUTPUT}]")
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        bound = FP16_BOUND if fp16 else FP32_BOUND
        rng = np.random.default_rng(seed)
        worst = 0.0
        np_dtype = np.float16 if fp16 else np.float32
        for shape in shapes:
            image, mask = random_case(shape, rng)
            with torch.no_grad():
                ref = ref_model(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
            got = sess.run([OUTPUT], {"image": image.astype(np_dtype), "mask": mask.astype(np_dtype)})[0]
            if got.shape != ref.shape:
                raise ExportError(f"ONNX output shape {got.shape} != PyTorch {ref.shape} for input {shape}")
            diff = float(np.abs(got.astype(np.float32) - ref).max())
            worst = max(worst, diff)
            if not np.isfinite(diff) or diff > bound:
                raise ExportError(
                    f"ONNX Runtime and PyTorch disagree on {'x'.join(map(str, shape))}: "
                    f"max |diff| {diff:.3g} > bound {bound:g}"
                )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a model file is meant to be shared
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    side = {
        "format": SIDECAR_FORMAT,
        "model": {"name": out.stem, "config": to_dict(cfg), "params": count_params(model)},
        "checkpoint": checkpoint.name,
        "checkpoint_sha256": sha256_file(checkpoint),
        "onnx_file": out.name,
        "onnx_sha256": sha256_file(out),
        "onnx_bytes": out.stat().st_size,
        "step": int(ckpt["step"]),
        "train_config": ckpt.get("train_config"),
        "opset": opset,
        "precision": "fp16" if fp16 else "fp32",
        "input_contract": {
            "inputs": {
                "image": "(B,3,H,W) float in [0,1], RGB; hole pixels pre-filled by `prefill`",
                "mask": "(B,1,H,W) float in {0,1}, 1 = fill",
            },
            "output": f"{OUTPUT}: (B,3,H,W) float in [0,1], RGB, equal to image outside the mask",
            "range": [0.0, 1.0],
            "channel_order": "RGB",
            "layout": "NCHW",
            "pad_multiple": int(getattr(model, "pad_multiple", 1)),
            "pads_internally": True,
            "prefill": cfg.prefill,
            "prefill_radius": cfg.prefill_radius,
        },
        "parity": {"max_abs_diff": worst, "bound": bound, "shapes": [list(s) for s in shapes]},
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool_version": __version__,
    }
    sp = sidecar_path(out)
    write_bytes_atomic(sp, (json.dumps(side, indent=2) + "\n").encode("utf-8"))
    return ExportResult(onnx_path=out, sidecar_path=sp, sidecar=side)


def build_copy(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of ``model`` in ``dtype`` for export (the float32 original stays the reference)."""
    import copy

    return copy.deepcopy(model).to(dtype).eval()
