"""The ``restore`` command line: parses arguments, calls the package, prints. No logic here.

Heavy imports (torch, onnxruntime, cv2) happen inside each command so ``restore --help``
starts instantly and ``restore folder`` never imports torch.
"""

from __future__ import annotations

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
