"""The in-memory dataset: three tables of numpy columns.

A :class:`Dataset` holds an :class:`Images` table, an :class:`Annotations` table and a
:class:`Categories` table, plus the top-level keys it does not model (``info``,
``licenses``, anything else) kept as they were read.

Layout (see STYLE.md, "The core data"):

* one numpy array per field; missing optional values are marked in the column itself
  (``NaN`` for ``area`` and ``bbox``, ``-1`` for ``iscrowd`` and ``num_keypoints``);
* the original COCO ids are data (``images.id``, ``annotations.image_id``); joins go
  through row indices (:attr:`Dataset.image_index`), grouping through a stable sort and
  an offsets array (:meth:`Dataset.annotation_rows`);
* segmentations stay as read: the JSON text of each one (a :class:`msgspec.Raw`) until
  somebody asks for geometry; :attr:`Annotations.polygons` parses every polygon at once
  into one flat coordinate array with ring and annotation offsets (Arrow's list layout);
  RLE stays encoded;
* keys the model does not know are kept per record in an ``extra`` column (a dict or
  ``None``) and written back untouched.

Tables and datasets are immutable: every transform returns a new one. Saving,
validation, statistics and formats are functions that take a dataset
(:func:`cocokit.save`, :func:`cocokit.validate`, :func:`cocokit.compute_stats`), not
methods: this module imports nothing above it (``tests/test_layers.py`` checks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar

import msgspec
import numpy as np

from .geometry import Polygons, annotation_areas, parse_polygons, segmentation_kinds

__all__ = [
    "AREA_INT",
    "Annotations",
    "Categories",
    "Dataset",
    "ImageItem",
    "Images",
    "Origin",
    "filled_areas",
    "numbers_as_read",
    "plain",
    "present",
]

IntArray = np.ndarray
T = TypeVar("T", bound="_Table")


def plain(value: Any) -> Any:
    """Return ``value`` as plain Python JSON data: Raw JSON decoded, numpy made lists."""
    if isinstance(value, msgspec.Raw):
        return msgspec.json.decode(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def object_array(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object array of ``values``; lists and dicts stay single elements.

    (``out[:] = values`` would turn equal-length lists into a 2-d array or fail.)
    """
    return np.fromiter(values, dtype=object, count=len(values))


def present(column: np.ndarray) -> np.ndarray:
    """Where an object column holds a value (not None), elementwise in C."""
    return np.asarray(column != None, bool)  # noqa: E711 (elementwise on the array)


def filled_areas(area: np.ndarray, bbox: np.ndarray, segmentation: np.ndarray,
                 image_row: np.ndarray, heights: np.ndarray, widths: np.ndarray,
                 fill: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """``area`` with its missing (NaN) values filled as an export fills them: the area
    the segmentation states (:func:`~cocokit.geometry.annotation_areas`: a polygon's
    shoelace area, a mask's pixel count) where the row's image is known (``image_row``
    >= 0, into ``heights`` and ``widths``), else the box's ``w * h``; NaN where neither
    exists. ``fill`` limits the rows filled. Returns the column (``area`` itself when
    nothing is filled) and how many values were filled."""
    missing = np.isnan(area) if fill is None else np.isnan(area) & fill
    if not missing.any():
        return area, 0
    area = area.copy()
    seg_rows = np.flatnonzero(missing & present(segmentation) & (image_row >= 0))
    if len(seg_rows):
        img = image_row[seg_rows]
        area[seg_rows] = annotation_areas(segmentation[seg_rows], heights[img], widths[img])
    box = missing & np.isnan(area) & ~np.isnan(bbox[:, 0])
    area[box] = bbox[box, 2] * bbox[box, 3]
    return area, int(np.count_nonzero(missing & ~np.isnan(area)))


def ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(c)`` for each count, vectorized."""
    counts = np.asarray(counts, np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


#: The bit of :attr:`Annotations.int_text` saying the area was read as an integer
#: (bits 0-3 are the bbox's x, y, width and height).
AREA_INT = 16
_BBOX_BITS = np.array([1, 2, 4, 8], np.uint8)
# from here on a float64 no longer holds every integer (2**53 + 1 reads as 2**53):
# written as a float
_EXACT = float(2**53)


def _whole(values: np.ndarray) -> np.ndarray:
    """Where ``values`` are whole numbers a float64 holds exactly (not NaN nor inf)."""
    return (values == np.trunc(values)) & (np.abs(values) < _EXACT)


def numbers_as_read(
    bbox: np.ndarray, area: np.ndarray, int_text: np.ndarray
) -> tuple[list[Any], list[Any]]:
    """The bbox rows and areas as Python numbers, as the writers write them.

    A value is an ``int`` where it was read as a JSON integer (``int_text``, see
    :class:`Annotations`) and is still a whole number below 2**53 in magnitude; every
    other value is a ``float`` (so ``10.0`` as read stays ``10.0``, and a value a step
    made fractional is a float). When no value was read as an integer this is
    ``tolist()``.
    """
    if not int_text.any():
        return bbox.tolist(), area.tolist()
    ints = ((int_text[:, None] & _BBOX_BITS) != 0) & _whole(bbox)
    every = ints.all(axis=1)
    if every.all():  # boxes all integers (VisDrone, SAHI's files): one conversion
        boxes = bbox.astype(np.int64).tolist()
    else:
        boxes = bbox.tolist()
        rows = np.flatnonzero(every)  # rows of four integers, converted together
        for r, values in zip(rows.tolist(), bbox[rows].astype(np.int64).tolist()):
            boxes[r] = values
        rows = np.flatnonzero(ints.any(axis=1) & ~every)  # a mix: value by value
        if len(rows):
            sub, mask = bbox[rows], ints[rows]
            mixed = sub.astype(object)
            mixed[mask] = sub[mask].astype(np.int64).astype(object)
            for r, values in zip(rows.tolist(), mixed.tolist()):
                boxes[r] = values
    as_int = ((int_text & AREA_INT) != 0) & _whole(area)
    if as_int.all():
        return boxes, area.astype(np.int64).tolist()
    areas = area.tolist()
    rows = np.flatnonzero(as_int)
    for r, value in zip(rows.tolist(), area[rows].astype(np.int64).tolist()):
        areas[r] = value
    return boxes, areas


class _Table:
    """Columns of equal length; subclasses name them in ``_columns``."""

    _columns: tuple[str, ...] = ()

    def __init__(self, **columns: np.ndarray) -> None:
        n: int | None = None
        for name in self._columns:
            col = columns[name]
            if not isinstance(col, np.ndarray):
                raise TypeError(f"column {name} must be a numpy array")
            if n is None:
                n = len(col)
            elif len(col) != n:
                raise ValueError(f"column {name} has {len(col)} rows, expected {n}")
            setattr(self, name, _frozen(col))
        self._n = n or 0

    def __len__(self) -> int:
        return self._n

    def columns(self) -> dict[str, np.ndarray]:
        """The columns by name (the arrays themselves, read-only)."""
        return {name: getattr(self, name) for name in self._columns}

    def take(self: T, rows: np.ndarray | Sequence[int]) -> T:
        """A new table with the given rows (indices or a boolean mask), in that order."""
        idx = np.asarray(rows)
        return type(self)(**{k: v[idx] for k, v in self.columns().items()})

    def replace(self: T, **columns: np.ndarray) -> T:
        """A new table with some columns replaced."""
        cols = self.columns()
        unknown = set(columns) - set(cols)
        if unknown:
            raise TypeError(f"unknown column(s): {sorted(unknown)}")
        cols.update({k: np.array(v, copy=True) for k, v in columns.items()})
        return type(self)(**cols)

    @classmethod
    def concat(cls: type[T], tables: Sequence[T]) -> T:
        """Rows of several tables, one after the other."""
        if not tables:
            return cls.empty()
        return cls(**{k: np.concatenate([getattr(t, k) for t in tables]) for k in cls._columns})

    @classmethod
    def empty(cls: type[T]) -> T:
        raise NotImplementedError


class Images(_Table):
    """The images table.

    Columns: ``id`` (int64), ``file_name`` (str objects), ``width`` and ``height``
    (int64), ``extra`` (a dict of the record's other keys, or None). ``images[i]`` is the
    full COCO record of row ``i`` as a plain dict.
    """

    _columns = ("id", "file_name", "width", "height", "extra")
    id: np.ndarray
    file_name: np.ndarray
    width: np.ndarray
    height: np.ndarray
    extra: np.ndarray

    @classmethod
    def empty(cls) -> Images:
        return cls(
            id=np.zeros(0, np.int64),
            file_name=np.empty(0, object),
            width=np.zeros(0, np.int64),
            height=np.zeros(0, np.int64),
            extra=np.empty(0, object),
        )

    def record(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a COCO image record (plain Python values)."""
        rec: dict[str, Any] = {
            "id": int(self.id[i]),
            "file_name": str(self.file_name[i]),
            "width": int(self.width[i]),
            "height": int(self.height[i]),
        }
        extra = self.extra[i]
        if extra:
            rec.update(plain(extra))
        return rec

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self._n <= i < self._n:
            raise IndexError(f"image row {i} out of range for {self._n} images")
        return self.record(i % self._n if self._n else i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self._n):
            yield self.record(i)


class Annotations(_Table):
    """The annotations table.

    Columns: ``id``, ``image_id``, ``category_id`` (int64); ``bbox`` (float64, shape
    (n, 4), COCO ``xywh`` as read, a NaN row where the record had no bbox); ``area``
    (float64, NaN where absent); ``iscrowd`` (int8, -1 where absent); ``segmentation``
    (objects: the JSON text as :class:`msgspec.Raw`, or Python lists/dicts for geometry
    made in memory, or None where absent); ``keypoints`` (objects, like
    segmentation); ``num_keypoints`` (int64, -1 where absent); ``extra`` (dict or None);
    ``int_text`` (uint8 bits: which of the row's bbox values (bits 0-3, x y w h) and area
    (bit 4, :data:`AREA_INT`) were read as JSON integers, so that they are written back
    as integers while they stay whole numbers: :func:`numbers_as_read`; zeros where not
    given).
    """

    _columns = (
        "id",
        "image_id",
        "category_id",
        "bbox",
        "area",
        "iscrowd",
        "segmentation",
        "keypoints",
        "num_keypoints",
        "extra",
        "int_text",
    )
    id: np.ndarray
    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    segmentation: np.ndarray
    keypoints: np.ndarray
    num_keypoints: np.ndarray
    extra: np.ndarray
    int_text: np.ndarray

    def __init__(self, **columns: np.ndarray) -> None:
        if "int_text" not in columns:  # made in memory: no number was read as an integer
            columns["int_text"] = np.zeros(len(columns["id"]), np.uint8)
        super().__init__(**columns)

    @classmethod
    def empty(cls) -> Annotations:
        return cls(
            id=np.zeros(0, np.int64),
            image_id=np.zeros(0, np.int64),
            category_id=np.zeros(0, np.int64),
            bbox=np.zeros((0, 4), np.float64),
            area=np.zeros(0, np.float64),
            iscrowd=np.zeros(0, np.int8),
            segmentation=np.empty(0, object),
            keypoints=np.empty(0, object),
            num_keypoints=np.zeros(0, np.int64),
            extra=np.empty(0, object),
            int_text=np.zeros(0, np.uint8),
        )

    @cached_property
    def crowd(self) -> np.ndarray:
        """Per row, whether the annotation is a crowd as COCOeval reads ``iscrowd`` (bool):
        any value other than 0 (1, or a value such as 2 that the reader keeps as read, -2
        in the column); not where ``iscrowd`` is absent (-1 in the column)."""
        return _frozen((self.iscrowd != 0) & (self.iscrowd != -1))

    @cached_property
    def segmentation_kind(self) -> np.ndarray:
        """Per row, the :class:`~cocokit.geometry.SegmentationKind` value (int8): 0 none,
        1 polygons, 2 RLE (``counts`` a list), 3 RLE (``counts`` a string), -1 invalid."""
        return _frozen(segmentation_kinds(self.segmentation))

    @cached_property
    def polygons(self) -> Polygons:
        """Every polygon of the table in one flat layout (see :class:`Polygons`).

        Rows that are not polygons (RLE, no segmentation) have zero rings.
        """
        return parse_polygons(self.segmentation)

    def rle(self, i: int) -> dict[str, Any]:
        """The RLE of row ``i`` as a dict (``counts`` a list or a str), or KeyError."""
        seg = plain(self.segmentation[i])
        if not isinstance(seg, dict):
            raise KeyError(f"annotation row {i} has no RLE segmentation")
        return seg

    def keypoints_array(self, i: int) -> np.ndarray:
        """Keypoints of row ``i`` as a (k, 3) float64 array (x, y, visibility)."""
        kp = self.keypoints[i]
        if kp is None:
            return np.zeros((0, 3), np.float64)
        return np.asarray(plain(kp), np.float64).reshape(-1, 3)

    def record(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a COCO annotation record (plain Python values)."""
        rec: dict[str, Any] = {
            "id": int(self.id[i]),
            "image_id": int(self.image_id[i]),
            "category_id": int(self.category_id[i]),
        }
        if self.segmentation[i] is not None:
            rec["segmentation"] = plain(self.segmentation[i])
        if self.int_text[i]:  # integers as read, written as such (numbers_as_read)
            (bbox,), (area,) = numbers_as_read(self.bbox[i : i + 1], self.area[i : i + 1],
                                               self.int_text[i : i + 1])
        else:
            bbox, area = self.bbox[i].tolist(), float(self.area[i])
        if not np.isnan(self.area[i]):
            rec["area"] = area
        if not np.isnan(self.bbox[i, 0]):
            rec["bbox"] = bbox
        if self.iscrowd[i] >= 0:
            rec["iscrowd"] = int(self.iscrowd[i])
        if self.keypoints[i] is not None:
            rec["keypoints"] = plain(self.keypoints[i])
        if self.num_keypoints[i] >= 0:
            rec["num_keypoints"] = int(self.num_keypoints[i])
        extra = self.extra[i]
        if extra:
            rec.update(plain(extra))
        return rec

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self._n <= i < self._n:
            raise IndexError(f"annotation row {i} out of range for {self._n} annotations")
        return self.record(i % self._n)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(self._n):
            yield self.record(i)


class Categories:
    """The category list, kept as read: ``records`` (plain dicts, in file order).

    Columns ``id`` (int64) and ``name`` (str objects) are derived from the records.
    ``categories[i]`` is a copy of record ``i``; look-ups by id or name are O(1).
    """

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.records: tuple[dict[str, Any], ...] = tuple(dict(r) for r in records)
        self.id = _frozen(np.array([r["id"] for r in self.records], dtype=np.int64))
        self.name = _frozen(np.array([r["name"] for r in self.records], dtype=object))
        self._by_id = {int(r["id"]): i for i, r in reversed(list(enumerate(self.records)))}
        self._by_name = {str(r["name"]): i for i, r in reversed(list(enumerate(self.records)))}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(plain(self.records[i]))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for r in self.records:
            yield plain(r)

    def by_id(self, category_id: int) -> dict[str, Any]:
        """The category record with this id (KeyError if none)."""
        return self[self._by_id[int(category_id)]]

    def by_name(self, name: str) -> dict[str, Any]:
        """The category record with this name (KeyError if none)."""
        return self[self._by_name[name]]

    def id_of(self, name: str) -> int:
        """The id of the category with this name (KeyError if none)."""
        return int(self.records[self._by_name[name]]["id"])

    def name_of(self, category_id: int) -> str:
        """The name of the category with this id (KeyError if none)."""
        return str(self.records[self._by_id[int(category_id)]]["name"])

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._by_name
        if isinstance(key, (int, np.integer)):
            return int(key) in self._by_id
        return False


@dataclasses.dataclass(frozen=True, eq=False)
class Origin:
    """Where the records of a derived dataset (a transform's result) were read, so that
    a message about one names the place a person can find it: image row ``i`` is row
    ``image_rows[i]`` of the input ``sources[image_inputs[i]]`` (of ``sources[0]``
    when ``image_inputs`` is None), and likewise for annotations. A record made from
    another (a repeated image's copy, a clipped annotation) names the one it was made
    from. A source is the input's file name, or None for one that has none (its rows
    are then named alone).
    """

    sources: tuple[str | None, ...]
    image_rows: np.ndarray
    annotation_rows: np.ndarray
    image_inputs: np.ndarray | None = None
    annotation_inputs: np.ndarray | None = None

    def place(self, section: str, row: int) -> str:
        """Where row ``row`` of ``section`` (``images`` or ``annotations``) was read:
        ``file: annotations[10]``."""
        source, read = self.read_at(section, row)
        where = f"{section}[{read}]"
        return f"{source}: {where}" if source else where

    def read_at(self, section: str, row: int) -> tuple[str | None, int]:
        """The source and the row there of row ``row`` of ``section``."""
        if section == "images":
            rows, inputs = self.image_rows, self.image_inputs
        else:
            rows, inputs = self.annotation_rows, self.annotation_inputs
        return self.sources[0 if inputs is None else int(inputs[row])], int(rows[row])


def derived(ds: Dataset, out: Dataset, image_rows: np.ndarray | Sequence[int],
            annotation_rows: np.ndarray | Sequence[int]) -> Dataset:
    """``out``, made from ``ds`` (its image row ``i`` from row ``image_rows[i]`` of
    ``ds``, its annotation rows likewise), with its :class:`Origin`: the rows of ``ds``,
    or where ``ds`` is itself derived, the places its rows were read."""
    return _with_origin(out, [ds], [np.asarray(image_rows, np.int64)],
                        [np.asarray(annotation_rows, np.int64)], [ds.source])


def derived_merge(inputs: Sequence[Dataset], out: Dataset, image_rows: Sequence[np.ndarray],
                  annotation_rows: Sequence[np.ndarray]) -> Dataset:
    """:func:`derived` for a dataset made of several: its images are rows
    ``image_rows[0]`` of ``inputs[0]``, then rows ``image_rows[1]`` of ``inputs[1]``,
    ...; its annotations likewise. ``inputs`` without a file name are named
    ``input N``."""
    return _with_origin(out, inputs, [np.asarray(r, np.int64) for r in image_rows],
                        [np.asarray(r, np.int64) for r in annotation_rows],
                        [d.source or f"input {k + 1}" for k, d in enumerate(inputs)])


def _with_origin(out: Dataset, inputs: Sequence[Dataset], img: list[np.ndarray],
                 ann: list[np.ndarray], named: Sequence[str | None]) -> Dataset:
    """Set ``out.origin``: row ``img[k][j]`` of ``inputs[k]`` for its images, in order,
    and likewise ``ann`` for its annotations; an input without an origin is named
    ``named[k]``."""
    sources: list[str | None] = []
    img_rows: list[np.ndarray] = []
    ann_rows: list[np.ndarray] = []
    img_src: list[np.ndarray] = []
    ann_src: list[np.ndarray] = []
    for k, d in enumerate(inputs):
        base = len(sources)
        o = d.origin
        if o is None:  # the input's own rows
            sources.append(named[k])
            img_rows.append(img[k])
            ann_rows.append(ann[k])
            img_src.append(np.full(len(img[k]), base, np.int64))
            ann_src.append(np.full(len(ann[k]), base, np.int64))
            continue
        sources += o.sources  # the places the input's rows were read
        img_rows.append(o.image_rows[img[k]])
        ann_rows.append(o.annotation_rows[ann[k]])
        for rows, src, mine in ((img[k], img_src, o.image_inputs),
                                (ann[k], ann_src, o.annotation_inputs)):
            src.append(base + (mine[rows] if mine is not None
                               else np.zeros(len(rows), np.int64)))
    one = len(sources) == 1
    out.origin = Origin(
        tuple(sources), np.concatenate(img_rows), np.concatenate(ann_rows),
        None if one else np.concatenate(img_src), None if one else np.concatenate(ann_src))
    return out


@dataclasses.dataclass(frozen=True)
class ImageItem:
    """One image with its annotations, as plain COCO records."""

    index: int
    image: dict[str, Any]
    annotations: list[dict[str, Any]]


class Dataset:
    """A COCO dataset: images, annotations, categories and the other top-level keys.

    Build one with :func:`cocokit.load` or :class:`DatasetBuilder`; write it with
    :func:`cocokit.save`. ``len(ds)`` is the number of images; iterating yields
    :class:`ImageItem` objects in image order.

    ``extra`` holds the top-level keys other than images/annotations/categories
    (``info``, ``licenses``, anything else) in file order; ``key_order`` the order of
    all top-level keys as read, so they are written back in place.
    """

    def __init__(
        self,
        images: Images,
        annotations: Annotations,
        categories: Categories,
        extra: Mapping[str, Any] | None = None,
        key_order: Sequence[str] | None = None,
        source: str | None = None,
        origin: Origin | None = None,
    ) -> None:
        self.images = images
        self.annotations = annotations
        self.categories = categories
        self.extra: dict[str, Any] = dict(extra or {})
        core = ("images", "annotations", "categories")
        order = [k for k in (key_order or ()) if k in self.extra or k in core]
        order += [k for k in (*self.extra, *core) if k not in order]
        self.key_order: tuple[str, ...] = tuple(order)
        self.source = source
        #: where the records were read, when the dataset is a transform's result (see
        #: :class:`Origin`); None for one read or built as it is (then its own rows)
        self.origin = origin

    def __repr__(self) -> str:
        src = f" from {self.source!r}" if self.source else ""
        return (
            f"<Dataset{src}: {len(self.images)} images, {len(self.annotations)} annotations, "
            f"{len(self.categories)} categories>"
        )

    def __len__(self) -> int:
        return len(self.images)

    def __iter__(self) -> Iterator[ImageItem]:
        for i in range(len(self.images)):
            yield self.item(i)

    def item(self, i: int) -> ImageItem:
        """Image row ``i`` with its annotations."""
        return ImageItem(i, self.images[i], self.annotations_of(i))

    # -- joins -------------------------------------------------------------------------

    @cached_property
    def image_index(self) -> np.ndarray:
        """For each annotation, the row of its image in :attr:`images` (-1 if none).

        Where image ids repeat (an invalid file) the first row with that id is used.
        """
        return _frozen(lookup(self.images.id, self.annotations.image_id))

    @cached_property
    def category_index(self) -> np.ndarray:
        """For each annotation, the row of its category (-1 if the id is not declared)."""
        return _frozen(lookup(self.categories.id, self.annotations.category_id))

    @cached_property
    def _groups(self) -> tuple[np.ndarray, np.ndarray]:
        idx = self.image_index
        order = np.argsort(idx, kind="stable")
        counts = np.bincount(idx[idx >= 0], minlength=len(self.images))
        offsets = np.zeros(len(self.images) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        offsets += int(np.count_nonzero(idx < 0))  # dangling rows sort first
        return _frozen(order), _frozen(offsets)

    @cached_property
    def annotation_counts(self) -> np.ndarray:
        """Number of annotations of each image row."""
        return _frozen(np.diff(self._groups[1]))

    def annotation_rows(self, i: int) -> np.ndarray:
        """Rows of :attr:`annotations` that belong to image row ``i``, in table order."""
        order, offsets = self._groups
        return order[offsets[i] : offsets[i + 1]]

    # The interface of a source of tables, shared with a file read in runs
    # (:class:`cocokit.io.stream.CocoStream`): an operation written on runs of tables
    # works on a loaded dataset (one run) and on a file of any size alike.

    @property
    def num_images(self) -> int:
        return len(self.images)

    @property
    def num_annotations(self) -> int:
        return len(self.annotations)

    def image_tables(self) -> Iterator[tuple[int, Images]]:
        """The images as runs of tables (index of the first, table): here one run."""
        yield 0, self.images

    def annotation_tables(self) -> Iterator[tuple[int, Annotations]]:
        """The annotations as runs of tables (index of the first, table): here one run."""
        yield 0, self.annotations

    def annotations_of(self, i: int) -> list[dict[str, Any]]:
        """The annotation records of image row ``i``."""
        return [self.annotations.record(int(r)) for r in self.annotation_rows(i)]

    def image_row(self, image_id: int) -> int:
        """The row of the image with this id (KeyError if none)."""
        row = int(lookup(self.images.id, np.array([image_id], np.int64))[0])
        if row < 0:
            raise KeyError(f"no image with id {image_id}")
        return row

    def document(self) -> dict[str, Any]:
        """The dataset as one plain COCO dict, ids as they are and nothing checked.

        For inspection and validation; use :func:`cocokit.to_dict` for an export under
        the contract (ids, integrity, computed boxes and areas).
        """
        doc: dict[str, Any] = {}
        for key in self.key_order:
            if key == "images":
                doc[key] = list(self.images)
            elif key == "annotations":
                doc[key] = list(self.annotations)
            elif key == "categories":
                doc[key] = list(self.categories)
            else:
                doc[key] = plain(self.extra[key])
        return doc

    # -- new datasets ------------------------------------------------------------------

    def replace(
        self,
        *,
        images: Images | None = None,
        annotations: Annotations | None = None,
        categories: Categories | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Dataset:
        """A new dataset with some parts replaced (the rest shared, as it is immutable).

        Its :attr:`origin` is not carried over (the rows may be others now): a
        transform sets it (:func:`derived`)."""
        return Dataset(
            images if images is not None else self.images,
            annotations if annotations is not None else self.annotations,
            categories if categories is not None else self.categories,
            extra if extra is not None else self.extra,
            self.key_order,
            self.source,
        )

    def select_images(
        self, rows: np.ndarray | Sequence[int], keep_annotations: bool = True
    ) -> Dataset:
        """A dataset with the given image rows (indices or mask) and their annotations."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            mask = rows
            rows = np.flatnonzero(rows)
        else:
            mask = np.zeros(len(self.images), bool)
            mask[rows] = True
        images = self.images.take(rows)
        if not keep_annotations:
            return self.replace(images=images, annotations=Annotations.empty())
        idx = self.image_index
        ann_keep = (idx >= 0) & mask[np.maximum(idx, 0)]
        return self.replace(images=images, annotations=self.annotations.take(ann_keep))

    def select_annotations(self, rows: np.ndarray | Sequence[int]) -> Dataset:
        """A dataset with all images and only the given annotation rows (indices or mask)."""
        return self.replace(annotations=self.annotations.take(np.asarray(rows)))


def unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct values of an integer array.

    Sort-based: numpy 2's hash-based ``np.unique`` is slower on id columns and needs
    several times the array's memory.
    """
    return _distinct_in_place(np.array(values).ravel())


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while many small objects are made.

    Decoding, building columns and writing make millions of objects that hold no
    cycles; a collection pass over them costs more than the work itself (an orjson
    parse of a 478 MB file: 9.6 s with the collector, 2.7 s without; STYLE.md). Usable
    as ``with gc_paused():`` and as a decorator ``@gc_paused()``.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Row of each of ``values`` in ``keys`` (first occurrence), -1 where absent."""
    keys = np.asarray(keys, np.int64)
    values = np.asarray(values, np.int64)
    if len(keys) == 0:
        return np.full(len(values), -1, np.int64)
    order = np.argsort(keys, kind="stable")
    sk = keys[order]
    pos = np.searchsorted(sk, values)
    pos = np.minimum(pos, len(sk) - 1)
    found = sk[pos] == values
    return np.where(found, order[pos], -1).astype(np.int64)


def equal_pairs(a: np.ndarray, b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of rows with equal values (any sortable dtype: integers, ``uint64`` hashes,
    ``S16`` digests), by one stable sort.

    Without ``b``: each later row of a value in ``a`` with its first row, ``(first,
    later)``. With it: every ``(i, j)`` with ``a[i] == b[j]``, by ``i`` then ``j``.
    """
    if b is None:
        order = np.argsort(a, kind="stable")
        s = a[order]
        same = np.r_[False, s[1:] == s[:-1]]
        first_pos = np.maximum.accumulate(np.where(~same, np.arange(len(s)), 0))
        k = np.flatnonzero(same)
        return order[first_pos[k]], order[k]
    ob = np.argsort(b, kind="stable")
    sb = b[ob]
    lo = np.searchsorted(sb, a, "left")
    hi = np.searchsorted(sb, a, "right")
    n = hi - lo
    return np.repeat(np.arange(len(a)), n), ob[np.repeat(lo, n) + ranges(n)]


def _distinct_in_place(key: np.ndarray) -> np.ndarray:
    """The distinct values of ``key``, sorted; ``key`` itself is sorted (no copy of it)."""
    key.sort()
    if len(key) < 2:
        return key
    keep = np.empty(len(key), bool)
    keep[0] = True
    np.not_equal(key[1:], key[:-1], out=keep[1:])
    return key[keep]


def images_per_category(runs: Iterable[tuple[np.ndarray, np.ndarray]], n_categories: int,
                        n_images: int) -> np.ndarray:
    """How many distinct images each category has (``n_categories`` counts).

    ``runs``: ``(category_row, image_row)`` arrays, one pair per annotation (rows >= 0,
    under ``n_categories`` and ``n_images``); one run for a dataset in memory, many for
    a file read in runs. Each run's pairs become one ``int64`` key each, ``category *
    n_images + image`` (one copy, sorted in place), of which the distinct ones are kept
    and merged every 8 runs, so the memory held is the distinct pairs; their categories
    are then counted.
    """
    span = max(n_images, 1)
    keys: list[np.ndarray] = []
    for category_row, image_row in runs:
        key = np.asarray(category_row).astype(np.int64)
        key *= span
        key += image_row
        keys.append(_distinct_in_place(key))
        del key, category_row, image_row  # not held while the next run is read
        if len(keys) > 8:
            keys[:] = [_distinct_in_place(np.concatenate(keys))]
    if len(keys) > 1:
        keys[:] = [_distinct_in_place(np.concatenate(keys))]
    distinct = keys[0] if keys else np.zeros(0, np.int64)
    distinct //= span
    return np.bincount(distinct, minlength=n_categories)

