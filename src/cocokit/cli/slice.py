"""The ``slice`` command: tile large images and their annotations."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional, TypeVar

import typer

from ..dataset import Dataset
from ..errors import OptionError
from ._app import (
    Stream,
    app,
    err_console,
    open_source,
    print_export_notes,
    print_saved,
    progress_bar,
    report_bad_images,
    status,
    use_stream,
    write_dataset,
)
from ._options import (
    DEFAULT_IDS,
    OUTPUT,
    Address,
    AnnotationIds,
    CocoPath,
    DropEmptyAlias,
    DropNegatives,
    EngineOpt,
    IdPolicy,
    ImageIds,
    Images,
    Quality,
    Quiet,
    Yes,
    check_file_output,
    check_folder_output,
    check_image_folder,
    check_run_size,
    check_workers,
    deprecated,
    estimated_bytes,
    ids_note,
    renamed,
    say,
)

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..io.staging import Staging
    from ..io.stream import CocoStream

T = TypeVar("T")
_PAIR = re.compile(r"^\s*([^xX*,]+)\s*(?:[xX*,]\s*([^xX*,]+)\s*)?$")


class SliceFormatOpt(str, Enum):
    jpg = "jpg"
    png = "png"
    same = "same"


def _parse_pair(text: str, option: str, kind: Callable[[str], T],
                expected: str) -> tuple[T, T]:
    m = _PAIR.match(text)
    try:
        if not m:
            raise ValueError(text)
        a = kind(m.group(1))
        b = kind(m.group(2)) if m.group(2) is not None else a
    except ValueError as e:
        raise OptionError(option, text, expected) from e
    return a, b


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``640x480`` -> (640, 480) (width x height)."""
    w, h = _parse_pair(text, "--size", int, "a tile size such as 512 or 640x480 (WxH)")
    if w < 1 or h < 1:
        raise OptionError("--size", text, "a positive tile size such as 512 or 640x480")
    return w, h


def parse_overlap(text: str) -> tuple[float, float]:
    """``0.2`` -> (0.2, 0.2); ``0.2x0.1`` -> (0.2, 0.1) (x, then y)."""
    x, y = _parse_pair(text, "--overlap", float, "an overlap such as 0.2 or 0.2x0.1 (x then y)")
    if not (0.0 <= x < 1.0 and 0.0 <= y < 1.0):
        raise OptionError("--overlap", text, "overlaps in [0, 1), such as 0.2 or 0.2x0.1")
    return x, y


@app.command("slice")
def slice_command(
    file: CocoPath,
    images: Images,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="Folder for the tiles (created if needed): a path or an "
        "fsspec URL.")],
    size: Annotated[Optional[str], typer.Option(  # noqa: UP045 - typer needs Optional
        help="Tile size: 512 or WxH such as 640x480. Default 512.")] = None,
    overlap: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Overlap share of a tile: 0.2 or XxY such as 0.2x0.1. Default 0.2.")] = None,
    auto: Annotated[bool, typer.Option(
        "--auto", help="Pick size and overlap from each image's resolution.")] = False,
    min_area_ratio: Annotated[float, typer.Option(
        help="Keep an annotation in a tile when at least this share of it is inside.")] = 0.1,
    drop_negatives: DropNegatives = False,
    image_format: Annotated[SliceFormatOpt, typer.Option(
        "--image-format", help="Tile image format: jpg, png, or same as the source."),
    ] = SliceFormatOpt.jpg,
    quality: Quality = 95,
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Processes to use. Default: all cores.")] = None,
    skip_bad_images: Annotated[bool, typer.Option(
        "--skip-bad-images", "--skip-missing",
        help="Leave out (and list) images that are missing or unreadable. Without it, "
        "such images are listed at the end, no COCO file is written and the exit "
        "code is 1.")] = False,
    coco_output: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--coco-output", help="Where to write the COCO file (a path or an fsspec URL). "
        "Default: OUTPUT/<FILE name>.")] = None,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    engine: Annotated[EngineOpt, typer.Option(
        help="Where the per-image work runs: local processes or a Ray cluster "
        "(pip install 'cocokit\\[ray]').")] = EngineOpt.local,
    address: Address = None,
    stream: Stream = None,
    yes: Yes = False,
    quiet: Quiet = False,
    drop_empty: DropEmptyAlias = False,
    keep_empty: Annotated[bool, typer.Option("--keep-empty", hidden=True)] = False,
    fmt: Annotated[Optional[SliceFormatOpt], typer.Option(  # noqa: UP045
        "--format", hidden=True)] = None,
    json_path: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--json", hidden=True)] = None,
) -> None:
    """Cut large images into overlapping tiles, with annotations clipped to each tile.

    Writes the tile images to OUTPUT and one COCO file (OUTPUT/<FILE name> unless
    --coco-output is given). Tiles are new images: they and their annotations are
    numbered 1..N. Each tile records source_image_id, source_file_name,
    source_window \\[x, y, w, h], source_width and source_height, so results can be
    mapped back (cocokit results unslice).

    A file large for this machine's memory is streamed chunk by chunk (--stream /
    --no-stream force it); the COCO file is the same either way.

    Images that cannot be read are reported by name at the end; the run then exits
    with code 1 and writes no COCO file, unless --skip-bad-images.

    A run that would write more than 1,000,000 tiles or an estimated 1 TB is refused
    before any work unless --yes (docs/limits.md).

    Example: cocokit slice train.json -i train/ -o tiles/ --size 640 --overlap 0.2

    Example: cocokit slice train.json -i s3://bucket/train -o s3://bucket/tiles --engine ray
    """
    from ..errors import BadImagesError
    from ..io import files
    from ..io.staging import outside_set, staged
    from ..slicing import slice_dataset

    drop_negatives = renamed(drop_negatives, drop_empty, "--drop-empty", "--drop-negatives",
                             False)
    if keep_empty:
        deprecated("--keep-empty is deprecated; tiles without annotations are kept unless "
                   "--drop-negatives")
        if drop_negatives:
            raise OptionError("--drop-negatives", True, "--drop-negatives or --keep-empty, "
                              "not both")
    image_format = renamed(image_format, fmt, "--format", "--image-format",
                           SliceFormatOpt.jpg)
    coco_output = renamed(coco_output, json_path, "--json", "--coco-output")
    if auto and (size is not None or overlap is not None):
        raise OptionError("--auto", "--size/--overlap", "--auto or --size/--overlap, not both")
    tile = parse_size(size) if size is not None else (512, 512)
    over = parse_overlap(overlap) if overlap is not None else (0.2, 0.2)
    check_workers(workers, yes, engine.value)
    check_image_folder(images)
    check_folder_output(output)
    if coco_output is not None:
        check_file_output(coco_output, "--coco-output")
    target = coco_output if coco_output is not None else files.join(output, file.name)
    local_target = files.local_path(target)
    if local_target is not None and local_target.resolve() == file.resolve():
        raise OptionError("--coco-output", target, "a path other than the input file")

    streaming = use_stream(file, stream)
    options = dict(size=tile, overlap=over, auto=auto, min_area_ratio=min_area_ratio,
                   keep_empty=not drop_negatives, format=image_format.value, quality=quality,
                   workers=workers,
                   skip_bad_images=skip_bad_images, engine=engine.value, address=address)
    # a streamed file is indexed here, with its byte bar closed before the slicing
    # forks its workers (no bar, nor its thread, may be alive then)
    source = open_source(file, streaming, quiet)
    ds = source if isinstance(source, Dataset) else None
    if not yes:
        check_tile_count(source, tile, over, auto, image_format.value)
    failed: list[tuple[str, str]] | None = None
    with contextlib.ExitStack() as stack:
        bar: list[Callable[[int, int], None]] = []

        def update(done: int, total: int) -> None:
            # the bar (and its refresh thread) starts at the first call, which
            # slice_dataset makes after its worker processes are forked
            if not bar:
                bar.append(stack.enter_context(progress_bar("slicing", quiet)))
            bar[0](done, total)

        try:
            if ds is None:
                summary = slice_dataset(source, images, output, json_path=target,
                                        progress=update, **options)  # type: ignore[call-overload]
            else:
                # the COCO file is written inside the staging of the tiles, before they
                # are moved: a failure of either leaves the output folder as it was; a
                # --coco-output outside the folder is renamed only once the tiles are in
                # place (one set with them: atomic_files, around the staging)
                with outside_set(output, target), staged(output, option=OUTPUT) as stage:
                    tiled, summary = slice_dataset(ds, images, stage, progress=update,
                                                   **options)  # type: ignore[call-overload]
                    stack.close()  # the slicing bar ends before the writing bar starts
                    saved = _write_tiled(tiled, stage, target, quiet, image_ids,
                                         annotation_ids)
                if saved is not None:  # said once the file and the tiles are in place
                    print_saved(tiled, target, saved, quiet=quiet, image_ids=image_ids.value,
                                annotation_ids=annotation_ids.value, new_records="all")
        except BadImagesError as e:
            failed = e.failures
    if failed is not None:
        report_bad_images(failed, "sliced")
        raise typer.Exit(1)
    # tiles are new records, numbered 1..N by the slicer: keep and auto write the same ids
    if ds is None and not quiet:
        err_console.print(f"wrote {target}", markup=False, highlight=False)
        say(ids_note(image_ids, annotation_ids, new_records="all"))
        print_export_notes((), summary.warnings)
    if not quiet:
        err_console.print(
            f"sliced {summary.images} images into {summary.tiles} tiles with "
            f"{summary.annotations} annotations in {output}"
            + (f" ({summary.empty_tiles_dropped} empty tiles dropped)"
               if summary.empty_tiles_dropped else "")
        )
        if summary.unplaced_annotations:
            err_console.print(f"[yellow]{summary.unplaced_annotations} annotations have no "
                              "box, segmentation or keypoint and are in no tile[/yellow]")
    for path, reason in summary.skipped:
        err_console.print(f"skipped {path}: {reason}", markup=False, highlight=False,
                          soft_wrap=True)


def check_tile_count(source: Dataset | CocoStream, tile: tuple[int, int],
                     over: tuple[float, float], auto: bool, image_format: str) -> None:
    """Refuse a slicing run over the limits of
    :func:`~cocokit.cli._options.check_run_size` (the tiles of every image, counted by
    :func:`cocokit.slicing.tile_counts`; their bytes estimated), before any work."""
    import numpy as np

    from ..slicing import tile_counts

    if isinstance(source, Dataset):
        tables = [source.images]
    else:
        tables = [t for _, t in source.image_tables()]
    if not tables or not sum(len(t) for t in tables):
        return
    widths = np.concatenate([t.width for t in tables])
    heights = np.concatenate([t.height for t in tables])
    names = [str(f) for t in tables for f in t.file_name.tolist()]
    counts, pixels = tile_counts(widths, heights, tile, over, auto)
    suffixes = ([f.rpartition(".")[2] for f in names] if image_format == "same"
                else [image_format] * len(names))
    option, value = (("--auto", True) if auto else
                     ("--size/--overlap", f"{tile[0]}x{tile[1]} / {over[0]}x{over[1]}"))
    check_run_size(option, value, int(counts.sum()),
                   estimated_bytes(pixels, suffixes), False, what="tiles")


def _write_tiled(tiled: Dataset, stage: Staging, target: str, quiet: bool,
                 image_ids: IdPolicy, annotation_ids: IdPolicy) -> Any:
    """Write the tiles' COCO file before the staged tiles are moved into place: into the
    staging folder when it lies in the output folder, else to ``target`` itself (renamed
    after the tiles, :func:`cocokit.io.staging.outside_set`). Returns the export summary
    of a local file, for the caller to print once everything is in place."""
    from ..contract import category_warnings
    from ..io import files
    from ..io.coco import to_json

    local = files.local_path(target)
    if local is not None:
        return write_dataset(tiled, stage.place(local), quiet=quiet, image_ids=image_ids.value,
                             annotation_ids=annotation_ids.value, shown_as=str(target))
    with status(f"writing {target}", quiet):
        files.write_bytes(target, to_json(tiled, image_ids=image_ids.value,
                                          annotation_ids=annotation_ids.value))
    if not quiet:
        err_console.print(f"wrote {target}", markup=False, highlight=False)
        say(ids_note(image_ids, annotation_ids, new_records="all"))
        print_export_notes((), category_warnings(tiled.categories))
    return None
