"""masks.white_lines: crisp near-white scratches on flat ground, and what the rule must leave
alone (isolated specks, coloured lines, lines along an edge between two surfaces, textured
ground); and that the learned detector adds it to the scratches mask at high sensitivity only."""

import cv2
import numpy as np
import pytest

from archive_restore.masks import learned
from archive_restore.masks.white_lines import WhiteLineParams, white_lines


def _sky(h: int = 160, w: int = 200, specks: float = 0.03, seed: int = 0) -> np.ndarray:
    """A flat blue-grey ground with mild noise and isolated white 1-px specks: (h,w,3) uint8 RGB."""
    rng = np.random.default_rng(seed)
    im = np.empty((h, w, 3), np.float32)
    im[:] = (150, 168, 180)
    im += rng.normal(0, 2.0, (h, w, 1))
    ys, xs = rng.integers(0, h, int(specks * h * w)), rng.integers(0, w, int(specks * h * w))
    im[ys, xs] = 245
    return np.clip(im, 0, 255).astype(np.uint8)


def _line(im: np.ndarray, p0, p1, colour=(248, 248, 246), dashes: bool = True) -> np.ndarray:
    """Draws a 1-px line (broken into 7-on / 2-off dashes when ``dashes``); returns its mask."""
    m = np.zeros(im.shape[:2], np.uint8)
    cv2.line(m, p0, p1, 1, 1)
    if dashes:
        ys, xs = np.nonzero(m)
        order = np.argsort(xs + ys * 1e-3)
        m[ys[order][(np.arange(len(order)) % 9) >= 7], xs[order][(np.arange(len(order)) % 9) >= 7]] = 0
    im[m > 0] = colour
    return m > 0


def test_finds_a_dashed_white_scratch_across_a_speckled_sky():
    im = _sky()
    truth = _line(im, (10, 30), (190, 120))
    before = im.copy()
    m = white_lines(im)
    assert np.array_equal(im, before)  # input untouched
    assert m.dtype == bool and m.shape == im.shape[:2]
    hit = (m & truth).sum() / truth.sum()
    assert hit > 0.8, hit
    off = m & ~cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert off.sum() < 10, off.sum()  # the specks stay out


def test_leaves_specks_alone_and_handles_tiny_and_flat_images():
    assert not white_lines(_sky(specks=0.06)).any()
    assert not white_lines(np.full((3, 3, 3), 255, np.uint8)).any()
    assert not white_lines(np.full((64, 64, 3), 128, np.uint8)).any()


def test_leaves_coloured_lines_alone():
    im = _sky()
    _line(im, (10, 30), (190, 120), colour=(255, 215, 120), dashes=False)  # a painted yellow stripe
    assert not white_lines(im).any()


def test_leaves_a_white_stripe_wider_than_a_hairline_alone():
    """A road marking or window bar 2-3 px wide is scene; the same stripe 1 px wide is found."""
    for width, found in ((1, True), (2, False), (3, False)):
        im = _sky(specks=0.0)
        m = np.zeros(im.shape[:2], np.uint8)
        cv2.line(m, (10, 30), (190, 120), 1, width)
        im[m > 0] = (248, 248, 246)
        assert white_lines(im).any() == found, width


def test_leaves_a_bright_edge_between_two_surfaces_alone():
    """A kerb or pool edge: a thin white line with a darker surface on one side only."""
    im = _sky(specks=0.0)
    im[80:] = np.clip(im[80:].astype(np.int16) - 40, 0, 255).astype(np.uint8)
    _line(im, (0, 80), (199, 80), dashes=False)
    assert not white_lines(im).any()
    flat = _sky(specks=0.0)
    truth = _line(flat, (0, 80), (199, 80), dashes=False)
    assert (white_lines(flat) & truth).sum() > 0.8 * truth.sum()  # the same line on one surface is found


def test_leaves_textured_ground_alone_but_not_grainy_flat_ground():
    rng = np.random.default_rng(3)
    blobs = cv2.GaussianBlur(rng.normal(0, 1, (160, 200)).astype(np.float32), (0, 0), 2.0)
    im = np.repeat(np.clip(120 + blobs / blobs.std() * 25, 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    truth = _line(im, (10, 30), (190, 120))  # foliage- or crowd-scale detail around the line
    assert not white_lines(im).any()
    # the ground tests are what leave it out: without them the same line is found
    assert (white_lines(im, WhiteLineParams(flat=100.0, asym=100.0)) & truth).sum() > 0.8 * truth.sum()
    # fine film grain is flat ground: a scratch across it is found
    grain = np.repeat(np.clip(140 + rng.normal(0, 8, (160, 200)), 0, 255).astype(np.uint8)[..., None], 3, axis=2)
    truth = _line(grain, (10, 30), (190, 120))
    assert (white_lines(grain) & truth).sum() > 0.8 * truth.sum()


@pytest.mark.parametrize("sensitivity,expect", [("medium", False), ("high", True)])
def test_learned_detector_adds_white_lines_at_high_only(monkeypatch, sensitivity, expect):
    im = _sky()
    truth = _line(im, (10, 30), (190, 120))
    # a network that finds nothing, so what the scratches mask holds is the rule's
    monkeypatch.setattr(learned, "_bands", lambda image, path, tile, overlap, progress=None: iter([(0, np.zeros((4,) + image.shape[:2], np.float32))]))
    monkeypatch.setattr(learned, "threshold", lambda s, path=None: {k: (0.9, 0.5) for k in learned.CHANNELS})
    monkeypatch.setattr(learned, "line_rule", lambda s, path=None: None)
    out = learned.detect_kinds_learned(im, sensitivity, ("scratches", "dust"), "unused.onnx")
    assert (out["scratches"] & truth).any() == expect
    assert not out["dust"].any()


@pytest.mark.parametrize("band", [5, 16, 37])
def test_bands_of_rows_give_the_whole_image_answer(band):
    """The rules run a band of rows at a time with context rows each side; scratches crossing
    many bands, a textured half (where the flat-ground test bites near band edges) and the
    scan's own edges give the same mask as one band over the whole image."""
    im = _sky(200, 180, seed=3)
    rng = np.random.default_rng(4)
    im[100:, :90] = np.clip(im[100:, :90].astype(np.int16) + rng.normal(0, 14, (100, 90, 1)), 0, 255).astype(np.uint8)
    _line(im, (2, 20), (197, 60))
    _line(im, (5, 150), (190, 120), dashes=False)
    _line(im, (150, 5), (120, 170))
    whole = white_lines(im, band=10_000)
    assert whole.sum() > 200
    assert np.array_equal(white_lines(im, band=band), whole)
