"""masks.detect: each detector finds planted damage on small images and leaves a clean one alone.

The first five tests run for both detectors (``MaskConfig.detector``: the rules and the shipped
learned one in export/); the others test the rules' own shape and colour tests."""

import dataclasses

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


def test_the_coarse_level_is_where_a_soft_scan_turns_sharp():
    from archive_restore.masks import LEVEL_MIN_SIDE, coarse_level, sharp_share

    assert LEVEL_MIN_SIDE == 256

    def factor(img, scales="auto"):
        got = coarse_level(img, scales)
        if got is None:
            return None
        s, small = got
        assert small.shape[:2] == (-(-img.shape[0] // s), -(-img.shape[1] // s))
        return s

    soft = lambda h, w: cv2.resize(_clean(h // 8, w // 8, seed=1), (w, h), interpolation=cv2.INTER_CUBIC)  # noqa: E731
    assert sharp_share(soft(800, 1200)) < 0.001
    assert factor(soft(320, 480)) is None  # cbsd68's size: the photos the detectors were tuned on are never shrunk
    assert factor(soft(511, 2000)) is None
    assert factor(soft(512, 700)) == 2
    assert factor(soft(2048, 3072)) == 8  # soft all the way down to a 256 px short side
    assert factor(soft(2048, 3072), "native") is None
    # sharp detail in the scan's own pixels (an album page of small photos, a sharp film scan):
    # shrinking it would make thumbnails, so it is searched as it is
    sharp = soft(1024, 1024)
    sharp[::8] = 255 - sharp[::8]
    assert sharp_share(sharp) > 0.05
    assert factor(sharp) is None
    # a sharp 512 px photo scanned at 2x: soft at 1/1, sharp at 1/2, so level 2
    half = soft(512, 512)
    half[::8] = 255 - half[::8]
    assert factor(cv2.resize(half, (1024, 1024), interpolation=cv2.INTER_CUBIC)) == 2
    with pytest.raises(ValueError, match="scales"):
        coarse_level(soft(160, 160), "all")


@pytest.mark.parametrize("shape,s", [((40, 60), 2), ((41, 63), 4), ((17, 9), 8)])
def test_shrink_and_enlarge_keep_places(shape, s):
    from archive_restore.masks import enlarge, shrink

    h, w = shape
    img = np.zeros((h, w, 3), np.uint8)
    img[: s * (h // s), : s * (w // s)] = 200  # whole blocks
    small = shrink(img, s)
    assert small.shape == (-(-h // s), -(-w // s), 3)
    assert small[0, 0, 0] == 200
    for cols in (slice(0, 1), slice(-1, None)):  # the first coarse column; the last, over the padded edge
        m = np.zeros(small.shape[:2], bool)
        m[:, cols] = True
        big = enlarge(m, s, shape)
        assert big.shape == shape
        x0 = 0 if cols.start == 0 else s * (small.shape[1] - 1)
        x1 = min(w, x0 + s)
        assert big[:, x0:x1].all()  # the coarse column's own s-px band, edges where the blocks meet
        assert not big[:, :x0].any() and not big[:, x1:].any()


def test_levels_find_damage_that_is_wide_on_a_high_resolution_scan():
    """The same damaged photo scanned at 4x: the detector tuned on ~256 px photos misses its
    damage at native resolution (a dark scratch 8 px wide and soft, specks 16 px across), and the
    levels find it, where the scan shrunk by 4 looks like the photo it learned on."""
    img = _clean(256, 320, seed=5)
    gt = np.zeros(img.shape[:2], np.uint8)
    cv2.line(img, (40, 0), (90, 255), (25, 25, 25), 2, cv2.LINE_AA)
    cv2.line(gt, (40, 0), (90, 255), 1, 2, cv2.LINE_AA)
    for x, y in [(200, 60), (250, 150), (180, 210)]:
        cv2.circle(img, (x, y), 2, (250, 250, 250), -1, cv2.LINE_AA)
        cv2.circle(gt, (x, y), 2, 1, -1, cv2.LINE_AA)
    big = cv2.resize(img, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    big_gt = cv2.resize(gt, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST) > 0

    def recall(scales):
        s = tolerant_scores(detect(big, MaskConfig(scales=scales)).mask, big_gt, tol=8)
        return s["tp_gt"] / (s["tp_gt"] + s["fn"]), s["fp"] / big_gt.size

    native, (auto, fp) = recall("native"), recall("auto")
    assert native[0] < 0.3
    assert auto > 0.8 and fp < 0.01
    clean = cv2.resize(_clean(256, 320, seed=5), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    assert detect(clean, MaskConfig(scales="auto")).mask.mean() < 0.001


def test_a_level_adds_what_the_native_pass_missed_not_outlines_of_what_it_found():
    from archive_restore.masks import _within, beyond_native

    h, w, r = 120, 160, 8
    native = np.zeros((h, w), bool)
    native[10:110, 20:22] = True  # a thin scratch found natively
    native[40:44, 100:104] = True  # a piece of a wide tear found natively
    found = np.zeros((h, w), bool)
    found[8:112, 16:27] = True  # the level's fatter outline of the thin scratch
    found[30:90, 90:140] = True  # the whole tear
    found[5:15, 60:70] = True  # something only the level found
    added = beyond_native(found, _within(native, r), r)
    assert not added[:, 10:40].any()  # the outline adds nothing
    assert (added | native)[30:90, 90:140].all()  # the tear whole, the ring around the native piece included
    assert added[5:15, 60:70].all()
    assert not (added & ~found).any()
    assert not beyond_native(np.zeros((h, w), bool), _within(native, r), r).any()


def test_a_sharp_print_on_a_flat_or_grainy_scanner_bed_is_not_shrunk():
    """The bed around a print (1/9 of the scan here) must not make a sharp print look soft."""
    from archive_restore.masks import coarse_level, sharp_share

    print_ = cv2.resize(_clean(64, 64, seed=2), (512, 512), interpolation=cv2.INTER_CUBIC)
    print_[::8] = 255 - print_[::8]  # sharp detail at the scan's own pixels
    for noise in (0, 2):
        bed = np.full((1536, 1536, 3), 243, np.float32)
        bed += np.random.default_rng(0).normal(0, noise, bed.shape[:2])[..., None]
        bed = np.clip(bed, 0, 255).astype(np.uint8)
        bed[512:1024, 512:1024] = print_
        assert sharp_share(bed) > 0.05, noise
        assert coarse_level(bed) is None
    odd = np.ascontiguousarray(bed[:1535, :1533])  # odd sizes are measured too
    assert sharp_share(odd) > 0.05


def test_detect_adds_what_only_the_coarse_level_found_not_a_fatter_copy_of_native_finds(monkeypatch):
    import archive_restore.masks as masks_mod

    soft = cv2.resize(_clean(64, 96, seed=3), (768, 512), interpolation=cv2.INTER_CUBIC)
    assert masks_mod.coarse_level(soft)[0] == 2

    def fake(image, cfg, progress=None):
        m = np.zeros(image.shape[:2], bool)
        if image.shape[0] == 512:  # native: one crisp speck
            cv2.circle(m.view(np.uint8), (200, 200), 2, 1, -1)
        else:  # the level: the same speck, fatter, and a stain the native pass missed
            cv2.circle(m.view(np.uint8), (100, 100), 2, 1, -1)  # 4 px enlarged: 2 px fatter than native
            m[150:200, 250:330] = True
        return {"dust": m, "blotches": np.zeros_like(m)}

    monkeypatch.setattr(masks_mod, "_detect_kinds", fake)
    cfg = MaskConfig(dilate=0)
    auto, native = detect(soft, cfg), detect(soft, dataclasses.replace(cfg, scales="native"))
    speck = np.zeros(soft.shape[:2], bool)
    speck[180:221, 180:221] = True
    assert (auto.mask & speck).sum() == (native.mask & speck).sum() == 13  # the speck as the native pass drew it
    assert auto.mask[300:400, 500:660].all()  # the stain, enlarged
    assert auto.kind_pixels["dust"] == 13 + 100 * 160


def test_detect_reports_progress_over_both_levels(monkeypatch):
    """``detect(progress=...)`` on a soft scan with a coarse level at 1/2: the native pass is 4/5
    of the work, the level the last 1/5; on a sharp scan of the same size (no level) the native
    pass's 4/5 is followed by 1; with scales native the native pass is the whole."""
    import archive_restore.masks as masks_mod

    soft = cv2.resize(_clean(64, 96, seed=3), (768, 512), interpolation=cv2.INTER_CUBIC)

    def fake(image, cfg, progress=None):
        for f in (0.5, 1.0):
            progress(f)
        return {"dust": np.zeros(image.shape[:2], bool)}

    monkeypatch.setattr(masks_mod, "_detect_kinds", fake)
    seen: list[float] = []
    detect(soft, MaskConfig(), progress=seen.append)
    assert seen == pytest.approx([0.4, 0.8, 0.9, 1.0])
    seen.clear()
    detect(soft, MaskConfig(scales="native"), progress=seen.append)
    assert seen == [0.5, 1.0]
    noise = np.random.default_rng(0).integers(-60, 61, soft.shape[:2])[..., None]
    sharp = np.clip(soft.astype(int) + noise, 0, 255).astype(np.uint8)  # detail at the scan's own pixels: no coarse level
    assert masks_mod.coarse_level(sharp) is None
    seen.clear()
    detect(sharp, MaskConfig(), progress=seen.append)
    assert seen == pytest.approx([0.4, 0.8, 1.0])


def test_a_few_crisp_specks_do_not_make_a_flat_soft_scan_look_sharp():
    """A nearly flat soft scan has almost no texture; its dust specks must not be all that is
    judged (TEXTURE_FLOOR): it is still searched at a coarse level."""
    from archive_restore.masks import coarse_level

    soft = cv2.resize(_clean(256, 256, seed=4), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
    for x, y in np.random.default_rng(1).integers(20, 1000, (20, 2)):
        cv2.circle(soft, (int(x), int(y)), 2, (250, 250, 250), -1, cv2.LINE_AA)
    assert coarse_level(soft) is not None
