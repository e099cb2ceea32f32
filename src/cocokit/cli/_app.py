"""The Typer application and what every command shares.

Commands live in the other modules of this package; each one registers itself on
:data:`app` with ``@app.command()``. A command only parses its arguments, calls the
library and prints: any :class:`~cocokit.errors.CocoKitError` becomes one line on
stderr and exit code 2 (see :func:`main` in ``__init__``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..dataset import Dataset
from ..errors import OptionError

app = typer.Typer(
    name="cocokit",
    help="Fast, lossless tools for COCO-format detection and segmentation datasets.\n\n"
    "Example: cocokit info instances_val2017.json",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

console = Console()
err_console = Console(stderr=True)

_SHOWN = 20  # skipped records listed (the rest counted)
QUIET_HELP = "No progress bars or summaries (errors are still printed)."


@contextlib.contextmanager
def progress_bar(
    description: str, quiet: bool = False, total: int | None = None
) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr; yields ``update(done, total)``.

    With ``quiet`` (or the environment variable COCOKIT_QUIET set, or stderr not a
    terminal) it draws nothing.
    """
    if quiet or env_quiet() or not err_console.is_terminal:
        yield lambda done, total: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


@contextlib.contextmanager
def status(message: str, quiet: bool = False) -> Iterator[None]:
    """A spinner on stderr while something without a known length runs."""
    if quiet or env_quiet() or not err_console.is_terminal:
        yield
        return
    with err_console.status(message):
        yield


def load_dataset(path: Path, quiet: bool = False) -> Dataset:
    """Load a COCO file with a spinner."""
    from ..io.coco import read_coco

    with status(f"reading {path}", quiet):
        return read_coco(path)


def save_dataset(
    ds: Dataset,
    path: Path,
    *,
    quiet: bool = False,
    image_ids: str = "auto",
    annotation_ids: str = "auto",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    invalid: str = "error",
) -> Any:
    """Write a dataset atomically with a progress bar; prints a one-line summary (and the
    records skipped as invalid, and the export's warnings)."""
    from ..io.coco import write_coco

    with progress_bar(f"writing {path.name}", quiet) as update:
        summary = write_coco(
            ds,
            path,
            image_ids=image_ids,  # type: ignore[arg-type]
            annotation_ids=annotation_ids,  # type: ignore[arg-type]
            ignore_negative_samples=ignore_negative_samples,
            indent=indent,
            progress=update,
            invalid=invalid,  # type: ignore[arg-type]
        )
    if not quiet:
        err_console.print(
            f"wrote {path}: {summary.images} images, {summary.annotations} annotations, "
            f"{summary.categories} categories"
            + (
                f" ({summary.dropped_negative_images} images without annotations dropped)"
                if summary.dropped_negative_images
                else ""
            )
        )
        print_export_notes(summary.skipped, summary.warnings)
    return summary


def print_export_notes(skipped: Sequence[str], warnings: Sequence[str]) -> None:
    """Print the records an export skipped as invalid, and its warnings."""
    if skipped:
        err_console.print(f"skipped {len(skipped)} invalid record(s):", markup=False,
                          highlight=False)
        for p in skipped[:_SHOWN]:
            err_console.print(f"  {p}", markup=False, highlight=False, soft_wrap=True)
        if len(skipped) > _SHOWN:
            err_console.print(f"  ... and {len(skipped) - _SHOWN} more", markup=False,
                              highlight=False)
    for w in warnings:
        err_console.print(f"warning: {w}", markup=False, highlight=False, soft_wrap=True)


def check_output(path: Path, inputs: list[Path] | None = None) -> None:
    """Refuse an output path whose folder does not exist (before any work is done)."""
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OptionError("--output", str(path), "a path in an existing folder")
    if path.is_dir():
        raise OptionError("--output", str(path), "a file path, not a folder")


def env_quiet() -> bool:
    """True when COCOKIT_QUIET is set (for scripts that never want bars)."""
    return bool(os.environ.get("COCOKIT_QUIET"))


Stream = Annotated[
    Optional[bool],  # noqa: UP045
    typer.Option(
        "--stream/--no-stream",
        help="Read the file in runs, in bounded memory. Default: stream when the file "
        "is large for this machine's available memory.",
    ),
]


def use_stream(path: Path, flag: bool | None) -> bool:
    """Whether to take the streaming path for this file."""
    if flag is not None:
        return flag
    from ..io.stream import should_stream

    return path.is_file() and should_stream(path.stat().st_size)


def report_bad_images(failures: list[tuple[str, str]], what: str) -> None:
    """Name every image that failed, then say what to do (always shown, even quiet)."""
    for path, reason in failures:
        err_console.print(f"failed {path}: {reason}", markup=False, highlight=False,
                          soft_wrap=True)
    err_console.print(
        f"[red]error:[/red] {len(failures)} image(s) could not be {what}; no COCO file "
        "was written. Fix them, or pass --skip-bad-images to leave them out.")


def check_image_folders(images: str, output: str) -> None:
    """Refuse a local image folder that is not there, or a local output that is a file or
    has no parent folder (URLs are checked when they are used)."""
    from ..io import files

    src_dir, out_dir = files.local_path(images), files.local_path(output)
    if src_dir is not None and not src_dir.is_dir():
        raise OptionError("--images", images, "an existing folder of images")
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise OptionError("--output", output, "a folder (it is created if missing)")
        if not out_dir.resolve().parent.is_dir():
            raise OptionError("--output", output, "a folder whose parent exists")
