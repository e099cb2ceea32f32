"""The ``repair`` command: deterministic, named fixes, every change reported (see
:mod:`cocokit.quality.repair`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ..errors import IntegrityError, OptionError
from ._app import app, err_console, load_dataset, save_dataset, status
from ._options import (
    DEFAULT_IDS,
    AnnotationIds,
    CocoPath,
    IdPolicy,
    ImageIds,
    Quiet,
    check_file_output,
)


@app.command("repair")
def repair_command(
    file: CocoPath,
    output: Annotated[Path, typer.Option("--output", "-o", help="The repaired COCO file.")],
    fix: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--fix", help="A fix to apply (repeatable): dangling, exact-duplicates, "
        "duplicate-ids, clip, degenerate, recompute, invalid. Default: all of them.")] = None,
    report: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--report", help="Write every change (fix, JSON path, old and new value) to this "
        "JSON file.")] = None,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    quiet: Quiet = False,
) -> None:
    """Repair a dataset with deterministic, named fixes, and say exactly what changed.

    The fixes run in a fixed order (dangling, exact-duplicates, duplicate-ids, clip,
    degenerate, recompute, invalid), whatever the order of --fix. Each change is
    reported by the JSON path in FILE with its old and new value; everything else is
    written as it was read (ids, extra keys, RLE, keypoints). The output passes
    validate (repeated image or category ids are not repaired: the write then refuses,
    naming them, and nothing is written; --image-ids auto renumbers the images 1..N
    where no annotation makes a repeated id ambiguous, --annotation-ids auto the
    annotations, on writing: not listed as changes).

    Example: cocokit repair train.json -o train.fixed.json --report changes.json
    """
    from ..io.atomic import atomic_write
    from ..quality.repair import FIXES, repair_dataset

    for name in fix or []:
        if name not in FIXES:
            raise OptionError("--fix", name, "one of " + ", ".join(FIXES))
    check_file_output(output)
    if report is not None:
        check_file_output(report, "--report")
        if report.resolve() == output.resolve():
            raise OptionError("--report", str(report), "a path other than -o/--output")
    ds = load_dataset(file, quiet)
    with status("repairing", quiet):
        try:
            result = repair_dataset(ds, fix or None)
        except IntegrityError as e:  # what no fix can mend: named with the output refused
            raise IntegrityError(e.problems, target=str(output)) from None

    def write_report(_: Any) -> None:  # in one set with the repaired file
        if report is not None:
            text = json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n"
            atomic_write(report, [text.encode("utf-8")])

    save_dataset(result.dataset, output, quiet=quiet, image_ids=image_ids.value,
                 annotation_ids=annotation_ids.value,
                 ids_line=IdPolicy.auto in (image_ids, annotation_ids), beside=write_report)
    if not quiet:
        counts = ", ".join(f"{k} {v}" for k, v in result.counts().items())
        err_console.print(f"{len(result.changes)} change(s): {counts}"
                          + (f"; listed in {report}" if report is not None else ""),
                          markup=False, highlight=False, soft_wrap=True)


__all__ = ["repair_command"]
