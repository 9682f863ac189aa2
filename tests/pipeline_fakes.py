"""Test helpers for the pipeline tests: a fake inference session with the ``InpaintSession`` interface."""

from __future__ import annotations

import numpy as np
import pytest


class FakeSession:
    """Fills holes with the mean colour of each window's known pixels (deterministic, no ONNX).

    Same interface as ``runtime.session.InpaintSession``: provider, model_id, model_name,
    pad_multiple, fill(images (h,w,3) float32 [0,1], masks (h,w) bool) -> list of (h,w,3).
    """

    provider = "FakeExecutionProvider"
    model_id = "f" * 64
    model_name = "fake_mean_fill"
    pad_multiple = 8

    def __init__(self) -> None:
        self.calls = 0
        self.windows = 0

    def fill(self, images, masks):
        self.calls += 1
        self.windows += len(images)
        out = []
        for img, m in zip(images, masks):
            assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
            assert m.dtype == bool and m.shape == img.shape[:2]
            known = img[~m]
            colour = known.mean(axis=0) if known.size else np.full(3, 0.5, np.float32)
            o = img.copy()
            o[m] = colour
            out.append(o)
        return out


@pytest.fixture
def fake_session():
    return FakeSession()


def write_tiny_onnx(folder, name: str = "tiny"):
    """A torch-free ONNX 'generator' plus sidecar, loadable by ``InpaintSession``.

    Graph: restored = image * (1 - mask) + 0.5 * mask * mean(image) (a real, deterministic
    fill that differs from the input inside the mask). Returns the .onnx path.
    """
    import hashlib
    import json
    from pathlib import Path

    import onnx
    from onnx import TensorProto, helper

    from archive_restore.runtime.session import SIDECAR_FORMAT

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["B", 3, "H", "W"])
    mask = helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["B", 1, "H", "W"])
    out = helper.make_tensor_value_info("restored", TensorProto.FLOAT, ["B", 3, "H", "W"])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["known"]),
        helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=1),
        helper.make_node("Mul", ["mask", "half"], ["mh"]),
        helper.make_node("Mul", ["mh", "mean"], ["fillv"]),
        helper.make_node("Add", ["known", "fillv"], ["restored"]),
    ]
    graph = helper.make_graph(nodes, name, [image, mask], [out], initializer=[one, half])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = folder / f"{name}.onnx"
    onnx.save(model, str(path))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    side = {
        "format": SIDECAR_FORMAT,
        "model": {"name": name, "config": {"prefill": "telea", "prefill_radius": 3}},
        "onnx_sha256": sha,
        "precision": "fp32",
        "input_contract": {"pad_multiple": 8},
    }
    path.with_suffix(".json").write_text(json.dumps(side))
    return path
