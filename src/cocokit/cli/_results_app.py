"""The ``results`` command group (commands on detection results files).

Defined apart so each module of its commands (``unslice``, ``remap``, ...) can register
on it without importing the others: ``@results_app.command("name")``.
"""

from __future__ import annotations

import typer

from ._app import app

results_app = typer.Typer(
    name="results",
    help="Commands on detection results (a COCO results list: image_id, category_id, "
    "bbox, score, segmentation).\n\n"
    "Example: cocokit results unslice tile_preds.json --tiles tiles.json -o preds.json\n\n"
    "Example: cocokit results remap preds.json --id-map ids.json -o remapped.json",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(results_app, name="results")

__all__ = ["results_app"]
