"""Window planning, crop and paste-back (archive_restore.runtime.windows)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from archive_restore.runtime.windows import ATOMIC_THICKNESS, core_mask, crop, paste, plan_windows, window_pixels


def scratch_mask(h: int, w: int, seed: int = 0, n: int = 4, thickness: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = np.zeros((h, w), np.uint8)
    for _ in range(n):
        p = rng.integers(0, [w, h], size=(2, 2))
        cv2.line(m, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 1, thickness)
    for _ in range(20):  # dust specks
        y, x = rng.integers(0, h), rng.integers(0, w)
        cv2.circle(m, (int(x), int(y)), int(rng.integers(1, 4)), 1, -1)
    return m.astype(bool)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window,context", [(512, 48), (128, 16), (64, 24)])
def test_every_mask_pixel_in_exactly_one_core_with_context(seed, window, context):
    mask = scratch_mask(300 + 37 * seed, 410, seed)
    H, W = mask.shape
    wins = plan_windows(mask, window=window, context=context)
    _assert_pasted_once(mask, wins, window, min(16, context))


def _assert_pasted_once(mask, wins, window, min_context):
    """Every mask pixel is pasted by exactly one window, nothing else is; boxes hold their
    cores with at least ``min_context`` of context unless the image border is closer."""
    H, W = mask.shape
    count = np.zeros(mask.shape, np.int32)
    for win in wins:
        y0, x0, y1, x1 = win.box
        cy0, cx0, cy1, cx1 = win.core
        assert 0 <= y0 <= cy0 < cy1 <= y1 <= H and 0 <= x0 <= cx0 < cx1 <= x1 <= W
        assert y1 - y0 <= window and x1 - x0 <= window
        mc = min_context
        assert cy0 - y0 >= min(mc, cy0) and cx0 - x0 >= min(mc, cx0)
        assert y1 - cy1 >= min(mc, H - cy1) and x1 - cx1 >= min(mc, W - cx1)
        count[y0:y1, x0:x1] += core_mask(crop(mask, win), win)
    assert (count[mask] == 1).all()
    assert (count[~mask] == 0).all()


def test_a_wide_hole_across_the_grid_is_filled_by_one_window():
    """A blotch that the grid would cut in two is one window's (a seam through a fill shows
    where two windows met); thin scratches through it and beside it are planned as before."""
    mask = np.zeros((700, 1200), np.uint8)
    cv2.ellipse(mask, (416, 300), (60, 45), 30, 0, 360, 1, -1)  # across x = 416, the first core side
    cv2.line(mask, (0, 250), (1199, 420), 1, 3)  # a scratch through it
    cv2.circle(mask, (830, 200), 30, 1, -1)  # a blotch inside one cell: planned as before
    mask = mask.astype(bool)
    wins = plan_windows(mask, window=512, context=48)
    _assert_pasted_once(mask, wins, 512, 16)
    blotch = np.zeros(mask.shape, np.uint8)
    cv2.ellipse(blotch, (416, 300), (52, 37), 30, 0, 360, 1, -1)  # its body, 8 px in from the edge
    blotch = blotch.astype(bool)
    owners = set()
    for i, win in enumerate(wins):
        y0, x0, y1, x1 = win.box
        if (core_mask(crop(mask, win), win) & blotch[y0:y1, x0:x1]).any():
            owners.add(i)
    assert len(owners) == 1
    w = wins[owners.pop()]
    assert w.own is not None and w.core[1] < 416 < w.core[3]
    # narrower than ATOMIC_THICKNESS: a scratch crossing the grid is still cut between windows
    thin = np.zeros((300, 1000), bool)
    thin[150 : 150 + int(ATOMIC_THICKNESS) - 3, 100:900] = True
    assert len(plan_windows(thin, 512, 48)) > 1 and all(w.own is None for w in plan_windows(thin, 512, 48))


def test_diagonal_scratch_is_followed_not_boxed():
    mask = np.zeros((2000, 2000), np.uint8)
    cv2.line(mask, (0, 0), (1999, 1999), 1, 3)
    mask = mask.astype(bool)
    wins = plan_windows(mask, window=512, context=48)
    assert len(wins) > 4
    # far less model work than covering the image (a single box would be 4 MP)
    assert window_pixels(wins) < 0.5 * mask.size


def test_empty_mask_plans_nothing():
    assert plan_windows(np.zeros((50, 60), bool)) == []


@pytest.mark.parametrize("channels,dtype", [(1, np.uint8), (3, np.uint8), (4, np.uint16)])
def test_crop_then_paste_is_identity_outside_mask(channels, dtype):
    rng = np.random.default_rng(3)
    mask = scratch_mask(200, 260, 5)
    top = np.iinfo(dtype).max
    image = rng.integers(0, top, (200, 260, channels), dtype=dtype, endpoint=True)
    original = image.copy()
    out = image.copy()
    for win in plan_windows(mask, window=96, context=16):
        patch = crop(out, win)
        patch[:] = top - patch  # a "fill" that changes every pixel of the window
        paste(out, patch, crop(mask, win), win)
    assert (image == original).all()  # crop never aliases the source
    assert (out[~mask] == original[~mask]).all()
    assert (out[mask] == top - original[mask]).all()  # each mask pixel pasted exactly once


def test_paste_rejects_wrong_shape():
    mask = np.ones((40, 40), bool)
    win = plan_windows(mask, window=64, context=8)[0]
    with pytest.raises(ValueError):
        paste(np.zeros((40, 40, 3), np.uint8), np.zeros((5, 5, 3), np.uint8), np.ones((5, 5), bool), win)


def test_context_grows_with_hole_width():
    thin = np.zeros((400, 400), bool)
    thin[100:103, 20:380] = True  # 3-px scratch
    wide = np.zeros((400, 400), bool)
    wide[150:210, 150:210] = True  # 60-px blotch
    def margin(w):
        return w.core[0] - w.box[0]
    assert max(margin(w) for w in plan_windows(thin, 512, 48)) <= 24
    assert all(margin(w) >= 48 for w in plan_windows(wide, 512, 48))
    # a straight thin scratch is one narrow band, not a box per 32 px
    wins = plan_windows(thin, 512, 48)
    assert window_pixels(wins) < 60 * 400


def test_no_seam_through_a_blotch_fill():
    """Through ``restore_pixels``: a fill that depends on its window's context (FakeSession:
    the mean of the window's known pixels) is one colour across a blotch on the grid line."""
    from archive_restore.pipeline import restore_pixels
    from tests.pipeline_fakes import FakeSession

    h, w = 500, 900
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    image = np.stack([ramp, 255 - ramp, np.full_like(ramp, 90)], -1).astype(np.uint8)
    mask = np.zeros((h, w), np.uint8)
    cv2.circle(mask, (416, 250), 50, 1, -1)
    mask = mask.astype(bool)
    out = restore_pixels(FakeSession(), image, mask)
    assert len(np.unique(out[mask].reshape(-1, 3), axis=0)) == 1
    assert (out[~mask] == image[~mask]).all()


def _tear(h: int = 1100, w: int = 1300) -> np.ndarray:
    """(h, w) bool: an ellipse 700 x 560 px across the grid corner (416, 416): no window holds it."""
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (450, 430), (350, 280), 10, 0, 360, 1, -1)
    return m.astype(bool)


def _pasters(mask, wins):
    """(H, W) int32: index of the window that pastes each pixel, -1 where none does."""
    lab = np.full(mask.shape, -1, np.int32)
    for i, w in enumerate(wins):
        y0, x0, y1, x1 = w.box
        lab[y0:y1, x0:x1][core_mask(crop(mask, w), w)] = i
    return lab


@pytest.mark.parametrize("case", ["tear", "thick scratches"])
def test_windows_that_meet_inside_a_wide_hole_run_in_rounds(case):
    """Windows whose pasted pixels touch inside a wide hole (ATOMIC_THICKNESS or wider there)
    run in different rounds; a later window's ``known`` is exactly what earlier rounds paste in
    its box; the plan is ordered by round and still pastes every mask pixel once. Windows that
    meet only across thin scratches, or touch nothing, stay in round 0."""
    mask = _tear() if case == "tear" else scratch_mask(900, 1300, 4, n=6, thickness=11)
    wins = plan_windows(mask, window=512, context=48)
    _assert_pasted_once(mask, wins, 512, 16)
    assert [w.round for w in wins] == sorted(w.round for w in wins)
    assert max(w.round for w in wins) >= 1
    lab = _pasters(mask, wins)
    deep = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1] >= ATOMIC_THICKNESS / 2
    rounds = np.array([w.round for w in wins])
    for i, w in enumerate(wins):
        y0, x0, y1, x1 = w.box
        sub = lab[y0:y1, x0:x1]
        earlier = (sub >= 0) & (rounds[np.maximum(sub, 0)] < w.round)
        assert (w.known if w.known is not None else np.zeros(w.shape, bool)).tolist() == earlier.tolist()
        grown = cv2.dilate((lab == i).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        for j in set(np.unique(lab[grown & deep]).tolist()) - {-1, i}:
            assert wins[j].round != w.round, f"windows {i} and {j} touch in round {w.round}"
    specks = np.zeros((1000, 1000), bool)
    specks[100:104, 100:104] = specks[100:104, 700:704] = specks[800:804, 500:504] = True
    thin = scratch_mask(900, 1300, 4, n=6, thickness=3)
    for m in (specks, thin):
        wins = plan_windows(m, 512, 48)
        assert len(wins) > 1 and all(w.round == 0 and w.known is None for w in wins)


class _TeleaSession:
    """Fills each window with ``cv2.inpaint`` TELEA from the window's own known pixels: a fill
    that runs on from the hole's edge, as the generator's does."""

    pad_multiple = 8

    def fill(self, images, masks):
        out = []
        for img, m in zip(images, masks):
            u8 = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
            f = cv2.inpaint(u8, m.astype(np.uint8), 5, cv2.INPAINT_TELEA).astype(np.float32) / 255
            out.append(np.where(m[..., None], f, img))
        return out


def test_no_seam_where_windows_meet_inside_a_tear():
    """Through ``restore_pixels``, with a fill that runs on from known pixels: where two windows
    meet inside a tear larger than a window, the step between their pixels is no larger than
    the fill's own steps nearby (without rounds it was 14x larger: each window filled its part
    from its own side of the tear)."""
    from archive_restore.pipeline import restore_pixels

    mask = _tear()
    h, w = mask.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    image = np.stack([xx / w * 200 + 20, yy / h * 200 + 20, 128 + 60 * np.sin(xx / 90) * np.cos(yy / 70)], -1)
    image = np.clip(image, 0, 255).astype(np.uint8)
    out = restore_pixels(_TeleaSession(), image, mask)
    assert (out[~mask] == image[~mask]).all()
    lab = _pasters(mask, plan_windows(mask, 512, 48))
    g = out.astype(np.float32).mean(axis=2)
    seam, inner = [], []
    for gg, lb in ((g, lab), (g.T, lab.T)):
        a, b = lb[:, 1:-3], lb[:, 2:-2]
        step = np.abs(gg[:, 2:-2] - gg[:, 1:-3])
        at = (a >= 0) & (b >= 0) & (a != b)
        seam.append(step[at])
        same = (a >= 0) & (a == b) & ~at
        inner.append(step[same & (np.roll(at, 3, axis=1) | np.roll(at, -3, axis=1))])
    seam, inner = np.concatenate(seam), np.concatenate(inner)
    assert seam.size > 500 and inner.size > 500
    assert seam.mean() < 2 * inner.mean() + 0.5, (seam.mean(), inner.mean())


def test_a_window_with_almost_no_known_image_waits_for_its_neighbours():
    """Deep in a torn-off corner a window's box is nearly all hole: it runs in a round after
    every window it meets inside the hole that has more known image, so it starts from their
    fills (``STARVED``); the corner's own window, with the least, runs after all of them."""
    from archive_restore.runtime.windows import STARVED

    mask = np.zeros((2000, 3000), np.uint8)
    cv2.fillPoly(mask, [np.array([[0, 0], [1000, 0], [700, 250], [0, 900]], np.int32)], 1)
    mask = mask.astype(bool)
    wins = plan_windows(mask, 512, 48)
    _assert_pasted_once(mask, wins, 512, 16)
    lab = _pasters(mask, wins)
    deep = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1] >= ATOMIC_THICKNESS / 2
    share = [1 - mask[w.box[0] : w.box[2], w.box[1] : w.box[3]].mean() for w in wins]
    starved = 0
    for i, w in enumerate(wins):
        if share[i] >= STARVED:
            continue
        grown = cv2.dilate((lab == i).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        others = set(np.unique(lab[grown & deep]).tolist()) - {-1, i}
        if others:
            starved += 1
            assert all(wins[j].round < w.round for j in others if share[j] > share[i])
            assert w.known is not None and w.known.mean() > 0.1  # it reads their fills
    assert starved >= 2
    corner = next(w for w in wins if w.core[:2] == (0, 0))
    assert share[wins.index(corner)] < 0.05 and corner.round == max(w.round for w in wins)
