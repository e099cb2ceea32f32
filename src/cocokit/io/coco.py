"""Read and write COCO JSON.

Reading decodes each top-level array once with msgspec into typed records: the fields
the model knows become numpy columns, and every other key is kept as its raw JSON
text (``msgspec.Raw``), which is written back byte for byte. Segmentations and
keypoints stay as raw JSON too, so a file round-trips without parsing a single
polygon coordinate.

Writing follows the export contract: ids ``keep`` (the default) or ``auto``, categories passed
through, negatives kept or dropped, numpy values encoded as plain JSON numbers (a bbox
value or area read as an integer written as one while it is whole, see
:func:`~cocokit.dataset.numbers_as_read`),
referential integrity checked before a byte is written, and an atomic rename at the
end so a failure never leaves a partial file or damages an existing one.
:func:`write_coco` writes a loaded dataset, or a file of any size read in runs (a
:class:`~cocokit.io.stream.CocoStream`, or a :class:`FilteredStream`) in bounded memory,
with the same checks and the same bytes.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, getitem, is_
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec
import numpy as np
from msgspec import UNSET, Raw, UnsetType

from ..contract import (
    ISCROWD_AS_READ,
    Checked,
    InvalidPolicy,
    Start,
    bad_file_names,
    category_warnings,
    check_annotations,
    check_image_sizes,
    check_invalid,
    keypoint_value_counts,
    place,
)
from ..dataset import (
    AREA_INT,
    Annotations,
    Categories,
    Dataset,
    Images,
    Origin,
    filled_areas,
    gc_paused,
    lookup,
    numbers_as_read,
    present,
    unique,
)
from ..errors import InputError, IntegrityError, JSONSyntaxError, OptionError
from ..geometry import segmentation_bboxes
from . import files, sniff
from .atomic import is_gzip_name
from .idmap import IdMap
from .jsontext import NotAnObject, decode_extra, line_column, out_of_range_reason, read_top

if TYPE_CHECKING:  # pragma: no cover
    from .stream import CocoStream

__all__ = [
    "DEFAULT_IDS",
    "ExportSummary",
    "FilteredStream",
    "IdPolicy",
    "load",
    "read_coco",
    "screen_export",
    "tables_from_records",
    "to_dict",
    "to_json",
    "write_coco",
]

IdPolicy = Literal["auto", "keep"]
#: The id policy of every writer (library and CLI) unless told otherwise: ids are written
#: as they are, so what was made against them (predictions, results) still matches.
DEFAULT_IDS: IdPolicy = "keep"
T = TypeVar("T")
Progress = Callable[[int, int], None]

_CHUNK = 50_000
# records encoded at a time: each run's text (and its copy) is alive at once while written
_WRITE_CHUNK = 10_000
_MAX_EXTRA_KEYS = 256
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`$")
_AT = re.compile(r" - at `\$(.*)`$")
_BYTE = re.compile(r"\(byte (\d+)\)")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_OUT_OF_INT64 = "integer beyond the int64 range (-2**63 .. 2**63 - 1)"

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
    # int | float: an integer stays an int, so whether it was written as one is known
    # (Annotations.int_text); both decode as fast as float alone
    ("area", int | float, False),
    ("bbox", list[int | float], False),
    ("iscrowd", int, False),
    ("keypoints", Raw, False),
    ("num_keypoints", int, False),
]


# what an absent optional field decodes to: the value its column holds for "absent"
# (so a column is read straight off the records, without a test per record)
# (iscrowd: a value no file holds, so an iscrowd of -1 as read is told from none)
_NO_CROWD = -(2**63)
_ABSENT: dict[str, Any] = {
    "area": float("nan"),
    "bbox": (float("nan"),) * 4,
    "iscrowd": _NO_CROWD,
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


def _decode_error(
    e: msgspec.DecodeError, data: bytes | memoryview, file: str | None, section: str, base: int = 0
) -> InputError:
    msg = str(e)
    if isinstance(e, msgspec.DecodeError) and not isinstance(e, msgspec.ValidationError):
        m = _BYTE.search(msg)
        offset = base + int(m.group(1)) if m else 0
        line, col = line_column(data, offset)
        text = _BYTE.sub("", msg).replace("JSON is malformed: ", "").strip()
        return JSONSyntaxError(file, line, col, text)
    m = _AT.search(msg)
    where = section + (m.group(1) if m else "")
    # bbox and area are decoded as int | float (to know the integers); they are floats
    text = _AT.sub("", msg).replace("`int | float`", "`float`")
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
        except msgspec.DecodeError:
            return self.decode(msgspec.json.decode(text, type=list[Raw]), start)
        return self.build(recs, self.extras, start)

    def decode(self, items: Sequence[Raw], start: int) -> T:
        """A table of the records ``items``, the first being record ``start`` of the section."""
        try:
            recs = list(map(self.dec.decode, items))
        except msgspec.DecodeError:
            recs = []
            for i, r in enumerate(items, start):
                while True:
                    try:
                        recs.append(self.dec.decode(r))
                        break
                    except msgspec.ValidationError as e:
                        self._learn(e, i)
                    except msgspec.DecodeError as e:
                        raise InputError(
                            self.file, f"{self.section}[{i}]", _BYTE.sub("", str(e)).strip()
                        ) from None
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
    return RecordDecoder(
        "images", file, lambda recs, extras, start: _images_table(recs, extras, start, file)
    )


def annotation_decoder(file: str | None) -> RecordDecoder[Annotations]:
    """A decoder of annotation records into :class:`Annotations` tables."""
    return RecordDecoder(
        "annotations",
        file,
        lambda recs, extras, start: _annotations_table(recs, extras, start, file),
    )


def _decode_section(raw: Raw, dec: RecordDecoder[T], whole: bytes) -> list[T]:
    """Decode a whole array of records in runs of ``_CHUNK`` (one run of objects alive)."""
    return _decode_runs(_raw_records(raw, dec, whole), dec)


def _raw_records(raw: Raw, dec: RecordDecoder[Any], whole: bytes) -> list[Raw]:
    """The records of an array, undecoded."""
    try:
        return msgspec.json.decode(raw, type=list[Raw])
    except msgspec.ValidationError as e:
        raise _decode_error(e, whole, dec.file, dec.section) from None


def _decode_runs(items: list[Raw], dec: RecordDecoder[T],
                 decoded: Callable[[int], None] | None = None) -> list[T]:
    """Tables of ``items`` in runs of ``_CHUNK``; ``decoded(n)`` after each run of n."""
    out = []
    for s in range(0, len(items), _CHUNK):
        out.append(dec.decode(items[s : s + _CHUNK], s))
        if decoded is not None:
            decoded(min(_CHUNK, len(items) - s))
    return out


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


def _int_column(
    values: list[Any], dtype: Any, section: str, key: str, start: int, file: str | None
) -> np.ndarray:
    """``values`` (Python ints) as a numpy column; one out of its range is an InputError."""
    try:
        return np.array(values, dtype)
    except OverflowError:
        info = np.iinfo(dtype)
        i = next(i for i, v in enumerate(values) if not info.min <= v <= info.max)
        what = _OUT_OF_INT64 if info.bits == 64 else f"integer {values[i]} out of range"
        raise InputError(file, f"{section}[{start + i}].{key}", what) from None


class _Where:
    """Where a run of records lies, for the message of a value out of its column's range."""

    def __init__(self, section: str, start: int, file: str | None) -> None:
        self.section, self.start, self.file = section, start, file


def _column(recs: list[Any], field: str, dtype: Any = np.int64, key: str = "",
            where: _Where | None = None) -> np.ndarray:
    """One field of every record as a column (read straight off the records, in C)."""
    try:
        return np.fromiter(map(attrgetter(field), recs), dtype, count=len(recs))
    except OverflowError:
        if where is None:
            raise
        values = list(map(attrgetter(field), recs))
        return _int_column(values, dtype, where.section, key, where.start, where.file)


def _objects(recs: list[Any], field: str) -> np.ndarray:
    # fromiter: assigning a list to an object array would probe each Raw as a buffer
    return np.fromiter(
        (None if v is UNSET else v for v in map(attrgetter(field), recs)), object, len(recs)
    )


def _images_table(
    recs: list[Any], extras: list[str], start: int = 0, file: str | None = None
) -> Images:
    at = _Where("images", start, file)
    return Images(
        id=_column(recs, "k0", key="id", where=at),
        file_name=np.fromiter(map(attrgetter("k1"), recs), object, len(recs)),
        width=_column(recs, "k2", key="width", where=at),
        height=_column(recs, "k3", key="height", where=at),
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
    try:
        bbox = np.fromiter(chain.from_iterable(boxes), np.float64, count=4 * n).reshape(n, 4)
        area = _column(recs, "k4", np.float64)
    except OverflowError:  # an integer beyond float64: refused as msgspec refuses a float
        raise _beyond_float(recs, start, file) from None
    at = _Where("annotations", start, file)
    extra = _extra_column(recs, extras)
    return Annotations(
        id=_column(recs, "k0", key="id", where=at),
        image_id=_column(recs, "k1", key="image_id", where=at),
        category_id=_column(recs, "k2", key="category_id", where=at),
        bbox=bbox,
        area=area,
        iscrowd=_iscrowd_column(_column(recs, "k6", key="iscrowd", where=at), extra),
        segmentation=_objects(recs, "k3"),
        keypoints=_objects(recs, "k7"),
        num_keypoints=_column(recs, "k8", key="num_keypoints", where=at),
        extra=extra,
        int_text=_int_text(recs, boxes, bbox, area),
    )


def _int_text(recs: list[Any], boxes: list[Any], bbox: np.ndarray,
              area: np.ndarray) -> np.ndarray:
    """The :attr:`~cocokit.dataset.Annotations.int_text` column: which bbox values and
    areas were read as JSON integers. Only a whole number can have been one, so the type
    of the decoded value is asked of those alone (in C): a file of fractional boxes costs
    a vectorized comparison and a look at its few whole values. Where every value is
    whole, one ``sum`` says whether all are integers (a sum of ints alone is an int)."""
    n = len(recs)
    out = np.zeros(n, np.uint8)
    whole = np.flatnonzero(bbox == np.trunc(bbox))
    if len(whole) == 4 * n and type(sum(chain.from_iterable(boxes))) is int:
        out[:] = 15
    else:
        if len(whole) > n:  # mostly whole: every value's type at once
            ints = np.fromiter(map(is_, map(type, chain.from_iterable(boxes)), repeat(int)),
                               bool, count=4 * n)
        else:
            ints = np.zeros(4 * n, bool)
            ints[whole] = np.fromiter(
                map(is_, map(type, map(getitem, map(boxes.__getitem__, (whole >> 2).tolist()),
                                       (whole & 3).tolist())), repeat(int)),
                bool, count=len(whole))
        if ints.any():
            for j, col in enumerate(ints.reshape(n, 4).T):  # bit j: value j of the box
                out |= col.view(np.uint8) << np.uint8(j)
    rows = np.flatnonzero(area == np.trunc(area))
    if len(rows) == n and type(sum(map(attrgetter("k4"), recs))) is int:
        out |= np.uint8(AREA_INT)
    elif len(rows):
        hit = np.fromiter(
            map(is_, map(type, map(attrgetter("k4"), map(recs.__getitem__, rows.tolist()))),
                repeat(int)),
            bool, count=len(rows))
        out[rows[hit]] |= np.uint8(AREA_INT)
    return out


def _beyond_float(recs: list[Any], start: int, file: str | None) -> InputError:
    """The error of the first bbox or area value of ``recs`` beyond float64."""
    for i, r in enumerate(recs):
        for where, v in [*((f"bbox[{j}]", x) for j, x in enumerate(r.k5)), ("area", r.k4)]:
            try:
                float(v)
            except OverflowError:
                return InputError(file, f"annotations[{start + i}].{where}",
                                  "Number out of range")
    raise AssertionError("no value beyond float64")  # pragma: no cover


def _iscrowd_column(values: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """The int8 iscrowd column of the int64 values read: -1 where absent; a value other
    than 0 or 1 is :data:`~cocokit.contract.ISCROWD_AS_READ` there and kept as read in
    the record's ``extra`` (the export contract refuses it; nothing is rewritten)."""
    odd = (values != 0) & (values != 1)
    if not odd.any():
        return values.astype(np.int8)
    absent = values == _NO_CROWD
    out = np.where(absent, -1, np.where(odd, ISCROWD_AS_READ, values)).astype(np.int8)
    for i in np.flatnonzero(odd & ~absent).tolist():
        extra[i] = {**(extra[i] or {}), "iscrowd": Raw(str(int(values[i])).encode())}
    return out


def read_coco(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview | Mapping[str, Any],
    *,
    name: str | None = None,
    progress: Progress | None = None,
) -> Dataset:
    """Read a COCO document from a path, JSON bytes or an already parsed dict.

    A path may be a URL (``s3://``, ``memory://``: read through fsspec); a gzip file
    (``.json.gz``, or any file or bytes that start as gzip does) is decompressed.

    ``progress(done, total)`` is called after each run of records decoded (images and
    annotations together).

    Raises :class:`~cocokit.errors.InputError` (with the file and JSON path) when the
    input is not a readable COCO document, and
    :class:`~cocokit.errors.JSONSyntaxError` (line and column) when it is not JSON.
    """
    file: str | None = name
    if isinstance(source, (str, os.PathLike)) and (
            files.is_url(source) or is_gzip_name(source)):
        file = name or os.fspath(source)
        data: bytes = files.read_document(source)
    elif isinstance(source, (str, os.PathLike)):
        file = name or os.fspath(source)
        try:
            data = Path(source).read_bytes()
        except FileNotFoundError:
            raise InputError(file, None, "no such file") from None
        except IsADirectoryError:
            raise InputError(file, None, sniff.describe_path(file) or "is a directory") from None
        except OSError as e:
            raise InputError(file, None, f"cannot read: {e.strerror or e}") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, Mapping):
        data = msgspec.json.encode(source, enc_hook=_enc_hook)
    else:
        raise TypeError(f"cannot load a dataset from {type(source).__name__}")
    return _parse(files.decompress(data, file), file, progress)


load = read_coco


def _parse(data: bytes, file: str | None, progress: Progress | None = None) -> Dataset:
    try:
        top, keys, records = read_top(data, file)
    except NotAnObject as e:
        said = sniff.describe_bytes(data, file)
        raise InputError(file, None, said or e.message) from None
    except JSONSyntaxError:
        if (markup := sniff.describe_markup(data, file)) is not None:
            raise InputError(file, None, markup) from None
        raise
    if not sniff.is_coco_top(keys):
        raise InputError(file, None, sniff.describe_document(top) or "not a COCO dataset")
    for key in ("images", "annotations", "categories"):
        raw = top.get(key)
        if raw is not None and bytes(memoryview(raw)[:1]) not in (b"[",):
            # whitespace before the value is not kept in Raw, so the first byte decides
            raise InputError(file, key, f"expected an array, got {bytes(memoryview(raw)[:20])!r}")
    with gc_paused():
        img_dec, ann_dec = image_decoder(file), annotation_decoder(file)
        # the (small) images array is copied so its extra keys do not pin the whole file
        img_items = _raw_records(Raw(bytes(top.get("images", Raw(b"[]")))), img_dec, data)
        ann_items = records.get("annotations") or _raw_records(
            top.get("annotations", Raw(b"[]")), ann_dec, data)
        done, total = 0, len(img_items) + len(ann_items)

        def decoded(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done, total)

        images = Images.concat(_decode_runs(img_items, img_dec, decoded))
        del img_items
        annotations = Annotations.concat(_decode_runs(ann_items, ann_dec, decoded))
        del ann_items
    cats = decode_categories(top.get("categories", Raw(b"[]")), file)
    try:
        extra = {
            k: decode_extra(v, file, k)
            for k, v in top.items()
            if k not in ("images", "annotations", "categories")
        }
    except msgspec.DecodeError as e:
        raise InputError(file, None, f"malformed JSON: {e}") from None
    return Dataset(images, annotations, Categories(cats), extra, keys, source=file)


def decode_categories(raw: bytes | memoryview, file: str | None) -> list[dict[str, Any]]:
    """The categories array as dicts, each with an int64 ``id`` and a string ``name``."""
    try:
        cats = msgspec.json.decode(raw, type=list[dict[str, Any]])
    except msgspec.ValidationError as e:
        if "out of range" in str(e):
            raise InputError(file, "categories", out_of_range_reason("categories")) from None
        raise _decode_error(e, b"", file, "categories") from None
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
        if not _I64_MIN <= c["id"] <= _I64_MAX:
            raise InputError(file, f"categories[{i}].id", _OUT_OF_INT64)
    return cats


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
    """What an export wrote.

    ``skipped`` names every record left out because it was invalid (with
    ``invalid="skip"``), as ``path: why``; ``warnings`` what a reader of the output
    should know (a category id 0, ...).
    """

    path: str | None
    images: int
    annotations: int
    categories: int
    dropped_negative_images: int
    computed_bbox: int
    computed_area: int
    skipped: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    #: old and new ids of what was written (``--id-map``)
    id_map: IdMap | None = dataclasses.field(default=None, compare=False, repr=False)


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
    skipped: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


def check_policy(option: str, value: str) -> None:
    """Refuse an id policy other than auto or keep."""
    if value not in ("auto", "keep"):
        raise OptionError(option, value, "'auto' or 'keep'")


def duplicate_rows(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose id repeats an earlier row, and the row of that first occurrence."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    dup = np.flatnonzero(s[1:] == s[:-1]) + 1
    first_pos = np.maximum.accumulate(np.where(np.r_[True, s[1:] != s[:-1]], np.arange(len(s)), 0))
    return order[dup], order[first_pos[dup]]


def duplicate_id_problems(
    ids: np.ndarray, section: str, what: str, why: str = "", rows: np.ndarray | None = None,
    start: Start = 0,
) -> list[str]:
    """One problem line per row whose id repeats an earlier one.

    ``rows`` gives the row of each id (when ``ids`` are those of some rows only), named
    as ``start`` says (:data:`cocokit.contract.Start`).
    """
    dup_rows, first_rows = duplicate_rows(ids)
    suffix = f"; {why}" if why else ""

    def name(r: int) -> str:
        return place(section, start, r if rows is None else int(rows[r]))

    return [
        f"{name(r)}.id: duplicate {what} id {int(ids[r])} (first at {name(f)}){suffix}"
        for r, f in zip(dup_rows.tolist(), first_rows.tolist())
    ]


def renumber_hint(what: str) -> str:
    """The way out of a repeated id under ``keep``, for the end of a problem line
    (``what``: ``"image"`` or ``"annotation"``)."""
    return (f"ids must be unique: {what}_ids='auto' (CLI: --{what}-ids auto) "
            "renumbers them 1..N")


def kept_id_problems(
    ids: np.ndarray, section: str, what: str, rows: np.ndarray | None = None,
    start: Start = 0,
) -> list[str]:
    """:func:`duplicate_id_problems` for ids an export keeps: each line says how to
    renumber (:func:`renumber_hint`)."""
    return duplicate_id_problems(ids, section, what, renumber_hint(what), rows, start)


class ExportScreen:
    """The error checks of the export contract (:mod:`cocokit.contract`) under an
    ``invalid`` policy, over the records an export would write.

    With ``"error"`` every problem is collected (:meth:`refuse` raises them all); with
    ``"skip"`` the invalid records are left out and each is named in :attr:`skipped`.
    An invalid image takes its annotations with it; an invalid annotation only itself.
    The masks returned say which of the given rows to write.
    """

    def __init__(self, invalid: InvalidPolicy, target: str | None) -> None:
        check_invalid(invalid)
        self.invalid = invalid
        self.target = target
        self.errors: list[str] = []
        self.skipped: list[str] = []

    def _take(self, checked: Checked, n: int) -> np.ndarray:
        keep = np.ones(n, bool)
        if checked.ok:
            return keep
        if self.invalid == "error":
            self.errors += [f"{p.path}: {p.message} [{p.code}]" for p in checked.problems]
            return keep
        keep[checked.bad] = False
        first: dict[str, str] = {}
        for p in checked.problems:
            record = p.path.split("]", 1)[0] + "]"
            first.setdefault(record, p.code)
        self.skipped += [f"{record}: {code}" for record, code in first.items()]
        return keep

    def references(
        self, anns: Annotations, rows: np.ndarray, image_index: np.ndarray,
        category_index: np.ndarray, start: Start = 0,
    ) -> np.ndarray:
        """Which annotation ``rows`` name an image and a category that exist
        (``image_index``/``category_index``: per row of ``anns``, -1 for none); the
        rows are named as ``start`` says (:data:`cocokit.contract.Start`)."""
        img, cat = image_index[rows], category_index[rows]
        keep = (img >= 0) & (cat >= 0)
        if keep.all():
            return keep
        found = [(r, ".image_id", "dangling-image-id",
                  f"image id {int(anns.image_id[r])} names no image")
                 for r in rows[img < 0].tolist()]
        found += [(r, ".category_id", "dangling-category-id",
                   f"category id {int(anns.category_id[r])} is not in categories")
                  for r in rows[cat < 0].tolist()]
        if self.invalid == "error":
            self.errors += [f"{place('annotations', start, r)}{key}: {m} [{c}]"
                            for r, key, c, m in found]
            return keep
        first: dict[int, str] = {}
        for r, _, c, _ in sorted(found, key=lambda f: f[0]):
            first.setdefault(r, c)
        self.skipped += [f"{place('annotations', start, r)}: {code}"
                         for r, code in first.items()]
        return keep

    def images(
        self, widths: np.ndarray, heights: np.ndarray, rows: np.ndarray, start: Start = 0,
        file_names: np.ndarray | None = None,
    ) -> np.ndarray:
        """Which image ``rows`` (of columns ``widths``/``heights`` and, when given,
        ``file_names``) to write."""
        checked = check_image_sizes(widths, heights, rows, start, file_names)
        return self._take(checked, len(rows))

    def annotations(
        self,
        anns: Annotations,
        rows: np.ndarray,
        heights: np.ndarray,
        widths: np.ndarray,
        start: Start = 0,
        categories: Categories | None = None,
    ) -> np.ndarray:
        """Which annotation ``rows`` to write; ``heights``/``widths`` of their images,
        ``categories`` the ones written (for their keypoint names)."""
        counts = (None if categories is None
                  else keypoint_value_counts(categories, anns.category_id[rows]))
        checked = check_annotations(anns, heights, widths, rows, start, counts)
        return self._take(checked, len(rows))

    def dropped_with_images(self, ann_rows: np.ndarray, image_rows: np.ndarray,
                            start: Start = 0, image_start: Start = 0) -> None:
        """Name annotations left out because their (invalid) image was."""
        self.skipped += [
            f"{place('annotations', start, a)}: its image {place('images', image_start, i)} "
            "was skipped"
            for a, i in zip(ann_rows.tolist(), image_rows.tolist())
        ]

    def refuse(self, problems: Sequence[str] = ()) -> None:
        """Raise :class:`~cocokit.errors.IntegrityError` for ``problems`` and the errors."""
        # (a transform's copies of one record are named by that record: said once)
        found = list(dict.fromkeys([*problems, *self.errors]))
        if found:
            raise IntegrityError(found, self.target)


def complete_geometry(
    bbox: np.ndarray, area: np.ndarray, seg: np.ndarray, heights: np.ndarray, widths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Fill missing boxes (from the segmentation) and areas (a polygon's shoelace area, a
    mask's pixel count, as validate checks them: :func:`~cocokit.geometry.annotation_areas`;
    else w*h).

    Returns the new bbox and area arrays and how many of each were computed.
    """
    has_seg = present(seg)
    need_box = np.isnan(bbox[:, 0]) & has_seg
    if need_box.any():
        bbox = bbox.copy()
        bbox[need_box] = segmentation_bboxes(seg[need_box], heights[need_box], widths[need_box])
    area, computed_area = filled_areas(area, bbox, seg, np.arange(len(seg)), heights, widths)
    return bbox, area, int(need_box.sum()), computed_area


@dataclasses.dataclass
class Screened:
    """The rows an export writes, after the integrity and error checks."""

    image_rows: np.ndarray
    ann_rows: np.ndarray
    dropped: int  # images without annotations left out (ignore_negative_samples)
    skipped: list[str]  # records left out as invalid (invalid="skip"), as "path: why"
    warnings: list[str]


def screen_export(
    ds: Dataset,
    *,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    target: str | None = None,
    invalid: InvalidPolicy = "error",
    start: tuple[int, int] = (0, 0),
) -> Screened:
    """The export contract's checks of ``ds``: which image and annotation rows to write.

    Integrity (unique ids under ``keep``, references that resolve) and the error checks
    of :mod:`cocokit.contract` run over the records that would be written: images left
    out by ``ignore_negative_samples`` are not checked, annotation ids that ``auto``
    renumbers may repeat. ``invalid``: ``"error"`` refuses a dataset with any problem
    (:class:`~cocokit.errors.IntegrityError` listing them), ``"skip"`` leaves the invalid
    records out (an invalid image with its annotations) and names each in ``skipped``;
    integrity problems refuse in both cases. ``start`` offsets the image and annotation
    rows named in messages (a part of a larger input); a transform's result is named by
    where its records were read (:attr:`~cocokit.dataset.Dataset.origin`:
    ``in.json: annotations[10].iscrowd``), so the record can be found.
    """
    check_policy("image_ids", image_ids)
    check_policy("annotation_ids", annotation_ids)
    screen = ExportScreen(invalid, target)
    images, anns, cats = ds.images, ds.annotations, ds.categories
    img0: Start
    ann0: Start
    img0, ann0 = start
    if ds.origin is not None and start == (0, 0):
        img0 = ann0 = ds.origin
    img_idx = ds.image_index
    if ignore_negative_samples:
        candidates = np.flatnonzero(ds.annotation_counts > 0)
    else:
        candidates = np.arange(len(images))

    problems: list[str] = []
    problems += duplicate_id_problems(cats.id, "categories", "category")
    resolves = screen.references(anns, np.arange(len(anns)), img_idx, ds.category_index, ann0)

    # images: the candidates, less the invalid ones
    keep_img = np.zeros(len(images), bool)
    keep_img[candidates] = screen.images(images.width, images.height, candidates, img0,
                                         images.file_name)
    image_rows = np.flatnonzero(keep_img)
    invalid_images = len(candidates) - len(image_rows)
    # annotations of the images written, less the invalid ones
    # (an annotation without an image has resolves False, so its row here is moot)
    kept_image = np.zeros(len(anns), bool)
    has_img = img_idx >= 0
    kept_image[has_img] = keep_img[img_idx[has_img]]
    if invalid_images:
        lost = np.flatnonzero(resolves & ~kept_image)
        lost = lost[np.isin(img_idx[lost], candidates)]
        screen.dropped_with_images(lost, img_idx[lost], ann0, img0)
    rows = np.flatnonzero(resolves & kept_image)
    ok = screen.annotations(
        anns, rows, images.height[img_idx[rows]], images.width[img_idx[rows]], ann0, cats
    )
    ann_rows = rows[ok]
    if ignore_negative_samples and len(ann_rows) < len(rows):
        # images whose every annotation was skipped are negatives now
        still = np.zeros(len(images), bool)
        still[img_idx[ann_rows]] = True
        keep_img &= still
        image_rows = np.flatnonzero(keep_img)

    if image_ids == "keep":
        problems += kept_id_problems(images.id[image_rows], "images", "image", image_rows, img0)
    else:
        referenced = np.isin(images.id, anns.image_id[ann_rows])
        problems += [
            p
            for p, r in zip(
                duplicate_id_problems(
                    images.id, "images", "image", "annotations that reference it are ambiguous",
                    start=img0,
                ),
                referenced[duplicate_rows(images.id)[0]].tolist(),
            )
            if r
        ]
    if annotation_ids == "keep":
        problems += kept_id_problems(anns.id[ann_rows], "annotations", "annotation",
                                     ann_rows, ann0)
    screen.refuse(problems)
    return Screened(image_rows, ann_rows, len(images) - len(image_rows) - invalid_images,
                    screen.skipped, category_warnings(cats))


def plan_export(
    ds: Dataset,
    *,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    target: str | None = None,
    invalid: InvalidPolicy = "error",
    start: tuple[int, int] = (0, 0),
) -> _Plan:
    """Check an export (:func:`screen_export`) and work out its ids, boxes and areas
    (nothing is written)."""
    screened = screen_export(
        ds, image_ids=image_ids, annotation_ids=annotation_ids,
        ignore_negative_samples=ignore_negative_samples, target=target, invalid=invalid,
        start=start,
    )
    images, anns = ds.images, ds.annotations
    img_idx = ds.image_index
    image_rows, ann_rows = screened.image_rows, screened.ann_rows
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
        screened.dropped,
        n_box,
        n_area,
        screened.skipped,
        screened.warnings,
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


IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = (
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
    """Output columns of annotation rows, with output ids and the completed bbox/area
    (written as :func:`~cocokit.dataset.numbers_as_read` says: a value read as an integer
    is written as one while it is a whole number, every other value as a float)."""
    crowd = anns.iscrowd[rows]
    nkp = anns.num_keypoints[rows]
    boxes, areas = numbers_as_read(bbox, area, anns.int_text[rows])
    return [
        ids.tolist(),
        image_ids.tolist(),
        anns.category_id[rows].tolist(),
        [UNSET if s is None else s for s in anns.segmentation[rows].tolist()],
        _unset_where(areas, np.isnan(area)),
        _unset_where(boxes, np.isnan(bbox[:, 0])),
        _unset_where(crowd.tolist(), crowd < 0),
        [UNSET if k is None else k for k in anns.keypoints[rows].tolist()],
        _unset_where(nkp.tolist(), nkp < 0),
    ]


def _iter_array(
    key: str, ds: Dataset, plan: _Plan, progress: Callable[[int], None]
) -> Iterator[bytes]:
    if key == "images":
        enc = RecordEncoder("Image", IMAGE_KEYS)
        rows, n = plan.image_rows, len(plan.image_rows)
    else:
        enc = RecordEncoder("Annotation", ANNOTATION_KEYS)
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


def _document(
    ds: Dataset,
    image_ids: IdPolicy,
    annotation_ids: IdPolicy,
    ignore_negative_samples: bool,
    indent: int | None,
    progress: Progress | None,
    target: str | None,
    invalid: InvalidPolicy,
) -> tuple[Iterator[bytes] | list[bytes], _Plan]:
    plan = plan_export(
        ds,
        image_ids=image_ids,
        annotation_ids=annotation_ids,
        ignore_negative_samples=ignore_negative_samples,
        target=target,
        invalid=invalid,
    )
    chunks = _paused(_iter_document(ds, plan, progress))
    if indent:
        return [msgspec.json.format(b"".join(chunks), indent=indent)], plan
    return chunks, plan


def write_coco(
    source: Dataset | CocoStream | FilteredStream,
    path: str | os.PathLike[str],
    *,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    progress: Progress | None = None,
    invalid: InvalidPolicy = "error",
) -> ExportSummary:
    """Write ``source`` as COCO JSON to ``path`` under the export contract.

    ``source`` is a loaded :class:`~cocokit.Dataset`, or a file of any size read in runs
    (a :class:`~cocokit.io.stream.CocoStream`, or a :class:`FilteredStream`), written in
    bounded memory with the same checks and the same bytes (no ``indent`` then).

    ``image_ids``: ``"keep"`` (the default, :data:`DEFAULT_IDS`) writes the ids as they are
    (a repeated id is refused, naming ``image_ids="auto"``), ``"auto"`` numbers images 1..N
    in dataset order. ``annotation_ids`` likewise (1..M in table order). Annotations follow
    their images. ``ignore_negative_samples`` drops images without annotations. Missing bbox
    and area are computed from the segmentation (:func:`complete_geometry`). A bbox
    value or area read as a JSON integer is written as an integer while it is a whole number
    below 2**53 in magnitude; every other value as the shortest float text that reads back
    the same (``10.0`` as read stays ``10.0``): :func:`~cocokit.dataset.numbers_as_read`,
    docs/formats.md. Integrity and the records to be written are checked first (the errors
    :func:`cocokit.validate` reports, see :mod:`cocokit.contract`): on any problem
    :class:`~cocokit.errors.IntegrityError` is raised and nothing is written;
    ``invalid="skip"`` leaves the invalid records out instead and names each in the
    summary's ``skipped``. The file is written to a temporary name and renamed
    (:func:`cocokit.io.atomic.atomic_write`), so writing over the input is safe; a path
    ending in ``.gz`` is written gzip-compressed, a URL (``s3://``, ``memory://``) through
    fsspec (:func:`cocokit.io.files.write_chunks`).
    ``progress(done, total)`` is called as records are written.
    """
    if not isinstance(source, Dataset):
        if indent:
            raise OptionError("indent", indent, "None when writing a streamed file")
        filtered = source if isinstance(source, FilteredStream) else None
        return _write_stream(
            source.stream if isinstance(source, FilteredStream) else source,
            path,
            image_ids=image_ids,
            annotation_ids=annotation_ids,
            ignore_negative_samples=ignore_negative_samples
            or (filtered is not None and filtered.drop_negatives),
            select=filtered.select if filtered is not None else None,
            categories=filtered.categories if filtered is not None else None,
            progress=progress,
            invalid=invalid,
            source=filtered.source if filtered is not None else None,
        )
    ds = source
    target = os.fspath(path)
    chunks, plan = _document(
        ds, image_ids, annotation_ids, ignore_negative_samples, indent, progress, target,
        invalid,
    )
    files.write_chunks(path, chunks)
    return _summary(target, ds, plan)


# -- sources written in runs: a CocoStream, or one filtered lazily -------------------


@dataclasses.dataclass(frozen=True)
class ImageIndex:
    """Ids, heights and widths of every image of a streamed source, in file order;
    ``odd_names`` holds the file names the export contract refuses (empty, control
    characters) and None for every other image."""

    ids: np.ndarray
    heights: np.ndarray
    widths: np.ndarray
    odd_names: np.ndarray | None = None


def image_index(stream: CocoStream) -> ImageIndex:
    """The :class:`ImageIndex` of a stream (one pass over its images)."""
    ids, hs, ws, odd = [], [], [], []
    for _, t in stream.image_tables():
        ids.append(t.id)
        hs.append(t.height)
        ws.append(t.width)
        names = np.full(len(t), None, object)
        bad = bad_file_names(t.file_name)
        names[bad] = t.file_name[bad]
        odd.append(names)

    def cat(parts: list[np.ndarray], dtype: Any = np.int64) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    return ImageIndex(cat(ids), cat(hs), cat(ws), cat(odd, object))


#: ``select(annotations, images) -> mask``: which rows of one run of annotations to keep.
Select = Callable[[Annotations, ImageIndex], np.ndarray]


@dataclasses.dataclass(frozen=True)
class FilteredStream:
    """A :class:`~cocokit.io.stream.CocoStream` with a filter applied lazily, run by run.

    Nothing is read until it is written (:func:`write_coco`, in bounded memory).
    ``select`` keeps a subset of each run of annotations, ``categories`` are the ones
    written, and ``drop_negatives`` drops the images left without annotations.
    :func:`cocokit.transforms.filter_dataset` on a stream returns one.
    """

    stream: CocoStream
    select: Select
    categories: Categories
    drop_negatives: bool = False

    @property
    def source(self) -> str:
        """The file's path."""
        return self.stream.path

    def __repr__(self) -> str:
        return f"<FilteredStream of {self.stream!r}>"


def _write_stream(
    stream: CocoStream,
    path: str | os.PathLike[str],
    *,
    image_ids: IdPolicy,
    annotation_ids: IdPolicy,
    ignore_negative_samples: bool,
    select: Select | None,
    categories: Categories | None,
    progress: Progress | None,
    invalid: InvalidPolicy,
    source: str | None = None,
) -> ExportSummary:
    """:func:`write_coco` of a stream in bounded memory: the same checks
    (:class:`ExportScreen`) and the same bytes as the in-memory path. The images are
    checked before anything is written; the annotations while writing to a temporary
    file: on any problem the temporary file is removed and
    :class:`~cocokit.errors.IntegrityError` raised, so nothing is written. With
    ``ignore_negative_samples`` (which needs to know every annotation before the images
    are written) the annotations are checked in a first pass, before anything is
    written. ``source`` (a filter's result: the file it reads) names the rows as a
    transform's result in memory is named (``in.json: annotations[10].bbox``)."""
    check_policy("image_ids", image_ids)
    check_policy("annotation_ids", annotation_ids)
    screen = ExportScreen(invalid, target := os.fspath(path))
    cats = stream.categories if categories is None else categories
    with gc_paused():
        index = image_index(stream)
    n_img = len(index.ids)
    image_rows = np.arange(n_img) if source is not None else np.zeros(0, np.int64)
    img0: Start = 0 if source is None else Origin((source,), image_rows,
                                                  np.zeros(0, np.int64))

    def rows_at(start: int, n: int) -> Start:
        """How to name ``n`` annotation rows from ``start`` (and the images)."""
        if source is None:
            return start
        return Origin((source,), image_rows, np.arange(start, start + n))

    problems: list[str] = []
    if image_ids == "keep":
        problems += kept_id_problems(index.ids, "images", "image", start=img0)
    else:
        dups = duplicate_id_problems(
            index.ids, "images", "image", "annotations that reference it are ambiguous",
            start=img0,
        )
        rows = duplicate_rows(index.ids)[0]
        problems += [
            p for p, r in zip(dups, rows.tolist()) if np.isin(index.ids[r], stream.used_image_ids)
        ]
    problems += duplicate_id_problems(cats.id, "categories", "category")
    image_ok = screen.images(index.widths, index.heights, np.arange(n_img), img0,
                             index.odd_names)
    screen.refuse(problems)

    def screened(start: int, t: Annotations, screen: ExportScreen) -> tuple[np.ndarray, np.ndarray]:
        """The rows of a run to write (after select and the checks), and their images."""
        img_idx = lookup(index.ids, t.image_id)
        mask = select(t, index) if select is not None else np.ones(len(t), bool)
        rows = np.flatnonzero(mask)
        cat_idx = lookup(cats.id, t.category_id)
        at = rows_at(start, len(t))
        rows = rows[screen.references(t, rows, img_idx, cat_idx, at)]
        lost = rows[~image_ok[img_idx[rows]]]
        if len(lost):
            screen.dropped_with_images(lost, img_idx[lost], at, img0)
        rows = rows[image_ok[img_idx[rows]]]
        ok = screen.annotations(t, rows, index.heights[img_idx[rows]],
                                index.widths[img_idx[rows]], at, cats)
        return rows[ok], img_idx

    keep_rows = image_ok.copy()
    selected: dict[int, np.ndarray] = {}  # run start -> rows to write, from a first pass
    if ignore_negative_samples:
        parts = []
        for start, t in stream.annotation_tables():
            rows, _ = screened(start, t, screen)
            selected[start] = rows  # the rows of a run (few) are cheap to keep
            parts.append(unique(t.image_id[rows]))
        screen.refuse(problems)
        used = unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        keep_rows &= np.isin(index.ids, used)
    new_ids = np.zeros(n_img, np.int64)
    new_ids[keep_rows] = (
        np.arange(1, int(keep_rows.sum()) + 1) if image_ids == "auto" else index.ids[keep_rows]
    )
    total = int(keep_rows.sum()) + stream.num_annotations
    counts = {"images": 0, "annotations": 0, "box": 0, "area": 0}
    ann_ids_seen: list[np.ndarray] = []
    # for the id map, in bounded memory: the kept ids once (old = new), or under auto the
    # old ids alone (the new ones are 1..M in the same order)
    ann_old: list[np.ndarray] = []
    kept_ids = np.zeros(0, np.int64)

    def images_body() -> Iterator[bytes]:
        enc = RecordEncoder("Image", IMAGE_KEYS)
        first = True
        for start, t in stream.image_tables():
            rows = np.flatnonzero(keep_rows[start : start + len(t)])
            if not len(rows):
                continue
            with gc_paused():
                body = enc.encode(image_columns(t, rows, new_ids[start + rows]), t.extra[rows])
            yield (b"" if first else b",") + body
            first = False
            counts["images"] += len(rows)
            if progress:
                progress(counts["images"] + counts["annotations"], total)

    def annotations_body() -> Iterator[bytes]:
        nonlocal kept_ids
        enc = RecordEncoder("Annotation", ANNOTATION_KEYS)
        first = True
        next_id = 1
        for start, t in stream.annotation_tables():
            if start in selected:
                rows = selected.pop(start)
                img_idx = lookup(index.ids, t.image_id)
            else:
                rows, img_idx = screened(start, t, screen)
            if annotation_ids == "keep":
                ann_ids_seen.append(t.id[rows])
                out_ids = t.id[rows]
            else:
                out_ids = np.arange(next_id, next_id + len(rows), dtype=np.int64)
                next_id += len(rows)
            if not len(rows) or problems or screen.errors:
                if progress:  # the bar counts the annotations read, written or not
                    progress(counts["images"] + start + len(t), total)
                continue
            r_img = img_idx[rows]
            with gc_paused():
                bbox, area, nb, na = complete_geometry(
                    t.bbox[rows],
                    t.area[rows],
                    t.segmentation[rows],
                    index.heights[r_img],
                    index.widths[r_img],
                )
                body = enc.encode(
                    annotation_columns(t, rows, out_ids, new_ids[r_img], bbox, area), t.extra[rows]
                )
            counts["box"] += nb
            counts["area"] += na
            if annotation_ids == "auto":
                ann_old.append(t.id[rows])
            yield (b"" if first else b",") + body
            first = False
            counts["annotations"] += len(rows)
            if progress:
                progress(counts["images"] + start + len(t), total)
        if annotation_ids == "keep" and ann_ids_seen:
            ids = np.concatenate(ann_ids_seen)
            ann_ids_seen.clear()
            ids.sort()
            kept_ids = ids
            if (ids[1:] == ids[:-1]).any():  # find where, now that there is something to say
                quiet = ExportScreen("skip", target)
                written = [start + screened(start, t, quiet)[0]
                           for start, t in stream.annotation_tables()]
                rows_in = np.concatenate(written)
                all_ids = np.concatenate([t.id for _, t in stream.annotation_tables()])
                problems.extend(kept_id_problems(all_ids[rows_in], "annotations",
                                                 "annotation", rows=rows_in,
                                                 start=rows_at(0, len(all_ids))))

    bodies = {"images": images_body, "annotations": annotations_body}
    files.write_chunks(path, iter_document(stream.key_order, bodies, cats, stream.extra,
                                           lambda: screen.refuse(problems)))
    invalid_images = int(np.count_nonzero(~image_ok))
    return ExportSummary(
        target,
        counts["images"],
        counts["annotations"],
        len(cats),
        n_img - counts["images"] - invalid_images,
        counts["box"],
        counts["area"],
        tuple(screen.skipped),
        tuple(category_warnings(cats)),
        _stream_id_map(index.ids[keep_rows], new_ids[keep_rows], kept_ids, ann_old),
    )


def _stream_id_map(images_old: np.ndarray, images_new: np.ndarray, kept: np.ndarray,
                   renumbered: list[np.ndarray]) -> IdMap:
    """The id map of a streamed export: annotation ids kept (``kept``, old = new) or
    renumbered 1..M in the order of the old ids in ``renumbered``."""
    if renumbered:
        old = np.concatenate(renumbered)
        return IdMap(images_old, images_new, old, np.arange(1, len(old) + 1, dtype=np.int64))
    return IdMap(images_old, images_new, kept, kept)


def _summary(target: str | None, ds: Dataset, plan: _Plan) -> ExportSummary:
    id_map = IdMap(ds.images.id[plan.image_rows], plan.image_ids,
                   ds.annotations.id[plan.ann_rows], plan.ann_ids,
                   file_names=tuple(ds.images.file_name[plan.image_rows].tolist()))
    return ExportSummary(
        target,
        len(plan.image_rows),
        len(plan.ann_rows),
        len(ds.categories),
        plan.dropped,
        plan.computed_bbox,
        plan.computed_area,
        tuple(plan.skipped),
        tuple(plan.warnings),
        id_map,
    )


def to_json(
    ds: Dataset,
    *,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    indent: int | None = None,
    invalid: InvalidPolicy = "error",
) -> bytes:
    """The COCO document as JSON bytes, under the same contract as :func:`write_coco`."""
    chunks, _ = _document(
        ds, image_ids, annotation_ids, ignore_negative_samples, indent, None, None, invalid
    )
    return b"".join(chunks)


def to_dict(
    ds: Dataset,
    *,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    invalid: InvalidPolicy = "error",
) -> dict[str, Any]:
    """The COCO document as plain Python data, under the same contract as :func:`write_coco`."""
    out: dict[str, Any] = msgspec.json.decode(
        to_json(
            ds,
            image_ids=image_ids,
            annotation_ids=annotation_ids,
            ignore_negative_samples=ignore_negative_samples,
            invalid=invalid,
        )
    )
    return out
