"""restore masks / restore evaluate end to end through Typer's CliRunner, plus the metrics."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from archive_restore.cli import app
from archive_restore.config import MaskConfig
from archive_restore.evaluate import centre_square, fill_hole, has_fsr, psnr, run_evaluation, texture_ratio, tolerant_scores


def _img(seed, h=64, w=80):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 2 + y + rng.integers(0, 40)) % 200 + 20
    return np.stack([base, base, base * 0.8], -1).astype(np.uint8)


def test_tolerant_scores():
    gt = np.zeros((20, 20), bool)
    gt[10, 5:15] = True
    pred = np.zeros_like(gt)
    pred[12, 5:15] = True  # 2 px off: all counted
    pred[0, 0] = True  # a false alarm
    s = tolerant_scores(pred, gt)
    assert s == {"tp_pred": 10, "fp": 1, "tp_gt": 10, "fn": 0}


def test_psnr_and_texture():
    a = _img(0)
    assert psnr(a, a) == 99.0
    a = np.random.default_rng(0).integers(0, 256, (64, 80, 3)).astype(np.uint8)  # textured
    m = np.zeros(a.shape[:2], bool)
    m[20:40, 20:40] = True
    flat = a.copy()
    flat[m] = 128
    assert texture_ratio(a, a, m) == 1.0
    assert texture_ratio(flat, a, m) < 0.5


class FakeModel:
    model_id, provider = "fake", "cpu"

    def fill(self, images, masks):
        return [np.where(m[..., None], 0.5, im).astype(np.float32) for im, m in zip(images, masks)]


def test_run_evaluation_with_fake_model():
    imgs = [(f"{i}.png", _img(i)) for i in range(2)]
    rep, rows = run_evaluation(imgs, ("scratches", "dust"), MaskConfig(), FakeModel(), seed=1, sheet_cases=1)
    for kind in ("scratches", "dust"):
        r = rep["kinds"][kind]
        assert set(r["detection"]) == {"precision", "recall", "f1", "iou"}
        assert set(r["restoration_gt_mask"]) == {"telea", "ns", "model"} | ({"fsr_fast"} if has_fsr() else set())
        assert r["restoration_gt_mask"]["model"]["psnr"] is not None
        assert r["end_to_end"]["damaged_psnr"] is not None
    assert "fill_model" in rep["seconds_per_mp"] and rep["seconds_per_mp"]["detection"] > 0
    assert rows and rows[0].shape[1] == 5 * 80
    import cv2

    assert rep["versions"]["opencv"] == cv2.__version__ and rep["versions"]["numpy"] == np.__version__


def test_run_evaluation_grain_column_raises_the_flat_fills_texture():
    rng = np.random.default_rng(0)
    imgs = [(f"{i}.png", np.clip(_img(i, 96, 96) + rng.normal(0, 6, (96, 96, 1)), 0, 255).astype(np.uint8))
            for i in range(2)]  # grainy photos: the fake model's flat grey fill has no grain
    rep, _ = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=1, grain=1.0)
    r = rep["kinds"]["blotches"]
    assert rep["grain"] == 1.0 and r["end_to_end"]["method"] == "model+grain"
    g, m = r["restoration_gt_mask"]["model+grain"], r["restoration_gt_mask"]["model"]
    assert g["texture"] > m["texture"] + 0.1
    assert "fill_model+grain" in rep["seconds_per_mp"]
    rep0, _ = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=1)
    assert "model+grain" not in rep0["methods"] and rep0["kinds"]["blotches"]["end_to_end"]["method"] == "model"


def test_write_masks_says_how_many_and_what_each_scan_is_doing(tmp_path):
    """``write_masks(on_start=, activity=)``: the count of scans before the first, then per scan
    "reading" and "detecting" shares rising to 1 (a broken file is read, then fails)."""
    from archive_restore.masks.batch import write_masks

    src = tmp_path / "scans"
    src.mkdir()
    for i in range(2):
        Image.fromarray(_img(i)).save(src / f"{i}.png")
    (src / "broken.png").write_bytes(b"not an image")
    totals, seen = [], {}
    jobs = list(write_masks(src, tmp_path / "m", MaskConfig(), on_start=totals.append,
                            activity=lambda rel, stage, share: seen.setdefault(rel, []).append((stage, share))))
    assert totals == [3] and len(jobs) == 3
    for rel in ("0.png", "1.png"):
        assert seen[rel][0] == ("reading", 0.0) and seen[rel][1] == ("detecting", 0.0) and seen[rel][-1] == ("detecting", 1.0)
    assert seen["broken.png"] == [("reading", 0.0)]


def test_cli_masks_on_a_terminal_shows_a_bar_and_plain_names(tmp_path, monkeypatch):
    """``restore masks`` on a terminal: a bar with the count, each scan's line and the broken
    file's error above it; a name with markup brackets is printed as it is."""
    import io

    import rich.console

    buf = io.StringIO()

    class TTY(rich.console.Console):
        def __init__(self, *args, **kw):
            kw.pop("stderr", None)
            super().__init__(*args, file=buf, force_terminal=True, width=200, **kw)

    monkeypatch.setattr(rich.console, "Console", TTY)
    src = tmp_path / "scans"
    src.mkdir()
    Image.fromarray(_img(1)).save(src / "[bold]a.png")
    Image.fromarray(_img(2)).save(src / "b.png")
    (src / "broken.png").write_bytes(b"not an image")
    res = CliRunner().invoke(app, ["masks", str(src), "--out", str(tmp_path / "m")])
    out = buf.getvalue()
    assert res.exit_code == 1
    assert "masking" in out and "3/3" in out
    assert "[bold]a.png: " in out and "b.png: " in out and "error: broken.png: not a readable image" in out
    assert "2 masks written" in res.output


def test_cli_masks_log_has_one_line_per_mask(tmp_path):
    """In a log (no terminal, 80 columns), a mask's line is not broken however long it is."""
    src = tmp_path / "scans"
    src.mkdir()
    name = "box 12 - harbour, steamer and crowd on the quay, glass negative " + "x" * 20 + ".png"
    Image.fromarray(_img(1)).save(src / name)
    res = CliRunner().invoke(app, ["masks", str(src), "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    line = next(ln for ln in res.output.splitlines() if ln.startswith("box 12"))
    assert "flagged" in line and "'blotches'" in line and line.rstrip().endswith("}")


def test_cli_masks_and_evaluate(tmp_path):
    src = tmp_path / "scans"
    (src / "a").mkdir(parents=True)
    Image.fromarray(_img(1)).save(src / "a" / "b.jpg")
    Image.fromarray(_img(2)).save(src / "c.png")
    Image.fromarray(_img(4)[:48]).save(src / "a" / "b.tif")  # same stem as a/b.jpg: its own mask
    (src / "broken.png").write_bytes(b"not an image")
    runner = CliRunner()
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m")])
    assert res.exit_code == 1  # the broken file fails, the others are written
    for rel, h in (("a/b.jpg.png", 64), ("a/b.tif.png", 48), ("c.png.png", 64)):  # restore folder's masks/ layout
        m = np.asarray(Image.open(tmp_path / "m" / rel))
        assert m.shape == (h, 80) and m.dtype == np.uint8 and set(np.unique(m)) <= {0, 255}
    assert "ImageError" not in res.output and "broken.png: not a readable image" in res.output
    edited = tmp_path / "m" / "c.png.png"
    Image.fromarray(np.full((64, 80), 255, np.uint8)).save(edited)  # a person's edit
    Image.fromarray(_img(5)).save(src / "new.png")  # a scan added later
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m")])
    assert "1 masks written" in res.output and "3 already there kept" in res.output
    assert np.asarray(Image.open(edited)).min() == 255 and (tmp_path / "m" / "new.png.png").is_file()
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m"), "--force"])
    assert "4 masks written" in res.output and np.asarray(Image.open(edited)).min() == 0
    (src / "new.png").unlink()
    res = runner.invoke(app, ["masks", str(src), "--out", str(src / "inside")])
    assert res.exit_code == 2 and "inside the input folder" in res.output  # usage errors exit 2
    res = runner.invoke(app, ["masks", str(src), "--out", str(tmp_path / "m2"), "--mask-sensitivity", "extreme"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["evaluate", str(src), "--kinds", "smudges"])
    assert res.exit_code == 2 and "unknown kinds" in res.output
    (src / "broken.png").unlink()
    res = runner.invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev"), "--kinds", "dust",
                              "--model", str(tmp_path / "missing.onnx")])
    assert res.exit_code == 2 and "no such file" in res.output  # a model asked for by name is never skipped
    res = runner.invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev"), "--kinds", "dust", "--kinds", "text",
                              "--sheet", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert set(rep["kinds"]) == {"dust", "text"} and rep["images"] == 3
    assert rep["model"]["id"] and not rep["model"]["unavailable"] and "clean_flagged" in rep
    assert (tmp_path / "s.png").exists()
    (src / "broken.png").write_bytes(b"not an image")
    res = runner.invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev2"), "--kinds", "dust"])
    assert res.exit_code == 1 and "1 of 4 images could not be read" in res.output  # figures written, failure said
    assert json.loads((tmp_path / "ev2" / "evaluation.json").read_text())["images"] == 3


def test_centre_square_is_restoration_only():
    im = _img(3)
    damaged, mask = centre_square(im)
    assert mask.sum() == (64 - 2 * 16) * (80 - 2 * 20)  # a quarter of the area, in the middle
    assert np.array_equal(damaged[~mask], im[~mask]) and not np.array_equal(damaged[mask], im[mask])
    rep, _ = run_evaluation([("a.png", im)], ("centre_square",), MaskConfig(), FakeModel(), seed=0)
    r = rep["kinds"]["centre_square"]
    assert r["detection"] is None and r["end_to_end"]["psnr"] is None
    assert r["restoration_gt_mask"]["model"]["psnr"] < 40  # a flat grey fill is far from the photo
    assert set(r["fill_seconds_per_mp"]) == set(rep["methods"])


@pytest.mark.skipif(not has_fsr(), reason="OpenCV contrib (xphoto) not installed")
def test_fsr_fast_fills_only_the_hole():
    im = _img(4)
    m = np.zeros(im.shape[:2], bool)
    m[30:33, 10:70] = True
    out = fill_hole("fsr_fast", im, m, None)
    assert np.array_equal(out[~m], im[~m])
    assert psnr(out, im, m) > 20


def test_model_fill_is_what_restore_folder_writes(tmp_path):
    """``fill_hole("model")`` (the figures of ``restore evaluate`` and the scripts) must be the
    pixels ``restore folder`` writes for the same image and mask: same windows, tone lock, paste."""
    from archive_restore import pipeline
    from archive_restore.config import RuntimeConfig
    from archive_restore.runtime import windows as win
    from archive_restore.runtime.tone import ToneCurve
    from tests.pipeline_fakes import FakeSession

    rng = np.random.default_rng(5)
    h, w = 600, 1100
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    y = np.clip(0.3 + 0.4 * xx / w + 0.1 * np.sin(yy / 9) + rng.normal(0, 0.03, (h, w)), 0, 1)
    colour = np.clip(np.stack([y, 0.5 * y + 0.3 * (yy / h), 1 - y], -1) * 255, 0, 255).astype(np.uint8)
    sepia = np.clip(np.stack([y + 0.05, 0.86 * y, 0.68 * y], -1) * 255, 0, 255).astype(np.uint8)
    mask = np.zeros((h, w), bool)
    cv2.line(mask.view(np.uint8), (20, 30), (1080, 560), 1, 3)  # a long thin scratch
    cv2.line(mask.view(np.uint8), (900, 20), (950, 300), 1, 2)
    mask[400:470, 100:190] = True  # a blotch
    cv2.ellipse(mask.view(np.uint8), (560, 330), (300, 190), 0, 0, 360, 1, -1)  # a tear no window holds
    plan = win.plan_windows(mask, 512, 48)
    assert len(plan) > 4 and max(w.round for w in plan) >= 1  # windows in rounds: order matters
    assert ToneCurve.fit(sepia, mask) is not None and ToneCurve.fit(colour, mask) is None  # lock on one
    colour[mask] = sepia[mask] = 250  # the damage: a window that read unfilled holes would see it
    inp, masks, out = tmp_path / "in", tmp_path / "masks", tmp_path / "out"
    inp.mkdir(), masks.mkdir()
    for name, im in (("colour.png", colour), ("sepia.png", sepia)):
        Image.fromarray(im).save(inp / name)
        Image.fromarray(mask.astype(np.uint8) * 255).save(masks / name)
    rt = RuntimeConfig(batch=5)  # batches that end inside a round: the same fills
    summary = pipeline.restore_folder(inp, out, masks_dir=masks, session=FakeSession(), runtime=rt, handle_sigint=False)
    assert summary.counts["restored"] == 2
    for name, im in (("colour.png", colour), ("sepia.png", sepia)):
        written = np.asarray(Image.open(out / name))
        assert np.array_equal(written, fill_hole("model", im, mask, FakeSession())), name
        assert not np.array_equal(written, im)


def test_restore_masks_walks_the_scans_restore_folder_walks(tmp_path):
    """`restore masks` sees the files `restore folder` would (any-case extensions) and, like it,
    refuses a file symlink that leaves the input folder, with a per-file error."""
    src = tmp_path / "scans"
    src.mkdir()
    Image.fromarray(_img(1)).save(src / "UPPER.JPG")
    Image.fromarray(_img(2)).save(tmp_path / "outside.png")
    (src / "escape.png").symlink_to(tmp_path / "outside.png")
    res = CliRunner().invoke(app, ["masks", str(src), "--out", str(tmp_path / "m")])
    assert res.exit_code == 1
    assert (tmp_path / "m" / "UPPER.JPG.png").is_file() and not (tmp_path / "m" / "escape.png.png").exists()
    assert "escape.png: symlink points outside the input folder" in res.output


def test_scan_scale_measures_the_same_damage_on_an_enlarged_scan(tmp_path):
    """--scan-scale 2: the photo is damaged as at 1x, then photo, damage and ground truth are
    enlarged, so the ground truth has 4x the pixels and the tolerance doubles."""
    imgs = [(f"{i}.png", _img(i)) for i in range(2)]
    one, _ = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=3)
    two, rows = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=3, scan_scale=2, sheet_cases=1)
    c1, c2 = one["kinds"]["blotches"]["counts"], two["kinds"]["blotches"]["counts"]
    assert c2["tp_gt"] + c2["fn"] == 4 * (c1["tp_gt"] + c1["fn"])
    assert (one["tolerance_px"], two["tolerance_px"], two["scan_scale"]) == (2, 4, 2)
    assert rows[0].shape == (2 * 64, 5 * 2 * 80, 3)
    with pytest.raises(ValueError, match="scan_scale"):
        run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), scan_scale=0)
    src = tmp_path / "clean"
    src.mkdir()
    Image.fromarray(_img(1)).save(src / "a.png")
    res = CliRunner().invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev"), "--kinds", "dust", "--scan-scale", "2",
                                   "--mask-scales", "native"])
    assert res.exit_code == 0, res.output
    assert "scanned at 2x" in res.output and "4 px tolerance" in res.output
    rep = json.loads((tmp_path / "ev" / "evaluation.json").read_text())
    assert rep["scan_scale"] == 2 and rep["mask_scales"] == "native"


def test_detection_only_measures_the_masks_without_fills(tmp_path):
    imgs = [(f"{i}.png", _img(i)) for i in range(2)]
    full, _ = run_evaluation(imgs, ("dust", "centre_square"), MaskConfig(), FakeModel(), seed=2)
    det, rows = run_evaluation(imgs, ("dust", "centre_square"), MaskConfig(), FakeModel(), seed=2, restoration=False, sheet_cases=1)
    assert det["kinds"]["dust"]["detection"] == full["kinds"]["dust"]["detection"]  # the same cases, the same masks
    assert det["kinds"]["dust"]["restoration_gt_mask"] == {} and det["kinds"]["dust"]["end_to_end"]["psnr"] is None
    assert "centre_square" not in det["kinds"] and not rows and det["restoration"] is False
    src = tmp_path / "clean"
    src.mkdir()
    Image.fromarray(_img(1)).save(src / "a.png")
    res = CliRunner().invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev"), "--kinds", "dust", "--detection-only"])
    assert res.exit_code == 0, res.output
    assert "restoration: not measured (--detection-only)" in res.output and "texture ratio" not in res.output
    res = CliRunner().invoke(app, ["evaluate", str(src), "--detection-only", "--sheet", str(tmp_path / "s.png")])
    assert res.exit_code == 2 and "--detection-only makes no fills" in res.output
    res = CliRunner().invoke(app, ["evaluate", str(src), "--detection-only", "--kinds", "centre_square", "--kinds", "centre_square"])
    assert res.exit_code == 2 and "and centre_square is restoration only" in res.output  # named once
    res = CliRunner().invoke(app, ["evaluate", str(src), "--detection-only", "--grain", "0.5"])
    assert res.exit_code == 2 and "--grain" in res.output
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(app, ["evaluate", str(tmp_path / "empty"), "--detection-only", "--model", "m.onnx"])
    assert res.exit_code == 2 and "--detection-only makes no fills" in res.output  # said before the folder is read
    res = CliRunner().invoke(app, ["evaluate", str(src), "--out", str(tmp_path / "ev3"), "--detection-only",
                                   "--kinds", "dust", "--kinds", "centre_square"])
    assert res.exit_code == 0 and "leaves out centre_square" in res.output


def test_scan_scale_fills_a_hole_grown_past_the_enlarged_damages_soft_edge(monkeypatch):
    import archive_restore.evaluate as ev

    holes = {}
    real = ev.fill_hole

    def spy(method, image, mask, model=None):
        holes.setdefault(image.shape[0], []).append(int(mask.sum()))
        return real(method, image, mask, model)

    monkeypatch.setattr(ev, "fill_hole", spy)
    imgs = [("a.png", _img(1))]
    one, _ = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=3)
    two, _ = run_evaluation(imgs, ("blotches",), MaskConfig(), FakeModel(), seed=3, scan_scale=2)
    gt1 = one["kinds"]["blotches"]["counts"]["tp_gt"] + one["kinds"]["blotches"]["counts"]["fn"]
    assert holes[64][0] == gt1  # at 1x the fills get the ground truth itself
    assert holes[128][0] > 4 * gt1  # at 2x it is grown by 2 px past the enlarged ground truth
    assert (one["fill_hole_grown_px"], two["fill_hole_grown_px"]) == (0, 2)
