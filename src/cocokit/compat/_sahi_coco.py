"""``sahi.utils.coco`` on cocokit's columns: the objects, the ``Coco`` dataset, the dict tools.

How it is built (see ``docs/sahi-migration.md`` for what differs from SAHI):

* A loaded dataset lives in a :class:`_Store`: cocokit's numpy tables with the images in
  list order and their annotations grouped by image (``offsets``). Loading is
  :func:`cocokit.load` plus a few vectorized steps (duplicate image ids, category
  remapping, grouping): no Python object per annotation, no shapely object ever kept.
* ``Coco.images`` is an :class:`_ImageList`: a list of store positions and, for images
  added by hand, :class:`CocoImage` objects. A position becomes a :class:`CocoImage`
  (with :class:`CocoAnnotation` objects that read their store row) only when it is
  accessed, and then always the same object, so changes made to it are kept.
* Whole-dataset work (``json``, ``stats``, filters, category updates, export) collects
  the list into columns (:func:`_collect`): untouched positions are gathered from the
  store in one ``take``; only images someone changed are read from their objects.
"""

from __future__ import annotations

import copy
import logging
import numbers
import os
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, MutableSequence, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, SupportsIndex, TypeVar, overload

import msgspec
import numpy as np

from ..clipping import polygon_areas, rle_area
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
from ..geometry import Polygons, parse_polygons, polygon_bboxes
from ..io.coco import read_coco, tables_from_records, to_dict, write_coco

__all__ = [
    "Coco",
    "CocoAnnotation",
    "CocoCategory",
    "CocoImage",
    "CocoPrediction",
    "DatasetClassCounts",
    "SahiTypeError",
    "SahiValueError",
    "add_bbox_and_area_to_coco",
    "count_images_with_category",
    "create_coco_dict",
    "create_coco_prediction_array",
    "get_imageid2annotationlist_mapping",
    "merge",
    "merge_from_file",
    "merge_from_list",
    "remove_invalid_coco_results",
    "update_categories",
    "update_categories_from_file",
]

log = logging.getLogger("cocokit.compat.sahi")

_TAnn = TypeVar("_TAnn", bound="CocoAnnotation")
_TPred = TypeVar("_TPred", bound="CocoPrediction")
_TImg = TypeVar("_TImg", bound="CocoImage")
_TCat = TypeVar("_TCat", bound="CocoCategory")
_TCoco = TypeVar("_TCoco", bound="Coco")

ImageIdSetting = Literal["auto", "manual"]


# -- errors ------------------------------------------------------------------------------


class SahiValueError(OptionError, ValueError):
    """A bad argument where SAHI raises ``ValueError`` (so ``except ValueError`` still works)."""


class SahiTypeError(OptionError, TypeError):
    """A wrong type where SAHI raises ``TypeError`` (so ``except TypeError`` still works)."""


def _check_id_setting(value: Any) -> None:
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


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _num(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _segmentation_value(seg: Any) -> Any:
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
    if not seg:
        return []
    if isinstance(seg[0], numbers.Number):  # one flat ring
        return [[float(v) for v in seg]]
    rings: list[list[float]] = []
    for ring in seg:
        arr = np.asarray(ring, np.float64).ravel()
        rings.append(arr.tolist())
    return rings


def _box_value(bbox: Any) -> np.ndarray:
    arr = np.asarray(bbox, np.float64).ravel()
    if arr.shape != (4,):
        raise SahiValueError("bbox", bbox, "4 numbers [x, y, width, height]")
    return arr


def _rle_bbox(rle: Mapping[str, Any]) -> np.ndarray:
    """The xywh box of an RLE mask (``counts`` a list, str or bytes)."""
    from pycocotools import mask as mask_utils

    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        enc = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        enc = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str)
               else counts}
    return np.asarray(mask_utils.toBbox(enc), np.float64)


def _geometry_of(seg: Any, box: np.ndarray | None) -> tuple[int, float, np.ndarray | None]:
    """(kind, area, box) of one segmentation value: kind 0 box, 1 polygon, 2 RLE.

    The area is SAHI's: geometric polygon area (parts unioned, repaired when invalid),
    RLE pixel count, or ``w * h``; the box is the polygon's tight box, the RLE's box, or
    ``box``.
    """
    if isinstance(seg, Mapping):
        try:
            return 2, rle_area(dict(seg)), _rle_bbox(seg)
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


def _table_geometry(anns: Annotations, file: str | None = None
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
                box[i] = _rle_bbox(rle)
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
    _src: _Store | None = None
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
        seg = _segmentation_value(segmentation)
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
    def _from_store(cls: type[_TAnn], store: _Store, start: int, stop: int,
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
            return _segmentation_value(self._src.annotations.segmentation[self._row])
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
        if not _is_int(i):
            raise SahiTypeError("category_id", i, "an integer (category_id must be an integer)")
        self._category_id = int(i)

    @property
    def image_id(self) -> int | None:
        """The image id (for annotations of a loaded dataset: their image's id)."""
        return self._image_id

    @image_id.setter
    def image_id(self, i: int) -> None:
        if not _is_int(i):
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
        from ._sahi_slicing import slice_annotation_objects

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
    seg = _segmentation_value(rec.get("segmentation"))
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

    _src: _Store | None = None
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
    def _from_store(cls: type[_TImg], store: _Store, pos: int) -> _TImg:
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

    def _pristine(self, store: _Store | None) -> bool:
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


class _Store:
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
        """Per annotation row: kind, SAHI's area and the box (see :func:`_table_geometry`)."""
        return _table_geometry(self.annotations, self.source)

    def row_geometry(self, row: int) -> tuple[int, float, np.ndarray | None]:
        """(kind, area, box) of one row, without computing the whole column."""
        if "geometry" in self.__dict__:
            kind, area, box = self.geometry
        else:
            kind, area, box = _table_geometry(self.annotations.take([row]), self.source)
            row = 0
        b = box[row]
        return int(kind[row]), float(area[row]), None if np.isnan(b[0]) else b.copy()

    def fork(self) -> _Store:
        """The same (immutable) tables with a new, empty object cache."""
        return _Store(self.images, self.annotations, self.counts, self.names, self.id_missing,
                      self.source)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Store:
        return self.fork()


class _ImageList(MutableSequence[CocoImage]):
    """``Coco.images``: a list of :class:`CocoImage`, made lazily from a store.

    Items are store positions (ints) or :class:`CocoImage` objects. Reading an item
    makes its object (once); slicing gives another lazy list.
    """

    def __init__(self, store: _Store | None, items: Iterable[int | CocoImage] = ()) -> None:
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
    def __getitem__(self, i: slice) -> _ImageList: ...

    def __getitem__(self, i: SupportsIndex | slice) -> CocoImage | _ImageList:
        if isinstance(i, slice):
            return _ImageList(self._store, self._items[i])
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
        if isinstance(values, _ImageList) and values._store is self._store:
            self._items.extend(values._items)
        else:
            self._items.extend(self._checked(v) for v in values)

    def __iter__(self) -> Iterator[CocoImage]:
        for item in self._items:
            yield self._get(item)

    def __add__(self, other: Iterable[CocoImage]) -> _ImageList:
        out = _ImageList(self._store, self._items)
        out.extend(other)
        return out

    def copy(self) -> _ImageList:
        """A shallow copy (the same image objects)."""
        return _ImageList(self._store, self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, _ImageList) and other._store is self._store:
            return self._items == other._items
        if isinstance(other, (list, tuple, _ImageList)):
            return len(self) == len(other) and all(
                a is b or a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __deepcopy__(self, memo: dict[int, Any]) -> _ImageList:
        store = copy.deepcopy(self._store, memo) if self._store is not None else None
        items: list[int | CocoImage] = []
        for it in self._items:
            if isinstance(it, CocoImage):
                items.append(copy.deepcopy(it, memo))
            elif self._store is not None and it in self._store.cache:
                items.append(copy.deepcopy(self._store.cache[it], memo))
            else:
                items.append(it)
        return _ImageList(store, items)

    def __repr__(self) -> str:
        return f"<{len(self)} CocoImage objects (made when accessed)>"


# -- collecting a list of images into columns ----------------------------------------------


@dataclass
class _View:
    """The images of a list as columns: one image row per item, annotations grouped."""

    images: Images
    id_missing: np.ndarray
    annotations: Annotations
    counts: np.ndarray
    names: np.ndarray
    store: _Store | None
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


def _collect(seq: Iterable[CocoImage]) -> _View:
    """Columns of a list of images: untouched store images gathered, the rest read."""
    if isinstance(seq, _ImageList):
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
    return _View(images, id_missing, annotations, counts, names, store, g_rows, o_anns_objs, perm)


def _store_of_view(view: _View, source: str | None = None,
                   annotations: Annotations | None = None, names: np.ndarray | None = None,
                   counts: np.ndarray | None = None, images: Images | None = None) -> _Store:
    return _Store(images if images is not None else view.images,
                  annotations if annotations is not None else view.annotations,
                  counts if counts is not None else view.counts,
                  names if names is not None else view.names, view.id_missing, source)


def _positional_dataset(view: _View, categories: Sequence[Mapping[str, Any]]) -> Dataset:
    """A dataset with image ids = item positions (unique even where ids repeat) and
    annotation ids = their row, so transforms can join and rows can be traced."""
    n = len(view.counts)
    images = view.images.replace(id=np.arange(n, dtype=np.int64))
    anns = view.annotations.replace(
        id=np.arange(len(view.annotations), dtype=np.int64),
        image_id=view.item_of_annotation.astype(np.int64))
    return Dataset(images, anns, Categories(categories))


def _export_dataset(view: _View, categories: Sequence[Mapping[str, Any]],
                    ignore_negative_samples: bool, image_id_setting: str,
                    extra: Mapping[str, Any] | None = None,
                    key_order: Sequence[str] | None = None) -> Dataset:
    """The dataset SAHI's ``create_coco_dict`` describes: images in list order (without
    negatives if asked), ids per ``image_id_setting``, annotation ids 1..M."""
    _check_id_setting(image_id_setting)
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


def _to_dict(ds: Dataset) -> dict[str, Any]:
    """The dataset as plain Python data, ids as they are (decoded with the GC paused:
    a big document is millions of lists, and the collector would scan them over and over)."""
    with gc_paused():
        return to_dict(ds, image_ids="keep", annotation_ids="keep")


def _stats(view: _View, categories: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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


def _load_store(ds: Dataset, remapping_dict: Mapping[Any, Any] | None
                ) -> tuple[_Store, list[CocoCategory]]:
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
    store = _Store(images.take(keep_img), table, counts, names, source=file)
    return store, cats


def _as_dataset(source: Any, what: str) -> Dataset:
    if isinstance(source, Dataset):
        return source
    if isinstance(source, (str, os.PathLike, Mapping)):
        return read_coco(source)
    raise SahiTypeError(what, type(source).__name__, "a COCO dict or a path to a COCO file")


# -- the dataset -------------------------------------------------------------------------


class Coco:
    """A COCO dataset (``sahi.utils.coco.Coco``) on cocokit's columns.

    ``images`` is a list of :class:`CocoImage` that is made lazily: loading never builds
    one object per annotation, and whole-dataset operations work on columns. Derived
    datasets (splits, subsamples, filters) share the loaded columns.
    """

    def __init__(
        self,
        name: str | None = None,
        image_dir: str | None = None,
        remapping_dict: dict[int, int] | None = None,
        ignore_negative_samples: bool = False,
        clip_bboxes_to_img_dims: bool = False,
        image_id_setting: ImageIdSetting = "auto",
    ) -> None:
        """An empty dataset with SAHI's settings (see SAHI's documentation for each)."""
        _check_id_setting(image_id_setting)
        self.name = name
        self.image_dir = image_dir
        self.remapping_dict = remapping_dict
        self.ignore_negative_samples = ignore_negative_samples
        self.categories: list[CocoCategory] = []
        self._images = _ImageList(None)
        self._stats: dict[str, Any] | None = None
        self.clip_bboxes_to_img_dims = clip_bboxes_to_img_dims
        self.image_id_setting = image_id_setting
        self._extra: dict[str, Any] = {}
        self._key_order: tuple[str, ...] = ()

    # -- the image list ------------------------------------------------------------

    @property
    def images(self) -> _ImageList:
        """The images, a list of :class:`CocoImage` (made when accessed)."""
        return self._images

    @images.setter
    def images(self, value: Iterable[CocoImage]) -> None:
        if isinstance(value, _ImageList):
            self._images = _ImageList(value._store, value._items)
        else:
            items = list(value)
            store = next((it._src for it in items if isinstance(it, CocoImage) and it._src),
                         None)
            self._images = _ImageList(store, [_ImageList._checked(v) for v in items])

    def _derived(self, items: Iterable[int | CocoImage], name: str | None = None,
                 store: _Store | None = None) -> Coco:
        """A dataset with the same settings and categories over some of these images."""
        out = Coco(name=self.name if name is None else name, image_dir=self.image_dir,
                   remapping_dict=self.remapping_dict,
                   ignore_negative_samples=self.ignore_negative_samples,
                   clip_bboxes_to_img_dims=self.clip_bboxes_to_img_dims,
                   image_id_setting=self.image_id_setting)
        out.categories = copy.deepcopy(self.categories)
        out._images = _ImageList(self._images._store if store is None else store, items)
        out._extra = copy.deepcopy(self._extra)
        out._key_order = self._key_order
        return out

    def _view(self) -> _View:
        return _collect(self._images)

    def _replace_store(self, store: _Store) -> None:
        self._images = _ImageList(store, range(len(store)))
        self._stats = None

    # -- building ------------------------------------------------------------------

    def add_categories_from_coco_category_list(self, coco_category_list: Iterable[Mapping[str, Any]]
                                               ) -> None:
        """Add categories from COCO records (ids remapped by ``remapping_dict``; the records
        are not changed)."""
        for rec in coco_category_list:
            rec = dict(rec)
            if self.remapping_dict is not None:
                rec["id"] = self.remapping_dict.get(rec["id"], rec["id"])
            self.add_category(CocoCategory.from_coco_category(rec))

    def add_category(self, category: CocoCategory) -> None:
        """Add a category."""
        if not isinstance(category, CocoCategory):
            raise SahiTypeError("category", type(category).__name__, "a CocoCategory instance")
        self.categories.append(category)

    def add_image(self, image: CocoImage) -> None:
        """Add an image (with ``image_id_setting='manual'`` it must have an id)."""
        if not isinstance(image, CocoImage):
            raise SahiTypeError("image", type(image).__name__, "a CocoImage instance")
        if self.image_id_setting == "manual" and image.id is None:
            raise SahiValueError("image.id", None, "an image id (image id should be manually "
                                 "set for image_id_setting='manual')")
        self._images.append(image)

    @classmethod
    def from_coco_dict_or_path(
        cls: type[_TCoco],
        coco_dict_or_path: dict[str, Any] | str | os.PathLike[str] | Dataset,
        image_dir: str | None = None,
        remapping_dict: dict[int, int] | None = None,
        ignore_negative_samples: bool = False,
        clip_bboxes_to_img_dims: bool = False,
        use_threads: bool = False,
        num_threads: int = 10,
    ) -> _TCoco:
        """A dataset from a COCO dict, a COCO file path (or a cocokit ``Dataset``).

        As in SAHI: images in file order, a repeated image id keeps its first image,
        annotations that name no image are left out, ``remapping_dict`` maps category
        ids, ``clip_bboxes_to_img_dims`` clips to the images. Unlike SAHI the dict is not
        changed, RLE, ``iscrowd``, float coordinates and unknown keys are kept, and an
        annotation of an undeclared category raises :class:`~cocokit.errors.InputError`.
        ``use_threads`` and ``num_threads`` are accepted and not needed.
        """
        if not isinstance(coco_dict_or_path, (str, os.PathLike, Mapping, Dataset)):
            raise SahiTypeError("coco_dict_or_path", type(coco_dict_or_path).__name__,
                                "a dict or str (coco_dict_or_path should be a dict or str)")
        ds = _as_dataset(coco_dict_or_path, "coco_dict_or_path")
        coco = cls(image_dir=image_dir, remapping_dict=remapping_dict,
                   ignore_negative_samples=ignore_negative_samples,
                   clip_bboxes_to_img_dims=clip_bboxes_to_img_dims)
        store, cats = _load_store(ds, remapping_dict)
        coco.categories = cats
        coco._replace_store(store)
        coco._extra = {k: plain(v) for k, v in ds.extra.items()}
        coco._key_order = ds.key_order
        if clip_bboxes_to_img_dims:
            coco = coco.get_coco_with_clipped_bboxes()  # type: ignore[assignment]
        return coco

    # -- views ---------------------------------------------------------------------

    @property
    def json_categories(self) -> list[dict[str, Any]]:
        """The categories as COCO records."""
        return [c.json for c in self.categories]

    @property
    def category_mapping(self) -> dict[int, str | None]:
        """Category id -> name."""
        return {c.id: c.name for c in self.categories}

    def to_dataset(self) -> Dataset:
        """This dataset as a cocokit :class:`~cocokit.dataset.Dataset` (what :attr:`json`
        holds: ids per ``image_id_setting``, annotation ids 1..M)."""
        return _export_dataset(self._view(), self.json_categories, self.ignore_negative_samples,
                               self.image_id_setting, self._extra, self._key_order or None)

    @property
    def json(self) -> dict[str, Any]:
        """The COCO dict (``create_coco_dict`` of the images and categories).

        Top-level keys such as ``info`` and ``licenses`` are kept; annotations that were
        loaded are written as they were read.
        """
        return _to_dict(self.to_dataset())

    @property
    def prediction_array(self) -> list[dict[str, Any]]:
        """The predictions of all images as a COCO results list."""
        return create_coco_prediction_array(self._images, self.ignore_negative_samples,
                                            self.image_id_setting)

    @property
    def stats(self) -> dict[str, Any]:
        """Counts and area statistics (SAHI's keys; computed once, then cached)."""
        if not self._stats:
            self.calculate_stats()
        return self._stats if self._stats is not None else {}

    def calculate_stats(self) -> None:
        """Compute :attr:`stats` (on columns)."""
        self._stats = _stats(self._view(), self.json_categories)

    # -- whole-dataset operations --------------------------------------------------

    def update_categories(self, desired_name2id: Mapping[str, int],
                          update_image_filenames: bool = False) -> None:
        """Remap categories by name to ``desired_name2id``, in place.

        Annotations of categories not in the mapping are dropped; the categories become
        exactly the mapping's, in its order (existing ones keep their other keys).
        ``update_image_filenames`` makes file names absolute with ``image_dir``.
        """
        if update_image_filenames and not self.image_dir:
            raise SahiValueError("image_dir", self.image_dir,
                                 "an image folder to make file names absolute (image "
                                 "directory not set)")
        view = self._view()
        ds = _positional_dataset(view, self.json_categories)
        out = _apply_category_mapping(ds, desired_name2id)
        kept = out.annotations.id
        cmap = dict(zip(out.categories.id.tolist(), out.categories.name.tolist(), strict=True))
        names = object_array([cmap.get(c) for c in out.annotations.category_id.tolist()])
        anns = out.annotations.replace(id=view.annotations.id[kept],
                                       image_id=view.annotations.image_id[kept])
        counts = np.bincount(out.annotations.image_id, minlength=len(view.counts))
        images = view.images
        if update_image_filenames and self.image_dir:
            base = Path(os.path.abspath(self.image_dir))
            files = [f if os.path.abspath(f) == f else str(base / f)
                     for f in map(str, images.file_name.tolist())]
            images = images.replace(file_name=object_array(files))
        self.categories = [CocoCategory.from_coco_category(c) for c in out.categories]
        source = self._images._store.source if self._images._store is not None else None
        self._replace_store(_store_of_view(view, source, annotations=anns, names=names,
                                           counts=counts.astype(np.int64), images=images))

    def merge(self, coco: Coco, desired_name2id: Mapping[str, int] | None = None,
              verbose: int = 1) -> None:
        """Add the images of ``coco`` to this dataset, categories unified by name, in place.

        Both need ``image_dir`` (file names become absolute). Without
        ``desired_name2id`` the categories are the union of both, numbered from 0.
        ``coco`` is not changed (SAHI changes it too).
        """
        if self.image_dir is None or coco.image_dir is None:
            raise SahiValueError("image_dir", None, "image_dir on both datasets "
                                 "(image_dir should be provided for merging)")
        if desired_name2id is None:
            if verbose:
                log.info("'desired_name2id' is not specified, combining all categories.")
            desired_name2id = {}
            for c in [*self.categories, *coco.categories]:
                if c.name not in desired_name2id:
                    desired_name2id[c.name] = len(desired_name2id)  # type: ignore[index]
        other = coco._derived(coco._images._items, store=coco._images._store)
        self.update_categories(desired_name2id, update_image_filenames=True)
        other.update_categories(desired_name2id, update_image_filenames=True)
        v1, v2 = self._view(), other._view()
        store = _Store(
            Images.concat([v1.images, v2.images]),
            Annotations.concat([v1.annotations, v2.annotations]),
            np.concatenate([v1.counts, v2.counts]),
            np.concatenate([v1.names, v2.names]),
            np.concatenate([v1.id_missing, v2.id_missing]),
        )
        self._replace_store(store)
        if verbose:
            log.info("Categories are formed as: %s", self.json_categories)

    def split_coco_as_train_val(self, train_split_rate: float = 0.9,
                                numpy_seed: int = 0) -> dict[str, Coco]:
        """Split the images into ``{"train_coco": ..., "val_coco": ...}``.

        The same images go to each side as in SAHI (the same shuffle, from a private
        ``random.Random(numpy_seed)``: the global random state is not touched). The
        results are independent copies, with this dataset's settings.
        """
        n = len(self._images)
        order = list(range(n))
        random.Random(numpy_seed).shuffle(order)
        num_train = int(n * train_split_rate)
        detached = copy.deepcopy(self._images)
        items = detached._items
        train = self._derived([items[i] for i in order[:num_train]],
                              name=self.name if self.name else "split_train",
                              store=detached._store)
        val = self._derived([items[i] for i in order[num_train:]],
                            name=self.name if self.name else "split_val",
                            store=detached._store)
        return {"train_coco": train, "val_coco": val}

    def export_as_yolo(self, output_dir: str | os.PathLike[str], train_split_rate: float = 1.0,
                       numpy_seed: int = 0, mp: bool = False,
                       disable_symlink: bool = False) -> None:
        """Export as YOLO (``train/``, ``val/``, ``data.yml``); see
        :func:`cocokit.compat.sahi.export_coco_as_yolo` for what differs from SAHI."""
        from ._sahi_yolo import export_coco_object_as_yolo

        export_coco_object_as_yolo(self, output_dir, train_split_rate, numpy_seed,
                                   disable_symlink)

    def _category_masks(self, view: _View, category_id: int | None) -> tuple[np.ndarray,
                                                                             np.ndarray]:
        n = len(view.counts)
        has = np.zeros(n, bool)
        if category_id is not None and len(view.annotations):
            hit = view.annotations.category_id == int(category_id)
            has[view.item_of_annotation[hit]] = True
        negative = view.counts == 0
        return has, negative

    def get_subsampled_coco(self, subsample_ratio: int = 2,
                            category_id: int | None = None) -> Coco:
        """Every ``subsample_ratio``-th image (with ``category_id``: of the images that hold
        it, the others all kept first; ``-1`` subsamples the negative images)."""
        if not _is_int(subsample_ratio) or subsample_ratio < 1:
            raise SahiValueError("subsample_ratio", subsample_ratio, "a positive integer")
        items = self._images._items
        if category_id is None:
            chosen = list(range(0, len(items), subsample_ratio))
        else:
            has, negative = self._category_masks(self._view(), category_id)
            selected = has | ((category_id == -1) & negative)
            chosen = np.flatnonzero(~selected).tolist()
            chosen += np.flatnonzero(selected)[::subsample_ratio].tolist()
        return self._derived([items[i] for i in chosen])

    def get_upsampled_coco(self, upsample_ratio: int = 2,
                           category_id: int | None = None) -> Coco:
        """Each image ``upsample_ratio`` times (with ``category_id``: only the images that
        hold it are repeated; ``-1`` repeats the negative images)."""
        if not _is_int(upsample_ratio) or upsample_ratio < 0:
            raise SahiValueError("upsample_ratio", upsample_ratio, "a non-negative integer")
        items = self._images._items
        n = len(items)
        if category_id is None:
            chosen = np.tile(np.arange(n), upsample_ratio)
        else:
            has, negative = self._category_masks(self._view(), category_id)
            again = np.flatnonzero(has | ((category_id == -1) & negative))
            passes = [np.arange(n)] * min(upsample_ratio, 1) + [again] * max(upsample_ratio - 1, 0)
            chosen = np.concatenate([np.zeros(0, np.int64), *passes]).astype(np.int64)
        return self._derived([items[i] for i in chosen.tolist()])

    def get_area_filtered_coco(self, min: float = 0, max_val: float = float("inf"),
                               intervals_per_category: Mapping[str, Mapping[str, float]]
                               | None = None) -> Coco:
        """The images whose every annotation has an area in ``[min, max_val]`` (and in the
        interval of its category, by name)."""
        view = self._view()
        area = view.areas
        ok = (area >= min) & (area <= max_val)
        for name, iv in (intervals_per_category or {}).items():
            mine = view.names == name
            ok &= ~mine | ((area >= iv["min"]) & (area <= iv["max"]))
        bad = np.bincount(view.item_of_annotation[~ok], minlength=len(view.counts))
        items = self._images._items
        return self._derived([items[i] for i in np.flatnonzero(bad == 0).tolist()])

    def get_coco_with_clipped_bboxes(self) -> Coco:
        """Annotations clipped to their image: boxes, and polygons (kept, with float
        coordinates); annotations with nothing inside the image are dropped."""
        from ..transforms import clip

        view = self._view()
        ds = _positional_dataset(view, self.json_categories)
        out = clip(ds).dataset
        kept = out.annotations.id
        anns = out.annotations.replace(id=view.annotations.id[kept],
                                       image_id=view.annotations.image_id[kept])
        counts = np.bincount(out.annotations.image_id, minlength=len(view.counts))
        coco = self._derived([])
        coco._replace_store(_store_of_view(view, annotations=anns, names=view.names[kept],
                                           counts=counts.astype(np.int64)))
        return coco

    def __repr__(self) -> str:
        return (f"<cocokit.compat.sahi.Coco {self.name or ''}: {len(self._images)} images, "
                f"{len(self.categories)} categories>")


# -- module functions on dicts and files -------------------------------------------------


def create_coco_dict(images: Iterable[CocoImage], categories: Sequence[Mapping[str, Any]],
                     ignore_negative_samples: bool = False,
                     image_id_setting: str = "auto") -> dict[str, Any]:
    """A COCO dict from images (with their annotations) and category records.

    ``image_id_setting``: ``"auto"`` numbers the images 1..N, ``"manual"`` keeps each
    image's id. Annotations are numbered 1..M in image order.
    """
    _check_id_setting(image_id_setting)
    return _to_dict(_export_dataset(_collect(images), categories, ignore_negative_samples,
                                    image_id_setting))


def create_coco_prediction_array(images: Iterable[CocoImage],
                                 ignore_negative_samples: bool = False,
                                 image_id_setting: str = "auto") -> list[dict[str, Any]]:
    """The predictions of the images as a COCO results list (ids as in :func:`create_coco_dict`)."""
    _check_id_setting(image_id_setting)
    if isinstance(images, _ImageList):
        store = images._store
        seq: list[CocoImage | None] = [
            it if isinstance(it, CocoImage) else (store.cache.get(it) if store else None)
            for it in images._items]
        ids = [it.id if isinstance(it, CocoImage) else
               (None if store is None or store.id_missing[it] else int(store.images.id[it]))
               for it in images._items]
    else:
        seq = [_ImageList._checked(im) for im in images]
        ids = [im.id for im in seq if im is not None]
    out: list[dict[str, Any]] = []
    image_index = 1
    for im, iid in zip(seq, ids, strict=True):
        preds = im.predictions if im is not None else []
        if ignore_negative_samples and not preds:
            continue
        if image_id_setting == "auto":
            image_id = image_index
            image_index += 1
        else:
            if iid is None:
                raise SahiValueError("coco_image.id", None, "an id on every image "
                                     "('coco_image.id' should be set manually when "
                                     "image_id_setting == 'manual')")
            image_id = iid
        for p in preds:
            rec = {"id": len(out) + 1, "image_id": image_id, "bbox": p.bbox, "score": p.score,
                   "category_id": p.category_id, "segmentation": p.segmentation,
                   "iscrowd": p.iscrowd, "area": p.area}
            rec.update(p._extra_fields())
            out.append(rec)
    return out


def _apply_category_mapping(ds: Dataset, desired_name2id: Mapping[str, int]) -> Dataset:
    """SAHI's ``update_categories`` on a dataset: exactly the mapping's categories."""
    from ..transforms import edit_categories

    out = edit_categories(ds, mapping={str(k): int(v) for k, v in desired_name2id.items()})
    before = {str(n) for n in ds.categories.name.tolist()}
    cats = []
    for rec in out.dataset.categories.records:
        rec = dict(rec)
        if rec["name"] not in before and "supercategory" not in rec:
            rec["supercategory"] = rec["name"]
        cats.append(rec)
    return out.dataset.replace(categories=Categories(cats))


def update_categories(desired_name2id: Mapping[str, int], coco_dict: Mapping[str, Any]
                      ) -> dict[str, Any]:
    """A copy of ``coco_dict`` with categories remapped by name to ``desired_name2id``.

    Annotations of other categories are dropped. ``coco_dict`` is not changed; its
    other top-level keys (``info``, ``licenses``) are kept.
    """
    return _to_dict(_apply_category_mapping(_as_dataset(coco_dict, "coco_dict"),
                                            desired_name2id))


def update_categories_from_file(desired_name2id: Mapping[str, int], coco_path: str,
                                save_path: str) -> None:
    """:func:`update_categories` of a file, written (atomically) to ``save_path``."""
    ds = _apply_category_mapping(read_coco(coco_path), desired_name2id)
    _save(ds, save_path)


def _save(ds: Dataset, path: str | os.PathLike[str]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_coco(ds, path, image_ids="keep", annotation_ids="keep")


def _merge_datasets(ds1: Dataset, ds2: Dataset,
                    desired_name2id: Mapping[str, int] | None) -> Dataset:
    """SAHI's dict ``merge``: the second dataset's ids moved past the first's."""
    max_image = int(ds1.images.id.max()) if len(ds1.images) else -1
    max_ann = int(ds1.annotations.id.max()) if len(ds1.annotations) else -1
    t1, t2 = ds1, ds2
    if desired_name2id is not None:
        t1 = _apply_category_mapping(t1, desired_name2id)
        t2 = _apply_category_mapping(t2, desired_name2id)
    cats = list(t1.categories)
    if cats != list(t2.categories):
        # the second's categories by name onto the first's; names only the second has are
        # added (SAHI drops their annotations)
        full = {c["name"]: int(c["id"]) for c in cats}
        used = set(full.values())
        next_id = max(used, default=-1) + 1
        added = []
        for c in t2.categories:
            if c["name"] in full:
                continue
            cid = int(c["id"]) if int(c["id"]) not in used else next_id
            used.add(cid)
            next_id = max(next_id, cid + 1)
            full[c["name"]] = cid
            added.append({**c, "id": cid})
        t2 = _apply_category_mapping(t2, {str(c["name"]): full[c["name"]]
                                          for c in t2.categories})
        cats = cats + added
    anns2 = t2.annotations.replace(id=t2.annotations.id + max_ann + 1,
                                   image_id=t2.annotations.image_id + max_image + 1)
    images2 = t2.images.replace(id=t2.images.id + max_image + 1)
    return Dataset(Images.concat([t1.images, images2]),
                   Annotations.concat([t1.annotations, anns2]),
                   Categories(cats), t1.extra, t1.key_order, t1.source)


def merge(coco_dict1: Mapping[str, Any], coco_dict2: Mapping[str, Any],
          desired_name2id: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Two COCO dicts in one: the second's image and annotation ids moved past the first's.

    With ``desired_name2id`` both are remapped to it first. Otherwise the second's
    categories are matched to the first's by name, and names only the second has are
    added (SAHI drops their annotations). The inputs are not changed.
    """
    return _to_dict(_merge_datasets(_as_dataset(coco_dict1, "coco_dict1"),
                                    _as_dataset(coco_dict2, "coco_dict2"), desired_name2id))


def merge_from_list(coco_dict_list: Sequence[Mapping[str, Any]],
                    desired_name2id: Mapping[str, int] | None = None,
                    verbose: int = 1) -> dict[str, Any]:
    """Several COCO dicts in one (categories: the union by name, numbered from 0, unless
    ``desired_name2id`` is given)."""
    if not coco_dict_list:
        raise SahiValueError("coco_dict_list", [], "at least one COCO dict")
    datasets = [_as_dataset(d, f"coco_dict_list[{i}]") for i, d in enumerate(coco_dict_list)]
    if desired_name2id is None:
        if verbose:
            log.info("'desired_name2id' is not specified, combining all categories.")
        desired_name2id = {}
        for d in datasets:
            for name in d.categories.name.tolist():
                if name not in desired_name2id:
                    desired_name2id[name] = len(desired_name2id)
    merged = datasets[0]
    for d in datasets[1:]:
        merged = _merge_datasets(merged, d, desired_name2id)
    if verbose:
        log.info("Categories are formed as: %s", list(merged.categories))
    return _to_dict(merged)


def merge_from_file(coco_path1: str, coco_path2: str, save_path: str) -> None:
    """:func:`merge` of two files, written (atomically) to ``save_path``."""
    _save(_merge_datasets(read_coco(coco_path1), read_coco(coco_path2), None), save_path)


def get_imageid2annotationlist_mapping(coco_dict: Mapping[str, Any]
                                       ) -> defaultdict[int, list[dict[str, Any]]]:
    """Image id -> the annotation dicts of that image (the dict's own objects)."""
    out: defaultdict[int, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco_dict["annotations"]:
        out[ann["image_id"]].append(ann)
    return out


def add_bbox_and_area_to_coco(source_coco_path: str = "", target_coco_path: str = "",
                              add_bbox: bool = True, add_area: bool = True) -> dict[str, Any]:
    """Fill ``bbox`` and ``area`` of every segmented annotation from its segmentation.

    Polygons: their tight box and geometric area (as SAHI); RLE masks: their box and
    pixel count (SAHI fails on RLE); annotations with neither keep theirs. Written to
    ``target_coco_path`` when given; the dict is returned.
    """
    ds = read_coco(source_coco_path)
    kind, area, box = _table_geometry(ds.annotations, ds.source)
    anns = ds.annotations
    seg_rows = kind > 0
    if add_bbox and seg_rows.any():
        poly = kind == 1
        new_box = anns.bbox.copy()
        if poly.any():
            polys = parse_polygons(anns.segmentation, np.flatnonzero(poly))
            new_box[poly] = polygon_bboxes(polys)
        rle = kind == 2
        new_box[rle] = box[rle]
        anns = anns.replace(bbox=new_box)
    if add_area and seg_rows.any():
        new_area = anns.area.copy()
        new_area[seg_rows] = area[seg_rows]
        anns = anns.replace(area=new_area)
    out = ds.replace(annotations=anns)
    if target_coco_path:
        _save(out, target_coco_path)
    return _to_dict(out)


@dataclass
class DatasetClassCounts:
    """How many images hold each category (``counts``: category id -> images)."""

    counts: dict[Any, int]
    total_images: int

    def frequencies(self) -> dict[Any, float]:
        """Category id -> share of the images that hold it."""
        return {cid: count / self.total_images for cid, count in self.counts.items()}

    def __add__(self, o: DatasetClassCounts) -> DatasetClassCounts:
        """The counts of two datasets together."""
        counts = dict(self.counts)
        for k, v in o.counts.items():
            counts[k] = counts.get(k, 0) + v
        return DatasetClassCounts(counts, self.total_images + o.total_images)


def count_images_with_category(coco_file_path: str) -> DatasetClassCounts:
    """For each category id, the number of images with at least one of its annotations.

    ``total_images`` counts the images that have annotations (as SAHI does).
    """
    anns = read_coco(coco_file_path).annotations
    if not len(anns):
        return DatasetClassCounts({}, 0)
    pairs = np.stack([anns.image_id, anns.category_id], axis=1)
    uniq, first = np.unique(pairs, axis=0, return_index=True)
    uniq = uniq[np.argsort(first, kind="stable")]
    cats, first_cat, per = np.unique(uniq[:, 1], return_index=True, return_counts=True)
    order = np.argsort(first_cat, kind="stable")
    counts = {int(cats[i]): int(per[i]) for i in order}
    return DatasetClassCounts(counts, len(np.unique(anns.image_id)))


def remove_invalid_coco_results(result_list_or_path: list[dict[str, Any]] | str,
                                dataset_dict_or_path: Mapping[str, Any] | str | None = None
                                ) -> list[dict[str, Any]]:
    """The results whose box is valid: 4 numbers, none negative, and (with the dataset) not
    beyond the image, as SAHI checks it. The result dicts are not changed."""
    if isinstance(result_list_or_path, (str, os.PathLike)):
        try:
            results = msgspec.json.decode(Path(result_list_or_path).read_bytes())
        except FileNotFoundError:
            raise InputError(str(result_list_or_path), None, "no such file") from None
        except msgspec.DecodeError as e:
            raise InputError(str(result_list_or_path), None, f"malformed JSON: {e}") from None
        if not isinstance(results, list):
            raise InputError(str(result_list_or_path), None, "expected a list of results")
    elif isinstance(result_list_or_path, list):
        results = result_list_or_path
    else:
        raise SahiTypeError("result_list_or_path", type(result_list_or_path).__name__,
                            "a list of results or a path")
    sizes: dict[int, tuple[int, int]] | None = None
    if dataset_dict_or_path is not None:
        ds = _as_dataset(dataset_dict_or_path, "dataset_dict_or_path")
        sizes = dict(zip(ds.images.id.tolist(),
                         zip(ds.images.height.tolist(), ds.images.width.tolist(), strict=True),
                         strict=True))
    out = []
    dropped = 0
    for i, res in enumerate(results):
        bbox = res.get("bbox")
        if not bbox or len(bbox) != 4 or min(bbox) < 0:
            dropped += 1
            continue
        if sizes is not None:
            hw = sizes.get(res.get("image_id"))
            if hw is None:
                raise InputError(None, f"results[{i}].image_id",
                                 f"image id {res.get('image_id')} is not in the dataset")
            h, w = hw
            if bbox[1] > h or bbox[3] > h or bbox[0] > w or bbox[2] > w:
                dropped += 1
                continue
        out.append(res)
    if dropped:
        log.info("ignored %d invalid prediction(s)", dropped)
    return out

