"""The runtime's pyramid pre-fill of thick holes (``runtime.session``): thin holes untouched,
thick ones pre-filled from a half-resolution fill, recursion that stops, and the manifest
recording what really ran."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from archive_restore.runtime.session import PYRAMID_MIN_THICKNESS, InpaintSession
from archive_restore.runtime.windows import hole_thickness
from tests.pipeline_fakes import write_tiny_onnx


def gradient(h: int, w: int) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1]: smooth colour ramps plus fine noise (no flat hole fill)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([x / w, y / h, 0.5 + 0.3 * np.sin(x / 9.0)], -1)
    return (img * 0.8 + 0.1 + np.random.default_rng(0).normal(0, 0.01, (h, w, 3))).astype(np.float32)


def counting(sess: InpaintSession) -> list[tuple[int, int]]:
    """Wraps ``sess.run`` to record the padded (H, W) of every graph call."""
    shapes: list[tuple[int, int]] = []
    run = sess.run

    def spy(image, mask):
        shapes.append(tuple(image.shape[2:]))
        return run(image, mask)

    sess.run = spy  # type: ignore[method-assign]
    return shapes


def test_thin_holes_are_prefilled_exactly_as_without_the_pyramid(tmp_path):
    onnx = write_tiny_onnx(tmp_path)
    on, off = InpaintSession(onnx, device="cpu"), InpaintSession(onnx, device="cpu", pyramid=False)
    img = gradient(96, 128)
    mask = np.zeros((96, 128), bool)
    mask[40:46, :] = True  # a 6-px scratch across the window
    mask[10:30, 20:22] = True
    assert hole_thickness(mask) < PYRAMID_MIN_THICKNESS
    calls = counting(on)
    assert np.array_equal(on.prepare(img, mask), off.prepare(img, mask))
    assert np.array_equal(on.fill([img], [mask])[0], off.fill([img], [mask])[0])
    assert calls == [(96, 128)]  # one graph call: no coarse pass


def test_thick_hole_interior_comes_from_the_coarse_fill_and_recursion_stops(tmp_path):
    onnx = write_tiny_onnx(tmp_path)
    on, off = InpaintSession(onnx, device="cpu"), InpaintSession(onnx, device="cpu", pyramid=False)
    assert on.pyramid and not off.pyramid
    img = gradient(128, 128)
    mask = np.zeros((128, 128), bool)
    mask[32:96, 40:104] = True  # a 64-px square tear
    calls = counting(on)
    pre, classical = on.prepare(img, mask), off.prepare(img, mask)
    assert np.array_equal(pre[~mask], img[~mask])  # known pixels untouched
    assert np.isfinite(pre).all() and pre.min() >= 0 and pre.max() <= 1
    # the tiny graph fills with half the image mean: the coarse fill is far from NS's ramp
    centre = np.abs(pre[56:72, 64:80] - classical[56:72, 64:80]).mean()
    rim = np.abs(pre[32, 41:103] - classical[32, 41:103]).mean()  # the hole's first row
    assert centre > 0.1
    assert rim < 0.1 * centre  # at the edge the classical fill still holds
    # coarse passes at 1/4 and 1/2 (smallest first): each level halves the window, and the
    # pass that ends the recursion sees a hole thinner than the threshold
    assert len(calls) >= 2 and calls[-1] == (64, 64)
    assert all(2 * a[0] == b[0] and 2 * a[1] == b[1] for a, b in zip(calls, calls[1:]))
    smallest = calls[0][0]
    small_mask = mask[:: 128 // smallest, :: 128 // smallest]
    assert hole_thickness(small_mask) < PYRAMID_MIN_THICKNESS
    out = on.fill([img], [mask])[0]
    assert np.array_equal(out[~mask], img[~mask])


def test_manifest_records_the_pyramid_and_a_change_redoes_the_images(tmp_path):
    from PIL import Image

    from archive_restore.cli import app
    from tests.test_pipeline import last_records

    onnx = write_tiny_onnx(tmp_path / "model")
    inp, masks = tmp_path / "scans", tmp_path / "masks"
    inp.mkdir()
    masks.mkdir()
    Image.fromarray((gradient(64, 80) * 255).astype(np.uint8)).save(inp / "a.png")
    m = np.zeros((64, 80), np.uint8)
    m[16:48, 20:60] = 255
    Image.fromarray(m).save(masks / "a.png")
    out = tmp_path / "out"
    base = ["folder", str(inp), "--out", str(out), "--masks", str(masks), "--model", str(onnx), "--device", "cpu", "--no-report"]
    runner = CliRunner()
    res = runner.invoke(app, base + ["--no-pyramid"])
    assert res.exit_code == 0, res.output
    assert last_records(out)["a.png"]["settings"]["pyramid"] is False
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    rec = last_records(out)["a.png"]
    assert rec["settings"]["pyramid"] is True and rec["status"] == "restored"  # not skipped
