"""Clip boxes and polygons to their image's bounds.

Only annotations whose box crosses the image edge (or that have a polygon but no box)
are looked at closely: their polygons are parsed and clipped ring by ring by
:func:`cocokit.clipping.clip_polygons`, the clipper slicing and augmentation use too (its
docstring holds the one rule for rings and holes); every other annotation is passed
through untouched, raw JSON and all. Boxes are clipped by
:func:`cocokit.clipping.clip_boxes`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..clipping import clip_boxes, clip_polygons, polygon_areas
from ..dataset import Annotations, Dataset, derived, object_array
from ..geometry import RLE_KINDS, Polygons, parse_polygons, polygon_bboxes, segmentation_kinds
from ._base import Transformed, gc_paused, make_report

__all__ = ["clip"]


@gc_paused
def clip(ds: Dataset, *, drop_degenerate: bool = False) -> Transformed:
    """Clip every annotation to its image ``[0, W] x [0, H]``; returns ``(dataset, report)``.

    * Boxes are intersected with the image; sides that are not cut keep their values
      bit for bit.
    * Polygons are clipped ring by ring (:func:`cocokit.clipping.clip_polygons`: a COCO
      annotation's rings are parts that pycocotools unites when it rasterizes, so they
      are not united here, and a hole two rings enclose stays a hole; a ring that
      crosses itself is repaired first). A ring cut
      into several pieces gives several rings of the same annotation; rings inside the
      image keep their coordinates, rings outside are dropped; coordinates stay floats.
      The box of an annotation whose polygon was cut becomes the polygon's tight box.
    * Crowd RLE masks already cover exactly the image: they are kept; only their box
      is clipped.
    * ``area`` is updated where the geometry changed (and the record has one): for a
      polygon, the record's area times the share of the polygon's geometric area that
      is left (so the dataset's own area convention, usually pycocotools' pixel count,
      carries over; the geometric area left where the polygon had none); for an
      annotation with a box only, ``w * h`` of the clipped box.
    * Annotations with nothing left inside the image are dropped (reported). With
      ``drop_degenerate`` so are annotations whose box has zero width or height, or
      whose area is 0, after clipping (also ones that were already so).

    Keypoints are left as they are. Annotations whose image is missing are not touched.
    Only boxes decide which annotations are examined: a polygon that sticks out of
    its image while its box does not (an inconsistent record) is not clipped.
    """
    anns = ds.annotations
    n = len(anns)
    img = ds.image_index
    has_img = img >= 0
    safe = np.maximum(img, 0)
    width = ds.images.width[safe].astype(np.float64) if len(ds.images) else np.zeros(n)
    height = ds.images.height[safe].astype(np.float64) if len(ds.images) else np.zeros(n)
    box = anns.bbox
    has_box = ~np.isnan(box[:, 0])
    with np.errstate(invalid="ignore"):
        cross = has_box & has_img & (
            (box[:, 0] < 0) | (box[:, 1] < 0)
            | (box[:, 0] + box[:, 2] > width) | (box[:, 1] + box[:, 3] > height))
    cand = np.flatnonzero(cross | (~has_box & has_img))
    seg = anns.segmentation
    kinds = segmentation_kinds(seg[cand])

    new_box = box
    new_area = anns.area
    new_seg = seg
    gone = np.zeros(n, bool)
    changed = np.zeros(n, bool)

    # -- boxes -------------------------------------------------------------------------
    cross_rows = np.flatnonzero(cross)
    if len(cross_rows):
        new_box = box.copy()
        win = np.stack([np.zeros(len(cross_rows)), np.zeros(len(cross_rows)),
                        width[cross_rows], height[cross_rows]], axis=1)
        new_box[cross_rows] = clip_boxes(box[cross_rows], win)
        changed[cross_rows] = True

    # -- polygons ----------------------------------------------------------------------
    poly_rows = cand[kinds == 1]
    polys = parse_polygons(seg, poly_rows)
    real = polys.ring_count > 0
    cut = _clip_rings(polys, width[poly_rows], height[poly_rows])
    if cut.changed.any():
        rows = poly_rows[cut.changed]
        empty = cut.polygons.ring_count == 0
        gone[rows[empty]] = True
        keep_i = np.flatnonzero(~empty)
        kept_rows = rows[keep_i]
        new_seg = seg.copy()
        new_seg[kept_rows] = object_array(_coco_lists(cut.polygons, keep_i))
        changed[kept_rows] = True
        if new_box is box:
            new_box = box.copy()
        tight = polygon_bboxes(cut.polygons)[keep_i]
        with_box = has_box[kept_rows]
        new_box[kept_rows[with_box]] = tight[with_box]
        with_area = ~np.isnan(anns.area[kept_rows])
        if with_area.any():
            new_area = new_area.copy()
            r = kept_rows[with_area]
            ratio = cut.area_ratio[keep_i[with_area]]
            new_area[r] = np.where(np.isnan(ratio), cut.area_after[keep_i[with_area]],
                                   anns.area[r] * ratio)

    # -- boxes without polygons: area w * h, nothing left when the box is empty --------
    # (a polygon list with no rings, as in `"segmentation": []`, counts as no polygon)
    no_geom = np.ones(len(cand), bool)
    no_geom[kinds == 1] = ~real
    no_geom &= ~np.isin(kinds, RLE_KINDS)
    box_only = np.zeros(n, bool)
    box_only[cand[no_geom]] = True
    box_only &= cross
    if box_only.any():
        empty_box = box_only & ((new_box[:, 2] <= 0) | (new_box[:, 3] <= 0))
        gone |= empty_box
        resize = box_only & ~empty_box & ~np.isnan(anns.area)
        if resize.any():
            if new_area is anns.area:
                new_area = new_area.copy()
            new_area[resize] = new_box[resize, 2] * new_box[resize, 3]

    dropped: dict[str, int] = {"nothing left inside the image": int(gone.sum())}
    keep = ~gone
    if drop_degenerate:
        with np.errstate(invalid="ignore"):
            degenerate = keep & (((new_box[:, 2] <= 0) | (new_box[:, 3] <= 0))
                                 | (new_area == 0))
        dropped["degenerate: zero width, height or area"] = int(degenerate.sum())
        keep &= ~degenerate

    # one pass over the columns (the new ones are fresh arrays of ours, so no copies)
    cols = anns.columns()
    cols.update(bbox=new_box, area=new_area, segmentation=new_seg)
    if not keep.all():
        cols = {name: col[keep] for name, col in cols.items()}
    out = derived(ds, ds.replace(annotations=Annotations(**cols)), np.arange(len(ds.images)),
                  np.flatnonzero(keep))
    report = make_report("clip", ds, out, dropped_annotations=dropped,
                         changed_annotations=int(np.count_nonzero(changed & keep)))
    return Transformed(out, report)


@dataclasses.dataclass(frozen=True)
class _Cut:
    """Polygons after clipping, for the annotations that changed (``changed`` mask)."""

    changed: np.ndarray  # per input annotation: some ring was not inside the window
    polygons: Polygons  # one entry per changed annotation, its rings after clipping
    area_after: np.ndarray  # geometric area left, per changed annotation
    area_ratio: np.ndarray  # area_after / area before (NaN where the area before is 0)


def _coco_lists(polys: Polygons, entries: np.ndarray) -> list[list[list[float]]]:
    """``polys.to_coco(i)`` for each entry, with one ``tolist`` call for all coordinates."""
    flat = polys.coords.ravel().tolist()
    ro = (2 * polys.ring_offsets).tolist()
    off = polys.offsets.tolist()
    return [[flat[ro[r]:ro[r + 1]] for r in range(off[i], off[i + 1])]
            for i in entries.tolist()]


def _clip_rings(polys: Polygons, width: np.ndarray, height: np.ndarray) -> _Cut:
    """Clip each annotation's polygons to ``[0, width_i] x [0, height_i]`` with the one
    clipper (:func:`cocokit.clipping.clip_polygons`: ring by ring, so pycocotools draws
    the clipped mask; the area share uses sums of ring areas). Annotations whose rings
    all lie inside are left alone (``changed`` False)."""
    box = polygon_bboxes(polys)
    with np.errstate(invalid="ignore"):
        inside = np.isnan(box[:, 0]) | (
            (box[:, 0] >= 0) & (box[:, 1] >= 0)
            & (box[:, 0] + box[:, 2] <= width) & (box[:, 1] + box[:, 3] <= height))
    changed = ~inside
    rows = np.flatnonzero(changed)
    zeros = np.zeros(len(rows))
    windows = np.stack([zeros, zeros, width[rows], height[rows]], axis=1).astype(np.float64)
    # areas as sums of the rings' areas: the same as the union's where parts do not
    # overlap, and uniting overlapping parts would cost most of the transform's time
    result, after = clip_polygons(polys, rows, windows, union_areas=False)
    before = polygon_areas(polys, rows, union=False)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(before > 0, after / before, np.nan)
    return _Cut(changed, result, after, ratio)
