"""The ``results`` group: commands on detection results (COCO results lists).

``cocokit results remap`` carries results over to a renumbered dataset. The group itself
(:data:`results_app`) is defined in ``_results_app``, where every module of its commands
registers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from ..errors import OptionError
from ._app import err_console, load_dataset
from ._options import Quiet, check_file_output
from ._results_app import results_app


@results_app.command("remap")
def remap_command(
    file: Annotated[Path, typer.Argument(help="COCO results JSON file (a list of detections).")],
    output: Annotated[str, typer.Option("--output", "-o", help="Remapped results file.")],
    id_map: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--id-map", help="The id map a command wrote with --id-map.")] = None,
    source: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--from", help="The dataset the results were predicted on (with --to, no map).")] = None,
    target: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--to", help="The renumbered dataset: images matched by file_name, categories by "
        "name.")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse results whose image or category is not in the map "
        "(default: drop them and say how many).")] = False,
    quiet: Quiet = False,
) -> None:
    """Rewrite the image and category ids of results for a renumbered dataset.

    Example: cocokit results remap preds.json --id-map ids.json -o remapped.json

    Example: cocokit results remap preds.json --from old.json --to new.json -o remapped.json
    """
    from ..io.idmap import read_id_map
    from ..io.results import load_results, write_results
    from ..remap import remap_results

    if id_map is None and (source is None or target is None):
        raise OptionError("--id-map/--from/--to", None, "--id-map MAP, or both --from and --to")
    if id_map is not None and (source is not None or target is not None):
        raise OptionError("--id-map/--from/--to", "both", "--id-map or --from/--to, not both")
    check_file_output(output)
    src_ds = load_dataset(source, quiet) if source is not None else None
    results = load_results(file, src_ds)
    missing: Literal["drop", "error"] = "error" if strict else "drop"
    if id_map is not None:
        out = remap_results(results, read_id_map(id_map), missing=missing)
    else:
        assert target is not None
        out = remap_results(results, source=src_ds, target=load_dataset(target, quiet),
                            missing=missing)
    write_results(out, output)
    if not quiet:
        dropped = len(results) - len(out)
        note = f" ({dropped} dropped: image or category not in the map)" if dropped else ""
        err_console.print(f"wrote {output}: {len(out)} results{note}", markup=False,
                          highlight=False)


def show_results(file: str | Path, as_json: bool, histogram: bool, quiet: bool = False) -> None:
    """``info`` / ``stats`` of a results file: counts per category, score distribution
    and (``histogram``) the score histogram; JSON with ``as_json``."""
    import json

    from rich.table import Table

    from ..io.results import load_results
    from ..stats import SCORE_BINS, results_stats
    from ._app import console

    s = results_stats(load_results(file))
    if as_json:
        print(json.dumps(dict(file=str(file), kind="results", **s.to_dict()), indent=2))
        return
    console.print(
        f"[bold]{file}[/bold]: results list: {s.detections} detections on {s.images} images, "
        f"{s.categories} categories, {s.with_segmentation} with a segmentation",
        highlight=False)
    if s.score.count:
        console.print(f"score min / median / mean / max: {s.score.min:.3f} / "
                      f"{s.score.median:.3f} / {s.score.mean:.3f} / {s.score.max:.3f}",
                      highlight=False)
    if histogram and s.detections:
        hist = Table("score", "detections", "", title="score histogram", title_justify="left")
        top = max(s.score_histogram) or 1
        for k, n in enumerate(s.score_histogram):
            hist.add_row(f"{SCORE_BINS[k]:.1f}-{SCORE_BINS[k + 1]:.1f}", str(n),
                         "#" * round(30 * n / top))
        console.print(hist)
    table = Table("category_id", "detections", "images", "mean score", title="per category",
                  title_justify="left")
    for row in s.per_category:
        table.add_row(str(row["id"]), str(row["detections"]), str(row["images"]),
                      f"{row['score_mean']:.3f}")
    console.print(table)


__all__ = ["remap_command", "results_app", "show_results"]
