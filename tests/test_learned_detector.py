"""The learned detector: export and sidecar (masks.net), tiled ONNX Runtime inference and the
``--detector learned`` plumbing (masks.learned, masks.detect, CLI, manifest).

Plumbing tests use a detector with random weights exported on the fly; what the shipped
detector finds is tested in test_masks.py beside the rules."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from typer.testing import CliRunner

from archive_restore.cli import app
from archive_restore.config import MaskConfig
from archive_restore.masks import detect, learned
from archive_restore.masks.net import ARCHS, CHANNELS, blown_bright, blown_out, clumped_grain, damaged_crop, export, scuffs, speckle

# context each side that makes tiles match the whole image, per architecture (about half the
# receptive field), and one that is too small to; keyed by the sidecar's "multiple"
CONTEXT = {4: (64, 8), 16: (128, 16), 8: (192, 64)}  # unet, s2d, unet_ctx and unet_ctx_split


@pytest.fixture(scope="module", params=sorted(ARCHS))
def random_detector(request, tmp_path_factory) -> Path:
    """A random-weight detector of each architecture exported to ONNX, with thresholds in its
    sidecar (the U-Net of detector_v2 checkpoints carries no "arch")."""
    arch = request.param
    d = tmp_path_factory.mktemp(f"det_{arch}")
    torch.manual_seed(0)
    net = ARCHS[arch]()
    with torch.no_grad():  # a visible response: bias the scratches channel up, the others down
        bias = torch.tensor([0.0, -8.0, -8.0, -8.0])
        net.out.bias.copy_(bias if net.out.bias.numel() == 4 else bias.repeat_interleave(16))
        if arch.startswith("unet_ctx"):  # the context branch starts at zero; give it a say so the tile test sees its reach
            torch.nn.init.normal_(net.c4_out.weight, std=0.2)
    state = {"net": net.state_dict(), "step": 7} | ({} if arch == "unet" else {"arch": arch})
    torch.save(state, d / "det.pt")
    export(d / "det.pt", d / "det.onnx")
    side = d / "det.json"
    meta = json.loads(side.read_text())
    assert meta["channels"] == list(CHANNELS) and meta["step"] == 7 and meta["thresholds"] == {}
    assert meta["multiple"] == ARCHS[arch].multiple and meta["context"] == ARCHS[arch].context
    meta["thresholds"] = {"low": 0.9, "medium": {"seed": 0.6, "grow": 0.5},
                          "high": {c: {"seed": 0.2, "grow": 0.1} for c in CHANNELS}}
    side.write_text(json.dumps(meta))
    return d / "det.onnx"


def test_channels_agree():
    assert tuple(CHANNELS) == learned.CHANNELS


def test_probabilities_shape_range_and_odd_sizes(random_detector):
    rng = np.random.default_rng(0)
    for h, w in ((37, 53), (64, 64), (130, 97)):
        im = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        p = learned.probabilities(im, random_detector)
        assert p.shape == (4, h, w) and p.dtype == np.float32
        assert 0 <= p.min() and p.max() <= 1


def test_tiles_agree_with_the_whole_image(random_detector):
    """With enough context each side (about half the receptive field) a tiled scan matches the
    whole-image answer up to float rounding and far-field zero padding; with too little it
    does not (so the check can fail)."""
    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (1, 1, 3)).astype(np.float32)
    im = np.clip(base + rng.normal(0, 30, (520, 700, 3)), 0, 255).astype(np.uint8)
    enough, little = CONTEXT[json.loads(random_detector.with_suffix(".json").read_text())["multiple"]]
    whole = learned.probabilities(im, random_detector, tile=1024, overlap=0)
    tiled = learned.probabilities(im, random_detector, tile=96, overlap=enough)
    assert np.abs(whole - tiled).max() < 1e-5
    assert np.abs(whole - learned.probabilities(im, random_detector, tile=96, overlap=little)).max() > 1e-4
    with pytest.raises(ValueError, match="multiples"):  # off the graph's grid, tiles would not line up
        learned.probabilities(im, random_detector, tile=96, overlap=enough + 1)


def test_detection_reports_its_progress_per_tile(random_detector):
    """``detect_kinds_learned(progress=...)``: one call per tile, shares rising to 1 (a 5 x 6
    tile scan: 30 calls); the masks are those of a run without it."""
    im = np.random.default_rng(3).integers(0, 256, (450, 560, 3), dtype=np.uint8)  # taller than a tile and its context
    seen: list[float] = []
    with_p = learned.detect_kinds_learned(im, "medium", ("scratches", "dust"), random_detector, tile=96, progress=seen.append)
    assert len(seen) == 30 and seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 0.05
    plain = learned.detect_kinds_learned(im, "medium", ("scratches", "dust"), random_detector, tile=96)
    assert all(np.array_equal(with_p[k], plain[k]) for k in plain)


def test_sensitivity_orders_the_mask(random_detector):
    im = np.random.default_rng(2).integers(0, 256, (80, 96, 3), dtype=np.uint8)
    counts = {s: learned.detect_kinds_learned(im, s, ("scratches", "dust"), random_detector)["scratches"].sum()
              for s in ("low", "medium", "high")}
    assert counts["low"] <= counts["medium"] <= counts["high"]
    kinds = learned.detect_kinds_learned(im, "medium", ("cracks", "text"), random_detector)
    assert set(kinds) == {"scratches", "text"}  # cracks share the scratches channel
    with pytest.raises(ValueError, match="unknown mask kinds"):
        learned.detect_kinds_learned(im, "medium", ("smudges",), random_detector)
    with pytest.raises(ValueError, match="sensitivity"):
        learned.threshold("extreme", random_detector)


def test_hysteresis_keeps_weak_regions_joined_to_a_strong_pixel():
    p = np.zeros((20, 30), np.float32)
    p[5, 2:20] = 0.6  # a faint line ...
    p[5, 10] = 0.95  # ... with one strong pixel
    p[15, 2:20] = 0.6  # a faint line alone
    p[12, 25] = 0.97  # a strong isolated pixel
    m = learned.hysteresis(p, 0.9, 0.5)
    assert m[5, 2:20].all() and not m[15].any() and m[12, 25] and m.sum() == 19
    assert np.array_equal(learned.hysteresis(p, 0.9, 0.9), p > 0.9)


def test_line_seeds_find_long_faint_lines_and_not_short_bright_pieces():
    """A long line scored 0.85 throughout (2 px wide, as the network's maps are) is found on
    both sides of a gap, a short one at 0.95 and a broad 0.85 blob are not; the grown region
    follows p > grow only."""
    p = np.zeros((120, 160), np.float32)
    yy = np.arange(10, 110)
    xs = np.rint(20 + 0.4 * (yy - 10)).astype(int)  # a slanted line, between two orientations
    p[yy, xs] = p[yy, xs + 1] = 0.85
    p[yy[40:44], xs[40:44]] = p[yy[40:44], xs[40:44] + 1] = 0.2  # a gap the region does not grow across
    p[yy, xs + 2] = 0.4  # its faint flank, above grow
    p[50, 100:120] = 0.95  # a short bright edge (20 px)
    p[80:100, 120:140] = 0.85  # a blob: long in no direction
    m = learned.line_seeds(p, mean=0.8, grow=0.3, length=61, orients=24)
    assert m[yy[:40], xs[:40]].all() and m[yy[44:], xs[44:]].all() and m[yy, xs + 2].all()
    assert not m[yy[40:44], xs[40:44]].any() and not m[50, 100:120].any() and not m[80:100, 120:140].any()
    assert m.sum() == 3 * 100 - 8
    assert not learned.line_seeds(p, mean=0.9, grow=0.3, length=61, orients=24).any()
    assert not learned.line_seeds(np.zeros((30, 30), np.float32), 0.8, 0.3, 61, 24).any()
    # the means are plain averages along straight taps, mirrored at the border
    offs = learned.line_offsets(5, 4)
    assert offs.shape == (4, 5, 2) and offs[0, :, 0].tolist() == [0] * 5 and offs[2, :, 1].tolist() == [0] * 5
    q = np.arange(49, dtype=np.float32).reshape(7, 7)
    assert learned.line_means(q, np.array([3]), np.array([3]), offs[:1])[0] == pytest.approx(q[3].mean())


def _railing(m: np.ndarray, x0: int, y0: int, bars: int = 10, gap: int = 16, height: int = 40) -> None:
    """Draw a railing into uint8 mask ``m``: ``bars`` vertical 2-px bars joined by a 3-px rail."""
    for k in range(bars):
        cv2.line(m, (x0 + k * gap, y0), (x0 + k * gap, y0 + height), 1, 2)
    cv2.line(m, (x0, y0), (x0 + (bars - 1) * gap, y0), 1, 3)


def test_bar_families_are_dropped_and_scratch_bundles_kept():
    m = np.zeros((240, 320), np.uint8)
    _railing(m, 20, 30)
    fence = m.astype(bool)
    assert not learned.drop_bar_families(fence).any()  # a railing goes whole
    # a tilted railing (a fence seen at an angle) goes too
    rot = cv2.warpAffine(m, cv2.getRotationMatrix2D((160, 120), 30, 1.0), (320, 240), flags=cv2.INTER_NEAREST).astype(bool)
    assert learned.drop_bar_families(rot).sum() < 0.1 * rot.sum()
    # four parallel scratches joined by a crossing one: a scratch bundle, kept
    b = np.zeros((240, 320), np.uint8)
    for k in range(4):
        cv2.line(b, (60 + 8 * k, 20), (90 + 8 * k, 220), 1, 2)
    cv2.line(b, (20, 120), (300, 100), 1, 2)
    assert (learned.drop_bar_families(b.astype(bool)) == b.astype(bool)).all()
    # a long scratch running through a railing: the bars go, the scratch stays
    c = np.zeros((240, 320), np.uint8)
    _railing(c, 20, 150)
    cv2.line(c, (84, 5), (84, 235), 1, 2)
    out = learned.drop_bar_families(c.astype(bool))
    scratch = np.zeros_like(c)
    cv2.line(scratch, (84, 5), (84, 235), 1, 2)
    assert out[scratch > 0].mean() > 0.75
    bars = (c > 0) & (scratch == 0)
    bars[:155] = False  # below the rail (which stays: a straight line is what a scratch is)
    assert out[bars].mean() < 0.1


def test_lattices_are_dropped_and_lines_across_them_kept():
    m = np.zeros((300, 300), np.uint8)
    for k in range(30, 271, 12):  # a wire mesh: 2-px lines every 12 px both ways, tilted
        cv2.line(m, (k, 30), (k, 270), 1, 2)
        cv2.line(m, (30, k), (270, k), 1, 2)
    mesh = cv2.warpAffine(m, cv2.getRotationMatrix2D((150, 150), 12, 1.0), (300, 300), flags=cv2.INTER_NEAREST)
    assert learned.drop_bar_families(mesh.astype(bool)).sum() > 0.9 * mesh.sum()  # bars rule: valleys filled
    assert learned.drop_lattices(mesh.astype(bool)).sum() < 0.1 * mesh.sum()
    # a scratch from outside the mesh across it: its part outside the mesh stays
    withs = mesh.copy()
    cv2.line(withs, (0, 5), (299, 120), 1, 2)
    outside = np.zeros_like(withs)
    cv2.line(outside, (0, 5), (299, 120), 1, 2)
    outside = outside.astype(bool) & ~mesh.astype(bool)
    outside &= (np.arange(300)[:, None] < 20) | (np.arange(300)[None, :] > 285)  # far from the mesh
    assert learned.drop_lattices(withs.astype(bool))[outside].mean() > 0.9
    # a bundle of four parallel scratches and a crack-like random network: kept
    b = np.zeros((300, 300), np.uint8)
    for k in range(4):
        cv2.line(b, (60 + 10 * k, 20), (100 + 10 * k, 280), 1, 2)
    cv2.line(b, (20, 150), (280, 130), 1, 2)
    assert (learned.drop_lattices(b.astype(bool)) == b.astype(bool)).all()


@pytest.mark.parametrize("kind", ["scratches", "cracks"])
def test_bar_families_leave_synthetic_damage_alone(kind):
    from archive_restore.damage import synthesize

    grey = np.full((256, 256, 3), 128, np.uint8)
    for seed in range(40):
        gt = synthesize(grey, np.random.default_rng([7, seed]), kinds=[kind], severity=2.0).mask
        assert (learned.drop_bar_families(gt) == gt).all(), seed
        assert (learned.drop_lattices(gt) == gt).all(), seed


def test_line_rule_is_read_from_the_sidecar(tmp_path, random_detector):
    """Absent: off; per sensitivity; checked; and detect_kinds_learned adds its regions."""
    own = tmp_path / "lines.onnx"
    own.write_bytes(random_detector.read_bytes())
    meta = json.loads(random_detector.with_suffix(".json").read_text())
    own.with_suffix(".json").write_text(json.dumps(meta))
    learned._sessions.clear()
    assert learned.line_rule("medium", own) is None
    im = np.random.default_rng(1).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    p = learned.probabilities(im, own)[0]
    before = learned.detect_kinds_learned(im, "medium", ("scratches",), own)["scratches"]
    mean, grow = float(np.quantile(p, 0.7)), float(np.quantile(p, 0.3))
    assert not before.all() and 0 < grow < mean < 1
    meta["lines"] = {"length": 9, "orients": 8, "grow": grow, "mean": {"low": None, "medium": mean}}
    own.with_suffix(".json").write_text(json.dumps(meta))
    learned._sessions.clear()
    assert learned.line_rule("low", own) is None and learned.line_rule("high", own) is None
    assert learned.line_rule("medium", own) == {"mean": mean, "grow": grow, "length": 9, "orients": 8}
    after = learned.detect_kinds_learned(im, "medium", ("cracks",), own)["scratches"]
    extra = learned.line_seeds(p, mean, grow, 9, 8)
    assert (extra & ~before).any() and np.array_equal(after, before | extra)
    meta["lines"]["grow"] = 0.7
    own.with_suffix(".json").write_text(json.dumps(meta))
    learned._sessions.clear()
    with pytest.raises(ValueError, match="bad line rule"):
        learned.line_rule("medium", own)
    learned._sessions.clear()


def test_missing_or_uncalibrated_detector_fails_clearly(tmp_path, random_detector):
    with pytest.raises(FileNotFoundError, match="learned detector not found"):
        learned.probabilities(np.zeros((8, 8, 3), np.uint8), tmp_path / "none.onnx")
    with pytest.raises(FileNotFoundError):
        learned.detector_id(tmp_path / "none.onnx")
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(random_detector.read_bytes())
    meta = json.loads(random_detector.with_suffix(".json").read_text())
    meta["thresholds"] = {}
    bare.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no medium threshold"):
        learned.threshold("medium", bare)
    assert learned.detector_id(bare) != learned.detector_id(random_detector)
    meta["thresholds"] = {"medium": {"seed": 0.3, "grow": 0.6}}
    bare.with_suffix(".json").write_text(json.dumps(meta))
    learned._sessions.clear()
    with pytest.raises(ValueError, match="grow <= seed"):
        learned.threshold("medium", bare)
    meta["thresholds"] = {"medium": {"scratches": 0.5, "dust": {"seed": 0.9, "grow": 0.4}, "text": 0.7, "blotches": 0.8}}
    bare.with_suffix(".json").write_text(json.dumps(meta))
    learned._sessions.clear()
    assert learned.threshold("medium", bare) == {"scratches": (0.5, 0.5), "dust": (0.9, 0.4), "text": (0.7, 0.7), "blotches": (0.8, 0.8)}


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"net": Evil(), "step": 1}, tmp_path / "evil.pt")
    with pytest.raises(Exception):
        export(tmp_path / "evil.pt", tmp_path / "evil.onnx")
    assert not (tmp_path / "evil.onnx").exists()


def test_training_pairs_follow_the_damage_ground_truth():
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:200, 0:240].astype(np.float32)
    photo = np.stack([100 + 60 * np.sin(x / 23) * np.cos(y / 31)] * 3, -1).astype(np.uint8)
    damaged = clean = 0
    for _ in range(12):
        im, t = damaged_crop(photo, rng, 128)
        assert im.shape == (128, 128, 3) and im.dtype == np.uint8
        assert t.shape == (4, 128, 128) and t.dtype == bool
        damaged += bool(t.any())
        clean += not t.any()
    assert damaged and clean


def test_clumped_grain_is_clumped_and_mild():
    """Scan grain for training: 2-7 grey levels, the same on all three channels, and clumped
    (neighbouring pixels correlate, unlike white noise), so it looks like speckle, not dust."""
    flat = np.full((96, 96, 3), 128, np.uint8)
    for seed in range(4):
        out = clumped_grain(flat, np.random.default_rng(seed))
        assert out.shape == flat.shape and out.dtype == np.uint8
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        g = out[..., 0].astype(np.float64) - 128
        assert 1.5 < g.std() < 7.5
        neighbour = np.corrcoef(g[:, :-1].ravel(), g[:, 1:].ravel())[0, 1]
        assert neighbour > 0.3
    assert (clumped_grain(flat, np.random.default_rng(1)) == clumped_grain(flat, np.random.default_rng(1))).all()
    # through damaged_crop: off by default (the shipped recipe), on every crop at share 1
    big = np.full((160, 160, 3), 128, np.uint8)
    plain = [damaged_crop(big, np.random.default_rng(s), 96, clean_share=1.0)[0] for s in range(6)]
    grainy = [damaged_crop(big, np.random.default_rng(s), 96, clean_share=1.0, clumped=1.0) for s in range(6)]
    assert all(not t.any() for _, t in grainy)  # grain is never labelled damage
    assert all(g.astype(float).std() > 1.5 for g, _ in grainy)
    assert sum(p.astype(float).std() > 1.5 for p in plain) < 6  # archive_look grains only some


def test_blown_out_clips_whites_and_is_never_damage():
    """Over-exposure for training: brighter everywhere, bright areas flat at 255, order kept, and
    a blown clean photo carries no damage label."""
    ramp = np.repeat(np.linspace(0, 255, 64, dtype=np.float32)[None, :, None], 3, 2).repeat(8, 0).astype(np.uint8)
    out = blown_out(ramp, np.random.default_rng(0))
    row = out[0, :, 0].astype(int)
    assert (out >= ramp).all() and (np.diff(row) >= 0).all()
    assert (row == 255).sum() > (ramp[0, :, 0] == 255).sum()  # a flat white run appears
    photo = np.stack([100 + 60 * np.sin(np.arange(160) / 9)[None, :].repeat(160, 0)] * 3, -1).astype(np.uint8)
    for seed in range(4):
        _, t = damaged_crop(photo, np.random.default_rng(seed), 96, clean_share=1.0, blown=1.0)
        assert not t.any()


def test_blown_bright_clips_only_the_highlights():
    """Highlights-only over-exposure: the dark half of a ramp is untouched, the bright end goes
    flat at 255, order is kept, a grey backdrop with faint low-frequency shading stays nearly as it
    was (no stain-like blobs), and a clean photo so treated carries no damage label."""
    ramp = np.repeat(np.linspace(0, 255, 128, dtype=np.float32)[None, :, None], 3, 2).repeat(32, 0).astype(np.uint8)
    out = blown_bright(ramp, np.random.default_rng(0))
    row, before = out[16, :, 0].astype(int), ramp[16, :, 0].astype(int)
    assert (out >= ramp).all() and (np.diff(row) >= 0).all()
    assert np.array_equal(row[:64], before[:64])  # below the 60th percentile: as it was
    assert (row == 255).sum() > (before == 255).sum()  # a flat white run appears
    shading = cv2.resize(np.random.default_rng(1).normal(0, 3, (6, 6)).astype(np.float32), (96, 96), interpolation=cv2.INTER_CUBIC)
    flat = np.clip(180 + shading, 0, 255)[..., None].repeat(3, 2).astype(np.uint8)
    gain = blown_bright(flat, np.random.default_rng(2)).astype(float) - flat
    assert gain.std() < 2.0  # a ramp as narrow as the percentiles made blobs of 0 to 67 levels here (std 24)
    photo = np.stack([100 + 60 * np.sin(np.arange(160) / 9)[None, :].repeat(160, 0)] * 3, -1).astype(np.uint8)
    for seed in range(4):
        _, t = damaged_crop(photo, np.random.default_rng(seed), 96, clean_share=1.0, bright=1.0)
        assert not t.any()


def test_detect_dispatches_and_rejects_unknown(monkeypatch, random_detector):
    monkeypatch.setattr(learned, "default_detector_path", lambda: random_detector)
    im = np.random.default_rng(4).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    r = detect(im, MaskConfig(detector="learned", sensitivity="high"))
    assert set(r.kind_pixels) == {"scratches", "dust", "text", "blotches"} and r.mask.shape == (64, 64)
    with pytest.raises(ValueError, match="unknown detector"):
        detect(im, MaskConfig(detector="magic"))


def test_cli_masks_and_folder_with_learned_detector(monkeypatch, tmp_path, random_detector):
    monkeypatch.setattr(learned, "default_detector_path", lambda: random_detector)
    src = tmp_path / "scans"
    src.mkdir()
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(src / "a.png")
    runner = CliRunner()
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m"), "--detector", "learned"])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "m" / "a.png.png")).shape == (48, 64)
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m2"), "--detector", "neural"])
    assert res.exit_code == 2


def test_folder_records_the_detector_and_refuses_a_missing_one(monkeypatch, tmp_path, random_detector):
    from archive_restore import pipeline
    from pipeline_fakes import FakeSession

    inp = tmp_path / "scans"
    inp.mkdir()
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(inp / "a.png")
    monkeypatch.setattr(learned, "default_detector_path", lambda: random_detector)
    pipeline.restore_folder(inp, tmp_path / "o", auto_mask=True, mask_cfg=MaskConfig(detector="learned"),
                            session=FakeSession(), handle_sigint=False)
    rec = [json.loads(line) for line in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines() if line.strip()]
    settings = [r["settings"] for r in rec if "settings" in r]
    assert settings and settings[-1]["mask_config"]["detector"] == "learned"
    assert settings[-1]["detector_id"] == learned.detector_id(random_detector)
    monkeypatch.setattr(learned, "default_detector_path", lambda: tmp_path / "gone.onnx")
    with pytest.raises(pipeline.UsageError, match="learned detector not found"):
        pipeline.restore_folder(inp, tmp_path / "o2", auto_mask=True, mask_cfg=MaskConfig(detector="learned"),
                                session=FakeSession(), handle_sigint=False)
    # a chosen graph is recorded by its own hash, whatever the default is
    pipeline.restore_folder(inp, tmp_path / "o3", auto_mask=True, session=FakeSession(), handle_sigint=False,
                            mask_cfg=MaskConfig(detector="learned", detector_graph=str(random_detector)))
    rec = [json.loads(line) for line in (tmp_path / "o3" / "manifest.jsonl").read_text().splitlines() if line.strip()]
    settings = [r["settings"] for r in rec if "settings" in r]
    assert settings[-1]["detector_id"] == learned.detector_id(random_detector)
    assert settings[-1]["mask_config"]["detector_graph"] == str(random_detector)


def test_int8_export_stays_close_to_fp32(tmp_path):
    """``export --int8`` writes a quantized graph with its distance from fp32 in the sidecar;
    a trained net would sit closer, but even random weights must stay in the same range."""
    torch.manual_seed(0)
    net = ARCHS["s2d"]()
    torch.save({"net": net.state_dict(), "step": 3, "arch": "s2d"}, tmp_path / "det.pt")
    rng = np.random.default_rng(5)
    files = []
    for i in range(4):
        small = np.clip(rng.normal(128, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
        big = np.asarray(Image.fromarray(small).resize((224, 224), Image.BICUBIC))
        Image.fromarray(big).save(tmp_path / f"p{i}.png")
        files.append(tmp_path / f"p{i}.png")
    export(tmp_path / "det.pt", tmp_path / "det.onnx", int8=True, int8_files=files)
    meta = json.loads((tmp_path / "det.json").read_text())
    q = meta["int8"]
    assert q["crops"] == 16 and 0 < q["mean_abs_diff"] < 0.05 and q["p999_abs_diff"] < 0.5
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "det.onnx")).graph.node}
    assert "QuantizeLinear" in ops and "Sigmoid" in ops
    meta["thresholds"] = {"medium": 0.5}
    (tmp_path / "det.json").write_text(json.dumps(meta))
    p = learned.probabilities(big, tmp_path / "det.onnx")
    assert p.shape == (4, 224, 224) and 0 <= p.min() and p.max() <= 1


def _training_photos(tmp_path, monkeypatch, seed: int) -> None:
    """Three random 96 px photos under tmp_path/photos/scenes, none held out, for tiny train runs."""
    from archive_restore.masks import net as netmod

    root = tmp_path / "photos" / "scenes"
    root.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(root / f"p{i}.png")
    monkeypatch.setattr(netmod, "held_out_files", lambda root=None: set())


def test_training_checkpoints_load_safely_and_resume(tmp_path, monkeypatch):
    """A cosine-scheduled run writes a checkpoint ``torch.load(weights_only=True)`` accepts
    (no numpy scalars in the optimizer state), with its architecture; a rerun resumes it."""
    from archive_restore.masks import net as netmod

    _training_photos(tmp_path, monkeypatch, seed=6)
    run = tmp_path / "run"
    netmod.train(run, minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", arch="s2d", cosine=True)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["arch"] == "s2d" and state["step"] >= 1
    netmod.train(run, minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", lr=3e-4)  # default arch: unet
    again = torch.load(run / "last.pt", weights_only=True)
    assert again["arch"] == "s2d" and again["step"] > state["step"]  # resumed, not restarted as a U-Net
    assert isinstance(netmod.load(run / "last.pt"), netmod.FastDetector)
    # a step-limited run stops after exactly that many steps, whatever its minutes
    netmod.train(run, minutes=60, size=64, batch=2, root=tmp_path / "photos", cosine=True, steps=3, ignore=8)
    third = torch.load(run / "last.pt", weights_only=True)
    assert third["step"] == again["step"] + 3 and third["ignore"] == 8


def test_weight_average_follows_the_run_and_resumes(tmp_path, monkeypatch):
    """``train(average=a)``: RUN/average.pt is a loadable checkpoint whose weights are the
    moving average of the run's weights, started from its init: one step at a = 0.5 lands
    halfway between the init and the trained weights; a resumed run continues that average, not
    a fresh one; an average outside [0, 1) is refused."""
    from archive_restore.masks import net as netmod

    _training_photos(tmp_path, monkeypatch, seed=9)
    torch.manual_seed(2)
    init = netmod.Detector()
    torch.save({"net": init.state_dict(), "step": 5}, tmp_path / "init.pt")
    run = tmp_path / "run"
    netmod.train(run, minutes=60, size=64, batch=2, root=tmp_path / "photos", arch="unet", lr=1e-2,
                 init_from=tmp_path / "init.pt", steps=1, average=0.5)
    w, avg = torch.load(run / "last.pt", weights_only=True), torch.load(run / "average.pt", weights_only=True)
    assert avg["step"] == w["step"] == 6 and avg["arch"] == "unet" and "opt" not in avg
    k = "out.weight"
    assert not torch.equal(w["net"][k], init.state_dict()[k])  # the step moved the weights
    assert torch.allclose(avg["net"][k], (w["net"][k] + init.state_dict()[k]) / 2, atol=1e-6)
    assert isinstance(netmod.load(run / "average.pt"), netmod.Detector)
    netmod.train(run, minutes=60, size=64, batch=2, root=tmp_path / "photos", lr=1e-2, steps=1, average=0.5)
    w2, avg2 = torch.load(run / "last.pt", weights_only=True), torch.load(run / "average.pt", weights_only=True)
    assert avg2["step"] == 7
    assert torch.allclose(avg2["net"][k], (avg["net"][k] + w2["net"][k]) / 2, atol=1e-6)  # resumed average
    with pytest.raises(ValueError, match="average"):
        netmod.train(tmp_path / "bad", minutes=60, size=64, batch=2, root=tmp_path / "photos", steps=1, average=1.0)


def test_context_net_starts_as_the_unet_it_is_initialised_from(tmp_path, monkeypatch):
    """``train --init-from`` a U-Net checkpoint: the unet_ctx run starts from its weights and
    step (its context branch projects to zero, so before any step it computes the U-Net);
    a checkpoint that shares no weights is refused."""
    from archive_restore.masks import net as netmod

    torch.manual_seed(3)
    unet = netmod.Detector()
    torch.save({"net": unet.state_dict(), "step": 40}, tmp_path / "v2.pt")
    ctx = netmod.ContextDetector()
    ctx.load_state_dict(unet.state_dict(), strict=False)
    x = torch.rand(1, 3, 64, 88)
    with torch.no_grad():
        assert torch.equal(ctx.eval()(x), unet.eval()(x))

    _training_photos(tmp_path, monkeypatch, seed=7)
    netmod.train(tmp_path / "run", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", arch="unet_ctx",
                 init_from=tmp_path / "v2.pt")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["arch"] == "unet_ctx" and state["step"] > 40
    assert isinstance(netmod.load(tmp_path / "run" / "last.pt"), netmod.ContextDetector)
    torch.save({"net": {"other.weight": torch.zeros(1)}, "step": 1}, tmp_path / "alien.pt")
    with pytest.raises(ValueError, match="no weights match"):
        netmod.train(tmp_path / "run2", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", arch="unet_ctx",
                     init_from=tmp_path / "alien.pt")


def test_phase_average_is_the_upsampled_kernel_averaged_over_phases():
    """A 3x3 kernel applied after 2x nearest upsampling, averaged over each 2x2 cell, equals the
    phase-averaged kernel applied at the coarse scale (away from the zero border)."""
    from archive_restore.masks.net import _phase_average

    torch.manual_seed(1)
    w, y = torch.randn(5, 4, 3, 3), torch.randn(1, 4, 20, 24)
    fine = F.avg_pool2d(F.conv2d(F.interpolate(y, scale_factor=2.0), w, padding=1), 2)
    coarse = F.conv2d(y, _phase_average(w), padding=1)
    assert torch.allclose(fine[..., 1:-1, 1:-1], coarse[..., 1:-1, 1:-1], atol=1e-5)
    assert not torch.allclose(F.conv2d(y, w, padding=1), coarse, atol=1e-2)  # not the kernel itself


def test_split_decoder_student_keeps_the_teachers_trunk():
    """``SplitDecoderDetector.from_context``: the encoder and context weights are the teacher's
    (the first kernel folds the input's x * 2 - 1, so its features match away from the 2-px
    border), the skip kernels are the skip half of the teacher's, and the student's
    probabilities start near the teacher's."""
    from archive_restore.masks import net as netmod

    torch.manual_seed(4)
    teacher = netmod.ContextDetector().eval()
    torch.nn.init.normal_(teacher.c4_out.weight, std=0.2)
    student = netmod.SplitDecoderDetector.from_context(teacher).eval()
    x = torch.rand(2, 3, 64, 88)
    with torch.no_grad():
        a, b = teacher.e1(x * 2 - 1), student.e1(x)
        assert torch.allclose(a[..., 2:-2, 2:-2], b[..., 2:-2, 2:-2], atol=1e-5)
        assert torch.equal(teacher.c4[1][0].weight, student.c4[1][0].weight)
        assert torch.equal(teacher.d1[0].weight[:, 32:], student.d1b.weight)
        pt, ps = torch.sigmoid(teacher(x)), torch.sigmoid(student(x))
    assert ps.shape == pt.shape == (2, 4, 64, 88)
    assert float((pt - ps).abs().mean()) < 0.1
    assert not hasattr(student, "d1") and not hasattr(student, "d2")


def test_distill_trains_the_student_and_resumes(tmp_path, monkeypatch):
    """``distill``: the student checkpoint loads as a unet_ctx_split net with the teacher's step;
    the decoder moves further than the trunk (its rate is 5x higher); a rerun resumes; a new run
    can start from a student checkpoint; a teacher of another kind is refused."""
    from archive_restore.masks import net as netmod

    torch.manual_seed(5)
    teacher = netmod.ContextDetector()
    torch.save({"net": teacher.state_dict(), "step": 123, "arch": "unet_ctx"}, tmp_path / "t.pt")
    _training_photos(tmp_path, monkeypatch, seed=8)
    run = tmp_path / "run"
    netmod.distill(run, tmp_path / "t.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos")
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["arch"] == "unet_ctx_split" and state["step"] == 123 and state["distill_step"] >= 1
    student = netmod.load(run / "last.pt")
    assert isinstance(student, netmod.SplitDecoderDetector)
    init = netmod.SplitDecoderDetector.from_context(teacher)

    def moved(name: str) -> float:
        a, b = dict(student.named_parameters())[name], dict(init.named_parameters())[name]
        return float((a - b).abs().max())

    assert moved("d1a.weight") > 2 * moved("e2.1.0.weight") > 0
    netmod.distill(run, tmp_path / "t.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos")
    assert torch.load(run / "last.pt", weights_only=True)["distill_step"] > state["distill_step"]
    netmod.distill(tmp_path / "run3", tmp_path / "t.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos",
                   lr=0.0, trunk_lr=0.0, init_from=run / "last.pt")
    warm = netmod.load(tmp_path / "run3" / "last.pt")
    assert torch.equal(warm.d1a.weight, netmod.load(run / "last.pt").d1a.weight)  # rate 0: the warm start as it was
    torch.save({"net": netmod.Detector().state_dict(), "step": 1}, tmp_path / "unet.pt")
    with pytest.raises(ValueError, match="unet_ctx"):
        netmod.distill(tmp_path / "run2", tmp_path / "unet.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos")


def test_view_average_is_the_mean_of_the_views():
    """``view_average``: a pointwise net's views agree, so the average is its own logits; for a
    3x3 net the average is unchanged by a flip of the input (every channel) and by a transpose
    for the turned channels (scratches, dust) only, as text and blotches average flips alone."""
    from archive_restore.masks import net as netmod

    torch.manual_seed(6)
    x = torch.rand(2, 3, 24, 24)
    point = torch.nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        assert torch.allclose(netmod.view_average(point, x), point(x), atol=1e-4)
        conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        a = netmod.view_average(conv, x)
        assert torch.allclose(a, netmod.view_average(conv, x.flip(3)).flip(3), atol=1e-4)
        assert torch.allclose(a, netmod.view_average(conv, x.flip(2)).flip(2), atol=1e-4)
        t = netmod.view_average(conv, x.transpose(2, 3)).transpose(2, 3)
        assert torch.allclose(a[:, :2], t[:, :2], atol=1e-4)
        assert not torch.allclose(a[:, 2:], t[:, 2:], atol=1e-3)
        assert not torch.allclose(a, conv(x), atol=1e-3)
        # no tensor made on the CPU behind the caller's back (a GPU lease's first step)
        meta = netmod.view_average(torch.nn.Conv2d(3, 4, 3, padding=1, device="meta"), x.to("meta"))
        assert meta.device.type == "meta" and meta.shape == (2, 4, 24, 24)


def test_self_distillation_starts_from_the_teacher(tmp_path, monkeypatch):
    """``distill(views="dihedral")`` with a unet_ctx_split teacher: the student starts as the
    teacher's copy (rate 0 leaves it exactly so) and learns toward its view average (a rate
    moves it); an unknown view set is refused."""
    from archive_restore.masks import net as netmod

    torch.manual_seed(7)
    teacher = netmod.SplitDecoderDetector.from_context(netmod.ContextDetector())
    torch.save({"net": teacher.state_dict(), "step": 9, "arch": "unet_ctx_split"}, tmp_path / "t.pt")
    _training_photos(tmp_path, monkeypatch, seed=9)
    kw = dict(minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", views="dihedral")
    netmod.distill(tmp_path / "still", tmp_path / "t.pt", lr=0.0, trunk_lr=0.0, **kw)
    still = torch.load(tmp_path / "still" / "last.pt", weights_only=True)
    assert still["views"] == "dihedral" and still["step"] == 9
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in still["net"].items())
    netmod.distill(tmp_path / "run", tmp_path / "t.pt", workers=2, **kw)  # two processes drawing crops
    moved = netmod.load(tmp_path / "run" / "last.pt")
    assert not torch.equal(moved.d1a.weight, teacher.d1a.weight)
    if not torch.cuda.is_available():  # a GPU asked for and missing: said, not a silent CPU run
        with pytest.raises(RuntimeError, match="no CUDA device"):
            netmod.distill(tmp_path / "gpu", tmp_path / "t.pt", device="cuda", **kw)
        assert not (tmp_path / "gpu" / "last.pt").exists()
    with pytest.raises(ValueError, match="views"):
        netmod.distill(tmp_path / "bad", tmp_path / "t.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos", views="rot90")
    with pytest.raises(ValueError, match="unet_ctx"):  # a split teacher without views: nothing to distil
        netmod.distill(tmp_path / "bad2", tmp_path / "t.pt", minutes=0.0005, size=64, batch=2, root=tmp_path / "photos")


def test_calibration_draws(tmp_path):
    """The draws thresholds are chosen on: stratified keeps portraits at FACE_SHARE; the
    balanced plain draw is the plain one with portraits thinned to that share; none holds a
    harness photo, and held_out_files covers them all."""
    from archive_restore.masks import net as netmod

    for src, n in (("utkface", 120), ("camvid", 30), ("sunhays80", 30)):
        (tmp_path / src).mkdir()
        for i in range(n):
            (tmp_path / src / f"{i:03d}.png").write_bytes(b"")  # listing only; never decoded
    strat = netmod.calibration_files(tmp_path, n=36)
    faces = sum(f.parent.name == "utkface" for f in strat)
    assert len(strat) == 36 and faces == 36 - 2 * round(36 * (1 - netmod.FACE_SHARE) / 2)
    plain = netmod.calibration_files(tmp_path, n=60, draw="plain")
    bal = netmod.calibration_files(tmp_path, n=60, draw="plain-balanced")
    assert set(bal) <= set(plain) and len(plain) == 60
    others = sum(f.parent.name != "utkface" for f in bal)
    assert others == sum(f.parent.name != "utkface" for f in plain)
    assert len(bal) - others == round(others * netmod.FACE_SHARE / (1 - netmod.FACE_SHARE))
    harness = set(netmod.harness_files(tmp_path))
    assert harness and not harness & (set(strat) | set(plain))
    assert set(strat) | set(plain) | harness <= netmod.held_out_files(tmp_path)
    with pytest.raises(ValueError, match="unknown calibration draw"):
        netmod.calibration_files(tmp_path, draw="faces")


def test_focal_loss_is_bce_at_zero_and_weights_the_hard_pixels():
    """gamma 0 is plain BCE; with gamma 2 a confident right answer costs almost nothing while a
    confident wrong one keeps most of its BCE."""
    from archive_restore.masks.net import focal_bce

    torch.manual_seed(2)
    logits, target = torch.randn(2, 4, 8, 8), (torch.rand(2, 4, 8, 8) > 0.8).float()
    assert torch.allclose(focal_bce(logits, target, 0.0), F.binary_cross_entropy_with_logits(logits, target))
    easy, hard, one = torch.full((1, 1, 1, 1), -6.0), torch.full((1, 1, 1, 1), 6.0), torch.zeros(1, 1, 1, 1)
    assert focal_bce(easy, one, 2.0) < 1e-4 * F.binary_cross_entropy_with_logits(easy, one)  # clean pixel called clean
    assert focal_bce(hard, one, 2.0) > 0.99 * F.binary_cross_entropy_with_logits(hard, one)  # clean pixel called damage


def test_turned_crops_are_a_view_of_the_same_crop_and_its_damage():
    """``damaged_crop(..., turned=1)``: the crop and its targets are one of the 7 other views
    (quarter turns, mirrored or not) of the crop drawn without it from the same seed (the turn
    draws its numbers last), crop and targets turned alike; over seeds several views occur."""
    y, x = np.mgrid[0:200, 0:240].astype(np.float32)
    photo = np.stack([100 + 60 * np.sin(x / 23) * np.cos(y / 31), 90 + 0.3 * x, 120 + 0.2 * y], -1).astype(np.uint8)

    def views(a: np.ndarray, axes: tuple[int, int]) -> list[np.ndarray]:
        out = []
        for k in range(4):
            r = np.rot90(a, k, axes=axes)
            out += [r, np.flip(r, axis=axes[1])]
        return out

    used, damaged = set(), 0
    for seed in range(12):
        a, ta = damaged_crop(photo, np.random.default_rng(seed), 96, clean_share=0.0)
        b, tb = damaged_crop(photo, np.random.default_rng(seed), 96, clean_share=0.0, turned=1.0)
        assert b.flags["C_CONTIGUOUS"] and tb.flags["C_CONTIGUOUS"]
        damaged += bool(tb.any())
        match = [i for i, (v, tv) in enumerate(zip(views(a, (0, 1)), views(ta, (1, 2)))) if (v == b).all() and (tv == tb).all()]
        assert match and 0 not in match, seed  # a view, never the crop as it was
        used.update(match)
    assert len(used) >= 4 and damaged >= 6  # the targets were checked on damaged crops too


def test_ignore_band_leaves_faint_damage_out_of_the_loss():
    """``damaged_crop(..., ignore=T)``: the same crop and the same damage as without it (no extra
    random numbers), but damage pixels changed by T levels or less are ``IGNORE`` (and only
    those: every other target pixel keeps its 0/1); ``focal_bce`` averages over the rest."""
    from archive_restore.masks.net import IGNORE, focal_bce

    y, x = np.mgrid[0:200, 0:240].astype(np.float32)
    photo = np.stack([100 + 60 * np.sin(x / 23) * np.cos(y / 31)] * 3, -1).astype(np.uint8)
    ignored = kept = 0
    for seed in range(10):
        a, ta = damaged_crop(photo, np.random.default_rng(seed), 128, clean_share=0.0)
        b, tb = damaged_crop(photo, np.random.default_rng(seed), 128, clean_share=0.0, ignore=8)
        assert (a == b).all() and tb.dtype == np.uint8 and set(np.unique(tb)) <= {0, 1, IGNORE}
        assert ((tb > 0) == ta).all()  # the ignore band is carved out of the damage only
        ignored += int((tb == IGNORE).sum())
        kept += int((tb == 1).sum())
    assert ignored and kept > ignored  # faint fringes exist, and most damage stays a target

    torch.manual_seed(0)
    logits, target = torch.randn(1, 4, 8, 8), (torch.rand(1, 4, 8, 8) > 0.7).float()
    marked = target.clone()
    marked[0, 0, :4] = IGNORE
    rest = torch.ones_like(target, dtype=torch.bool)
    rest[0, 0, :4] = False
    want = F.binary_cross_entropy_with_logits(logits[rest], target[rest])
    assert torch.allclose(focal_bce(logits, marked, 0.0), want)
    assert not torch.allclose(focal_bce(logits, target, 0.0), want)


def test_detector_graph_chooses_the_graph_without_touching_the_default(tmp_path, random_detector):
    """``MaskConfig.detector_graph`` (``--detector-graph``) runs the given graph: the same mask as
    calling the learned detector on that path, and `restore masks` writes it; given with the rules
    detector, or without its sidecar, it is refused before any image is read."""
    from archive_restore.masks.learned import detect_kinds_learned

    im = np.random.default_rng(8).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    r = detect(im, MaskConfig(detector="learned", sensitivity="high", detector_graph=str(random_detector)))
    direct = detect_kinds_learned(im, "high", MaskConfig().kinds, random_detector)
    assert r.kind_pixels == {k: int(m.sum()) for k, m in direct.items()}
    assert r.kind_pixels["scratches"] > 0  # the fixture's graph fires on its scratches channel at high
    with pytest.raises(ValueError, match="learned detector only"):
        detect(im, MaskConfig(detector="rules", detector_graph=str(random_detector)))
    src = tmp_path / "scans"
    src.mkdir()
    Image.fromarray(im).save(src / "a.png")
    runner = CliRunner()
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m"), "--mask-sensitivity", "high",
                              "--detector-graph", str(random_detector)])
    assert res.exit_code == 0, res.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "m" / "a.png.png")) > 0, r.mask)
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m2"), "--detector", "rules",
                              "--detector-graph", str(random_detector)])
    assert res.exit_code == 2 and "needs --detector learned" in res.output
    lone = tmp_path / "lone.onnx"
    lone.write_bytes(random_detector.read_bytes())
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m3"), "--detector-graph", str(lone)])
    assert res.exit_code == 2 and "lone.json" in res.output
    assert not (tmp_path / "m2").exists() and not (tmp_path / "m3").exists()


def test_scene_structure_rules_never_modify_their_input_and_share_components():
    """The bar and lattice rules return a new mask when they remove something and the input
    itself when not (the caller then reuses its components); the input is never changed, and
    passing ``components`` gives the same answer as letting the rule compute them."""
    m = np.zeros((240, 320), np.uint8)
    _railing(m, 20, 30)
    fence = m.astype(bool)
    before = fence.copy()
    out = learned.drop_bar_families(fence, cc=learned.components(fence))
    assert out is not fence and not out.any() and np.array_equal(fence, before)
    line = np.zeros((240, 320), bool)
    line[100:102, 10:300] = True
    assert learned.drop_bar_families(line) is line and learned.drop_lattices(line) is line
    mesh = np.zeros((300, 300), np.uint8)
    for k in range(30, 271, 12):
        cv2.line(mesh, (k, 30), (k, 270), 1, 2)
        cv2.line(mesh, (30, k), (270, k), 1, 2)
    mesh = mesh.astype(bool)
    kept = mesh.copy()
    a, b = learned.drop_lattices(mesh), learned.drop_lattices(mesh, cc=learned.components(mesh))
    assert np.array_equal(a, b) and a.sum() < 0.1 * mesh.sum() and np.array_equal(mesh, kept)
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100, 1001):
        v = rng.random(n) * 50
        assert learned._percentile90(v) == pytest.approx(float(np.percentile(v, 90)), abs=1e-12)


def test_speckle_is_dense_fine_dust_and_labelled_exactly():
    """Dense fine specks for training: on a mid-grey photo they change 0.2-15 % of the pixels
    (a density of 0.2-3 %, a quarter of them 2 px, and softened ones reach their 4 neighbours),
    the label is exactly the pixels changed by
    more than 2 levels, specks are neutral (a grey photo stays grey), mostly white, seeded; and
    through ``damaged_crop`` they are labelled dust on crops that are otherwise clean."""
    flat = np.full((128, 128, 3), 128, np.uint8)
    shares = []
    for seed in range(8):
        out, lab = speckle(flat, np.random.default_rng(seed))
        diff = np.abs(out.astype(int) - flat).max(axis=2)
        assert np.array_equal(lab, diff > 2)
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        shares.append(lab.mean())
        assert (out[lab, 0] > 128).mean() > 0.5  # mostly white specks
    assert 0.002 <= min(shares) and max(shares) <= 0.15
    a, b = speckle(flat, np.random.default_rng(3)), speckle(flat, np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    big = np.full((160, 160, 3), 128, np.uint8)
    for seed in range(4):
        im, t = damaged_crop(big, np.random.default_rng(seed), 96, clean_share=1.0, speckled=1.0)
        assert t[1].any() and not t[0].any() and not t[2:].any()
    im, t = damaged_crop(big, np.random.default_rng(0), 96, clean_share=1.0)
    assert not t.any()  # off by default: the shipped recipe's crops are unchanged


def test_scuffs_are_short_fine_scratches_labelled_exactly():
    """A field of short fine scratches for training: the label is exactly the pixels changed by
    more than 2 levels (strokes of 1-2 px, whose softened edges count too), thin (a 7 px disc
    fits in almost none of it), in several pieces, mostly white, neutral on a grey photo, seeded; through ``damaged_crop``
    they are labelled scratches on crops that are otherwise clean."""
    flat = np.full((256, 256, 3), 110, np.uint8)
    for seed in range(6):
        out, lab = scuffs(flat, np.random.default_rng(seed))
        diff = np.abs(out.astype(int) - flat).max(axis=2)
        assert np.array_equal(lab, diff > 2) and lab.any()
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
        assert 0.002 < lab.mean() < 0.15
        assert (out[lab, 0] > 110).mean() > 0.5  # mostly white
        opened = cv2.morphologyEx(lab.astype(np.uint8), cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))
        assert opened.sum() < 0.15 * lab.sum()  # thin (a blotch or a speck cluster would keep most of itself)
        n, _, st, _ = cv2.connectedComponentsWithStats(lab.astype(np.uint8), connectivity=8)
        assert n - 1 >= 3  # several separate pieces, not one long line
    a, b = scuffs(flat, np.random.default_rng(2)), scuffs(flat, np.random.default_rng(2))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    big = np.full((160, 160, 3), 128, np.uint8)
    for seed in range(4):
        _, t = damaged_crop(big, np.random.default_rng(seed), 96, clean_share=1.0, scuffed=1.0)
        assert t[0].any() and not t[1:].any()


@pytest.mark.parametrize("argv", [["train", "--help"], ["distill", "-h"], ["train", "--minutes", "1"], []])
def test_net_cli_prints_usage_instead_of_running_into_an_option_named_folder(argv, tmp_path, monkeypatch):
    """`python -m archive_restore.masks.net train --help` once started a run into a folder named
    "--help": any help flag, or an option where the run folder should be, prints the usage."""
    from archive_restore.masks import net

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        net.main(argv)
    assert "learned damage detector" in str(exc.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("sensitivity", ["medium", "high"])
def test_a_one_pixel_scan_gives_an_empty_mask(sensitivity):
    """cv2.compare takes a 1x1 map for a scalar and refused it; a 1x1 scan is just clean."""
    from archive_restore import masks

    r = masks.detect(np.full((1, 1, 3), 128, np.uint8), MaskConfig(sensitivity=sensitivity))
    assert r.mask.shape == (1, 1) and not r.mask.any() and set(r.kind_pixels.values()) == {0}


def test_folder_records_the_mask_scales_and_redoes_images_when_they_change(monkeypatch, tmp_path, random_detector):
    from archive_restore import pipeline
    from pipeline_fakes import FakeSession

    monkeypatch.setattr(learned, "default_detector_path", lambda: random_detector)
    inp = tmp_path / "scans"
    inp.mkdir()
    Image.fromarray(np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(inp / "a.png")

    def run(scales):
        s = pipeline.restore_folder(inp, tmp_path / "o", auto_mask=True, session=FakeSession(), handle_sigint=False,
                                    mask_cfg=MaskConfig(detector="learned", scales=scales))
        rec = [json.loads(line) for line in (tmp_path / "o" / "manifest.jsonl").read_text().splitlines() if line.strip()]
        return s.counts, rec[-1]["settings"]["mask_config"]["scales"]

    assert MaskConfig().scales == "auto"
    counts, scales = run("native")
    assert scales == "native" and counts["skipped"] == 0
    counts, _ = run("native")
    assert counts["skipped"] == 1  # same settings: skipped
    counts, scales = run("auto")
    assert scales == "auto" and counts["skipped"] == 0  # the masks may differ: redone
