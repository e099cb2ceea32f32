"""Geometry of annotations: the flat polygon layout, boxes and areas.

Polygons of many annotations live in one :class:`Polygons` value (Arrow's list layout):

* ``coords``: float64 array of shape (m, 2), every vertex of every ring;
* ``ring_offsets``: int64 (r + 1,), ring ``k`` is ``coords[ring_offsets[k]:ring_offsets[k+1]]``;
* ``offsets``: int64 (n + 1,), annotation ``i`` owns rings ``offsets[i]:offsets[i+1]``.

Parsing JSON numbers into floats is the expensive part of a COCO file, so
segmentations stay as their JSON text until someone asks, and then only the rows asked
for are parsed, a run of texts at a time into one float64 array
(:func:`cocokit.rawjson.read_arrays`: simdjson where its wheel is, about 40M numbers a
second here, msgspec otherwise, about 11M).

Areas follow pycocotools: the area of a polygon or RLE is the number of mask pixels
(``pycocotools.mask.area`` of the rasterized shape), the area of a box is ``w * h``.

What a segmentation is (:class:`SegmentationKind`) is decided in one place,
:func:`segmentation_kind`, for a decoded value or its JSON text alike; every module asks
it (or the cached column :attr:`cocokit.Annotations.segmentation_kind`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import itertools
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import numpy as np

from .rawjson import heads, read_arrays

__all__ = [
    "RLE_KINDS",
    "Polygons",
    "SegmentationKind",
    "annotation_areas",
    "box_corners",
    "encoded_rle",
    "keypoint_flip_permutation",
    "min_area_rectangles",
    "oriented_boxes",
    "parse_polygons",
    "polygon_bboxes",
    "polygon_rings",
    "ring_areas",
    "segmentation_areas",
    "segmentation_bboxes",
    "segmentation_kind",
    "segmentation_kinds",
    "segmentation_rle",
    "shoelace_areas",
]

_POLY = msgspec.json.Decoder(list[list[float]])


class SegmentationKind(enum.IntEnum):
    """What a ``segmentation`` value is; the values are the codes of the kind column.

    Only the shape is looked at (a list, or a dict and the type of its ``counts``); whether
    the numbers inside are valid is :func:`cocokit.validate`'s business.
    """

    INVALID = -1  # a string, a number, a dict whose counts is neither list nor string
    NONE = 0  # no segmentation (absent or null)
    POLYGON = 1  # a list of rings [[x1, y1, x2, y2, ...], ...]
    RLE_UNCOMPRESSED = 2  # {"size": [h, w], "counts": [n0, n1, ...]}
    RLE_COMPRESSED = 3  # {"size": [h, w], "counts": "string"} (pycocotools' encoding)

    @property
    def is_rle(self) -> bool:
        return self in (SegmentationKind.RLE_UNCOMPRESSED, SegmentationKind.RLE_COMPRESSED)


RLE_KINDS = (SegmentationKind.RLE_UNCOMPRESSED, SegmentationKind.RLE_COMPRESSED)
"""The two RLE kinds, for ``np.isin(kinds, RLE_KINDS)``."""

# the type of "counts" in raw JSON: its first character after the colon
_COUNTS = re.compile(rb'"counts"\s*:\s*(.)', re.S)


def segmentation_kind(seg: Any) -> SegmentationKind:
    """The kind of one segmentation: a decoded value or its JSON text (``msgspec.Raw``).

    JSON text is classified from its bytes where that is unambiguous (``[``: a polygon
    list; an object with one ``"counts"`` key: the character after it), so an RLE is not
    decoded to be classified.
    """
    if seg is None:
        return SegmentationKind.NONE
    if isinstance(seg, msgspec.Raw):
        view = memoryview(seg)
        head = bytes(view[:1])
        if head == b"[":
            return SegmentationKind.POLYGON
        if head == b"n":
            return SegmentationKind.NONE
        if head != b"{":
            return SegmentationKind.INVALID
        text = bytes(view)
        found = _COUNTS.findall(text)
        if len(found) == 1:
            return (SegmentationKind.RLE_COMPRESSED if found[0] == b'"'
                    else SegmentationKind.RLE_UNCOMPRESSED if found[0] == b"["
                    else SegmentationKind.INVALID)
        seg = msgspec.json.decode(text)
    if isinstance(seg, dict):
        counts = seg.get("counts")
        if isinstance(counts, (str, bytes)):
            return SegmentationKind.RLE_COMPRESSED
        if isinstance(counts, (list, tuple, np.ndarray)):
            return SegmentationKind.RLE_UNCOMPRESSED
        return SegmentationKind.INVALID
    if isinstance(seg, (list, tuple, np.ndarray)):
        return SegmentationKind.POLYGON
    return SegmentationKind.INVALID


def segmentation_kinds(segmentation: Sequence[Any] | np.ndarray) -> np.ndarray:
    """:func:`segmentation_kind` of every value, as an int8 column of the enum's values."""
    out = np.empty(len(segmentation), np.int8)
    for i, seg in enumerate(segmentation):
        out[i] = segmentation_kind(seg)
    return out


@dataclasses.dataclass(frozen=True)
class Polygons:
    """Polygons of n annotations in one flat layout (see the module docstring)."""

    coords: np.ndarray
    ring_offsets: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def ring_count(self) -> np.ndarray:
        """Number of rings of each annotation."""
        return np.diff(self.offsets)

    def rings(self, i: int) -> list[np.ndarray]:
        """The rings of annotation ``i``, each a (k, 2) view of :attr:`coords`."""
        ro = self.ring_offsets
        return [self.coords[ro[k] : ro[k + 1]] for k in range(self.offsets[i], self.offsets[i + 1])]

    def to_coco(self, i: int) -> list[list[float]]:
        """Annotation ``i`` as a COCO polygon list ``[[x1, y1, x2, y2, ...], ...]``."""
        return [ring.ravel().tolist() for ring in self.rings(i)]

    @classmethod
    def from_rings(cls, rings_per_annotation: Sequence[Sequence[np.ndarray]]) -> Polygons:
        """Build from, per annotation, a list of (k, 2) arrays or flat [x, y, ...] arrays."""
        counts = [len(r) for r in rings_per_annotation]
        flat = [
            np.asarray(ring, np.float64).reshape(-1, 2)
            for rs in rings_per_annotation
            for ring in rs
        ]
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        ring_offsets = np.zeros(len(flat) + 1, np.int64)
        np.cumsum([len(f) for f in flat], out=ring_offsets[1:])
        coords = np.concatenate(flat) if flat else np.zeros((0, 2), np.float64)
        return cls(coords, ring_offsets, offsets)


def _segment_polygon(seg: Any) -> list[list[float]]:
    if seg is None:
        return []
    if isinstance(seg, msgspec.Raw):
        if bytes(memoryview(seg)[:1]) != b"[":
            return []
        return _POLY.decode(seg)
    if isinstance(seg, dict):
        return []
    return [np.asarray(r, np.float64).ravel().tolist() for r in seg]


_RAW_RUN = 1 << 15  # polygon texts read at once


def _parse_raw_polygons(sel: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`parse_polygons`' columns of a selection that holds JSON texts and nothing
    else but None, read a run of texts at a time (:func:`cocokit.rawjson.read_arrays`);
    None when it holds anything else, or a run that only the record way reads as
    :func:`parse_polygons` says (a ring nested deeper, a number beyond float64...)."""
    values = sel.tolist() if isinstance(sel, np.ndarray) else list(sel)
    n = len(values)
    is_none = np.fromiter(map(operator.is_, values, itertools.repeat(None)), bool, count=n)
    have = np.flatnonzero(~is_none)
    if not len(have) or any(type(values[k]) is not msgspec.Raw for k in have.tolist()):
        return None
    raws = [values[k] for k in have.tolist()]
    poly = have[heads(raws) == 91]  # "[": the rest is RLE, or no polygon
    ring_counts = np.zeros(n, np.int64)
    lengths, flat = [], []
    for s in range(0, len(poly), _RAW_RUN):
        run = poly[s : s + _RAW_RUN]
        try:
            rings, count, numbers = read_arrays([values[k] for k in run.tolist()], 2)
        except ValueError:
            return None
        ring_counts[run] = rings
        lengths.append(count)
        flat.append(numbers)
    if not lengths:
        return ring_counts, np.zeros(0, np.int64), np.zeros(0, np.float64)
    return ring_counts, np.concatenate(lengths), np.concatenate(flat)


def parse_polygons(segmentation: np.ndarray, rows: np.ndarray | None = None) -> Polygons:
    """Parse the polygons of the given rows (a mask or indices; all rows when None).

    Rows that hold RLE or nothing get zero rings. The result has one entry per selected
    row, in the order given.
    """
    if rows is None:
        sel = segmentation
    else:
        rows = np.asarray(rows)
        sel = segmentation[rows]
    parsed = _parse_raw_polygons(sel)
    if parsed is not None:
        ring_counts, lengths, flat = parsed
    else:
        ring_counts = np.zeros(len(sel), np.int64)
        ring_lengths: list[int] = []
        values: list[list[float]] = []
        for i, seg in enumerate(sel):
            rings = _segment_polygon(seg)
            ring_counts[i] = len(rings)
            ring_lengths.extend(map(len, rings))
            values.extend(rings)
        lengths = np.array(ring_lengths, np.int64)
        flat = np.fromiter(itertools.chain.from_iterable(values), np.float64,
                           int(lengths.sum()))
    if (lengths % 2).any():
        raise ValueError("a polygon ring has an odd number of coordinates")
    coords = flat.reshape(-1, 2)
    ring_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths // 2, out=ring_offsets[1:])
    offsets = np.zeros(len(sel) + 1, np.int64)
    np.cumsum(ring_counts, out=offsets[1:])
    return Polygons(coords, ring_offsets, offsets)


def polygon_bboxes(polys: Polygons) -> np.ndarray:
    """Tight xywh box of each annotation's polygons (NaN row where it has none)."""
    n = len(polys)
    out = np.full((n, 4), np.nan)
    if len(polys.coords) == 0:
        return out
    # vertex range of each annotation
    start = polys.ring_offsets[polys.offsets[:-1]]
    stop = polys.ring_offsets[polys.offsets[1:]]
    has = stop > start
    idx = start[has]
    xmin = np.minimum.reduceat(polys.coords[:, 0], idx)
    ymin = np.minimum.reduceat(polys.coords[:, 1], idx)
    xmax = np.maximum.reduceat(polys.coords[:, 0], idx)
    ymax = np.maximum.reduceat(polys.coords[:, 1], idx)
    # reduceat reduces up to the next index; the last group runs to the end, which is
    # right only when the vertex ranges are contiguous, as they are in this layout.
    out[has] = np.stack([xmin, ymin, xmax - xmin, ymax - ymin], axis=1)
    return out


def ring_areas(coords: np.ndarray, ring_offsets: np.ndarray, *,
               signed: bool = False) -> np.ndarray:
    """The area of each polygon ring by the shoelace formula, every ring at once.

    ``coords`` holds the vertices of all rings end to end, as (m, 2) or flat
    ``[x1, y1, x2, y2, ...]``; ``ring_offsets`` (r + 1,) cuts them into rings, ring ``k``
    being vertices ``ring_offsets[k]:ring_offsets[k+1]`` (:class:`Polygons`' layout).
    Each ring closes on its first vertex. Returns (r,) float64: the absolute area, 0 for
    a ring without vertices, NaN for a ring holding NaN. This is the geometric area of
    the ring's outline, not the pycocotools pixel count (:func:`segmentation_areas`).
    With ``signed=True`` the area keeps the sign of the shoelace sum: positive for a
    ring that runs clockwise on an image (y down), counter-clockwise in x-right, y-up
    axes; negative the other way.
    """
    xy = np.asarray(coords, np.float64).reshape(-1, 2)
    ro = np.asarray(ring_offsets, np.int64)
    r = len(ro) - 1
    x, y = xy[:, 0], xy[:, 1]
    sizes = np.diff(ro)
    nxt = np.arange(1, len(x) + 1)
    full = sizes > 0
    nxt[ro[1:][full] - 1] = ro[:-1][full]  # each ring closes on its first vertex
    nxt %= max(len(x), 1)
    with np.errstate(invalid="ignore", over="ignore"):
        cross = x * y[nxt] - x[nxt] * y
        ring_of = np.repeat(np.arange(r), sizes)
        # bincount adds each ring's terms in order (reduceat would misread an empty ring)
        twice = np.bincount(ring_of, weights=cross, minlength=r)
    return (twice if signed else np.abs(twice)) * 0.5


def shoelace_areas(polys: Polygons) -> np.ndarray:
    """The area of each entry's polygon: the sum of its rings' :func:`ring_areas`, as
    COCO's own files state a polygon's ``area`` and :func:`cocokit.validate` checks it;
    NaN for an entry without a ring of 3 points (no polygon)."""
    n = len(polys)
    rings = np.diff(polys.offsets)
    per_ring = ring_areas(polys.coords, polys.ring_offsets)
    owner = np.repeat(np.arange(n), rings)
    out = np.bincount(owner, weights=per_ring, minlength=n).astype(np.float64)
    has = np.bincount(owner, weights=np.diff(polys.ring_offsets) >= 3, minlength=n) > 0
    out[~has] = np.nan
    return out


def polygon_rings(polygon: Sequence[Any]) -> list[Any]:
    """A polygon segmentation as a list of rings, taking one flat ring for the polygon.

    COCO writes polygons as rings ``[[x1, y1, x2, y2, ...], ...]``; some tools (SAHI's
    results, for one) write a polygon of one ring flat, ``[x1, y1, x2, y2, ...]``. The
    flat form is told by its first item, which is then not a ring (a list, tuple or
    numpy array) and is wrapped: ``[[x1, y1, ...]]``. Rings and their numbers are
    returned as they are (not converted or checked), in a new list, so ``polygon`` is
    never changed; an empty polygon gives ``[]``.
    """
    items = list(polygon)
    if items and not isinstance(items[0], (list, tuple, np.ndarray)):
        return [items]
    return items


def mask_api() -> Any:
    """pycocotools' mask module (imported on first use)."""
    from pycocotools import mask as mask_utils

    return mask_utils


def encoded_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    """The pycocotools RLE object (``counts`` compressed bytes) of an RLE dict whose
    ``counts`` is a list (uncompressed), a string or bytes; what ``mask.area``,
    ``toBbox``, ``decode`` and ``merge`` take."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        out: dict[str, Any] = mask_api().frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return out
    return {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str)
            else counts}


def segmentation_rle(seg: Any, height: int, width: int) -> dict[str, Any] | None:
    """The pycocotools RLE object (compressed ``counts``) of one segmentation, the mask
    that ``mask.area``, ``toBbox``, ``decode``, ``merge`` and ``iou`` take.

    ``seg`` is polygons ``[[x1, y1, x2, y2, ...], ...]``, an uncompressed or compressed
    RLE dict, or either as JSON text (``msgspec.Raw``). Polygons are rasterized at
    ``height`` x ``width`` as pycocotools draws them (each ring, then their union); a
    ring of fewer than 6 numbers encloses nothing and is left out (pycocotools would
    read a first ring of 4 numbers as a box). An RLE keeps its own ``size``. Returns
    None for no segmentation: None, or polygons without a ring of 3 points.
    """
    if seg is None:
        return None
    if isinstance(seg, msgspec.Raw):
        seg = msgspec.json.decode(seg)
    if isinstance(seg, dict):
        return encoded_rle(seg)
    rings = [list(map(float, r)) for r in seg if len(r) >= 6]
    if not rings:
        return None
    mask_utils = mask_api()
    out: dict[str, Any] = mask_utils.merge(mask_utils.frPyObjects(rings, height, width))
    return out


def segmentation_areas(
    segmentation: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """Mask area (pixel count) of each segmentation as pycocotools computes it; NaN if none."""
    mask_utils = mask_api()
    out = np.full(len(segmentation), np.nan)
    for i, seg in enumerate(segmentation):
        if seg is None:
            continue
        rle = segmentation_rle(seg, int(heights[i]), int(widths[i]))
        if rle is not None:
            out[i] = float(mask_utils.area(rle))
    return out


def annotation_areas(
    segmentation: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """The ``area`` an annotation states for its segmentation, the one
    :func:`cocokit.validate` expects: a polygon's :func:`shoelace_areas` (what COCO's
    own files hold), an RLE mask's pixel count (:func:`segmentation_areas`); NaN for
    none (or a polygon without a ring of 3 points). What readers and exports compute
    where an area is missing."""
    out = np.full(len(segmentation), np.nan)
    kinds = segmentation_kinds(segmentation)
    poly = np.flatnonzero(kinds == SegmentationKind.POLYGON)
    if len(poly):
        try:
            out[poly] = shoelace_areas(parse_polygons(segmentation, poly))
        except (ValueError, TypeError):  # a malformed ring: measure the others one by one
            for r in poly.tolist():
                with contextlib.suppress(ValueError, TypeError):
                    out[r] = shoelace_areas(parse_polygons(segmentation, np.array([r])))[0]
    rle = np.flatnonzero(np.isin(kinds, RLE_KINDS))
    if len(rle):
        out[rle] = segmentation_areas(segmentation[rle], heights[rle], widths[rle])
    return out


def segmentation_bboxes(
    segmentation: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> np.ndarray:
    """Tight xywh box of each segmentation (polygons exactly, RLE by pycocotools); NaN if none."""
    mask_utils = mask_api()
    out = np.full((len(segmentation), 4), np.nan)
    kinds = np.isin(segmentation_kinds(segmentation), RLE_KINDS)
    poly_rows = np.flatnonzero(~kinds)
    if len(poly_rows):
        out[poly_rows] = polygon_bboxes(parse_polygons(segmentation, poly_rows))
    for i in np.flatnonzero(kinds):
        rle = segmentation_rle(segmentation[i], int(heights[i]), int(widths[i]))
        out[i] = mask_utils.toBbox(rle)
    return out


def min_area_rectangles(point_sets: Sequence[np.ndarray]) -> np.ndarray:
    """The minimum-area rotated rectangle around each set of points, as (n, 4, 2) corners.

    ``point_sets``: (k, 2) arrays (the vertices of one annotation, all rings together).
    The corners go clockwise on an image (y down; a positive shoelace sum), as DOTA and
    Ultralytics OBB labels list them. A set of 4 points that already is such a rectangle
    comes back as it is (same corners, same start). Collinear or repeated points give a
    degenerate rectangle (their bounds, a segment or a point); an empty set NaN corners.
    """
    import shapely

    out = np.full((len(point_sets), 4, 2), np.nan)
    sets = [np.asarray(p, np.float64).reshape(-1, 2) for p in point_sets]
    rows = np.flatnonzero([len(p) > 0 for p in sets])
    if not len(rows):
        return out
    sizes = np.array([len(sets[i]) for i in rows], np.int64)
    coords = np.concatenate([sets[i] for i in rows])
    # every set as one MultiPoint, their rectangles in one vectorized call
    multi = shapely.multipoints(coords, indices=np.repeat(np.arange(len(rows)), sizes))
    rects = shapely.minimum_rotated_rectangle(multi)
    good = (shapely.get_type_id(rects) == 3) & (shapely.area(rects) > 0)
    for k, i in enumerate(rows.tolist()):
        pts = sets[i]
        if good[k]:
            corners = shapely.get_coordinates(shapely.get_exterior_ring(rects[k]))[:4]
        else:  # a segment or a point: its bounds as a flat rectangle
            x0, y0 = pts.min(axis=0)
            x1, y1 = pts.max(axis=0)
            corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
        if not _clockwise(corners):
            corners = corners[::-1]
        if len(pts) == 4 and _same_rectangle(pts, corners):
            corners = pts if _clockwise(pts) else pts[::-1]
        out[i] = corners
    return out


def box_corners(bbox: np.ndarray) -> np.ndarray:
    """The 4 corners (n, 4, 2) of xywh boxes, clockwise on an image from the top left."""
    x, y, w, h = np.asarray(bbox, np.float64).reshape(-1, 4).T
    return np.stack([np.stack([x, y], 1), np.stack([x + w, y], 1),
                     np.stack([x + w, y + h], 1), np.stack([x, y + h], 1)], axis=1)


def oriented_boxes(segmentation: np.ndarray, rows: np.ndarray, kinds: np.ndarray,
                   bbox: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The oriented box (4 corners) of each annotation row, as DOTA and YOLO OBB store it.

    ``kinds`` and ``bbox`` (xywh) are per entry of ``rows``. A polygon of one ring of 4
    points is kept as it is; any other polygon becomes the minimum-area rotated
    rectangle of its points (:func:`min_area_rectangles`); anything else (a box, an RLE
    mask) the corners of its box (NaN where there is no box). Returns ``(corners,
    kept, rotated)``: the (n, 4, 2) corners and two masks, the polygons kept and those
    turned into a rectangle. A polygon that cannot be read raises ``ValueError`` or
    ``TypeError``.
    """
    is_poly = np.asarray(kinds) == SegmentationKind.POLYGON
    polys = parse_polygons(segmentation, np.asarray(rows)[is_poly])
    corners = box_corners(bbox)
    kept = np.zeros(len(rows), bool)
    rotated = np.zeros(len(rows), bool)
    ro = polys.ring_offsets
    point_sets: list[np.ndarray] = []
    for k, j in enumerate(np.flatnonzero(is_poly).tolist()):
        r0, r1 = int(polys.offsets[k]), int(polys.offsets[k + 1])
        pts = polys.coords[ro[r0] : ro[r1]]
        if r1 - r0 == 1 and len(pts) == 4:
            corners[j] = pts
            kept[j] = True
        elif len(pts):
            rotated[j] = True
            point_sets.append(pts)
    if point_sets:
        corners[rotated] = min_area_rectangles(point_sets)
    return corners, kept, rotated


def _clockwise(pts: np.ndarray) -> bool:
    """Whether a ring of (k, 2) points runs clockwise on an image (or has no area)."""
    return bool(ring_areas(pts, np.array([0, len(pts)]), signed=True)[0] >= 0)


def _same_rectangle(pts: np.ndarray, corners: np.ndarray) -> bool:
    """Whether 4 points are the corners of ``corners`` (up to order and float noise)."""
    scale = max(float(np.abs(corners).max()), 1.0)
    d = np.abs(pts[:, None, :] - corners[None, :, :]).max(axis=2)
    return bool((d.min(axis=1) <= 1e-9 * scale).all() and (d.min(axis=0) <= 1e-9 * scale).all())


# -- keypoints ---------------------------------------------------------------------------

_SIDE = re.compile(r"left|right|Left|Right|LEFT|RIGHT")
_SIDE_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left",
              "LEFT": "RIGHT", "RIGHT": "LEFT"}
_PREFIX = re.compile(r"^([lrLR])([_\-. ])")
_SUFFIX = re.compile(r"([_\-. ])([lrLR])$")
_LR = {"l": "r", "r": "l", "L": "R", "R": "L"}


def _mirror_name(name: str) -> str:
    swapped = _SIDE.sub(lambda mt: _SIDE_SWAP[mt.group(0)], name)
    if swapped != name:
        return swapped
    swapped = _PREFIX.sub(lambda mt: _LR[mt.group(1)] + mt.group(2), name)
    if swapped != name:
        return swapped
    return _SUFFIX.sub(lambda mt: mt.group(1) + _LR[mt.group(2)], name)


def keypoint_flip_permutation(names: Sequence[str],
                              pairs: Sequence[Sequence[str]] = ()) -> np.ndarray:
    """The keypoint order after a mirror: ``new[i] = old[perm[i]]``.

    Names that differ only by ``left``/``right`` (any case) or by an ``l_``/``r_``
    prefix or ``_l``/``_r`` suffix swap; ``pairs`` adds or overrides pairs by name
    (pairs whose names are not both present are ignored).
    """
    names = [str(n) for n in names]
    index = {n: i for i, n in enumerate(names)}
    partner: dict[str, str] = {}
    for n in names:
        other = _mirror_name(n)
        if other != n and other in index:
            partner[n] = other
    for a, b in pairs:
        if a in index and b in index:
            for x in (a, b):
                old = partner.pop(x, None)
                if old is not None:
                    partner.pop(old, None)
            partner[a], partner[b] = b, a
    perm = np.arange(len(names))
    for n, other in partner.items():
        if partner.get(other) == n:
            perm[index[n]] = index[other]
    return perm
