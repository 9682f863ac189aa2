"""The ``restore`` command line: parses arguments, calls the package, prints. No logic here.

Heavy imports (torch, onnxruntime, cv2) happen inside each command so ``restore --help``
starts instantly and ``restore folder`` never imports torch.
"""

from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

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


class _Sensitivity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"


@app.command("folder")
def folder_cmd(
    input_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, readable=True, help="Folder of scans (walked recursively; never modified).")],
    out: Annotated[Optional[Path], typer.Option("--out", file_okay=False, help="Output folder (default: <INPUT_DIR>_restored beside the input). Must not be inside INPUT_DIR.")] = None,
    auto_mask: Annotated[bool, typer.Option("--auto-mask", help="Detect scratches, cracks, dust, text and blotches automatically.")] = False,
    masks: Annotated[Optional[Path], typer.Option("--masks", exists=True, file_okay=False, dir_okay=True, help="Folder of user masks: MASK_DIR/<relative path, extension replaced by .png>; nonzero = fill. A missing mask = nothing to fill by hand.")] = None,
    model: Annotated[Optional[Path], typer.Option("--model", exists=True, dir_okay=False, help="ONNX generator with its JSON sidecar (default: the shipped model in export/).")] = None,
    device: Annotated[_Device, typer.Option("--device", help="auto: CUDA when ONNX Runtime can really run there, else CPU; cuda: fail if CUDA is unusable.")] = _Device.auto,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Decode/mask threads.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Redo images already restored by an earlier run with the same settings.")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="Do not render OUT_DIR/report.html.")] = False,
    mask_sensitivity: Annotated[_Sensitivity, typer.Option("--mask-sensitivity", help="Auto-mask sensitivity.")] = _Sensitivity.medium,
) -> None:
    """Restore every scan under INPUT_DIR into OUT_DIR: same names, formats, bit depth and metadata.

    Only masked pixels change. Writes OUT_DIR/masks/<file>.png, OUT_DIR/manifest.jsonl and
    OUT_DIR/report.html. Reruns skip finished images (--force redoes them). Exit code: 0 all
    images OK, 1 any image failed, 2 usage error, 130 interrupted by Ctrl-C.
    """
    import dataclasses
    import sys

    from archive_restore.config import MaskConfig, RuntimeConfig
    from archive_restore.pipeline import UsageError, check_folders, default_out_dir, render_report, restore_folder
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
    runtime = dataclasses.replace(RuntimeConfig(), device=device.value, workers=workers)
    mask_cfg = dataclasses.replace(MaskConfig(), sensitivity=mask_sensitivity.value)
    tty = sys.stdout.isatty()
    state: dict = {}

    def on_start(summary) -> None:
        typer.echo(f"model {summary.model_name} (id {summary.model_id[:16]}) on {summary.provider}")
        typer.echo(f"{summary.total} images: {summary.input_dir} -> {summary.out_dir}")
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
            )
            prog.start()
            state["prog"] = prog
            state["task"] = prog.add_task("restore", total=summary.total, rate="-", failed=0)
            state["t0"] = time.perf_counter()

    def on_progress(rec, summary) -> None:
        if "prog" in state:
            rate = summary.done / max(1e-9, time.perf_counter() - state["t0"])
            state["prog"].update(state["task"], completed=summary.done, rate=f"{rate:.2f}", failed=summary.counts.get("failed", 0))
        else:
            extra = f": {rec['error']}" if rec.get("error") else ""
            typer.echo(f"[{summary.done}/{summary.total}] {rec['status']} {rec['input']} ({rec['timings'].get('total', 0):.2f} s){extra}", err=rec["status"] == "failed")

    try:
        summary = restore_folder(
            input_dir, out_dir, auto_mask=auto_mask, masks_dir=masks, mask_cfg=mask_cfg, runtime=runtime,
            force=force, model_path=model, progress=on_progress, on_start=on_start,
        )
    except UsageError as exc:
        fail(str(exc), 2)
    except RuntimeUnavailable as exc:
        fail(str(exc), 1)
    finally:
        if "prog" in state:
            state["prog"].stop()
    c = summary.counts
    rate = summary.done / summary.seconds if summary.seconds else 0.0
    typer.echo(
        f"{summary.done}/{summary.total} images in {summary.seconds:.1f} s ({rate:.2f} img/s): "
        f"{c['restored']} restored, {c['unchanged']} unchanged, {c['skipped']} skipped, {c['failed']} failed; "
        f"provider {summary.provider}, model {summary.model_id[:16]}"
    )
    for rel, err in summary.failed[:20]:
        typer.echo(f"failed: {rel}: {err}", err=True)
    if len(summary.failed) > 20:
        typer.echo(f"... and {len(summary.failed) - 20} more failures (see {summary.manifest})", err=True)
    if not no_report and summary.done:
        try:
            report = render_report(summary.out_dir)
        except Exception as exc:  # the report must never hide the run's outcome
            typer.echo(f"warning: report not rendered: {' '.join(str(exc).split())}", err=True)
        else:
            if report is None:
                typer.echo("note: report not rendered (archive_restore.report.render is not available yet)", err=True)
            else:
                typer.echo(f"report: {report}")
    typer.echo(f"manifest: {summary.manifest}")
    if summary.interrupted:
        typer.echo("interrupted: finished in-flight images; rerun the same command to continue", err=True)
        raise typer.Exit(130)
    raise typer.Exit(1 if c["failed"] else 0)


@app.command("export-onnx")
def export_onnx_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Generator checkpoint (.pth) written by `restore train`.")],
    out: Annotated[Optional[Path], typer.Option("--out", help="ONNX file to write [default: export/<checkpoint stem>.onnx].")] = None,
    fp16: Annotated[bool, typer.Option("--fp16", help="Store weights and compute in float16 (GPU use; looser parity bound).")] = False,
    opset: Annotated[int, typer.Option("--opset", min=13, max=23, help="ONNX opset version.")] = 17,
) -> None:
    """Export a checkpoint to one self-contained, verified ONNX graph plus a JSON sidecar.

    Runs the full onnx.checker, then compares ONNX Runtime with PyTorch on several
    random shapes (odd ones included) and refuses the export if they disagree.
    """
    from rich.console import Console
    from rich.table import Table

    from archive_restore.inpaint.checkpoint import CheckpointError
    from archive_restore.inpaint.export import ExportError, export_checkpoint

    out_path = out if out is not None else Path("export") / f"{checkpoint.stem}.onnx"
    try:
        result = export_checkpoint(checkpoint, out_path, fp16=fp16, opset=opset)
    except (CheckpointError, ExportError) as exc:
        fail(str(exc))
    table = Table(title=f"exported {result.onnx_path}")
    table.add_column("field")
    table.add_column("value")
    for key, value in result.summary_rows():
        table.add_row(key, value)
    Console().print(table)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
