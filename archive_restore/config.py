"""Frozen, typed configuration: one dataclass per stage.

Every artefact carries its own contract: a checkpoint stores ``ModelConfig`` and
``TrainConfig`` as plain dicts, an ONNX sidecar stores ``ModelConfig``. This module
imports nothing heavy (no torch, no onnxruntime) so every side can read configs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

DEFAULT_MAX_PIXELS = 200_000_000  # decompression-bomb limit: images with more pixels fail (io, report previews)

T = TypeVar("T")


def to_dict(cfg: Any) -> dict[str, Any]:
    """A config dataclass as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build ``cls`` from a dict; unknown keys raise ``ValueError`` (never silently dropped).

    Lists are turned back into tuples for tuple-typed fields so configs stay hashable.
    """
    if not isinstance(data, dict):
        raise ValueError(f"{cls.__name__}: expected a dict, got {type(data).__name__}")
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
    return cls(**kwargs)  # type: ignore[call-arg]


@dataclass(frozen=True)
class ModelConfig:
    """What a generator is: architecture name and its size.

    arch: "gated_unet" (the default) or "context_encoder" (the source design's baseline).
    widths: channels at full, 1/2, 1/4 and 1/8 resolution (gated_unet); the first is also
        the Context Encoder's first width, doubled at each of its 5 downsamplings (capped at 8x).
    bottleneck_dilations: dilation of each residual gated block at the lowest resolution.
    prefill: classical fill the generator's input carries inside the hole ("telea", "ns" or
        "none"); computed with OpenCV by ``archive_restore.prefill`` in training and at run time.
    residual: the generator predicts a correction added to the pre-filled input.
    """

    arch: str = "gated_unet"
    widths: tuple[int, ...] = (16, 32, 64, 128)
    bottleneck_dilations: tuple[int, ...] = (2, 4, 8, 1)
    prefill: str = "ns"
    prefill_radius: int = 3
    residual: bool = True


@dataclass(frozen=True)
class TrainConfig:
    """How a generator was trained; saved in every checkpoint.

    Loss weights multiply means normalised per sample by the number of hole (or known) pixels,
    so a 2-pixel scratch weighs as much as a large tear.
    """

    size: int = 128
    batch: int = 16
    steps: int = 20000
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    lr_decay: str = "none"  # "none" (gunet_v1/v2: constant) or "cosine": both rates follow half a cosine
    lr_final: float = 0.05  # from lr_g/lr_d at step 0 down to this fraction of them at ``steps``
    betas: tuple[float, float] = (0.5, 0.999)
    w_hole_l1: float = 6.0
    w_valid_l1: float = 1.0
    w_mse: float = 1.0
    w_grad: float = 2.0
    w_ssim: float = 1.0
    w_tex: float = 0.0  # losses.texture_loss; 0 in gunet_v1/v2
    w_adv: float = 0.02
    w_fm: float = 1.0
    adv_start: int = 1000
    d_hole_only: bool = True  # D's hinge terms count hole patches only (see losses.d_hinge)
    mask_mix: tuple[tuple[str, float], ...] = (
        ("scratches", 0.25),
        ("cracks", 0.15),
        ("dust", 0.15),
        ("text", 0.15),
        ("blotches", 0.15),
        ("random_square", 0.10),
        ("centre_square", 0.05),
    )
    appearance_p: float = 0.5
    source_balance: float = 0.5
    keep_ckpts: int = 3
    seed: int = 0
    sample_every: int = 500
    ckpt_every: int = 500
    val_every: int = 500
    val_images: int = 16
    bf16: bool = True
    workers: int = 1


# Fields added to TrainConfig after checkpoints were already written, with the value those
# older runs actually used (a saved config lacking the key was trained that way).
TRAIN_CONFIG_LEGACY = {"d_hole_only": False, "lr_decay": "none"}


def saved_train_config(data: dict[str, Any]) -> TrainConfig:
    """The TrainConfig a checkpoint records; keys it predates take their legacy value, not today's default."""
    return from_dict(TrainConfig, {**TRAIN_CONFIG_LEGACY, **data})


@dataclass(frozen=True)
class MaskConfig:
    """Automatic damage detection (``archive_restore.masks``).

    sensitivity: "low", "medium" (default) or "high".
    tile: the rules run at native resolution in tiles of this size (plus overlap); the learned
        detector has its own tiling (``masks.learned.TILE`` and ``OVERLAP``).
    dilate: pixels the united mask is grown by, so fills cover damage edges.
    threads: tiles of one scan detected at once (0 = one per CPU core, at most 4). The
        detectors spend most of their time in OpenCV and numpy calls that release the GIL.
    detector: "learned" (default: the small network of ``masks.net``, run from export/ by
        ``masks.learned``) or "rules" (the OpenCV detectors, one per kind).
    detector_graph: the learned detector's ONNX graph (its JSON sidecar beside it, thresholds
        included), e.g. a retrained one from ``python -m archive_restore.masks.net export``;
        None = the shipped default (``masks.learned.default_detector_path``). Learned only.
    scales: "auto" (default): a big scan whose pixels are finer than its detail (a print at
        600 dpi or more) is also searched shrunk to the scale where its detail is as fine as its
        pixels, and what is found there is added (``masks.coarse_level``), so damage that is
        wide in pixels is found (the detectors learned and were tuned on photos of about 256
        px); "native": the scan's own resolution only.
    """

    sensitivity: str = "medium"
    tile: int = 1024
    overlap: int = 64
    dilate: int = 2
    threads: int = 0
    kinds: tuple[str, ...] = ("scratches", "dust", "text", "blotches")
    detector: str = "learned"
    detector_graph: str | None = None
    scales: str = "auto"


@dataclass(frozen=True)
class RuntimeConfig:
    """How ``restore folder`` runs the exported generator.

    window: side of the square windows the runtime feeds the model (before padding).
    context: pixels of known image kept around a mask component inside a window.
    batch: windows per ONNX Runtime call (across images).
    max_pixels: decompression-bomb guard; images above it fail with a clear error.
    pyramid: pre-fill thick holes with the generator's own half-resolution fill
        (``runtime.session``); False keeps the classical pre-fill everywhere.
    grain: strength of the grain re-synthesised inside filled holes (``runtime.grain``):
        0 leaves the generator's fill as it is, 1 makes up the full difference between the
        grain around a hole and the fill's.
    tone_lock: on monotone RGB scans (grey, sepia, cyanotype stored as RGB) keep every fill
        within the scan's own colour-per-brightness spread (``runtime.tone``); colour scans
        and grey-mode files are unaffected.
    """

    device: str = "auto"
    workers: int = 2
    window: int = 512
    context: int = 48
    batch: int = 4
    max_pixels: int = DEFAULT_MAX_PIXELS
    jpeg_quality: int = 95
    pyramid: bool = True
    grain: float = 0.0
    tone_lock: bool = True
