"""The ``diff`` command: images, annotations and categories added, removed and changed
between two COCO files (see :mod:`cocokit.quality.diff`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..errors import OptionError
from ._app import app, console, load_dataset, status
from ._options import Json, Quiet

#: entries listed per kind on the terminal (all of them with --json)
SHOWN = 10


@app.command("diff")
def diff_command(
    a: Annotated[Path, typer.Argument(help="The first COCO file (the old one).")],
    b: Annotated[Path, typer.Argument(help="The second COCO file (the new one).")],
    as_json: Json = False,
    iou: Annotated[float, typer.Option(
        help="Annotations whose box changed are matched (moved) at this box IoU or more; "
        "below it they count as removed and added.")] = 0.5,
    quiet: Quiet = False,
) -> None:
    """Show what changed from A to B: images (matched by file_name) added, removed and
    changed; annotations (matched by image, category and box) added, removed, moved and
    changed; categories (matched by id) added, removed, renamed and changed; and the
    count of each kind.

    Exit code 0 when A and B hold the same data, 1 when they differ.

    Example: cocokit diff train.json train.fixed.json --json
    """
    from ..quality.diff import diff_datasets

    if not 0.0 < iou <= 1.0:
        raise OptionError("--iou", iou, "a number in (0, 1]")
    da = load_dataset(a, quiet or as_json)
    db = load_dataset(b, quiet or as_json)
    with status("comparing images, annotations and categories", quiet or as_json):
        result = diff_datasets(da, db, iou=iou)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1, allow_nan=False))
    else:
        table = Table(title=f"diff {a} {b}", title_justify="left", box=None,
                      padding=(0, 0, 0, 1), header_style="bold underline")
        table.add_column("kind", justify="left")
        table.add_column("count", justify="right")
        for kind, n in result.counts().items():
            table.add_row(kind.replace("_", " "), f"{n:,}", style=None if n else "dim")
        console.print(table)
        for kind, n in result.counts().items():
            for entry in getattr(result, kind)[:SHOWN]:
                console.print(f"{kind.replace('_', ' ')}: {json.dumps(entry)}", markup=False,
                              highlight=False, soft_wrap=True)
            if n > SHOWN:
                console.print(f"... and {n - SHOWN:,} more {kind.replace('_', ' ')} (--json "
                              "lists all)", markup=False, highlight=False)
    if not result.same:
        raise typer.Exit(1)


__all__ = ["diff_command"]
