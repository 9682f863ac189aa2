"""damage.py: determinism, exact masks, every kind paints something, fast masks."""

import time

import numpy as np
import pytest

from archive_restore.damage import DIFF_THRESHOLD, KINDS, damage_mask, synthesize


def _photo(h=96, w=128):
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // w, y * 255 // h, np.full_like(x, 120)], -1)
    return img.astype(np.uint8)


def test_deterministic():
    a = synthesize(_photo(), np.random.default_rng(7))
    b = synthesize(_photo(), np.random.default_rng(7))
    assert np.array_equal(a.damaged, b.damaged) and np.array_equal(a.mask, b.mask)
    c = synthesize(_photo(), np.random.default_rng(8))
    assert not np.array_equal(a.damaged, c.damaged)


@pytest.mark.parametrize("kind", KINDS)
def test_mask_is_exactly_the_changed_pixels(kind):
    img = _photo()
    d = synthesize(img, np.random.default_rng(3), kinds=[kind])
    diff = np.abs(d.damaged.astype(int) - img.astype(int)).max(axis=2)
    assert d.mask.any(), kind
    assert np.array_equal(d.mask, diff > DIFF_THRESHOLD)
    assert np.array_equal(d.kind_masks[kind], d.mask)
    assert d.damaged.dtype == np.uint8 and d.mask.dtype == bool


def test_grey_scan_stays_grey():
    g = _photo()[..., :1].repeat(3, axis=2)
    d = synthesize(g, np.random.default_rng(1), kinds=list(KINDS))
    assert np.array_equal(d.damaged[..., 0], d.damaged[..., 1])
    assert np.array_equal(d.damaged[..., 1], d.damaged[..., 2])


@pytest.mark.parametrize("kind", KINDS)
def test_damage_mask_fast_and_deterministic(kind):
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    masks = [damage_mask((256, 256), rng, kind) for _ in range(20)]
    assert (time.perf_counter() - t) / 20 < 0.02
    assert all(m.shape == (256, 256) and m.dtype == bool for m in masks)
    assert np.mean([m.mean() for m in masks]) > 0.001
    assert np.array_equal(damage_mask((64, 80), np.random.default_rng(5), kind), damage_mask((64, 80), np.random.default_rng(5), kind))


def test_unknown_kind_raises():
    with pytest.raises(ValueError):
        damage_mask((32, 32), np.random.default_rng(0), "mould")


def test_caption_fonts_are_distinct_stroke_faces():
    """Captions draw in OpenCV's Hershey faces, whose variety (sans, serif, script, italic) is
    what makes them look like typed, printed and hand-lettered captions. OpenCV 5 renders every
    face as one built-in sans; pyproject pins OpenCV below 5, and this fails if that changes."""
    import cv2

    from archive_restore.damage import _FONTS

    def draw(face: int) -> np.ndarray:
        c = np.zeros((48, 320), np.uint8)
        cv2.putText(c, "Summer 1962", (4, 36), face, 1.0, 255, 2, cv2.LINE_AA)
        return c > 127

    def iou(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max((a | b).sum(), 1))

    simplex = draw(cv2.FONT_HERSHEY_SIMPLEX)
    assert iou(simplex, draw(cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)) < 0.5
    complex_ = draw(cv2.FONT_HERSHEY_COMPLEX)
    assert iou(simplex, complex_) < 0.5  # serifs
    assert iou(complex_, draw(cv2.FONT_HERSHEY_COMPLEX | cv2.FONT_ITALIC)) < 0.5
    assert len(_FONTS) == 8


def test_hairline_fields_are_drawn_on_their_own_stream(monkeypatch):
    """About HAIRLINE_FIELD_SHARE of scratch draws carry a field of fine straight hairlines
    (what most real scratched prints show); the field draws from a spawned generator, so the
    rest of the draw (and every later draw from the same generator) is what it was without it."""
    from archive_restore import damage

    img = _photo(128, 160)
    with_field = []
    for seed in range(60):
        rng_a, rng_b = np.random.default_rng([seed, 0, 1]), np.random.default_rng([seed, 0, 1])
        a = synthesize(img, rng_a, kinds=["scratches"])
        with monkeypatch.context() as m:
            m.setattr(damage, "_hairline_field", lambda shape, rng, severity: [])
            b = synthesize(img, rng_b, kinds=["scratches"])
        assert rng_a.random() == rng_b.random()  # the caller's stream moved alike
        extra = a.mask & ~b.mask
        if not extra.any():
            assert np.array_equal(a.damaged, b.damaged)
            continue
        with_field.append(seed)
        # near-white thin lines: what it adds is brighter on the whole, and mostly gone after
        # an opening with a 5x5 square (a 1-px line blurred by < 0.6 px is about 3 px wide)
        assert (a.damaged[extra].astype(int) - b.damaged[extra].astype(int)).mean() > 3
        assert cv2_thin_share(extra) > 0.5
    assert 0.15 <= len(with_field) / 60 <= 0.55, len(with_field)


def cv2_thin_share(m: np.ndarray) -> float:
    """Share of ``m``'s pixels that an opening with a 5x5 square removes (thin structure)."""
    import cv2

    opened = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)).astype(bool)
    return float((m & ~opened).sum() / max(m.sum(), 1))
