"""Banded hysteresis (masks.bands) and the learned detector taking a scan a tile row at a time
(masks.learned.detect_kinds_learned): both must give exactly the whole-image answer."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from archive_restore.masks import learned
from archive_restore.masks.bands import BandRegions, pack, unpack
from archive_restore.masks.white_lines import white_lines

ROOT = Path(__file__).resolve().parents[1]


def _smooth_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """(h, w) float32 in [0, 1]: blurred noise, whose threshold maps have regions of all sizes
    (many crossing several bands, some snaking back up across a boundary)."""
    p = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), float(rng.uniform(1, 4)))
    return (p - p.min()) / (p.max() - p.min())


def _cuts(rng: np.random.Generator, h: int) -> list[int]:
    """Random band borders 0 < ... < h, with 1-row bands among them."""
    cuts = sorted(set(rng.integers(1, h, int(rng.integers(1, 12))).tolist()))
    if len(cuts) > 1:
        cuts.append(cuts[0] + 1)  # a band of one row
    return [0] + sorted(set(c for c in cuts if c < h)) + [h]


@pytest.mark.parametrize("seed", range(12))
def test_band_regions_match_whole_image_hysteresis(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(20, 90)), int(rng.integers(1, 70))
    p = _smooth_noise(rng, h, w)
    grow, high = sorted(rng.uniform(0.3, 0.9, 2))
    regions, kept, labels = BandRegions(), [], []
    cuts = _cuts(rng, h)
    for y0, y1 in zip(cuts[:-1], cuts[1:]):
        g = (p[y0:y1] > grow).astype(np.uint8)
        band, n, lab = regions.add(g, p[y0:y1] > high)
        assert lab.shape == g.shape and lab.max() == n - 1
        kept.append(pack(g))
        labels.append(lab)
    got = np.concatenate([regions.mask(b, unpack(bits, w)) for b, bits in enumerate(kept)])
    assert np.array_equal(got, np.concatenate([regions.mask(b, labels=lab) for b, lab in enumerate(labels)]))
    want = learned.hysteresis(p, float(high), float(grow))
    assert want.any() and np.array_equal(got, want)


def test_band_regions_take_seeds_after_the_band_and_link_diagonally():
    """A region seeded only in a later call (``seed``) reaches into every band it crosses,
    including across a boundary it touches only at a corner."""
    g = np.zeros((6, 8), np.uint8)
    g[0:3, 1] = 1  # band 0 (rows 0-2): a stroke ending at (2, 1)
    g[3:6, 2] = 1  # band 1 (rows 3-5): a stroke starting at (3, 2), diagonal to it
    g[4, 6] = 1  # an unlinked dot in band 1
    regions = BandRegions()
    regions.add(g[:3])
    band, n, lab = regions.add(g[3:])
    assert band == 1 and n == 3
    regions.seed(1, np.array([lab[2, 2]]))
    got = np.concatenate([regions.mask(0, g[:3]), regions.mask(1, g[3:])])
    want = g.astype(bool)
    want[4, 6] = False
    assert np.array_equal(got, want)


def test_band_regions_refuse_misuse():
    regions = BandRegions()
    regions.add(np.ones((2, 5), np.uint8))
    with pytest.raises(ValueError, match="widths differ"):
        regions.add(np.ones((2, 6), np.uint8))
    regions = BandRegions()
    regions.add(np.ones((2, 5), np.uint8))
    with pytest.raises(ValueError, match="differs from the one added"):
        regions.mask(0, np.array([[1, 0, 1, 0, 1], [0, 0, 0, 0, 0]], np.uint8))
    with pytest.raises(RuntimeError, match="after mask"):
        regions.add(np.ones((2, 5), np.uint8))
    with pytest.raises(RuntimeError, match="after mask"):
        regions.seed(0, np.array([1]))


@pytest.mark.parametrize("width", [1, 7, 8, 13])
def test_pack_round_trip(width):
    g = np.random.default_rng(width).random((5, width)) > 0.5
    bits = pack(g)
    assert bits.shape == (5, -(-width // 8)) and bits.dtype == np.uint8
    assert np.array_equal(unpack(bits, width), g.astype(np.uint8))


def _whole_image_rule(image: np.ndarray, sensitivity: str, tile: int) -> dict[str, np.ndarray]:
    """The documented answer of ``detect_kinds_learned`` from the whole-scan probabilities."""
    p = learned.probabilities(image, tile=tile)
    pairs = learned.threshold(sensitivity)
    out = {k: learned.hysteresis(p[c], *pairs[k]) for c, k in enumerate(learned.CHANNELS)}
    rule = learned.line_rule(sensitivity)
    if rule is not None:
        out["scratches"] |= learned.line_seeds(p[0], **rule)
    if sensitivity in learned.WHITE_LINES_AT:
        out["scratches"] |= white_lines(image)
    m = out["scratches"]
    cc = learned.components(m)
    bars = learned.drop_bar_families(m, cc=cc)
    out["scratches"] = learned.drop_lattices(bars, cc=cc if bars is m else None)
    return out


@pytest.mark.parametrize("sensitivity", ["medium", "high"])
def test_detector_in_tile_rows_gives_the_whole_image_answer(sensitivity):
    """The shipped detector on a damaged photo cut into 128-px tile rows (the last one a single
    row): every kind's mask is the whole-image rule's, pixel for pixel. Long scratches cross
    many rows, so dropping the links between rows, or the line means' reach into the next row,
    changes the answer."""
    photo = np.asarray(Image.open(ROOT / "sample_archive/synthetic/family_10045_damaged.jpg").convert("RGB"))
    image = np.ascontiguousarray(photo[:513, :560])  # wider than a 128-px tile and its context: tiled
    kinds = ("scratches", "dust", "text", "blotches")
    got = learned.detect_kinds_learned(image, sensitivity, kinds, tile=128)
    want = _whole_image_rule(image, sensitivity, tile=128)
    assert want["scratches"].sum() > 500 and want["dust"].any()
    for k in kinds:
        assert np.array_equal(got[k], want[k]), k
    with pytest.raises(ValueError, match="line rule's reach"):
        learned.detect_kinds_learned(image, sensitivity, ("scratches",), tile=16)


@pytest.mark.parametrize("seed", range(30))
def test_detector_rules_over_tile_rows_match_the_whole_map(seed, monkeypatch):
    """``detect_kinds_learned``'s banded rules on random probability maps fed in random tile
    heights (the last row often short) give what the whole-map rules give: hysteresis per
    channel, the line rule (whose means read rows above and below each band) on scratches."""
    rng = np.random.default_rng([11, seed])
    h, w = int(rng.integers(30, 120)), int(rng.integers(10, 90))
    p = np.stack([_smooth_noise(rng, h, w) for _ in learned.CHANNELS])
    q = lambda c, f: float(np.quantile(p[c], f))  # noqa: E731
    pairs = {k: (q(c, 0.97), q(c, 0.55)) for c, k in enumerate(learned.CHANNELS)}
    pairs["scratches"] = (q(0, 0.995), q(0, 0.8))  # narrower than the line rule's regions
    rule = {"mean": q(0, 0.85), "grow": q(0, 0.5), "length": 9, "orients": 8}
    tile = int(rng.integers(4, 24))  # the line means reach 4 rows
    monkeypatch.setattr(learned, "_bands", lambda image, path, t, o, progress=None: ((y, p[:, y:y + t].copy()) for y in range(0, h, t)))
    monkeypatch.setattr(learned, "threshold", lambda s, path=None: pairs)
    monkeypatch.setattr(learned, "line_rule", lambda s, path=None: rule)
    got = learned.detect_kinds_learned(np.zeros((h, w, 3), np.uint8), "medium", learned.CHANNELS, tile=tile)
    want = {k: learned.hysteresis(p[c], *pairs[k]) for c, k in enumerate(learned.CHANNELS)}
    lines = learned.line_seeds(p[0], **rule)
    assert (lines & ~want["scratches"]).any()  # the line rule adds regions here
    m = want["scratches"] | lines
    cc = learned.components(m)
    bars = learned.drop_bar_families(m, cc=cc)
    want["scratches"] = learned.drop_lattices(bars, cc=cc if bars is m else None)
    for k in learned.CHANNELS:
        assert np.array_equal(got[k], want[k]), k


@pytest.mark.parametrize("turns", [True, False])
def test_detector_runs_take_turns_where_cores_are_few(turns, monkeypatch):
    """Two workers' network runs overlap only when ``ONE_RUN_AT_A_TIME`` is off (enough cores
    for both); on a small machine they take turns, so ONNX Runtime holds one run's activations."""
    import threading
    import time

    active, most = [0], [0]
    guard = threading.Lock()

    class Session:
        def run(self, _, feeds):
            with guard:
                active[0] += 1
                most[0] = max(most[0], active[0])
            time.sleep(0.2)
            with guard:
                active[0] -= 1
            x = feeds["image"]
            return [np.zeros((1, 4) + x.shape[2:], np.float32)]

    monkeypatch.setattr(learned, "ONE_RUN_AT_A_TIME", turns)
    tile = np.zeros((8, 8, 3), np.uint8)
    workers = [threading.Thread(target=learned._run, args=(Session(), tile, 4)) for _ in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert most[0] == (1 if turns else 3)
