"""Clip boxes and polygons to their image's bounds.

Only annotations whose box crosses the image edge (or that have a polygon but no box)
are looked at closely: their polygons are parsed and clipped ring by ring with
``shapely.clip_by_rect``; every other annotation is passed through untouched, raw JSON
and all. Boxes are clipped by :func:`cocokit.clipping.clip_boxes`. (The polygon clipping
of :mod:`cocokit.clipping` unites an annotation's parts with ``make_valid`` first, which
is right for tiles but costs seconds on a large dataset and changes parts that are not
cut; here the parts are kept as they are.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import shapely

from ..clipping import clip_boxes
from ..dataset import Annotations, Dataset, object_array
from ..geometry import RLE_KINDS, Polygons, parse_polygons, polygon_bboxes, segmentation_kinds
from ._base import Transformed, gc_paused, make_report

__all__ = ["clip"]


@gc_paused
def clip(ds: Dataset, *, drop_degenerate: bool = False) -> Transformed:
    """Clip every annotation to its image ``[0, W] x [0, H]``; returns ``(dataset, report)``.

    * Boxes are intersected with the image; sides that are not cut keep their values
      bit for bit.
    * Polygons are clipped ring by ring with ``shapely.clip_by_rect`` (a COCO
      annotation's rings are parts that pycocotools unites when it rasterizes, so they
      are not united here; self-intersecting rings are clipped as they are). A ring cut
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
    out = ds.replace(annotations=Annotations(**cols))
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


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each start and length."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.cumsum(lengths) - lengths
    return np.repeat(starts - first, lengths) + np.arange(total)


def _ring_areas(coords: np.ndarray, ring_offsets: np.ndarray) -> np.ndarray:
    """Shoelace area of each ring (0 for rings of fewer than 3 vertices)."""
    sizes = np.diff(ring_offsets)
    out = np.zeros(len(sizes))
    nonempty = np.flatnonzero(sizes > 0)
    if len(nonempty) == 0:
        return out
    nxt = np.arange(1, len(coords) + 1)
    nxt[ring_offsets[nonempty + 1] - 1] = ring_offsets[nonempty]
    x, y = coords[:, 0], coords[:, 1]
    cross = x * y[nxt] - x[nxt] * y
    sums = np.add.reduceat(cross, ring_offsets[nonempty])
    out[nonempty] = 0.5 * np.abs(sums)
    out[sizes < 3] = 0.0
    return out


def _clip_by_rect(geoms: np.ndarray, width: float, height: float) -> np.ndarray:
    """``shapely.clip_by_rect`` to ``[0, width] x [0, height]``; a ring that collapses to a
    line makes GEOS fail, so on failure each geometry is clipped alone, repaired first
    (``make_valid``) if it fails again."""
    try:
        return np.asarray(shapely.clip_by_rect(geoms, 0.0, 0.0, width, height), dtype=object)
    except shapely.errors.GEOSException:
        out = np.empty(len(geoms), dtype=object)
        for i, g in enumerate(geoms):
            try:
                out[i] = shapely.clip_by_rect(g, 0.0, 0.0, width, height)
            except shapely.errors.GEOSException:
                out[i] = shapely.clip_by_rect(shapely.make_valid(g), 0.0, 0.0, width, height)
        return out


def _clip_rings(polys: Polygons, width: np.ndarray, height: np.ndarray) -> _Cut:
    """Clip each ring of each annotation to ``[0, width_i] x [0, height_i]``.

    Rings are clipped one by one (COCO's rings are parts that pycocotools unites when it
    rasterizes, so they need not be united here): rings inside are kept bit for bit,
    rings outside (or too small to have an area) are dropped, the others go through
    ``shapely.clip_by_rect`` (robust to self-intersecting rings; one call per distinct
    image size), keeping every piece with an area as a ring of its own.
    """
    ro, coords = polys.ring_offsets, polys.coords
    n_ann = len(polys)
    counts = polys.ring_count
    owner = np.repeat(np.arange(n_ann), counts)
    sizes = np.diff(ro)
    n_rings = len(sizes)
    xmin = np.full(n_rings, np.inf)
    ymin = np.full(n_rings, np.inf)
    xmax = np.full(n_rings, -np.inf)
    ymax = np.full(n_rings, -np.inf)
    nonempty = np.flatnonzero(sizes > 0)
    if len(nonempty):
        starts = ro[:-1][nonempty]
        xmin[nonempty] = np.minimum.reduceat(coords[:, 0], starts)
        ymin[nonempty] = np.minimum.reduceat(coords[:, 1], starts)
        xmax[nonempty] = np.maximum.reduceat(coords[:, 0], starts)
        ymax[nonempty] = np.maximum.reduceat(coords[:, 1], starts)
    w, h = width[owner], height[owner]
    inside = (sizes == 0) | ((xmin >= 0) & (ymin >= 0) & (xmax <= w) & (ymax <= h))
    outside = ~inside & ((xmax <= 0) | (ymax <= 0) | (xmin >= w) | (ymin >= h))
    crossing = ~inside & ~outside & (sizes >= 3)
    changed = np.zeros(n_ann, bool)
    changed[owner[~inside]] = True
    area_before = _ring_areas(coords, ro)

    # clip the crossing rings, grouped by image size (clip_by_rect takes scalars)
    cr = np.flatnonzero(crossing)
    piece_xy = np.zeros((0, 2))
    piece_ring = np.zeros(0, np.int64)  # source ring of each piece
    piece_start = np.zeros(0, np.int64)
    piece_len = np.zeros(0, np.int64)
    piece_area = np.zeros(0)
    if len(cr):
        vert = _ranges(ro[cr], sizes[cr])
        rings = shapely.linearrings(coords[vert], indices=np.repeat(np.arange(len(cr)), sizes[cr]))
        geoms = shapely.polygons(rings)
        out = np.empty(len(cr), dtype=object)
        key = w[cr].astype(np.float64) * 1e9 + h[cr]
        for value in np.unique(key):
            sel = np.flatnonzero(key == value)
            j = sel[0]
            out[sel] = _clip_by_rect(geoms[sel], float(w[cr][j]), float(h[cr][j]))
        parts, which = shapely.get_parts(out, return_index=True)
        ok = (shapely.get_type_id(parts) == 3) & (shapely.area(parts) > 0)
        parts, which = parts[ok], which[ok]
        if len(parts):
            ext = shapely.get_exterior_ring(parts)
            xy, ring_of = shapely.get_coordinates(ext, return_index=True)
            n_pts = np.bincount(ring_of, minlength=len(ext))
            piece_xy = xy
            piece_start = np.cumsum(n_pts) - n_pts
            piece_len = n_pts - 1  # COCO rings are implicitly closed
            piece_ring = cr[which]
            piece_area = shapely.area(parts)

    # output rings of the changed annotations: inside rings as they are, then pieces,
    # in the order of their source rings
    keep_inside = inside & changed[owner]
    ins = np.flatnonzero(keep_inside)
    all_xy = np.concatenate([coords, piece_xy]) if len(piece_xy) else coords
    src_ring = np.concatenate([ins, piece_ring])
    sub = np.concatenate([np.zeros(len(ins), np.int64), np.arange(len(piece_ring))])
    starts = np.concatenate([ro[ins], len(coords) + piece_start])
    lengths = np.concatenate([sizes[ins], piece_len])
    areas = np.concatenate([area_before[ins], piece_area])
    order = np.lexsort((sub, src_ring))
    src_ring, starts, lengths, areas = src_ring[order], starts[order], lengths[order], areas[order]
    out_owner = owner[src_ring]
    local = np.cumsum(changed) - 1  # changed annotation -> its output entry
    n_changed = int(changed.sum())
    per_entry = np.bincount(local[out_owner], minlength=n_changed)
    offsets = np.zeros(n_changed + 1, np.int64)
    np.cumsum(per_entry, out=offsets[1:])
    ring_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=ring_offsets[1:])
    result = Polygons(all_xy[_ranges(starts, lengths)], ring_offsets, offsets)
    after = np.bincount(local[out_owner], weights=areas, minlength=n_changed)
    mine = changed[owner]
    before = np.bincount(local[owner[mine]], weights=area_before[mine], minlength=n_changed)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(before > 0, after / before, np.nan)
    return _Cut(changed, result, after, ratio)
