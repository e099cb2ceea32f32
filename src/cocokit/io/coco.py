"""Read and write COCO JSON.

Reading decodes each top-level array once with msgspec into typed records: the fields
the model knows become numpy columns, and every other key is kept as its raw JSON
text (``msgspec.Raw``), which is written back byte for byte. Segmentations and
keypoints stay as raw JSON too, so a file round-trips without parsing a single
polygon coordinate.

Writing follows the export contract: ids ``auto`` or ``keep``, categories passed
through, negatives kept or dropped, numpy values encoded as plain JSON numbers,
referential integrity checked before a byte is written, and an atomic rename at the
end so a failure never leaves a partial file or damages an existing one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain
from operator import attrgetter
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

import msgspec
import numpy as np
from msgspec import UNSET, Raw, UnsetType

from ..dataset import Annotations, Categories, Dataset, Images, gc_paused
from ..errors import InputError, IntegrityError, JSONSyntaxError, OptionError
from ..geometry import segmentation_areas, segmentation_bboxes

__all__ = [
    "ExportSummary",
    "IdPolicy",
    "atomic_write",
    "load",
    "read_coco",
    "tables_from_records",
    "to_dict",
    "to_json",
    "write_coco",
]

IdPolicy = Literal["auto", "keep"]
T = TypeVar("T")
Progress = Callable[[int, int], None]

_CHUNK = 50_000
# records encoded at a time: each run's text (and its copy) is alive at once while written
_WRITE_CHUNK = 10_000
_MAX_EXTRA_KEYS = 256
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`$")
_AT = re.compile(r" - at `\$(.*)`$")
_BYTE = re.compile(r"\(byte (\d+)\)")

# (json name, type, required) of the fields the model knows
_IMAGE_FIELDS: list[tuple[str, Any, bool]] = [
    ("id", int, True),
    ("file_name", str, True),
    ("width", int, True),
    ("height", int, True),
]
_ANN_FIELDS: list[tuple[str, Any, bool]] = [
    ("id", int, True),
    ("image_id", int, True),
    ("category_id", int, True),
    ("segmentation", Raw, False),
    ("area", float, False),
    ("bbox", list[float], False),
    ("iscrowd", int, False),
    ("keypoints", Raw, False),
    ("num_keypoints", int, False),
]


# what an absent optional field decodes to: the value its column holds for "absent"
# (so a column is read straight off the records, without a test per record)
_ABSENT: dict[str, Any] = {
    "area": float("nan"),
    "bbox": (float("nan"),) * 4,
    "iscrowd": -1,
    "num_keypoints": -1,
}


def _struct(
    name: str, known: Sequence[tuple[str, Any, bool]], extras: Sequence[str], forbid: bool
) -> type:
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, (key, typ, required) in enumerate(known):
        py = f"k{i}"
        rename[py] = key
        if required:
            fields.append((py, typ))
        elif key in _ABSENT:
            fields.append((py, typ, _ABSENT[key]))
        else:
            fields.append((py, typ | UnsetType, UNSET))
    for j, key in enumerate(extras):
        py = f"x{j}"
        rename[py] = key
        fields.append((py, Raw | UnsetType, UNSET))
    # records hold no cycles: untracked by the collector, 16 bytes smaller each
    return msgspec.defstruct(
        name, fields, rename=rename, forbid_unknown_fields=forbid, gc=False
    )


def _line_col(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    head = bytes(data[:offset])
    line = head.count(b"\n") + 1
    col = offset - (head.rfind(b"\n") + 1) + 1
    return line, col


def _decode_error(
    e: msgspec.DecodeError, data: bytes | memoryview, file: str | None, section: str, base: int = 0
) -> InputError:
    msg = str(e)
    if isinstance(e, msgspec.DecodeError) and not isinstance(e, msgspec.ValidationError):
        m = _BYTE.search(msg)
        offset = base + int(m.group(1)) if m else 0
        line, col = _line_col(data, offset)
        text = _BYTE.sub("", msg).replace("JSON is malformed: ", "").strip()
        return JSONSyntaxError(file, line, col, text)
    m = _AT.search(msg)
    where = section + (m.group(1) if m else "")
    text = _AT.sub("", msg)
    text = text.replace("Object missing required field", "missing required key")
    return InputError(file, where, text)


class RecordDecoder(Generic[T]):
    """Decodes runs of raw JSON records of one section into tables, run after run.

    Each record is decoded on its own (from a Raw view of the input, so nothing is
    copied) with a struct that forbids unknown keys; a key the model does not know is
    added to the struct as a raw passthrough field and that record decoded again. The
    keys found so far carry over from run to run, so decoding a section whole or in runs
    gives the same tables.
    """

    def __init__(
        self, section: str, file: str | None, build: Callable[[list[Any], list[str], int], T]
    ) -> None:
        self.section = section
        self.file = file
        self.known = _IMAGE_FIELDS if section == "images" else _ANN_FIELDS
        self.build = build
        self.extras: list[str] = []
        self._make()

    def _make(self) -> None:
        struct = _struct(self.section, self.known, self.extras, forbid=True)
        self.dec: msgspec.json.Decoder[Any] = msgspec.json.Decoder(struct)
        self.list_dec = msgspec.json.Decoder(list[struct])  # type: ignore[valid-type]

    def decode_array(self, text: bytes, start: int) -> T:
        """A table of the records of ``text`` (a JSON array), the first being record ``start``.

        The whole array is decoded at once with the keys known so far; where a record
        has a key not seen before, the array is decoded record by record instead.
        """
        try:
            recs = self.list_dec.decode(text)
        except msgspec.ValidationError:
            return self.decode(msgspec.json.decode(text, type=list[Raw]), start)
        return self.build(recs, self.extras, start)

    def decode(self, items: Sequence[Raw], start: int) -> T:
        """A table of the records ``items``, the first being record ``start`` of the section."""
        try:
            recs = list(map(self.dec.decode, items))
        except msgspec.ValidationError:
            recs = []
            for i, r in enumerate(items, start):
                while True:
                    try:
                        recs.append(self.dec.decode(r))
                        break
                    except msgspec.ValidationError as e:
                        self._learn(e, i)
        return self.build(recs, self.extras, start)

    def _learn(self, e: msgspec.ValidationError, i: int) -> None:
        m = _UNKNOWN.match(str(e))
        where = f"{self.section}[{i}]"
        if m is None:
            raise _decode_error(e, b"", self.file, where) from None
        if len(self.extras) >= _MAX_EXTRA_KEYS:
            raise InputError(
                self.file, where, f"more than {_MAX_EXTRA_KEYS} distinct unknown keys"
            ) from None
        self.extras.append(m.group(1))
        self._make()


def image_decoder(file: str | None) -> RecordDecoder[Images]:
    """A decoder of image records into :class:`Images` tables."""
    return RecordDecoder("images", file, _images_table)


def annotation_decoder(file: str | None) -> RecordDecoder[Annotations]:
    """A decoder of annotation records into :class:`Annotations` tables."""
    return RecordDecoder(
        "annotations",
        file,
        lambda recs, extras, start: _annotations_table(recs, extras, start, file),
    )


def _decode_section(raw: Raw, dec: RecordDecoder[T], whole: bytes) -> list[T]:
    """Decode a whole array of records in runs of ``_CHUNK`` (one run of objects alive)."""
    try:
        items = msgspec.json.decode(raw, type=list[Raw])
    except msgspec.ValidationError as e:
        raise _decode_error(e, whole, dec.file, dec.section) from None
    return [dec.decode(items[s : s + _CHUNK], s) for s in range(0, len(items), _CHUNK)]


def _extra_column(recs: list[Any], extras: list[str]) -> np.ndarray:
    col = np.empty(len(recs), dtype=object)
    for j, key in enumerate(extras):
        # records decoded before this key was seen are of an older struct without it
        py = f"x{j}"
        values = [getattr(r, py, UNSET) for r in recs]
        for i in [i for i, v in enumerate(values) if v is not UNSET]:
            if col[i] is None:
                col[i] = {}
            col[i][key] = values[i]
    return col


def _column(recs: list[Any], field: str, dtype: Any = np.int64) -> np.ndarray:
    return np.fromiter(map(attrgetter(field), recs), dtype, count=len(recs))


def _objects(recs: list[Any], field: str) -> np.ndarray:
    # fromiter: assigning a list to an object array would probe each Raw as a buffer
    return np.fromiter(
        (None if v is UNSET else v for v in map(attrgetter(field), recs)), object, len(recs)
    )


def _images_table(recs: list[Any], extras: list[str], start: int = 0) -> Images:
    return Images(
        id=_column(recs, "k0"),
        file_name=np.fromiter(map(attrgetter("k1"), recs), object, len(recs)),
        width=_column(recs, "k2"),
        height=_column(recs, "k3"),
        extra=_extra_column(recs, extras),
    )


def _annotations_table(
    recs: list[Any], extras: list[str], start: int = 0, file: str | None = None
) -> Annotations:
    n = len(recs)
    boxes = list(map(attrgetter("k5"), recs))
    lengths = np.fromiter(map(len, boxes), np.intp, count=n)
    if n and (lengths != 4).any():
        i = int(np.flatnonzero(lengths != 4)[0])
        raise InputError(
            file,
            f"annotations[{start + i}].bbox",
            f"expected 4 numbers [x, y, width, height], got {int(lengths[i])}",
        )
    bbox = np.fromiter(chain.from_iterable(boxes), np.float64, count=4 * n)
    return Annotations(
        id=_column(recs, "k0"),
        image_id=_column(recs, "k1"),
        category_id=_column(recs, "k2"),
        bbox=bbox.reshape(n, 4),
        area=_column(recs, "k4", np.float64),
        iscrowd=_column(recs, "k6", np.int8),
        segmentation=_objects(recs, "k3"),
        keypoints=_objects(recs, "k7"),
        num_keypoints=_column(recs, "k8"),
        extra=_extra_column(recs, extras),
    )


def read_coco(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | Mapping[str, Any],
    *,
    name: str | None = None,
) -> Dataset:
    """Read a COCO document from a path, JSON bytes or an already parsed dict.

    Raises :class:`~cocokit.errors.InputError` (with the file and JSON path) when the
    input is not a readable COCO document, and
    :class:`~cocokit.errors.JSONSyntaxError` (line and column) when it is not JSON.
    """
    file: str | None = name
    if isinstance(source, (str, os.PathLike)):
        file = name or os.fspath(source)
        try:
            data: bytes = Path(source).read_bytes()
        except FileNotFoundError:
            raise InputError(file, None, "no such file") from None
        except IsADirectoryError:
            raise InputError(file, None, "is a directory, expected a COCO JSON file") from None
        except OSError as e:
            raise InputError(file, None, f"cannot read: {e.strerror or e}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, Mapping):
        data = msgspec.json.encode(source, enc_hook=_enc_hook)
    else:
        raise TypeError(f"cannot load a dataset from {type(source).__name__}")
    return _parse(data, file)


load = read_coco


def _parse(data: bytes, file: str | None) -> Dataset:
    try:
        top = msgspec.json.decode(data, type=dict[str, Raw])
    except msgspec.ValidationError as e:
        raise InputError(file, None, f"expected a JSON object at the top level ({e})") from None
    except msgspec.DecodeError as e:
        raise _decode_error(e, data, file, "") from None
    for key in ("images", "annotations", "categories"):
        raw = top.get(key)
        if raw is not None and bytes(memoryview(raw)[:1]) not in (b"[",):
            # whitespace before the value is not kept in Raw, so the first byte decides
            raise InputError(file, key, f"expected an array, got {bytes(memoryview(raw)[:20])!r}")
    with gc_paused():
        # the (small) images array is copied so its extra keys do not pin the whole file
        images = Images.concat(
            _decode_section(Raw(bytes(top.get("images", Raw(b"[]")))), image_decoder(file), data)
        )
        annotations = Annotations.concat(
            _decode_section(top.get("annotations", Raw(b"[]")), annotation_decoder(file), data)
        )
    try:
        cats = msgspec.json.decode(top.get("categories", Raw(b"[]")), type=list[dict[str, Any]])
    except msgspec.ValidationError as e:
        raise _decode_error(e, data, file, "categories") from None
    for i, c in enumerate(cats):
        for key, typ in (("id", int), ("name", str)):
            if key not in c:
                raise InputError(file, f"categories[{i}]", f"missing required key `{key}`")
            if not isinstance(c[key], typ) or isinstance(c[key], bool):
                raise InputError(
                    file,
                    f"categories[{i}].{key}",
                    f"expected {typ.__name__}, got {type(c[key]).__name__}",
                )
    extra = {
        k: msgspec.json.decode(v)
        for k, v in top.items()
        if k not in ("images", "annotations", "categories")
    }
    return Dataset(images, annotations, Categories(cats), extra, list(top), source=file)


def tables_from_records(
    images: Sequence[Mapping[str, Any]], annotations: Sequence[Mapping[str, Any]]
) -> tuple[Images, Annotations]:
    """Images and Annotations tables from plain record dicts (as the builder makes)."""
    img_raw = msgspec.json.encode(list(images), enc_hook=_enc_hook)
    ann_raw = msgspec.json.encode(list(annotations), enc_hook=_enc_hook)
    imgs = _decode_section(Raw(img_raw), image_decoder(None), img_raw)
    anns = _decode_section(Raw(ann_raw), annotation_decoder(None), ann_raw)
    return Images.concat(imgs), Annotations.concat(anns)


# -- writing ---------------------------------------------------------------------------


def _enc_hook(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write a value of type {type(obj).__name__} as JSON")


_ENCODER = msgspec.json.Encoder(enc_hook=_enc_hook)


@dataclasses.dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    path: str | None
    images: int
    annotations: int
    categories: int
    dropped_negative_images: int
    computed_bbox: int
    computed_area: int


@dataclasses.dataclass
class _Plan:
    image_rows: np.ndarray
    ann_rows: np.ndarray
    image_ids: np.ndarray
    ann_ids: np.ndarray
    ann_image_ids: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    dropped: int
    computed_bbox: int
    computed_area: int


def check_policy(option: str, value: str) -> None:
    """Refuse an id policy other than auto or keep."""
    if value not in ("auto", "keep"):
        raise OptionError(option, value, "'auto' or 'keep'")


def _duplicates(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose id repeats an earlier row, and the row of that first occurrence."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    dup = np.flatnonzero(s[1:] == s[:-1]) + 1
    first_pos = np.maximum.accumulate(np.where(np.r_[True, s[1:] != s[:-1]], np.arange(len(s)), 0))
    return order[dup], order[first_pos[dup]]


def duplicate_id_problems(ids: np.ndarray, section: str, what: str, why: str = "") -> list[str]:
    """One problem line per row whose id repeats an earlier one."""
    dup_rows, first_rows = _duplicates(ids)
    suffix = f"; {why}" if why else ""
    return [
        f"{section}[{r}].id: duplicate {what} id {int(ids[r])} (first at {section}[{f}]){suffix}"
        for r, f in zip(dup_rows.tolist(), first_rows.tolist())
    ]


def annotation_problems(
    anns: Annotations, start: int, image_index: np.ndarray, category_index: np.ndarray
) -> list[str]:
    """Dangling references and non-finite values of a run of annotations (rows from ``start``)."""
    problems: list[str] = []
    for r in np.flatnonzero(image_index < 0).tolist():
        problems.append(
            f"annotations[{start + r}].image_id: image id {int(anns.image_id[r])} names no image"
        )
    for r in np.flatnonzero(category_index < 0).tolist():
        problems.append(
            f"annotations[{start + r}].category_id: category id "
            f"{int(anns.category_id[r])} is not in categories"
        )
    nan = np.isnan(anns.bbox)
    bad_box = np.isinf(anns.bbox).any(axis=1) | (nan.any(axis=1) & ~nan.all(axis=1))
    for r in np.flatnonzero(bad_box).tolist():
        problems.append(
            f"annotations[{start + r}].bbox: non-finite value in {anns.bbox[r].tolist()}"
        )
    for r in np.flatnonzero(np.isinf(anns.area)).tolist():
        problems.append(f"annotations[{start + r}].area: non-finite value {anns.area[r]}")
    return problems


def complete_geometry(
    bbox: np.ndarray, area: np.ndarray, seg: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Fill missing boxes (from the segmentation) and areas (pycocotools pixel area, else w*h).

    Returns the new bbox and area arrays and how many of each were computed.
    """
    has_seg = np.array([s is not None for s in seg], bool) if len(seg) else np.zeros(0, bool)
    need_box = np.isnan(bbox[:, 0]) & has_seg
    if need_box.any():
        bbox = bbox.copy()
        bbox[need_box] = segmentation_bboxes(seg[need_box], heights[need_box], widths[need_box])
    need_area = np.isnan(area)
    computed_area = 0
    if need_area.any():
        area = area.copy()
        seg_rows = need_area & has_seg
        if seg_rows.any():
            area[seg_rows] = segmentation_areas(seg[seg_rows], heights[seg_rows], widths[seg_rows])
        box_rows = np.isnan(area) & ~np.isnan(bbox[:, 0])
        area[box_rows] = bbox[box_rows, 2] * bbox[box_rows, 3]
        computed_area = int(np.count_nonzero(~np.isnan(area[need_area])))
    return bbox, area, int(need_box.sum()), computed_area


def plan_export(
    ds: Dataset,
    *,
    image_ids: IdPolicy = "auto",
    annotation_ids: IdPolicy = "auto",
    ignore_negative_samples: bool = False,
    target: str | None = None,
) -> _Plan:
    """Check integrity and work out ids, boxes and areas of an export (nothing is written)."""
    check_policy("image_ids", image_ids)
    check_policy("annotation_ids", annotation_ids)
    images, anns, cats = ds.images, ds.annotations, ds.categories
    img_idx = ds.image_index
    if ignore_negative_samples:
        image_rows = np.flatnonzero(ds.annotation_counts > 0)
    else:
        image_rows = np.arange(len(images))

    problems: list[str] = []
    if image_ids == "keep":
        problems += duplicate_id_problems(images.id, "images", "image", "ids must be unique")
    else:
        referenced = np.isin(images.id, anns.image_id)
        problems += [
            p
            for p, r in zip(
                duplicate_id_problems(
                    images.id, "images", "image", "annotations that reference it are ambiguous"
                ),
                referenced[_duplicates(images.id)[0]].tolist(),
            )
            if r
        ]
    problems += duplicate_id_problems(cats.id, "categories", "category")
    problems += annotation_problems(anns, 0, img_idx, ds.category_index)
    if annotation_ids == "keep":
        problems += duplicate_id_problems(anns.id, "annotations", "annotation")
    if problems:
        raise IntegrityError(problems, target)

    keep_img = np.zeros(len(images), bool)
    keep_img[image_rows] = True
    ann_rows = np.flatnonzero(keep_img[img_idx])
    if image_ids == "auto":
        new_image_id = np.zeros(len(images), np.int64)
        new_image_id[image_rows] = np.arange(1, len(image_rows) + 1)
        out_image_ids = new_image_id[image_rows]
        ann_image_ids = new_image_id[img_idx[ann_rows]]
    else:
        out_image_ids = images.id[image_rows]
        ann_image_ids = anns.image_id[ann_rows]
    out_ann_ids = (
        np.arange(1, len(ann_rows) + 1, dtype=np.int64)
        if annotation_ids == "auto"
        else anns.id[ann_rows]
    )
    rows_img = img_idx[ann_rows]
    bbox, area, n_box, n_area = complete_geometry(
        anns.bbox[ann_rows],
        anns.area[ann_rows],
        anns.segmentation[ann_rows],
        images.height[rows_img],
        images.width[rows_img],
    )
    return _Plan(
        image_rows,
        ann_rows,
        out_image_ids,
        out_ann_ids,
        ann_image_ids,
        bbox,
        area,
        len(images) - len(image_rows),
        n_box,
        n_area,
    )


def _out_struct(name: str, known: Sequence[str], extras: Sequence[str]) -> type:
    fields = [(f"k{i}", Any, UNSET) for i in range(len(known))]
    fields += [(f"x{j}", Any, UNSET) for j in range(len(extras))]
    rename = {f"k{i}": k for i, k in enumerate(known)}
    rename.update({f"x{j}": k for j, k in enumerate(extras)})
    return msgspec.defstruct(name, fields, rename=rename)


def _unset_where(values: list[Any], mask: np.ndarray) -> list[Any]:
    if mask.any():
        for i in np.flatnonzero(mask).tolist():
            values[i] = UNSET
    return values


class RecordEncoder:
    """Encodes runs of table rows as JSON records, run after run.

    The unknown keys of the records become fields of the output struct in the order they
    are first seen, so encoding a table whole or in runs gives the same bytes.
    """

    def __init__(self, name: str, known: Sequence[str]) -> None:
        self.name = name
        self.known = tuple(known)
        self.extra_keys: list[str] = []
        self.slot: dict[str, str] = {}
        self.out = _out_struct(name, self.known, self.extra_keys)

    def _objects(self, columns: list[list[Any]], extra: np.ndarray) -> list[Any]:
        out = self.out
        objs = list(map(out, *columns))  # one struct per row, built in C
        has = [i for i, d in enumerate(extra.tolist()) if d]
        if not has:
            return objs
        new = [k for i in has for k in extra[i] if k not in self.slot and k not in self.known]
        if new:
            for k in dict.fromkeys(new):
                self.slot[k] = f"x{len(self.extra_keys)}"
                self.extra_keys.append(k)
            self.out = _out_struct(self.name, self.known, self.extra_keys)
            objs = list(map(self.out, *columns))
        for i in has:
            for k, v in extra[i].items():
                if k in self.slot:
                    setattr(objs[i], self.slot[k], v)
        return objs

    def encode(self, columns: list[list[Any]], extra: np.ndarray) -> bytes:
        """The records as comma-separated JSON objects (no brackets)."""
        return _ENCODER.encode(self._objects(columns, extra))[1:-1]


def image_columns(imgs: Images, rows: np.ndarray, ids: np.ndarray) -> list[list[Any]]:
    """Output columns of image rows, with the given output ids."""
    return [
        ids.tolist(),
        imgs.file_name[rows].tolist(),
        imgs.width[rows].tolist(),
        imgs.height[rows].tolist(),
    ]


_IMAGE_KEYS = ("id", "file_name", "width", "height")
_ANN_KEYS = (
    "id",
    "image_id",
    "category_id",
    "segmentation",
    "area",
    "bbox",
    "iscrowd",
    "keypoints",
    "num_keypoints",
)


def annotation_columns(
    anns: Annotations,
    rows: np.ndarray,
    ids: np.ndarray,
    image_ids: np.ndarray,
    bbox: np.ndarray,
    area: np.ndarray,
) -> list[list[Any]]:
    """Output columns of annotation rows, with output ids and the completed bbox/area."""
    crowd = anns.iscrowd[rows]
    nkp = anns.num_keypoints[rows]
    return [
        ids.tolist(),
        image_ids.tolist(),
        anns.category_id[rows].tolist(),
        [UNSET if s is None else s for s in anns.segmentation[rows].tolist()],
        _unset_where(area.tolist(), np.isnan(area)),
        _unset_where(bbox.tolist(), np.isnan(bbox[:, 0])),
        _unset_where(crowd.tolist(), crowd < 0),
        [UNSET if k is None else k for k in anns.keypoints[rows].tolist()],
        _unset_where(nkp.tolist(), nkp < 0),
    ]


def _iter_array(
    key: str, ds: Dataset, plan: _Plan, progress: Callable[[int], None]
) -> Iterator[bytes]:
    if key == "images":
        enc = RecordEncoder("Image", _IMAGE_KEYS)
        rows, n = plan.image_rows, len(plan.image_rows)
    else:
        enc = RecordEncoder("Annotation", _ANN_KEYS)
        rows, n = plan.ann_rows, len(plan.ann_rows)
    for s in range(0, n, _WRITE_CHUNK):
        r = rows[s : s + _WRITE_CHUNK]
        sl = slice(s, s + _WRITE_CHUNK)
        if key == "images":
            cols = image_columns(ds.images, r, plan.image_ids[sl])
            extra = ds.images.extra[r]
        else:
            cols = annotation_columns(
                ds.annotations,
                r,
                plan.ann_ids[sl],
                plan.ann_image_ids[sl],
                plan.bbox[sl],
                plan.area[sl],
            )
            extra = ds.annotations.extra[r]
        if s:
            yield b","
        yield enc.encode(cols, extra)
        progress(len(r))


def _iter_document(ds: Dataset, plan: _Plan, progress: Progress | None) -> Iterator[bytes]:
    total = len(plan.image_rows) + len(plan.ann_rows)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    bodies = {key: (lambda key=key: _iter_array(key, ds, plan, advance))
              for key in ("images", "annotations")}
    yield from iter_document(ds.key_order, bodies, ds.categories, ds.extra)


def iter_document(
    key_order: Sequence[str],
    bodies: Mapping[str, Callable[[], Iterator[bytes]]],
    categories: Categories,
    extra: Mapping[str, Any],
    before_close: Callable[[], None] | None = None,
) -> Iterator[bytes]:
    """The bytes of a COCO document, top-level keys in ``key_order``.

    ``bodies["images"]`` and ``bodies["annotations"]`` yield the records of those arrays
    (comma-separated, without brackets); categories and the other keys are encoded as
    they are. ``before_close`` runs before the closing brace, so a caller can still
    refuse the document (by raising) after the last record.
    """
    yield b"{"
    for n, key in enumerate(key_order):
        yield (b"," if n else b"") + _ENCODER.encode(key) + b":"
        if key in bodies:
            yield b"["
            yield from bodies[key]()
            yield b"]"
        elif key == "categories":
            yield _ENCODER.encode(list(categories.records))
        else:
            yield _ENCODER.encode(extra[key])
    if before_close is not None:
        before_close()
    yield b"}"


def _paused(chunks: Iterator[bytes]) -> Iterator[bytes]:
    with gc_paused():
        yield from chunks


def atomic_write(path: str | os.PathLike[str], chunks: Iterator[bytes] | Sequence[bytes]) -> None:
    """Write chunks to a temporary file beside ``path``, then rename it over ``path``.

    A failure (including one raised by the chunk iterator) removes the temporary file
    and leaves any existing ``path`` untouched.
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(str(target), None, f"output folder {str(directory)!r} does not exist")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _document(
    ds: Dataset,
    image_ids: IdPolicy,
    annotation_ids: IdPolicy,
    ignore_negative_samples: bool,
    indent: int | None,
    progress: Progress | None,
    target: str | None,
) -> tuple[Iterator[bytes] | list[bytes], _Plan]:
    plan = plan_export(
        ds,
        image_ids=image_ids,
        annotation_ids=annotation_ids,
        ignore_negative_samples=ignore_negative_samples,
        target=target,
    )
    chunks = _paused(_iter_document(ds, plan, progress))
    if indent:
        return [msgspec.json.format(b"".join(chunks), indent=indent)], plan
    return chunks, plan


def write_coco(
    ds: Dataset,
    path: str | os.PathLike[str],
    *,
    image_ids: IdPolicy = "auto",
    annotation_ids: IdPolicy = "auto",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write ``ds`` as COCO JSON to ``path`` under the export contract.

    ``image_ids``: ``"auto"`` numbers images 1..N in dataset order, ``"keep"`` keeps the
    ids (duplicates are refused). ``annotation_ids`` likewise (1..M in table order).
    Annotations follow their images. ``ignore_negative_samples`` drops images without
    annotations. Missing bbox and area are computed from the segmentation (area as
    pycocotools computes it). Integrity is checked first: on any problem
    :class:`~cocokit.errors.IntegrityError` is raised and nothing is written. The file
    is written to a temporary name and renamed, so writing over the input is safe.
    ``progress(done, total)`` is called as records are written.
    """
    target = os.fspath(path)
    chunks, plan = _document(
        ds, image_ids, annotation_ids, ignore_negative_samples, indent, progress, target
    )
    atomic_write(path, chunks)
    return _summary(target, ds, plan)


def _summary(target: str | None, ds: Dataset, plan: _Plan) -> ExportSummary:
    return ExportSummary(
        target,
        len(plan.image_rows),
        len(plan.ann_rows),
        len(ds.categories),
        plan.dropped,
        plan.computed_bbox,
        plan.computed_area,
    )


def to_json(
    ds: Dataset,
    *,
    image_ids: IdPolicy = "auto",
    annotation_ids: IdPolicy = "auto",
    ignore_negative_samples: bool = False,
    indent: int | None = None,
) -> bytes:
    """The COCO document as JSON bytes, under the same contract as :func:`write_coco`."""
    chunks, _ = _document(
        ds, image_ids, annotation_ids, ignore_negative_samples, indent, None, None
    )
    return b"".join(chunks)


def to_dict(
    ds: Dataset,
    *,
    image_ids: IdPolicy = "auto",
    annotation_ids: IdPolicy = "auto",
    ignore_negative_samples: bool = False,
) -> dict[str, Any]:
    """The COCO document as plain Python data, under the same contract as :func:`write_coco`."""
    out: dict[str, Any] = msgspec.json.decode(
        to_json(
            ds,
            image_ids=image_ids,
            annotation_ids=annotation_ids,
            ignore_negative_samples=ignore_negative_samples,
        )
    )
    return out
