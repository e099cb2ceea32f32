"""The SAHI layer's shared bottom: its errors, the record objects and the column store.

``_sahi_coco`` (the ``Coco`` dataset and the dict tools), ``_sahi_slicing`` and
``_sahi_yolo`` import from here, never from each other's private names.

How it is built (see ``docs/sahi-migration.md`` for what differs from SAHI):

* A loaded dataset lives in a :class:`Store`: cocokit's numpy tables with the images in
  list order and their annotations grouped by image (``offsets``). Loading is
  :func:`cocokit.load` plus a few vectorized steps (duplicate image ids, category
  remapping, grouping): no Python object per annotation, no shapely object ever kept.
* ``Coco.images`` is an :class:`ImageList`: a list of store positions and, for images
  added by hand, :class:`CocoImage` objects. A position becomes a :class:`CocoImage`
  (with :class:`CocoAnnotation` objects that read their store row) only when it is
  accessed, and then always the same object, so changes made to it are kept.
* Whole-dataset work (``json``, ``stats``, filters, category updates, export) collects
  the list into columns (:func:`collect`): untouched positions are gathered from the
  store in one ``take``; only images someone changed are read from their objects.
"""

from __future__ import annotations

import copy
import logging
import numbers
import os
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, SupportsIndex, TypeVar, overload

import msgspec
import numpy as np

from ..clipping import polygon_areas, rle_area, rle_bbox
from ..dataset import (
    Annotations,
    Categories,
    Dataset,
    Images,
    gc_paused,
    lookup,
    object_array,
    plain,
)
from ..errors import InputError, OptionError
from ..geometry import Polygons, parse_polygons, polygon_bboxes, polygon_rings
from ..io.coco import read_coco, tables_from_records, to_dict
from ..slicing import slice_annotations

log = logging.getLogger("cocokit.compat.sahi")

_TAnn = TypeVar("_TAnn", bound="CocoAnnotation")
_TPred = TypeVar("_TPred", bound="CocoPrediction")
_TImg = TypeVar("_TImg", bound="CocoImage")
_TCat = TypeVar("_TCat", bound="CocoCategory")

ImageIdSetting = Literal["auto", "manual"]


# -- errors ------------------------------------------------------------------------------


class SahiValueError(OptionError, ValueError):
    """A bad argument where SAHI raises ``ValueError`` (so ``except ValueError`` still works)."""


class SahiTypeError(OptionError, TypeError):
    """A wrong type where SAHI raises ``TypeError`` (so ``except TypeError`` still works)."""


def check_id_setting(value: Any) -> None:
    if value not in ("auto", "manual"):
        raise SahiValueError("image_id_setting", value, "'auto' or 'manual'")


# -- small helpers -----------------------------------------------------------------------


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each start and count."""
    counts = np.asarray(counts, np.int64)
    starts = np.asarray(starts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.cumsum(counts) - counts
    return np.repeat(starts - first, counts) + np.arange(total, dtype=np.int64)


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _num(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def segmentation_value(seg: Any) -> Any:
    """A segmentation as plain data: None, a list of rings (lists of floats) or an RLE dict."""
    if seg is None:
        return None
    if isinstance(seg, msgspec.Raw):
        seg = msgspec.json.decode(seg)
    if isinstance(seg, Mapping):
        out = {k: plain(_num(v)) for k, v in seg.items()}
        counts = seg.get("counts")
        if isinstance(counts, bytes):
            out["counts"] = counts.decode("ascii")
        elif isinstance(counts, np.ndarray):
            out["counts"] = counts.astype(np.int64).tolist()
        return out
    if isinstance(seg, np.ndarray):
        seg = seg.tolist()
    if not isinstance(seg, (list, tuple)):
        raise SahiTypeError("segmentation", type(seg).__name__,
                            "a list of polygons [[x1, y1, x2, y2, ...], ...] or an RLE dict")
    return [np.asarray(ring, np.float64).ravel().tolist() for ring in polygon_rings(seg)]


def _box_value(bbox: Any) -> np.ndarray:
    arr = np.asarray(bbox, np.float64).ravel()
    if arr.shape != (4,):
        raise SahiValueError("bbox", bbox, "4 numbers [x, y, width, height]")
    return arr


def _geometry_of(seg: Any, box: np.ndarray | None) -> tuple[int, float, np.ndarray | None]:
    """(kind, area, box) of one segmentation value: kind 0 box, 1 polygon, 2 RLE.

    The area is SAHI's: geometric polygon area (parts unioned, repaired when invalid),
    RLE pixel count, or ``w * h``; the box is the polygon's tight box, the RLE's box, or
    ``box``.
    """
    if isinstance(seg, Mapping):
        try:
            return 2, rle_area(dict(seg)), rle_bbox(seg)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(None, "segmentation", f"unreadable RLE: {e}") from None
    if isinstance(seg, list) and any(len(r) >= 6 for r in seg):
        rings = [np.asarray(r, np.float64).reshape(-1, 2) for r in seg if len(r) >= 2]
        polys = Polygons.from_rings([rings])
        area = float(polygon_areas(polys)[0])
        return 1, area, polygon_bboxes(polys)[0]
    if box is None:
        return 0, 0.0, None
    return 0, float(box[2] * box[3]), box


def table_geometry(anns: Annotations, file: str | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``anns``: kind (0 box, 1 polygon, 2 RLE), SAHI's area, box (xywh).

    The box is the one read where the row has one, else the one of its geometry.
    Polygons are parsed and measured in one vectorized pass.
    """
    n = len(anns)
    kind = np.zeros(n, np.int8)
    area = np.zeros(n, np.float64)
    box = np.array(anns.bbox, np.float64, copy=True)
    seg = anns.segmentation
    raw_kind = anns.segmentation_kind
    poly_rows = np.flatnonzero(raw_kind == 1)
    if len(poly_rows):
        try:
            polys = parse_polygons(seg, poly_rows)
        except (ValueError, msgspec.DecodeError) as e:
            raise InputError(file, "annotations[].segmentation",
                             f"unreadable polygon: {e}") from None
        ring_len = np.diff(polys.ring_offsets)
        owner = np.repeat(np.arange(len(poly_rows)), polys.ring_count)
        longest = np.zeros(len(poly_rows), np.int64)
        np.maximum.at(longest, owner, ring_len)
        real = np.flatnonzero(longest >= 3)
        rows = poly_rows[real]
        kind[rows] = 1
        area[rows] = polygon_areas(polys, real)
        missing = np.isnan(box[rows, 0])
        if missing.any():
            box[rows[missing]] = polygon_bboxes(polys)[real[missing]]
    for i in np.flatnonzero(raw_kind >= 2).tolist():
        rle = plain(seg[i])
        try:
            area[i] = rle_area(rle)
            if np.isnan(box[i, 0]):
                box[i] = rle_bbox(rle)
        except (KeyError, TypeError, ValueError) as e:
            raise InputError(file, f"annotation {int(anns.id[i])}.segmentation",
                             f"unreadable RLE: {e}") from None
        kind[i] = 2
    plain_box = kind == 0
    with np.errstate(invalid="ignore"):
        area[plain_box] = np.nan_to_num(box[plain_box, 2] * box[plain_box, 3])
    return kind, area, box


# -- categories --------------------------------------------------------------------------


class CocoCategory:
    """A COCO category (``sahi.utils.coco.CocoCategory``).

    Keys other than id, name and supercategory (``keypoints``, ``skeleton``, LVIS's
    ``synset``, ...) are kept and written back by :attr:`json`.
    """

    def __init__(self, id: int = 0, name: str | None = None,
                 supercategory: str | None = None) -> None:
        """A category; ``supercategory`` defaults to ``name`` as in SAHI."""
        self.id = int(id)
        self.name = name
        self.supercategory = supercategory if supercategory else name
        self._extra: dict[str, Any] = {}

    @classmethod
    def from_coco_category(cls: type[_TCat], category: Mapping[str, Any]) -> _TCat:
        """A category from a COCO record ``{"id": 1, "name": "person", ...}`` (not changed)."""
        for key in ("id", "name"):
            if key not in category:
                raise InputError(None, "category",
                                 f"missing required key `{key}` in {dict(category)}")
        out = cls(id=category["id"], name=category["name"],
                  supercategory=category.get("supercategory", category["name"]))
        out._extra = {k: plain(v) for k, v in category.items()
                      if k not in ("id", "name", "supercategory")}
        return out

    @property
    def json(self) -> dict[str, Any]:
        """The COCO record: id, name, supercategory and any other keys it was read with."""
        out: dict[str, Any] = {"id": self.id, "name": self.name,
                               "supercategory": self.supercategory}
        out.update(copy.deepcopy(self._extra))
        return out

    def __repr__(self) -> str:
        return (f"CocoCategory<\n    id: {self.id},\n    name: {self.name},\n"
                f"    supercategory: {self.supercategory}>")


class CategoryViews:
    """The category views SAHI's ``Coco`` and ``CocoVid`` share (``self.categories`` is a
    list of :class:`CocoCategory`)."""

    categories: list[CocoCategory]
    remapping_dict: Mapping[int, int] | None

    def add_categories_from_coco_category_list(
            self, coco_category_list: Iterable[Mapping[str, Any]]) -> None:
        """Add categories from COCO records (ids remapped by ``remapping_dict``; the records
        are not changed)."""
        for record in coco_category_list:
            rec = dict(record)
            if self.remapping_dict is not None and "id" in rec:
                rec["id"] = self.remapping_dict.get(rec["id"], rec["id"])
            self.add_category(CocoCategory.from_coco_category(rec))

    def add_category(self, category: CocoCategory) -> None:
        """Add a :class:`CocoCategory`."""
        if not isinstance(category, CocoCategory):
            raise SahiTypeError("category", type(category).__name__, "a CocoCategory instance")
        self.categories.append(category)

    @property
    def json_categories(self) -> list[dict[str, Any]]:
        """The categories as COCO records."""
        return [c.json for c in self.categories]

    @property
    def category_mapping(self) -> dict[int, str | None]:
        """Category id -> name."""
        return {c.id: c.name for c in self.categories}


# -- annotations -------------------------------------------------------------------------

_RECORD_KEYS = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd")


class CocoAnnotation:
    """One annotation (``sahi.utils.coco.CocoAnnotation``), made from a polygon, a box or RLE.

    Unlike SAHI it keeps what it was given: float polygon coordinates, RLE masks,
    ``iscrowd``, keypoints and unknown keys. Annotations of a loaded :class:`Coco` read
    their values from the dataset's columns (no shapely object is built). ``area`` is
    SAHI's: the geometric polygon area (a float, not truncated), the RLE pixel count,
    or ``w * h`` for a box.
    """

    # set for annotations that read a row of a loaded dataset
    _src: Store | None = None
    _row: int = -1

    def __init__(
        self,
        category_id: int,
        category_name: str | None = None,
        segmentation: Any = None,
        bbox: Any = None,
        image_id: int | None = None,
        iscrowd: int = 0,
    ) -> None:
        """An annotation from a ``segmentation`` (polygons, or RLE) or a ``bbox`` (xywh).

        As in SAHI, a polygon wins over a box (the box is then the polygon's), and
        giving neither raises an error (:class:`SahiValueError`, :class:`SahiTypeError`).
        """
        if bbox is None and segmentation is None:
            raise SahiValueError("bbox/segmentation", None,
                                 "a bbox or a polygon (you must provide a bbox or polygon)")
        seg = segmentation_value(segmentation)
        box: np.ndarray | None = None
        if not seg:
            if bbox is None or len(bbox) == 0:
                raise SahiTypeError("bbox", bbox, "a COCO box [x, y, width, height] "
                                    "(Coco bounding box not set)")
            box = _box_value(bbox)
        self._setup(category_id, category_name, image_id, iscrowd)
        self._segmentation = seg
        self._given_box = box

    def _setup(self, category_id: Any, category_name: Any, image_id: Any, iscrowd: Any) -> None:
        self._category_id = category_id
        self._category_name = category_name
        self._image_id = image_id
        self._iscrowd: int | None = None if iscrowd is None else int(iscrowd)
        self._fields: dict[str, Any] = {}
        self._record_area: float | None = None
        self._geo: tuple[int, float, np.ndarray | None] | None = None
        self._empty = False

    # -- construction ----------------------------------------------------------------

    @classmethod
    def from_coco_segmentation(cls: type[_TAnn], segmentation: Any, category_id: int,
                               category_name: str, iscrowd: int = 0) -> _TAnn:
        """An annotation from COCO polygons ``[[x1, y1, x2, y2, ...], ...]`` (or an RLE dict)."""
        return cls(segmentation=segmentation, category_id=category_id,
                   category_name=category_name, iscrowd=iscrowd)

    @classmethod
    def from_coco_bbox(cls: type[_TAnn], bbox: Any, category_id: int, category_name: str,
                       iscrowd: int = 0) -> _TAnn:
        """An annotation from a COCO box ``[x, y, width, height]``."""
        return cls(bbox=bbox, category_id=category_id, category_name=category_name,
                   iscrowd=iscrowd)

    @classmethod
    def from_coco_annotation_dict(cls: type[_TAnn], annotation_dict: Mapping[str, Any],
                                  category_name: str | None = None) -> _TAnn:
        """An annotation from a COCO annotation record (the record is not changed).

        Polygons and RLE masks are kept (SAHI drops RLE and keeps the box), as are
        ``iscrowd``, ``area``, ``bbox`` as written, keypoints and unknown keys.
        """
        return _from_record(cls, annotation_dict, category_name)

    @classmethod
    def _from_store(cls: type[_TAnn], store: Store, start: int, stop: int,
                    image_id: int | None) -> list[_TAnn]:
        """The annotations of store rows ``start:stop`` (columns read once, as lists)."""
        anns = store.annotations
        out = []
        for row, cid, name, crowd in zip(range(start, stop),
                                         anns.category_id[start:stop].tolist(),
                                         store.names[start:stop].tolist(),
                                         anns.iscrowd[start:stop].tolist(), strict=True):
            obj = cls.__new__(cls)
            obj._setup(cid, name, image_id, crowd if crowd >= 0 else None)
            obj._src = store
            obj._row = row
            obj._segmentation = None
            obj._given_box = None
            out.append(obj)
        return out

    @classmethod
    def _make(cls: type[_TAnn], category_id: Any, category_name: Any, segmentation: Any,
              bbox: np.ndarray | None, iscrowd: int | None, area: float | None = None,
              fields: Mapping[str, Any] | None = None, image_id: Any = None) -> _TAnn:
        """An annotation from values already checked (slicing results)."""
        obj = cls.__new__(cls)
        obj._setup(category_id, category_name, image_id, iscrowd)
        obj._segmentation = segmentation
        obj._given_box = bbox
        obj._record_area = area
        obj._fields = dict(fields or {})
        if isinstance(obj, CocoPrediction):
            obj.score = None
        return obj

    # -- geometry --------------------------------------------------------------------

    def _seg(self) -> Any:
        if self._src is not None:
            return segmentation_value(self._src.annotations.segmentation[self._row])
        return self._segmentation

    def _geometry(self) -> tuple[int, float, np.ndarray | None]:
        if self._geo is None:
            if self._empty:
                self._geo = (-1, 0.0, None)
            elif self._src is not None:
                self._geo = self._src.row_geometry(self._row)
            else:
                kind, area, box = _geometry_of(self._segmentation, self._given_box)
                if self._given_box is not None and kind != 0:
                    box = self._given_box
                self._geo = (kind, area, box)
        return self._geo

    @property
    def area(self) -> float:
        """Area: geometric polygon area (union of parts), RLE pixel count, or box ``w * h``."""
        return self._geometry()[1]

    @property
    def bbox(self) -> list[float]:
        """The box ``[x, y, width, height]``: as given or read, else the polygon's tight box.

        An annotation sliced to nothing has ``[]``, as in SAHI.
        """
        box = self._geometry()[2]
        return [] if box is None else [float(v) for v in box]

    @property
    def segmentation(self) -> Any:
        """The polygons ``[[x1, y1, ...], ...]`` as given (floats kept), an RLE dict, or ``[]``."""
        seg = self._seg()
        if isinstance(seg, Mapping):
            return dict(seg)
        if isinstance(seg, list) and seg:
            return [list(r) for r in seg]
        return []

    @property
    def category_id(self) -> int:
        """The category id."""
        return self._category_id

    @category_id.setter
    def category_id(self, i: int) -> None:
        if not is_int(i):
            raise SahiTypeError("category_id", i, "an integer (category_id must be an integer)")
        self._category_id = int(i)

    @property
    def image_id(self) -> int | None:
        """The image id (for annotations of a loaded dataset: their image's id)."""
        return self._image_id

    @image_id.setter
    def image_id(self, i: int) -> None:
        if not is_int(i):
            raise SahiTypeError("image_id", i, "an integer (image_id must be an integer)")
        self._image_id = int(i)

    @property
    def category_name(self) -> str | None:
        """The category name."""
        return self._category_name

    @category_name.setter
    def category_name(self, n: str) -> None:
        if not isinstance(n, str):
            raise SahiTypeError("category_name", n, "a string (category_name must be a string)")
        self._category_name = n

    @property
    def iscrowd(self) -> int:
        """0 or 1 as given or read (0 where the record had none)."""
        return self._iscrowd if self._iscrowd is not None else 0

    @property
    def json(self) -> dict[str, Any]:
        """The annotation as a COCO dict (SAHI's keys, plus keypoints and unknown keys)."""
        out: dict[str, Any] = {
            "image_id": self.image_id,
            "bbox": self.bbox,
            "category_id": self.category_id,
            "segmentation": self.segmentation,
            "iscrowd": self.iscrowd,
            "area": self.area,
        }
        out.update(self._extra_fields())
        return out

    def _extra_fields(self) -> dict[str, Any]:
        if self._src is not None:
            rec = self._src.annotations.record(self._row)
            return {k: v for k, v in rec.items() if k not in _RECORD_KEYS}
        return copy.deepcopy(self._fields)

    def _record(self) -> dict[str, Any]:
        """The record to export (ids are set by the caller)."""
        if self._src is not None:
            loaded = self._src.annotations.record(self._row)
            loaded["category_id"] = int(self._category_id)
            return loaded
        box = self._geometry()[2]
        rec: dict[str, Any] = {"id": 0, "image_id": 0, "category_id": int(self._category_id)}
        seg = self._segmentation
        rec["segmentation"] = seg if isinstance(seg, (list, Mapping)) else []
        if box is not None:
            rec["bbox"] = [float(v) for v in box]
        rec["area"] = self._record_area if self._record_area is not None else self.area
        if self._iscrowd is not None:
            rec["iscrowd"] = self._iscrowd
        rec.update(copy.deepcopy(self._fields))
        return rec

    def _columns_row(self) -> dict[str, Any]:
        """This annotation's geometry as one row of the columns slicing takes."""
        if self._src is not None:
            a, r = self._src.annotations, self._row
            return {"bbox": a.bbox[r], "area": a.area[r], "segmentation": a.segmentation[r],
                    "keypoints": a.keypoints[r], "num_keypoints": a.num_keypoints[r]}
        _, area, box = self._geometry()
        seg = self._segmentation
        return {
            "bbox": np.full(4, np.nan) if box is None else np.asarray(box, np.float64),
            "area": self._record_area if self._record_area is not None else area,
            "segmentation": seg if isinstance(seg, (list, Mapping)) else [],
            "keypoints": self._fields.get("keypoints"),
            "num_keypoints": int(self._fields.get("num_keypoints", -1)),
        }

    def _carry(self) -> dict[str, Any]:
        """Keys a sliced copy keeps (unknown keys; not geometry, ids or keypoints)."""
        skip = {*_RECORD_KEYS, "keypoints", "num_keypoints"}
        return {k: v for k, v in self._extra_fields().items() if k not in skip}

    def get_sliced_coco_annotation(self, slice_bbox: Sequence[int]) -> CocoAnnotation:
        """This annotation clipped to ``slice_bbox`` (``[x_min, y_min, x_max, y_max]``).

        Coordinates are moved so the slice's corner is the origin. Polygons are cut with
        shapely and keep float coordinates (and every piece); an RLE mask is cropped; a
        box stays a box (SAHI turns it into a rectangle polygon); keypoints move along.
        """
        x0, y0, x1, y1 = (int(v) for v in slice_bbox)
        out = slice_annotation_objects([self], [[x0, y0, x1, y1]], 0.0)[0]
        if out:
            return out[0]
        empty = CocoAnnotation._make(self.category_id, self.category_name or "", [], None,
                                     self._iscrowd)
        empty._empty = True
        return empty

    def __repr__(self) -> str:
        return (f"{type(self).__name__}<\n    image_id: {self.image_id},\n    bbox: {self.bbox},\n"
                f"    segmentation: {self.segmentation},\n    category_id: {self.category_id},\n"
                f"    category_name: {self.category_name},\n    iscrowd: {self.iscrowd},\n"
                f"    area: {self.area}>")


def _from_record(cls: type[_TAnn], rec: Mapping[str, Any], category_name: str | None,
                 **extra: Any) -> _TAnn:
    if "category_id" not in rec:
        raise InputError(None, "annotation", "missing required key `category_id`")
    seg = segmentation_value(rec.get("segmentation"))
    box = _box_value(rec["bbox"]) if rec.get("bbox") is not None and len(rec["bbox"]) else None
    if not seg and box is None:
        raise InputError(None, f"annotation {rec.get('id', '?')}",
                         "neither a segmentation nor a bbox")
    return cls._make(rec["category_id"], category_name, seg if seg else rec.get("segmentation", []),
                    box, rec.get("iscrowd", 0), rec.get("area"),
                    {k: plain(v) for k, v in rec.items()
                     if k not in (*_RECORD_KEYS, "score", "category_name")},
                    **extra)


class CocoPrediction(CocoAnnotation):
    """A prediction (``sahi.utils.coco.CocoPrediction``): an annotation with a ``score``."""

    score: float | None

    def __init__(
        self,
        segmentation: Any = None,
        bbox: Any = None,
        category_id: int = 0,
        category_name: str = "",
        image_id: int | None = None,
        score: float | None = None,
        iscrowd: int = 0,
    ) -> None:
        """A prediction from a segmentation or a box, with its score."""
        self.score = score
        super().__init__(segmentation=segmentation, bbox=bbox, category_id=category_id,
                         category_name=category_name, image_id=image_id, iscrowd=iscrowd)

    @classmethod
    def from_coco_segmentation(  # type: ignore[override]
        cls: type[_TPred], segmentation: Any, category_id: int, category_name: str,
        score: float, iscrowd: int = 0, image_id: int | None = None,
    ) -> _TPred:
        """A prediction from COCO polygons (or an RLE dict)."""
        return cls(segmentation=segmentation, category_id=category_id,
                   category_name=category_name, score=score, iscrowd=iscrowd, image_id=image_id)

    @classmethod
    def from_coco_bbox(  # type: ignore[override]
        cls: type[_TPred], bbox: Any, category_id: int, category_name: str, score: float,
        iscrowd: int = 0, image_id: int | None = None,
    ) -> _TPred:
        """A prediction from a COCO box ``[x, y, width, height]``."""
        return cls(bbox=bbox, category_id=category_id, category_name=category_name,
                   score=score, iscrowd=iscrowd, image_id=image_id)

    @classmethod
    def from_coco_annotation_dict(  # type: ignore[override]
        cls: type[_TPred], category_name: str, annotation_dict: Mapping[str, Any], score: float,
        image_id: int | None = None,
    ) -> _TPred:
        """A prediction from a COCO record (polygons, RLE or box; the record is not changed)."""
        obj = _from_record(cls, annotation_dict, category_name, image_id=image_id)
        obj.score = score
        return obj

    @property
    def json(self) -> dict[str, Any]:
        """The prediction as a COCO result dict (with score and category_name)."""
        out: dict[str, Any] = {
            "image_id": self.image_id,
            "bbox": self.bbox,
            "score": self.score,
            "category_id": self.category_id,
            "category_name": self.category_name,
            "segmentation": self.segmentation,
            "iscrowd": self.iscrowd,
            "area": self.area,
        }
        out.update(self._extra_fields())
        return out

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f",\n    score: {self.score}>"


# -- images ------------------------------------------------------------------------------


class CocoImage:
    """An image with its annotations and predictions (``sahi.utils.coco.CocoImage``).

    Image keys other than id, file_name, width and height (``license``, ``coco_url``,
    ...) are kept and written back.
    """

    _src: Store | None = None
    _pos: int = -1
    _orig: tuple[Any, ...] | None = None

    def __init__(self, file_name: str, height: int, width: int, id: int | None = None) -> None:
        """An image record; ``id`` may be left out when ids are assigned on export."""
        self.id = int(id) if id else id
        self.file_name = file_name
        self.height = int(height)
        self.width = int(width)
        self.annotations: list[CocoAnnotation] = []
        self.predictions: list[CocoPrediction] = []
        self._extra: dict[str, Any] = {}

    @classmethod
    def from_coco_image_dict(cls: type[_TImg], image_dict: Mapping[str, Any]) -> _TImg:
        """An image from a COCO image record (other keys kept; the record is not changed)."""
        for key in ("id", "file_name", "height", "width"):
            if key not in image_dict:
                raise InputError(None, "image", f"missing required key `{key}`")
        out = cls(id=image_dict["id"], file_name=image_dict["file_name"],
                  height=image_dict["height"], width=image_dict["width"])
        out._extra = {k: plain(v) for k, v in image_dict.items()
                      if k not in ("id", "file_name", "height", "width")}
        return out

    @classmethod
    def _from_store(cls: type[_TImg], store: Store, pos: int) -> _TImg:
        imgs = store.images
        obj = cls.__new__(cls)
        obj.id = None if store.id_missing[pos] else int(imgs.id[pos])
        obj.file_name = str(imgs.file_name[pos])
        obj.height = int(imgs.height[pos])
        obj.width = int(imgs.width[pos])
        obj.annotations = CocoAnnotation._from_store(store, int(store.offsets[pos]),
                                                     int(store.offsets[pos + 1]), obj.id)
        obj.predictions = []
        extra = imgs.extra[pos]
        obj._extra = plain(extra) if extra else {}
        obj._src = store
        obj._pos = pos
        obj._orig = (obj.id, obj.file_name, obj.height, obj.width, tuple(obj.annotations))
        return obj

    def _pristine(self, store: Store | None) -> bool:
        """True when this is an unchanged image of ``store`` (so its row can be used)."""
        if store is None or self._src is not store or self._orig is None:
            return False
        o = self._orig
        if (self.id, self.file_name, self.height, self.width) != o[:4]:
            return False
        anns, orig = self.annotations, o[4]
        if len(anns) != len(orig) or any(a is not b for a, b in zip(anns, orig, strict=True)):
            return False
        start = int(store.offsets[self._pos])
        cids = store.annotations.category_id[start : start + len(anns)].tolist()
        names = store.names[start : start + len(anns)].tolist()
        return all(a._category_id == c and a._category_name == nm
                   for a, c, nm in zip(anns, cids, names, strict=True))

    def add_annotation(self, annotation: CocoAnnotation) -> None:
        """Add an annotation to this image."""
        if not isinstance(annotation, CocoAnnotation):
            raise SahiTypeError("annotation", type(annotation).__name__,
                                "a CocoAnnotation instance")
        self.annotations.append(annotation)

    def add_prediction(self, prediction: CocoPrediction) -> None:
        """Add a prediction to this image."""
        if not isinstance(prediction, CocoPrediction):
            raise SahiTypeError("prediction", type(prediction).__name__,
                                "a CocoPrediction instance")
        self.predictions.append(prediction)

    def _record(self) -> dict[str, Any]:
        rec: dict[str, Any] = {"id": int(self.id) if self.id is not None else 0,
                               "file_name": str(self.file_name), "width": int(self.width),
                               "height": int(self.height)}
        rec.update(copy.deepcopy(self._extra))
        return rec

    @property
    def json(self) -> dict[str, Any]:
        """The image as a COCO record (with the other keys it was read with)."""
        out: dict[str, Any] = {"id": self.id, "file_name": self.file_name,
                               "height": self.height, "width": self.width}
        out.update(copy.deepcopy(self._extra))
        return out

    def __repr__(self) -> str:
        return (f"CocoImage<\n    id: {self.id},\n    file_name: {self.file_name},\n"
                f"    height: {self.height},\n    width: {self.width},\n"
                f"    annotations: List[CocoAnnotation],\n    predictions: List[CocoPrediction]>")


# -- the store: a loaded dataset as columns ----------------------------------------------


class Store:
    """Images (one row per position) and their annotations, grouped by position."""

    def __init__(self, images: Images, annotations: Annotations, counts: np.ndarray,
                 names: np.ndarray, id_missing: np.ndarray | None = None,
                 source: str | None = None) -> None:
        self.images = images
        self.annotations = annotations
        self.counts = np.asarray(counts, np.int64)
        self.offsets = _offsets(self.counts)
        self.names = names
        self.id_missing = (np.zeros(len(images), bool) if id_missing is None
                           else np.asarray(id_missing, bool))
        self.source = source
        self.cache: dict[int, CocoImage] = {}

    def __len__(self) -> int:
        return len(self.images)

    def image(self, pos: int) -> CocoImage:
        """The :class:`CocoImage` of position ``pos`` (made once, then the same object)."""
        obj = self.cache.get(pos)
        if obj is None:
            obj = self.cache[pos] = CocoImage._from_store(self, pos)
        return obj

    @cached_property
    def geometry(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per annotation row: kind, SAHI's area and the box (see :func:`table_geometry`)."""
        return table_geometry(self.annotations, self.source)

    def row_geometry(self, row: int) -> tuple[int, float, np.ndarray | None]:
        """(kind, area, box) of one row, without computing the whole column."""
        if "geometry" in self.__dict__:
            kind, area, box = self.geometry
        else:
            kind, area, box = table_geometry(self.annotations.take([row]), self.source)
            row = 0
        b = box[row]
        return int(kind[row]), float(area[row]), None if np.isnan(b[0]) else b.copy()

    def fork(self) -> Store:
        """The same (immutable) tables with a new, empty object cache."""
        return Store(self.images, self.annotations, self.counts, self.names, self.id_missing,
                      self.source)

    def __deepcopy__(self, memo: dict[int, Any]) -> Store:
        return self.fork()


class ImageList(MutableSequence[CocoImage]):
    """``Coco.images``: a list of :class:`CocoImage`, made lazily from a store.

    Items are store positions (ints) or :class:`CocoImage` objects. Reading an item
    makes its object (once); slicing gives another lazy list.
    """

    def __init__(self, store: Store | None, items: Iterable[int | CocoImage] = ()) -> None:
        self._store = store
        self._items: list[int | CocoImage] = list(items)

    def _get(self, item: int | CocoImage) -> CocoImage:
        if isinstance(item, CocoImage):
            return item
        if self._store is None:  # pragma: no cover - positions only exist with a store
            raise IndexError(f"image position {item} without a dataset")
        return self._store.image(item)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: SupportsIndex) -> CocoImage: ...

    @overload
    def __getitem__(self, i: slice) -> ImageList: ...

    def __getitem__(self, i: SupportsIndex | slice) -> CocoImage | ImageList:
        if isinstance(i, slice):
            return ImageList(self._store, self._items[i])
        return self._get(self._items[i])

    @staticmethod
    def _checked(value: Any) -> CocoImage:
        if not isinstance(value, CocoImage):
            raise SahiTypeError("image", type(value).__name__, "a CocoImage instance")
        return value

    @overload
    def __setitem__(self, i: SupportsIndex, value: CocoImage) -> None: ...

    @overload
    def __setitem__(self, i: slice, value: Iterable[CocoImage]) -> None: ...

    def __setitem__(self, i: SupportsIndex | slice, value: Any) -> None:
        if isinstance(i, slice):
            self._items[i] = [self._checked(v) for v in value]
        else:
            self._items[i] = self._checked(value)

    def __delitem__(self, i: SupportsIndex | slice) -> None:
        del self._items[i]

    def insert(self, index: int, value: CocoImage) -> None:
        """Insert an image before ``index``."""
        self._items.insert(index, self._checked(value))

    def extend(self, values: Iterable[CocoImage]) -> None:
        """Append images (positions of the same store stay lazy)."""
        if isinstance(values, ImageList) and values._store is self._store:
            self._items.extend(values._items)
        else:
            self._items.extend(self._checked(v) for v in values)

    def __iter__(self) -> Iterator[CocoImage]:
        for item in self._items:
            yield self._get(item)

    def __add__(self, other: Iterable[CocoImage]) -> ImageList:
        out = ImageList(self._store, self._items)
        out.extend(other)
        return out

    def copy(self) -> ImageList:
        """A shallow copy (the same image objects)."""
        return ImageList(self._store, self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ImageList) and other._store is self._store:
            return self._items == other._items
        if isinstance(other, (list, tuple, ImageList)):
            return len(self) == len(other) and all(
                a is b or a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> ImageList:
        store = copy.deepcopy(self._store, memo) if self._store is not None else None
        items: list[int | CocoImage] = []
        for it in self._items:
            if isinstance(it, CocoImage):
                items.append(copy.deepcopy(it, memo))
            elif self._store is not None and it in self._store.cache:
                items.append(copy.deepcopy(self._store.cache[it], memo))
            else:
                items.append(it)
        return ImageList(store, items)

    def __repr__(self) -> str:
        return f"<{len(self)} CocoImage objects (made when accessed)>"


# -- collecting a list of images into columns ----------------------------------------------


@dataclass
class View:
    """The images of a list as columns: one image row per item, annotations grouped."""

    images: Images
    id_missing: np.ndarray
    annotations: Annotations
    counts: np.ndarray
    names: np.ndarray
    store: Store | None
    gathered_rows: np.ndarray      # store rows of the gathered annotations
    object_annotations: list[CocoAnnotation]
    perm: np.ndarray               # output annotation i = concat(gathered, objects)[perm[i]]

    @cached_property
    def item_of_annotation(self) -> np.ndarray:
        """The item (image row) of each annotation."""
        return np.repeat(np.arange(len(self.counts)), self.counts)

    @cached_property
    def areas(self) -> np.ndarray:
        """SAHI's area of each annotation (see :attr:`CocoAnnotation.area`)."""
        parts = []
        if self.store is not None and len(self.gathered_rows):
            parts.append(self.store.geometry[1][self.gathered_rows])
        parts.append(np.array([a.area for a in self.object_annotations], np.float64))
        return np.concatenate(parts)[self.perm] if parts else np.zeros(0)

    @cached_property
    def category_ids(self) -> np.ndarray:
        """Category id of each annotation."""
        return self.annotations.category_id


def collect(seq: Iterable[CocoImage]) -> View:
    """Columns of a list of images: untouched store images gathered, the rest read."""
    if isinstance(seq, ImageList):
        store, items = seq._store, seq._items
    else:
        items = list(seq)
        store = next((it._src for it in items if isinstance(it, CocoImage) and it._src), None)
    n = len(items)
    src = np.full(n, -1, np.int64)
    objs: list[CocoImage] = []
    for i, it in enumerate(items):
        if isinstance(it, (int, np.integer)) and store is not None:
            cached = store.cache.get(int(it))
            if cached is None or cached._pristine(store):
                src[i] = int(it)
                continue
            objs.append(cached)
        elif isinstance(it, CocoImage):
            if it._pristine(store):
                src[i] = it._pos
                continue
            objs.append(it)
        else:
            raise SahiTypeError(f"images[{i}]", type(it).__name__, "a CocoImage instance")
    is_obj = src < 0
    gp = src[~is_obj]

    # gathered from the store
    if store is not None and len(gp):
        g_images = store.images.take(gp)
        g_missing = store.id_missing[gp]
        g_counts = store.counts[gp]
        g_rows = _ranges(store.offsets[gp], g_counts)
        g_anns = store.annotations.take(g_rows)
        g_names = store.names[g_rows]
    else:
        g_images, g_missing, g_counts = Images.empty(), np.zeros(0, bool), np.zeros(0, np.int64)
        g_rows, g_anns, g_names = np.zeros(0, np.int64), Annotations.empty(), object_array([])

    # read from objects
    img_recs = [im._record() for im in objs]
    o_missing = np.array([im.id is None for im in objs], bool)
    o_counts = np.array([len(im.annotations) for im in objs], np.int64)
    o_anns_objs = [a for im in objs for a in im.annotations]
    for a in o_anns_objs:
        if not isinstance(a, CocoAnnotation):
            raise SahiTypeError("annotation", type(a).__name__, "a CocoAnnotation instance")
    ann_recs = [a._record() for a in o_anns_objs]
    o_names = object_array([a.category_name for a in o_anns_objs])
    if objs:
        try:
            o_images, o_anns = tables_from_records(img_recs, ann_recs)
        except InputError as e:
            raise InputError(None, e.path, f"an image or annotation object: {e.message}") from None
    else:
        o_images, o_anns = Images.empty(), Annotations.empty()

    # merge in item order
    img_perm = np.empty(n, np.int64)
    img_perm[~is_obj] = np.arange(len(gp))
    img_perm[is_obj] = len(gp) + np.arange(len(objs))
    images = Images.concat([g_images, o_images]).take(img_perm)
    id_missing = np.concatenate([g_missing, o_missing])[img_perm]
    counts = np.zeros(n, np.int64)
    counts[~is_obj] = g_counts
    counts[is_obj] = o_counts
    block_start = np.zeros(n, np.int64)
    block_start[~is_obj] = np.cumsum(g_counts) - g_counts
    block_start[is_obj] = int(g_counts.sum()) + np.cumsum(o_counts) - o_counts
    perm = _ranges(block_start, counts)
    annotations = Annotations.concat([g_anns, o_anns]).take(perm)
    names = np.concatenate([g_names, o_names])[perm] if len(perm) else object_array([])
    return View(images, id_missing, annotations, counts, names, store, g_rows, o_anns_objs, perm)


def store_of_view(view: View, source: str | None = None,
                   annotations: Annotations | None = None, names: np.ndarray | None = None,
                   counts: np.ndarray | None = None, images: Images | None = None) -> Store:
    return Store(images if images is not None else view.images,
                  annotations if annotations is not None else view.annotations,
                  counts if counts is not None else view.counts,
                  names if names is not None else view.names, view.id_missing, source)


def positional_dataset(view: View, categories: Sequence[Mapping[str, Any]]) -> Dataset:
    """A dataset with image ids = item positions (unique even where ids repeat) and
    annotation ids = their row, so transforms can join and rows can be traced."""
    n = len(view.counts)
    images = view.images.replace(id=np.arange(n, dtype=np.int64))
    anns = view.annotations.replace(
        id=np.arange(len(view.annotations), dtype=np.int64),
        image_id=view.item_of_annotation.astype(np.int64))
    return Dataset(images, anns, Categories(categories))


def export_dataset(view: View, categories: Sequence[Mapping[str, Any]],
                    ignore_negative_samples: bool, image_id_setting: str,
                    extra: Mapping[str, Any] | None = None,
                    key_order: Sequence[str] | None = None) -> Dataset:
    """The dataset SAHI's ``create_coco_dict`` describes: images in list order (without
    negatives if asked), ids per ``image_id_setting``, annotation ids 1..M."""
    check_id_setting(image_id_setting)
    n = len(view.counts)
    keep = view.counts > 0 if ignore_negative_samples else np.ones(n, bool)
    rows = np.flatnonzero(keep)
    if image_id_setting == "auto":
        new_ids = np.arange(1, len(rows) + 1, dtype=np.int64)
    else:
        if view.id_missing[rows].any():
            first = int(rows[view.id_missing[rows]][0])
            raise SahiValueError(f"images[{first}].id", None,
                                 "an id on every image ('coco_image.id' should be set manually "
                                 "when image_id_setting == 'manual')")
        new_ids = view.images.id[rows]
    id_of_item = np.zeros(n, np.int64)
    id_of_item[rows] = new_ids
    item = view.item_of_annotation
    ann_keep = keep[item]
    anns = view.annotations.take(ann_keep)
    anns = anns.replace(id=np.arange(1, len(anns) + 1, dtype=np.int64),
                        image_id=id_of_item[item[ann_keep]])
    images = view.images.take(rows).replace(id=new_ids)
    return Dataset(images, anns, Categories([plain(dict(c)) for c in categories]), extra,
                   key_order)


def dataset_dict(ds: Dataset) -> dict[str, Any]:
    """The dataset as plain Python data, ids as they are (decoded with the GC paused:
    a big document is millions of lists, and the collector would scan them over and over)."""
    with gc_paused():
        return to_dict(ds, image_ids="keep", annotation_ids="keep")


def view_stats(view: View, categories: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """SAHI's ``Coco.stats`` dict, computed on columns."""
    counts = view.counts
    n_img = len(counts)
    n_ann = int(counts.sum())
    n_neg = int(np.count_nonzero(counts == 0))
    names = [c["name"] for c in categories]
    code: dict[Any, int] = {nm: i for i, nm in enumerate(dict.fromkeys(names))}
    ann_code = np.fromiter((code.setdefault(nm, len(code)) for nm in view.names.tolist()),
                           np.int64, n_ann)
    k = len(code)
    areas = view.areas
    item = view.item_of_annotation
    per_ann = np.bincount(ann_code, minlength=k)
    pairs = np.unique(item * max(k, 1) + ann_code) if n_ann else np.zeros(0, np.int64)
    per_img = np.bincount(pairs % max(k, 1), minlength=k)
    amin = np.full(k, np.inf)
    amax = np.zeros(k)
    if n_ann:
        np.minimum.at(amin, ann_code, areas)
        np.maximum.at(amax, ann_code, areas)
    keys = list(code)
    positive = n_img - n_neg
    return {
        "num_images": n_img,
        "num_annotations": n_ann,
        "num_categories": len(categories),
        "num_negative_images": n_neg,
        "num_images_per_category": {nm: int(per_img[i]) for i, nm in enumerate(keys)},
        "num_annotations_per_category": {nm: int(per_ann[i]) for i, nm in enumerate(keys)},
        "min_num_annotations_in_image": int(counts.min()) if n_img else float("inf"),
        "max_num_annotations_in_image": int(max(counts.max(), 0)) if n_img else 0,
        "avg_num_annotations_in_image": n_ann / positive if positive > 0 else 0.0,
        "min_annotation_area": float(min(areas.min(), 1e10)) if n_ann else 1e10,
        "max_annotation_area": float(max(areas.max(), 0.0)) if n_ann else 0.0,
        "avg_annotation_area": float(areas.sum()) / n_ann if positive > 0 and n_ann else 0.0,
        "min_annotation_area_per_category": {nm: float(amin[i]) for i, nm in enumerate(keys)},
        "max_annotation_area_per_category": {nm: float(amax[i]) for i, nm in enumerate(keys)},
    }


# -- loading -----------------------------------------------------------------------------


def _remap(ids: np.ndarray, mapping: Mapping[Any, Any] | None) -> np.ndarray:
    if not mapping:
        return ids
    keys = np.array([int(k) for k in mapping], np.int64)
    vals = np.array([int(v) for v in mapping.values()], np.int64)
    idx = lookup(keys, ids)
    return np.where(idx >= 0, vals[np.maximum(idx, 0)], ids)


def load_store(ds: Dataset, remapping_dict: Mapping[Any, Any] | None
                ) -> tuple[Store, list[CocoCategory]]:
    """The store and categories SAHI's ``from_coco_dict_or_path`` would build from ``ds``."""
    file = ds.source
    cats: list[CocoCategory] = []
    for rec in ds.categories.records:
        rec = plain(dict(rec))
        if remapping_dict is not None:
            rec["id"] = remapping_dict.get(rec["id"], rec["id"])
        cats.append(CocoCategory.from_coco_category(rec))
    mapping = {c.id: c.name for c in cats}

    images, anns = ds.images, ds.annotations
    # duplicate image ids: the first is kept (SAHI prints and skips the others)
    ids = images.id
    _, first = np.unique(ids, return_index=True)
    keep_img = np.sort(first)
    if len(keep_img) < len(ids):
        log.warning("%s: %d image(s) with a duplicate id skipped (the first of each id is kept)",
                    file or "dataset", len(ids) - len(keep_img))
    pos = lookup(ids[keep_img], anns.image_id)
    dangling = pos < 0
    if dangling.any():
        log.warning("%s: %d annotation(s) name no image and are left out",
                    file or "dataset", int(dangling.sum()))
    cat_ids = _remap(anns.category_id, remapping_dict)
    m_keys = np.array(list(mapping), np.int64)
    m_names = object_array(list(mapping.values()))
    cat_idx = lookup(m_keys, cat_ids)
    bad = np.flatnonzero((cat_idx < 0) & ~dangling)
    if len(bad):
        r = int(bad[0])
        raise InputError(file, f"annotations[{r}].category_id",
                         f"category id {int(cat_ids[r])} is not in categories")
    no_box = np.flatnonzero(np.isnan(anns.bbox[:, 0]) & ~dangling)
    for r in no_box.tolist():
        seg = anns.segmentation[r]
        if seg is None or (isinstance(seg, msgspec.Raw) and bytes(seg).strip() in (b"[]", b"")):
            raise InputError(file, f"annotations[{r}]", "neither a bbox nor a segmentation")
    rows = np.flatnonzero(~dangling)
    order = rows[np.argsort(pos[rows], kind="stable")]
    table = anns.take(order)
    if remapping_dict:
        table = table.replace(category_id=cat_ids[order])
    counts = np.bincount(pos[rows], minlength=len(keep_img)).astype(np.int64)
    names = m_names[cat_idx[order]] if len(order) else object_array([])
    store = Store(images.take(keep_img), table, counts, names, source=file)
    return store, cats


def as_dataset(source: Any, what: str) -> Dataset:
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, os.PathLike, Mapping)):
        return read_coco(source)
    raise SahiTypeError(what, type(source).__name__, "a COCO dict or a path to a COCO file")


# -- the dataset -------------------------------------------------------------------------


# -- slicing record objects --------------------------------------------------------------


def xywh_windows(windows_xyxy: np.ndarray) -> np.ndarray:
    w = np.asarray(windows_xyxy, np.int64).reshape(-1, 4)
    return np.stack([w[:, 0], w[:, 1], w[:, 2] - w[:, 0], w[:, 3] - w[:, 1]], axis=1)


def slice_annotation_objects(annotations: Sequence[CocoAnnotation],
                             windows_xyxy: Sequence[Sequence[int]] | np.ndarray,
                             min_area_ratio: float) -> list[list[CocoAnnotation]]:
    """For each window, the annotations cut to it (in the window's frame), in input order.

    An annotation goes into a window when the part inside is at least
    ``min_area_ratio`` of it (polygon area, RLE pixels, or box area).
    """
    wins = np.asarray(windows_xyxy, np.int64).reshape(-1, 4)
    out: list[list[CocoAnnotation]] = [[] for _ in range(len(wins))]
    if not len(annotations) or not len(wins):
        return out
    rows = [a._columns_row() for a in annotations]
    cols = {
        "bbox": np.array([np.asarray(r["bbox"], np.float64) for r in rows]).reshape(-1, 4),
        "area": np.array([np.nan if r["area"] is None else r["area"] for r in rows],
                         np.float64),
        "segmentation": object_array([r["segmentation"] for r in rows]),
        "keypoints": object_array([r["keypoints"] for r in rows]),
        "num_keypoints": np.array([r["num_keypoints"] for r in rows], np.int64),
    }
    ta = slice_annotations(cols, xywh_windows(wins), float(min_area_ratio))
    for j in range(len(ta)):
        src = annotations[int(ta.source[j])]
        seg = ta.segmentation[j]
        seg = segmentation_value(seg) if isinstance(seg, msgspec.Raw) else seg
        box = ta.bbox[j]
        area = float(ta.area[j])
        fields = src._carry()
        if ta.keypoints[j] is not None:
            fields["keypoints"] = ta.keypoints[j]
        if ta.num_keypoints[j] >= 0:
            fields["num_keypoints"] = int(ta.num_keypoints[j])
        out[int(ta.tile[j])].append(CocoAnnotation._make(
            src.category_id, src.category_name, seg, None if np.isnan(box[0]) else box,
            src._iscrowd, None if np.isnan(area) else area, fields))
    return out
