"""restore_folder and `restore folder`: outputs, manifest, resume, bad inputs, kills, CLI contract."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from archive_restore import io as aio
from archive_restore import pipeline
from archive_restore.config import RuntimeConfig
from archive_restore.masks import MaskResult
from tests.pipeline_fakes import FakeSession, write_tiny_onnx

REPO = Path(__file__).resolve().parents[1]
MANIFEST_KEYS = {
    "input", "input_root", "output", "mask", "mask_sha256", "input_sha256", "output_sha256", "status", "error", "width", "height",
    "format", "mode", "masked_fraction", "kind_pixels", "windows", "tone_locked", "timings", "provider", "model_id", "model_name",
    "settings", "finished_at", "tool_version",
}


def photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([128 + 90 * np.sin(xx / 17 + k + seed) * np.cos(yy / 29 - k) for k in range(3)], axis=2)
    return np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)


def scratch(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    m = np.zeros((h, w), np.uint8)
    rng = np.random.default_rng(seed + 100)
    for _ in range(2):
        p = rng.integers(0, [w, h], size=(2, 2))
        cv2.line(m, tuple(int(v) for v in p[0]), tuple(int(v) for v in p[1]), 255, 2)
    return m


def tree_hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def last_records(out: Path) -> dict[str, dict]:
    recs = [json.loads(line) for line in (out / "manifest.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for r in recs:
        assert set(r) == MANIFEST_KEYS
    return {r["input"]: r for r in recs}


def make_archive(root: Path, masks: Path, n_extra: int = 0) -> dict[str, np.ndarray]:
    """A small mixed archive with user masks; returns rel -> mask (H, W) bool (upright)."""
    h, w = 60, 80
    items: dict[str, np.ndarray] = {}

    def add(rel: str, save, with_mask: bool = True, seed: int = 0):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        save(p)
        m = scratch(h, w, seed) if with_mask else np.zeros((h, w), np.uint8)
        if with_mask:
            mp = masks / Path(rel).with_suffix(".png")
            mp.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(m).save(mp)
        items[rel] = m > 0

    add("box1/a.jpg", lambda p: Image.fromarray(photo(h, w, 1)).save(p, quality=85, dpi=(300, 300)), seed=1)
    add("box1/b16.png", lambda p: Image.fromarray((photo(h, w, 2)[..., 0].astype(np.uint16) * 257)).save(p), seed=2)
    add("box1/c.tif", lambda p: Image.fromarray(photo(h, w, 3)).save(p, compression="tiff_lzw", dpi=(600, 600)), seed=3)
    add("box2/d.png", lambda p: Image.fromarray(np.dstack([photo(h, w, 4), np.full((h, w), 200, np.uint8)])).save(p), seed=4)
    add("box2/e grey.tiff", lambda p: Image.fromarray(photo(h, w, 5)[..., 1]).save(p), seed=5)
    add("box2/clean.png", lambda p: Image.fromarray(photo(h, w, 6)).save(p), with_mask=False)
    for i in range(n_extra):
        add(f"more/x{i:02d}.png", lambda p, i=i: Image.fromarray(photo(h, w, 10 + i)).save(p), seed=10 + i)
    return items


def _blocks(m: np.ndarray, b: int) -> np.ndarray:
    """(H/b, W/b) bool: which b x b blocks of mask ``m`` hold a True pixel."""
    h, w = -(-m.shape[0] // b) * b, -(-m.shape[1] // b) * b
    p = np.zeros((h, w), bool)
    p[: m.shape[0], : m.shape[1]] = m
    return p.reshape(h // b, b, w // b, b).any(axis=(1, 3))


def psnr(a, b) -> float:
    mse = float(((a.astype(float) - b.astype(float)) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


def test_restore_folder_outputs_manifest_and_untouched_inputs(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks)
    before = tree_hashes(inp)
    sess = FakeSession()
    summary = pipeline.restore_folder(inp, out, masks_dir=masks, session=sess, handle_sigint=False)
    assert summary.counts == {"restored": 5, "unchanged": 1, "skipped": 0, "failed": 0}
    assert tree_hashes(inp) == before  # the input tree is never written
    recs = last_records(out)
    assert sorted(recs) == sorted(items)
    for rel, m in items.items():
        r = recs[rel]
        src, dst = aio.read_scan(inp / rel), aio.read_scan(out / rel)
        assert r["input_sha256"] == before[rel]
        assert r["output_sha256"] == hashlib.sha256((out / rel).read_bytes()).hexdigest()
        assert (dst.format, dst.mode, dst.pixels.dtype, dst.pixels.shape) == (src.format, src.mode, src.pixels.dtype, src.pixels.shape)
        assert r["provider"] == "FakeExecutionProvider" and r["model_id"] == sess.model_id
        assert r["kind_pixels"]["user"] == int(m.sum())
        assert set(r["timings"]) >= {"decode", "mask", "encode", "total"}
        if not m.any():
            assert r["status"] == "unchanged" and r["mask"] is None
            assert (out / rel).read_bytes() == (inp / rel).read_bytes()
            continue
        assert r["status"] == "restored" and r["windows"] >= 1
        assert r["masked_fraction"] == pytest.approx(m.mean())
        saved = np.asarray(Image.open(out / r["mask"]))
        assert r["mask"] == f"masks/{rel}.png" and saved.dtype == np.uint8 and set(np.unique(saved)) == {0, 255}
        assert ((saved == 255) == m).all()
        if src.format == "JPEG":
            # JPEG codes 16x16 blocks (MCUs): a block touched by the fill is re-coded as a whole.
            # Every block the mask does not touch must come back at >= 45 dB.
            touched = np.kron(_blocks(m, 16), np.ones((16, 16), bool))[: m.shape[0], : m.shape[1]]
            assert (~touched).sum() > 0.3 * m.size
            assert psnr(dst.pixels[~touched], src.pixels[~touched]) >= 45
            assert dst.dpi == (300.0, 300.0)
        else:
            assert (dst.pixels[~m] == src.pixels[~m]).all()  # lossless: identical outside the mask
            assert (dst.pixels[m] != src.pixels[m]).any()  # and the mask really was filled
        if src.pixels.shape[2] == 4:
            assert (dst.pixels[..., 3] == src.pixels[..., 3]).all()
    assert aio.read_scan(out / "box1/c.tif").dpi == (600.0, 600.0)
    assert not list(out.rglob(f"*{aio.TEMP_MARK}*"))


def test_resume_skips_force_redoes_and_changes_are_noticed(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    make_archive(inp, masks)
    pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    first = last_records(out)
    sess = FakeSession()
    s2 = pipeline.restore_folder(inp, out, masks_dir=masks, session=sess, handle_sigint=False)
    assert s2.counts["skipped"] == 6 and sess.calls == 0
    recs = last_records(out)
    assert all(r["status"] == "skipped" for r in recs.values())
    assert all(recs[k]["output_sha256"] == first[k]["output_sha256"] for k in recs)  # still points at the outputs
    # a changed user mask, a changed input and a damaged output are redone; the rest skipped
    Image.fromarray(scratch(60, 80, 42)).save(masks / "box1/c.png")
    Image.fromarray(photo(60, 80, 99)).save(inp / "box2/clean.png")
    (out / "box2/d.png").write_bytes(b"damaged")
    s3 = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert {k for k, r in recs.items() if r["status"] != "skipped"} == {"box1/c.tif", "box2/clean.png", "box2/d.png"}
    assert s3.counts["skipped"] == 3
    # other settings (model) -> redone
    other = FakeSession()
    other.model_id = "0" * 64
    s4 = pipeline.restore_folder(inp, out, masks_dir=masks, session=other, handle_sigint=False)
    assert s4.counts["skipped"] == 0
    s5 = pipeline.restore_folder(inp, out, masks_dir=masks, session=other, handle_sigint=False, force=True)
    assert s5.counts["skipped"] == 0 and s5.counts["restored"] == 5


def test_bad_inputs_fail_one_by_one_and_the_batch_goes_on(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks)
    bad = inp / "bad"
    bad.mkdir()
    (bad / "zero.jpg").write_bytes(b"")
    Image.fromarray(photo(100, 100)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (bad / "trunc.png").write_bytes(data[: len(data) // 2])
    (bad / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(500))
    (bad / "notes.tif").write_text("<html>not an image</html>")
    Image.fromarray(photo(300, 300)).save(bad / "bomb.png")
    Image.fromarray(photo(60, 80)).convert("CMYK").save(bad / "cmyk.jpg")
    Image.fromarray(photo(60, 80)).convert("P").save(bad / "palette.png")
    Image.fromarray(photo(60, 80)).save(bad / "wrongmask.png")
    (masks / "bad").mkdir()
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(masks / "bad/wrongmask.png")
    os.symlink(tmp_path / "full.png", bad / "escape.png")  # outside the input tree
    os.symlink(bad / "missing.png", bad / "dangling.png")  # unreadable
    weird = "box1/<b>&amp; \"q\" 'é' 写真 #1.png"
    Image.fromarray(photo(60, 80, 7)).save(inp / weird)
    Image.fromarray(scratch(60, 80, 7)).save(masks / Path(weird).with_suffix(".png"))
    os.symlink(inp / "box1/a.jpg", inp / "box1/inside-link.jpg")  # inside: allowed
    Image.fromarray(scratch(60, 80, 1)).save(masks / "box1/inside-link.png")
    before = tree_hashes(inp)
    rt = RuntimeConfig(max_pixels=60_000)
    summary = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), runtime=rt, handle_sigint=False)
    recs = last_records(out)
    expected = {
        "bad/zero.jpg": "empty file",
        "bad/trunc.png": "truncated",
        "bad/corrupt.jpg": "corrupt",
        "bad/notes.tif": "not a readable image",
        "bad/bomb.png": "decompression bomb",
        "bad/cmyk.jpg": "CMYK",
        "bad/palette.png": "palette",
        "bad/wrongmask.png": "user mask wrongmask.png is 10x10 but the image is 80x60",
        "bad/escape.png": "outside the input folder",
        "bad/dangling.png": "symlink to nothing",
    }
    for rel, text in expected.items():
        r = recs[rel]
        assert r["status"] == "failed" and text in r["error"], (rel, r["error"])
        assert "\n" not in r["error"] and r["output"] is None
        assert not (out / rel).exists()
    for rel in list(items) + [weird, "box1/inside-link.jpg"]:
        assert recs[rel]["status"] in ("restored", "unchanged"), (rel, recs[rel]["error"])
        assert (out / rel).is_file()
    assert summary.counts["failed"] == len(expected)
    assert tree_hashes(inp) == before


def test_auto_mask_uses_detect_and_unites_with_user_masks(tmp_path, monkeypatch):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks)
    seen = []

    def fake_detect(image, cfg, progress=None):
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        seen.append(cfg.sensitivity)
        m = np.zeros(image.shape[:2], bool)
        m[10:14, 5:40] = True
        return MaskResult(mask=m, kind_pixels={"scratches": int(m.sum()), "dust": 0})

    monkeypatch.setattr("archive_restore.masks.detect", fake_detect)
    from archive_restore.config import MaskConfig

    summary = pipeline.restore_folder(
        inp, out, auto_mask=True, masks_dir=masks, mask_cfg=MaskConfig(sensitivity="high"), session=FakeSession(), handle_sigint=False
    )
    assert summary.counts["restored"] == 6 and seen == ["high"] * 6
    recs = last_records(out)
    for rel, um in items.items():
        r = recs[rel]
        saved = np.asarray(Image.open(out / r["mask"])) == 255
        auto = np.zeros_like(um)
        auto[10:14, 5:40] = True
        assert (saved == (um | auto)).all()
        assert r["kind_pixels"]["scratches"] == 140 and r["kind_pixels"]["user"] == int(um.sum())
        assert r["settings"]["auto_mask"] is True and r["settings"]["mask_sensitivity"] == "high"


def test_activity_follows_each_image_through_its_stages(tmp_path, monkeypatch):
    """``restore_folder(activity=...)``: every restored image is reported reading, detecting
    (the detector's shares, passed through), filling (shares rising to 1) and writing, in
    that order; a callback that raises does not fail an image."""
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks)

    def fake_detect(image, cfg, progress=None):
        progress(0.5)
        progress(1.0)
        m = np.zeros(image.shape[:2], bool)
        m[10:14, 5:40] = True
        return MaskResult(mask=m, kind_pixels={"scratches": int(m.sum())})

    monkeypatch.setattr("archive_restore.masks.detect", fake_detect)
    seen: dict[str, list[tuple[str, float]]] = {}
    lock = threading.Lock()

    def activity(rel, stage, share):
        with lock:
            seen.setdefault(rel, []).append((stage, share))

    summary = pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False, activity=activity)
    assert summary.counts["restored"] == len(items) == len(seen)
    for rel, steps in seen.items():
        stages = [st for st, _ in steps]
        order = [st for i, st in enumerate(stages) if i == 0 or stages[i - 1] != st]  # repeats collapsed, returns kept
        assert order == ["reading", "detecting", "filling", "writing"], (rel, steps)
        assert [f for st, f in steps if st == "detecting"] == [0.0, 0.5, 1.0]
        fills = [f for st, f in steps if st == "filling"]
        assert fills == sorted(fills) and fills[-1] == 1.0

    def broken(rel, stage, share):
        raise RuntimeError("display gone")

    again = pipeline.restore_folder(inp, tmp_path / "out2", auto_mask=True, session=FakeSession(), handle_sigint=False,
                                    activity=broken)
    assert again.counts["restored"] == len(items)


def test_in_flight_line_and_heartbeat():
    """``cli.InFlight``: the line names the oldest image in flight with its stage, share and
    seconds; a heartbeat goes out once the oldest image has been in flight ``every`` seconds,
    then not again within ``every`` (whatever the image is doing); a name's control characters
    are escaped, a long name cut; start/stop run and end the heartbeat thread."""
    from archive_restore.cli import InFlight

    t = [0.0]
    said: list[str] = []
    fl = InFlight(echo=said.append, every=30.0, clock=lambda: t[0])
    fl.update("a\nb.tif", "detecting", 0.4)
    t[0] = 5.0
    fl.update("c.tif", "reading", 0.0)
    assert fl.line() == "a\\nb.tif: detecting 40% (5 s)"
    t[0] = 29.0
    fl.beat()
    assert said == []
    t[0] = 31.0
    fl.beat()
    assert said == ["  ... a\\nb.tif: detecting 40% (31 s)"]
    t[0] = 50.0
    fl.beat()
    assert len(said) == 1  # not again within 30 s
    t[0] = 62.0
    fl.beat()
    assert said[-1] == "  ... a\\nb.tif: detecting 40% (62 s)"
    fl.done("a\nb.tif")
    assert fl.line() == "c.tif: reading (57 s)"
    fl.done("c.tif")
    assert fl.line() == ""
    t[0] = 200.0
    fl.beat()
    assert len(said) == 2  # nothing in flight, nothing said
    fl.update("x" * 60 + ".tif", "filling", 1.0)
    assert fl.line().startswith("...x") and fl.line().endswith("filling 100% (0 s)") and len(fl.line().split(":")[0]) == 40
    live: list[str] = []
    ticking = InFlight(echo=live.append, every=0.05)
    ticking.update("slow.tif", "writing", 0.0)
    ticking.start()
    time.sleep(0.5)
    ticking.stop()
    n = len(live)
    assert n >= 1 and live[0].startswith("  ... slow.tif: writing (")
    time.sleep(0.2)
    assert len(live) == n  # stopped


def test_out_inside_input_and_missing_mask_source_refused(tmp_path):
    from archive_restore.cli import app

    inp = tmp_path / "scans"
    make_archive(inp, tmp_path / "m")
    with pytest.raises(pipeline.UsageError):
        pipeline.restore_folder(inp, inp / "out", masks_dir=tmp_path / "m", session=FakeSession())
    runner = CliRunner()
    for args in (
        ["folder", str(inp), "--out", str(inp / "restored"), "--masks", str(tmp_path / "m")],
        ["folder", str(inp), "--out", str(inp), "--masks", str(tmp_path / "m")],
        ["folder", str(inp), "--out", str(tmp_path / "o")],  # neither --auto-mask nor --masks
        ["folder", str(tmp_path / "nope"), "--auto-mask"],
        ["folder", str(inp), "--out", str(tmp_path), "--masks", str(tmp_path / "m")],  # INPUT inside OUT
    ):
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
    assert not (inp / "restored").exists() and not (tmp_path / "o").exists()
    (tmp_path / "o2" / "other").mkdir(parents=True)
    with pytest.raises(pipeline.UsageError, match="masks folder"):  # inside OUT, not the run's own masks
        pipeline.restore_folder(inp, tmp_path / "o2", masks_dir=tmp_path / "o2" / "other", session=FakeSession())
    with pytest.raises(pipeline.UsageError, match="input folder"):  # masks beside the scans would be scans too
        pipeline.restore_folder(inp, tmp_path / "o3", masks_dir=inp, session=FakeSession())


def _paint(path: Path, box: tuple[slice, slice]) -> None:
    m = np.asarray(Image.open(path)).copy()
    m[box] = 255
    Image.fromarray(m).save(path, compress_level=1)  # an editor's encoding, not ours


def test_masks_edited_in_place_are_used_or_kept_never_lost(tmp_path):
    """A run's OUT/masks may be edited and given back in place (--masks OUT/masks); until
    then no rerun, --force included, overwrites an edited mask."""
    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    make_archive(inp, masks)
    kw = dict(session=FakeSession(), handle_sigint=False)
    pipeline.restore_folder(inp, out, masks_dir=masks, **kw)
    first = last_records(out)
    rel = "box1/a.jpg"
    mfile = out / first[rel]["mask"]
    assert first[rel]["mask_sha256"] == hashlib.sha256(mfile.read_bytes()).hexdigest()
    _paint(mfile, (slice(5, 15), slice(5, 15)))
    edited = mfile.read_bytes()
    s = pipeline.restore_folder(inp, out, masks_dir=masks, **kw)  # same settings: skipped, and said
    assert s.counts["skipped"] == len(first) and s.edited_masks == [rel]
    s = pipeline.restore_folder(inp, out, masks_dir=masks, force=True, **kw)
    recs = last_records(out)
    assert recs[rel]["status"] == "failed" and "edited after the run" in recs[rel]["error"]
    assert mfile.read_bytes() == edited and s.counts["restored"] == len(first) - 1 - s.counts["unchanged"]
    s = pipeline.restore_folder(inp, out, masks_dir=masks, force=True, **kw)  # after its failed record too
    assert last_records(out)[rel]["status"] == "failed" and mfile.read_bytes() == edited
    with pytest.raises(pipeline.UsageError, match="without --auto-mask"):  # detection would be written over the edits
        pipeline.restore_folder(inp, out, masks_dir=out / "masks", auto_mask=True, **kw)
    assert mfile.read_bytes() == edited
    s = pipeline.restore_folder(inp, out, masks_dir=out / "masks", **kw)  # given back in place
    recs = last_records(out)
    assert recs[rel]["status"] == "restored" and mfile.read_bytes() == edited  # the user's file, as it is
    used = np.asarray(Image.open(mfile)) > 0
    assert used[5:15, 5:15].all() and recs[rel]["mask_sha256"] == hashlib.sha256(edited).hexdigest()
    restored = aio.read_scan(out / rel).pixels
    assert not np.array_equal(restored[5:15, 5:15], aio.read_scan(inp / rel).pixels[5:15, 5:15])
    s = pipeline.restore_folder(inp, out, masks_dir=out / "masks", **kw)  # and then it is stable
    assert s.counts["skipped"] == s.total and not s.edited_masks
    # the edits given back are the person's: a later run that does not read them (the old
    # command from the shell's history) must not overwrite them either
    s = pipeline.restore_folder(inp, out, masks_dir=masks, **kw)
    recs = last_records(out)
    assert recs[rel]["status"] == "failed" and "is your mask, given back in place" in recs[rel]["error"]
    assert mfile.read_bytes() == edited
    # a mask put by hand beside an image the run left unchanged (no mask of its own)
    quiet = next(r for r, rec in recs.items() if rec["status"] in ("unchanged", "skipped") and not rec["mask"])
    added = out / "masks" / aio.mask_name(quiet)
    added.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(added)
    pipeline.restore_folder(inp, out, masks_dir=masks, force=True, **kw)
    recs = last_records(out)
    assert recs[quiet]["status"] == "failed" and "was put there after the run" in recs[quiet]["error"]
    assert np.asarray(Image.open(added)).min() == 255


def test_mask_of_an_image_now_unchanged_is_removed(tmp_path):
    """An image whose user mask was emptied comes out unchanged; the mask the earlier run wrote
    goes, or it would come back in the next review round."""
    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    make_archive(inp, masks)
    kw = dict(session=FakeSession(), handle_sigint=False)
    pipeline.restore_folder(inp, out, masks_dir=masks, **kw)
    rel = "box1/a.jpg"
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(masks / "box1/a.png")
    pipeline.restore_folder(inp, out, masks_dir=masks, **kw)
    assert last_records(out)[rel]["status"] == "unchanged"
    assert not (out / "masks" / "box1/a.jpg.png").exists()
    assert (out / rel).read_bytes() == (inp / rel).read_bytes()


def test_user_mask_names_that_are_not_files_fail_and_nfd_names_are_found(tmp_path):
    import unicodedata

    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    (masks / "x").mkdir(parents=True)
    inp.mkdir()
    for name in ("dir.png", "link.png", "Zoë café.png"):
        Image.fromarray(photo(60, 80)).save(inp / name)
    (masks / "dir.png.png").mkdir()
    os.symlink(tmp_path / "gone.png", masks / "link.png.png")
    Image.fromarray(scratch(60, 80)).save(masks / unicodedata.normalize("NFD", "Zoë café.png.png"))
    s = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert "is not a file" in recs["dir.png"]["error"] and "link to nothing" in recs["link.png"]["error"]
    assert recs["Zoë café.png"]["status"] == "restored" and recs["Zoë café.png"]["kind_pixels"]["user"] > 0
    assert s.unused_masks == []
    (inp / "box").mkdir()  # a linked folder of masks is read through, not "unused"
    Image.fromarray(photo(60, 80)).save(inp / "box/y.png")
    (tmp_path / "elsewhere").mkdir()
    Image.fromarray(scratch(60, 80)).save(tmp_path / "elsewhere/y.png.png")
    os.symlink(tmp_path / "elsewhere", masks / "box")
    s = pipeline.restore_folder(inp, tmp_path / "out2", masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert last_records(tmp_path / "out2")["box/y.png"]["status"] == "restored" and s.unused_masks == []


def _run_cli(args: list[str], **kw) -> subprocess.Popen:
    """`restore folder` in a subprocess; prints whether torch got imported at the end."""
    code = textwrap.dedent(
        """
        import sys, atexit
        atexit.register(lambda: print("TORCH_IMPORTED=" + str("torch" in sys.modules), flush=True))
        from archive_restore.cli import app
        app(prog_name="restore")
        """
    )
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_cli_subprocess_real_session_never_imports_torch(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    make_archive(inp, masks)
    (inp / "box1/zero.png").write_bytes(b"")
    model = write_tiny_onnx(tmp_path / "model")
    p = _run_cli(["folder", str(inp), "--out", str(out), "--masks", str(masks), "--model", str(model), "--device", "cpu", "--no-report"])
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 1, stderr  # one file failed, the rest done
    assert "TORCH_IMPORTED=False" in stdout
    assert "CPUExecutionProvider" in stdout and "box1/zero.png" in stderr
    recs = last_records(out)
    assert recs["box1/a.jpg"]["status"] == "restored" and recs["box1/a.jpg"]["provider"] == "CPUExecutionProvider"
    assert recs["box1/zero.png"]["status"] == "failed"
    assert not (out / "report.html").exists()  # --no-report
    (inp / "box1/zero.png").unlink()
    p = _run_cli(["folder", str(inp), "--out", str(out), "--masks", str(masks), "--model", str(model), "--device", "cpu"])
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    assert "6 skipped" in stdout
    assert "TORCH_IMPORTED=False" in stdout  # the report does not pull torch in either
    assert (out / "report.html").is_file()


SLOW_RUN = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from tests.pipeline_fakes import FakeSession
    from archive_restore.pipeline import restore_folder

    class Slow(FakeSession):
        def fill(self, images, masks):
            time.sleep({delay})
            return super().fill(images, masks)

    s = restore_folder(Path(sys.argv[1]), Path(sys.argv[2]), masks_dir=Path(sys.argv[3]), session=Slow())
    print("DONE", s.counts, s.interrupted, flush=True)
    sys.exit(130 if s.interrupted else 0)
    """
)


def _wait_for_records(manifest: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if manifest.exists() and len(manifest.read_text().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("no manifest records appeared")


def _start_slow_run(inp: Path, out: Path, masks: Path, delay: float) -> subprocess.Popen:
    """``restore_folder`` in a child process, each inpaint slowed by ``delay`` s (SLOW_RUN)."""
    code = SLOW_RUN.format(repo=str(REPO), delay=delay)
    return subprocess.Popen([sys.executable, "-c", code, str(inp), str(out), str(masks)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _check_outputs_whole(out: Path) -> None:
    for p in out.rglob("*"):
        if p.is_file() and p.name not in ("manifest.jsonl", pipeline.LOCK_NAME) and aio.TEMP_MARK not in p.name:
            aio.read_scan(p)  # every visible output decodes completely


def test_sigkill_mid_run_leaves_no_partial_outputs_and_rerun_completes(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks, n_extra=10)
    p = _start_slow_run(inp, out, masks, 0.15)
    _wait_for_records(out / "manifest.jsonl", 2, p)
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    done = last_records(out) if (out / "manifest.jsonl").exists() else {}
    assert 0 < len(done) < len(items)
    _check_outputs_whole(out)
    for rel, r in done.items():  # a record only names files that are complete
        assert hashlib.sha256((out / r["output"]).read_bytes()).hexdigest() == r["output_sha256"]
    p = _start_slow_run(inp, out, masks, 0)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr
    recs = last_records(out)
    assert sorted(recs) == sorted(items)
    assert all(r["status"] in ("restored", "unchanged", "skipped") for r in recs.values())
    assert sum(r["status"] == "skipped" for r in recs.values()) >= len(done)
    assert not list(out.rglob(f"*{aio.TEMP_MARK}*"))  # stale temp files cleaned
    _check_outputs_whole(out)


def test_sigint_finishes_in_flight_images_and_exits_130(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks, n_extra=10)
    p = _start_slow_run(inp, out, masks, 0.15)
    _wait_for_records(out / "manifest.jsonl", 1, p)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "DONE" in stdout and "True" in stdout
    recs = last_records(out)
    assert 0 < len(recs) < len(items)
    assert all(r["status"] in ("restored", "unchanged") for r in recs.values())
    assert not list(out.rglob(f"*{aio.TEMP_MARK}*"))
    _check_outputs_whole(out)


def test_cli_device_cuda_without_cuda_fails_clearly(tmp_path):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has a CUDA provider")
    from archive_restore.cli import app

    inp, masks = tmp_path / "scans", tmp_path / "masks"
    make_archive(inp, masks)
    model = write_tiny_onnx(tmp_path / "model")
    res = CliRunner().invoke(app, ["folder", str(inp), "--out", str(tmp_path / "o"), "--masks", str(masks), "--model", str(model), "--device", "cuda"])
    assert res.exit_code == 1
    assert "cuda" in res.output.lower() and "error:" in res.output
    assert not (tmp_path / "o" / "manifest.jsonl").exists()


def test_cli_refuses_both_onnxruntime_distributions(tmp_path, monkeypatch):
    from archive_restore.cli import app
    from archive_restore.runtime import session as session_mod

    monkeypatch.setattr(session_mod.metadata, "version", lambda dist: "1.0")  # both "installed"
    inp, masks = tmp_path / "scans", tmp_path / "masks"
    make_archive(inp, masks)
    res = CliRunner().invoke(app, ["folder", str(inp), "--out", str(tmp_path / "o"), "--masks", str(masks)])
    assert res.exit_code == 1 and "onnxruntime-gpu" in res.output


def test_masks_dir_inside_input_is_not_restored_as_scans(tmp_path):
    inp = tmp_path / "scans"
    items = make_archive(inp, inp / "_masks")
    summary = pipeline.restore_folder(inp, tmp_path / "out", masks_dir=inp / "_masks", session=FakeSession(), handle_sigint=False)
    assert sorted(last_records(tmp_path / "out")) == sorted(items)
    assert summary.total == len(items)


def test_non_utf8_file_name_is_restored_and_manifest_stays_utf8(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    inp.mkdir()
    masks.mkdir()
    name = os.fsdecode(b"caf\xe9 scan.png")  # Latin-1 name: not valid UTF-8
    Image.fromarray(photo(40, 50)).save(inp / name)
    Image.fromarray(scratch(40, 50)).save(masks / os.fsdecode(b"caf\xe9 scan.png"))
    summary = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert summary.counts["restored"] == 1
    text = (out / "manifest.jsonl").read_bytes().decode("utf-8")  # strict: valid UTF-8
    rec = json.loads(text)
    assert rec["input"] == name and (out / rec["output"]).is_file() and (out / rec["mask"]).is_file()
    s2 = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert s2.counts["skipped"] == 1


def test_cli_default_out_is_beside_the_input(tmp_path):
    from archive_restore.cli import app

    inp, masks = tmp_path / "box 3", tmp_path / "masks"
    items = make_archive(inp, masks)
    model = write_tiny_onnx(tmp_path / "model")
    res = CliRunner().invoke(app, ["folder", str(inp), "--masks", str(masks), "--model", str(model), "--device", "cpu", "--no-report"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "box 3_restored"
    assert sorted(last_records(out)) == sorted(items)
    assert "CPUExecutionProvider" in res.output and "tiny" in res.output


def test_a_batch_never_holds_two_rounds_of_one_image(tmp_path, monkeypatch):
    """A window of a later round reads what earlier rounds pasted (``windows.plan_windows``), so
    the inference stage must not put two rounds of one scan in one session call, whatever the
    batch size; the files are still those ``restore_pixels`` makes."""
    import cv2

    from archive_restore.runtime import windows as win

    h, w = 700, 1300
    image = photo(h, w, 3)
    mask = np.zeros((h, w), np.uint8)
    cv2.line(mask, (10, 40), (1290, 650), 1, 3)  # a long scratch: a chain of windows
    cv2.ellipse(mask, (640, 350), (330, 250), 0, 0, 360, 1, -1)  # a tear no window holds
    mask = mask.astype(bool)
    plan = win.plan_windows(mask, 512, 48)
    assert max(x.round for x in plan) >= 1
    image[mask] = 250  # the damage: a window that read unfilled holes would see it
    inp, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    inp.mkdir(), masks.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(image).save(inp / name)
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / name)
    calls = []
    real = pipeline.fill_windows

    def spy(session, items):
        calls.append([(id(pixels), w.round) for pixels, _, w, _ in items])
        return real(session, items)

    monkeypatch.setattr(pipeline, "fill_windows", spy)
    for batch in (3, 5):
        calls.clear()
        rt = RuntimeConfig(batch=batch)
        s = pipeline.restore_folder(inp, out / str(batch), masks_dir=masks, session=FakeSession(), runtime=rt,
                                    handle_sigint=False)
        assert s.counts["restored"] == 2
        assert sum(len(c) for c in calls) == 2 * len(plan)
        for c in calls:
            for img in {i for i, _ in c}:
                assert len({r for i, r in c if i == img}) == 1, c
        expect = pipeline.restore_pixels(FakeSession(), image, mask, RuntimeConfig(batch=1))
        for name in ("a.png", "b.png"):
            assert np.array_equal(np.asarray(Image.open(out / str(batch) / name)), expect)


def test_an_images_batches_do_not_depend_on_the_other_images_in_flight(tmp_path, monkeypatch):
    """Windows of one round that share context see what earlier session calls pasted, so where
    a round is cut into calls changes the fill (the shipped model: 85 pixels of a sample scan
    by up to 2 levels). The cuts must be those of ``restore_pixels`` (every ``batch`` windows
    from the round's start), whatever else is in the batch: then a file is the same however
    busy the run."""
    import cv2

    from archive_restore.runtime import windows as win

    rng = np.random.default_rng(4)
    inp, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    inp.mkdir(), masks.mkdir()
    plans = {}
    for k in range(4):
        image = photo(300, 400, k)
        mask = np.zeros((300, 400), np.uint8)
        for _ in range(5 + 3 * k):  # dust specks: many small windows, a different count per image
            cv2.circle(mask, (int(rng.integers(10, 390)), int(rng.integers(10, 290))), 3, 1, -1)
        Image.fromarray(image).save(inp / f"{k}.png")
        Image.fromarray(mask * 255).save(masks / f"{k}.png")
        plans[k] = win.plan_windows(mask.astype(bool), 512, 48)
    cuts = []
    real = pipeline.fill_windows

    calls = []

    def spy(session, items):
        calls.append(len(items))
        by_image: dict[int, list] = {}
        for pixels, _, w, _ in items:
            by_image.setdefault(id(pixels), []).append(w)
        cuts.extend(by_image.values())
        return real(session, items)

    monkeypatch.setattr(pipeline, "fill_windows", spy)
    batch = 4
    pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), runtime=RuntimeConfig(batch=batch),
                            handle_sigint=False)
    expected = []
    for plan in plans.values():
        for r in sorted({w.round for w in plan}):
            todo = [w for w in plan if w.round == r]
            expected += [todo[i:i + batch] for i in range(0, len(todo), batch)]
    key = lambda ws: tuple((w.box, w.core, w.round) for w in ws)  # noqa: E731
    assert sorted(map(key, cuts)) == sorted(map(key, expected))
    assert max(calls) <= batch  # and no call holds more than batch windows


def test_a_runs_masks_can_be_edited_and_given_back(tmp_path, monkeypatch):
    """OUT/masks/ of one run, edited, is a --masks folder for the next (the same layout), and
    scans sharing a stem (a.jpg, a.png) keep their own masks; an old-layout mask (a.png for
    a.jpg) is still read when no other scan shares its name and refused, per file, when one does."""
    inp = tmp_path / "scans"
    (inp / "box").mkdir(parents=True)
    h, w = 60, 80
    Image.fromarray(photo(h, w, 1)).save(inp / "box/a.jpg", quality=90)
    Image.fromarray(photo(h, w, 2)).save(inp / "box/a.png")
    Image.fromarray(photo(h, w, 3)).save(inp / "box/b.tif")

    def fake_detect(image, cfg, progress=None):
        m = np.zeros(image.shape[:2], bool)
        m[10:14, 5:40] = True
        return MaskResult(mask=m, kind_pixels={"scratches": int(m.sum())})

    monkeypatch.setattr("archive_restore.masks.detect", fake_detect)
    s1 = pipeline.restore_folder(inp, tmp_path / "o1", auto_mask=True, session=FakeSession(), handle_sigint=False)
    assert s1.counts["restored"] == 3
    r1 = last_records(tmp_path / "o1")
    assert {r["mask"] for r in r1.values()} == {"masks/box/a.jpg.png", "masks/box/a.png.png", "masks/box/b.tif.png"}
    # a person edits two masks: a.png gets more, a.jpg's is wiped; b.tif's is kept as it is
    edited = tmp_path / "o1" / "masks"
    more = np.zeros((h, w), np.uint8)
    more[30:50, 20:60] = 255
    Image.fromarray(more).save(edited / "box/a.png.png")
    Image.fromarray(np.zeros((h, w), np.uint8)).save(edited / "box/a.jpg.png")
    s2 = pipeline.restore_folder(inp, tmp_path / "o2", masks_dir=edited, session=FakeSession(), handle_sigint=False)
    r2 = last_records(tmp_path / "o2")
    assert r2["box/a.png"]["kind_pixels"]["user"] == 800 and r2["box/a.png"]["status"] == "restored"
    assert r2["box/a.jpg"]["status"] == "unchanged" and r2["box/a.jpg"]["kind_pixels"]["user"] == 0
    assert r2["box/b.tif"]["kind_pixels"]["user"] == 140
    assert np.array_equal(np.asarray(Image.open(tmp_path / "o2/box/b.tif")), np.asarray(Image.open(tmp_path / "o1/box/b.tif")))
    assert s2.counts["failed"] == 0
    # the old layout: box/b.png is b.tif's mask (no other b.* scan); box/a.png is a.jpg's or a.png's
    old = tmp_path / "old"
    (old / "box").mkdir(parents=True)
    Image.fromarray(more).save(old / "box/b.png")
    Image.fromarray(more).save(old / "box/a.png")
    s3 = pipeline.restore_folder(inp, tmp_path / "o3", masks_dir=old, session=FakeSession(), handle_sigint=False)
    r3 = last_records(tmp_path / "o3")
    assert r3["box/b.tif"]["kind_pixels"]["user"] == 800
    for rel in ("box/a.jpg", "box/a.png"):
        assert r3[rel]["status"] == "failed" and "could belong to more than one scan" in r3[rel]["error"]
        assert "box/" + Path(rel).name + ".png" in r3[rel]["error"]
    assert s3.counts["failed"] == 2 and s3.counts["restored"] == 1


def test_masks_that_name_no_scan_are_reported(tmp_path):
    """A --masks file that no scan looks for (a typo, a renamed scan, a .jpg mask) is listed in
    the summary and warned about by the CLI, not silently ignored; hidden files are not."""
    from archive_restore.cli import app

    inp, masks = tmp_path / "scans", tmp_path / "masks"
    (inp / "box").mkdir(parents=True)
    (masks / "box").mkdir(parents=True)
    Image.fromarray(photo(40, 50, 1)).save(inp / "box/a.jpg")
    Image.fromarray(photo(40, 50, 2)).save(inp / "box/b.png")
    Image.fromarray(scratch(40, 50, 1)).save(masks / "box/a.jpg.png")  # used
    Image.fromarray(scratch(40, 50, 2)).save(masks / "box/b.png")  # used: the older layout
    Image.fromarray(scratch(40, 50, 3)).save(masks / "box/c.jpg.png")  # no box/c.* scan
    Image.fromarray(scratch(40, 50, 4)).save(masks / "box/a.jpg.jpg")  # not a .png name
    (masks / ".DS_Store").write_bytes(b"x")
    s = pipeline.restore_folder(inp, tmp_path / "o", masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert s.counts["restored"] == 2
    assert s.unused_masks == ["box/a.jpg.jpg", "box/c.jpg.png"]
    res = CliRunner().invoke(app, ["folder", str(inp), "--masks", str(masks), "--out", str(tmp_path / "o2"),
                                   "--model", str(write_tiny_onnx(tmp_path)), "--no-report"])
    assert res.exit_code == 0, res.output
    assert "warning: 2 files in --masks" in res.output and "box/c.jpg.png" in res.output


def test_cli_says_when_a_folder_holds_no_scans(tmp_path):
    from archive_restore.cli import app

    inp = tmp_path / "scans"
    (inp / "sub").mkdir(parents=True)
    (inp / "sub" / "notes.txt").write_text("not a scan")
    res = CliRunner().invoke(app, ["folder", str(inp), "--auto-mask", "--out", str(tmp_path / "o"),
                                   "--model", str(write_tiny_onnx(tmp_path)), "--no-report"])
    assert res.exit_code == 0, res.output
    assert "warning: no scans found under" in res.output and ".tiff" in res.output


def _flag_a_band(monkeypatch):
    def fake_detect(image, cfg, progress=None):
        m = np.zeros(image.shape[:2], bool)
        m[10:14, 5:40] = True
        return MaskResult(mask=m, kind_pixels={"scratches": int(m.sum())})

    monkeypatch.setattr("archive_restore.masks.detect", fake_detect)


def test_long_names_get_temp_files_and_one_too_long_for_its_mask_fails_cleanly(tmp_path, monkeypatch):
    """A 250-byte name is restored (its temp names are cut to fit); a 253-byte one fits the
    file system but its mask's name (+ ".png") would not: it fails with a clear error before
    anything is written, so no output is left without its mask."""
    _flag_a_band(monkeypatch)
    inp, out = tmp_path / "scans", tmp_path / "out"
    inp.mkdir()
    ok, long = "k" * 246 + ".png", "m" * 249 + ".png"  # 250 and 253 bytes
    for name in (ok, long):
        Image.fromarray(photo(40, 60)).save(inp / name)
    assert len(aio.temp_path_for(out / long).name.encode()) <= aio.NAME_MAX
    s = pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert (s.counts["restored"], s.counts["failed"]) == (1, 1)
    assert (out / ok).is_file() and (out / recs[ok]["mask"]).is_file()
    assert "file name too long" in recs[long]["error"] and not (out / long).exists()
    assert not [p for p in out.rglob("*") if aio.TEMP_MARK in p.name]


def test_an_output_that_cannot_be_kept_without_its_mask_is_removed(tmp_path, monkeypatch):
    _flag_a_band(monkeypatch)
    inp, out = tmp_path / "scans", tmp_path / "out"
    inp.mkdir()
    Image.fromarray(photo(40, 60)).save(inp / "a.png")

    def no_room(path, mask):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(aio, "write_mask", no_room)
    s = pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False)
    rec = last_records(out)["a.png"]
    assert s.counts["failed"] == 1 and "No space left" in rec["error"] and rec["output"] is None
    assert not (out / "a.png").exists()


def test_an_input_where_a_mask_goes_fails_instead_of_overwriting_it(tmp_path, monkeypatch):
    """A mask folder kept inside INPUT (INPUT/masks/a.jpg.png beside INPUT/a.jpg) would be
    restored to OUT/masks/a.jpg.png, where a.jpg's mask is written: it fails, the mask stays."""
    _flag_a_band(monkeypatch)
    inp, out = tmp_path / "scans", tmp_path / "out"
    (inp / "masks").mkdir(parents=True)
    Image.fromarray(photo(40, 60)).save(inp / "a.jpg")
    Image.fromarray(photo(30, 50, 3)).save(inp / "masks" / "a.jpg.png")
    Image.fromarray(photo(30, 50, 4)).save(inp / "masks" / "other.png")  # collides with nothing
    assert [err is not None for _, _, err in pipeline.mark_mask_collisions(
        [("b.jpg", inp, None), ("Masks/B.JPG.png", inp, None), ("masks/b.jpg.png/x.png", inp, None)])] == [False, True, True]
    for _ in range(2):  # a rerun changes nothing
        s = pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False)
        recs = last_records(out)
        assert "where another input's mask goes" in recs["masks/a.jpg.png"]["error"]
        assert recs["masks/other.png"]["status"] in ("restored", "skipped")
        saved = np.asarray(Image.open(out / recs["a.jpg"]["mask"]))
        assert saved.shape == (40, 60) and saved[10:14, 5:40].all() and saved.sum() == 4 * 35 * 255
    assert s.counts["failed"] == 1


def test_an_input_added_later_does_not_overwrite_an_earlier_runs_output_with_its_mask(tmp_path, monkeypatch):
    """INPUT/masks/b.jpg.png was restored to OUT/masks/b.jpg.png by a first run; INPUT/b.jpg,
    added later, would write its mask there: it fails, and the first run's file stays."""
    _flag_a_band(monkeypatch)
    inp, out = tmp_path / "scans", tmp_path / "out"
    (inp / "masks").mkdir(parents=True)
    Image.fromarray(photo(30, 50, 3)).save(inp / "masks" / "b.jpg.png")
    pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False)
    assert last_records(out)["masks/b.jpg.png"]["status"] == "restored"
    before = (out / "masks" / "b.jpg.png").read_bytes()
    Image.fromarray(photo(40, 60)).save(inp / "b.jpg")
    s = pipeline.restore_folder(inp, out, auto_mask=True, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert "which an earlier run restored from the input masks/b.jpg.png" in recs["b.jpg"]["error"]
    assert "where another input's mask goes" in recs["masks/b.jpg.png"]["error"]
    assert (out / "masks" / "b.jpg.png").read_bytes() == before
    assert s.counts["failed"] == 2


def test_cli_output_folder_that_cannot_be_written_is_one_line_exit_2(tmp_path):
    from archive_restore.cli import app

    inp = tmp_path / "scans"
    inp.mkdir()
    Image.fromarray(photo(20, 30)).save(inp / "a.png")
    (tmp_path / "afile").write_text("a file, not a folder")
    res = CliRunner().invoke(app, ["folder", str(inp), "--auto-mask", "--out", str(tmp_path / "afile" / "sub"),
                                   "--model", str(write_tiny_onnx(tmp_path)), "--no-report"])
    assert res.exit_code == 2, res.output
    assert "cannot write to the output folder" in res.output and "Traceback" not in res.output


def test_stale_temps_removed_whatever_the_name(tmp_path):
    """A killed run's temp files are removed on the next run, also for names holding a newline;
    files that only look similar are kept."""
    from archive_restore.pipeline import remove_stale_temps

    (tmp_path / "sub").mkdir()
    stale = [aio.temp_path_for(tmp_path / name) for name in ("a.jpg", "line\nbreak.jpg", "sub/é b.png")]
    kept = [tmp_path / "a.jpg", tmp_path / f".x{aio.TEMP_MARK}1234abcd.bak", tmp_path / f"x{aio.TEMP_MARK}1234abcd"]
    for p in stale + kept:
        p.write_bytes(b"x")
    (tmp_path / "report_assets").mkdir()  # a report may be building: its temps are its own
    kept += [aio.temp_path_for(tmp_path / "report_assets" / "x.a512.jpg"), aio.temp_path_for(tmp_path / "report.html")]
    for p in kept[-2:]:
        p.write_bytes(b"x")
    assert remove_stale_temps(tmp_path) == 3
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)


def test_walk_passes_over_hidden_and_nas_entries_and_reports_what_it_cannot_read(tmp_path, monkeypatch):
    """macOS "._a.jpg" files, .Trashes and Synology @eaDir thumbnails are not scans; a folder
    that cannot be read and a symlink loop are per-entry errors, never silently missing."""
    import collections

    inp = tmp_path / "scans"
    for rel in ("a.jpg", "box/b.png", "@eaDir/a.jpg/SYNOPHOTO_THUMB_M.jpg", ".Trashes/x.jpg", "locked/c.jpg"):
        (inp / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo(20, 30)).save(inp / rel)
    (inp / "._a.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    for name in ("raw.CR2", "notes.txt", "d.heic"):
        (inp / name).write_bytes(b"x")
    os.symlink("loop.jpg", inp / "loop.jpg")
    os.symlink(inp / "box", inp / "box_link")  # a folder link: not followed, but counted
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ignored = collections.Counter()
    got = {rel: err for rel, _, err in aio.walk_scans(inp, ignored=ignored)}
    assert set(got) == {"a.jpg", "box/b.png", "locked/", "loop.jpg"}
    assert got["a.jpg"] is None and got["box/b.png"] is None
    assert "folder could not be read: Permission denied" in got["locked/"] and "symlink loop" in got["loop.jpg"]
    assert ignored == {".cr2": 1, ".txt": 1, ".heic": 1, "hidden": 3, "folder link": 1}
    out = tmp_path / "out"
    s = pipeline.restore_folder(inp, out, masks_dir=tmp_path, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert "locked/" not in recs and recs["loop.jpg"]["status"] == "failed"
    assert s.unreadable_folders == [("locked/", "folder could not be read: Permission denied")]
    assert s.counts["failed"] == 1 and s.ignored == {".cr2": 1, ".txt": 1, ".heic": 1, "hidden": 3, "folder link": 1}
    said = pipeline.describe_ignored(s.ignored)
    assert "3 hidden" in said and "1 folder link (not followed)" in said and "1 .cr2" in said


def test_outputs_never_written_through_a_link_in_out(tmp_path):
    """A folder in OUT that links into the input tree must not let a rerun overwrite scans."""
    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    make_archive(inp, masks)
    before = tree_hashes(inp)
    out.mkdir()
    os.symlink(inp / "box1", out / "box1")
    pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert recs["box1/a.jpg"]["status"] == "failed" and "is a link" in recs["box1/a.jpg"]["error"]
    assert tree_hashes(inp) == before


def test_out_that_is_input_under_another_path_refused(tmp_path):
    """A bind mount (or a share mounted twice) makes INPUT and OUT one folder under two paths."""
    inp, alias = tmp_path / "scans", tmp_path / "alias"
    inp.mkdir()
    alias.mkdir()
    if subprocess.run(["mount", "--bind", str(inp), str(alias)], capture_output=True).returncode != 0:
        pytest.skip("bind mounts need privileges this machine does not give")
    try:
        Image.fromarray(photo(20, 30)).save(inp / "a.png")
        with pytest.raises(pipeline.UsageError, match="under another path"):
            pipeline.restore_folder(inp, alias, auto_mask=True, session=FakeSession(), handle_sigint=False)
        with pytest.raises(pipeline.UsageError, match="under another path"):
            pipeline.restore_folder(inp, alias / "out", auto_mask=True, session=FakeSession(), handle_sigint=False)
        assert sorted(p.name for p in inp.iterdir()) == ["a.png"]
    finally:
        subprocess.run(["umount", str(alias)], capture_output=True)


def test_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tmp_path):
    """Two runs on one OUT would delete each other's temp files as stale and race on outputs."""
    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    make_archive(inp, masks)
    out.mkdir()
    with pipeline.out_lock(out):
        temp = aio.temp_path_for(out / "box1" / "a.jpg")
        temp.parent.mkdir()
        temp.write_bytes(b"being written")
        with pytest.raises(pipeline.UsageError, match="another run is writing"):
            pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
        assert temp.exists()  # the live run's temp file was left alone
    s = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert s.counts["failed"] == 0 and not temp.exists()  # once free: stale, removed


def test_another_input_folder_never_overwrites_the_first_ones_results(tmp_path):
    inp_a, inp_b, masks, out = tmp_path / "a", tmp_path / "b", tmp_path / "m", tmp_path / "out"
    make_archive(inp_a, masks)
    pipeline.restore_folder(inp_a, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    first = (out / "box1/a.jpg").read_bytes()
    (inp_b / "box1").mkdir(parents=True)
    Image.fromarray(photo(60, 80, 9)).save(inp_b / "box1/a.jpg")
    for force in (False, True):
        pipeline.restore_folder(inp_b, out, masks_dir=masks, force=force, session=FakeSession(), handle_sigint=False)
        r = last_records(out)["box1/a.jpg"]
        assert r["status"] == "failed" and "another input folder" in r["error"]
        assert (out / "box1/a.jpg").read_bytes() == first
    moved = tmp_path / "a_moved"
    inp_a.rename(moved)  # the same archive under a new name resumes as before
    s = pipeline.restore_folder(moved, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert s.counts["failed"] == 0 and (out / "box1/a.jpg").read_bytes() == first
    (out / "box1/a.jpg").unlink()  # the way out the message gives, to replace it after all
    pipeline.restore_folder(inp_b, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert last_records(out)["box1/a.jpg"]["status"] == "restored"


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_like_ctrl_c(tmp_path, sig, code):
    """timeout, systemd and docker stop send SIGTERM: images in flight are finished and recorded."""
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks, n_extra=10)
    p = _start_slow_run(inp, out, masks, 0.15)
    _wait_for_records(out / "manifest.jsonl", 1, p)
    p.send_signal(sig)
    stdout, stderr = p.communicate(timeout=60)
    assert p.returncode == 130 and "DONE" in stdout and "True" in stdout, stderr  # SLOW_RUN exits 130 when interrupted
    recs = last_records(out)
    assert 0 < len(recs) < len(items) and all(r["status"] in ("restored", "unchanged") for r in recs.values())
    assert not list(out.rglob(f"*{aio.TEMP_MARK}*"))
    assert code == 128 + sig


def test_second_signal_ends_the_run_at_once(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    make_archive(inp, masks, n_extra=10)
    p = _start_slow_run(inp, out, masks, 1.0)
    _wait_for_records(out / "manifest.jsonl", 1, p)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 130 and "interrupted again" in stderr and "DONE" not in stdout
    assert "Traceback" not in stderr and "terminate called" not in stderr
    p = _start_slow_run(inp, out, masks, 0)  # and the rerun finishes the rest
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0, stderr


def test_names_on_the_terminal_and_default_out_beside_a_linked_input(tmp_path):
    from archive_restore.cli import shown

    assert shown("box 1/a\nb.jpg") == "box 1/a\\nb.jpg" and shown("写真 é.jpg") == "写真 é.jpg"
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "scans")
    assert pipeline.default_out_dir(tmp_path / "scans") == tmp_path / "scans_restored"


def test_names_differing_only_in_case_fail_on_an_output_folder_that_ignores_case(tmp_path, monkeypatch):
    """box/A.jpg and box/a.jpg from a Linux archive, restored onto an exFAT/NTFS drive or
    macOS's APFS, would be written to one file, each replacing the other's result."""
    import unicodedata

    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    (inp / "box").mkdir(parents=True)
    masks.mkdir()
    for name in ("A.jpg", "a.jpg", "b.jpg", unicodedata.normalize("NFD", "é.jpg"), "é.jpg"):
        Image.fromarray(photo(40, 50)).save(inp / "box" / name)
    assert pipeline.ignores_case(tmp_path) == (False, False)  # this machine's tmp tells names apart
    monkeypatch.setattr(pipeline, "ignores_case", lambda folder: (True, False))  # exFAT, NTFS
    s = pipeline.restore_folder(inp, tmp_path / "ntfs", masks_dir=masks, session=FakeSession(), handle_sigint=False)
    assert s.counts["failed"] == 2  # A.jpg and a.jpg; the two spellings of é are two names there
    monkeypatch.setattr(pipeline, "ignores_case", lambda folder: (True, True))  # macOS
    s = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), handle_sigint=False)
    recs = last_records(out)
    assert s.counts["failed"] == 4 and recs["box/b.jpg"]["status"] == "unchanged"
    assert "differs from box/a.jpg only in case" in recs["box/A.jpg"]["error"]
    assert "differs from box/A.jpg only in case" in recs["box/a.jpg"]["error"]
    assert not (out / "box/A.jpg").exists() and not (out / "box/a.jpg").exists()


def test_a_run_under_nohup_goes_on_when_the_terminal_closes(tmp_path):
    inp, masks, out = tmp_path / "scans", tmp_path / "masks", tmp_path / "out"
    items = make_archive(inp, masks, n_extra=4)
    code = SLOW_RUN.format(repo=str(REPO), delay=0.1)
    p = subprocess.Popen([sys.executable, "-c", code, str(inp), str(out), str(masks)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))  # what nohup does
    _wait_for_records(out / "manifest.jsonl", 1, p)
    p.send_signal(signal.SIGHUP)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 0 and "False" in stdout, stderr
    assert len(last_records(out)) == len(items)


def test_person_masks_protected_without_false_alarms(tmp_path):
    """Given back unedited, a run's masks are still the run's (the first command works again);
    given back edited, they stay protected after OUT is moved; a pre-session-25 mask left
    beside an image now unchanged is not taken for a person's."""
    inp, masks, out = tmp_path / "scans", tmp_path / "m", tmp_path / "out"
    make_archive(inp, masks)
    kw = dict(session=FakeSession(), handle_sigint=False)
    pipeline.restore_folder(inp, out, masks_dir=masks, **kw)
    pipeline.restore_folder(inp, out, masks_dir=out / "masks", **kw)  # given back, no edits
    s = pipeline.restore_folder(inp, out, masks_dir=masks, **kw)  # the first command again
    assert s.counts["failed"] == 0
    rel = "box1/a.jpg"
    _paint(out / "masks" / f"{rel}.png", (slice(5, 15), slice(5, 15)))
    edited = (out / "masks" / f"{rel}.png").read_bytes()
    pipeline.restore_folder(inp, out, masks_dir=out / "masks", **kw)  # given back, edited
    moved = tmp_path / "moved"
    out.rename(moved)
    pipeline.restore_folder(inp, moved, masks_dir=masks, **kw)
    r = last_records(moved)[rel]
    assert r["status"] == "failed" and "is your mask" in r["error"] and (moved / "masks" / f"{rel}.png").read_bytes() == edited
    # before session 25 records had no mask hash: a mask they left is no person's
    legacy_out = tmp_path / "legacy"
    pipeline.restore_folder(inp, legacy_out, masks_dir=masks, **kw)
    lines = [json.loads(x) for x in (legacy_out / "manifest.jsonl").read_text().splitlines()]
    (legacy_out / "manifest.jsonl").write_text("".join(json.dumps({k: v for k, v in x.items() if k != "mask_sha256"}) + "\n" for x in lines))
    empty = tmp_path / "m_empty"
    empty.mkdir()
    pipeline.restore_folder(inp, legacy_out, masks_dir=empty, **kw)  # all unchanged; old masks stay
    assert (legacy_out / "masks" / f"{rel}.png").exists()
    s = pipeline.restore_folder(inp, legacy_out, masks_dir=masks, **kw)
    assert s.counts["failed"] == 0, s.failed
