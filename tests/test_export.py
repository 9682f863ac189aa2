"""Checkpoint safety and the verified ONNX export, end to end through the CLI too."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from archive_restore.cli import app
from archive_restore.inpaint.checkpoint import CheckpointError, load_checkpoint, load_generator
from archive_restore.inpaint.export import ExportError, export_checkpoint
from archive_restore.runtime.session import InpaintSession, load_sidecar, sha256_file


def test_checkpoint_roundtrip(tiny_checkpoint, tiny_model_cfg):
    model, cfg, ckpt = load_generator(tiny_checkpoint)
    assert cfg == tiny_model_cfg
    assert ckpt["step"] == 7


def test_truncated_checkpoint_is_refused(tmp_path, tiny_checkpoint):
    bad = tmp_path / "trunc.pth"
    bad.write_bytes(tiny_checkpoint.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(bad)


def test_foreign_and_empty_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.pth"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="lacks keys"):
        load_checkpoint(foreign)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_checkpoint(text)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pth")


class Payload:
    """An arbitrary object: unpickling it would run code in a malicious checkpoint."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_refused(tmp_path, tiny_checkpoint):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["extra"] = {"payload": Payload()}
    evil = tmp_path / "evil.pth"
    torch.save(ckpt, evil, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(evil)


def test_wrong_state_dict_is_refused(tmp_path, tiny_checkpoint):
    ckpt = torch.load(tiny_checkpoint, weights_only=True)
    ckpt["state_dict"].pop(next(iter(ckpt["state_dict"])))
    bad = tmp_path / "wrongkeys.pth"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match="does not match"):
        load_generator(bad)


def test_export_writes_verified_graph_and_sidecar(tiny_onnx, tiny_checkpoint):
    import onnx

    proto = onnx.load(str(tiny_onnx))
    assert [i.name for i in proto.graph.input] == ["image", "mask"]
    assert [o.name for o in proto.graph.output] == ["restored"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert isinstance(dims[0], str) and dims[1] == 3 and isinstance(dims[2], str) and isinstance(dims[3], str)
    assert not list(tiny_onnx.parent.glob("*.data")), "no external-data side file"
    side = load_sidecar(tiny_onnx)
    assert side["onnx_sha256"] == sha256_file(tiny_onnx)
    assert side["checkpoint_sha256"] == sha256_file(tiny_checkpoint)
    assert side["step"] == 7
    assert side["input_contract"]["pad_multiple"] == 8
    assert side["input_contract"]["channel_order"] == "RGB"
    assert side["parity"]["max_abs_diff"] <= 1e-4
    assert [1, 517, 389] in side["parity"]["shapes"]


def test_runtime_matches_pytorch_on_odd_shape(tiny_onnx, tiny_checkpoint):
    model, _, _ = load_generator(tiny_checkpoint)
    sess = InpaintSession(tiny_onnx, device="cpu")
    assert sess.provider == "CPUExecutionProvider"
    rng = np.random.default_rng(1)
    image = rng.random((1, 3, 61, 45), dtype=np.float32)
    mask = (rng.random((1, 1, 61, 45)) > 0.8).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(image), torch.from_numpy(mask)).numpy()
    assert np.abs(sess.run(image, mask) - ref).max() < 1e-4


def test_session_fill_keeps_known_pixels_and_fills_holes(tiny_onnx):
    sess = InpaintSession(tiny_onnx, device="cpu", batch=2)
    rng = np.random.default_rng(2)
    imgs = [rng.random((40, 52, 3), dtype=np.float32), rng.random((17, 23, 3), dtype=np.float32),
            rng.random((40, 52, 3), dtype=np.float32)]
    masks = [np.zeros((40, 52), bool), np.zeros((17, 23), bool), np.zeros((40, 52), bool)]
    masks[0][10:14, :] = True
    masks[1][:, 5] = True
    outs = sess.fill(imgs, masks)
    for img, m, out in zip(imgs, masks, outs):
        assert out.shape == img.shape and out.dtype == np.float32
        assert np.array_equal(out[~m], img[~m])
        if m.any():
            assert np.abs(out[m] - img[m]).mean() > 0.05  # random pixels were replaced by a fill


def test_failed_parity_leaves_nothing(tmp_path, tiny_checkpoint, monkeypatch):
    import archive_restore.inpaint.export as ex

    monkeypatch.setattr(ex, "FP32_BOUND", -1.0)  # any difference, even 0, now fails
    out = tmp_path / "m.onnx"
    with pytest.raises(ExportError, match="disagree"):
        export_checkpoint(tiny_checkpoint, out)
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not list(tmp_path.glob(".*tmp"))


def test_cli_export_and_bad_checkpoint(tmp_path, tiny_checkpoint):
    runner = CliRunner()
    out = tmp_path / "cli.onnx"
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text())["opset"] == 17
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x80\x02garbage")
    res = runner.invoke(app, ["export-onnx", str(bad), "--out", str(tmp_path / "x.onnx")])
    assert res.exit_code == 1
    assert "error:" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_fp16_export_within_documented_bound(tmp_path, tiny_checkpoint):
    from archive_restore.inpaint.export import FP16_BOUND

    res = export_checkpoint(tiny_checkpoint, tmp_path / "half.onnx", fp16=True, shapes=((1, 33, 41),))
    assert res.sidecar["precision"] == "fp16"
    assert res.sidecar["parity"]["max_abs_diff"] <= FP16_BOUND
