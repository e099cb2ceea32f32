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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from ..dataset import Dataset
from ..errors import InputError, OptionError
from ..problems import Report
from ._console import console, err_console, make_console, print_error

if TYPE_CHECKING:  # pragma: no cover
    from ..io.coco import FilteredStream
    from ..io.stream import CocoStream

#: The settings of the app and of every command group: help with -h too, no shell
#: completion commands, no pretty tracebacks (the CLI prints one line per error).
_TYPER_SETTINGS: dict[str, Any] = dict(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

app = typer.Typer(
    name="cocokit",
    help="Fast, lossless tools for COCO-format detection and segmentation datasets.\n\n"
    "Example: cocokit info instances_val2017.json",
    **_TYPER_SETTINGS,
)


def command_group(name: str, help: str) -> typer.Typer:
    """A group of commands (``cocokit NAME COMMAND``) with the app's settings, added to it."""
    group = typer.Typer(name=name, help=help, **_TYPER_SETTINGS)
    app.add_typer(group, name=name)
    return group

__all__ = [
    "app", "command_group", "console", "err_console", "make_console", "print_error",
]


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

_SHOWN = 20  # skipped records listed (the rest counted)
#: problems kept by the CLI's validate (the rest are counted), in memory and streamed
MAX_PROBLEMS = 10_000


class _Done(ProgressColumn):
    """done/total: sizes for a bar of bytes (``unit="bytes"``), else counts."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes, self._count = DownloadColumn(), MofNCompleteColumn()

    def render(self, task: Task) -> Text:
        column = self._bytes if task.fields.get("unit") == "bytes" else self._count
        return column.render(task)


class _Rate(ProgressColumn):
    """The rate: bytes per second for a bar of bytes, else records (or images) per second."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        if task.fields.get("unit") == "bytes":
            return self._bytes.render(task)
        speed = task.finished_speed or task.speed
        per = f"{speed:,.0f}/s" if speed is not None else "?/s"
        return Text(per, style="progress.data.speed")


@contextlib.contextmanager
def progress_bar(
    description: str, quiet: bool = False, total: int | None = None, unit: str = "records"
) -> Iterator[Callable[[int, int], None]]:
    """The progress bar of the CLI on stderr (see :func:`progress_bars`), for one step;
    yields ``update(done, total)``. Draws nothing with ``quiet``, COCOKIT_QUIET or off
    a terminal."""
    with progress_bars(quiet, (description, unit, total)) as (update,):
        yield update


@contextlib.contextmanager
def progress_bars(
    quiet: bool, *steps: tuple[str, str, int | None]
) -> Iterator[tuple[Callable[[int, int], None], ...]]:
    """The one display of progress of the CLI: a bar for each of ``steps`` (description,
    unit, total), shown from its first update, with the description, the bar, done/total
    (sizes with the unit ``"bytes"``, counts otherwise), the rate and the time left;
    yields one ``update(done, total)`` per step. Steps that follow each other inside one
    call (streamed validation: indexing, then checking) share one display, as rich
    allows only one at a time. Nothing is drawn with ``quiet``, COCOKIT_QUIET or off a
    terminal."""
    if not bars_shown(quiet):
        yield tuple((lambda done, total: None) for _ in steps)
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        _Done(),
        _Rate(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        def updater(description: str, unit: str, total: int | None) -> Callable[[int, int], None]:
            task = progress.add_task(description, total=total, unit=unit,
                                     visible=len(steps) == 1)

            def update(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total, visible=True)

            return update

        yield tuple(updater(*step) for step in steps)


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
            with progress_bar(f"reading {path.name}", quiet, size, "bytes") as update, \
                    buf.getbuffer() as view:
                block = max(READ_BLOCK, size // 64)
                while done < size:
                    n = f.readinto(view[done : done + block])
                    if not n:
                        break
                    done += n
                    update(done, size)
            if done < size:  # the file shrank while it was read
                buf.truncate(done)
            elif rest := f.read():  # or grew
                buf.seek(0, io.SEEK_END)
                buf.write(rest)
            return buf.getvalue()
    except OSError as e:
        raise InputError(str(path), None, f"cannot read: {e.strerror or e}") from None


def load_dataset(path: str | Path, quiet: bool = False) -> Dataset:
    """Load a COCO file (a local path or a URL, ``.json`` or ``.json.gz``): a bar of bytes
    while reading, then of records while decoding."""
    from ..io.coco import read_coco
    from ..io.files import is_url

    if not bars_shown(quiet) or is_url(path) or not Path(path).is_file():
        return read_coco(path)  # read_coco names a missing file or a folder
    path = Path(path)
    data = read_file(path, quiet)
    with progress_bar(f"decoding {path.name}", quiet) as update:
        return read_coco(data, name=str(path), progress=update)


def validate_path(path: str | Path, quiet: bool = False, stream: bool = False) -> Report:
    """Validate a COCO file (a local path or a URL, ``.json`` or ``.json.gz``): a bar of
    bytes while reading (streamed: while indexing), then of records while checking."""
    from ..io.files import is_url
    from ..validate import validate_bytes, validate_file

    if is_url(path):
        with progress_bar(f"validating {path}", quiet) as update:
            return validate_file(path, max_problems=MAX_PROBLEMS, progress=update)
    path = Path(path)
    if stream or not bars_shown(quiet) or not path.is_file():
        with progress_bars(quiet, (f"indexing {path.name}", "bytes", _size(path)),
                           (f"validating {path.name}", "records", None)) as (scanned, checked):
            # the same checks either way; stream only chooses how the bytes are read
            return validate_file(path, stream=stream, max_problems=MAX_PROBLEMS,
                                 progress=checked, scanned=scanned)
    data = read_file(path, quiet)
    with progress_bar(f"validating {path.name}", quiet) as update:
        return validate_bytes(data, str(path), max_problems=MAX_PROBLEMS, progress=update)


def index_stream(path: Path, quiet: bool = False) -> CocoStream:
    """Index a COCO file for streaming, with a bar of the bytes scanned."""
    from ..io.stream import open_stream

    with progress_bar(f"indexing {path.name}", quiet, _size(path), "bytes") as update:
        return open_stream(path, progress=update)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size if path.is_file() else None
    except OSError:
        return None


def save_dataset(
    ds: Dataset | CocoStream | FilteredStream,
    path: str | Path,
    *,
    quiet: bool = False,
    image_ids: str = "keep",
    annotation_ids: str = "keep",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    new_records: str | None = None,
    ids_line: bool = True,
    warn: bool = True,
    invalid: str = "error",
    streamed: str = "",
    shown_as: str | None = None,
    id_map: str | None = None,
    category_map: tuple[Any, Any] | None = None,
    beside: Callable[[Any], None] | None = None,
) -> Any:
    """Write a source (:func:`write_dataset`), the COCO file, its id map and what
    ``beside`` writes (called with the export summary: merge's id maps, repair's report)
    as one set (:func:`cocokit.io.atomic.atomic_files`: all, or none), then say so
    (:func:`print_saved`). Returns the export summary."""
    from ..io.atomic import atomic_files

    with atomic_files():
        summary = write_dataset(ds, path, quiet=quiet, image_ids=image_ids,
                                annotation_ids=annotation_ids,
                                ignore_negative_samples=ignore_negative_samples, indent=indent,
                                invalid=invalid, shown_as=shown_as, id_map=id_map,
                                category_map=category_map)
        if beside is not None:
            beside(summary)
    print_saved(ds, path, summary, quiet=quiet, image_ids=image_ids,
                annotation_ids=annotation_ids, new_records=new_records, ids_line=ids_line,
                warn=warn, streamed=streamed, shown_as=shown_as, id_map=id_map)
    return summary


def write_dataset(
    ds: Dataset | CocoStream | FilteredStream,
    path: str | Path,
    *,
    quiet: bool = False,
    image_ids: str = "keep",
    annotation_ids: str = "keep",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    invalid: str = "error",
    shown_as: str | None = None,
    id_map: str | None = None,
    category_map: tuple[Any, Any] | None = None,
) -> Any:
    """Write a source atomically with a progress bar (:func:`cocokit.io.coco.write_coco`,
    a loaded dataset or one read in runs, see :func:`open_source`) and print nothing
    else; returns the export summary. ``shown_as``: the path named in messages when
    ``path`` is where the file is staged (default: ``path``).

    With ``keep``, ids that repeat are refused before anything is written, each problem
    line naming the way out (``image_ids='auto' (CLI: --image-ids auto)``).

    ``id_map``: also write the export's old-to-new ids there (``--id-map``), with
    ``category_map`` (old ids, new ids) when the command renumbered categories. Called
    inside :func:`cocokit.io.atomic.atomic_files` (as :func:`save_dataset` does), the
    files join the caller's set.
    """
    from ..io.coco import write_coco

    shown = shown_as if shown_as is not None else str(path)
    with progress_bar(f"writing {Path(shown).name}", quiet) as update:
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
    if id_map is not None and summary.id_map is not None:
        from ..io.idmap import write_id_map

        ids = summary.id_map
        write_id_map(ids.with_categories(*category_map) if category_map else ids, id_map)
    return summary


def print_saved(
    ds: Dataset | CocoStream | FilteredStream,
    path: str | Path,
    summary: Any,
    *,
    quiet: bool = False,
    image_ids: str = "keep",
    annotation_ids: str = "keep",
    new_records: str | None = None,
    ids_line: bool = True,
    warn: bool = True,
    streamed: str = "",
    shown_as: str | None = None,
    id_map: str | None = None,
) -> None:
    """Say what :func:`write_dataset` wrote (once its files are in place): a one-line
    summary (a streamed source: ``(streamed<streamed>)`` in it), the id map, (``ids_line``)
    what happened to the ids (see :func:`._options.ids_note`), the records skipped as
    invalid and (``warn``) the export's warnings."""
    from ._options import ids_note

    if quiet:
        return
    if id_map is not None and summary.id_map is not None:
        err_console.print(f"wrote {id_map}: the old-to-new ids", markup=False,
                          highlight=False)
    shown = shown_as if shown_as is not None else str(path)
    if not isinstance(ds, Dataset):
        err_console.print(
            f"wrote {path}: {summary.images} images, {summary.annotations} annotations "
            f"(streamed{streamed})", markup=False, highlight=False)
    else:
        err_console.print(
            f"wrote {shown}: {summary.images} images, {summary.annotations} annotations, "
            f"{summary.categories} categories"
            + (
                f" ({summary.dropped_negative_images} images without annotations dropped)"
                if summary.dropped_negative_images
                else ""
            ),
            markup=False, highlight=False, soft_wrap=True,
        )
    if ids_line:
        err_console.print(ids_note(image_ids, annotation_ids, new_records=new_records),
                          markup=False, highlight=False, soft_wrap=True)
    print_export_notes(summary.skipped, summary.warnings if warn else ())


def write_input_id_maps(maps: Sequence[Any], written: Any, paths: Sequence[str]) -> None:
    """Write one id map per input of a command that joined several (merge ``--id-map``):
    ``maps[k]`` (input k's ids -> the joined dataset's, an
    :class:`~cocokit.io.idmap.IdMap`) followed by ``written`` (the export's map, when
    it renumbered or left records out) to ``paths[k]``. Called inside
    :func:`cocokit.io.atomic.atomic_files`, the maps join the caller's set."""
    from ..io.idmap import write_id_map

    for ids, path in zip(maps, paths, strict=True):
        write_id_map(ids.then(written) if written is not None else ids, path)


def print_export_notes(skipped: Sequence[str], warnings: Sequence[str]) -> None:
    """Print the records an export skipped as invalid, and its warnings (``warning: ...``).

    Every command that writes COCO ends here, once per output (once for the parts of a
    split), with its export summary's ``skipped`` and ``warnings`` or, where the file
    was written without a summary, :func:`cocokit.contract.category_warnings`."""
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
    """Refuse a file output that names a folder or lies in no folder (see
    :func:`._options.check_file_output`, which the commands call)."""
    from ._options import check_file_output

    check_file_output(path)


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


def use_stream(path: str | Path, flag: bool | None) -> bool:
    """Whether to take the streaming path for this file (never for a URL or a ``.gz``
    file, which are read whole)."""
    from ..io.atomic import is_gzip_name
    from ..io.files import is_url

    if is_url(path) or is_gzip_name(path):
        if flag:
            raise OptionError("--stream", True, "a local, uncompressed file (a URL or a .gz "
                              "file is read whole: --no-stream)")
        return False
    if flag is not None:
        return flag
    from ..io.stream import should_stream

    path = Path(path)
    return path.is_file() and should_stream(path.stat().st_size)


def open_source(path: str | Path, stream: bool | None, quiet: bool = False
                ) -> Dataset | CocoStream:
    """The one place a command opens its input: loaded in memory (with the byte bar), or
    indexed for reading in runs when streamed (``--stream``, or by default for a file
    large for this machine, :func:`use_stream`). The commands then call the one library
    function, which takes either."""
    if not use_stream(path, stream):
        return load_dataset(path, quiet)
    return index_stream(Path(path), quiet)


def working(source: Dataset | CocoStream, message: str, quiet: bool = False
            ) -> contextlib.AbstractContextManager[None]:
    """A spinner while an operation reads a streamed source (a loaded one is quick)."""
    if isinstance(source, Dataset):
        return contextlib.nullcontext()
    return status(message, quiet)


def report_bad_images(failures: list[tuple[str, str]], what: str) -> None:
    """Name every image that failed, then say what to do (always shown, even quiet)."""
    for path, reason in failures:
        err_console.print(f"failed {path}: {reason}", markup=False, highlight=False,
                          soft_wrap=True)
    err_console.print(
        f"[red]error:[/red] {len(failures)} image(s) could not be {what}; no COCO file "
        "was written. Fix them, or pass --skip-bad-images to leave them out.")


def check_image_folders(images: str, output: str) -> None:
    """Refuse a local image folder that is not there, or a local output folder that is
    a file or has no parent folder (see :mod:`._options`, which the commands use)."""
    from ._options import check_folder_output, check_image_folder

    check_image_folder(images)
    check_folder_output(output)
