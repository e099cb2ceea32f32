"""Core commands: info, validate, export."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from ._app import (
    QUIET_HELP,
    Stream,
    app,
    check_output,
    console,
    err_console,
    load_dataset,
    progress_bar,
    save_dataset,
    status,
    use_stream,
)


class IdPolicyOpt(str, Enum):
    auto = "auto"
    keep = "keep"


class ExportFormat(str, Enum):
    coco = "coco"
    yolo = "yolo"


# problems that mean the file could not be read as a COCO document at all
UNREADABLE = {"json-syntax", "top-not-object"}

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help=QUIET_HELP)]


@app.command()
def info(
    file: Annotated[Path, typer.Argument(help="COCO JSON file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON to stdout.")] = False,
    stream: Stream = None,
    quiet: Quiet = False,
) -> None:
    """Show counts and a per-category table of annotations and images.

    Example: cocokit info instances_val2017.json
    """
    from ..summary import summarize

    if use_stream(file, stream):
        from ..io.stream import open_stream

        with status(f"reading {file} in runs", quiet or as_json):
            summary = summarize(open_stream(file))
    else:
        summary = summarize(load_dataset(file, quiet or as_json))
    if as_json:
        print(json.dumps(dict(file=str(file), **summary.to_dict()), indent=2))
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
    file: Annotated[Path, typer.Argument(help="COCO JSON file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
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
    """
    from ..validate import validate_file

    with status(f"validating {file}", quiet or as_json):
        # the same checks either way; --stream only chooses how the bytes are read
        report = validate_file(file, stream=use_stream(file, stream), max_problems=10_000)
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
            err_console.print(f"{file}: {verdict}: {n_err} error(s), {n_warn} warning(s)")
    if any(p.code in UNREADABLE for p in report.errors):
        raise typer.Exit(2)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@app.command()
def export(
    file: Annotated[
        Path, typer.Argument(help="COCO JSON file to read (for YOLO also a folder of splits).")
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Output file (COCO) or folder (YOLO).")
    ],
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="Output format.")
    ] = ExportFormat.coco,
    image_ids: Annotated[
        IdPolicyOpt, typer.Option(help="auto: 1..N in order; keep: as given.")
    ] = IdPolicyOpt.auto,
    annotation_ids: Annotated[
        IdPolicyOpt, typer.Option(help="auto: 1..M; keep: as given.")
    ] = IdPolicyOpt.auto,
    ignore_negative_samples: Annotated[
        bool, typer.Option(help="Drop images without annotations.")
    ] = False,
    indent: Annotated[Optional[int], typer.Option(help="Pretty-print with this indent.")] = None,  # noqa: UP045
    task: Annotated[str, typer.Option(help="YOLO: detect or segment.")] = "detect",
    images: Annotated[str, typer.Option(help="YOLO: link, copy or none.")] = "link",
    image_dir: Annotated[Optional[Path], typer.Option(help="YOLO: folder of the images.")] = None,  # noqa: UP045
    crowd: Annotated[str, typer.Option(help="YOLO: skip or keep crowd annotations.")] = "skip",
    split_name: Annotated[str, typer.Option(help="YOLO: split folder name.")] = "train",
    split: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(help="YOLO: NAME=FILE.json, one more split from another file (repeat)."),
    ] = None,
    stream: Stream = None,
    quiet: Quiet = False,
) -> None:
    """Re-export a COCO file under the export contract (ids, integrity, atomic write), or as YOLO.

    Example: cocokit export in.json -o out.json --image-ids keep --ignore-negative-samples
    """
    if fmt is ExportFormat.coco and indent is None and use_stream(file, stream):
        from ..io.stream import open_stream, write_coco_stream

        check_output(output)
        with status(f"indexing {file}", quiet):
            src = open_stream(file)
        with progress_bar(f"writing {output.name}", quiet) as update:
            summary = write_coco_stream(
                src,
                output,
                image_ids=image_ids.value,
                annotation_ids=annotation_ids.value,
                ignore_negative_samples=ignore_negative_samples,
                progress=update,
            )
        if not quiet:
            err_console.print(
                f"wrote {output}: {summary.images} images, "
                f"{summary.annotations} annotations (streamed)"
            )
        return
    if fmt is ExportFormat.yolo:
        from .yolo import export_yolo_command

        # a file, or a folder of split files as `cocokit split` writes (one split each)
        export_yolo_command(
            file,
            output,
            task=task,
            images=images,
            image_dir=image_dir,
            crowd=crowd,
            split_name=split_name,
            splits=split or (),
            quiet=quiet,
        )
        return
    ds = load_dataset(file, quiet)
    check_output(output)
    save_dataset(
        ds,
        output,
        quiet=quiet,
        image_ids=image_ids.value,
        annotation_ids=annotation_ids.value,
        ignore_negative_samples=ignore_negative_samples,
        indent=indent,
    )
