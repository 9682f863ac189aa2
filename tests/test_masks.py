"""masks.detect: each detector finds planted damage on small images and leaves a clean one alone.

The first five tests run for both detectors (``MaskConfig.detector``: the rules and the shipped
learned one in export/); the others test the rules' own shape and colour tests."""

import cv2
import numpy as np
import pytest

from archive_restore.config import MaskConfig
from archive_restore.evaluate import tolerant_scores
from archive_restore.masks import detect


def _clean(h=160, w=200, seed=0):
    """A smooth photo-like image: gradients plus gentle low-frequency noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = 90 + 50 * np.sin(x / 37.0) * np.cos(y / 29.0)
    noise = cv2.resize(rng.normal(0, 12, (h // 16, w // 16)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    g = np.clip(base + noise, 0, 255)
    return np.stack([g, g * 0.9 + 10, g * 0.8 + 20], -1).astype(np.uint8)


BOTH = pytest.mark.parametrize("detector", ["rules", "learned"])


@BOTH
def test_clean_image_left_alone(detector):
    r = detect(_clean(), MaskConfig(detector=detector))
    assert r.mask.mean() < 0.001


@pytest.mark.parametrize("detector", ["rules", pytest.param("learned", marks=pytest.mark.xfail(strict=True, reason=(
    "known gap (docs/quality.md sessions 7 and 12): on this grain-free toy image detector_v7 scores the "
    "near-white 1 px line about 0.01 (v4 the same; a 215-level line 0.84, a dark one 0.94), while the same "
    "line drawn over real photos scores 1.0 unless the photo is near-black there")))])
def test_finds_scratch(detector):
    img = _clean()
    cv2.line(img, (60, 0), (70, 159), (245, 245, 240), 1, cv2.LINE_AA)
    gt = np.zeros(img.shape[:2], np.uint8)
    cv2.line(gt, (60, 0), (70, 159), 1, 1, cv2.LINE_AA)
    s = tolerant_scores(detect(img, MaskConfig(detector=detector)).mask, gt > 0)
    assert s["tp_gt"] / (s["tp_gt"] + s["fn"]) > 0.8
    assert s["fp"] < 0.02 * img.shape[0] * img.shape[1]


@BOTH
def test_finds_dust(detector):
    img = _clean()
    pts = [(30, 40), (120, 80), (170, 130)]
    for x, y in pts:
        cv2.circle(img, (x, y), 2, (250, 250, 250), -1, cv2.LINE_AA)
    m = detect(img, MaskConfig(detector=detector)).mask
    assert all(m[y, x] for x, y in pts)


@BOTH
def test_finds_date_stamp(detector):
    img = _clean()
    cv2.putText(img, "98 7 14", (100, 145), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 140, 40), 2, cv2.LINE_AA)
    stamp = np.zeros(img.shape[:2], np.uint8)
    cv2.putText(stamp, "98 7 14", (100, 145), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1, 2, cv2.LINE_AA)
    r = detect(img, MaskConfig(detector=detector))
    s = tolerant_scores(r.mask, stamp > 0)
    assert s["tp_gt"] / (s["tp_gt"] + s["fn"]) > 0.6
    assert r.kind_pixels["text"] > 0


@BOTH
def test_finds_paper_white_blotch(detector):
    img = _clean()
    cv2.ellipse(img, (100, 70), (14, 10), 20, 0, 360, (240, 238, 232), -1, cv2.LINE_AA)
    m = detect(img, MaskConfig(detector=detector)).mask
    assert m[70, 100] and m[70, 110]
    assert m.mean() < 0.05


def test_tiling_matches_whole_image():
    img = _clean(300, 340, seed=2)
    cv2.line(img, (10, 20), (330, 280), (20, 20, 20), 2, cv2.LINE_AA)
    whole = detect(img, MaskConfig(detector="rules", tile=1024)).mask
    tiled = detect(img, MaskConfig(detector="rules", tile=128, overlap=48)).mask
    assert whole.any()
    assert (whole != tiled).mean() < 0.002


def test_tile_threads_give_the_same_mask():
    img = _clean(300, 340, seed=3)
    cv2.line(img, (10, 20), (330, 280), (20, 20, 20), 2, cv2.LINE_AA)
    cv2.circle(img, (200, 60), 2, (250, 250, 250), -1, cv2.LINE_AA)
    one = detect(img, MaskConfig(detector="rules", tile=128, overlap=48, threads=1))
    three = detect(img, MaskConfig(detector="rules", tile=128, overlap=48, threads=3))
    assert one.mask.any()
    assert np.array_equal(one.mask, three.mask) and one.kind_pixels == three.kind_pixels
    with pytest.raises(ValueError, match="threads"):
        detect(img, MaskConfig(detector="rules", tile=128, threads=-1))


def test_bad_input_and_sensitivity():
    with pytest.raises(ValueError):
        detect(np.zeros((10, 10), np.uint8), MaskConfig(detector="rules"))
    with pytest.raises(ValueError):
        detect(np.zeros((10, 10, 3), np.uint8), MaskConfig(detector="rules", sensitivity="extreme"))


def test_strong_straight_edge_is_not_a_scratch():
    """An object boundary (step edge, even a sharpened one with a thin halo on one side)
    is not a ridge: the ridge filter's two sides differ, so nothing is flagged."""
    img = _clean()
    img[:, 100:] = np.clip(img[:, 100:].astype(np.int16) + 90, 0, 255).astype(np.uint8)
    img[:, 99] = np.clip(img[:, 99].astype(np.int16) - 25, 0, 255).astype(np.uint8)  # unsharp halo
    r = detect(img, MaskConfig(detector="rules"))
    assert r.kind_pixels["scratches"] == 0
    assert r.mask.mean() < 0.001


def test_dark_scratch_found():
    img = np.clip(_clean().astype(np.int16) + 60, 0, 255).astype(np.uint8)
    cv2.line(img, (0, 40), (199, 120), (25, 25, 25), 2, cv2.LINE_AA)
    gt = np.zeros(img.shape[:2], np.uint8)
    cv2.line(gt, (0, 40), (199, 120), 1, 2, cv2.LINE_AA)
    s = tolerant_scores(detect(img, MaskConfig(detector="rules")).mask, gt > 0)
    assert s["tp_gt"] / (s["tp_gt"] + s["fn"]) > 0.8


def test_white_fence_planks_are_not_blotches():
    """Flat white elongated patches (fence planks, window frames) are scene, not emulsion loss."""
    img = _clean()
    for x in range(20, 190, 30):
        img[30:140, x:x + 12] = (245, 245, 242)
    assert detect(img, MaskConfig(detector="rules")).kind_pixels["blotches"] == 0


def test_white_sky_inside_a_scan_frame_is_not_a_blotch():
    """A blown-out sky runs off the top of the picture; a scanner's thin dark frame must not
    turn it into an island of "paper-white loss" (19 % of a real scan was flagged so)."""
    img = _clean(300, 200)
    img[:70] = (250, 250, 249)  # 20 % of the picture, wider than tall
    img[:2], img[:, :2], img[:, -2:] = 30, 30, 30  # a 2-px dark scan frame
    r = detect(img, MaskConfig(detector="rules"))
    assert r.kind_pixels["blotches"] == 0
    cv2.ellipse(img, (100, 200), (14, 10), 20, 0, 360, (240, 238, 232), -1, cv2.LINE_AA)
    assert detect(img, MaskConfig(detector="rules")).mask[200, 100]  # a loss inside the frame is still found
    tear = _clean(300, 200)
    cv2.ellipse(tear, (0, 200), (30, 40), 0, 0, 360, (246, 245, 242), -1, cv2.LINE_AA)
    assert detect(tear, MaskConfig(detector="rules")).mask[200, 10]  # a tear biting into one side is too


def test_painted_yellow_line_is_not_a_scratch():
    """Scratches expose white base or black binder; a saturated painted line (road marking)
    is more colourful than its surroundings and is scene content."""
    g = np.full((160, 200, 3), 95, np.uint8)
    g += np.random.default_rng(1).integers(0, 6, g.shape, dtype=np.uint8)
    cv2.line(g, (0, 140), (199, 100), (235, 200, 40), 2, cv2.LINE_AA)
    assert detect(g, MaskConfig(detector="rules")).kind_pixels["scratches"] == 0
    cv2.line(g, (0, 20), (199, 60), (240, 240, 236), 2, cv2.LINE_AA)  # a white one is found
    assert detect(g, MaskConfig(detector="rules")).kind_pixels["scratches"] > 100


def test_orange_print_mid_picture_is_not_a_date_stamp():
    """Camera date stamps sit near the top or bottom edge; orange print in the middle of the
    picture (a postage stamp, a poster, a shop sign) belongs to the scene."""
    img = _clean()
    cv2.putText(img, "98 7 14", (60, 85), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 140, 40), 2, cv2.LINE_AA)
    assert detect(img, MaskConfig(detector="rules")).kind_pixels["text"] == 0


def test_corner_of_a_dark_shape_is_not_dust():
    """Sharp corners (chimneys and roofs against the sky) stand out of a median filter but
    have an uneven surround; dust sits on even photo."""
    img = np.full((120, 160, 3), 225, np.uint8)
    img[60:, :] = 40
    img[50:60, 70:76] = 40  # a small chimney on the roof line
    assert detect(img, MaskConfig(detector="rules")).kind_pixels["dust"] == 0


def test_specks_on_flat_photo_are_not_scratches():
    """A speck lights the line filter at every angle (a star one kernel long); on flat photo,
    where short lines are accepted, such stars must not become scratches."""
    img = np.full((160, 200, 3), 120, np.uint8)
    for x, y in [(40, 40), (120, 60), (160, 130), (70, 120)]:
        cv2.circle(img, (x, y), 2, (250, 250, 250), -1, cv2.LINE_AA)
    r = detect(img, MaskConfig(detector="rules"))
    assert r.kind_pixels["scratches"] == 0
    assert r.kind_pixels["dust"] > 0


def test_dust_grey_test_at_seeds_equals_the_whole_image_median():
    """The colour test of dust seeds takes the 9x9 median of colourfulness at the seeds only;
    it must equal OpenCV's whole-image medianBlur there (borders included), few seeds or many."""
    from archive_restore.masks.dust import _grey

    rng = np.random.default_rng(3)
    chroma = cv2.GaussianBlur(rng.uniform(0, 255, (70, 90)).astype(np.float32), (0, 0), 1.0)
    chroma[rng.random(chroma.shape) < 0.05] = 255  # saturated points
    chroma = np.round(chroma)
    full = (chroma - cv2.medianBlur(chroma.astype(np.uint8), 9)) < 15
    for frac in (0.005, 0.3):  # a few seeds (per-seed median), many (whole-image median)
        where = rng.random(chroma.shape) < frac
        where[0, 0] = where[-1, -1] = where[0, -1] = True  # corners: the replicated border
        got = _grey(chroma, where, 9, 15)
        assert np.array_equal(got, where & full)
        assert got.any() and (where & ~full).any()  # both outcomes occur
