"""``cocokit results unslice``: predictions on tiles back on their source images."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from ._app import err_console, load_dataset, status
from ._options import Json, Quiet, check_file_output
from ._results_app import results_app


class MergeChoice(str, Enum):
    greedy_nmm = "greedy-nmm"
    nmm = "nmm"
    nms = "nms"
    none = "none"


class MetricChoice(str, Enum):
    ios = "ios"
    iou = "iou"


@results_app.command("unslice")
def unslice_command(
    results: Annotated[Path, typer.Argument(help="Results on the tiles (a COCO results "
                                            "JSON list).")],
    tiles: Annotated[Path, typer.Option("--tiles", help="The tiles' COCO file that "
                                        "cocokit slice wrote.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Results file to write "
                                        "(on the source images).")],
    merge: Annotated[MergeChoice, typer.Option(
        "--merge", help="How duplicates from overlapping tiles are merged.")] =
        MergeChoice.greedy_nmm,
    match_metric: Annotated[MetricChoice, typer.Option(
        "--match-metric", help="Overlap that makes two detections duplicates: "
        "intersection over union, or over the smaller box.")] = MetricChoice.ios,
    match_threshold: Annotated[float, typer.Option(
        "--match-threshold", help="Overlap from which two detections are duplicates "
        "(0-1).")] = 0.5,
    class_agnostic: Annotated[bool, typer.Option(
        "--class-agnostic", help="Merge detections of different categories too.")] = False,
    full: Annotated[Optional[Path], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--full", help="Results on the whole source images, merged in too (SAHI's "
        "standard + sliced prediction).")] = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Move detections made on tiles back into their source images and merge duplicates.

    Boxes, polygons and RLE masks move by each tile's source_window (recorded by
    slice); image ids become the source images' ids. Detections that overlapping
    tiles found twice, or that a tile border cut in two, are merged (SAHI's
    postprocess; its defaults: greedy-nmm, ios, 0.5, per category).

    Example: cocokit results unslice tile_preds.json --tiles tiles/tiles.json -o preds.json
    """
    from ..errors import OptionError
    from ..io.results import load_results, write_results
    from ..unslice import unslice_results

    if not 0.0 <= match_threshold <= 1.0:
        raise OptionError("--match-threshold", match_threshold, "a number from 0 to 1")
    check_file_output(output)
    with status(f"reading {results}", quiet or as_json):
        found = load_results(results)
        extra = load_results(full) if full is not None else None
    tiled = load_dataset(tiles, quiet or as_json)
    with status(f"moving {len(found):,} detections into their images and merging",
                quiet or as_json):
        out = unslice_results(found, tiled, merge=merge.value,
                              match_metric=match_metric.value,
                              match_threshold=match_threshold, class_agnostic=class_agnostic,
                              full=extra)
    with status(f"writing {output}", quiet or as_json):
        write_results(out, output)
    summary = {
        "output": output, "tile_detections": len(found),
        "full_detections": len(extra) if extra is not None else 0,
        "detections": len(out), "images": len(set(out.image_id.tolist())),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    elif not quiet:
        full_note = f" and {summary['full_detections']} on whole images" if extra else ""
        err_console.print(
            f"wrote {output}: {len(out)} detections on {summary['images']} images, from "
            f"{len(found)} on tiles{full_note} ({merge.value}, {match_metric.value} >= "
            f"{match_threshold:g})", markup=False, highlight=False, soft_wrap=True)


__all__ = ["unslice_command"]
