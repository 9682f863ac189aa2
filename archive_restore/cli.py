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


@app.command("train")
def train_cmd(
    data_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Folder of clean photos (searched recursively).")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: checkpoints, samples/, metrics.jsonl.")],
    arch: Annotated[str, typer.Option("--arch", help="Generator: gated_unet (default) or context_encoder (baseline).")] = "gated_unet",
    size: Annotated[int, typer.Option("--size", min=32, help="Training crop side in pixels.")] = 128,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Crops per step.")] = 16,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Train until this step (total, also when resuming).")] = 20000,
    device: Annotated[str, typer.Option("--device", help="auto, cpu or cuda.")] = "auto",
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in --out from last.pth, exactly.")] = False,
    sample_every: Annotated[int, typer.Option("--sample-every", min=1, help="Write samples/<step>.png every N steps.")] = 500,
    ckpt_every: Annotated[int, typer.Option("--ckpt-every", min=1, help="Checkpoint every N steps.")] = 250,
    val_dir: Annotated[Optional[Path], typer.Option("--val", exists=True, file_okay=False, help="Clean photos for validation PSNR (never trained on).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for data, masks and initialisation.")] = 0,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Data-loading processes.")] = 1,
    lr: Annotated[float, typer.Option("--lr", help="Adam learning rate of both networks.")] = 2e-4,
    adv_start: Annotated[int, typer.Option("--adv-start", min=0, help="Step at which the adversarial loss starts.")] = 1000,
    no_bf16: Annotated[bool, typer.Option("--no-bf16", help="CPU: train in float32 instead of bf16 autocast.")] = False,
) -> None:
    """Train an inpainting generator with a PatchGAN discriminator; resumable and seeded.

    Writes RUN_DIR/ckpt_<step>.pth, last.pth, generator.pth (export this one),
    samples/<step>.png and metrics.jsonl. Ctrl-C saves last.pth before exiting.
    """
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from archive_restore.config import TrainConfig
    from archive_restore.inpaint.checkpoint import CheckpointError
    from archive_restore.inpaint.model import default_config
    from archive_restore.inpaint.train import Trainer

    try:
        model_cfg = default_config(arch)
    except ValueError as exc:
        fail(str(exc), 2)
    cfg = TrainConfig(size=size, batch=batch, steps=steps, sample_every=sample_every, ckpt_every=ckpt_every,
                      val_every=sample_every, seed=seed, workers=workers, lr_g=lr, lr_d=lr, adv_start=adv_start,
                      bf16=not no_bf16)
    try:
        trainer = Trainer(data_dir, out, model_cfg, cfg, device=device, resume=resume, val_dir=val_dir)
    except (CheckpointError, FileNotFoundError, RuntimeError, ValueError) as exc:
        fail(str(exc))
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

        try:
            result = trainer.run(on_step=on_step)
        except KeyboardInterrupt:
            fail(f"interrupted at step {trainer.step}; saved {out / 'last.pth'} (resume with --resume)", 130)
    typer.echo(f"done: step {result['step']}, generator at {out / 'generator.pth'}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
