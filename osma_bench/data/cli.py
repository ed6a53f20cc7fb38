"""Commands of the data layer: ``build-data pose|custom|mini``, ``verify-data``, ``audit-data``."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from osma_bench.errors import Interrupted, OsmaError

build_data_app = typer.Typer(
    help="Build a dataset into the HDF5 store (POSE protocol, a custom manifest, or the embedded mini).",
    no_args_is_help=True,
)


def _command_line() -> str:
    return "osma-bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _parse_splits(value: str) -> list[int]:
    try:
        splits = sorted({int(s) for s in value.split(",") if s.strip()})
    except ValueError:
        raise OsmaError(f"--splits {value!r}: use numbers separated by commas, e.g. 1,2,3") from None
    if not splits or min(splits) < 1:
        raise OsmaError(f"--splits {value!r}: split numbers start at 1")
    return splits


def _config(size: int, normalize: str | None, allow_upscale: bool):
    from osma_bench.data.preprocess import PreprocessConfig, parse_normalize

    if size < 1:
        raise OsmaError(f"--size must be positive, got {size}")
    try:
        return PreprocessConfig(size=size, normalize=parse_normalize(normalize), allow_upscale=allow_upscale)
    except ValueError as exc:
        raise OsmaError(str(exc)) from None


@contextmanager
def _interrupt_means_nothing_written(out: Path) -> Iterator[None]:
    """Ctrl-C while the inputs are read and planned: one line, exit status 130."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"build of {out} interrupted before anything was written; rerun the same command") from None


def _run(plan, out: Path, cfg, workers: int, skip_bad: bool, resume: bool, overwrite: bool) -> None:
    from rich.console import Console

    if workers < 1:
        raise OsmaError(f"--workers must be at least 1, got {workers}")
    console = Console(stderr=True)
    with _interrupt_means_nothing_written(out):  # once writing has started, run_build says what is kept
        root = _build(plan, out, cfg, workers, skip_bad, resume, overwrite, console)
    _summary(root)


def _build(plan, out: Path, cfg, workers: int, skip_bad: bool, resume: bool, overwrite: bool, console) -> Path:
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from osma_bench.data.build import run_build

    # No refresh thread: a Ctrl-C must reach the main thread, also while the decoding processes start
    # (osma_bench.data.build._sigint_deferred); the bar is redrawn from the progress callback instead.
    with Progress(TextColumn("building {task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=True, auto_refresh=False) as bar:
        task = bar.add_task(escape(out.name), total=len(plan.items))
        last = [0.0]

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done)
            if time.monotonic() - last[0] >= 0.1 or done == total:
                last[0] = time.monotonic()
                bar.refresh()

        return run_build(plan, out, cfg, workers=workers, skip_bad=skip_bad, resume=resume,
                         overwrite=overwrite, progress=progress)


def _summary(root: Path) -> None:
    from osma_bench.data.audit import audit_dataset, format_audit
    from osma_bench.data.reader import load_card

    card = load_card(root)
    print(f"wrote {root}: {card['num_images']} images, {len(card['classes'])} classes, "
          f"splits {', '.join(card['splits'])}; content sha256 {card['content_sha256'][:16]}")
    if card["skipped"]:
        print(f"skipped {len(card['skipped'])} input(s); see {root / 'skipped.csv'}")
    report = audit_dataset(root)
    if report.flags:
        print(format_audit(report, flags_only=True))


@build_data_app.command("pose")
def build_pose(
    root: Path = typer.Option(..., "--root", help="Folder that holds the POSE image tree (dataset/OSMA/...)."),
    annotations: Path = typer.Option(..., "--annotations", help="The POSE dataset/ folder with split*/annotations."),
    splits: str = typer.Option("1,2,3,4,5", "--splits", help="Protocol splits to include, e.g. 1,2,3."),
    size: int = typer.Option(128, "--size", help="Stored image side (POSE: 128)."),
    out: Path = typer.Option(Path("datasets/osma"), "--out", help="Dataset folder to create."),
    workers: int = typer.Option(1, "--workers", help="Decoding processes."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Build without bad inputs; record them."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted build of --out."),
    normalize: str = typer.Option(None, "--normalize", help="Re-encode every image first: jpeg:Q or png."),
    allow_upscale: bool = typer.Option(True, "--allow-upscale/--no-upscale",
                                       help="Enlarge images smaller than --size, as the POSE loader does."),
    protocol: Path = typer.Option(None, "--protocol", help="Protocol file (default: datasets/pose.yaml)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset at --out."),
) -> None:
    """Build the POSE OSMA protocol (one image store for all splits) from a user's annotation files."""
    from osma_bench.data.pose import load_protocol, pose_plan

    cfg = _config(size, normalize, allow_upscale)
    with _interrupt_means_nothing_written(out):
        plan = pose_plan(root, annotations, _parse_splits(splits), load_protocol(protocol), name=out.name,
                         command=_command_line())
    _run(plan, out, cfg, workers, skip_bad, resume, overwrite)


@build_data_app.command("custom")
def build_custom(
    manifest: Path = typer.Option(..., "--manifest", help="YAML manifest (see datasets/example_manifest.yaml)."),
    out: Path = typer.Option(None, "--out", help="Dataset folder (default: datasets/<manifest name>)."),
    size: int = typer.Option(None, "--size", help="Stored image side (default: the manifest's, else 128)."),
    workers: int = typer.Option(1, "--workers", help="Decoding processes."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Build without bad inputs; record them."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted build of --out."),
    normalize: str = typer.Option(None, "--normalize", help="Re-encode every image first: jpeg:Q or png."),
    allow_upscale: bool = typer.Option(False, "--allow-upscale/--no-upscale",
                                       help="Enlarge images smaller than --size instead of refusing them."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing dataset at --out."),
) -> None:
    """Build a custom benchmark from a YAML manifest of image folders/globs."""
    from osma_bench.data.manifest import load_manifest, manifest_plan

    spec = load_manifest(manifest)
    image_size = size or int(spec.get("image_size", 128))
    cfg = _config(image_size, normalize if normalize is not None else spec.get("normalize"), allow_upscale)
    out = out or Path("datasets") / spec["name"]
    with _interrupt_means_nothing_written(out):
        plan = manifest_plan(spec, manifest, command=_command_line(), name=out.name)
    _run(plan, out, cfg, workers, skip_bad, resume, overwrite)


def verify_data(
    root: Path = typer.Argument(..., help="Dataset folder."),
    quick: bool = typer.Option(False, "--quick", help="Skip recomputing the content hash."),
    audit: bool = typer.Option(True, "--audit/--no-audit", help="Also print the shortcut audit."),
) -> None:
    """Check a dataset: checksums, schema, counts, index ranges, content shared across partitions."""
    from osma_bench.data.verify import verify_dataset

    if not root.is_dir():
        raise OsmaError(f"{root}: dataset folder not found")
    problems = verify_dataset(root, content_hash=not quick)
    if problems:
        for problem in problems:
            print(f"problem: {problem}")
        print(f"{root}: {len(problems)} problem(s)")
        raise typer.Exit(1)
    print(f"{root}: OK")
    if audit:
        from osma_bench.data.audit import audit_dataset, format_audit

        report = audit_dataset(root)
        if report.flags:
            print(format_audit(report, flags_only=True))


def audit_data(
    path: Path = typer.Argument(..., help="Dataset folder, or a POSE annotation folder (with --root)."),
    root: Path = typer.Option(None, "--root", help="Image root, to audit POSE annotations before building."),
    splits: str = typer.Option("1", "--splits", help="Splits to audit for POSE annotations."),
) -> None:
    """Per class: mix of original formats and sizes; flags where they alone separate the classes."""
    from osma_bench.data.audit import audit_dataset, audit_pose_annotations, format_audit

    if (path / "dataset.json").is_file():
        report = audit_dataset(path)
    elif root is not None:
        report = audit_pose_annotations(root, path, _parse_splits(splits))
    else:
        raise OsmaError(f"{path}: not a dataset (no dataset.json); to audit POSE annotations pass --root")
    print(format_audit(report))


def register(app: typer.Typer) -> None:
    """Add this area's commands to ``app``."""
    from osma_bench.data.mini.cli import register as register_mini

    register_mini(build_data_app)
    app.add_typer(build_data_app, name="build-data")
    app.command("verify-data")(verify_data)
    app.command("audit-data")(audit_data)
