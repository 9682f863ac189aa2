"""Training machinery on tiny generated photos: loss goes down, resume is exact, outputs written."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from archive_restore.cli import app
from archive_restore.config import TrainConfig
from archive_restore.inpaint.checkpoint import load_checkpoint
from archive_restore.inpaint.data import IndexRange, InpaintDataset
from archive_restore.inpaint.train import Trainer

SMALL = TrainConfig(size=32, batch=4, steps=4, sample_every=2, ckpt_every=2, val_every=2, val_images=2,
                    workers=0, adv_start=2, lr_g=1e-3, lr_d=1e-3, bf16=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Two 'sources' of smooth synthetic photos with edges and grain (48x48 JPEG/PNG)."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for src in ("faces", "streets"):
        (root / src).mkdir()
        for i in range(6):
            yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
            base = np.stack([np.sin(xx / (5 + i)) , np.cos(yy / (7 + i)), np.sin((xx + yy) / 9)], -1) * 80 + 128
            base[:, 24:] += 40
            img = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / src / f"{i}.{'jpg' if i % 2 else 'png'}"), img)
    return root


def _trainer(photos, run, tiny_model_cfg, cfg=SMALL, resume=False):
    return Trainer(photos, run, tiny_model_cfg, cfg, device="cpu", resume=resume, val_dir=photos / "faces")


def test_dataset_is_a_pure_function_of_seed_and_index(photos):
    ds = InpaintDataset(photos, 32, SMALL.mask_mix, "telea", 3, seed=5)
    a, b = ds[17], ds[17]
    assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3]))
    image, mask, target, kind = a
    assert image.shape == (3, 32, 32) and mask.shape == (1, 32, 32) and target.shape == (3, 32, 32)
    assert mask.sum() > 0 and 0 <= image.min() and image.max() <= 1
    assert torch.equal(image * (1 - mask), target * (1 - mask))  # only the hole is pre-filled


def test_training_data_skips_hidden_files_and_survives_junk_among_photos(photos, tmp_path):
    """A Mac-copied set has a "._x.jpg" per photo (not images); junk files among readable
    photos must not stop a run at a fixed step, and a folder of junk fails naming a file."""
    import shutil

    root = tmp_path / "mixed"
    shutil.copytree(photos, root)
    for p in list(root.rglob("*.*")):
        (p.parent / f"._{p.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
        (p.parent / f"junk_{p.name}").write_bytes(b"not an image")  # as many junk files as photos
    from archive_restore.inpaint.data import list_images

    assert not any(p.name.startswith("._") for p in list_images(root))
    linked = tmp_path / "linked"  # a set made of links into a photo library
    linked.mkdir()
    for p in sorted(photos.rglob("*.png")):
        (linked / f"{p.parent.name}_{p.name}").symlink_to(p)
    assert len(list_images(linked)) == len(list(photos.rglob("*.png")))
    ds = InpaintDataset(root, 32, SMALL.mask_mix, "telea", 3, seed=5)
    for i in range(400):  # with 10 draws a sample, one in 1,024 samples failed here
        ds[i]
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_bytes(b"not an image")
    with pytest.raises(RuntimeError, match=r"unreadable training files in a row \(the last: cannot decode .*a\.jpg"):
        InpaintDataset(junk, 32, SMALL.mask_mix, "telea", 3, seed=5)[0]


def test_a_few_steps_reduce_the_loss(photos, tmp_path, tiny_model_cfg):
    torch.manual_seed(0)
    t = _trainer(photos, tmp_path / "run", tiny_model_cfg, replace(SMALL, adv_start=10**6))
    loader = torch.utils.data.DataLoader(t.data, batch_size=8, sampler=IndexRange(0))
    image, mask, target, _ = next(iter(loader))
    first = t.train_step(image, mask, target)["hole_l1"]
    for _ in range(80):  # 40 sufficed before session 28's hairline fields made the batch's holes finer
        last = t.train_step(image, mask, target)["hole_l1"]
    assert last < 0.8 * first, (first, last)


def test_checkpoint_resume_continues_exactly(photos, tmp_path, tiny_model_cfg):
    run = tmp_path / "run"
    t = _trainer(photos, run, tiny_model_cfg)
    t.run()
    assert (run / "last.pth").is_file() and (run / "ckpt_4.pth").is_file() and (run / "generator.pth").is_file()
    assert (run / "samples" / "2.png").is_file() and (run / "samples" / "4.png").is_file()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r["event"] == "val" and "scratches" in r for r in log)
    assert any(r["event"] == "train" or r["event"] == "start" for r in log)

    # an unbroken 6-step run vs a 4-step run resumed to 6: identical weights
    straight = _trainer(photos, tmp_path / "straight", tiny_model_cfg, replace(SMALL, steps=6))
    straight.run()
    resumed = Trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=6), device="cpu", resume=True)  # no --val
    assert resumed.step == 4
    state = load_checkpoint(run / "last.pth")["extra"]["opt_g"]["state"]
    assert resumed.opt_g.state_dict()["state"][0]["step"] == state[0]["step"]
    assert resumed.val  # --val was not given again: the run keeps validating on its own folder
    resumed.run()
    for (n, a), (_, b) in zip(straight.G.state_dict().items(), resumed.G.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), n
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["event"] == "val"][-1] == 6


def test_resume_keeps_the_runs_end_unless_steps_is_given(photos, tmp_path, tiny_model_cfg):
    """`restore train --resume` without --steps used to retarget any run to the default 20,000
    steps; the run's own end stays now, and an end it has already reached is refused."""
    from archive_restore.inpaint.checkpoint import CheckpointError

    run = tmp_path / "run"
    _trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=4)).run(max_seconds=0)  # stopped at step 1 of 4
    kept = Trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=20000), device="cpu", resume=True, keep_steps=True)
    assert kept.step == 1 and kept.cfg.steps == 4
    kept.run()
    with pytest.raises(CheckpointError, match="step 4 already"):
        Trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=4), device="cpu", resume=True, keep_steps=True)
    with pytest.raises(CheckpointError, match="step 4 already"):
        Trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=3), device="cpu", resume=True)
    assert Trainer(photos, run, tiny_model_cfg, replace(SMALL, steps=5), device="cpu", resume=True).cfg.steps == 5
    # the CLI: --resume alone keeps the end (and says so), --steps moves it
    runner = CliRunner()
    res = runner.invoke(app, ["train", str(photos), "--out", str(run), "--resume", "--device", "cpu"])
    assert res.exit_code == 1 and "step 4 already" in res.output, res.output
    res = runner.invoke(app, ["train", str(photos), "--out", str(run), "--resume", "--steps", "5", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert load_checkpoint(run / "last.pth")["step"] == 5


def test_existing_run_needs_resume(photos, tmp_path, tiny_model_cfg):
    from archive_restore.inpaint.checkpoint import CheckpointError

    run = tmp_path / "run"
    _trainer(photos, run, tiny_model_cfg).run()
    with pytest.raises(CheckpointError, match="--resume"):
        _trainer(photos, run, tiny_model_cfg)


def test_cli_train_then_export(photos, tmp_path):
    runner = CliRunner()
    run = tmp_path / "clirun"
    res = runner.invoke(app, ["train", str(photos), "--out", str(run), "--steps", "2", "--size", "32", "--batch", "2",
                              "--workers", "0", "--sample-every", "1", "--no-bf16"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "m.onnx"
    res = runner.invoke(app, ["export-onnx", str(run / "generator.pth"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.is_file()

    # ... and the exported model restores a folder through ONNX Runtime
    scans, masks = tmp_path / "scans", tmp_path / "handmasks"
    scans.mkdir()
    masks.mkdir()
    img = cv2.imread(str(next((photos / "streets").glob("*.png"))))
    cv2.imwrite(str(scans / "a.png"), img)
    m = np.zeros(img.shape[:2], np.uint8)
    m[10:14, 5:40] = 255
    cv2.imwrite(str(masks / "a.png"), m)
    res = runner.invoke(app, ["folder", str(scans), "--masks", str(masks), "--model", str(out),
                              "--out", str(tmp_path / "restored"), "--no-report", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    restored = cv2.imread(str(tmp_path / "restored" / "a.png"))
    assert restored.shape == img.shape
    assert np.array_equal(restored[m == 0], img[m == 0])
    record = json.loads((tmp_path / "restored" / "manifest.jsonl").read_text().splitlines()[-1])
    assert record["status"] == "restored" and record["model_id"] == json.loads(out.with_suffix(".json").read_text())["onnx_sha256"]


def test_time_limit_stops_early_and_saves(photos, tmp_path, tiny_model_cfg):
    t = _trainer(photos, tmp_path / "run", tiny_model_cfg, replace(SMALL, steps=1000, ckpt_every=1000))
    result = t.run(max_seconds=0.0)  # deadline already passed: one step, then save
    assert result["step"] == 1
    assert load_checkpoint(tmp_path / "run" / "last.pth")["step"] == 1
    events = [json.loads(line)["event"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert "time_limit" in events


def test_discriminator_loss_ignores_patches_away_from_the_hole():
    from archive_restore.inpaint.losses import d_hinge

    mask = torch.zeros(1, 1, 32, 32)
    mask[..., :8, :8] = 1  # hole in the top-left patch of a 4x4 logit grid
    real, fake = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    base = d_hinge(real, fake, mask)
    fake2, real2 = fake.clone(), real.clone()
    fake2[..., 3, 3], real2[..., 2, 2] = 5.0, -5.0  # far from the hole: must not count
    assert torch.equal(d_hinge(real2, fake2, mask), base)
    fake2[..., 0, 0] = 5.0  # the hole's patch counts
    assert d_hinge(real2, fake2, mask) > base
    assert d_hinge(real2, fake2) > d_hinge(real, fake)  # unmasked form counts every patch


def test_init_from_starts_a_new_run_from_another_runs_weights(photos, tmp_path, tiny_model_cfg):
    from archive_restore.inpaint.checkpoint import CheckpointError

    a = _trainer(photos, tmp_path / "a", tiny_model_cfg)
    a.run()
    b = Trainer(photos, tmp_path / "b", tiny_model_cfg, replace(SMALL, lr_g=1e-4), device="cpu", init_from=tmp_path / "a" / "last.pth")
    assert b.step == 0 and b.init_from["step"] == a.step
    for (k, v), w in zip(a.G.state_dict().items(), b.G.state_dict().values()):
        assert torch.equal(v, w), k
    for v, w in zip(a.D.state_dict().values(), b.D.state_dict().values()):
        assert torch.equal(v, w)
    assert all(len(s) == 0 for s in b.opt_g.state.values()) or not b.opt_g.state  # fresh optimiser
    # a generator-only checkpoint (what models/ ships) starts G from it and a fresh D
    c = Trainer(photos, tmp_path / "c", tiny_model_cfg, SMALL, device="cpu", init_from=tmp_path / "a" / "generator.pth")
    assert c.init_from["fresh_discriminator"] and not b.init_from["fresh_discriminator"]
    for (k, v), w in zip(a.G.state_dict().items(), c.G.state_dict().values()):
        assert torch.equal(v, w), k
    assert not all(torch.equal(v, w) for v, w in zip(a.D.state_dict().values(), c.D.state_dict().values()))
    with pytest.raises(ValueError, match="resume"):
        Trainer(photos, tmp_path / "a", tiny_model_cfg, SMALL, device="cpu", resume=True, init_from=tmp_path / "a" / "last.pth")


def test_old_checkpoints_keep_the_discriminator_loss_they_trained_with():
    from archive_restore.config import saved_train_config, to_dict

    old = {k: v for k, v in to_dict(TrainConfig()).items() if k != "d_hole_only"}  # written before the field
    assert saved_train_config(old).d_hole_only is False
    assert saved_train_config(to_dict(TrainConfig())).d_hole_only is True
    assert saved_train_config({k: v for k, v in to_dict(TrainConfig()).items() if k != "lr_decay"}).lr_decay == "none"


def test_cosine_decay_sets_the_optimisers_rates(photos, tmp_path, tiny_model_cfg):
    cfg = replace(SMALL, steps=4, lr_decay="cosine", lr_final=0.1)
    t = _trainer(photos, tmp_path / "cos", tiny_model_cfg, cfg)
    assert [round(t.lr_scale(s), 4) for s in (0, 2, 4, 9)] == [1.0, 0.55, 0.1, 0.1]
    seen = []
    t.run(on_step=lambda step, logs, rate: seen.append(t.opt_g.param_groups[0]["lr"]))
    # the rate used by step s (1-based here) is lr x lr_scale(s - 1), for G and for D alike
    assert seen == pytest.approx([1e-3 * t.lr_scale(s) for s in range(4)])
    assert t.opt_d.param_groups[0]["lr"] == pytest.approx(1e-3 * t.lr_scale(3))
    const = _trainer(photos, tmp_path / "const", tiny_model_cfg)
    assert const.lr_scale(0) == const.lr_scale(3) == 1.0
    with pytest.raises(ValueError, match="lr_decay"):
        _trainer(photos, tmp_path / "bad", tiny_model_cfg, replace(SMALL, lr_decay="step")).lr_scale(0)


def test_texture_loss_prefers_grain_in_the_wrong_places_to_a_smooth_fill():
    """The texture term matches how much fine texture a fill has, not where each grain sits:
    a fill with the original's grain statistics but other grains scores far below a smooth
    fill (which pixel losses prefer), and the original itself scores ~0."""
    from archive_restore.inpaint.losses import texture_loss

    g = torch.Generator().manual_seed(0)
    target = (0.5 + 0.05 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1)
    mask = torch.zeros(2, 1, 48, 48)
    mask[..., 10:38, 20:26] = 1
    smooth = torch.where(mask > 0, torch.full_like(target, 0.5), target)
    other_grain = torch.where(mask > 0, (0.5 + 0.05 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1), target)
    assert texture_loss(target, target, mask) < 1e-6
    assert texture_loss(other_grain, target, mask) < 0.5 * texture_loss(smooth, target, mask)
    too_noisy = torch.where(mask > 0, (0.5 + 0.2 * torch.randn(2, 3, 48, 48, generator=g)).clamp(0, 1), target)
    assert texture_loss(too_noisy, target, mask) > texture_loss(other_grain, target, mask)


def test_torch_texture_ratio_agrees_with_the_evaluation_metric():
    from archive_restore.evaluate import texture_ratio as eval_ratio
    from archive_restore.inpaint.losses import texture_ratio

    rng = np.random.default_rng(1)
    orig = np.clip(128 + rng.normal(0, 20, (40, 56, 3)), 0, 255).astype(np.uint8)
    fill = orig.copy()
    mask = np.zeros((40, 56), bool)
    mask[12:28, 20:32] = True
    fill[mask] = cv2.GaussianBlur(orig, (5, 5), 1.5)[mask]
    t = lambda a: torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
    ours = float(texture_ratio(t(fill), t(orig), torch.from_numpy(mask)[None, None].float()))
    ref = eval_ratio(fill, orig, mask)
    assert ref < 0.8  # the blurred fill really is smoother
    assert abs(ours - ref) < 0.05 * ref


def test_texture_weight_adds_the_term_and_reaches_the_run_config(photos, tmp_path, tiny_model_cfg):
    t = _trainer(photos, tmp_path / "run", tiny_model_cfg, replace(SMALL, steps=1, w_tex=2.0))
    image, mask, target, _ = next(iter(torch.utils.data.DataLoader(t.data, batch_size=2)))
    assert t.train_step(image, mask, target)["tex"] > 0
    t.run()
    rec = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert load_checkpoint(tmp_path / "run" / "last.pth")["train_config"]["w_tex"] == 2.0
    val = [r for r in rec if r.get("event") == "val"][-1]
    assert 0.0 < val["scratches"]["texture"] < 5.0


def test_widths_and_dilations_reach_the_checkpoint_and_bad_lists_are_usage_errors(photos, tmp_path):
    from archive_restore.inpaint.checkpoint import load_generator

    runner = CliRunner()
    run = tmp_path / "wide"
    res = runner.invoke(app, ["train", str(photos), "--out", str(run), "--steps", "1", "--size", "32", "--batch", "2",
                              "--workers", "0", "--no-bf16", "--widths", "8,16,24,32", "--dilations", "2,1"])
    assert res.exit_code == 0, res.output
    g, cfg, _ = load_generator(run / "generator.pth")
    assert cfg.widths == (8, 16, 24, 32) and cfg.bottleneck_dilations == (2, 1)
    assert len(g.bottleneck) == 2
    for bad in (["--widths", "8,16,32"], ["--widths", "8,x,16,32"], ["--dilations", "0"],
                ["--arch", "context_encoder", "--widths", "8,16,24,32"]):
        res = runner.invoke(app, ["train", str(photos), "--out", str(tmp_path / "bad"), "--steps", "1", *bad])
        assert res.exit_code == 2, (bad, res.output)
        assert not (tmp_path / "bad" / "last.pth").exists()


def test_cpu_bf16_only_where_the_cpu_has_it():
    """bf16 autocast on a CPU without bf16 arithmetic is emulated (12x slower per step on an
    AVX2-only EPYC): it is used only where /proc/cpuinfo lists bf16."""
    from archive_restore.inpaint.train import cpu_has_bf16

    avx2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
    assert not cpu_has_bf16(avx2)
    assert cpu_has_bf16(avx2.replace("fma", "fma avx512f avx512_bf16"))
    assert cpu_has_bf16(avx2.replace("fma", "fma amx_bf16 amx_tile"))
    assert cpu_has_bf16("processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n")  # Arm
    assert not cpu_has_bf16("")
