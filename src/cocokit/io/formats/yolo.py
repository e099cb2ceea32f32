"""Ultralytics YOLO as a format of the registry: :func:`cocokit.io.yolo.read_yolo` and
:func:`cocokit.io.yolo.write_yolo`, with their summary turned into a loss report.

Written as ``segment`` when any annotation has a polygon, else ``detect``; images are
linked from ``images`` when it is given, else left out (labels and ``data.yaml`` only).
Reading takes the image sizes from the image headers (see :func:`read_yolo`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ...dataset import Dataset
from .. import sniff
from ..yolo import read_yolo, write_yolo
from .losses import Losses, refuse_lossy
from .records import ExportRows, common_losses

__all__ = ["NAME", "detect", "read", "write"]

NAME = "yolo"


def detect(path: str) -> bool:
    """A folder with ``data.yaml`` or a ``labels/`` folder, or a ``.yaml`` file."""
    return sniff.format_of(path) == NAME


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a YOLO dataset (every split its data.yaml names); no losses."""
    return read_yolo(path), Losses()


def write(ds: Dataset, path: str, *, images: str | None = None,
          strict: bool = False) -> Losses:
    """Write ``ds`` as a YOLO dataset (one split, ``train``); returns what YOLO could not
    carry. ``strict`` refuses before writing what is known beforehand (masks, crowd,
    keypoints, extra keys, ids); clipping is known only as rows are written."""
    kinds = ds.annotations.segmentation_kind
    task: Literal["detect", "segment"] = "segment" if np.any(kinds == 1) else "detect"
    rows = ExportRows(ds, np.arange(len(ds.images)), np.arange(len(ds.annotations)),
                      ds.annotations.bbox, [])
    before = common_losses(rows, crowd=False)
    before.add("crowd-skipped", int(np.count_nonzero(ds.annotations.iscrowd == 1)),
               "crowd annotations skipped")
    before.add("rle-as-box", int(np.count_nonzero(kinds >= 2)), "RLE masks written as boxes")
    for key in ds.extra:
        before.add(f"top-key-dropped:{key}", 1, f"top-level {key!r} dropped")
    refuse_lossy(before, path, strict)
    summary = write_yolo(ds, path, task=task, images="link" if images else "none",
                         image_dir=images, check_sizes=images is not None)
    losses = Losses()
    s = next(iter(summary.splits.values()))
    if task == "detect":
        losses.add("rle-as-box", int(np.count_nonzero(kinds >= 2)),
                   "RLE masks written as boxes")
    else:
        losses.add("rle-as-box", int(np.count_nonzero(kinds >= 2)),
                   "RLE masks written as box polygons")
        losses.add("box-as-polygon", s.box_as_polygon - int(np.count_nonzero(kinds >= 2)),
                   "boxes written as polygons")
    losses.add("crowd-skipped", s.skipped_crowd, "crowd annotations skipped")
    losses.add("empty-skipped", s.skipped_empty, "annotations without area skipped")
    losses.add("clipped", s.clipped, "objects clipped to the image")
    losses.extend(common_losses(rows, crowd=False))
    for key in ds.extra:
        losses.add(f"top-key-dropped:{key}", 1, f"top-level {key!r} dropped")
    return losses
