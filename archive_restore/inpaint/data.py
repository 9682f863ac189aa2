"""Training and validation samples: crops of clean photos, archive-like looks, damage masks, pre-fill.

Every sample is a pure function of ``(seed, index)``: sample ``i`` of a run draws its file,
crop, look and mask from ``np.random.default_rng([seed, i])``. Resuming at step ``s`` with
batch ``b`` therefore continues at index ``s*b`` with exactly the samples an uninterrupted
run would have seen, whatever the number of loader workers.

Source balance: files are grouped by their top-level folder under DATA_DIR (a "source");
a source is drawn with probability proportional to ``n_files ** source_balance`` (0.5 by
default), then a file uniformly within it. With the shipped training set this lowers faces
(UTKFace, two thirds of the files) to about a third of the samples.

Mask mix (``TrainConfig.mask_mix``): one of the synthetic damage kinds of
``archive_restore.damage`` (thin scratches, cracks, dust, text, blotches), or the source
design's random square (side 1/8..1/3 of the crop) or centre square (1/4 of the area).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from archive_restore.damage import KINDS, damage_mask
from archive_restore.io import walk_scans
from archive_restore.prefill import prefill



UNREADABLE_TRIES = 50  # draws per sample; only a folder of mostly unreadable files fails


def list_images(root: Path) -> list[Path]:
    """Every image file under ``root``, recursively, sorted (deterministic): ``io.walk_scans``,
    so hidden entries (macOS "._a.jpg" files, ".Trashes") and NAS thumbnail folders are not
    training photos, and entries it refuses (unreadable folders, loops, links to nothing) are
    left out; links into a photo library outside ``root`` are photos like any other."""
    root = Path(root)
    files = [path for _, path, error in walk_scans(root, links_out_ok=True) if error is None]
    if not files:
        raise FileNotFoundError(f"no images under {root}")
    return files


def read_rgb(path: Path) -> np.ndarray:
    """Decode ``path`` to (H,W,3) uint8 RGB with OpenCV; raises ``ValueError`` if unreadable."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def square_mask(shape: tuple[int, int], rng: np.random.Generator, centre: bool) -> np.ndarray:
    """The Context Encoder's square hole: (H,W) bool; centre = 1/4 of the area in the middle."""
    h, w = shape
    m = np.zeros((h, w), bool)
    if centre:
        m[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
        return m
    side = int(rng.uniform(1 / 8, 1 / 3) * min(h, w))
    y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
    m[y : y + side, x : x + side] = True
    return m


def make_mask(shape: tuple[int, int], rng: np.random.Generator, kind: str) -> np.ndarray:
    """A training hole of ``kind`` (a damage kind, "random_square" or "centre_square"): (H,W) bool."""
    if kind in KINDS:
        m = damage_mask(shape, rng, kind)
        if not m.any():  # a draw can miss the crop entirely; fall back to a thin scratch
            m = damage_mask(shape, rng, "scratches")
        return m
    if kind in ("random_square", "centre_square"):
        return square_mask(shape, rng, centre=kind == "centre_square")
    raise ValueError(f"unknown mask kind {kind!r}")


def archive_look(img: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Random archive appearance on (H,W,3) uint8 RGB: grayscale, sepia, fading, grain, JPEG.

    Each change is applied with probability ``p`` times its own share; returns uint8 RGB.
    """
    x = img.astype(np.float32)
    if rng.random() < p * 0.5:  # grayscale or sepia
        g = x @ np.array([0.299, 0.587, 0.114], np.float32)
        if rng.random() < 0.5:
            x = np.repeat(g[..., None], 3, axis=2)
        else:
            tint = np.array([1.07, 0.98, 0.80], np.float32) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
            x = g[..., None] * tint[None, None, :]
    if rng.random() < p * 0.4:  # fading: lower contrast toward a warm paper tone
        paper = np.array([235, 225, 200], np.float32)
        a = rng.uniform(0.1, 0.4)
        x = x * (1 - a) + paper * a
    if rng.random() < p * 0.5:  # film grain, luminance-correlated across channels
        sigma = rng.uniform(2.0, 8.0)
        grain = rng.normal(0.0, sigma, x.shape[:2]).astype(np.float32)
        if rng.random() < 0.5:
            grain = cv2.GaussianBlur(grain, (0, 0), 0.7)
        x = x + grain[..., None]
    out = np.clip(x + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < p * 0.4:  # JPEG artefacts
        q = int(rng.integers(35, 90))
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


@dataclass(frozen=True)
class Sample:
    """One training example. image: (3,S,S) float32 in [0,1], hole pre-filled; mask: (1,S,S) {0,1};
    target: (3,S,S) float32 in [0,1]; kind: the mask kind's index in the mix."""

    image: torch.Tensor
    mask: torch.Tensor
    target: torch.Tensor
    kind: int


def to_chw(img: np.ndarray) -> torch.Tensor:
    """(H,W,3) uint8 -> (3,H,W) float32 in [0,1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


def build_sample(clean: np.ndarray, mask: np.ndarray, prefill_method: str, radius: int, kind: int = 0) -> Sample:
    """Pre-fill ``mask`` of ``clean`` ((H,W,3) uint8, (H,W) bool) into a ``Sample``."""
    filled = prefill(clean, mask, prefill_method, radius)
    return Sample(image=to_chw(filled), mask=torch.from_numpy(mask[None].astype(np.float32)), target=to_chw(clean), kind=kind)


class InpaintDataset(torch.utils.data.Dataset):
    """Map-style dataset where item ``i`` is a pure function of ``(seed, i)`` (see module docstring)."""

    def __init__(
        self,
        root: Path,
        size: int,
        mask_mix: tuple[tuple[str, float], ...],
        prefill_method: str,
        prefill_radius: int,
        seed: int,
        appearance_p: float = 0.5,
        source_balance: float = 0.5,
        length: int = 10**9,
    ):
        files = list_images(root)
        root = Path(root)
        groups: dict[str, list[Path]] = {}
        for f in files:
            rel = f.relative_to(root).parts
            groups.setdefault(rel[0] if len(rel) > 1 else ".", []).append(f)
        self.sources = sorted(groups)
        self.groups = [groups[s] for s in self.sources]
        w = np.array([len(g) ** source_balance for g in self.groups], np.float64)
        self.source_p = w / w.sum()
        self.kinds = [k for k, _ in mask_mix]
        kp = np.array([p for _, p in mask_mix], np.float64)
        self.kind_p = kp / kp.sum()
        self.size, self.seed, self.appearance_p = size, seed, appearance_p
        self.prefill_method, self.prefill_radius = prefill_method, prefill_radius
        self.length = length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        rng = np.random.default_rng([self.seed, int(index)])
        for _ in range(UNREADABLE_TRIES):  # a few junk files among many must not stop a run
            g = self.groups[rng.choice(len(self.groups), p=self.source_p)]
            path = g[rng.integers(len(g))]
            try:
                img = read_rgb(path)
                break
            except ValueError as exc:
                last = str(exc)
                continue
        else:
            raise RuntimeError(f"{UNREADABLE_TRIES} unreadable training files in a row (the last: {last})")
        s = self.size
        h, w = img.shape[:2]
        if min(h, w) < s:
            scale = s / min(h, w)
            img = cv2.resize(img, (max(s, round(w * scale)), max(s, round(h * scale))), interpolation=cv2.INTER_AREA)
            h, w = img.shape[:2]
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        img = img[y : y + s, x : x + s]
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = archive_look(np.ascontiguousarray(img), rng, self.appearance_p)
        k = int(rng.choice(len(self.kinds), p=self.kind_p))
        mask = make_mask((s, s), rng, self.kinds[k])
        smp = build_sample(img, mask, self.prefill_method, self.prefill_radius, k)
        return smp.image, smp.mask, smp.target, smp.kind


class IndexRange(torch.utils.data.Sampler):
    """Yields ``start, start+1, ...`` forever: the sample indices of a (resumed) run."""

    def __init__(self, start: int):
        self.start = start

    def __iter__(self):
        i = self.start
        while True:
            yield i
            i += 1


def validation_set(
    root: Path, n: int, size: int, kinds: tuple[str, ...], prefill_method: str, radius: int, seed: int = 1234
) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """A fixed validation batch per kind: centre crops of the first ``n`` images of ``root``
    with seeded masks. Returns ``[(kind, image (N,3,S,S), mask (N,1,S,S), target (N,3,S,S))]``."""
    files = list_images(root)[:n]
    out = []
    for ki, kind in enumerate(kinds):
        imgs, msks, tgts = [], [], []
        for fi, f in enumerate(files):
            img = read_rgb(f)
            h, w = img.shape[:2]
            if min(h, w) < size:
                continue
            y, x = (h - size) // 2, (w - size) // 2
            crop = np.ascontiguousarray(img[y : y + size, x : x + size])
            mask = make_mask((size, size), np.random.default_rng([seed, ki, fi]), kind)
            smp = build_sample(crop, mask, prefill_method, radius)
            imgs.append(smp.image)
            msks.append(smp.mask)
            tgts.append(smp.target)
        out.append((kind, torch.stack(imgs), torch.stack(msks), torch.stack(tgts)))
    return out
