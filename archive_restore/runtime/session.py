"""ONNX Runtime inference of an exported generator (no torch): providers, sidecar, batching.

Owns: finding the default model, reading and checking its JSON sidecar, choosing the
execution provider once and recording what really ran (ONNX Runtime silently falls back
to CPU when CUDA can't load), and ``fill``, which turns windows of an image plus masks
into filled windows using the same classical pre-fill the generator was trained with.

Thick holes (blotches, tears) get a *pyramid pre-fill*: the generator first fills the
window at half resolution (recursively, while the hole stays thick there), and that
coarse fill, upsampled, replaces the classical fill in the hole's interior. The network's
receptive field then spans twice (four, eight times) the hole, so large holes get
structure from further away instead of the classical fill's smear. Thin damage is left
to the classical pre-fill alone (the same arrays as without the pyramid).
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
from archive_restore.runtime.windows import hole_thickness

SIDECAR_FORMAT = "archive-restore/onnx-sidecar/1"
# pyramid pre-fill: holes at least this thick (px, ``windows.hole_thickness``) are first
# filled at half resolution; the coarse fill takes over from the classical one over this
# many px of depth into the hole (0 at the edge, all of it deeper)
PYRAMID_MIN_THICKNESS = 16.0
PYRAMID_RAMP = 16.0
DEFAULT_MODEL_NAME = "gunet_v3"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


class RuntimeUnavailable(RuntimeError):
    """The requested device or model cannot be used; the message says why in one line."""


def repo_root() -> Path:
    """The folder holding ``export/`` and ``models/`` (the source tree this package lives in)."""
    return Path(__file__).resolve().parents[2]


def default_model_path(provider: str | None = None) -> Path:
    """The shipped default model for the execution provider that will run it.

    provider: ``CPU`` -> the int8 graph ``export/<DEFAULT_MODEL_NAME>_int8.onnx`` when it is
    there (the same weights quantised: about 1.8x faster on a CPU, masked PSNR on cbsd68 within
    0.04 dB of fp32); ``CUDA`` or None -> the fp32 graph ``export/<DEFAULT_MODEL_NAME>.onnx``
    (the reference; int8 QDQ graphs gain nothing on CUDA).
    """
    fp32 = repo_root() / "export" / f"{DEFAULT_MODEL_NAME}.onnx"
    if provider == CPU:
        int8 = fp32.with_name(f"{DEFAULT_MODEL_NAME}_int8.onnx")
        if int8.is_file() and sidecar_path(int8).is_file():
            return int8
    return fp32


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


def providers_for(device: str) -> list[str]:
    """The providers to ask ONNX Runtime for on ``device`` (auto, cpu, cuda), best first; raises
    ``RuntimeUnavailable`` for cuda without a CUDA provider."""
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
    pyramid: bool


class InpaintSession:
    """An exported generator loaded in ONNX Runtime.

    ``run`` is the raw graph call; ``fill`` is what callers use: it pre-fills holes,
    pads to the model's multiple, batches windows of equal padded size, and returns
    windows equal to the input outside the mask.
    """

    def __init__(self, onnx_path: Path | str | None = None, device: str = "auto", threads: int = 0, batch: int = 4,
                 pyramid: bool = True):
        """onnx_path: the graph (its sidecar beside it); None = ``default_model_path`` for the
        provider that really runs (int8 on the CPU, fp32 on CUDA; when ``auto`` wanted CUDA
        but ONNX Runtime fell back to the CPU, the CPU's graph is loaded instead).
        pyramid: pre-fill thick holes with the generator's own half-resolution fill (see
        the module docstring); False uses the classical pre-fill everywhere."""
        import onnxruntime as ort

        check_single_runtime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.log_severity_level = 3
        wanted = providers_for(device)
        # no --model: the default graph for the provider asked for (int8 on the CPU)
        path = Path(onnx_path) if onnx_path is not None else default_model_path(wanted[0])
        self.sidecar = load_sidecar(path)
        self._sess = self._load(ort, path, opts, wanted)
        got = self._sess.get_providers()
        if onnx_path is None and device == "auto" and got and got[0] != wanted[0]:
            # CUDA was there but could not load: the CPU runs it, so take the CPU's default graph
            cpu_path = default_model_path(got[0])
            if cpu_path != path:
                path = cpu_path
                self.sidecar = load_sidecar(path)
                self._sess = self._load(ort, path, opts, [CPU])
                got = self._sess.get_providers()
        self.path = path
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
            pyramid=bool(pyramid),
        )
        self.batch = max(1, batch)
        self._dtype = np.float16 if self.info.precision == "fp16" else np.float32

    @staticmethod
    def _load(ort, path: Path, opts, providers: list[str]):
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RuntimeUnavailable(f"cannot load model {path}: {str(exc).splitlines()[0]}") from exc

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
    def pyramid(self) -> bool:
        return self.info.pyramid

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
        Returns (h,w,3) float32 in [0,1]: the input outside the mask, the classical fill inside
        (blended into the pyramid's coarse fill in the interior of thick holes)."""
        u8 = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
        filled = prefill(u8, mask, self.info.prefill, self.info.prefill_radius).astype(np.float32) / 255.0
        pre = np.where(mask[..., None], filled, image).astype(np.float32)
        if self.info.pyramid and min(mask.shape) >= 2 * self.pad_multiple and hole_thickness(mask) >= PYRAMID_MIN_THICKNESS:
            pre = self._pyramid(image, mask, pre)
        return pre

    def _pyramid(self, image: np.ndarray, mask: np.ndarray, pre: np.ndarray) -> np.ndarray:
        """The pyramid pre-fill of one window. image, pre: (h,w,3) float32 in [0,1] (input and
        its classical pre-fill); mask: (h,w) bool. Returns (h,w,3) float32 in [0,1]: ``pre``
        with the hole's interior taken from the generator's fill of the window at half
        resolution (which ``fill`` pre-fills the same way, so the recursion stops once the
        hole is thin at that scale)."""
        import cv2

        h, w = mask.shape
        half = (w // 2, h // 2)
        small = cv2.resize(image, half, interpolation=cv2.INTER_AREA)
        # a half-resolution pixel is a hole if any of its four is: the coarse fill never
        # copies a pixel that mixes hole and known
        small_mask = cv2.resize(mask.astype(np.float32), half, interpolation=cv2.INTER_AREA) > 0
        coarse = cv2.resize(self.fill([small], [small_mask])[0], (w, h), interpolation=cv2.INTER_LINEAR)
        depth = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        a = np.clip(depth / PYRAMID_RAMP, 0.0, 1.0)[..., None]
        return np.where(mask[..., None], a * coarse + (1.0 - a) * pre, image).astype(np.float32)

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
