"""Checkpoint safety and the verified ONNX export, end to end through the CLI too."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

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
    before = out.read_bytes()
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(out), "--opset", "18"])
    assert res.exit_code == 2 and "--force" in res.output and out.read_bytes() == before  # never replaced silently
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(out), "--opset", "18", "--force"])
    assert res.exit_code == 0 and json.loads(out.with_suffix(".json").read_text())["opset"] == 18
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


@pytest.fixture(scope="module")
def calib_photos(tmp_path_factory):
    """Six 200x208 smooth photos with an edge and grain, for int8 calibration."""
    import cv2

    root = tmp_path_factory.mktemp("calib")
    rng = np.random.default_rng(0)
    for i in range(6):
        yy, xx = np.mgrid[0:200, 0:208].astype(np.float32)
        base = np.stack([np.sin(xx / (9 + i)), np.cos(yy / (13 + i)), np.sin((xx + yy) / 17)], -1) * 70 + 120
        base[:, 100:] += 40
        cv2.imwrite(str(root / f"{i}.png"), np.clip(base + rng.normal(0, 5, base.shape), 0, 255).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def loud_checkpoint(tmp_path_factory, tiny_model_cfg):
    """A tiny generator whose head is scaled up so that it corrects the pre-fill by ~5 grey
    levels inside the hole, as a trained model does (a random init corrects almost nothing,
    and quantisation errors would vanish with it)."""
    from archive_restore.inpaint.checkpoint import save_checkpoint
    from archive_restore.inpaint.model import build_generator

    torch.manual_seed(0)
    g = build_generator(tiny_model_cfg)
    with torch.no_grad():
        g.head.weight.mul_(1000.0)
    path = tmp_path_factory.mktemp("loud") / "loud.pth"
    save_checkpoint(path, g, tiny_model_cfg, step=3)
    return path


def test_int8_export_is_quantised_checked_and_keeps_known_pixels(tmp_path, loud_checkpoint, calib_photos):
    import onnx

    from archive_restore.inpaint.export import INT8_MIN_PSNR

    out = tmp_path / "q.onnx"
    res = export_checkpoint(loud_checkpoint, out, int8=True, calib_dir=calib_photos, calib_n=8, shapes=((1, 33, 41), (2, 64, 48)))
    side = res.sidecar
    assert side["precision"] == "int8" and side["int8"]["cases"] == 8
    assert side["int8"]["min_psnr_db"] >= INT8_MIN_PSNR
    proto = onnx.load(str(out))
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert any(t.data_type == onnx.TensorProto.INT8 for t in proto.graph.initializer)  # int8 conv weights
    # the head and blend stay float: the graph's output copies ``image`` exactly outside the hole
    import onnxruntime as ort

    rng = np.random.default_rng(5)
    image = rng.random((1, 3, 40, 56), dtype=np.float32)
    mask = np.zeros((1, 1, 40, 56), np.float32)
    mask[..., 12:20, 5:50] = 1
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"image": image, "mask": mask})[0]
    known = mask[0, 0] == 0
    assert np.array_equal(got[0][:, known], image[0][:, known])
    # and the runtime takes it like any other export
    sess = InpaintSession(out, device="cpu")
    img, m = image[0].transpose(1, 2, 0).copy(), mask[0, 0] > 0
    filled = sess.fill([img], [m])[0]
    assert np.array_equal(filled[~m], img[~m]) and np.abs(filled[m] - img[m]).mean() > 0.05


def test_int8_export_refuses_a_broken_calibration(tmp_path, loud_checkpoint, calib_photos, monkeypatch):
    """Activation ranges taken from photos at 5 % brightness clip real inputs: the held-out
    check must catch it and leave nothing behind."""
    import archive_restore.inpaint.export as ex

    real = ex.calibration_cases

    def dimmed(*args, **kwargs):
        cases = real(*args, **kwargs)  # even cases calibrate, odd ones check
        return [{"image": c["image"] * 0.05, "mask": c["mask"]} if i % 2 == 0 else c for i, c in enumerate(cases)]

    monkeypatch.setattr(ex, "calibration_cases", dimmed)
    out = tmp_path / "bad.onnx"
    with pytest.raises(ExportError, match="held-out"):
        export_checkpoint(loud_checkpoint, out, int8=True, calib_dir=calib_photos, calib_n=8, shapes=((1, 33, 41),))
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert not [p for p in tmp_path.iterdir()]


def test_cli_int8_needs_calibration_photos(tmp_path, tiny_checkpoint, calib_photos):
    runner = CliRunner()
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(tmp_path / "a.onnx"), "--int8"])
    assert res.exit_code == 2 and "--calib" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(tmp_path / "b.onnx"), "--int8", "--fp16",
                              "--calib", str(calib_photos)])
    assert res.exit_code == 2 and "exclude each other" in res.output
    res = runner.invoke(app, ["export-onnx", str(tiny_checkpoint), "--out", str(tmp_path / "c.onnx"), "--calib", str(calib_photos)])
    assert res.exit_code == 2 and "only with --int8" in res.output
    assert not list(tmp_path.iterdir())


def test_shipped_graphs_match_their_sidecars_and_each_other():
    """The default model and its int8 twin in export/: files are what their sidecars say, both
    come from the same checkpoint, and the int8 fill stays within the export's bound of fp32."""
    from archive_restore.inpaint.export import INT8_MIN_PSNR
    from archive_restore.runtime.session import default_model_path

    fp32 = default_model_path()
    int8 = fp32.with_name(fp32.stem + "_int8.onnx")
    sides = [load_sidecar(p) for p in (fp32, int8)]
    for path, side in zip((fp32, int8), sides):
        assert sha256_file(path) == side["onnx_sha256"]
    assert sides[0]["checkpoint_sha256"] == sides[1]["checkpoint_sha256"]
    assert (sides[0]["precision"], sides[1]["precision"]) == ("fp32", "int8")
    # a smooth photo-like window with a grain and an edge, and a bent scratch across it
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float32)
    img = np.stack([0.5 + 0.2 * np.sin(xx / 9), 0.45 + 0.2 * np.cos(yy / 11), 0.4 + 0.1 * np.sin((xx + yy) / 13)], -1)
    img[:, 64:] += 0.15
    img = np.clip(img + np.random.default_rng(0).normal(0, 0.02, img.shape), 0, 1).astype(np.float32)
    mask = np.zeros((96, 128), bool)
    for x in range(5, 123):
        y = int(48 + 20 * np.sin(x / 30))
        mask[y - 1:y + 2, x] = True
    outs = [InpaintSession(p, device="cpu").fill([img], [mask])[0] for p in (fp32, int8)]
    for out in outs:
        assert np.array_equal(out[~mask], img[~mask])
    err = float(np.mean((outs[0][mask] - outs[1][mask]) ** 2))
    assert 10 * np.log10(1.0 / max(err, 1e-12)) >= INT8_MIN_PSNR


def test_default_model_is_int8_on_the_cpu_and_fp32_on_cuda(tmp_path, monkeypatch):
    """No --model: the CPU runs the shipped int8 twin, CUDA (and callers naming no provider) the
    fp32 reference; a checkout without the int8 graph falls back to fp32 on the CPU too."""
    from archive_restore.runtime import session as session_mod

    fp32 = session_mod.default_model_path()
    assert fp32.name == f"{session_mod.DEFAULT_MODEL_NAME}.onnx"
    assert session_mod.default_model_path(session_mod.CUDA) == fp32
    assert session_mod.default_model_path(session_mod.CPU) == fp32.with_name(f"{session_mod.DEFAULT_MODEL_NAME}_int8.onnx")
    sess = InpaintSession(device="cpu")
    assert (sess.path.name, sess.info.precision, sess.provider) == (f"{session_mod.DEFAULT_MODEL_NAME}_int8.onnx", "int8", "CPUExecutionProvider")
    assert sess.model_id == load_sidecar(sess.path)["onnx_sha256"]
    assert InpaintSession(fp32, device="cpu").info.precision == "fp32"  # a named graph is used as named

    # a tree holding only the fp32 graph: the CPU default is fp32
    (tmp_path / "export").mkdir()
    for name in (fp32.name, fp32.with_suffix(".json").name):
        (tmp_path / "export" / name).write_bytes((fp32.parent / name).read_bytes())
    monkeypatch.setattr(session_mod, "repo_root", lambda: tmp_path)
    assert session_mod.default_model_path(session_mod.CPU) == tmp_path / "export" / fp32.name
    assert InpaintSession(device="cpu").info.precision == "fp32"


def test_auto_device_falling_back_to_cpu_loads_the_cpu_default(monkeypatch):
    """device auto with a CUDA provider listed that cannot load (ONNX Runtime then runs on the
    CPU silently): the session reloads the CPU's default graph rather than run fp32 there."""
    import onnxruntime as ort

    from archive_restore.runtime import session as session_mod

    real = ort.InferenceSession
    loaded = []

    def fake_session(path, sess_options=None, providers=None):
        loaded.append((Path(path).name, tuple(providers)))
        return real(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(session_mod, "providers_for", lambda device: [session_mod.CUDA, session_mod.CPU])
    monkeypatch.setattr(ort, "InferenceSession", fake_session)
    sess = InpaintSession(device="auto")
    name = session_mod.DEFAULT_MODEL_NAME
    assert loaded == [(f"{name}.onnx", (session_mod.CUDA, session_mod.CPU)), (f"{name}_int8.onnx", (session_mod.CPU,))]
    assert sess.info.precision == "int8" and sess.provider == "CPUExecutionProvider"


def test_shipped_int8_graphs_cannot_overflow_without_vnni():
    """x86 CPUs without VNNI add pairs of uint8 x int8 products into a saturating int16
    (vpmaddubsw): 8-bit weights overflow it and the fills and masks go wrong there (session 24:
    22 dB against PyTorch on hole-heavy crops). Both shipped int8 graphs keep their weights in
    7 bits, |w| <= 64, so 255 * 64 * 2 = 32640 fits on every CPU."""
    import onnx
    from onnx import numpy_helper

    from archive_restore.masks.learned import default_detector_path
    from archive_restore.runtime.session import CPU, default_model_path

    for path in (default_model_path(CPU), default_detector_path()):
        graph = onnx.load(str(path)).graph
        weights = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert weights, path
        assert max(int(np.abs(w.astype(np.int32)).max()) for w in weights) <= 64, path
