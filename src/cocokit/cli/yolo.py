"""YOLO on the command line: ``cocokit import DIR --format yolo`` and the work behind
``cocokit export IN --format yolo`` (the ``export`` command itself lives with the core
commands and calls :func:`export_yolo_command`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..dataset import Dataset
from ..errors import OptionError
from ..io.yolo import YoloExportSummary, read_yolo, write_yolo
from ._app import (
    app,
    err_console,
    load_dataset,
    print_export_notes,
    progress_bar,
    save_dataset,
)
from ._options import (
    DEFAULT_IDS,
    AnnotationIds,
    DropNegatives,
    ImageIds,
    Quiet,
    check_file_output,
    check_folder_output,
)

__all__ = ["export_yolo_command", "import_command"]


def _split_inputs(input: Dataset | Mapping[str, Dataset] | Path | None, split_name: str,
                  splits: Sequence[str], quiet: bool) -> dict[str, Dataset]:
    """The datasets to export, by split name: IN alone (a COCO file or a dataset) is one
    split named ``split_name``; IN a folder (``cocokit split`` output) gives one split per
    ``*.json`` file, named by its stem; each ``NAME=FILE`` of ``splits`` adds one split."""
    out: dict[str, Dataset] = {}
    if isinstance(input, Dataset):
        out[split_name] = input
    elif isinstance(input, Mapping):
        out.update(input)
    elif input is not None:
        input = Path(input)
        if input.is_dir():
            files = sorted(input.glob("*.json"))
            if not files:
                raise OptionError("IN", str(input), "a COCO file, or a folder of COCO files "
                                  "(one per split, named by split)")
            for f in files:
                out[f.stem] = load_dataset(f, quiet)
        else:
            out[split_name] = load_dataset(input, quiet)
    for entry in splits:
        name, sep, file = entry.partition("=")
        if not sep or not name or not file:
            raise OptionError("--add-split", entry, "NAME=FILE.json")
        if name in out:
            raise OptionError("--add-split", entry, f"a split name not given twice ({name!r})")
        out[name] = load_dataset(Path(file), quiet)
    if not out:
        raise OptionError("IN", None, "a COCO file, a folder of split files, or --split "
                          "NAME=FILE.json")
    return out


def export_yolo_command(
    input: Dataset | Mapping[str, Dataset] | Path | None,
    output: Path,
    *,
    task: str = "detect",
    images: str = "link",
    crowd: str = "skip",
    split_name: str = "train",
    splits: Sequence[str] = (),
    image_dir: Path | None = None,
    split_images: Sequence[str] = (),
    precision: int | None = None,
    clip: bool = True,
    check_sizes: bool = True,
    quiet: bool = False,
    invalid: str = "error",
) -> YoloExportSummary:
    """Export COCO file(s) as an Ultralytics YOLO dataset in the folder ``output``.

    ``input``: a COCO file or a loaded dataset (written as split ``split_name``), a
    folder of COCO files, one per split, named by split (what ``cocokit split`` writes),
    or a mapping split name -> dataset; ``splits`` adds ``NAME=FILE.json`` entries
    (``--add-split``, repeatable). The other options are those of
    :func:`cocokit.io.yolo.write_yolo`; ``image_dir`` (``-i``) defaults to each COCO
    file's folder, and ``split_images`` (``NAME=DIR`` entries, ``--split-images``) gives
    one split its own. Prints a per-split summary unless ``quiet``; returns the summary.
    """
    check_folder_output(output)
    datasets = _split_inputs(input, split_name, splits, quiet)
    dirs: dict[str, Path] = {} if image_dir is None else dict.fromkeys(datasets, image_dir)
    for entry in split_images:
        name, sep, folder = entry.partition("=")
        if not sep or not name or not folder:
            raise OptionError("--split-images", entry, "NAME=DIR")
        if name not in datasets:
            raise OptionError("--split-images", entry,
                              f"the name of a split being written ({', '.join(datasets)})")
        dirs[name] = Path(folder)
    with progress_bar(f"writing {output}", quiet) as update:
        summary = write_yolo(datasets, output, task=task,  # type: ignore[arg-type]
                             images=images,  # type: ignore[arg-type]
                             image_dir=dirs, crowd=crowd,  # type: ignore[arg-type]
                             clip=clip, precision=precision, check_sizes=check_sizes,
                             progress=update, invalid=invalid,  # type: ignore[arg-type]
                             no_images="--image-mode none")
    if not quiet:
        _print_summary(summary)
        print_export_notes(summary.skipped, ())
    return summary


def _print_summary(summary: YoloExportSummary) -> None:
    err_console.print(f"wrote {summary.data_yaml}: {len(summary.names)} classes, task "
                      f"{summary.task}", markup=False, highlight=False)
    for s in summary.splits.values():
        notes = [f"{n} {what}" for n, what in (
            (s.negatives, "without objects"), (s.skipped_crowd, "crowd annotations skipped"),
            (s.skipped_empty, "annotations without area skipped"),
            (s.box_as_polygon, "boxes written as polygons"),
            (s.clipped, "rows clipped to the image"),
            (s.keypoints_padded, "objects padded with unlabelled keypoints"),
            (s.rotated_from_polygon, "polygons written as rotated rectangles")) if n]
        line = f"  {s.name}: {s.images} images, {s.rows} objects"
        err_console.print(line + (f" ({', '.join(notes)})" if notes else ""), markup=False,
                          highlight=False)
        if s.unsupported_suffix:
            err_console.print(f"  warning: {s.unsupported_suffix} image(s) in {s.name} have a "
                              "suffix Ultralytics does not load", markup=False, highlight=False)
    for note in summary.notes:
        err_console.print(f"  note: {note}", markup=False, highlight=False)


@app.command("import")
def import_command(
    source: Annotated[Path, typer.Argument(help="The dataset folder (with data.yaml) or the "
                                           "data.yaml file.")],
    output: Annotated[str, typer.Option("--output", "-o", help="COCO JSON file to write.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="Dataset format to read: yolo.")],
    split: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Read only this split (a key of data.yaml: train, val, test, ...); default: "
        "all.")] = None,
    sizes: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Image sizes instead of image headers: a COCO file, or a JSON mapping "
        "file_name -> \\[width, height].")] = None,
    task: Annotated[str, typer.Option(
        help="Label rows to read: auto (pose when data.yaml has kpt_shape, else by the "
        "count of values), detect, segment, pose or obb.")] = "auto",
    keep_joined: Annotated[bool, typer.Option(
        "--keep-joined", help="Keep each multi-part polygon as the one joined ring YOLO "
        "stores (default: split it back into its parts).")] = False,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    quiet: Quiet = False,
) -> None:
    """Import an Ultralytics YOLO dataset (detect, segment, pose or obb labels) as a COCO JSON file.

    Sizes come from image headers (no decoding; EXIF rotation applied) or --sizes. Images
    and annotations are new records, numbered 1..N in reading order.

    Example: cocokit import datasets/coco8 --format yolo -o coco8.json
    """
    if fmt.lower() != "yolo":
        raise OptionError("--format", fmt, "'yolo'")
    check_file_output(output)
    with progress_bar(f"reading {source}", quiet) as update:
        ds = read_yolo(source, split=split, sizes=sizes, split_polygons=not keep_joined,
                       progress=update, task=task)  # type: ignore[arg-type]
    save_dataset(ds, Path(output), quiet=quiet, image_ids=image_ids.value,
                 annotation_ids=annotation_ids.value, ignore_negative_samples=drop_negatives,
                 new_records="all" if not drop_negatives else None)
