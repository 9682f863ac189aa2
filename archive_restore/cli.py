"""The ``restore`` command line: parses arguments, calls the package, prints. No logic here.

Heavy imports (torch, onnxruntime, cv2) happen inside each command so ``restore --help``
starts instantly and ``restore folder`` never imports torch.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from archive_restore.config import RuntimeConfig

SENS_HELP = ("Auto-mask sensitivity: low (fewest false alarms), medium (the balanced default) or high (more of the "
             "faint damage; with the learned detector also crisp white scratches on flat ground such as skies and roads, which a scratched print's "
             "bare paper shows; may also take a thin road marking or horizon). See docs/quality.md.")

app = typer.Typer(
    name="restore",
    help="Restore scanned photo archives: find scratches, cracks, dust and text, fill them, report every change.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def fail(message: str, code: int = 1) -> None:
    """Print a one-line error to stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class _Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class _Detector(str, Enum):
    rules = "rules"
    learned = "learned"


DETECTOR_HELP = ("Auto-mask detector: learned (a small network shipped in export/detector_v8_int8.onnx, run by ONNX Runtime) "
                 "or rules (OpenCV, one detector per kind). docs/quality.md compares them.")


class _Scales(str, Enum):
    auto = "auto"
    native = "native"


SCALES_HELP = ("auto: a big scan whose pixels are finer than its detail (a print scanned at 600 dpi or more, where the same "
               "damage is many pixels wide and soft) is also searched shrunk to the scale where its detail is as fine as its "
               "pixels, and what is found there is added; without that, the detector (which learned on ~256 px photos) finds "
               "a fifth of the scratches on a scan at twice that scale. Costs up to a third more detection time on such scans. "
               "Scans whose pixels hold sharp detail, and photos under 512 px, are searched as they are. native: the scan's "
               "own resolution only.")


GRAPH_HELP = ("A learned detector's ONNX graph in place of the shipped one (its JSON sidecar, with the thresholds, beside it), "
              "e.g. one exported by `python -m archive_restore.masks.net export`. Needs --detector learned.")


def shown(name: str) -> str:
    """A file name for one line of the terminal: control characters (a newline in a name
    would split the line) written as escapes, e.g. ``\\n``; other text as it is."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in name)


class InFlight:
    """What the images in flight are doing, for a person watching a long one: the oldest one's
    stage as one short line (``line``: the TTY's progress bar renders it at each refresh, so its
    seconds keep counting), and, where there is no TTY (a log file), a heartbeat through
    ``echo``: between ``start`` and ``stop`` a thread writes the oldest image's line every
    ``every`` seconds while that image has been in flight that long (``beat``), so a 150 MP scan
    does not leave the log silent for minutes, whichever stage it is in. ``update`` and ``done``
    are called from the run's worker threads."""

    def __init__(self, echo=None, every: float = 30.0, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, tuple[float, str, float]] = {}  # rel -> (started, stage, share done)
        self._echo, self._every, self._clock = echo, every, clock
        self._last = clock()
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def update(self, rel: str, stage: str, share: float) -> None:
        with self._lock:
            started = self._now.get(rel, (self._clock(),))[0]
            self._now[rel] = (started, stage, share)

    def done(self, rel: str) -> None:
        with self._lock:
            self._now.pop(rel, None)

    def line(self) -> str:
        """The oldest image in flight, e.g. ``box1/a.tif: detecting 40% (75 s)``; "" when none."""
        with self._lock:
            return self._oldest(self._clock())[1]

    def beat(self) -> None:
        """Echo the oldest image's line if it has been in flight ``every`` seconds and no line
        went out in the last ``every`` seconds."""
        with self._lock:
            now = self._clock()
            age, text = self._oldest(now)
            if not text or age < self._every or now - self._last < self._every:
                return
            self._last = now
        self._echo(f"  ... {text}")

    def start(self) -> None:
        if self._echo is not None and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._halt.wait(min(5.0, self._every)):
            try:
                self.beat()
            except Exception:
                pass  # a closed log must not end the run

    def _oldest(self, now: float) -> tuple[float, str]:
        """(seconds in flight, its line) of the oldest image; (0, "") when none. Under the lock."""
        if not self._now:
            return 0.0, ""
        rel = min(self._now, key=lambda r: self._now[r][0])
        started, stage, share = self._now[rel]
        name = shown(rel)
        if len(name) > 40:
            name = "..." + name[-37:]
        done = f" {share:.0%}" if stage in ("detecting", "filling") else ""
        return now - started, f"{name}: {stage}{done} ({now - started:.0f} s)"


def _now_column(inflight: InFlight):
    """A rich progress column showing ``inflight.line()`` as plain text (a file name is not
    markup), read at each refresh of the bar and cut with an ellipsis where the terminal ends."""
    from rich.progress import ProgressColumn
    from rich.table import Column
    from rich.text import Text

    class NowColumn(ProgressColumn):
        def render(self, task) -> Text:  # noqa: ARG002
            return Text(inflight.line(), no_wrap=True, overflow="ellipsis")

    return NowColumn(table_column=Column(no_wrap=True, overflow="ellipsis"))  # one line on a narrow terminal


def _note_ignored(ignored: dict[str, int]) -> None:
    """One stderr line on what a folder walk passed over (``pipeline.describe_ignored``)."""
    from archive_restore.io import IMAGE_EXTENSIONS
    from archive_restore.pipeline import describe_ignored

    typer.echo(f"note: not scans, passed over: {describe_ignored(ignored)} (scans are {' '.join(IMAGE_EXTENSIONS)} "
               "files, any case)", err=True)


def _detector_graph(detector: "_Detector", graph: Optional[Path]) -> Optional[str]:
    """The checked ``MaskConfig.detector_graph`` for --detector-graph: None when not given; exits
    with code 2 when it is given with --detector rules or its sidecar is missing."""
    if graph is None:
        return None
    if detector.value != "learned":
        fail("--detector-graph needs --detector learned", 2)
    from archive_restore.masks.learned import detector_id

    try:
        detector_id(graph)
    except FileNotFoundError as exc:
        fail(f"--detector-graph: {exc}", 2)
    return str(graph.resolve())


class _Sensitivity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


@app.command("folder")
def folder_cmd(
    input_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, readable=True, help="Folder of scans (walked recursively; never modified).")],
    out: Annotated[Optional[Path], typer.Option("--out", file_okay=False, help="Output folder (default: <INPUT_DIR>_restored beside the input). Must not be inside INPUT_DIR.")] = None,
    auto_mask: Annotated[bool, typer.Option("--auto-mask", help="Detect scratches, cracks, dust, text and blotches automatically.")] = False,
    masks: Annotated[Optional[Path], typer.Option("--masks", exists=True, file_okay=False, dir_okay=True, help="Folder of user masks: MASK_DIR/<relative path>.png (e.g. box1/a.jpg.png: the layout of `restore masks` and of OUT_DIR/masks/, so either can be edited and given back here, OUT_DIR/masks in place with the same --out; the older box1/a.png is read too when no other scan shares that name); black = keep, any other colour = fill, transparent = keep; a mask filling over half its image is refused as inverted. A missing mask = nothing to fill by hand. A mask edited in OUT_DIR/masks is never overwritten by a rerun.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", exists=True, dir_okay=False, help="ONNX generator with its JSON sidecar (default: the shipped gunet_v3 in export/, as export/gunet_v3_int8.onnx on the CPU, about 1.8x faster there on CPUs with VNNI and 1.4x on AVX2-only ones, with masked PSNR within 0.06 dB, and as the fp32 export/gunet_v3.onnx on CUDA; give export/gunet_v3.onnx to run fp32 on the CPU).")] = None,
    device: Annotated[_Device, typer.Option("--device", help="auto: CUDA when ONNX Runtime can really run there, else CPU; cuda: fail if CUDA is unusable.")] = _Device.auto,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Decode/mask threads: images decoded and masked at once. 1 lowers peak memory on big scans (two 150 MP 16-bit masters: 4.4 GB against 6.3 GB) and takes up to twice as long.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Redo images already restored by an earlier run with the same settings (a person's masks in OUT_DIR/masks and another input folder's results are still never overwritten).")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not render OUT_DIR/report.html.")] = False,
    mask_sensitivity: Annotated[_Sensitivity, typer.Option("--mask-sensitivity", help=SENS_HELP)] = _Sensitivity.medium,
    detector: Annotated[_Detector, typer.Option("--detector", help=DETECTOR_HELP)] = _Detector.learned,
    detector_graph: Annotated[Optional[Path], typer.Option("--detector-graph", exists=True, dir_okay=False, help=GRAPH_HELP)] = None,
    mask_scales: Annotated[_Scales, typer.Option("--mask-scales", help=SCALES_HELP)] = _Scales.auto,
    pyramid: Annotated[bool, typer.Option("--pyramid/--no-pyramid", help="Pre-fill holes 16 px or thicker (blotches, tears) with the model's own half-resolution fill: more structure from further away, about a third more model time on those windows. --no-pyramid uses the classical pre-fill everywhere.")] = True,
    grain: Annotated[float, typer.Option("--grain", min=0.0, max=2.0, help="Re-synthesise film grain inside the filled pixels, matched to the grain around each hole (luma only, seeded by the file's hash): 0 = off, 1 = as much as the surroundings. Hides the soft streaks smooth fills leave on grainy scans, at a small cost in PSNR/SSIM against the true photo (docs/quality.md).")] = RuntimeConfig.grain,
    tone_lock: Annotated[bool, typer.Option("--tone-lock/--no-tone-lock", help="On black-and-white and toned (sepia, cyanotype) scans stored as RGB, keep every filled pixel within the scan's own colour-for-its-brightness spread, so fills add no colour cast. Colour scans and greyscale files are unaffected; the manifest says per image whether it applied.")] = RuntimeConfig.tone_lock,
) -> None:
    """Restore every scan under INPUT_DIR into OUT_DIR: same names, formats, bit depth and metadata.

    Only masked pixels change. Writes OUT_DIR/masks/<file>.png, OUT_DIR/manifest.jsonl and
    OUT_DIR/report.html. Reruns skip finished images (--force redoes them). Exit code: 0 all
    images OK, 1 any image failed, 2 usage error, 130 interrupted by Ctrl-C (143 by SIGTERM).
    """
    import dataclasses
    import sys

    from archive_restore.config import MaskConfig
    from archive_restore.pipeline import OutputError, UsageError, check_folders, default_out_dir, render_report, restore_folder
    from archive_restore.runtime.session import RuntimeUnavailable, check_single_runtime

    if not auto_mask and masks is None:
        fail("give --auto-mask, --masks MASK_DIR, or both (see `restore folder --help`)", 2)
    out_dir = out if out is not None else default_out_dir(input_dir)
    try:
        check_folders(input_dir, out_dir)
    except UsageError as exc:
        fail(str(exc), 2)
    try:
        check_single_runtime()
    except RuntimeUnavailable as exc:
        fail(str(exc), 1)
    runtime = dataclasses.replace(RuntimeConfig(), device=device.value, workers=workers, pyramid=pyramid, grain=grain,
                                  tone_lock=tone_lock)
    mask_cfg = dataclasses.replace(MaskConfig(), sensitivity=mask_sensitivity.value, detector=detector.value,
                                   detector_graph=_detector_graph(detector, detector_graph), scales=mask_scales.value)
    tty = sys.stdout.isatty()
    state: dict = {}
    inflight = InFlight(echo=None if tty else (lambda line: typer.echo(line, err=True)))

    def on_start(summary) -> None:
        typer.echo(f"model {summary.model_name} (id {summary.model_id[:16]}) on {summary.provider}")
        typer.echo(f"{summary.total} images: {summary.input_dir} -> {summary.out_dir}")
        if not summary.total:
            from archive_restore.io import IMAGE_EXTENSIONS

            typer.echo(f"warning: no scans found under {summary.input_dir} (looked for "
                       f"{' '.join(IMAGE_EXTENSIONS)} in any case, in all subfolders)", err=True)
        if tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            prog = Progress(
                TextColumn("[bold]restoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} img/s"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[failed]} failed"),
                _now_column(inflight),
            )
            prog.start()
            state["prog"] = prog
            state["task"] = prog.add_task("restore", total=summary.total, rate="-", failed=0)
            state["t0"] = time.perf_counter()

    def on_progress(rec, summary) -> None:
        inflight.done(rec["input"])
        if "prog" in state:
            rate = summary.done / max(1e-9, time.perf_counter() - state["t0"])
            state["prog"].update(state["task"], completed=summary.done, rate=f"{rate:.2f}", failed=summary.counts.get("failed", 0))
        else:
            extra = f": {rec['error']}" if rec.get("error") else ""
            typer.echo(f"[{summary.done}/{summary.total}] {rec['status']} {shown(rec['input'])} ({rec['timings'].get('total', 0):.2f} s){extra}", err=rec["status"] == "failed")

    inflight.start()
    try:
        summary = restore_folder(
            input_dir, out_dir, auto_mask=auto_mask, masks_dir=masks, mask_cfg=mask_cfg, runtime=runtime,
            force=force, model_path=model, progress=on_progress, on_start=on_start, activity=inflight.update,
        )
    except UsageError as exc:
        fail(str(exc), 2)
    except (RuntimeUnavailable, OutputError) as exc:
        fail(str(exc), 1)
    finally:
        inflight.stop()
        if "prog" in state:
            state["prog"].stop()
    c = summary.counts
    rate = summary.done / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"{summary.done}/{summary.total} images in {summary.seconds:.1f} s ({rate:.2f} img/s): "
        f"{c['restored']} restored, {c['unchanged']} unchanged, {c['skipped']} skipped, {c['failed']} failed; "
        f"provider {summary.provider}, model {summary.model_id[:16]}"
    )
    for rel, err in summary.unreadable_folders:
        typer.echo(f"error: folder {shown(rel)}: {err}; its scans were not seen", err=True)
    for rel, err in summary.failed[:20]:
        typer.echo(f"failed: {shown(rel)}: {err}", err=True)
    if len(summary.failed) > 20:
        typer.echo(f"... and {len(summary.failed) - 20} more failures (see {summary.manifest})", err=True)
    if summary.ignored:
        _note_ignored(summary.ignored)

    def few(names: list[str]) -> str:
        return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")

    if summary.unused_masks:
        n = len(summary.unused_masks)
        typer.echo(f"warning: {n} file{'s' if n > 1 else ''} in --masks {masks} match{'es' if n == 1 else ''} no scan and "
                   f"{'were' if n > 1 else 'was'} not used ({few(summary.unused_masks)}); a scan's mask is <its path>.png, "
                   f"e.g. box1/a.jpg -> box1/a.jpg.png", err=True)
    if summary.edited_masks:
        n, own = len(summary.edited_masks), summary.out_dir / "masks"
        typer.echo(f"warning: {n} mask{'s' if n > 1 else ''} in {own} {'were' if n > 1 else 'was'} edited after the run "
                   f"wrote {'them' if n > 1 else 'it'} and not used ({few(summary.edited_masks)}); to use the edits: "
                   f"restore folder {summary.input_dir} --out {summary.out_dir} --masks {own}", err=True)
    if not no_report and summary.done:
        if summary.done >= 200:  # previews take a while on a big run: say what is happening
            typer.echo(f"building the report ({summary.done} images; previews are cached for the next time)...", err=True)
        try:
            report = render_report(summary.out_dir)
        except Exception as exc:  # the report must never hide the run's outcome
            typer.echo(f"warning: report not rendered: {' '.join(str(exc).split())}", err=True)
        else:
            typer.echo(f"report: {report}")
    typer.echo(f"manifest: {summary.manifest}")
    if summary.interrupted:
        typer.echo("interrupted: finished in-flight images; rerun the same command to continue", err=True)
        raise typer.Exit(128 + (summary.stopped_by or 2))  # 130 for Ctrl-C, 143 for SIGTERM
    raise typer.Exit(1 if c["failed"] or summary.unreadable_folders else 0)


@app.command("export-onnx")
def export_onnx_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Generator checkpoint (.pth) written by `restore train`.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="ONNX file to write \\[default: export/<checkpoint stem>.onnx, <stem>_int8.onnx or <stem>_fp16.onnx]; an existing file is replaced only with --force.")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store weights and compute in float16 (GPU use; looser parity bound).")] = False,
    opset: Annotated[int, typer.Option("--opset", min=13, max=23, help="ONNX opset version.")] = 17,
    int8: Annotated[bool, typer.Option("--int8", help="Quantise to int8 for the CPU (about twice as fast there); needs --calib.")] = False,
    calib: Annotated[Optional[Path], typer.Option("--calib", exists=True, file_okay=False, help="With --int8: clean photos (192 px or larger) whose damaged crops set the activation ranges and check the result, e.g. sample_archive.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing ONNX file (and its sidecar) at the output path.")] = False,
) -> None:
    """Export a checkpoint to one self-contained, verified ONNX graph plus a JSON sidecar.

    Runs the full onnx.checker, then compares ONNX Runtime with PyTorch on several
    random shapes (odd ones included) and refuses the export if they disagree.

    --int8: the verified graph is then quantised for the CPU and compared with
    PyTorch on held-out damaged crops of the --calib photos; it is refused below
    35 dB masked PSNR.
    """
    from rich.console import Console
    from rich.table import Table

    from archive_restore.inpaint.checkpoint import CheckpointError
    from archive_restore.inpaint.export import ExportError, export_checkpoint

    if int8 and fp16:
        fail("--int8 and --fp16 exclude each other", 2)
    if int8 and calib is None:
        fail("--int8 needs --calib DIR (photos whose damaged crops calibrate and check it)", 2)
    if calib is not None and not int8:
        fail("--calib is used only with --int8", 2)
    suffix = "_int8" if int8 else "_fp16" if fp16 else ""
    out_path = out if out is not None else Path("export") / f"{checkpoint.stem}{suffix}.onnx"
    if out_path.is_dir():
        fail(f"--out {out_path} is a folder; give the .onnx file to write", 2)
    if out_path.exists() and not force:
        fail(f"{out_path} exists; add --force to replace it (and its sidecar)", 2)
    try:
        result = export_checkpoint(checkpoint, out_path, fp16=fp16, opset=opset, int8=int8, calib_dir=calib)
    except (CheckpointError, ExportError) as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. no photos under --calib, an unwritable --out
        fail(f"{type(exc).__name__}: {exc}")
    table = Table(title=f"exported {result.onnx_path}")
    table.add_column("field")
    table.add_column("value")
    for key, value in result.summary_rows():
        table.add_row(key, value)
    Console().print(table)


@app.command("train")
def train_cmd(
    data_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder of clean photos (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, samples/, metrics.jsonl.")],
    arch: Annotated[str, typer.Option("--arch", help="Generator: gated_unet (default) or context_encoder (baseline).")] = "gated_unet",
    widths: Annotated[Optional[str], typer.Option("--widths", help="gated_unet channels at full, 1/2, 1/4 and 1/8 resolution, comma-separated (default 16,32,64,128; e.g. 24,48,96,192 for a wider net that still runs a 512² window in about 0.22 s in int8 on 2 CPU cores).")] = None,
    dilations: Annotated[Optional[str], typer.Option("--dilations", help="gated_unet: dilation of each residual block at 1/8 resolution, comma-separated (default 2,4,8,1).")] = None,
    size: Annotated[int, typer.Option("--size", min=32, help="Training crop side in pixels.")] = 128,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Crops per step.")] = 16,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Train until this step (total): default 20000 for a new run; with --resume, the run's own end unless given (larger: the run goes on, its cosine stretched).")] = None,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pth: its weights, optimiser states, RNG, settings and --val folder (unless --val is given) and end step (unless --steps is given).")] = False,
    sample_every: Annotated[int, typer.Option("--sample-every", min=1, help="Write samples/<step>.png every N steps.")] = 500,
    ckpt_every: Annotated[int, typer.Option("--ckpt-every", min=1, help="Checkpoint every N steps.")] = 250,
    val_dir: Annotated[Optional[Path], typer.Option("--val", exists=True, file_okay=False, help="Clean photos for validation PSNR (never trained on).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, masks and initialisation.")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Data-loading processes.")] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate of both networks (at step 0 when --lr-decay cosine).")] = 2e-4,
    lr_decay: Annotated[str, typer.Option("--lr-decay", help="none (constant --lr, as gunet_v2 trained) or cosine: half a cosine from --lr at step 0 to --lr-final x --lr at --steps.")] = "none",
    lr_final: Annotated[float, typer.Option("--lr-final", min=0.0, max=1.0, help="With --lr-decay cosine: the fraction of --lr reached at --steps.")] = 0.05,
    adv_start: Annotated[int, typer.Option("--adv-start", min=0, help="Step at which the adversarial loss starts.")] = 1000,
    w_adv: Annotated[float, typer.Option("--w-adv", min=0.0, help="Weight of the adversarial (hinge) loss; 0 turns the discriminator off.")] = 0.02,
    w_tex: Annotated[float, typer.Option("--w-tex", min=0.0, help="Weight of the texture loss (local high-frequency amplitude of the fill vs the original; aims at texture ratio 1).")] = 0.0,
    no_bf16: Annotated[bool, typer.Option("--no-bf16", help="CPU: train in float32 even where the CPU computes bf16 natively (AVX512_BF16, AMX, Arm BF16; bf16 autocast is used only there: PyTorch emulates it elsewhere, many times slower).")] = False,
    init_from: Annotated[Optional[Path], typer.Option("--init-from", exists=True, dir_okay=False, help="Start a new run from another run's last.pth (G and D weights; fresh optimisers), e.g. to fine-tune at a lower --lr, or from a generator checkpoint such as models/gunet_v3.pth (G only; D starts fresh).")] = None,
    max_minutes: Annotated[Optional[float], typer.Option("--max-minutes", min=0.1, help="Stop and save after this much wall time (leased machines); continue later with --resume.")] = None,
) -> None:
    """Train an inpainting generator with a PatchGAN discriminator; resumable and seeded.

    Writes RUN_DIR/ckpt_<step>.pth, last.pth, generator.pth (export this one),
    samples/<step>.png and metrics.jsonl. Ctrl-C or SIGTERM saves last.pth before exiting.
    """
    import signal
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from archive_restore.config import TrainConfig
    from archive_restore.inpaint.checkpoint import CheckpointError
    from archive_restore.inpaint.model import default_config, sized_config
    from archive_restore.inpaint.train import Trainer

    try:
        model_cfg = sized_config(default_config(arch), widths, dilations)
    except ValueError as exc:
        fail(str(exc), 2)
    cfg = TrainConfig(size=size, batch=batch, steps=TrainConfig.steps if steps is None else steps, sample_every=sample_every, ckpt_every=ckpt_every,
                      val_every=sample_every, seed=seed, workers=workers, lr_g=lr, lr_d=lr, adv_start=adv_start,
                      w_adv=w_adv, w_tex=w_tex, bf16=not no_bf16, lr_decay=lr_decay, lr_final=lr_final)
    if lr_decay not in ("none", "cosine"):
        fail(f"--lr-decay must be none or cosine, not {lr_decay!r}", 2)
    existed = out.exists()
    try:
        trainer = Trainer(data_dir, out, model_cfg, cfg, device=device, resume=resume, val_dir=val_dir, init_from=init_from,
                          keep_steps=steps is None)
    except (CheckpointError, RuntimeError, OSError, ValueError) as exc:
        if not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # a run that never started leaves no empty folder behind
        # bad --device, --init-from with --resume: usage (CheckpointError is a ValueError too)
        fail(str(exc), 2 if type(exc) is ValueError else 1)
    typer.echo(f"training {trainer.model_cfg.arch} on {trainer.dev} from step {trainer.step} to {trainer.cfg.steps}", err=True)
    columns = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn()]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("train", total=trainer.cfg.steps, completed=trainer.step, info="")
        last_print = [0.0]

        def on_step(step: int, logs: dict[str, float], rate: float) -> None:
            info = f"g {logs['g']:.3f} hole_l1 {logs['hole_l1']:.3f}" + (f" d {logs['d']:.3f}" if "d" in logs else "") + f" {rate:.2f} it/s"
            progress.update(task, completed=step, info=info)
            if not progress.console.is_terminal and time.monotonic() - last_print[0] > 30:
                last_print[0] = time.monotonic()
                typer.echo(f"step {step}/{trainer.cfg.steps} {info}", err=True)

        def on_term(signum, frame):  # `kill` saves like Ctrl-C (background jobs ignore SIGINT)
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, on_term)
        try:
            result = trainer.run(on_step=on_step, max_seconds=None if max_minutes is None else max_minutes * 60)
        except KeyboardInterrupt:
            if (out / "last.pth").is_file():
                fail(f"interrupted at step {trainer.step}; saved {out / 'last.pth'} (resume with --resume)", 130)
            fail(f"interrupted at step {trainer.step}, before the first checkpoint: nothing saved, start again", 130)
        except (RuntimeError, OSError) as exc:  # e.g. a folder of unreadable photos, a full disk
            fail(f"training stopped at step {trainer.step}: {exc}")
    typer.echo(f"done: step {result['step']}, generator at {out / 'generator.pth'}")
@app.command("masks")
def masks_cmd(
    input_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, help="Folder of scans (searched recursively).")],
    out: Annotated[Optional[Path], typer.Option("--out", help="Mask folder \\[default: <INPUT_DIR>_masks beside the input].")] = None,
    mask_sensitivity: Annotated[_Sensitivity, typer.Option("--mask-sensitivity", help=SENS_HELP)] = _Sensitivity.medium,
    detector: Annotated[_Detector, typer.Option("--detector", help=DETECTOR_HELP)] = _Detector.learned,
    detector_graph: Annotated[Optional[Path], typer.Option("--detector-graph", exists=True, dir_okay=False, help=GRAPH_HELP)] = None,
    mask_scales: Annotated[_Scales, typer.Option("--mask-scales", help=SCALES_HELP)] = _Scales.auto,
    force: Annotated[bool, typer.Option("--force", help="Replace masks already in OUT (by default they are kept: they may hold your edits, and a rerun after adding scans only adds theirs).")] = False,
) -> None:
    """Write automatic damage masks only (OUT/<relative path>.png, e.g. box1/a.jpg.png; 255 = fill) for review and editing.

    Edit them if needed (white or any colour = fill, black = keep; strokes on a transparent
    layer fill where painted), then run `restore folder INPUT_DIR --masks OUT`. Masks already
    in OUT are kept unless --force.
    """
    from rich.console import Console

    from archive_restore.config import MaskConfig
    from archive_restore.masks.batch import write_masks

    src = input_dir.resolve()
    dst = (out if out is not None else src.parent / f"{src.name}_masks").resolve()
    if dst == src or src in dst.parents:
        fail(f"--out {dst} is inside the input folder {src}; choose a folder outside it", 2)
    from archive_restore.pipeline import UsageError, check_folders

    try:  # the same folders under other paths (bind mounts, a share mounted twice)
        check_folders(src, dst)
    except UsageError as exc:
        fail(str(exc), 2)
    console = Console(stderr=True)
    failed = done = kept = 0
    ignored: collections.Counter = collections.Counter()
    cfg = MaskConfig(sensitivity=mask_sensitivity.value, detector=detector.value, detector_graph=_detector_graph(detector, detector_graph),
                     scales=mask_scales.value)
    try:  # fail now, in one line, rather than after detecting every scan
        dst.mkdir(parents=True, exist_ok=True)
        probe = dst / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        fail(f"cannot write to the mask folder {dst}: {exc.strerror or exc}", 2)
    inflight = InFlight(echo=None if console.is_terminal else (lambda line: typer.echo(line, err=True)))
    state: dict = {}

    def on_start(total: int) -> None:
        if console.is_terminal and total:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            prog = Progress(TextColumn("[bold]masking"), BarColumn(), MofNCompleteColumn(), TextColumn("ETA"),
                            TimeRemainingColumn(), _now_column(inflight), console=console)
            prog.start()
            state["prog"], state["task"] = prog, prog.add_task("masks", total=total)

    inflight.start()
    try:
        for job in write_masks(src, dst, cfg, force=force, ignored=ignored, on_start=on_start, activity=inflight.update):
            inflight.done(job.rel)
            if "prog" in state:
                state["prog"].update(state["task"], advance=1)
            if job.error:
                failed += 1
                if "prog" in state:  # above the live bar, unwrapped
                    console.print(f"error: {shown(job.rel)}: {job.error}", highlight=False, markup=False, soft_wrap=True)
                else:
                    typer.echo(f"error: {shown(job.rel)}: {job.error}", err=True)
            elif job.kept:
                kept += 1
            else:
                done += 1
                console.print(f"{shown(job.rel)}: {job.flagged * 100:.2f}% flagged {job.kind_pixels}", highlight=False, markup=False,
                              soft_wrap=True)  # one line per mask in a log, however long
    finally:
        inflight.stop()
        if "prog" in state:
            state["prog"].stop()
    if not done and not failed and not kept:
        from archive_restore.io import IMAGE_EXTENSIONS

        typer.echo(f"warning: no scans found under {src} (looked for {' '.join(IMAGE_EXTENSIONS)} in any case, "
                   "in all subfolders)", err=True)
    if ignored:
        _note_ignored(dict(ignored))
    typer.echo(f"{done} masks written to {dst}" + (f", {kept} already there kept (--force replaces them)" if kept else "")
               + (f", {failed} failed" if failed else ""))
    if failed:
        raise typer.Exit(1)


@app.command("evaluate")
def evaluate_cmd(
    clean_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, help="Folder of clean photos.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for evaluation.json.")] = Path("evaluation"),
    kinds: Annotated[Optional[list[str]], typer.Option("--kinds", help="scratches, cracks, dust, text, blotches or centre_square (restoration only); repeat; default all.")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Use only the first N photos.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", help="ONNX model \\[default: the shipped model as the CPU runs it, export/gunet_v3_int8.onnx; --model export/gunet_v3.onnx measures fp32].")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the synthetic damage.")] = 0,
    mask_sensitivity: Annotated[_Sensitivity, typer.Option("--mask-sensitivity", help=SENS_HELP)] = _Sensitivity.medium,
    detector: Annotated[_Detector, typer.Option("--detector", help=DETECTOR_HELP)] = _Detector.learned,
    detector_graph: Annotated[Optional[Path], typer.Option("--detector-graph", exists=True, dir_okay=False, help=GRAPH_HELP)] = None,
    mask_scales: Annotated[_Scales, typer.Option("--mask-scales", help=SCALES_HELP)] = _Scales.auto,
    sheet: Annotated[Optional[Path], typer.Option("--sheet", help="Write a contact sheet PNG (damaged | GT mask, red = false alarm | TELEA | model | original).")] = None,
    pyramid: Annotated[bool, typer.Option("--pyramid/--no-pyramid", help="The model column with or without the pyramid pre-fill of thick holes (as in `restore folder`).")] = True,
    grain: Annotated[float, typer.Option("--grain", min=0.0, max=2.0, help="Also measure the model's fill with grain re-synthesised at this strength (a model+grain column, used end to end), as `restore folder --grain` does.")] = RuntimeConfig.grain,
    detection_only: Annotated[bool, typer.Option("--detection-only", help="Measure the auto masks only: no fills, no end-to-end PSNR, no model loaded (minutes instead of an hour on big --scan-scale runs).")] = False,
    scan_scale: Annotated[int, typer.Option("--scan-scale", min=1, max=8, help="Measure high-resolution scans: each damaged photo, its ground truth and the clean photo are enlarged this many times (bicubic) before detection and restoration, so the same damage is that many times wider in pixels, and the tolerance grows to 2 px times this. The fills get the enlarged ground truth grown by this many px (the enlarged damage's soft edge reaches past it) and are measured inside that hole. 1 = the photos as they are.")] = 1,
) -> None:
    """Damage clean photos synthetically; report detection, restoration and speed per kind."""
    import json

    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from archive_restore.config import MaskConfig
    from archive_restore.damage import KINDS
    from archive_restore.evaluate import RESTORE_ONLY_KINDS, load_model, run_evaluation
    from archive_restore.masks.batch import list_images, read_rgb

    allowed = KINDS + RESTORE_ONLY_KINDS
    chosen = tuple(dict.fromkeys(kinds)) if kinds else allowed  # a kind named twice is measured once
    bad = [k for k in chosen if k not in allowed]
    if bad:
        fail(f"unknown kinds {bad}; choose from {list(allowed)}", 2)
    if detection_only and (sheet or model is not None or grain > 0):
        fail("--detection-only makes no fills: leave out --sheet, --model and --grain", 2)
    if detection_only and not [k for k in chosen if k not in RESTORE_ONLY_KINDS]:
        fail(f"--detection-only measures masks, and {', '.join(chosen)} is restoration only", 2)
    if detection_only and set(chosen) & set(RESTORE_ONLY_KINDS):
        typer.echo(f"note: --detection-only leaves out {', '.join(k for k in chosen if k in RESTORE_ONLY_KINDS)} "
                   "(restoration only)", err=True)
    mask_cfg = MaskConfig(sensitivity=mask_sensitivity.value, detector=detector.value, detector_graph=_detector_graph(detector, detector_graph),
                     scales=mask_scales.value)
    files = list_images(clean_dir)[: limit or None]
    if not files:
        fail(f"no images in {clean_dir}")
    if model is not None and not model.is_file():
        fail(f"--model {model}: no such file", 2)
    images, unreadable = [], 0
    for f in files:
        try:
            images.append((f.name, read_rgb(f)))
        except Exception as exc:
            unreadable += 1
            typer.echo(f"error: {f}: {type(exc).__name__}: {exc}", err=True)
    if not images:
        fail(f"none of the {len(files)} images in {clean_dir} could be read")
    sess, why = (None, "--detection-only") if detection_only else load_model(str(model) if model else None, pyramid=pyramid)
    console = Console()
    if sess is None and not detection_only:
        if model is not None:  # asked for by name: no silent baseline-only run
            fail(f"cannot load --model {model}: {why}")
        console.print(f"model column unavailable: {why}")
    report, rows = run_evaluation(images, chosen, mask_cfg, sess, seed, 3 if sheet else 0, grain, scan_scale, not detection_only)
    report["model"] = {"id": getattr(sess, "model_id", None), "provider": getattr(sess, "provider", None), "unavailable": why,
                       "pyramid": sess.pyramid if sess is not None else None}
    scanned = f", scanned at {scan_scale}x" if scan_scale > 1 else ""
    t = Table(title=f"detection ({len(images)} photos{scanned}, {detector.value} detector, {mask_sensitivity.value}, "
                    f"scales {mask_scales.value}, {report['tolerance_px']} px tolerance)")
    for col in ("kind", "precision", "recall", "F1", "IoU", "e2e PSNR", "damaged PSNR"):
        t.add_column(col)
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for k, r in report["kinds"].items():
        d = r["detection"]
        if d is None:  # restoration-only kind (centre_square)
            continue
        t.add_row(k, f(d["precision"]), f(d["recall"]), f(d["f1"]), f(d["iou"]), f(r["end_to_end"]["psnr"]), f(r["end_to_end"]["damaged_psnr"]))
    console.print(t)
    if detection_only:
        console.print("restoration: not measured (--detection-only)")
    else:
        t2 = Table(title="restoration with ground-truth masks (inside the mask)")
        for col in ("kind", "method", "PSNR", "SSIM", "texture ratio"):
            t2.add_column(col)
        for k, r in report["kinds"].items():
            for m, v in r["restoration_gt_mask"].items():
                t2.add_row(k, m, f(v["psnr"]), f(v["ssim"]), f(v["texture"]))
        console.print(t2)
        if report["fsr_fast"] != "measured":
            console.print(f"FSR_FAST {report['fsr_fast']} (install opencv-contrib-python-headless in place of opencv-python-headless to add it)")
    cf = report["clean_flagged"]
    console.print(f"undamaged photos flagged: mean {cf['mean'] * 100:.3f}%, max {cf['max'] * 100:.3f}%, over 1%: {cf['over_1pct']}")
    console.print("seconds per megapixel: " + ", ".join(f"{k} {v:.3f}" for k, v in report["seconds_per_mp"].items()))
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    console.print(f"wrote {out / 'evaluation.json'}")
    if sheet and rows:
        from PIL import Image

        w = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 4), (0, w - r.shape[1]), (0, 0))) for r in rows]
        sheet.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.concatenate(rows, 0)).save(sheet)
        console.print(f"wrote {sheet}")
    if unreadable:
        fail(f"{unreadable} of {len(files)} images could not be read (left out of the figures above)")


@app.command("report")
def report_cmd(
    out_dir: Annotated[Path, typer.Argument(help="Output folder of `restore folder` (holds manifest.jsonl).", file_okay=False, dir_okay=True)],
) -> None:
    """Rebuild OUT_DIR/report.html and its previews from OUT_DIR/manifest.jsonl.

    Useful after an interrupted run or for a merged set of runs. Previews are regenerated
    only where the files changed, so rebuilding a large report is quick.
    """
    import time

    from archive_restore.report import ManifestError, render

    if not (out_dir / "manifest.jsonl").is_file():
        fail(f"no manifest.jsonl in {out_dir}: run `restore folder` first")
    start = time.perf_counter()
    try:
        path = render(out_dir)
    except (ManifestError, OSError) as exc:
        fail(str(exc))
    typer.echo(f"wrote {path} in {time.perf_counter() - start:.1f} s")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
