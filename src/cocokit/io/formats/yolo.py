"""Ultralytics YOLO as a format of the registry: :func:`cocokit.io.yolo.read_yolo` and
:func:`cocokit.io.yolo.write_yolo`, with what an export could not carry turned into a
loss report (:func:`export_losses`, the one place these losses are worked out).

The task is chosen by :func:`default_task` unless given: ``pose`` when categories have
``keypoints`` and annotations carry keypoints, else ``segment`` when any annotation has
a polygon, else ``detect``. Images are linked from ``images`` when it is given, else
left out: labels, ``data.yaml`` and the sizes table
:data:`~cocokit.io.yolo.SIZES_FILE` that lets them be read back without the images.
Reading takes the image sizes from the image headers, else from that table (see
:func:`~cocokit.io.yolo.read_yolo`).
"""

from __future__ import annotations

import numpy as np

from ...dataset import Dataset
from ...errors import OptionError
from .. import sniff
from ..yolo import Task, YoloExportSummary, read_yolo, write_yolo
from .losses import Losses, refuse_lossy
from .records import ExportRows, common_losses

__all__ = ["NAME", "TASKS", "default_task", "detect", "export_losses", "read", "write"]

NAME = "yolo"
#: The YOLO tasks, as ``--task`` takes them.
TASKS: tuple[Task, ...] = ("detect", "segment", "pose", "obb")


def detect(path: str) -> bool:
    """A folder with ``data.yaml`` or a ``labels/`` folder, or a ``.yaml`` file."""
    return sniff.format_of(path) == NAME


def default_task(ds: Dataset) -> Task:
    """``pose`` when a category has ``keypoints`` names and an annotation carries
    keypoints, else ``segment`` when an annotation has a polygon, else ``detect``."""
    named = any(isinstance(c.get("keypoints"), list) and c["keypoints"]
                for c in ds.categories.records)
    if named and any(k is not None for k in ds.annotations.keypoints.tolist()):
        return "pose"
    return "segment" if np.any(ds.annotations.segmentation_kind == 1) else "detect"


def export_losses(summary: YoloExportSummary | None, ds: Dataset,
                  task: Task | None = None) -> Losses:
    """What a YOLO export of ``ds`` could not carry, in the words of the loss report.

    With ``summary`` (what :func:`~cocokit.io.yolo.write_yolo` returned, crowd
    annotations skipped) the counts known only while writing are added (clipped rows,
    padded keypoints, rotated rectangles, boxes written as polygons, rows without
    area); without it, ``task`` says what will be written and the losses are those
    known beforehand (what ``strict`` refuses).
    """
    name = task or (summary.task if summary is not None else "")
    if name not in TASKS:
        raise OptionError("task", name, "one of " + ", ".join(TASKS))
    anns = ds.annotations
    crowd = anns.crowd
    losses = Losses()
    if summary is None:
        losses.add("crowd-skipped", int(crowd.sum()), "crowd annotations left out")
    for s in summary.splits.values() if summary is not None else ():
        losses.add("crowd-skipped", s.skipped_crowd, "crowd annotations left out")
        losses.add("no-geometry", s.skipped_empty, "annotations without area left out")
        losses.add("box-as-polygon", s.box_as_polygon, "boxes and masks written as the "
                   "corners of their box")
        losses.add("clipped", s.clipped, "rows with a coordinate moved onto the image border")
        losses.add("keypoints-padded", s.keypoints_padded, "objects with fewer keypoints "
                   "than kpt_shape padded with unlabelled keypoints")
        losses.add("polygon-as-rotated-box", s.rotated_from_polygon, "polygons that are "
                   "not 4 points written as their minimum-area rotated rectangle")
    rows = np.flatnonzero(~crowd)
    kinds = anns.segmentation_kind[rows]
    if name in ("detect", "pose"):
        losses.add("segmentation-as-box", int((kinds > 0).sum()), "segmentations written "
                   "as boxes")
    elif name == "segment":
        losses.add("rle-as-polygon", int((kinds >= 2).sum()), "RLE masks written as the "
                   "polygon of their box")
    else:
        losses.add("rle-as-box", int((kinds >= 2).sum()), "RLE masks written as their boxes")
    export = ExportRows(ds, np.arange(len(ds.images)), rows, anns.bbox[rows], [])
    # categories (and their keypoint names) are kept in data.yaml
    losses.extend(common_losses(export, keypoints=name != "pose", crowd=False,
                                top_level=True))
    if name == "pose":
        names = sum(1 for c in ds.categories.records
                    if isinstance(c.get("keypoints"), list) and c["keypoints"])
        losses.add("keypoint-names-in-yaml", names, "keypoint name lists kept in data.yaml "
                   "(kpt_names and coco_categories; Ultralytics trains on indices)")
    return losses


def read(path: str, *, images: str | None = None) -> tuple[Dataset, Losses]:
    """Read a YOLO dataset (every split its data.yaml names); no losses."""
    return read_yolo(path), Losses()


def write(ds: Dataset, path: str, *, images: str | None = None, strict: bool = False,
          task: Task | None = None) -> Losses:
    """Write ``ds`` as a YOLO dataset (one split, ``train``) for ``task`` (None:
    :func:`default_task`); returns what YOLO could not carry. ``strict`` refuses before
    writing what is known beforehand (masks, crowd, keypoints, extra keys, ids);
    clipping is known only as rows are written."""
    task = task or default_task(ds)
    refuse_lossy(export_losses(None, ds, task), path, strict)
    summary = write_yolo(ds, path, task=task, images="link" if images else "none",
                         image_dir=images, check_sizes=images is not None,
                         no_images="images=None (CLI: no -i/--images)")
    return export_losses(summary, ds)
