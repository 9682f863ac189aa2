"""ONNX Runtime inference of an exported generator (no torch): providers, sidecar, batching.

Owns: finding the default model, reading and checking its JSON sidecar, choosing the
execution provider once and recording what really ran (ONNX Runtime silently falls back
to CPU when CUDA can't load), and ``fill``, which turns windows of an image plus masks
into filled windows using the same classical pre-fill the generator was trained with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from archive_restore.io import sha256_file  # noqa: F401  (re-exported for callers of the runtime)
from archive_restore.prefill import prefill

SIDECAR_FORMAT = "archive-restore/onnx-sidecar/1"
DEFAULT_MODEL_NAME = "gunet_v2"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class RuntimeUnavailable(RuntimeError):
    """The requested device or model cannot be used; the message says why in one line."""


def repo_root() -> Path:
    """The folder holding ``export/`` and ``models/`` (the source tree this package lives in)."""
    return Path(__file__).resolve().parents[2]


def default_model_path() -> Path:
    """The shipped default model: ``export/<DEFAULT_MODEL_NAME>.onnx`` in the source tree."""
    return repo_root() / "export" / f"{DEFAULT_MODEL_NAME}.onnx"


def sidecar_path(onnx_path: Path) -> Path:
    """``model.onnx`` -> ``model.json``."""
    return Path(onnx_path).with_suffix(".json")


def check_single_runtime() -> None:
    """Fail if both onnxruntime and onnxruntime-gpu are installed (they overwrite each other)."""
    present = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            metadata.version(dist)
            present.append(dist)
        except metadata.PackageNotFoundError:
            pass
    if len(present) == 2:
        raise RuntimeUnavailable(
            "both onnxruntime and onnxruntime-gpu are installed and overwrite each other's files; "
            "uninstall both, then install one: pip install 'archive-restore[cpu]' or '[gpu]'"
        )
    if not present:
        raise RuntimeUnavailable("ONNX Runtime is not installed: pip install 'archive-restore[cpu]' (or '[gpu]')")


def load_sidecar(onnx_path: Path) -> dict[str, Any]:
    """Read and check the JSON sidecar of ``onnx_path``; raises ``RuntimeUnavailable``."""
    side = sidecar_path(onnx_path)
    if not Path(onnx_path).is_file():
        raise RuntimeUnavailable(f"model not found: {onnx_path}")
    if not side.is_file():
        raise RuntimeUnavailable(f"model sidecar not found: {side} (export with `restore export-onnx`)")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RuntimeUnavailable(f"unreadable model sidecar {side}: {exc}") from exc
    if data.get("format") != SIDECAR_FORMAT:
        raise RuntimeUnavailable(f"{side} is not an archive-restore sidecar (format {data.get('format')!r})")
    return data


def _providers_for(device: str) -> list[str]:
    import onnxruntime as ort

    available = ort.get_available_providers()
    if device == "cpu":
        return [CPU]
    if device in ("cuda", "auto"):
        if CUDA in available:
            return [CUDA, CPU]
        if device == "cuda":
            raise RuntimeUnavailable(
                f"--device cuda: ONNX Runtime has no CUDA provider (available: {', '.join(available)}); "
                "install 'archive-restore[gpu]' on a machine with an NVIDIA GPU"
            )
        return [CPU]
    raise RuntimeUnavailable(f"unknown device {device!r}; choose auto, cpu or cuda")


@dataclass(frozen=True)
class SessionInfo:
    """What really runs: resolved once, recorded in every manifest record."""

    provider: str
    model_id: str
    model_name: str
    pad_multiple: int
    prefill: str
    prefill_radius: int
    precision: str


class InpaintSession:
    """An exported generator loaded in ONNX Runtime.

    ``run`` is the raw graph call; ``fill`` is what callers use: it pre-fills holes,
    pads to the model's multiple, batches windows of equal padded size, and returns
    windows equal to the input outside the mask.
    """

    def __init__(self, onnx_path: Path | str | None = None, device: str = "auto", threads: int = 0, batch: int = 4):
        import onnxruntime as ort

        check_single_runtime()
        path = Path(onnx_path) if onnx_path is not None else default_model_path()
        self.sidecar = load_sidecar(path)
        self.path = path
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        wanted = _providers_for(device)
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RuntimeUnavailable(f"cannot load model {path}: {str(exc).splitlines()[0]}") from exc
        got = self._sess.get_providers()
        if device == "cuda" and (not got or got[0] != CUDA):
            raise RuntimeUnavailable(
                f"--device cuda: ONNX Runtime fell back to {got[0] if got else 'nothing'} "
                "(CUDA/cuDNN libraries missing or incompatible)"
            )
        cfg = self.sidecar["model"]["config"]
        self.info = SessionInfo(
            provider=got[0],
            model_id=self.sidecar["onnx_sha256"],
            model_name=self.sidecar["model"]["name"],
            pad_multiple=int(self.sidecar["input_contract"]["pad_multiple"]),
            prefill=cfg["prefill"],
            prefill_radius=int(cfg["prefill_radius"]),
            precision=self.sidecar.get("precision", "fp32"),
        )
        self.batch = max(1, batch)
        self._dtype = np.float16 if self.info.precision == "fp16" else np.float32

    # Convenience attributes used by the pipeline and evaluation.
    @property
    def provider(self) -> str:
        return self.info.provider

    @property
    def model_id(self) -> str:
        return self.info.model_id

    @property
    def model_name(self) -> str:
        return self.info.model_name

    @property
    def pad_multiple(self) -> int:
        return self.info.pad_multiple

    def run(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Raw graph call. image (B,3,H,W) float32 in [0,1] with pre-filled holes; mask (B,1,H,W)
        float32 in {0,1}. Returns (B,3,H,W) float32 in [0,1]."""
        out = self._sess.run(["restored"], {"image": image.astype(self._dtype), "mask": mask.astype(self._dtype)})[0]
        return out.astype(np.float32)

    def prepare(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Pre-fill one window. image (h,w,3) float32 in [0,1]; mask (h,w) bool.
        Returns (h,w,3) float32 in [0,1]: the input outside the mask, the classical fill inside."""
        u8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        filled = prefill(u8, mask, self.info.prefill, self.info.prefill_radius).astype(np.float32) / 255.0
        return np.where(mask[..., None], filled, image).astype(np.float32)

    def fill(self, images: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Fill holes in windows. images: (h,w,3) float32 in [0,1], RGB; masks: (h,w) bool.

        Returns one (h,w,3) float32 array in [0,1] per window, equal to the input outside its
        mask. Windows are replicate-padded to the model's multiple and batched by padded size.
        """
        if len(images) != len(masks):
            raise ValueError("fill: images and masks differ in number")
        m = self.pad_multiple
        results: list[np.ndarray | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, (img, msk) in enumerate(zip(images, masks)):
            if img.ndim != 3 or img.shape[2] != 3 or msk.shape != img.shape[:2]:
                raise ValueError(f"fill: window {i} has image {img.shape} and mask {msk.shape}")
            if not msk.any():
                results[i] = img.astype(np.float32, copy=True)
                continue
            h, w = msk.shape
            groups.setdefault((-(-h // m) * m, -(-w // m) * m), []).append(i)
        for (ph, pw), idx in groups.items():
            for start in range(0, len(idx), self.batch):
                chunk = idx[start : start + self.batch]
                xb = np.zeros((len(chunk), 3, ph, pw), np.float32)
                mb = np.zeros((len(chunk), 1, ph, pw), np.float32)
                for j, i in enumerate(chunk):
                    h, w = masks[i].shape
                    pre = self.prepare(images[i], masks[i])
                    xb[j] = np.pad(pre, ((0, ph - h), (0, pw - w), (0, 0)), mode="edge").transpose(2, 0, 1)
                    mb[j, 0, :h, :w] = masks[i]
                out = self.run(xb, mb)
                for j, i in enumerate(chunk):
                    h, w = masks[i].shape
                    pred = out[j, :, :h, :w].transpose(1, 2, 0)
                    results[i] = np.where(masks[i][..., None], np.clip(pred, 0.0, 1.0), images[i]).astype(np.float32)
        return [r for r in results]  # type: ignore[misc]
