"""The ``results`` command group (commands on detection results files).

Defined apart so each module of its commands (``unslice``, ``remap``, ...) can register
on it without importing the others: ``@results_app.command("name")``.
"""

from __future__ import annotations

from ._app import command_group

results_app = command_group(
    "results",
    "Commands on detection results (a COCO results list: image_id, category_id, "
    "bbox, score, segmentation).\n\n"
    "Example: cocokit results unslice tile_preds.json --tiles tiles.json -o preds.json\n\n"
    "Example: cocokit results remap preds.json --id-map ids.json -o remapped.json",
)

__all__ = ["results_app"]
