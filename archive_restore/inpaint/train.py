"""The training loop: generator + PatchGAN, checkpoints, exact resume, samples, metrics log.

``RUN_DIR`` layout:
  last.pth, ckpt_<step>.pth   full training state (G, D, both Adam states, step, RNG), atomic
  generator.pth               generator only (what ``restore export-onnx`` and ``models/`` take)
  samples/<step>.png          damaged | mask | pre-fill | output | original, fixed validation cases
  metrics.jsonl               one line per log interval (losses, steps/s) and per validation
                              (masked PSNR per kind for the model and for its pre-fill alone,
                              and the model's texture ratio)

Resume is exact: the data pipeline is a pure function of (seed, sample index) and the
sample index is ``step * batch``, so a resumed run sees the same samples as an unbroken one.
"""

from __future__ import annotations

import functools
import json
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from archive_restore.config import ModelConfig, TrainConfig, from_dict, saved_train_config, to_dict
from archive_restore.inpaint import losses as L
from archive_restore.inpaint.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from archive_restore.inpaint.data import IndexRange, InpaintDataset, validation_set
from archive_restore.inpaint.model import build_discriminator, build_generator, count_params
from archive_restore.io import copy_file_atomic

VAL_KINDS = ("scratches", "cracks", "dust", "text", "blotches", "centre_square")


def resolve_device(device: str) -> torch.device:
    """auto -> cuda if available else cpu; cuda fails loudly when absent."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda: PyTorch sees no CUDA device")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; choose auto, cpu or cuda")
    return torch.device(device)


def sample_grid(image: torch.Tensor, mask: torch.Tensor, out: torch.Tensor, target: torch.Tensor, n: int = 6) -> np.ndarray:
    """Rows of damaged | mask | pre-fill | output | original as (H,W,3) uint8 RGB.

    "damaged" shows the hole in the original painted paper-white, the way lost emulsion looks.
    """
    n = min(n, image.shape[0])
    m3 = mask[:n].expand(-1, 3, -1, -1)
    damaged = target[:n] * (1 - m3) + m3 * torch.tensor([0.93, 0.91, 0.85]).view(1, 3, 1, 1)
    cols = [damaged, m3, image[:n], out[:n], target[:n]]
    rows = [torch.cat([c[i] for c in cols], dim=2) for i in range(n)]
    grid = torch.cat(rows, dim=1).clamp(0, 1)
    return (grid.permute(1, 2, 0).float().cpu().numpy() * 255 + 0.5).astype(np.uint8)


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    tmp.replace(path)


def cpu_has_bf16(cpuinfo: str | None = None) -> bool:
    """True when this CPU has bf16 arithmetic (x86 AVX512_BF16 or AMX-BF16, Arm BF16), read from
    ``cpuinfo`` (default: /proc/cpuinfo, Linux); False where that cannot be read."""
    text = cpuinfo
    if text is None:
        try:
            text = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return False
    flags = set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            flags.update(line.split(":", 1)[-1].split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


class Trainer:
    """Owns the networks, optimisers and the loop. ``run`` trains up to ``cfg.steps``."""

    def __init__(
        self,
        data_dir: Path,
        run_dir: Path,
        model_cfg: ModelConfig,
        cfg: TrainConfig,
        device: str = "auto",
        resume: bool = False,
        val_dir: Path | None = None,
        init_from: Path | None = None,
        keep_steps: bool = False,
    ):
        """``resume``: continue the run in ``run_dir``; its own settings win over ``cfg`` except
        ``cfg.steps``, the new end, unless ``keep_steps`` (the run's own end: ``--resume``
        without ``--steps``). A new end at or before the checkpoint's step is refused.
        ``init_from``: a full training checkpoint (another run's ``last.pth``) whose generator
        and discriminator weights start this new run (fine-tuning, e.g. at a lower learning
        rate); optimiser states, step and RNG start fresh. Not combinable with ``resume``."""
        self.run_dir = Path(run_dir)
        self.dev = resolve_device(device)  # before the run folder exists: a bad device leaves nothing
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.step = 0
        last = self.run_dir / "last.pth"
        state = None
        if resume:
            if not last.is_file():
                raise CheckpointError(f"--resume: no {last} to resume from")
            state = load_checkpoint(last)
            saved_model = from_dict(ModelConfig, state["model_config"])
            if saved_model != model_cfg:
                model_cfg = saved_model  # the run's own architecture wins; flags can't change it mid-run
            saved = saved_train_config(state["train_config"])
            # The step budget may grow on resume; everything else must stay as the run began.
            cfg = replace(saved, steps=saved.steps if keep_steps else cfg.steps)
            if cfg.steps <= int(state["step"]):
                raise CheckpointError(f"--resume: {last} is at step {state['step']} already; "
                                      f"pass --steps above it to train on (the run's end was {saved.steps})")
        elif last.is_file():
            raise CheckpointError(f"{self.run_dir} already holds a run; pass --resume or choose another --out")
        self.model_cfg, self.cfg = model_cfg, cfg
        torch.manual_seed(cfg.seed)
        self.G = build_generator(model_cfg).to(self.dev)
        self.D = build_discriminator("patchgan").to(self.dev)
        if self.dev.type == "cuda":
            self.G = self.G.to(memory_format=torch.channels_last)
            self.D = self.D.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=cfg.lr_d, betas=cfg.betas)
        self.init_from: dict[str, Any] | None = None  # recorded in the start event
        if init_from is not None:
            if resume:
                raise ValueError("--init-from starts a new run; it cannot be combined with --resume")
            init = load_checkpoint(init_from)
            if from_dict(ModelConfig, init["model_config"]) != model_cfg:
                raise CheckpointError(f"{init_from}: its model config differs from this run's ({model_cfg.arch}, "
                                      f"widths {model_cfg.widths}); give --arch/--widths/--dilations as it was trained")
            self.G.load_state_dict(init["state_dict"])
            # a generator-only checkpoint (models/*.pth) starts a fresh discriminator, as the
            # first runs introduced theirs fresh at adv_start
            extra = init.get("extra") or {}
            fresh_d = "disc_state_dict" not in extra
            if not fresh_d:
                self.D.load_state_dict(extra["disc_state_dict"])
            self.init_from = {"path": str(init_from), "step": int(init["step"]), "fresh_discriminator": fresh_d}
        if state is not None:
            self.G.load_state_dict(state["state_dict"])
            ex = state.get("extra") or {}
            if val_dir is None and ex.get("val_dir") and Path(ex["val_dir"]).is_dir():
                val_dir = Path(ex["val_dir"])  # --resume keeps validating as the run began
            missing = [k for k in ("disc_state_dict", "opt_g", "opt_d", "torch_rng") if k not in ex]
            if missing:
                raise CheckpointError(f"{self.run_dir / 'last.pth'} is not a training checkpoint (no {', '.join(missing)}; "
                                      "a generator such as models/*.pth starts a run with --init-from, not --resume)")
            self.D.load_state_dict(ex["disc_state_dict"])
            self.opt_g.load_state_dict(ex["opt_g"])
            self.opt_d.load_state_dict(ex["opt_d"])
            torch.set_rng_state(ex["torch_rng"])
            self.step = int(state["step"])
        self.data = InpaintDataset(
            data_dir, cfg.size, cfg.mask_mix, model_cfg.prefill, model_cfg.prefill_radius, cfg.seed,
            appearance_p=cfg.appearance_p, source_balance=cfg.source_balance,
        )
        self.val_dir = val_dir
        self.val = (
            validation_set(val_dir, cfg.val_images, cfg.size, VAL_KINDS, model_cfg.prefill, model_cfg.prefill_radius)
            if val_dir is not None
            else []
        )
        self.metrics_path = self.run_dir / "metrics.jsonl"

    # -- state -------------------------------------------------------------------------
    def save(self) -> None:
        """Write ckpt_<step>.pth, last.pth and generator.pth atomically; prune old ckpts."""
        extra = {
            "disc_state_dict": {k: v.detach().cpu() for k, v in self.D.state_dict().items()},
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "val_dir": str(Path(self.val_dir).resolve()) if self.val_dir is not None else None,
        }
        ck = self.run_dir / f"ckpt_{self.step}.pth"
        save_checkpoint(ck, self.G, self.model_cfg, self.step, self.cfg, extra)
        copy_file_atomic(ck, self.run_dir / "last.pth")
        save_checkpoint(self.run_dir / "generator.pth", self.G, self.model_cfg, self.step, self.cfg)
        ckpts = sorted(self.run_dir.glob("ckpt_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
        for old in ckpts[: -self.cfg.keep_ckpts]:
            old.unlink(missing_ok=True)

    def log(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    # -- steps ---------------------------------------------------------------------------
    def _autocast(self):
        if self.dev.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16)

    @functools.cached_property
    def cpu_bf16(self) -> bool:
        """bf16 autocast on the CPU: asked for (``TrainConfig.bf16``) and the CPU computes bf16
        natively. Without that, PyTorch emulates it: on an AVX2-only EPYC training ran 12x slower
        (session 24), so such CPUs train in float32. Read once per trainer."""
        return self.cfg.bf16 and cpu_has_bf16()

    def lr_scale(self, step: int) -> float:
        """The learning-rate factor at ``step`` (0-based): 1 for ``lr_decay`` "none"; for
        "cosine", half a cosine from 1 at step 0 to ``lr_final`` at ``steps``. ``--resume`` with a
        larger ``--steps`` stretches the cosine from where the run is, so the rate rises again."""
        c = self.cfg
        if c.lr_decay == "none":
            return 1.0
        if c.lr_decay != "cosine":
            raise ValueError(f"unknown lr_decay {c.lr_decay!r}; choose none or cosine")
        t = min(max(step / max(c.steps, 1), 0.0), 1.0)
        return c.lr_final + (1.0 - c.lr_final) * 0.5 * (1.0 + math.cos(math.pi * t))

    def train_step(self, image: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        """One G (and, after ``adv_start``, D) update. Returns the loss values."""
        c = self.cfg
        k = self.lr_scale(self.step)
        for opt, lr in ((self.opt_g, c.lr_g), (self.opt_d, c.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr * k
        use_adv = c.w_adv > 0 and self.step >= c.adv_start
        with self._autocast():
            out = self.G(image, mask)
        out = out.float()
        logs: dict[str, float] = {}
        if use_adv:
            self.opt_d.zero_grad(set_to_none=True)
            with self._autocast():
                real_logits, _ = self.D(target, mask)
                fake_logits, _ = self.D(out.detach(), mask)
            d_loss = L.d_hinge(real_logits.float(), fake_logits.float(), mask if c.d_hole_only else None)
            d_loss.backward()
            self.opt_d.step()
            logs["d"] = float(d_loss.detach())
        loss_terms = {
            "hole_l1": c.w_hole_l1 * L.hole_l1(out, target, mask),
            "whole_l1": c.w_valid_l1 * L.whole_l1(out, target),
            "mse": c.w_mse * L.hole_mse(out, target, mask),
            "grad": c.w_grad * L.gradient_loss(out, target, mask),
            "ssim": c.w_ssim * L.ssim_loss(out, target, mask),
        }
        if c.w_tex > 0:
            loss_terms["tex"] = c.w_tex * L.texture_loss(out, target, mask)
        if use_adv:
            for p in self.D.parameters():
                p.requires_grad_(False)
            with self._autocast():
                fake_logits, fake_feats = self.D(out, mask)
                with torch.no_grad():
                    _, real_feats = self.D(target, mask)
            loss_terms["adv"] = c.w_adv * L.g_hinge(fake_logits.float(), mask)
            loss_terms["fm"] = c.w_fm * L.feature_matching([f.float() for f in fake_feats], [r.float() for r in real_feats])
            for p in self.D.parameters():
                p.requires_grad_(True)
        g_loss = sum(loss_terms.values())
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        logs.update({k: float(v.detach()) for k, v in loss_terms.items()})
        logs["g"] = float(g_loss.detach())
        return logs

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        """Per validation kind: masked PSNR of the model and of its pre-fill alone, and the
        model's texture ratio (``losses.texture_ratio``, mean over the cases)."""
        self.G.eval()
        res: dict[str, Any] = {}
        for kind, image, mask, target in self.val:
            out = self.G(image.to(self.dev), mask.to(self.dev)).float().cpu()
            res[kind] = {
                "model": float(L.psnr(out, target, mask).mean()),
                "prefill": float(L.psnr(image, target, mask).mean()),
                "texture": float(L.texture_ratio(out, target, mask).mean()),
            }
        self.G.train()
        if self.val:
            res["mean_gain_db"] = float(np.mean([v["model"] - v["prefill"] for v in res.values() if isinstance(v, dict)]))
        return res

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        if not self.val:
            return None
        self.G.eval()
        rows = []
        for kind, image, mask, target in self.val:
            out = self.G(image[:2].to(self.dev), mask[:2].to(self.dev)).float().cpu()
            rows.append(sample_grid(image[:2], mask[:2], out, target[:2], n=2))
        self.G.train()
        path = self.run_dir / "samples" / f"{self.step}.png"
        _write_png(path, np.concatenate(rows, axis=0))
        return path

    def run(
        self,
        on_step: Callable[[int, dict[str, float], float], None] | None = None,
        log_every: int = 10,
        max_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Train from ``self.step`` to ``cfg.steps``; saves on the way and on Ctrl-C.

        ``max_seconds``: stop early (and save) once this much wall time has passed, for
        leased machines with a time limit; the run resumes later with ``--resume``.
        """
        c = self.cfg
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        loader = torch.utils.data.DataLoader(
            self.data,
            batch_size=c.batch,
            sampler=IndexRange(self.step * c.batch),
            num_workers=c.workers,
            pin_memory=self.dev.type == "cuda",
            persistent_workers=c.workers > 0,
            prefetch_factor=4 if c.workers > 0 else None,
        )
        self.G.train()
        self.D.train()
        if self.step == 0:
            self.log({"event": "start", "params_g": count_params(self.G), "params_d": count_params(self.D),
                      "model_config": to_dict(self.model_cfg), "train_config": to_dict(c), "device": str(self.dev),
                      "torch_threads": torch.get_num_threads(), "init_from": self.init_from,
                      "cpu_bf16": self.dev.type == "cpu" and self.cpu_bf16})
            if self.val:
                self.log({"event": "val", "step": 0, **self.validate()})
        last: dict[str, float] = {}
        t0, s0 = time.perf_counter(), self.step
        it = iter(loader)
        try:
            while self.step < c.steps:
                image, mask, target, _ = next(it)
                if self.dev.type == "cuda":
                    image, mask, target = (t.to(self.dev, non_blocking=True).contiguous(memory_format=torch.channels_last) for t in (image, mask, target))
                last = self.train_step(image, mask, target)
                self.step += 1
                rate = (self.step - s0) / max(time.perf_counter() - t0, 1e-9)
                if on_step is not None:
                    on_step(self.step, last, rate)
                if self.step % log_every == 0 or self.step == c.steps:  # the last step's losses too
                    self.log({"event": "train", "step": self.step, "steps_per_s": rate, **last})
                if self.val and self.step % c.val_every == 0:
                    self.log({"event": "val", "step": self.step, **self.validate()})
                if self.step % c.sample_every == 0:
                    self.write_samples()
                if self.step % c.ckpt_every == 0:
                    self.save()
                if deadline is not None and time.monotonic() > deadline:
                    self.log({"event": "time_limit", "step": self.step})
                    break
        except KeyboardInterrupt:
            self.save()
            raise
        if not math.isfinite(last.get("g", 0.0)):
            raise RuntimeError(f"training diverged at step {self.step}: {last}")
        self.save()
        self.write_samples()
        return {"step": self.step, "losses": last}
