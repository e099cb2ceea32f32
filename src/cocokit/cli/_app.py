"""The Typer application and what every command shares.

Commands live in the other modules of this package; each one registers itself on
:data:`app` with ``@app.command()``. A command only parses its arguments, calls the
library and prints: any :class:`~cocokit.errors.CocoKitError` becomes one line on
stderr and exit code 2 (see :func:`main` in ``__init__``).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from ..dataset import Dataset
from ..errors import InputError, OptionError
from ..problems import Report

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

def make_console(stderr: bool = False, **kwargs: Any) -> Console:
    """A rich Console that draws colour and wraps lines only on a terminal: off one (a
    pipe, a CI log) lines are never broken, so a path or a JSON path stays whole for
    grep, and no escape codes are written (rich also honours NO_COLOR and FORCE_COLOR)."""
    probe = Console(stderr=stderr, **kwargs)
    if probe.is_terminal:
        return probe
    kwargs.setdefault("width", OFF_TERMINAL_WIDTH)
    return Console(stderr=stderr, soft_wrap=True, no_color=True, highlight=False, **kwargs)


# wide enough that tables are never squeezed off a terminal; text is never wrapped there
OFF_TERMINAL_WIDTH = 1 << 12

console = make_console()
err_console = make_console(stderr=True)


def print_error(line: str) -> None:
    """One message on stderr as it is: no markup, no highlighting, never wrapped."""
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)


def package_version() -> str:
    """The installed cocokit's version (the source tree's when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("cocokit")
    except PackageNotFoundError:
        from .. import __version__

        return __version__


def _show_version(value: bool) -> None:
    if value:
        print(f"cocokit {package_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", is_eager=True, callback=_show_version,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    pass

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


def bars_shown(quiet: bool = False) -> bool:
    """Whether progress is drawn: on a terminal, unless -q or COCOKIT_QUIET."""
    return not (quiet or env_quiet() or not err_console.is_terminal)


@contextlib.contextmanager
def byte_bar(description: str, total: int, quiet: bool = False) -> Iterator[Callable[[int], None]]:
    """A bar of bytes done, transfer rate and time left on stderr; yields ``update(done)``.
    Draws nothing with ``quiet``, COCOKIT_QUIET or off a terminal."""
    if not bars_shown(quiet):
        yield lambda done: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)


READ_BLOCK = 32 << 20  # at least this much per read; at most ~64 updates of the bar


def read_file(path: Path, quiet: bool = False) -> bytes:
    """The whole of a local file, with a byte bar on a terminal.

    The file is read block by block straight into the one buffer that becomes the
    returned ``bytes`` (a BytesIO over a zero-page ``bytes(size)``), so there is never a
    second copy of the file in memory and the read is as fast as ``Path.read_bytes``.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            buf = io.BytesIO(bytes(size))  # the only reference: BytesIO owns it, no copy
            done = 0
            with byte_bar(f"reading {path.name}", size, quiet) as update, buf.getbuffer() as view:
                block = max(READ_BLOCK, size // 64)
                while done < size:
                    n = f.readinto(view[done : done + block])
                    if not n:
                        break
                    done += n
                    update(done)
            if done < size:  # the file shrank while it was read
                buf.truncate(done)
            elif rest := f.read():  # or grew
                buf.seek(0, io.SEEK_END)
                buf.write(rest)
            return buf.getvalue()
    except OSError as e:
        raise InputError(str(path), None, f"cannot read: {e.strerror or e}") from None


def load_dataset(path: Path, quiet: bool = False) -> Dataset:
    """Load a COCO file: a byte bar while reading, then a spinner while decoding."""
    from ..io.coco import read_coco

    if not bars_shown(quiet) or not path.is_file():
        return read_coco(path)  # read_coco names a missing file or a folder
    data = read_file(path, quiet)
    with status(f"decoding {path.name}", quiet):
        return read_coco(data, name=str(path))


def validate_path(path: Path, quiet: bool = False) -> Report:
    """Validate a COCO file: a byte bar while reading, then a spinner while checking."""
    from ..validate import validate_bytes, validate_file

    if not bars_shown(quiet) or not path.is_file():
        return validate_file(path)
    data = read_file(path, quiet)
    with status(f"validating {path.name}", quiet):
        return validate_bytes(data, str(path))


def save_dataset(
    ds: Dataset,
    path: Path,
    *,
    quiet: bool = False,
    image_ids: str = "auto",
    annotation_ids: str = "auto",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
) -> Any:
    """Write a dataset atomically with a progress bar; prints a one-line summary."""
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
    return summary


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
