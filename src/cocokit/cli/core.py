"""Core commands: info, validate, export."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ..errors import OptionError
from ..io.sniff import COCO_KEYS
from ..problems import Report
from ._app import (
    Stream,
    app,
    console,
    err_console,
    open_source,
    save_dataset,
    use_stream,
    validate_path,
    working,
)
from ._options import (
    DEFAULT_IDS,
    AnnotationIds,
    CocoFile,
    DropNegatives,
    IdMapFile,
    IgnoreNegativesAlias,
    ImageIds,
    Json,
    Quiet,
    check_file_output,
    check_id_map,
    deprecated,
    renamed,
)


class ImageMode(str, Enum):
    link = "link"
    copy = "copy"
    none = "none"


YOLO_IMAGE_MODES = {m.value for m in ImageMode}


class ExportFormat(str, Enum):
    coco = "coco"
    yolo = "yolo"


# problems that mean the file could not be read as a COCO document at all
UNREADABLE = {"json-syntax", "top-not-object"}
# what the validator adds to a missing key when the document is not COCO at all (the
# sniffed hint of cocokit.io.sniff: LabelMe, an object with none of the three keys)
_NOT_COCO = "not a COCO dataset"


def unreadable(report: Report) -> bool:
    """Whether ``report`` says the file is no COCO document at all (exit 2, as info,
    export and stats refuse it): malformed JSON, a top level that is not an object, or
    an object with none of images/annotations/categories that the sniffer described.
    ``{}`` is an (empty, invalid) COCO document: exit 1."""
    if any(p.code in UNREADABLE for p in report.errors):
        return True
    missing = [p for p in report.errors if p.code == "missing-key" and not p.path]
    return len(missing) == len(COCO_KEYS) and any(_NOT_COCO in p.message for p in missing)


@app.command()
def info(
    file: CocoFile,
    as_json: Json = False,
    stream: Stream = None,
    quiet: Quiet = False,
) -> None:
    """Show counts and a per-category table of annotations and images.

    Given a results list (detections), its counts per category and scores.

    Example: cocokit info instances_val2017.json
    """
    from ..io.sniff import is_results_file
    from ..summary import summarize

    if is_results_file(file):
        from .results import show_results

        show_results(file, as_json, histogram=False)
        return

    source = open_source(file, stream, quiet or as_json)
    with working(source, f"reading {file} in runs", quiet or as_json):
        summary = summarize(source)
    if as_json:
        print(json.dumps(dict(source=str(file), file=str(file), **summary.to_dict()), indent=2))
        return
    console.print(
        f"[bold]{file}[/bold]: {summary.images} images ({summary.negative_images} without "
        f"annotations), {summary.annotations} annotations ({summary.crowd_annotations} crowd), "
        f"{summary.categories} categories",
        highlight=False,
    )
    if summary.dangling_annotations:
        console.print(
            f"[yellow]annotations whose image_id names no image: "
            f"{summary.dangling_annotations}[/yellow]"
        )
    if summary.undeclared_category_annotations:
        console.print(
            f"[yellow]annotations whose category_id is not declared: "
            f"{summary.undeclared_category_annotations}[/yellow]"
        )
    table = Table("id", "name", "annotations", "images")
    for row in summary.per_category:
        table.add_row(
            str(row["id"]), escape(row["name"]), str(row["annotations"]), str(row["images"])
        )
    console.print(table)


@app.command()
def validate(
    file: Annotated[str, typer.Argument(help="COCO JSON file (.json or .json.gz; a path "
                                        "or a URL; with --results: the ground truth), or a "
                                        "results file alone.")],
    results: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--results", help="Check this results file (detections) against FILE, the "
        "ground truth: ids, boxes, scores.")] = None,
    as_json: Json = False,
    errors_only: Annotated[bool, typer.Option("--errors-only", help="Hide warnings.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many problems (0: all).")] = 50,
    stream: Stream = None,
    quiet: Quiet = False,
) -> None:
    """Check a COCO file: exit 0 when valid, 1 when errors are found, 2 when unreadable.

    Warnings (boxes outside the image, unused categories, ...) are shown but do not
    fail the check unless --strict is given.

    Example: cocokit validate instances_val2017.json --errors-only

    Example: cocokit validate --results detections.json instances_val2017.json
    """
    from ..io.sniff import is_results_file

    if results is not None or is_results_file(file):
        from ..io.results import read_results

        gt = open_source(file, False, quiet or as_json) if results is not None else None
        report = read_results(results if results is not None else file, gt)[1]  # type: ignore[arg-type]
    else:
        # the same checks either way; --stream only chooses how the bytes are read
        report = validate_path(file, quiet or as_json, stream=use_stream(file, stream))
    problems = [p for p in report.problems if not errors_only or p.severity == "error"]
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        shown = problems if limit <= 0 else problems[:limit]
        for p in shown:
            style = "red" if p.severity == "error" else "yellow"
            console.print(
                f"[{style}]{p.severity}[/{style}] {escape(p.path or '<document>')} "
                f"[dim]\\[{p.code}][/dim] {escape(p.message)}",
                highlight=False,
            )
        if len(problems) > len(shown):
            console.print(f"... and {len(problems) - len(shown)} more (use --limit 0)")
        if not quiet:
            n_err, n_warn = len(report.errors), len(report.warnings)
            verdict = "[green]valid[/green]" if report.ok else "[red]invalid[/red]"
            err_console.print(f"{report.source}: {verdict}: {n_err} error(s), "
                              f"{n_warn} warning(s)")
    if unreadable(report):
        raise typer.Exit(2)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command()
def export(
    file: Annotated[
        str, typer.Argument(help="COCO JSON file to read (.json or .json.gz; a path or a URL; "
                            "for YOLO also a folder of splits).")
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="Output file (COCO) or folder (YOLO).")
    ],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="Dataset format to write.")
    ] = ExportFormat.coco,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    indent: Annotated[Optional[int], typer.Option(help="Pretty-print with this indent.")] = None,  # noqa: UP045
    task: Annotated[str, typer.Option(help="YOLO: detect, segment, pose or obb.")] = "detect",
    images: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--images", "-i", help="YOLO: the image folder (default: the COCO file's folder).")
    ] = None,
    image_mode: Annotated[ImageMode, typer.Option(
        help="YOLO: how images reach the output folder: link, copy or none.")
    ] = ImageMode.link,
    crowd: Annotated[str, typer.Option(help="YOLO: skip or keep crowd annotations.")] = "skip",
    split_name: Annotated[str, typer.Option(help="YOLO: split folder name.")] = "train",
    add_split: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="YOLO: NAME=FILE.json, one more split from another file (repeat)."),
    ] = None,
    split_images: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="YOLO: NAME=DIR, the image folder of one split (repeat); "
                     "for that split it replaces -i/--images."),
    ] = None,
    id_map: IdMapFile = None,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="Leave out the records validate calls "
                           "invalid (each is listed) instead of refusing the export.")
    ] = False,
    stream: Stream = None,
    quiet: Quiet = False,
    ignore_negative_samples: IgnoreNegativesAlias = False,
    image_dir: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--image-dir", hidden=True)] = None,
    split: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--split", hidden=True)] = None,
) -> None:
    """Re-export a COCO file under the export contract (ids, integrity, atomic write), or as YOLO.

    Ids are kept unless --image-ids/--annotation-ids auto renumber them 1..N.

    Example: cocokit export in.json -o out.json --annotation-ids auto --drop-negatives

    Example: cocokit export val.json --format yolo -i val2017/ -o yolo/

    Example: cocokit export in.json -o out.json --image-ids auto --id-map ids.json

    Example: cocokit export a.json --format yolo --add-split val=b.json --split-images val=b/ -o y/
    """
    invalid: Literal["error", "skip"] = "skip" if skip_invalid else "error"
    if indent is not None and not 0 <= indent <= 16:  # each space is repeated on every line
        raise OptionError("--indent", indent, "a number of spaces from 0 to 16")
    drop_negatives = renamed(drop_negatives, ignore_negative_samples,
                             "--ignore-negative-samples", "--drop-negatives", False)
    if images in YOLO_IMAGE_MODES and not Path(images).is_dir():
        # the old meaning of --images on export: how the images reach the YOLO folder
        deprecated(f"--images {images} is deprecated; use --image-mode {images} "
                   "(-i/--images is the image folder)")
        image_mode, images = ImageMode(images), None
    images = renamed(images, image_dir, "--image-dir", "-i/--images")
    add_split = renamed(add_split, split, "--split", "--add-split")
    if split_images and fmt is not ExportFormat.yolo:
        raise OptionError("--split-images", split_images[0], "--format yolo")
    if fmt is ExportFormat.yolo:
        from .yolo import export_yolo_command

        if id_map is not None:
            raise OptionError("--id-map", id_map, "--format coco (YOLO files have no ids)")
        if drop_negatives:
            raise OptionError("--drop-negatives", True, "--format coco (YOLO keeps images "
                              "without objects as empty label files)")
        # a file, or a folder of split files as `cocokit split` writes (one split each)
        export_yolo_command(
            Path(file),
            Path(output),
            task=task,
            images=image_mode.value,
            image_dir=Path(images) if images is not None else None,
            split_images=split_images or (),
            crowd=crowd,
            split_name=split_name,
            splits=add_split or (),
            quiet=quiet,
            invalid=invalid,
        )
        return
    check_file_output(output)
    check_id_map(id_map, [file], output)
    out = output
    # --indent needs the whole document in memory: it is never streamed
    src = open_source(file, False if indent is not None else stream, quiet)
    save_dataset(
        src,
        out,
        quiet=quiet,
        image_ids=image_ids.value,
        annotation_ids=annotation_ids.value,
        ignore_negative_samples=drop_negatives,
        indent=indent,
        invalid=invalid,
        id_map=id_map,
    )
