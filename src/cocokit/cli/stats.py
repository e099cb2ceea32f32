"""Commands to look at a dataset: ``stats`` (tables, JSON, HTML report) and ``draw``."""

from __future__ import annotations

import io
import json
from enum import Enum
from pathlib import Path, PurePosixPath
from typing import Annotated, Optional

import numpy as np
import typer
from rich import box
from rich.table import Table

from ..dataset import Dataset
from ..errors import InputError, OptionError
from ..stats import DatasetStats, Distribution
from ._app import (
    Stream,
    app,
    console,
    err_console,
    load_dataset,
    open_source,
    progress_bar,
    status,
    use_stream,
    working,
)
from ._options import (
    CocoFile,
    CocoPath,
    Json,
    Quiet,
    Yes,
    check_file_output,
    check_folder_output,
    check_image_folder,
    check_run_size,
    check_seed,
    estimated_bytes,
    renamed,
)

#: How many problems ``draw`` lists before it only counts them.
SHOWN_PROBLEMS = 20


def _n(x: float | int | None, digits: int = 1) -> str:
    if x is None:
        return "-"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.{digits}f}" if digits else f"{round(x):,}"


def _i(x: float | int | None) -> str:
    """A number rounded to an integer, without separators (tables stay narrow)."""
    return "-" if x is None else str(round(x))


def _dist(d: Distribution) -> str:
    return f"{_n(d.min)} / {_n(d.median)} / {_n(d.mean, 2)} / {_n(d.max)}"


def _print_stats(s: DatasetStats, file: str | Path) -> None:
    summary = Table(title=f"{file}", show_header=False, title_justify="left",
                    box=box.SIMPLE, pad_edge=False)
    mmm = "min / median / mean / max"
    summary.add_column("", style="dim")
    summary.add_column("", justify="right")
    rows = [
        ("images", _n(s.images)),
        ("negatives (no annotations)", _n(s.negatives)),
        ("annotations", _n(s.annotations)),
        ("crowd", _n(s.crowd)),
        ("categories declared / used", f"{_n(s.categories)} / {_n(s.categories_used)}"),
        (f"annotations per image {mmm}", _dist(s.annotations_per_image)),
        (f"image width {mmm}", _dist(s.image_width)),
        (f"image height {mmm}", _dist(s.image_height)),
        ("most common image sizes",
         ", ".join(f"{z.width}x{z.height} ({z.images})" for z in s.image_sizes[:3])
         + f"; {s.distinct_image_sizes} distinct"),
        (f"area {mmm}", _dist(s.area)),
        ("small / medium / large (COCOeval)", f"{_n(s.small)} / {_n(s.medium)} / {_n(s.large)}"),
    ]
    if s.dangling:
        rows.append(("[yellow]annotations on no image[/yellow]", _n(s.dangling)))
    if s.undeclared:
        rows.append(("[yellow]annotations of undeclared categories[/yellow]", _n(s.undeclared)))
    if s.areas_computed:
        rows.append(("areas computed (no area field)", _n(s.areas_computed)))
    for k, v in rows:
        summary.add_row(k, v)
    console.print(summary)

    table = Table(title="per category (area in px²: min / median / max)", title_justify="left",
                  box=None, padding=(0, 0, 0, 1), header_style="bold underline")
    for head in ("id", "name", "images", "anns", "crowd", "area min", "median", "max",
                 "small", "med", "large"):
        table.add_column(head, justify="left" if head == "name" else "right",
                         min_width=10 if head == "name" else None)
    for c in s.per_category:
        style = "red" if not c.declared else ("dim" if c.annotations == 0 else None)
        table.add_row(
            str(c.id), c.name if c.name is not None else "(undeclared)", _i(c.images),
            _i(c.annotations), _i(c.crowd), _i(c.area_min), _i(c.area_median),
            _i(c.area_max), _i(c.small), _i(c.medium), _i(c.large), style=style,
        )
    console.print(table)
    console.print("[dim]small/medium/large: what COCOeval evaluates (not crowd; area bounds 32² "
                  "and 96², inclusive on both sides)[/dim]")


@app.command("stats")
def stats_command(
    file: CocoFile,
    as_json: Json = False,
    html: Annotated[Optional[str], typer.Option(  # noqa: UP045 (typer needs Optional)
        "--html", "--output", "-o",
        help="Also write a self-contained HTML report with plots (needs the extra "
             "\\[plot]: pip install 'cocokit\\[plot]'; and the whole file in memory: "
             "not with --stream).",
    )] = None,
    stream: Stream = None,
    quiet: Quiet = False,
) -> None:
    """Per-category and per-dataset statistics; optionally an HTML report with plots.

    Per category: images, annotations, crowd, area min/median/max and COCO's
    small/medium/large counts; per dataset: images, negatives, annotations per image,
    image sizes.

    Streamed (--stream, the default for a file large for this machine), the file is
    read in runs and the statistics are the same; --html then needs --no-stream.

    Given a results list (detections): counts per category and a score histogram.

    Example: cocokit stats instances_val2017.json --html report.html
    """
    from ..io.files import is_url
    from ..io.sniff import is_results_file

    # a URL as typed; a local path as a Path, named in messages as before
    path: str | Path = file if is_url(file) else Path(file)
    if is_results_file(path):
        if html is not None:
            raise OptionError("--html", html, "a COCO dataset (the HTML report of a results "
                              "file is `cocokit eval GT RESULTS --analyse --html`)")
        from .results import show_results

        show_results(path, as_json, histogram=True)
        return
    streamed = use_stream(path, stream)
    if html is not None:
        if streamed:
            raise OptionError("--stream", "--html",
                              "no --html when the file is streamed (by --stream, or by default "
                              "when it is large for this machine): the report plots every box "
                              "and needs the file in memory; add --no-stream")
        check_file_output(html, "-o/--html")
        from ..report import require_plotting

        require_plotting()
    from ..stats import compute_stats

    source = open_source(path, streamed, quiet or as_json)
    with working(source, f"reading {path} in runs", quiet or as_json):
        stats = compute_stats(source)
    if as_json:
        typer.echo(json.dumps(stats.to_dict(), indent=2, allow_nan=False))
    else:
        _print_stats(stats, path)
    if html is not None and isinstance(source, Dataset):
        from ..report import write_report

        with status(f"plotting {Path(html).name}", quiet):
            write_report(source, Path(html), stats)
        if not quiet:
            err_console.print(f"wrote {html}")


class ImageFormat(str, Enum):
    auto = "auto"
    png = "png"
    jpg = "jpg"


def _select(ds: Dataset, image_ids: list[int], file_names: list[str], sample: int | None,
            seed: int) -> np.ndarray:
    from ..draw import resolve_image

    given = [name for name, v in (("--image-id", image_ids), ("--file-name", file_names),
                                  ("--sample", sample is not None)) if v]
    if len(given) > 1:
        raise OptionError(" / ".join(given), "both", "at most one way to choose images")
    if image_ids:
        return np.array([resolve_image(ds, image_id=i) for i in image_ids], np.int64)
    if file_names:
        return np.array([resolve_image(ds, f) for f in file_names], np.int64)
    n = len(ds.images)
    if sample is not None:
        if sample < 1:
            raise OptionError("--sample", sample, "a positive number of images")
        check_seed(seed)
        rng = np.random.default_rng(seed)
        return np.sort(rng.choice(n, size=min(sample, n), replace=False))
    return np.arange(n)


def output_name(file_name: str, fmt: ImageFormat) -> PurePosixPath:
    """Where a drawn image goes inside the output folder: ``file_name`` with its
    sub-folders kept (a leading ``/`` or drive dropped) and the suffix of the format.

    Raises InputError for a name that would leave the folder (``..``) or is empty.
    """
    parts = [p for p in PurePosixPath(file_name.replace("\\", "/")).parts if p != "/"]
    if parts and parts[0].endswith(":"):  # a Windows drive
        parts = parts[1:]
    if not parts or any(p in ("..", ".") for p in parts):
        raise InputError(None, "file_name", f"{file_name!r} cannot name a file inside the "
                         "output folder")
    out = PurePosixPath(*parts)
    suffix = out.suffix.lower()
    if fmt is ImageFormat.auto:
        new = suffix if suffix in (".png", ".jpg", ".jpeg") else ".png"
    else:
        new = f".{fmt.value}"
    return out if suffix == new else out.with_suffix(new)


def _targets(ds: Dataset, rows: np.ndarray, fmt: ImageFormat) -> list[PurePosixPath]:
    """Output names of the rows; where two would collide, the image id is added."""
    names = [output_name(str(ds.images.file_name[r]), fmt) for r in rows.tolist()]
    seen: dict[str, int] = {}
    for n in names:
        seen[str(n).lower()] = seen.get(str(n).lower(), 0) + 1
    return [
        n.with_name(f"{n.stem}.id{int(ds.images.id[r])}{n.suffix}") if seen[str(n).lower()] > 1
        else n
        for n, r in zip(names, rows.tolist(), strict=True)
    ]


@app.command("draw")
def draw_command(
    file: CocoPath,
    images: Annotated[Path, typer.Option(
        "--images", "-i", help="Folder the file_name paths are in.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Folder to write drawings to "
                                        "(created if missing; its parent must exist).")],
    image_id: Annotated[Optional[list[int]], typer.Option(  # noqa: UP045
        "--image-id", help="Draw this image id (repeatable).")] = None,
    file_name: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--file-name", help="Draw the image with this file_name (repeatable).")] = None,
    sample: Annotated[Optional[int], typer.Option(  # noqa: UP045
        "--sample", help="Draw this many images picked at random (see --seed).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    show: Annotated[str, typer.Option(help="Layers to draw, comma-separated.")] =
        "masks,boxes,keypoints,labels",
    image_format: Annotated[ImageFormat, typer.Option(
        "--image-format", help="Image format of the drawings; auto keeps PNG/JPEG as the "
        "source was.")] = ImageFormat.auto,
    alpha: Annotated[float, typer.Option(help="Opacity of mask fills (0-1).")] = 0.45,
    results: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--results", help="Also draw these predictions (a COCO results file): dashed, "
        "with their score.")] = None,
    score: Annotated[float, typer.Option(
        "--score", help="With --results: draw predictions scoring at least this (0-1).")]
        = 0.0,
    iou: Annotated[Optional[float], typer.Option(  # noqa: UP045
        "--iou", help="With --results: match predictions to the ground truth at this box "
        "IoU (as COCOeval) and mark false positives (red, FP) and missed objects "
        "(red, missed).")] = None,
    yes: Yes = False,
    quiet: Quiet = False,
    fmt: Annotated[Optional[ImageFormat], typer.Option(  # noqa: UP045
        "--format", hidden=True)] = None,
) -> None:
    """Write copies of images with masks, boxes, keypoints and labels drawn on them.

    Without --image-id, --file-name or --sample every image is drawn. Images whose file
    is missing or whose annotations cannot be drawn are listed and the exit code is 1.
    With --results, predictions are drawn over the ground truth: dashed boxes, mask
    outlines and labels with the score.
    More than 1,000,000 drawings (or an estimated 1 TB) are refused before any work
    unless --yes (docs/limits.md).

    Example: cocokit draw instances_val2017.json -i val2017 -o drawn --sample 20

    Example: cocokit draw gt.json -i val2017 --results preds.json --score 0.3 --iou 0.5 -o drawn
    """
    from ..draw import draw, parse_show
    from ..io import files
    from ..io.atomic import atomic_write

    image_format = renamed(image_format, fmt, "--format", "--image-format", ImageFormat.auto)

    layers = parse_show(show)
    if not 0.0 <= alpha <= 1.0:
        raise OptionError("--alpha", alpha, "a number from 0 to 1")
    if not layers:
        raise OptionError("--show", show, "at least one of masks,boxes,keypoints,labels")
    if results is None and (score != 0.0 or iou is not None):
        raise OptionError("--score/--iou", "without --results",
                          "--results FILE (they choose and match the predictions drawn)")
    if not 0.0 <= score <= 1.0:
        raise OptionError("--score", score, "a number from 0 to 1")
    if iou is not None and not 0.0 < iou <= 1.0:
        raise OptionError("--iou", iou, "a number above 0, at most 1")
    check_image_folder(images)
    check_folder_output(output)
    out_dir = Path(output)
    if out_dir.resolve() == images.resolve():
        raise OptionError("-o/--output", output,
                          "a folder other than -i/--images (drawings would replace the images)")
    ds = load_dataset(file, quiet)
    found = None
    if results is not None:
        from ..io.results import load_results

        found = load_results(results, ds)
        by_image = np.argsort(found.image_id, kind="stable")
        sorted_ids = found.image_id[by_image]
    rows = _select(ds, image_id or [], file_name or [], sample, seed)
    _, first = np.unique(rows, return_index=True)
    rows = rows[np.sort(first)]  # each image once, in the order asked
    targets = _targets(ds, rows, image_format)
    pixels = ds.images.width[rows].astype(np.float64) * ds.images.height[rows]
    check_run_size("--sample", sample, len(rows),
                   estimated_bytes(pixels, [t.suffix for t in targets]), yes,
                   what="drawn images")
    files.makedirs(out_dir)

    problems: list[str] = []
    written = 0
    with progress_bar("drawing", quiet, total=len(rows)) as update:
        for k, (row, rel) in enumerate(zip(rows.tolist(), targets, strict=True)):
            update(k, len(rows))
            mine = None
            if found is not None:
                iid = int(ds.images.id[row])
                lo, hi = np.searchsorted(sorted_ids, [iid, iid + 1])
                mine = found.take(by_image[lo:hi])
            try:
                picture = draw(ds, row, images, layers, alpha=alpha, results=mine,
                               score=score, iou=iou)
            except InputError as e:
                problems.append(str(e))
                continue
            target = out_dir / rel
            files.makedirs(target.parent)
            buf = io.BytesIO()
            if rel.suffix.lower() in (".jpg", ".jpeg"):
                picture.save(buf, format="JPEG", quality=92)
            else:
                picture.save(buf, format="PNG")
            atomic_write(target, [buf.getvalue()])
            written += 1
        update(len(rows), len(rows))
    if not quiet:
        err_console.print(f"wrote {written} drawn image(s) to {output}")
    if problems:
        for p in problems[:SHOWN_PROBLEMS]:
            err_console.print(f"problem: {p}", markup=False, highlight=False, soft_wrap=True)
        if len(problems) > SHOWN_PROBLEMS:
            err_console.print(f"... and {len(problems) - SHOWN_PROBLEMS} more problem(s)")
        err_console.print(f"{len(problems)} of {len(rows)} image(s) could not be drawn")
        raise typer.Exit(1)


__all__ = ["draw_command", "output_name", "stats_command"]
