"""The ``check`` command: missing, resized and duplicate images, split leakage and
suspicious labels (see :mod:`cocokit.quality.check`)."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from ..errors import OptionError
from ..io.atomic import check_writable
from ._app import app, console, err_console, load_dataset, progress_bar, status
from ._options import (
    Address,
    CocoPath,
    EngineOpt,
    Json,
    Quiet,
    Yes,
    check_file_output,
    check_image_folder,
    check_workers,
)

if TYPE_CHECKING:
    from ..quality.check import CheckReport


#: findings listed per code on the terminal (all of them with --json)
SHOWN = 10


@app.command("check")
def check_command(
    file: CocoPath,
    images: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--images", "-i", help="Folder the file_name paths are in: check the image files "
        "too (missing, unreadable, size, duplicates). Without it only the labels are "
        "checked.")] = None,
    against: Annotated[Optional[list[Path]], typer.Option(  # noqa: UP045
        "--against", help="Another split (COCO JSON) to search for images of FILE "
        "(leakage); repeatable.")] = None,
    against_images: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--against-images", help="The image folder of each --against file, in the same "
        "order. Default: the -i folder.")] = None,
    as_json: Json = False,
    html: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--html", help="Also write a self-contained HTML report: the findings, then the "
        "statistics and plots (needs the extra \\[plot]).")] = None,
    iou: Annotated[float, typer.Option(
        help="duplicate-annotation: two boxes of one image and category with IoU at least "
        "this.")] = 0.95,
    min_size: Annotated[float, typer.Option(
        "--min-size", help="small-box: width or height under this many px.")] = 2.0,
    max_aspect: Annotated[float, typer.Option(
        "--max-aspect", help="extreme-aspect-ratio: longer side over shorter side above "
        "this.")] = 20.0,
    min_examples: Annotated[int, typer.Option(
        "--min-examples", help="rare-category: fewer annotations than this.")] = 10,
    hash_distance: Annotated[int, typer.Option(
        "--hash-distance", help="near-duplicate-image / leaked-image: perceptual hashes "
        "(64 bits) at most this many bits apart.")] = 8,
    cache: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--cache", help="The hash cache file (.npz). Default: one per image folder in "
        "$COCOKIT_CACHE_DIR, else ~/.cache/cocokit.")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="Read every image; keep no hashes.")] = False,
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Processes reading images. Default: all cores.")] = None,
    engine: Annotated[EngineOpt, typer.Option(
        help="Where the image reading runs: local processes or a Ray cluster "
        "(pip install 'cocokit\\[ray]').")] = EngineOpt.local,
    address: Address = None,
    yes: Yes = False,
    quiet: Quiet = False,
) -> None:
    """Find what spoils training beyond the JSON: missing, unreadable and resized image
    files, the same photo twice (renamed, re-encoded, resized, lightly cropped) or in
    another split (--against), duplicate boxes, tiny boxes, extreme aspect ratios, crowd
    flags without RLE, rare categories.

    Prints the count per check and the first findings of each (all with --json). Image
    hashes are cached (by path, size and modification time), so a second run reads no
    unchanged image. Exit code 0 when nothing is found, 1 when something is.

    Example: cocokit check train.json -i train/ --against val.json --against-images val/
    """
    from ..quality.check import Thresholds, check_dataset, findings_html

    thresholds = Thresholds(iou=iou, min_size=min_size, max_aspect=max_aspect,
                            min_examples=min_examples, hash_distance=hash_distance)
    others = list(against or [])
    other_dirs = list(against_images or [])
    if other_dirs and len(other_dirs) != len(others):
        raise OptionError("--against-images", len(other_dirs),
                          f"one folder per --against file ({len(others)})")
    if other_dirs and images is None:
        raise OptionError("--against-images", other_dirs[0], "-i/--images as well (the "
                          "images of FILE to compare with)")
    if images is not None:
        check_image_folder(images)
    for d in other_dirs:
        check_image_folder(d, "--against-images")
    check_workers(workers, yes, engine.value)
    if cache is not None and no_cache:
        raise OptionError("--cache", str(cache), "--cache or --no-cache, not both")
    if cache is not None:
        check_file_output(cache, "--cache")
        check_writable(cache)  # named: an output, refused now rather than after the work
    if html is not None:
        check_file_output(html, "--html")
        from ..report import require_plotting

        require_plotting()
    silent = quiet or as_json
    ds = load_dataset(file, silent)
    sets = []
    for k, other in enumerate(others):
        folder = other_dirs[k] if other_dirs else images
        sets.append((str(other), load_dataset(other, silent), folder))
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    with contextlib.ExitStack() as stack:
        bar: list[Callable[[int, int], None]] = []

        def update(done: int, total: int) -> None:
            # the bar (and its thread) starts at the first call, after the workers fork
            if not bar:
                bar.append(stack.enter_context(progress_bar("reading images", silent)))
            bar[0](done, total)

        report = check_dataset(
            ds, images, against=sets, thresholds=thresholds,
            cache=False if no_cache else (cache if cache is not None else True),
            workers=n_workers, engine=engine.value,
            address=address, progress=update)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2, allow_nan=False))
    else:
        _print(report, quiet)
    if html is not None:
        from ..report import write_report

        with status(f"writing {Path(html).name}", quiet):
            write_report(ds, Path(html), title=f"cocokit check: {file}",
                         sections=[("Quality check", findings_html(report))])
        if not quiet:
            err_console.print(f"wrote {html}", markup=False, highlight=False)
    if not report.ok:
        raise typer.Exit(1)


def _print(report: CheckReport, quiet: bool) -> None:
    from ..quality.check import CODES

    table = Table(title=f"check {report.source}", title_justify="left", box=None,
                  padding=(0, 0, 0, 1), header_style="bold underline")
    table.add_column("check", justify="left")
    table.add_column("found", justify="right")
    counts = report.counts()
    for code, n in counts.items():
        table.add_row(code, f"{n:,}", style=None if n else "dim")
    console.print(table)
    for code in CODES:
        rows = [f for f in report.findings if f.code == code]
        for f in rows[:SHOWN]:
            console.print(f"{f.path}: [{f.code}] {f.message}", markup=False, highlight=False,
                          soft_wrap=True)
        if len(rows) > SHOWN:
            console.print(f"... and {len(rows) - SHOWN:,} more {code} (--json lists all)",
                          markup=False, highlight=False)
    if report.images is not None and not quiet:
        err_console.print(f"{report.images_hashed:,} image(s) read, {report.images_cached:,} "
                          "from the hash cache", markup=False, highlight=False)


__all__ = ["check_command"]
