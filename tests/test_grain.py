"""runtime.grain: grain re-synthesis inside filled holes, and `restore folder --grain`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from archive_restore.evaluate import texture_ratio
from archive_restore.runtime.grain import add_grain, grain_sigma


def grainy(h: int = 160, w: int = 200, sigma: float = 8.0, seed: int = 0) -> np.ndarray:
    """(h, w, 3) uint8: a smooth luminance ramp with white luma grain of ``sigma`` levels (grey)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 60 * xx / w + 20 * np.sin(yy / 23)
    g = np.clip(base + rng.normal(0, sigma, (h, w)), 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, 2)


def hole_and_smooth_fill(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A thick scratch and a blot, filled by a smooth classical fill (the soft-streak case)."""
    m = np.zeros(image.shape[:2], np.uint8)
    cv2.line(m, (10, 20), (190, 140), 255, 5)
    cv2.circle(m, (150, 40), 14, 255, -1)
    mask = m > 0
    return cv2.inpaint(image, m, 3, cv2.INPAINT_TELEA), mask


def test_grain_restores_the_surroundings_amplitude_and_changes_only_the_hole():
    clean = grainy()
    filled, mask = hole_and_smooth_fill(clean)
    out = add_grain(filled, mask, seed=1, strength=1.0)
    assert (out[~mask] == filled[~mask]).all()  # outside the hole: untouched
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()  # grey stays grey
    before, after = texture_ratio(filled, clean, mask), texture_ratio(out, clean, mask)
    assert before < 0.5  # the smooth fill lost most of the grain
    assert 0.7 <= after <= 1.3, (before, after)
    # the noise's amplitude is the grain's: residual of the hole against the clean ramp
    resid = out[..., 0].astype(np.float32)[mask] - filled[..., 0].astype(np.float32)[mask]
    assert 5.0 < resid.std() < 11.0


def test_grain_is_seeded_and_strength_zero_is_identity():
    clean = grainy(seed=3)
    filled, mask = hole_and_smooth_fill(clean)
    a = add_grain(filled, mask, seed=7)
    assert (a == add_grain(filled, mask, seed=7)).all()
    assert (a != add_grain(filled, mask, seed=8)).any()
    assert (add_grain(filled, mask, strength=0.0) == filled).all()


def test_no_grain_where_the_photo_has_none_even_beside_an_edge():
    # grain-free graphic: a hard vertical edge right next to the hole; edges are not grain
    img = np.full((120, 120, 3), 40, np.uint8)
    img[:, 60:] = 220
    mask = np.zeros((120, 120), bool)
    mask[30:90, 50:58] = True
    filled = cv2.inpaint(img, mask.astype(np.uint8) * 255, 3, cv2.INPAINT_NS)
    assert (add_grain(filled, mask, seed=0) == filled).all()
    assert grain_sigma(filled, mask).max() == 0


def test_a_fill_that_already_has_grain_gets_none_added():
    clean = grainy(seed=5)
    _, mask = hole_and_smooth_fill(clean)
    # the "fill" is the clean photo itself: as much grain inside as around
    sig = grain_sigma(clean, mask)
    assert np.median(sig[mask]) < 2.0


@pytest.mark.parametrize("shape,dtype", [((96, 96, 1), np.uint16), ((96, 96, 4), np.uint8), ((96, 96), np.uint8)])
def test_grain_keeps_dtype_alpha_and_layout(shape, dtype):
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    img = np.clip(top / 2 + rng.normal(0, top / 30, shape), 0, top).astype(dtype)
    if len(shape) == 3 and shape[2] == 4:
        img[..., 3] = 200
    mask = np.zeros(shape[:2], bool)
    mask[40:56, 10:86] = True
    img[mask] = img[~mask].mean(axis=0).astype(dtype)  # a flat fill
    out = add_grain(img, mask, seed=0)
    assert out.dtype == img.dtype and out.shape == img.shape
    assert (out[~mask] == img[~mask]).all()
    assert (out[mask] != img[mask]).any()
    if len(shape) == 3 and shape[2] == 4:
        assert (out[..., 3] == 200).all()


def test_grain_rejects_float_images():
    with pytest.raises(TypeError):
        add_grain(np.zeros((8, 8, 3), np.float32), np.ones((8, 8), bool))


def test_restore_folder_grain_changes_only_masked_pixels_and_is_recorded(tmp_path):
    import dataclasses

    from archive_restore import io as aio
    from archive_restore import pipeline
    from archive_restore.config import RuntimeConfig
    from tests.pipeline_fakes import FakeSession
    from tests.test_pipeline import last_records, make_archive

    inp, masks = tmp_path / "scans", tmp_path / "masks"
    items = make_archive(inp, masks)
    plain, grained = tmp_path / "plain", tmp_path / "grained"
    pipeline.restore_folder(inp, plain, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    rt = dataclasses.replace(RuntimeConfig(), grain=1.0)
    s = pipeline.restore_folder(inp, grained, masks_dir=masks, session=FakeSession(), runtime=rt, handle_sigint=False)
    assert s.counts["restored"] == 5 and s.counts["failed"] == 0
    recs = last_records(grained)
    assert all(r["settings"]["grain"] == 1.0 for r in recs.values())
    assert all(r["settings"]["grain"] == 0.0 for r in last_records(plain).values())
    changed = 0
    for rel, m in items.items():
        if not m.any() or rel.endswith(".jpg"):
            continue
        src, a, b = (aio.read_scan(d / rel).pixels for d in (inp, plain, grained))
        assert (b[~m] == src[~m]).all()  # outside the mask: the input, bit for bit
        changed += int((b[m] != a[m]).any())  # the fake's flat fill got grain
    assert changed >= 3
    # the grain is seeded by the file: a rerun with the same settings is resumed, not redone
    again = pipeline.restore_folder(inp, grained, masks_dir=masks, session=FakeSession(), runtime=rt, handle_sigint=False)
    assert again.counts["skipped"] == len(items)
