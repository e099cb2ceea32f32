"""Clip annotation geometry to windows, vectorized: boxes, polygons, RLE masks, keypoints.

Shared by slicing, the clip transform and augmentation. Every function takes *pairs*:
element ``k`` of the inputs is clipped to window ``k``, so clipping ``n`` annotations to
``t`` tiles is one call with the pairs that matter, not ``n * t`` Python calls.

Windows are ``(x0, y0, x1, y1)`` in the coordinates of the geometry (COCO pixel
coordinates: the pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``).

Conventions:

* boxes and polygons come back in the same, unshifted coordinates; subtract the
  window origin to move them into a tile;
* keypoints come back *shifted* into the window (their zero is meaningful: a keypoint
  outside the window becomes ``(0, 0, 0)``, COCO's "not labeled", which only makes sense
  in the output frame);
* RLE masks are cropped to the window (integer pixel coordinates), so they are shifted
  too: the result is the mask of the window.

Polygons: one rule, the one pycocotools draws. The rings of an annotation are parts; its
shape is their union (``frPyObjects`` rasterizes each ring, ``merge`` unites the masks).
So a ring inside another adds nothing (it is not a hole: a 20x20 square with a 10x10
square inside has pycocotools area 400), while two rings can enclose a hole between them
(two overlapping C shapes drawing a frame: area 300), and that hole is part of the shape.
:func:`clip_polygons` therefore clips **ring by ring** and keeps the rings apart: clipping
commutes with the union, so the clipped rings draw exactly the clipped mask, holes
between rings included. Clipping the union and writing back its outline, as slicing did
before, would fill such holes. A single ring that crosses itself (a "bow-tie") is
repaired with shapely's ``make_valid`` rather than skipped. Areas of polygons here are
the geometric (shapely) areas of that union, so they follow the pycocotools pixel areas
and the pieces of an annotation cut by abutting windows add up to its area.
Slicing, the clip transform and augmentation all clip through this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from .dataset import ranges
from .geometry import Polygons, encoded_rle, mask_api, polygon_bboxes

__all__ = [
    "clip_boxes",
    "clip_keypoints",
    "clip_polygons",
    "crop_rle",
    "crop_rle_many",
    "paste_rle",
    "polygon_areas",
    "polygon_geometries",
    "rle_area",
    "rle_bbox",
]

_POLYGON = 3  # shapely type id


def _windows(windows_xyxy: Any, n: int, name: str = "windows_xyxy") -> np.ndarray:
    w = np.asarray(windows_xyxy, np.float64)
    if w.ndim == 1:
        w = np.broadcast_to(w, (n, 4))
    if w.shape != (n, 4):
        raise ValueError(f"{name} must have shape ({n}, 4), got {w.shape}")
    return w


# -- boxes -----------------------------------------------------------------------------


def clip_boxes(bbox_xywh: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """Intersection of each xywh box with its window, as xywh (unshifted).

    ``bbox_xywh`` is (n, 4); ``windows_xyxy`` is (n, 4) or one window (4,) for all.
    Where nothing is left the width and/or height is 0 (the corner is clamped into the
    window). A side that is not cut keeps its value bit for bit: a box entirely inside
    its window comes back unchanged (no ``x + w - x`` rounding). NaN rows stay NaN.
    """
    b = np.asarray(bbox_xywh, np.float64).reshape(-1, 4)
    w = _windows(windows_xyxy, len(b))
    x, y, bw, bh = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x1, y1 = x + bw, y + bh
    cut_left, cut_top = x < w[:, 0], y < w[:, 1]
    cut_right, cut_bottom = x1 > w[:, 2], y1 > w[:, 3]
    nx = np.clip(x, w[:, 0], w[:, 2])
    ny = np.clip(y, w[:, 1], w[:, 3])
    nx1 = np.clip(x1, w[:, 0], w[:, 2])
    ny1 = np.clip(y1, w[:, 1], w[:, 3])
    nw = np.where(cut_left | cut_right, np.maximum(nx1 - nx, 0.0), bw)
    nh = np.where(cut_top | cut_bottom, np.maximum(ny1 - ny, 0.0), bh)
    # a box entirely beyond one side: clamped corner, zero size
    nw = np.where((x >= w[:, 2]) | (x1 <= w[:, 0]), 0.0, nw)
    nh = np.where((y >= w[:, 3]) | (y1 <= w[:, 1]), 0.0, nh)
    out = np.stack([nx, ny, nw, nh], axis=1)
    out[np.isnan(b).any(axis=1)] = np.nan
    return out


# -- polygons --------------------------------------------------------------------------


def _make_valid(geoms: np.ndarray) -> np.ndarray:
    bad = ~shapely.is_valid(geoms)
    if bad.any():
        geoms = geoms.copy()
        try:  # union of the parts, as COCO means (shapely >= 2.1, GEOS >= 3.10)
            geoms[bad] = shapely.make_valid(geoms[bad], method="structure")
        except TypeError:  # pragma: no cover - older shapely
            geoms[bad] = shapely.make_valid(geoms[bad])
    return geoms


def polygon_geometries(polys: Polygons, rows: np.ndarray | None = None) -> np.ndarray:
    """Valid shapely geometries of the given annotations of ``polys`` (all when None).

    Each annotation's rings become one MultiPolygon (its parts), repaired with
    ``make_valid`` where invalid (self-intersection, overlapping parts are unioned).
    Rings with fewer than 3 vertices are ignored; an annotation without a usable ring
    gives an empty geometry.
    """
    n_all = len(polys)
    rows = np.arange(n_all) if rows is None else np.asarray(rows, np.int64)
    out = np.full(len(rows), shapely.MultiPolygon(), dtype=object)
    if len(rows) == 0:
        return out
    ro, off = polys.ring_offsets, polys.offsets
    r_start, r_stop = off[rows], off[rows + 1]
    n_rings = r_stop - r_start
    # ring indices of the selected annotations, with the output slot of each
    ring_ids = np.repeat(r_start, n_rings) + ranges(n_rings)
    slot = np.repeat(np.arange(len(rows)), n_rings)
    sizes = ro[ring_ids + 1] - ro[ring_ids]
    usable = sizes >= 3
    ring_ids, slot, sizes = ring_ids[usable], slot[usable], sizes[usable]
    if len(ring_ids) == 0:
        return out
    vert = np.repeat(ro[ring_ids], sizes) + ranges(sizes)
    ring_of_vertex = np.repeat(np.arange(len(ring_ids)), sizes)
    rings = shapely.linearrings(polys.coords[vert], indices=ring_of_vertex)
    parts = shapely.polygons(rings)
    # multipolygons needs consecutive indices: number the slots that have parts
    present, compact = np.unique(slot, return_inverse=True)
    multi = shapely.multipolygons(parts, indices=compact)
    out[present] = _make_valid(np.asarray(multi, dtype=object))
    return out


def polygon_areas(polys: Polygons, rows: np.ndarray | None = None, *,
                  union: bool = True) -> np.ndarray:
    """Geometric area of each annotation's polygons (union of parts, repaired if invalid).

    This is the area :func:`clip_polygons` reports, so ``clipped / original`` ratios
    compare like with like. It is not the pycocotools pixel area (see
    :func:`cocokit.geometry.segmentation_areas` for that).

    ``union=False`` adds up the areas of the rings instead, each repaired on its own:
    the same where the rings do not overlap, and much cheaper where many annotations
    have parts that do (uniting them is most of the cost).
    """
    if union:
        return np.asarray(shapely.area(polygon_geometries(polys, rows)), np.float64)
    rows = np.arange(len(polys)) if rows is None else np.asarray(rows, np.int64).ravel()
    n_rings = polys.offsets[rows + 1] - polys.offsets[rows]
    ring_ids = np.repeat(polys.offsets[rows], n_rings) + ranges(n_rings)
    per_ring = Polygons(polys.coords, polys.ring_offsets,
                        np.arange(len(polys.ring_offsets), dtype=np.int64))
    ring_area = np.asarray(shapely.area(polygon_geometries(per_ring, ring_ids)), np.float64)
    return np.bincount(np.repeat(np.arange(len(rows)), n_rings), weights=ring_area,
                       minlength=len(rows)).astype(np.float64)




def clip_polygons(
    polys: Polygons, ann: np.ndarray, windows_xyxy: np.ndarray, *,
    geometries: np.ndarray | None = None, union_areas: bool = True,
) -> tuple[Polygons, np.ndarray]:
    """Clip the polygons of annotation ``ann[k]`` to window ``k``, for every pair k.

    Returns a :class:`Polygons` with one entry per pair, in the input (unshifted)
    coordinates, and the clipped area of each pair (the area of the union of its rings,
    see the module docstring for the rule).

    * Pairs whose annotation bbox lies inside the window get the rings copied as they
      are (no shapely work, coordinates bit for bit).
    * Pairs whose bbox does not overlap the window's interior get no rings, area 0.
    * The rings of pairs that cross a window edge are clipped one by one, each the same
      way: a ring inside the window is copied as it is, a ring outside is dropped, a
      ring across an edge (repaired first if it crosses itself) is intersected with the
      window box, in shapely and vectorized. Every piece with an area becomes one ring of
      the entry, in the order of the source rings (exterior rings normalized by
      ``shapely.normalize``: deterministic start and orientation, no repeated closing
      vertex); lines and points left where a ring only touches an edge are dropped.

    Areas are shapely areas of the repaired union, also for copied pairs, so with
    abutting windows the areas of the pieces add up to :func:`polygon_areas`.

    ``geometries`` may pass :func:`polygon_geometries` of all of ``polys`` when the
    caller has them already, so they are not built twice. ``union_areas=False`` reports
    the areas of pairs cut into several rings as sums (see :func:`polygon_areas`); the
    rings are the same.
    """
    ann = np.asarray(ann, np.int64).ravel()
    p = len(ann)
    w = _windows(windows_xyxy, p)
    if p == 0:
        return Polygons.from_rings([]), np.zeros(0, np.float64)
    inside, overlap = _placement(polys, ann, w)
    cross = np.flatnonzero(overlap & ~inside)
    if len(cross) == 0:
        return _clip_each(polys, ann, w, geometries)
    # the rings of the crossing pairs, each its own entry, clipped to its pair's window
    n_rings = polys.ring_count[ann[cross]]
    ring_ids = np.repeat(polys.offsets[ann[cross]], n_rings) + ranges(n_rings)
    ring_pair = np.repeat(cross, n_rings)
    per_ring = Polygons(polys.coords, polys.ring_offsets,
                        np.arange(len(polys.ring_offsets), dtype=np.int64))
    ring_cut, ring_area = _clip_each(per_ring, ring_ids, w[ring_pair], None)
    # the other pairs (inside: copied, outside: nothing) as before
    rest = np.flatnonzero(~(overlap & ~inside))
    rest_cut, rest_area = _clip_each(polys, ann[rest], w[rest], geometries)
    pair_rings: list[list[np.ndarray]] = [[] for _ in range(p)]
    for j, k in enumerate(rest.tolist()):
        pair_rings[k] = rest_cut.rings(j)
    for j, k in enumerate(ring_pair.tolist()):
        pair_rings[k].extend(ring_cut.rings(j))
    out = Polygons.from_rings(pair_rings)
    areas = np.zeros(p, np.float64)
    areas[rest] = rest_area
    single = n_rings == 1  # one ring: its clipped area is the pair's
    first = np.cumsum(n_rings) - n_rings
    areas[cross[single]] = ring_area[first[single]]
    multi = cross[~single]
    if len(multi):  # several rings: the area of their union
        areas[multi] = polygon_areas(out, multi, union=union_areas)
    return out, areas


def _placement(polys: Polygons, ann: np.ndarray, w: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """For each pair (annotation ``ann[k]``, window ``w[k]``): whether the annotation's
    box lies inside the window, and whether it overlaps it at all (no rings: neither)."""
    boxes = polygon_bboxes(polys)[ann]  # xywh, NaN where no rings
    has = ~np.isnan(boxes[:, 0])
    bx0, by0 = boxes[:, 0], boxes[:, 1]
    bx1, by1 = bx0 + boxes[:, 2], by0 + boxes[:, 3]
    with np.errstate(invalid="ignore"):
        inside = has & (bx0 >= w[:, 0]) & (by0 >= w[:, 1]) & (bx1 <= w[:, 2]) & (by1 <= w[:, 3])
        overlap = has & (bx0 < w[:, 2]) & (bx1 > w[:, 0]) & (by0 < w[:, 3]) & (by1 > w[:, 1])
    return inside, overlap


def _clip_each(
    polys: Polygons, ann: np.ndarray, w: np.ndarray, geometries: np.ndarray | None,
) -> tuple[Polygons, np.ndarray]:
    """Clip the (repaired) union of each entry ``ann[k]`` to window ``w[k]``; for one-ring
    entries (as :func:`clip_polygons` makes them) that is the ring clipped on its own."""
    ann = np.asarray(ann, np.int64).ravel()
    p = len(ann)
    w = _windows(w, p)
    areas = np.zeros(p, np.float64)
    if p == 0:
        return Polygons.from_rings([]), areas
    inside, overlap = _placement(polys, ann, w)
    cross = overlap & ~inside

    # geometry (for areas and cuts) of each annotation that needs it, built once
    if geometries is not None:
        if len(geometries) != len(polys):
            raise ValueError(f"geometries has {len(geometries)} entries for {len(polys)} polygons")
        geoms, pos = np.asarray(geometries, dtype=object), ann
    else:
        need = np.unique(ann[inside | cross])
        geoms = polygon_geometries(polys, need)
        pos = np.searchsorted(need, ann)  # valid where inside | cross
    if inside.any():
        areas[inside] = shapely.area(geoms[pos[inside]])

    # per pair: a list of (k, 2) arrays
    pair_rings: list[list[np.ndarray]] = [[] for _ in range(p)]
    for k in np.flatnonzero(inside).tolist():
        pair_rings[k] = polys.rings(int(ann[k]))

    ck = np.flatnonzero(cross)
    if len(ck):
        cut = shapely.intersection(
            geoms[pos[ck]], shapely.box(w[ck, 0], w[ck, 1], w[ck, 2], w[ck, 3])
        )
        areas[ck] = shapely.area(cut)
        parts, which = shapely.get_parts(cut, return_index=True)
        keep = (shapely.get_type_id(parts) == _POLYGON) & (shapely.area(parts) > 0)
        parts, which = parts[keep], which[keep]
        if len(parts):
            parts = shapely.normalize(parts)
            ext = shapely.get_exterior_ring(parts)
            xy, ring_of = shapely.get_coordinates(ext, return_index=True)
            counts = np.bincount(ring_of, minlength=len(ext))
            starts = np.cumsum(counts) - counts
            for r, (s, c) in enumerate(zip(starts.tolist(), counts.tolist(), strict=True)):
                # drop the closing vertex (COCO rings are implicitly closed)
                pair_rings[int(ck[which[r]])].append(xy[s : s + c - 1])
    return Polygons.from_rings(pair_rings), areas


# -- RLE -------------------------------------------------------------------------------




def rle_area(rle: Mapping[str, Any]) -> float:
    """Pixel count of an RLE mask (``counts`` a list, str or bytes)."""
    return float(mask_api().area(encoded_rle(rle)))


def rle_bbox(rle: Mapping[str, Any]) -> np.ndarray:
    """Tight xywh box (float64) of the pixels of an RLE mask (zeros when it is empty)."""
    return np.asarray(mask_api().toBbox(encoded_rle(rle)), np.float64)


def _int_window(window: Sequence[float] | np.ndarray, h: int, w: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (round(float(v)) for v in window)
    x0, x1 = min(max(x0, 0), w), min(max(x1, 0), w)
    y0, y1 = min(max(y0, 0), h), min(max(y1, 0), h)
    return x0, y0, max(x1, x0), max(y1, y0)


def crop_rle_many(
    rle: dict[str, Any], windows_xyxy: np.ndarray | Sequence[Sequence[float]]
) -> list[dict[str, Any]]:
    """Crop one RLE mask to several windows, decoding it once.

    Windows are in integer pixel coordinates (rounded if not), clamped to the mask.
    Each result is the RLE of the window-sized mask (``size`` ``[h, w]`` of the window,
    ``counts`` a compressed str), shifted to the window's origin.
    """
    mask_utils = mask_api()
    enc = encoded_rle(rle)
    mask = mask_utils.decode(enc)  # (h, w) uint8, Fortran order
    h, w = mask.shape
    out: list[dict[str, Any]] = []
    for window in np.asarray(windows_xyxy, np.float64).reshape(-1, 4):
        x0, y0, x1, y1 = _int_window(window, h, w)
        piece = np.asfortranarray(mask[y0:y1, x0:x1])
        if piece.size == 0:
            piece = np.zeros((y1 - y0, x1 - x0), np.uint8, order="F")
        res = mask_utils.encode(piece)
        out.append({"size": [int(y1 - y0), int(x1 - x0)], "counts": res["counts"].decode("ascii")})
    return out


def crop_rle(rle: dict[str, Any], window_xyxy: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Crop an RLE mask to one window (see :func:`crop_rle_many`)."""
    return crop_rle_many(rle, np.asarray(window_xyxy, np.float64).reshape(1, 4))[0]


def paste_rle(rle: Mapping[str, Any], x: int, y: int, height: int, width: int) -> dict[str, Any]:
    """The inverse of :func:`crop_rle`: an RLE mask placed at ``(x, y)`` in a
    ``height`` x ``width`` image (a tile's mask moved back into its source image).

    Only the small mask is decoded: its runs are found column by column and moved to
    the image's column-major positions, so the cost follows the mask, not the image.
    Returns ``size`` ``[height, width]`` and ``counts`` a compressed str. Raises
    ValueError when the mask does not fit inside the image at that place.
    """
    mask_utils = mask_api()
    enc = encoded_rle(rle)
    th, tw = (int(v) for v in enc["size"])
    x, y, height, width = int(x), int(y), int(height), int(width)
    if x < 0 or y < 0 or x + tw > width or y + th > height:
        raise ValueError(f"a {th}x{tw} (h x w) mask at ({x}, {y}) does not fit in a "
                         f"{height}x{width} image")
    cols = np.zeros((tw, th + 2), np.int8)
    cols[:, 1:-1] = mask_utils.decode(enc).T
    step = np.diff(cols, axis=1)
    c0, r0 = np.nonzero(step == 1)  # run starts, column by column
    c1, r1 = np.nonzero(step == -1)  # run ends (exclusive)
    start = (x + c0.astype(np.int64)) * height + y + r0
    end = (x + c1.astype(np.int64)) * height + y + r1
    if len(start) > 1:  # runs that meet across a column boundary are one run
        meet = end[:-1] == start[1:]
        start = start[np.concatenate([[True], ~meet])]
        end = end[np.concatenate([~meet, [True]])]
    bounds = np.empty(2 * len(start), np.int64)
    bounds[0::2], bounds[1::2] = start, end
    counts = np.diff(np.concatenate([[0], bounds, [height * width]]))
    out = mask_utils.frPyObjects({"size": [height, width], "counts": counts.tolist()},
                                 height, width)
    return {"size": [height, width], "counts": out["counts"].decode("ascii")}


# -- keypoints -------------------------------------------------------------------------


def clip_keypoints(keypoints: np.ndarray, windows_xyxy: np.ndarray) -> np.ndarray:
    """Keypoints of each row moved into its window; those outside become ``(0, 0, 0)``.

    ``keypoints`` is (n, k, 3) (x, y, visibility); ``windows_xyxy`` (n, 4) or (4,).
    Returns a new (n, k, 3) float64 array, **shifted**: ``x - x0``, ``y - y0``. A
    keypoint counts as inside when ``x0 <= x <= x1`` and ``y0 <= y <= y1`` (closed: a
    point on a shared edge belongs to both windows); its visibility is kept. Keypoints
    outside, and unlabeled ones (visibility 0), come out as ``(0, 0, 0)``, COCO's
    "not labeled".
    """
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 3 or kp.shape[2] != 3:
        raise ValueError(f"keypoints must have shape (n, k, 3), got {kp.shape}")
    w = _windows(windows_xyxy, len(kp))
    x, y, v = kp[..., 0], kp[..., 1], kp[..., 2]
    x0, y0 = w[:, 0:1], w[:, 1:2]
    x1, y1 = w[:, 2:3], w[:, 3:4]
    keep = (v > 0) & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    out = np.zeros_like(kp)
    out[..., 0] = np.where(keep, x - x0, 0.0)
    out[..., 1] = np.where(keep, y - y0, 0.0)
    out[..., 2] = np.where(keep, v, 0.0)
    return out
