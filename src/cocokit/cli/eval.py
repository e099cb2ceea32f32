"""``cocokit eval``: COCO evaluation of detection results (pycocotools' numbers)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from ..errors import OptionError
from ._app import app, console, err_console, load_dataset, status
from ._options import Json, Quiet, check_file_output


class IouTypeOpt(str, Enum):
    bbox = "bbox"
    segm = "segm"
    keypoints = "keypoints"


class BackendOpt(str, Enum):
    pycocotools = "pycocotools"
    faster_coco_eval = "faster-coco-eval"
    hotcoco = "hotcoco"


@app.command("eval")
def eval_command(
    gt: Annotated[Path, typer.Argument(help="Ground truth COCO JSON file.")],
    results: Annotated[Path, typer.Argument(help="COCO results JSON file (detections).")],
    iou_type: Annotated[IouTypeOpt, typer.Option(
        "--iou-type", help="What to compare: boxes, masks or keypoints.")] = IouTypeOpt.bbox,
    as_json: Json = False,
    per_category: Annotated[bool, typer.Option(
        "--per-category", help="Also AP, AP50, AP75 and AR per category.")] = False,
    max_dets: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--max-dets", help="Detections per image, three increasing numbers (default "
        "1,10,100; keypoints: 20).")] = None,
    area_range: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--area-range", help="NAME=MIN:MAX in px²: replace COCOeval's range of that name "
        "(all, small, medium, large) or add one (repeat).")] = None,
    backend: Annotated[BackendOpt, typer.Option(
        "--backend", help="The COCOeval that computes the numbers (faster-coco-eval and "
        "hotcoco are optional extras).")] = BackendOpt.pycocotools,
    analyse: Annotated[bool, typer.Option(
        "--analyse", "--analyze", help="Also a TIDE-style error breakdown, the confusion "
        "of categories and the worst images (docs/predictions.md).")] = False,
    html: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--html", help="With --analyse: write a self-contained HTML report with plots "
        "(extra \\[plot]).")] = None,
    quiet: Quiet = False,
) -> None:
    """Evaluate detection results against their ground truth with COCOeval.

    The numbers are the backend's COCOeval summary (pycocotools by default), identical
    to running it by hand; results are first checked against the ground truth (image
    and category ids, boxes, scores) and a problem is one error line with its place.

    Example: cocokit eval instances_val2017.json detections.json --per-category

    Example: cocokit eval gt.json segm.json --iou-type segm --json --analyse --html report.html
    """
    from ..evaluation import evaluate, parse_area_range, parse_max_dets
    from ..io.results import load_results

    dets = parse_max_dets(max_dets, iou_type.value)
    ranges = dict(parse_area_range(a) for a in area_range or [])
    if html is not None:
        if not analyse:
            raise OptionError("--html", html, "--analyse as well")
        check_file_output(html, "--html")
        from ..report import require_plotting

        require_plotting()
    ds = load_dataset(gt, quiet or as_json)
    with status(f"reading {results.name}", quiet or as_json):
        res = load_results(results, ds)
    with status(f"evaluating with {backend.value}", quiet or as_json):
        ev = evaluate(ds, res, iou_type=iou_type.value, max_dets=dets, area_ranges=ranges,
                      per_category=per_category, backend=backend.value, files=(gt, results))
    analysis = None
    if analyse:
        from ..analysis import analyse_results

        with status("analysing errors", quiet or as_json):
            analysis = analyse_results(ds, res, iou_type=iou_type.value, evaluation=ev)
    if as_json:
        out = ev.to_dict()
        if analysis is not None:
            out["analysis"] = analysis.to_dict()
        typer.echo(json.dumps(out, indent=2))
    else:
        for line in ev.summary_lines():
            console.print(line, markup=False, highlight=False)
        if "area_range_metrics" in (d := ev.to_dict()):
            for name, m in d["area_range_metrics"].items():
                lo, hi = ev.area_ranges[name]
                console.print(f" area {name} [{lo:g}, {hi:g}]: AP = {m['AP']:0.3f}, "
                              f"AR = {m['AR']:0.3f}", markup=False, highlight=False)
        if ev.per_category is not None:
            table = Table("id", "name", "AP", "AP50", "AP75", "AR", title="per category")
            for row in ev.per_category:
                table.add_row(str(row["id"]), str(row["name"]),
                              *(f"{row[k]:0.3f}" for k in ("AP", "AP50", "AP75", "AR")))
            console.print(table)
        if analysis is not None:
            for line in analysis.lines():
                console.print(line, markup=False, highlight=False)
    if html is not None and analysis is not None:
        from ..analysis import write_analysis_report

        with status(f"plotting {Path(html).name}", quiet):
            write_analysis_report(analysis, ev, Path(html), ds)
        if not quiet:
            err_console.print(f"wrote {html}", markup=False, highlight=False)


__all__ = ["eval_command"]
