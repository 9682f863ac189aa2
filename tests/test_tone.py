"""Tone lock (runtime.tone): monotone RGB scans keep their tone in the fill; colour scans are untouched."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
from PIL import Image

from archive_restore import pipeline
from archive_restore.config import RuntimeConfig
from archive_restore.runtime.tone import LUMA, ToneCurve
from tests.pipeline_fakes import FakeSession


def _luma_field(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A photo-like brightness field in [0,1]: gradients, an edge and grain, (h, w) float32."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = 0.25 + 0.5 * (xx / w) + 0.1 * np.sin(yy / 7.0)
    y[:, w // 2:] += 0.15
    y += np.random.default_rng(seed).normal(0, 0.02, y.shape)
    return np.clip(y, 0, 1).astype(np.float32)


def _sepia(y: np.ndarray) -> np.ndarray:
    return np.clip(np.stack([y * 1.0 + 0.05, y * 0.86 + 0.02, y * 0.68 + 0.02], -1), 0, 1)


def _u8(x: np.ndarray) -> np.ndarray:
    return np.rint(x * 255).astype(np.uint8)


def test_fit_tells_monotone_from_colour_scans():
    y = _luma_field()
    grey = _u8(np.repeat(y[..., None], 3, -1))
    tc = ToneCurve.fit(grey)
    assert tc is not None and tc.tol <= 1 / 255
    assert np.abs(tc.curve).max() <= 1 / 255  # neutral: no chroma at any brightness
    sep = ToneCurve.fit(_u8(_sepia(y)))
    assert sep is not None and (sep.curve[40, 0] - sep.curve[40, 2]) > 0.1  # warm: red above blue
    # 16-bit scans, and a mask leaving the damaged pixels out of the fit
    mask = np.zeros(y.shape, bool)
    mask[40:50, :] = True
    bad = np.repeat(y[..., None], 3, -1)
    bad[mask] = (1.0, 0.0, 0.0)  # red damage must not count against the scan
    assert ToneCurve.fit((bad * 65535).astype(np.uint16), mask) is not None
    assert ToneCurve.fit((bad * 65535).astype(np.uint16)) is None
    # a colour photo: two differently coloured halves of the same brightness
    col = np.repeat(y[..., None], 3, -1).copy()
    col[:, :64] *= (1.1, 0.95, 0.8)
    assert ToneCurve.fit(_u8(np.clip(col, 0, 1))) is None
    assert ToneCurve.fit(grey[..., :1]) is None  # grey files need no lock


def test_apply_pulls_a_cast_back_to_the_tone_and_leaves_the_rest():
    y = _luma_field()
    sepia = _sepia(y).astype(np.float32)
    mask = np.zeros(y.shape, bool)
    mask[30:60, 20:100] = True
    tc = ToneCurve.fit(_u8(sepia), mask)
    filled = sepia.copy()
    filled[mask] = np.clip(filled[mask] + np.array([-0.08, 0.02, 0.10], np.float32), 0, 1)  # a bluish cast
    out = tc.apply(filled, mask)
    assert np.array_equal(out[~mask], filled[~mask])
    before = np.abs(filled[mask] - sepia[mask]).max(axis=1)
    after = np.abs(out[mask] - sepia[mask]).max(axis=1)
    assert before.mean() > 0.07 and after.mean() < 0.025
    # brightness is the fill's own
    assert np.abs(out[mask] @ LUMA - filled[mask] @ LUMA).max() <= 1e-5
    # a fill already on the tone is left as it is
    assert np.allclose(tc.apply(sepia, mask), sepia, atol=tc.tol + 2 / 255)


class CastSession(FakeSession):
    """FakeSession whose fills carry a green cast."""

    model_name = "fake_cast_fill"

    def fill(self, images, masks):
        return [np.clip(o + np.where(m[..., None], np.array([0.0, 0.12, 0.0], np.float32), 0), 0, 1)
                for o, m in zip(super().fill(images, masks), masks)]


def test_restore_folder_locks_grey_rgb_scans_unless_told_not_to(tmp_path):
    inp, masks = tmp_path / "in", tmp_path / "masks"
    inp.mkdir(), masks.mkdir()
    y = _luma_field(120, 160, seed=3)
    Image.fromarray(_u8(np.repeat(y[..., None], 3, -1))).save(inp / "bw.png")  # black and white, saved as RGB
    colour = np.repeat(y[..., None], 3, -1).copy()
    colour[:, :80] *= (1.15, 0.9, 0.7)
    Image.fromarray(_u8(np.clip(colour, 0, 1))).save(inp / "colour.png")
    m = np.zeros((120, 160), np.uint8)
    m[50:70, 30:130] = 255
    for name in ("bw", "colour"):
        Image.fromarray(m).save(masks / f"{name}.png")
    hole = m > 0
    colour_out = []
    for lock, out in ((True, tmp_path / "on"), (False, tmp_path / "off")):
        rt = dataclasses.replace(RuntimeConfig(), tone_lock=lock)
        summary = pipeline.restore_folder(inp, out, masks_dir=masks, session=CastSession(), runtime=rt, handle_sigint=False)
        assert not summary.failed
        bw = np.asarray(Image.open(out / "bw.png")).astype(int)
        cast = np.abs(bw[..., 1] - bw[..., 0])[hole].max()
        assert (cast <= 2) if lock else (cast >= 25)
        assert np.array_equal(bw[~hole], _u8(np.repeat(y[..., None], 3, -1))[~hole])
        recs = {r["input"]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
        assert recs["bw.png"]["tone_locked"] is lock and recs["colour.png"]["tone_locked"] is False
        assert recs["bw.png"]["settings"]["tone_lock"] is lock
        colour_out.append(np.asarray(Image.open(out / "colour.png")))
    assert np.array_equal(*colour_out)  # the colour scan is filled as the session filled it, lock or not


def test_screen_gives_the_full_fits_answer(monkeypatch):
    """Large scans are screened on a sparse sample first; the answer (None, or the same curve
    and tolerance) must be the one the full sample gives, for colour and monotone scans alike."""
    from archive_restore.runtime import tone

    y = _luma_field(400, 600, seed=3)
    grey = _u8(np.repeat(y[..., None], 3, -1))
    sepia = _u8(_sepia(y))
    warm = np.clip(np.repeat(y[..., None], 3, -1) * (1.3, 0.9, 0.5), 0, 1)
    cool = np.clip(np.repeat(y[..., None], 3, -1) * (0.7, 1.0, 1.3), 0, 1)
    colour = _u8(np.where((np.arange(400) // 20 % 2 == 0)[:, None, None], warm, cool))  # bands
    speck = sepia.copy()  # a toned print with a few coloured pixels: 0.5 % (colour) and 0.05 %
    rows = np.random.default_rng(1).integers(0, 400, 1200)
    cols = np.random.default_rng(2).integers(0, 600, 1200)
    speck[rows, cols] = (40, 200, 60)
    few = sepia.copy()
    few[rows[:100], cols[:100]] = (40, 200, 60)
    mask = np.zeros(y.shape, bool)
    mask[100:140, 50:500] = True
    scans = {"grey": grey, "sepia": sepia, "colour": colour, "speck": speck, "few": few}
    calls: list[int] = []
    deviation = tone._deviation
    monkeypatch.setattr(tone, "_deviation", lambda rgb: calls.append(len(rgb)) or deviation(rgb))
    screened = {}
    for k, v in scans.items():
        calls.clear()
        screened[k] = tone.ToneCurve.fit(v, mask)
        # the screen ran on a sparse sample; only the colour scan stopped there
        assert calls[0] < 20_000 and len(calls) == (1 if k == "colour" else 2), (k, calls)
    monkeypatch.setattr(tone, "SCREEN_PIXELS", 10**12)  # screen never sparser than the sample
    full = {k: tone.ToneCurve.fit(v, mask) for k, v in scans.items()}
    assert [k for k, v in full.items() if v is not None] == ["grey", "sepia", "few"]
    for k in scans:
        a, b = screened[k], full[k]
        assert (a is None) == (b is None), k
        if a is not None:
            assert np.array_equal(a.curve, b.curve) and a.tol == b.tol, k
