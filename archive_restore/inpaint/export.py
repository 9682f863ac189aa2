"""Checkpoint -> verified, self-contained ONNX graph + JSON sidecar (fp32, fp16 or int8).

An export that was never compared is not an export: ``export_checkpoint`` runs the full
``onnx.checker``, then runs ONNX Runtime and PyTorch on several random shapes (odd ones
included) and refuses to write the model if they disagree by more than the bound.

int8 (CPU): the verified fp32 graph is quantised statically (``onnxruntime.quantization``,
QDQ, per-channel int8 weights, uint8 activations whose ranges come from percentile
calibration on damaged crops of real photos). The output head and the final blend stay
float: the head writes the correction itself, and quantising it cost the most (measured on
held-out training crops: 0.06 dB masked PSNR with it quantised, 0.04 dB without). Random
noise is no test of a graph calibrated on photos, so the int8 check compares it with the
PyTorch fp32 model on *held-out* damaged crops of the same photos: masked PSNR between the
two must stay above ``INT8_MIN_PSNR``.

Graph contract: inputs ``image`` (B,3,H,W) and ``mask`` (B,1,H,W), output ``restored``
(B,3,H,W), dynamic B, H and W. (ONNX is single-assignment, so the output cannot also be
called ``image``; ONNX Runtime rejects such a graph as a duplicate definition.)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
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
from archive_restore.inpaint import losses as L
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
# int8 vs fp32 inside the hole, worst held-out case. The fills themselves are 24-30 dB from
# the truth; 35 dB keeps quantisation error well below the fill's own error, while a broken
# calibration (ranges off by a large factor) lands far below it.
INT8_MIN_PSNR = 35.0
# int8 weights are quantised to 7 bits (reduce_range). x86 CPUs without VNNI (AVX2 only, e.g.
# many AMD EPYC and older Intel servers) multiply uint8 activations by int8 weights with
# vpmaddubsw, which adds each pair of products into a saturating int16: full 8-bit weights
# overflow it (255 * 127 * 2 > 32767) and the output goes wrong (session 24: the 8-bit
# generator graph fell to 22 dB against PyTorch on hole-heavy crops, and the detector missed a
# blotch's centre). 7-bit weights cannot overflow (255 * 64 * 2 < 32767), and the results are
# the same on every CPU; the detector's graph (masks.net._quantize) is made the same way.
INT8_WEIGHTS = "int8 per channel, 7-bit range (reduce_range)"
CALIB_SIZE = 192
CALIB_KINDS = ("scratches", "cracks", "dust", "text", "blotches", "random_square")


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
            *([("int8 vs fp32 (held-out crops)", (f"masked PSNR min {s['int8']['min_psnr_db']:.1f} dB, mean "
                 f"{s['int8']['mean_psnr_db']:.1f} dB (bound {s['int8']['bound_db']:g}), {s['int8']['cases']} crops"))]
              if "int8" in s else []),
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


def calibration_cases(root: Path, cfg: Any, n: int, seed: int, max_per_photo: int = 8) -> list[dict[str, np.ndarray]]:
    """``n`` damaged crops of the photos under ``root`` for int8 calibration and checking.

    Photos are taken in a seeded random order (a sorted training folder would give one
    source only), one ``CALIB_SIZE`` crop per photo per pass at a seeded position, with a
    seeded hole of the next kind in ``CALIB_KINDS`` and the model's pre-fill; a small folder
    is passed over again (at most ``max_per_photo`` crops per photo). Returns graph feeds:
    ``image`` (1,3,S,S) float32 in [0,1], ``mask`` (1,1,S,S) in {0,1}. Photos smaller than a
    crop or unreadable are skipped."""
    from archive_restore.inpaint.data import (
        build_sample,
        list_images,
        make_mask,
        read_rgb,
    )

    rng = np.random.default_rng(seed)
    paths = list_images(Path(root))
    photos: list[np.ndarray] = []
    for i in rng.permutation(len(paths)):  # read only as many photos as there are crops to make
        if len(photos) >= n:
            break
        try:
            img = read_rgb(paths[i])
        except ValueError:
            continue
        if min(img.shape[:2]) >= CALIB_SIZE:
            photos.append(img)
    out: list[dict[str, np.ndarray]] = []
    for i in range(min(n, len(photos) * max_per_photo)):  # one crop per photo per pass
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        y, x = int(rng.integers(0, h - CALIB_SIZE + 1)), int(rng.integers(0, w - CALIB_SIZE + 1))
        crop = np.ascontiguousarray(img[y:y + CALIB_SIZE, x:x + CALIB_SIZE])
        mask = make_mask((CALIB_SIZE, CALIB_SIZE), rng, CALIB_KINDS[i % len(CALIB_KINDS)])
        smp = build_sample(crop, mask, cfg.prefill, cfg.prefill_radius)
        out.append({"image": smp.image[None].numpy(), "mask": smp.mask[None].numpy()})
    return out


def float_tail(proto: Any) -> list[str]:
    """Names of the nodes an int8 export keeps in float: the graph's last Conv (the output
    head) and every node that does not feed it (un-padding, residual add, clip and blend)."""
    nodes = list(proto.graph.node)
    producer = {o: node for node in nodes for o in node.output}
    last = [node for node in nodes if node.op_type == "Conv"][-1]
    ancestors, todo = set(), list(last.input)
    while todo:
        node = producer.get(todo.pop())
        if node is not None and node.name not in ancestors:
            ancestors.add(node.name)
            todo.extend(node.input)
    return [node.name for node in nodes if node.name not in ancestors]


def _unquantize_inputs(proto: Any, keep_float: list[str]) -> None:
    """Let the float nodes read their inputs in float: the quantiser routes every consumer of
    a quantised tensor (graph inputs included) through its QuantizeLinear/DequantizeLinear
    pair, so without this the blend would copy a rounded ``image`` outside the hole."""
    nodes = list(proto.graph.node)
    producer = {o: node for node in nodes for o in node.output}
    keep = set(keep_float)
    for node in nodes:
        if node.name not in keep:
            continue
        for i, name in enumerate(node.input):
            dq = producer.get(name)
            q = producer.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
            if q is not None and q.op_type == "QuantizeLinear":
                node.input[i] = q.input[0]
    used = {i for node in proto.graph.node for i in node.input} | {o.name for o in proto.graph.output}
    while True:  # drop the Q/DQ nodes nothing reads any more
        dead = [node for node in proto.graph.node
                if node.op_type in ("QuantizeLinear", "DequantizeLinear") and not any(o in used for o in node.output)]
        if not dead:
            break
        for node in dead:
            proto.graph.node.remove(node)
        used = {i for node in proto.graph.node for i in node.input} | {o.name for o in proto.graph.output}
    for init in [t for t in proto.graph.initializer if t.name not in used]:  # their scales and zero points
        proto.graph.initializer.remove(init)


def _quantize_int8(fp32: Path, dst: Path, calib: list[dict[str, np.ndarray]]) -> list[str]:
    """Static QDQ int8 quantisation of ``fp32`` into ``dst`` (weights in 7 bits: ``INT8_WEIGHTS``);
    returns the nodes left in float."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(calib)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    pre = dst.with_name(dst.name + ".pre")
    try:
        # symbolic shape inference cannot follow the internal pad-to-multiple (dynamic H, W)
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        keep_float = float_tail(onnx.load(str(pre), load_external_data=False))
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # the calibrator prints
            warnings.simplefilter("ignore")
            quantize_static(str(pre), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                            reduce_range=True,  # see INT8_WEIGHTS
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            calibrate_method=CalibrationMethod.Percentile, nodes_to_exclude=keep_float)
        proto = onnx.load(str(dst), load_external_data=False)
        _unquantize_inputs(proto, keep_float)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, str(dst))
    finally:
        pre.unlink(missing_ok=True)
        for extra in dst.parent.glob(dst.name + ".pre*"):  # the calibrator's scratch files
            extra.unlink(missing_ok=True)
    return keep_float


def export_checkpoint(
    checkpoint: Path,
    out: Path,
    fp16: bool = False,
    opset: int = 17,
    shapes: tuple[tuple[int, int, int], ...] = PARITY_SHAPES,
    seed: int = 0,
    int8: bool = False,
    calib_dir: Path | None = None,
    calib_n: int = 32,
    int8_min_psnr: float = INT8_MIN_PSNR,
) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (.onnx) and ``out`` with .json (sidecar), verified.

    int8: quantise for the CPU with activation ranges from ``calib_n`` crops of the photos in
    ``calib_dir`` and check it against PyTorch on ``calib_n`` held-out crops (see the module
    docstring). Raises ``CheckpointError`` for a bad checkpoint and ``ExportError`` when the
    checker or a comparison fails (nothing is left at ``out`` then).
    """
    import onnx
    import onnxruntime as ort

    from archive_restore.inpaint.model import count_params

    checkpoint, out = Path(checkpoint), Path(out)
    if int8 and fp16:
        raise ExportError("choose one of --fp16 (GPU) and --int8 (CPU)")
    if int8 and calib_dir is None:
        raise ExportError("--int8 needs --calib DIR: clean photos whose damaged crops set the activation ranges")
    model, cfg, ckpt = load_generator(checkpoint)
    int8_info: dict[str, Any] | None = None
    if int8:
        calib = calibration_cases(Path(calib_dir), cfg, 2 * calib_n, seed)
        if len(calib) < 4:
            raise ExportError(f"--calib {calib_dir}: {len(calib)} usable photos (need at least 4 of {CALIB_SIZE}+ px)")
        calib, held = calib[0::2], calib[1::2]  # alternate photos: calibration vs check
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
        if int8:
            int8_info = _int8_from(tmp, ref_model, calib, held, shapes, rng, int8_min_psnr)
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
        "precision": "int8" if int8 else "fp16" if fp16 else "fp32",
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
        # for int8 this is the fp32 graph it was quantised from; ``int8`` holds the int8 check
        "parity": {"max_abs_diff": worst, "bound": bound, "shapes": [list(s) for s in shapes]},
        **({"int8": {**int8_info, "calibration_dir": Path(calib_dir).name}} if int8_info else {}),
        "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tool_version": __version__,
    }
    sp = sidecar_path(out)
    write_bytes_atomic(sp, (json.dumps(side, indent=2) + "\n").encode("utf-8"))
    return ExportResult(onnx_path=out, sidecar_path=sp, sidecar=side)


def _int8_from(tmp: Path, ref_model: torch.nn.Module, calib: list[dict[str, np.ndarray]], held: list[dict[str, np.ndarray]],
               shapes: tuple[tuple[int, int, int], ...], rng: np.random.Generator, min_psnr: float) -> dict[str, Any]:
    """Replace the verified fp32 graph at ``tmp`` by its int8 version, checked; returns the
    sidecar's ``int8`` record. Raises ``ExportError`` when the check fails."""
    import onnxruntime as ort

    q = tmp.with_name(tmp.name + ".int8")
    try:
        try:
            keep_float = _quantize_int8(tmp, q, calib)
        except Exception as exc:
            raise ExportError(f"int8 quantisation failed: {str(exc).strip().splitlines()[0]}") from exc
        sess = ort.InferenceSession(str(q), providers=["CPUExecutionProvider"])
        scores = []
        for case in held:
            with torch.no_grad():
                ref = ref_model(torch.from_numpy(case["image"]), torch.from_numpy(case["mask"])).numpy()
            got = torch.from_numpy(sess.run([OUTPUT], case)[0])
            scores.append(float(L.psnr(got, torch.from_numpy(ref), torch.from_numpy(case["mask"]))[0]))
        if min(scores) < min_psnr:
            raise ExportError(f"int8 graph differs from PyTorch fp32 on a held-out crop: masked PSNR "
                              f"{min(scores):.1f} dB < {min_psnr:g} dB")
        for shape in shapes:  # dynamic shapes, odd ones included, still run and keep the contract
            image, mask = random_case(shape, rng)
            got = sess.run([OUTPUT], {"image": image, "mask": mask})[0]
            if got.shape != image.shape or not np.isfinite(got).all():
                raise ExportError(f"int8 graph gave shape {got.shape} (finite: {bool(np.isfinite(got).all())}) for input {shape}")
        os.replace(q, tmp)
    finally:
        q.unlink(missing_ok=True)
    return {"check": "masked PSNR vs PyTorch fp32 on held-out damaged crops", "min_psnr_db": min(scores),
            "mean_psnr_db": float(np.mean(scores)), "bound_db": min_psnr, "cases": len(held),
            "calibration_cases": len(calib), "calibration": f"percentile, QDQ, {INT8_WEIGHTS} weights, uint8 activations",
            "float_nodes": keep_float}


def build_copy(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of ``model`` in ``dtype`` for export (the float32 original stays the reference)."""
    import copy

    return copy.deepcopy(model).to(dtype).eval()
