"""Validation of COCO documents: every problem, reported as data.

A :class:`Validator` is fed the sections of a document (in any order, in chunks) and
returns a :class:`Report` listing every :class:`Problem` it found, each with a stable
machine ``code`` (see :data:`CODES`), a severity, the JSON path of the offending value
(``annotations[1834].bbox``) and one human sentence.

>>> report = validate_document({"images": [], "annotations": [], "categories": []})
>>> report.ok
True

The per-record checks are tight Python loops; everything that needs more than one
record (duplicate ids, dangling references, RLE sizes against their image) is decided
in :meth:`Validator.finish` with numpy, from id arrays collected while feeding. Boxes
are checked against their image as soon as that image has been fed, else at finish.
Numbers in boxes, polygons and keypoints are checked and measured in bulk, one numpy
array per block of annotations.

Rules and tolerances (module constants):

* a box may stick out of its image by :data:`BOX_TOLERANCE` px;
* ``area`` is compared with the polygon area (shoelace formula, sum over the rings) or
  the RLE mask area (its foreground pixels, as ``pycocotools.mask.area`` counts them,
  from the run lengths decoded once for the checks), and reported when it differs by more
  than :data:`AREA_REL_TOLERANCE` of that area *and* more than
  :data:`AREA_ABS_TOLERANCE` px; an annotation with a box and no segmentation is
  reported only when its area exceeds ``w * h * BOX_AREA_SLACK``.

Problems are reported in document order (images, annotations, categories; by index;
by path and code within a record), whatever the order of feeding. Known limit: a
boolean *mixed with numbers* inside a polygon or a keypoints array is read as 0/1
rather than reported (checking every coordinate's type one by one would double the
cost); booleans are reported everywhere else (ids, sizes, boxes, area, iscrowd).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import msgspec
import numpy as np

from .contract import (
    ISCROWD_AS_READ,
    file_name_problem,
    keypoint_names_message,
    keypoint_value_count,
    keypoint_value_counts_of,
    rle_counts_problem,
    rle_string_counts,
)
from .dataset import Annotations, gc_paused, present
from .errors import InputError
from .geometry import encoded_rle, mask_api, ring_areas
from .io.coco import RecordDecoder, annotation_decoder
from .io.jsontext import DocumentError, NotAnObject, decode_extra, read_top
from .io.sniff import HEAD_BYTES, describe_document, describe_head, describe_markup, describe_path
from .problems import CODES, SEVERITIES, Problem, Report, Severity
from .problems import found_value as _found
from .problems import is_number as _is_number
from .problems import short_number as _num
from .problems import short_value as _short
from .rawjson import heads, read_arrays

__all__ = [
    "AREA_ABS_TOLERANCE",
    "AREA_REL_TOLERANCE",
    "BOX_AREA_SLACK",
    "BOX_TOLERANCE",
    "CHUNK_RECORDS",
    "CODES",
    "SEVERITIES",
    "Problem",
    "Report",
    "Severity",
    "Validator",
    "validate",
    "validate_bytes",
    "validate_document",
    "validate_file",
]

#: How far (in pixels) a box may stick out of its image before it is reported.
BOX_TOLERANCE = 0.01
#: area vs segmentation: warn when they differ by more than this share of the
#: segmentation's area ...
AREA_REL_TOLERANCE = 0.10
#: ... and by more than this many pixels.
AREA_ABS_TOLERANCE = 1.0
#: Box-only annotations: warn when area > w * h * BOX_AREA_SLACK.
BOX_AREA_SLACK = 1.01

_REQUIRED_SECTIONS = ("images", "annotations", "categories")
_SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}
_I64_MIN = -(2**63)
_ID_MIN = _I64_MIN + 1  # ids are int64 values, except the one kept for _NO_ID
_I64_MAX = 2**63 - 1
_NO_ID = _I64_MIN  # marks "no valid id" in int64 columns
_INF = math.inf
_PLAIN_NUMBERS = frozenset({int, float})
_NAN4 = (math.nan, math.nan, math.nan, math.nan)
_BLOCK = 1 << 13  # annotations per block: bounds the temporary arrays
_LOOKUP_BLOCK = 1 << 18  # ids per block in finish()
_MISSING: Any = object()
_RLE = msgspec.json.Decoder(dict[str, Any])  # an RLE object of the column path


# --------------------------------------------------------------------------------------
# The report


def _as_id(v: Any) -> int | None:
    """``v`` as an int64 id, or None when it is not an integer in range (bool is not)."""
    if type(v) is int:
        return v if _ID_MIN <= v <= _I64_MAX else None
    if isinstance(v, np.integer) and not isinstance(v, np.bool_):
        out = int(v)
        return out if _ID_MIN <= out <= _I64_MAX else None
    return None


def _floats(values: list[Any] | np.ndarray, strict: bool = False) -> np.ndarray | None:
    """float64 array of ``values`` if they all look like numbers, else None.

    One pass: numpy infers the dtype, and anything but numbers (strings, null, arrays,
    objects, all-boolean) gives a non-numeric dtype. The one thing this lets through
    is a boolean mixed with numbers (numpy reads it as 0 or 1), unless ``strict``,
    which looks at the type of every value first (a second pass).
    """
    if isinstance(values, np.ndarray):  # read by the reader: numbers already
        return values.astype(np.float64, copy=False)
    if not values:
        return np.empty(0, np.float64)
    if strict:
        types = set(map(type, values))
        if not types <= _PLAIN_NUMBERS:
            if any(issubclass(t, (bool, np.bool_)) for t in types):
                return None
    try:
        arr = np.array(values)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim != 1 or arr.dtype.kind not in "fiu":
        return None
    return arr.astype(np.float64, copy=False)


def _plain_counts(counts: list[Any]) -> np.ndarray | None:
    """Uncompressed RLE counts as an int64 array when they are all plain non-negative
    ints that numpy sums exactly (one pass in C), else None (check them one by one)."""
    if not counts or set(map(type, counts)) != {int}:
        return None
    try:
        arr = np.array(counts, np.int64)
    except OverflowError:
        return None
    if arr.min() < 0 or arr.max() >= 2**40 or len(arr) >= 2**23:  # sum fits in int64
        return None
    return arr


def _rle_mask_area(counts: Any, h: int, w: int, runs: np.ndarray | None) -> float | None:
    """The pixel count of an RLE mask whose counts sum to ``h * w``: the sum of its odd
    run lengths (pycocotools' ``rleArea``), from the ``runs`` decoded for the checks.
    pycocotools reads the counts itself when they were not decoded, and for a mask of
    2**32 pixels or more, where its 32-bit run lengths wrap (so the area is the one it
    gives, or None when it cannot read them)."""
    if runs is not None and h * w < 2**32:
        return float(runs[1::2].sum())
    try:
        return float(mask_api().area(encoded_rle({"size": [h, w], "counts": counts})))
    except Exception:  # counts pycocotools cannot take: nothing sensible to compare
        return None


def _float_or_inf(v: Any) -> float:
    try:
        return float(v)
    except OverflowError:
        return _INF if v > 0 else -_INF


def _grouped_floats(
    flat: list[Any] | np.ndarray, lens: list[int] | np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check groups of numbers laid end to end in ``flat`` (every group non-empty).

    Returns the values as float64 (NaN inside groups with a non-number), a mask of the
    groups holding a non-number, and a mask of the groups holding NaN or an infinity.
    """
    ng = len(lens)
    arr = _floats(flat)
    starts = np.zeros(ng, np.int64)
    if ng > 1:
        np.cumsum(np.asarray(lens[:-1], np.int64), out=starts[1:])
    if arr is not None:
        bad_type = np.zeros(ng, bool)
    else:
        arr = np.empty(len(flat), np.float64)
        bad_type = np.zeros(ng, bool)
        pos = 0
        for g, n in enumerate(lens):
            group = flat[pos : pos + n]
            if all(_is_number(v) for v in group):
                arr[pos : pos + n] = [_float_or_inf(v) for v in group]
            else:
                arr[pos : pos + n] = np.nan
                bad_type[g] = True
            pos += n
    if ng == 0:
        return arr, bad_type, np.zeros(0, bool)
    nonfinite = np.logical_or.reduceat(~np.isfinite(arr), starts) & ~bad_type
    return arr, bad_type, nonfinite


def _narrow(a: np.ndarray) -> np.ndarray:
    """An int64 array as int32 when its values fit (half the memory)."""
    if len(a) and (a.min() < -(2**31) or a.max() >= 2**31):
        return a
    return a.astype(np.int32)


class _Ids:
    """Ids gathered chunk by chunk, each with the index of its record, kept compact.

    Ids are stored as int32 when they fit; a chunk where every record had an id keeps
    only its first index (the others follow), so 1.6M annotation ids cost about 6 MB.
    Positions below are positions in :meth:`ids`.
    """

    __slots__ = ("_ids", "_idx")

    def __init__(self) -> None:
        self._ids: list[np.ndarray] = []
        self._idx: list[int | np.ndarray] = []  # a start index, or the indices

    def add(self, ids: np.ndarray, start: int, keep: np.ndarray | None = None) -> None:
        idx: int | np.ndarray = start
        if keep is not None and not keep.all():
            rows = np.flatnonzero(keep)
            ids = ids[rows]
            idx = _narrow(rows + start)
        if len(ids):
            self._ids.append(_narrow(ids))
            self._idx.append(idx)

    def __len__(self) -> int:
        return sum(len(a) for a in self._ids)

    def ids(self) -> np.ndarray:
        if not self._ids:
            return np.zeros(0, np.int64)
        return np.concatenate(self._ids) if len(self._ids) > 1 else self._ids[0]

    def index(self) -> np.ndarray:
        """The record index of every id."""
        parts = [np.arange(i, i + len(a), dtype=np.int64) if isinstance(i, int) else i
                 for a, i in zip(self._ids, self._idx, strict=True)]
        if not parts:
            return np.zeros(0, np.int64)
        return np.concatenate(parts).astype(np.int64, copy=False)

    def index_at(self, pos: np.ndarray) -> np.ndarray:
        """The record index of the ids at these positions."""
        pos = np.asarray(pos, np.int64)
        lens = np.array([len(a) for a in self._ids], np.int64)
        offsets = np.zeros(len(lens) + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        chunk = np.searchsorted(offsets, pos, side="right") - 1
        base = np.array([i if isinstance(i, int) else 0 for i in self._idx], np.int64)
        out: np.ndarray = base[chunk] + (pos - offsets[chunk]) if len(base) else pos.copy()
        for c, i in enumerate(self._idx):
            if not isinstance(i, int):
                sel = np.flatnonzero(chunk == c)
                out[sel] = i[pos[sel] - offsets[c]]
        return out

    def in_index_order(self) -> bool:
        """Whether the index grows with the position (chunks fed in file order)."""
        last = -1
        for a, i in zip(self._ids, self._idx, strict=True):
            first = i if isinstance(i, int) else int(i[0])
            if first <= last:
                return False
            last = i + len(a) - 1 if isinstance(i, int) else int(i[-1])
        return True


def _first_of_duplicates(col: _Ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique ids with the position of their first occurrence (smallest index), and
    the later occurrences.

    Returns ``(unique_ids, first_pos, dup_pos, dup_first_pos)``, positions in
    ``col.ids()``; ``dup_first_pos`` is the first occurrence each duplicate repeats.
    """
    ids = col.ids()
    e = np.zeros(0, np.int64)
    if len(ids) == 0:
        return ids, e, e, e
    if col.in_index_order():
        order = np.argsort(ids, kind="stable")
    else:
        order = np.lexsort((col.index(), ids))
    s = ids[order]
    new = np.ones(len(s), bool)
    new[1:] = s[1:] != s[:-1]
    group_start = np.flatnonzero(new)
    first_pos = order[group_start]
    dup_at = np.flatnonzero(~new)
    if len(dup_at) == 0:
        return s[group_start], first_pos, dup_at, dup_at
    group_of = np.cumsum(new) - 1
    return s[group_start], first_pos, order[dup_at], first_pos[group_of[dup_at]]


def _has_duplicates(col: _Ids) -> bool:
    """Whether some id occurs twice (a sort, without the position arrays)."""
    s = np.sort(col.ids())
    return bool((s[1:] == s[:-1]).any())


def _contains(keys: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Whether each key is in ``sorted_ids``, a block at a time (small temporaries)."""
    out = np.zeros(len(keys), bool)
    for b in range(0, len(keys), _LOOKUP_BLOCK):
        out[b : b + _LOOKUP_BLOCK] = _lookup(keys[b : b + _LOOKUP_BLOCK], sorted_ids)[1]
    return out


def _distinct(values: np.ndarray) -> np.ndarray:
    """np.unique a block at a time (small temporaries)."""
    out = np.zeros(0, values.dtype)
    for b in range(0, len(values), _LOOKUP_BLOCK):
        out = np.union1d(out, values[b : b + _LOOKUP_BLOCK])
    return out


def _lookup(keys: np.ndarray, sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each key in ``sorted_ids`` and whether it is there."""
    if len(sorted_ids) == 0:
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), bool)
    pos = np.searchsorted(sorted_ids, keys)
    pos = np.minimum(pos, len(sorted_ids) - 1)
    return pos, sorted_ids[pos] == keys


def _cat(chunks: list[np.ndarray], dtype: Any, width: int | None = None) -> np.ndarray:
    if not chunks:
        return np.zeros((0, width) if width else 0, dtype)
    return np.concatenate(chunks) if len(chunks) > 1 else chunks[0]


_PATH_RE = re.compile(r"([A-Za-z_]+)(?:\[(\d+)\])?")
_SECTION_RANK = {"images": 1, "annotations": 2, "categories": 3}


def _path_key(path: str, code: str) -> tuple[int, int, str, str]:
    m = _PATH_RE.match(path)
    if not path or m is None:
        return (0 if not path else 4, 0, path, code)
    return (_SECTION_RANK.get(m.group(1), 4), int(m.group(2) or -1), path, code)


def _sort_key(p: Problem) -> tuple[int, int, str, str, str]:
    """Report order: document, images, annotations, categories; by index; by path, code
    and message within a record (so neither the order of feeding nor the chunking
    changes it)."""
    return (*_path_key(p.path, p.code), p.message)


# --------------------------------------------------------------------------------------
# The validator


_ImageTable = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class Validator:
    """Incremental validator: feed sections in any order, in chunks, then :meth:`finish`.

    ``start`` of a ``feed_*`` call is the index of ``records[0]`` in the whole array, so
    paths name the record as it is in the file. Between calls the validator keeps only
    compact numpy arrays: ids (about 4 bytes per annotation and reference), image
    sizes, 64-bit hashes of the file names, RLE sizes, and boxes whose image has not
    been fed yet; so a huge file can be validated chunk by chunk. Stored problems are
    the other cost: pass ``max_problems`` when a file may have millions of them.

    References are checked only against sections that were fed: call
    ``feed_images([])`` for an empty images array. A section reported missing by
    :meth:`feed_top` is never checked against.
    """

    def __init__(self, source: str, max_problems: int | None = None) -> None:
        self.source = source
        self.max_problems = max_problems
        self._stored: list[Problem] = []
        self._bound: tuple[int, int, str, str] | None = None  # see _add_many
        self._truncated = 0
        self._truncated_errors = 0
        self._finished: Report | None = None
        self._fed: set[str] = set()
        self._missing: set[str] = set()  # sections feed_top reported missing
        # images: ids, and width and height (NaN when invalid) at the same positions
        self._img = _Ids()
        self._img_w: list[np.ndarray] = []
        self._img_h: list[np.ndarray] = []
        # file names, as sorted unique 64-bit hashes with the first index of each
        self._fn_hash = np.zeros(0, np.int64)
        self._fn_first = np.zeros(0, np.int64)
        # categories
        self._cat = _Ids()
        self._cat_names: dict[int, Any] = {}
        # the first category of each id: its id and keypoint_value_count (3 per name)
        self._kp_ids: list[int] = []
        self._kp_per: list[int] = []
        self._kp: list[np.ndarray] = []  # rows (index, category id, keypoint values)
        # annotations: their ids and references
        self._ann = _Ids()
        self._ref_img = _Ids()
        self._ref_cat = _Ids()
        # the images fed so far, for checking boxes as they come: (unique ids, width,
        # height, index of the first record with that id); None when out of date
        self._image_table: _ImageTable | None = None
        # boxes whose image was not fed yet, checked in finish()
        self._box_idx: list[np.ndarray] = []
        self._box_img: list[np.ndarray] = []
        self._box: list[np.ndarray] = []
        self._rle: list[np.ndarray] = []  # rows (index, image_id, h, w)
        self._decoder: RecordDecoder[Annotations] | None = None  # the reader's, for runs

    # -- problems -----------------------------------------------------------------------

    def add(self, code: str, path: str, message: str) -> None:
        """Record a problem (for readers that find one themselves, e.g. a bad section).

        With ``max_problems``, the report keeps the first ``max_problems`` problems in
        report order (not in the order found), so the chunking never changes it.
        """
        self._stored.append(Problem(code, SEVERITIES[code], path, message))
        if self.max_problems is not None and len(self._stored) > self.max_problems * 5 // 4 + 256:
            self._prune(self.max_problems)

    def _prune(self, keep: int) -> None:
        """Keep the ``keep`` first problems in report order; count the others."""
        ordered = sorted(self._stored, key=_sort_key)
        drop = ordered[keep:]
        self._truncated += len(drop)
        self._truncated_errors += sum(p.severity == "error" for p in drop)
        self._stored = ordered[:keep]
        if keep and len(ordered) >= keep:  # full: nothing after the last one kept can stay
            last = ordered[keep - 1]
            self._bound = _path_key(last.path, last.code)

    def _add_many(self, code: str, n: int, make: Callable[[int], tuple[str, str]],
                  path_of: Callable[[int], str] | None = None) -> None:
        """Add ``n`` problems of one code; ``make(k)`` -> (path, message).

        ``path_of(k)`` (the path alone, cheap), when given, says the problems come in
        report order: once the report is full (``max_problems``) and one would come after
        every problem kept, it and the rest are only counted, their messages never made.
        """
        severity = SEVERITIES[code]
        for k in range(n):
            if path_of is not None and self._bound is not None:
                if _path_key(path_of(k), code) > self._bound:
                    rest = n - k
                    self._truncated += rest
                    if severity == "error":
                        self._truncated_errors += rest
                    return
            path, message = make(k)
            self.add(code, path, message)

    def _check_open(self) -> None:
        if self._finished is not None:
            raise RuntimeError("Validator.finish() was already called")

    # -- top level ----------------------------------------------------------------------

    def feed_top(self, doc_keys: Iterable[str]) -> None:
        """The top-level keys present: an error for each required array missing."""
        self._check_open()
        keys = set(doc_keys)
        said = describe_document(dict.fromkeys(doc_keys))  # not COCO at all: what it is
        for key in _REQUIRED_SECTIONS:
            if key not in keys:
                self._missing.add(key)
                self.add("missing-key", "",
                         f'the document has no "{key}" key; expected an array of '
                         f"{_SINGULAR[key]} records, found only the keys {_short(sorted(keys))}"
                         + (f"; {said}" if said else ""))
                said = None  # said once, on the first missing key

    # -- records ------------------------------------------------------------------------

    def _bad_record(self, section: str, i: int, r: Any) -> None:
        self.add("record-not-object", f"{section}[{i}]",
                 f"{'an' if section != 'categories' else 'a'} {_SINGULAR[section]} record "
                 f"must be an object, {_found(r)}")

    def _bad_id(self, section: str, i: int, key: str, v: Any) -> None:
        path = f"{section}[{i}].{key}"
        what = _SINGULAR[section]
        if v is _MISSING:
            expected = {"id": f"the integer id of this {what}",
                        "image_id": "the integer id of its image",
                        "category_id": "the integer id of its category"}[key]
            self.add("missing-field", path, f'{what} has no "{key}"; expected {expected}')
        else:
            extra = ("an integer in the int64 range" if isinstance(v, int)
                     and not isinstance(v, bool) else "an integer")
            self.add("bad-type", path, f'{what} "{key}" must be {extra}, {_found(v)}')

    def feed_categories(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the categories array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        with gc_paused():
            self._feed_categories(records, start)

    def _feed_categories(self, records: list[Any], start: int) -> None:
        self._fed.add("categories")
        ids: list[int | None] = []
        for k, r in enumerate(records):
            i = start + k
            if type(r) is not dict and not isinstance(r, Mapping):
                self._bad_record("categories", i, r)
                ids.append(None)
                continue
            v = r.get("id", _MISSING)
            cid = v if type(v) is int and _ID_MIN <= v <= _I64_MAX else _as_id(v)
            if cid is None:
                self._bad_id("categories", i, "id", v)
            ids.append(cid)
            name = r.get("name", _MISSING)
            if type(name) is not str:
                if name is _MISSING:
                    self.add("missing-field", f"categories[{i}].name",
                             'category has no "name"; expected a string')
                elif not isinstance(name, str):
                    self.add("bad-type", f"categories[{i}].name",
                             f'category "name" must be a string, {_found(name)}')
            if cid is not None and cid not in self._cat_names:
                self._cat_names[cid] = name
                self._kp_ids.append(cid)
                self._kp_per.append(keypoint_value_count(r))
        arr = self._id_array(ids, "categories", start, "id")
        self._cat.add(arr, start, arr != _NO_ID)

    def feed_images(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the images array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        with gc_paused():
            self._feed_images(records, start)

    def _feed_images(self, records: list[Any], start: int) -> None:
        self._fed.add("images")
        add = self.add
        ids: list[int | None] = []
        ws: list[float] = []
        hs: list[float] = []
        fn_hash: list[int] = []
        fn_rows: list[int] = []
        nan = math.nan
        for k, r in enumerate(records):
            i = start + k
            if type(r) is not dict and not isinstance(r, Mapping):
                self._bad_record("images", i, r)
                ids.append(None)
                ws.append(nan)
                hs.append(nan)
                continue
            v = r.get("id", _MISSING)
            iid = v if type(v) is int and _ID_MIN <= v <= _I64_MAX else _as_id(v)
            if iid is None:
                self._bad_id("images", i, "id", v)
            ids.append(iid)
            for key, out in (("width", ws), ("height", hs)):
                s = r.get(key, _MISSING)
                if type(s) is int and 0 < s <= _I64_MAX:
                    out.append(s)
                    continue
                sv = _as_id(s)
                if sv is not None and sv > 0:
                    out.append(sv)
                    continue
                out.append(nan)
                path = f"images[{i}].{key}"
                if s is _MISSING:
                    add("missing-field", path,
                        f'image has no "{key}"; expected a positive integer (pixels)')
                elif sv is not None:
                    add("bad-image-size", path,
                        f"image {key} must be a positive integer, found {_num(s)}")
                else:
                    add("bad-type", path, f"image {key} must be a positive integer, {_found(s)}")
            fn = r.get("file_name", _MISSING)
            if type(fn) is str:
                fn_hash.append(hash(fn))
                fn_rows.append(k)
                if not fn or not fn.isprintable():
                    why = file_name_problem(fn)
                    if why is not None:
                        add("bad-file-name", f"images[{i}].file_name", why)
            elif fn is _MISSING:
                add("missing-field", f"images[{i}].file_name",
                    'image has no "file_name"; expected a string')
            else:
                add("bad-type", f"images[{i}].file_name",
                    f'image "file_name" must be a string, {_found(fn)}')
        self._image_table = None
        arr = self._id_array(ids, "images", start, "id")
        keep = arr != _NO_ID
        self._img.add(arr, start, keep)
        self._img_w.append(np.array(ws, np.float32)[keep])
        self._img_h.append(np.array(hs, np.float32)[keep])
        if fn_rows:
            self._file_names(records, start, np.array(fn_hash, np.int64),
                             np.array(fn_rows, np.int64))

    def _file_names(self, records: list[Any], start: int, hashes: np.ndarray,
                    rows: np.ndarray) -> None:
        """Duplicate file names, found by hash (64 bits: a collision is not a concern),
        against the chunk itself and every chunk fed before."""
        order = np.lexsort((rows, hashes))
        h, r = hashes[order], rows[order]
        new = np.ones(len(h), bool)
        new[1:] = h[1:] != h[:-1]
        starts = np.flatnonzero(new)
        uh = h[starts]
        chunk_first = r[starts] + start  # the first index of each name in this chunk
        run = np.cumsum(new) - 1  # the name of each entry
        pos, seen = _lookup(uh, self._fn_hash)
        if seen.any() or not new.all():
            first = chunk_first.copy()
            before = np.full(len(uh), np.iinfo(np.int64).max)
            before[seen] = self._fn_first[pos[seen]]
            earlier = seen & (before < chunk_first)
            first[earlier] = before[earlier]
            pairs: list[tuple[int, int, int]] = []  # (index, first index, row for the name)
            for e in np.flatnonzero(~new | earlier[run]):
                i = int(r[e]) + start
                if i != first[run[e]]:
                    pairs.append((i, int(first[run[e]]), int(r[e])))
            later = np.flatnonzero(seen & (before > chunk_first))  # fed earlier, index after
            for u in later:
                pairs.append((int(before[u]), int(chunk_first[u]), int(r[starts[u]])))
                self._fn_first[pos[u]] = chunk_first[u]
            for i, j, row in sorted(pairs):
                self.add("duplicate-file-name", f"images[{i}].file_name",
                         f"file_name {_short(records[row]['file_name'])} is already used by "
                         f"images[{j}]")
        fresh = np.flatnonzero(~seen)
        if len(fresh):
            at = np.searchsorted(self._fn_hash, uh[fresh])
            self._fn_hash = np.insert(self._fn_hash, at, uh[fresh])
            self._fn_first = np.insert(self._fn_first, at, chunk_first[fresh])

    def feed_annotations(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the annotations array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        with gc_paused():
            for b in range(0, len(records), _BLOCK):
                self._feed_annotations(records[b : b + _BLOCK], start + b)
            if not records:
                self._fed.add("annotations")

    def _feed_annotations(self, records: list[Any], start: int) -> None:
        self._fed.add("annotations")
        add = self.add
        slow_id = self._slow_id
        nan = math.nan
        inf = _INF
        nan4 = _NAN4
        missing = _MISSING
        # one entry per record
        ids: list[int | None] = []  # None: no valid id (already reported)
        imgs: list[int | None] = []
        cats: list[int | None] = []
        areas: list[float] = []
        kinds: list[int] = []  # polygon rings (> 0), 0 no segmentation, -1 other
        bb_flat: list[Any] = []  # 4 values per record, NaN when there is no valid bbox
        bb_bad: list[int] = []  # records without a (structurally) valid bbox
        # polygons: rings laid end to end
        pg_flat: list[Any] = []
        ring_len: list[int] = []
        # keypoints
        kp_flat: list[Any] = []
        kp_len: list[int] = []
        kp_rows: list[int] = []
        kp_counted: list[int] = []  # records with keypoints of a length 3 divides
        rle_rows: list[tuple[int, int, int, int]] = []

        ids_append = ids.append
        imgs_append = imgs.append
        cats_append = cats.append
        areas_append = areas.append
        kinds_append = kinds.append
        bb_extend = bb_flat.extend
        pg_extend = pg_flat.extend
        ring_len_append = ring_len.append

        for k, a in enumerate(records):
            if type(a) is not dict and not isinstance(a, Mapping):
                self._bad_record("annotations", start + k, a)
                ids_append(None)
                imgs_append(None)
                cats_append(None)
                areas_append(nan)
                kinds_append(-1)
                bb_extend(nan4)
                bb_bad.append(k)
                continue
            v = a.get("id", missing)
            ids_append(v if type(v) is int else slow_id("annotations", start + k, "id", v))
            v = a.get("image_id", missing)
            image_id = v if type(v) is int else slow_id("annotations", start + k, "image_id", v)
            imgs_append(image_id)
            v = a.get("category_id", missing)
            cats_append(v if type(v) is int
                        else slow_id("annotations", start + k, "category_id", v))
            area = a.get("area", missing)
            if type(area) is not float or not -inf < area < inf:
                area = self._slow_area(area, start + k)
            areas_append(area)
            c = a.get("iscrowd", 0)
            if type(c) is not int or (c != 0 and c != 1):
                self._check_iscrowd(c, start + k)
            # segmentation
            seg = a.get("segmentation", missing)
            if type(seg) is list:
                if seg:
                    rl0 = len(ring_len)
                    for ring in seg:
                        if type(ring) is list:
                            n = len(ring)
                            if n >= 6 and not n & 1:
                                pg_extend(ring)
                                ring_len_append(n)
                                continue
                        # a bad ring: take this annotation's rings back out
                        added = sum(ring_len[rl0:])
                        if added:
                            del pg_flat[-added:]
                        del ring_len[rl0:]
                        kinds_append(-1)
                        self._bad_polygons(seg, start + k)
                        break
                    else:
                        kinds_append(len(seg))
                else:
                    kinds_append(0)
            elif seg is missing:
                kinds_append(0)
            else:
                kinds_append(-1)
                if isinstance(seg, Mapping):
                    self._feed_rle(seg, start + k, image_id, area, rle_rows)
                else:
                    add("bad-segmentation", f"annotations[{start + k}].segmentation",
                        "segmentation must be an array of polygons or an RLE object "
                        f'{{"size": [h, w], "counts": ...}}, {_found(seg)}')
            # bbox
            b = a.get("bbox", missing)
            if type(b) is list and len(b) == 4:
                bb_extend(b)
            else:
                bb_extend(nan4)
                bb_bad.append(k)
                if b is missing:
                    if kinds[-1] == 0:
                        add("missing-geometry", f"annotations[{start + k}]",
                            'annotation has neither "bbox" nor a non-empty "segmentation"; '
                            "expected at least one")
                else:
                    add("bad-bbox", f"annotations[{start + k}].bbox",
                        "bbox must be an array of 4 numbers [x, y, width, height], "
                        f"{_found(b)}")
            # keypoints
            kp = a.get("keypoints", missing)
            if kp is not missing:
                if type(kp) is list and len(kp) % 3 == 0:
                    kp_counted.append(k)
                    if kp:
                        kp_flat.extend(kp)
                        kp_len.append(len(kp))
                        kp_rows.append(k)
                else:
                    add("bad-keypoints", f"annotations[{start + k}].keypoints",
                        "keypoints must be an array of numbers [x, y, v, ...] whose length "
                        f"is a multiple of 3, {_found(kp)}"
                        + (f" ({len(kp)} values)" if isinstance(kp, list) else ""))

        id_arr = self._id_array(ids, "annotations", start, "id")
        img_arr = self._id_array(imgs, "annotations", start, "image_id")
        cat_arr = self._id_array(cats, "annotations", start, "category_id")
        for arr, col in ((id_arr, self._ann), (img_arr, self._ref_img),
                         (cat_arr, self._ref_cat)):
            col.add(arr, start, arr != _NO_ID)
        if rle_rows:
            self._rle.append(np.array(rle_rows, np.int64).reshape(-1, 4))
        if kp_counted:
            rows_kp = np.array(kp_counted, np.int64)
            lens = [len(records[r]["keypoints"]) for r in kp_counted]
            self._kp.append(np.stack([rows_kp + start, cat_arr[rows_kp],
                                      np.array(lens, np.int64)], axis=1))
        area_arr = np.array(areas, np.float64)
        kind_arr = np.array(kinds, np.int64)
        self._check_boxes(records, start, bb_flat, bb_bad, img_arr, area_arr, kind_arr)
        if ring_len:
            rows = np.flatnonzero(kind_arr > 0)
            self._check_polygons(records, start, pg_flat, ring_len, rows, kind_arr[rows],
                                 area_arr[rows])
        if kp_rows:
            self._check_keypoints(records, start, kp_flat, kp_len, kp_rows)

    def feed_raw_annotations(self, raws: list[msgspec.Raw], start: int = 0) -> bool:
        """A chunk of the annotations array as raw JSON records, read by the reader
        (:func:`cocokit.io.coco.annotation_decoder`) into columns: ids, boxes and areas
        are numpy columns, polygons and keypoints one flat float64 array each, and no
        Python object is made per record. Returns False, having fed nothing, when the
        chunk holds anything the columns cannot say as :meth:`feed_annotations` would
        (a type or a value out of place, a bad ring, NaN, ...): feed it that way then.
        Either way the report is the same.
        """
        self._check_open()
        with gc_paused():
            table = self._read_annotations(raws, start)
            if table is None:
                return False
            return self._feed_table(table, start)

    def _read_annotations(self, raws: list[msgspec.Raw], start: int) -> Annotations | None:
        if self._decoder is None:
            self._decoder = annotation_decoder(self.source)
        try:
            return self._decoder.decode(raws, start)
        except (InputError, msgspec.DecodeError, OverflowError):
            return None

    def _feed_table(self, t: Annotations, start: int) -> bool:
        n = len(t)
        ids, img, cat = t.id, t.image_id, t.category_id
        if n and ((ids == _NO_ID).any() or (img == _NO_ID).any() or (cat == _NO_ID).any()
                  or (t.iscrowd == ISCROWD_AS_READ).any() or np.isinf(t.area).any()):
            return False
        bbox = t.bbox
        has_box = ~np.isnan(bbox).all(axis=1)
        if not np.isfinite(bbox[has_box]).all():
            return False
        # segmentations: polygons (their numbers into one flat array), RLE objects (few)
        have = np.flatnonzero(present(t.segmentation))
        raws = t.segmentation[have].tolist()
        first = heads(raws)
        is_rle, is_poly = first == 123, first == 91  # "{", "["
        if not (is_rle | is_poly).all():  # a string, a number, ...: not here
            return False
        rle = have[is_rle]
        try:
            rles = [_RLE.decode(raws[k]) for k in np.flatnonzero(is_rle).tolist()]
            rings, ring_len, coords = read_arrays(
                raws if is_poly.all() else [raws[k] for k in np.flatnonzero(is_poly).tolist()], 2)
        except (msgspec.DecodeError, ValueError):
            return False
        poly = have[is_poly][rings > 0]
        rings = rings[rings > 0]
        kinds = np.zeros(n, np.int64)
        if ((ring_len < 6) | (ring_len % 2 == 1)).any():
            return False
        kinds[poly] = rings
        kinds[rle] = -1
        if (~has_box & (kinds == 0)).any():
            return False  # missing-geometry: as feed_annotations says it
        # keypoints: triplets of finite numbers
        kp_rows = np.flatnonzero(present(t.keypoints))
        if len(kp_rows):
            try:
                _, kp_len, _ = read_arrays(t.keypoints[kp_rows].tolist(), 1)
            except ValueError:
                return False
            if (kp_len % 3).any():
                return False
            self._kp.append(np.stack([kp_rows + start, cat[kp_rows], kp_len], axis=1))
        # everything is in columns now: the checks of feed_annotations, on them
        self._fed.add("annotations")
        for arr, col in ((ids, self._ann), (img, self._ref_img), (cat, self._ref_cat)):
            col.add(arr, start)
        area = t.area
        rle_rows: list[tuple[int, int, int, int]] = []
        for k, r in zip(rle.tolist(), rles, strict=True):
            self._feed_rle(r, start + k, int(img[k]), float(area[k]), rle_rows)
        if rle_rows:
            self._rle.append(np.array(rle_rows, np.int64).reshape(-1, 4))
        self._check_boxes([], start, bbox.ravel(), np.flatnonzero(~has_box), img, area,
                          kinds)
        if len(poly):
            self._check_polygons([], start, coords, ring_len, poly, rings, area[poly])
        return True

    def _slow_id(self, section: str, i: int, key: str, v: Any) -> int | None:
        """An id that is not a plain int: the int, or None after reporting it."""
        out = _as_id(v)
        if out is None:
            self._bad_id(section, i, key, v)
        return out

    def _id_array(self, values: list[int | None], section: str, start: int,
                  key: str) -> np.ndarray:
        """int64 array of ids, _NO_ID where there is none; ids out of range are reported."""
        try:
            arr = np.array(values, np.int64)
            if not (arr == _NO_ID).any():
                return arr
        except (TypeError, OverflowError):  # None, or an int beyond int64
            pass
        out = []
        for k, v in enumerate(values):
            if v is None:
                v = _NO_ID
            elif not _ID_MIN <= v <= _I64_MAX:
                self._bad_id(section, start + k, key, v)
                v = _NO_ID
            out.append(v)
        return np.array(out, np.int64)

    def _slow_area(self, area: Any, i: int) -> float:
        """The area as a float, NaN when absent or reported as wrong."""
        if area is _MISSING:
            return math.nan
        if _is_number(area):
            value = _float_or_inf(area)
            if math.isfinite(value):
                return value
            self.add("non-finite", f"annotations[{i}].area",
                     f"area must be a finite number, found {_num(area)}")
        else:
            self.add("bad-type", f"annotations[{i}].area",
                     f"area must be a number, {_found(area)}")
        return math.nan

    def _check_iscrowd(self, c: Any, i: int) -> None:
        if _as_id(c) not in (0, 1):
            self.add("bad-iscrowd", f"annotations[{i}].iscrowd",
                     f"iscrowd must be 0 or 1, {_found(c)}")

    # -- annotation details -------------------------------------------------------------

    def _bad_polygons(self, seg: list[Any], i: int) -> None:
        for j, ring in enumerate(seg):
            path = f"annotations[{i}].segmentation[{j}]"
            if type(ring) is not list:
                self.add("bad-segmentation", path,
                         "a polygon must be an array of numbers [x1, y1, x2, y2, ...], "
                         f"{_found(ring)}")
                continue
            n = len(ring)
            if n & 1:
                self.add("bad-polygon", path,
                         f"a polygon must have an even number of coordinates, found {n}: "
                         f"{_short(ring)}")
            elif n < 6:
                self.add("bad-polygon", path,
                         f"a polygon must have at least 6 coordinates (3 points), found {n}: "
                         f"{_short(ring)}")
            elif not all(_is_number(x) for x in ring):
                bad = next(x for x in ring if not _is_number(x))
                self.add("bad-polygon", path,
                         f"polygon coordinates must be numbers, {_found(bad)} in "
                         f"{_short(ring)}")
            elif not all(math.isfinite(_float_or_inf(x)) for x in ring):
                self.add("non-finite", path,
                         f"polygon coordinates must be finite, found {_short(ring)}")

    def _feed_rle(self, seg: Mapping[str, Any], i: int, image_id: int | None,
                  area_val: float, rows: list[tuple[int, int, int, int]]) -> None:
        path = f"annotations[{i}].segmentation"
        size = seg.get("size", _MISSING)
        counts = seg.get("counts", _MISSING)
        h = w = -1
        if (isinstance(size, list) and len(size) == 2
                and all(_as_id(s) is not None and s >= 0 for s in size)):
            h, w = int(size[0]), int(size[1])
        elif size is _MISSING:
            self.add("bad-rle", path,
                     'RLE object has no "size"; expected [height, width]'
                     + ("" if isinstance(counts, (str, list)) else
                        ' (and this object has no "counts" either)'))
        else:
            self.add("bad-rle", f"{path}.size",
                     f"RLE size must be [height, width], two non-negative integers, "
                     f"{_found(size)}")
        if 0 <= h <= _I64_MAX and w <= _I64_MAX:
            rle_image = _NO_ID
            if image_id is not None and _ID_MIN <= image_id <= _I64_MAX:
                rle_image = image_id
            rows.append((i, rle_image, h, w))
        counts_ok = False
        runs: np.ndarray | None = None  # the run lengths, decoded once
        if isinstance(counts, str):
            counts_ok = counts.isascii()
            if not counts_ok:
                self.add("bad-rle", f"{path}.counts",
                         f"compressed RLE counts must be an ASCII string, found {_short(counts)}")
        elif isinstance(counts, list):
            runs = _plain_counts(counts)
            counts_ok = runs is not None or all(
                _as_id(c) is not None and c >= 0 for c in counts)
            if not counts_ok:
                bad = next(c for c in counts if _as_id(c) is None or c < 0)
                self.add("bad-rle", f"{path}.counts",
                         "uncompressed RLE counts must be non-negative integers, "
                         f"{_found(bad)} in {_short(counts)}")
        elif counts is _MISSING:
            if size is not _MISSING:
                self.add("bad-rle", path,
                         'RLE object has no "counts"; expected a string or an array of '
                         "integers")
        else:
            self.add("bad-rle", f"{path}.counts",
                     f"RLE counts must be a string or an array of integers, {_found(counts)}")
        if not counts_ok or h < 0:
            return
        if isinstance(counts, str):
            runs = rle_string_counts(counts)  # None: rle_counts_problem says why
        why = rle_counts_problem(counts, h, w, runs)  # the contract's words
        if why is not None:
            self.add(why[0], f"{path}.counts", why[1])
            return
        if area_val == area_val:  # an area to compare
            mask_area = _rle_mask_area(counts, h, w, runs)
            if mask_area is not None:
                self._compare_area(i, area_val, mask_area, "RLE mask")

    @staticmethod
    def _area_message(area: float, computed: float, what: str) -> str:
        return (f"area {_num(area)} differs from the {what} area {_num(computed)} by more "
                f"than {AREA_REL_TOLERANCE:.0%} and {AREA_ABS_TOLERANCE:g} px")

    def _compare_area(self, i: int, area: float, computed: float, what: str) -> None:
        diff = abs(area - computed)
        if diff > AREA_REL_TOLERANCE * computed and diff > AREA_ABS_TOLERANCE:
            self.add("area-mismatch", f"annotations[{i}].area",
                     self._area_message(area, computed, what))

    def _check_boxes(self, records: list[Any], start: int, flat: list[Any] | np.ndarray,
                     bad_rows: list[int] | np.ndarray, img: np.ndarray, areas: np.ndarray,
                     kinds: np.ndarray) -> None:
        n = len(flat) // 4  # 4 values a record, NaN where there is no valid bbox
        arr = _floats(flat, strict=True)
        valid = np.ones(n, bool)
        valid[bad_rows] = False
        if arr is None:  # some box holds a non-number: find which, row by row
            arr = np.full(4 * n, np.nan)
            for r in np.flatnonzero(valid):
                b = records[r]["bbox"]
                if all(_is_number(x) for x in b):
                    arr[4 * r : 4 * r + 4] = [_float_or_inf(x) for x in b]
                else:
                    valid[r] = False
                    self.add("bad-bbox", f"annotations[{start + r}].bbox",
                             "bbox must be an array of 4 numbers [x, y, width, height], "
                             f"found {_short(b)}")
        boxes = arr.reshape(-1, 4)
        nonfinite = np.flatnonzero(valid & ~np.isfinite(boxes).all(axis=1))
        for r in nonfinite:
            self.add("non-finite", f"annotations[{start + r}].bbox",
                     f"bbox values must be finite, found {_short(records[r]['bbox'])}")
        valid[nonfinite] = False
        wh = boxes[:, 2:]
        with np.errstate(invalid="ignore"):
            negative = np.flatnonzero(valid & (wh < 0).any(axis=1))
        valid[negative] = False

        def make_negative(k: int) -> tuple[str, str]:
            r = negative[k]
            return (f"annotations[{start + r}].bbox",
                    "bbox width and height must be >= 0, found width "
                    f"{_num(boxes[r, 2])} and height {_num(boxes[r, 3])} in "
                    f"{_short(boxes[r].tolist())}")

        self._add_many("negative-bbox-size", len(negative), make_negative,
                       lambda k: f"annotations[{start + negative[k]}].bbox")
        with np.errstate(invalid="ignore"):
            zero = np.flatnonzero(valid & (wh == 0).any(axis=1))

        def make_zero(k: int) -> tuple[str, str]:
            r = zero[k]
            return (f"annotations[{start + r}].bbox",
                    f"bbox has zero width or height: {_short(boxes[r].tolist())}")

        self._add_many("zero-area-bbox", len(zero), make_zero,
                       lambda k: f"annotations[{start + zero[k]}].bbox")
        # the area of a box-only annotation larger than its box
        box_area = wh[:, 0] * wh[:, 1]
        with np.errstate(invalid="ignore"):
            big = np.flatnonzero(valid & (kinds == 0) & (areas > box_area * BOX_AREA_SLACK))

        def make_big(k: int) -> tuple[str, str]:
            r = big[k]
            return (f"annotations[{start + r}].area",
                    f"area {_num(areas[r])} is larger than its box "
                    f"{_num(boxes[r, 2])} x {_num(boxes[r, 3])} = {_num(box_area[r])} "
                    f"(by more than {BOX_AREA_SLACK - 1:.0%}) and there is no segmentation")

        self._add_many("area-mismatch", len(big), make_big,
                       lambda k: f"annotations[{start + big[k]}].area")
        keep = np.flatnonzero(valid & (img != _NO_ID))
        box_idx, box_img, boxes = keep + start, img[keep], boxes[keep]
        if "images" in self._fed:  # check now the boxes whose image is known
            found = self._boxes_vs_images(box_idx, box_img, boxes, self._images_so_far())
            later = ~found
            box_idx, box_img, boxes = box_idx[later], box_img[later], boxes[later]
        if len(box_idx):
            self._box_idx.append(box_idx)
            self._box_img.append(box_img)
            self._box.append(boxes)

    def _images_so_far(self) -> _ImageTable:
        """The images fed so far (the first record of each id, by index)."""
        if self._image_table is None:
            uniq, first, _, _ = _first_of_duplicates(self._img)
            self._image_table = self._table(uniq, first)
        return self._image_table

    def _table(self, uniq: np.ndarray, first: np.ndarray) -> _ImageTable:
        w = _cat(self._img_w, np.float32)
        h = _cat(self._img_h, np.float32)
        self._img_w, self._img_h = [w], [h]
        return (uniq, w[first], h[first], self._img.index_at(first))

    def _check_polygons(self, records: list[Any], start: int, flat: list[Any] | np.ndarray,
                        ring_len: list[int] | np.ndarray, rows: np.ndarray, rings: np.ndarray,
                        area: np.ndarray) -> None:
        """Numbers and areas of the valid-looking polygons of ``rows`` (block positions)."""
        arr, bad_type, nonfinite = _grouped_floats(flat, ring_len)
        ann_start = np.zeros(len(rings), np.int64)
        np.cumsum(rings[:-1], out=ann_start[1:])
        if bad_type.any() or nonfinite.any():
            bad_ann = np.logical_or.reduceat(bad_type | nonfinite, ann_start)
            for a in np.flatnonzero(bad_ann):
                r = int(rows[a])
                self._bad_polygons(records[r]["segmentation"], start + r)
        # shoelace, every ring at once (NaN for rings reported above)
        vertex_offsets = np.zeros(len(ring_len) + 1, np.int64)
        np.cumsum(np.asarray(ring_len, np.int64) // 2, out=vertex_offsets[1:])
        ring_area = ring_areas(arr, vertex_offsets)
        with np.errstate(invalid="ignore", over="ignore"):
            poly_area = np.add.reduceat(ring_area, ann_start)
            diff = np.abs(area - poly_area)
            off = np.flatnonzero((diff > AREA_REL_TOLERANCE * poly_area)
                                 & (diff > AREA_ABS_TOLERANCE))

        def make(k: int) -> tuple[str, str]:
            a = off[k]
            return (f"annotations[{start + int(rows[a])}].area",
                    self._area_message(float(area[a]), float(poly_area[a]),
                                       "polygon (shoelace)"))

        self._add_many("area-mismatch", len(off), make,
                       lambda k: f"annotations[{start + int(rows[off[k]])}].area")

    def _check_keypoints(self, records: list[Any], start: int, flat: list[Any],
                         lens: list[int], rows: list[int]) -> None:
        _, bad_type, nonfinite = _grouped_floats(flat, lens)
        for g in np.flatnonzero(bad_type):
            r = rows[g]
            kp = records[r]["keypoints"]
            bad = next(v for v in kp if not _is_number(v))
            self.add("bad-keypoints", f"annotations[{start + r}].keypoints",
                     f"keypoints must be numbers, {_found(bad)} in {_short(kp)}")
        for g in np.flatnonzero(nonfinite):
            r = rows[g]
            self.add("non-finite", f"annotations[{start + r}].keypoints",
                     f"keypoints must be finite, found {_short(records[r]['keypoints'])}")

    # -- finish -------------------------------------------------------------------------

    def _duplicates(self, section: str, code: str, col: _Ids) -> tuple[np.ndarray, np.ndarray]:
        """Report repeated ids; returns the unique ids and the position of the first of each
        (for annotations, whose table is not needed, nothing when there is no repeat)."""
        if section == "annotations" and not _has_duplicates(col):
            e = np.zeros(0, np.int64)
            return e, e
        uniq, first, dup, dup_first = _first_of_duplicates(col)
        if len(dup):
            ids = col.ids()
            dup_idx = col.index_at(dup)
            first_idx = col.index_at(dup_first)
            order = np.argsort(dup_idx, kind="stable")
            dup_ids, dup_idx, first_idx = ids[dup][order], dup_idx[order], first_idx[order]
            what = _SINGULAR[section]

            def make(k: int) -> tuple[str, str]:
                return (f"{section}[{int(dup_idx[k])}].id",
                        f"{what} id {int(dup_ids[k])} is already used by "
                        f"{section}[{int(first_idx[k])}]; expected unique ids")

            self._add_many(code, len(dup), make)
        return uniq, first

    def _dangling(self, code: str, key: str, col: _Ids, known: np.ndarray,
                  target: str) -> None:
        refs = col.ids()
        bad = np.flatnonzero(~_contains(refs, known))
        if len(bad) == 0:
            return
        idx = col.index_at(bad)
        order = np.argsort(idx, kind="stable")
        bad_refs, idx = refs[bad][order], idx[order]

        def make(k: int) -> tuple[str, str]:
            return (f"annotations[{int(idx[k])}].{key}",
                    f"{key} {int(bad_refs[k])} matches no id in {target} "
                    f"({len(known)} distinct ids)")

        self._add_many(code, len(bad), make, lambda k: f"annotations[{int(idx[k])}].{key}")

    def finish(self) -> Report:
        """Run the checks that need every section and return the report."""
        if self._finished is not None:
            return self._finished
        with gc_paused():
            return self._finish()

    def _finish(self) -> Report:
        img_uniq, img_first = self._duplicates("images", "duplicate-image-id", self._img)
        self._duplicates("annotations", "duplicate-annotation-id", self._ann)
        cat_uniq, cat_first = self._duplicates("categories", "duplicate-category-id",
                                               self._cat)
        have_images = "images" in self._fed and "images" not in self._missing
        have_cats = "categories" in self._fed and "categories" not in self._missing
        if have_images:
            self._dangling("dangling-image-id", "image_id", self._ref_img, img_uniq, "images")
        if have_cats:
            self._dangling("dangling-category-id", "category_id", self._ref_cat, cat_uniq,
                           "categories")
        if have_images:
            table = self._table(img_uniq, img_first)
            self._boxes_vs_images(_cat(self._box_idx, np.int64), _cat(self._box_img, np.int64),
                                  _cat(self._box, np.float64, 4), table)
            self._rles_vs_images(*table)
        if have_cats:
            self._keypoints_vs_categories()
        if have_cats and "annotations" in self._fed and "annotations" not in self._missing:
            used = _distinct(self._ref_cat.ids())
            _, is_used = _lookup(cat_uniq, used)
            unused_ids = cat_uniq[~is_used]
            unused = self._cat.index_at(cat_first[~is_used])
            order = np.argsort(unused, kind="stable")
            unused, unused_ids = unused[order], unused_ids[order]

            def make(k: int) -> tuple[str, str]:
                cid = int(unused_ids[k])
                name = self._cat_names.get(cid)
                label = f" ({_short(name, 40)})" if isinstance(name, str) else ""
                return (f"categories[{int(unused[k])}]",
                        f"category {cid}{label} is declared but no annotation uses it")

            self._add_many("unused-category", len(unused), make)

        self._prune(len(self._stored) if self.max_problems is None else self.max_problems)
        report = Report(self.source, self._stored, self._truncated, self._truncated_errors)
        self._finished = report
        # free the arrays
        self._box_idx, self._box_img, self._box, self._kp = [], [], [], []
        self._ann = self._ref_img = self._ref_cat = _Ids()
        return report

    def _boxes_vs_images(self, box_idx: np.ndarray, box_img: np.ndarray, boxes: np.ndarray,
                         table: _ImageTable) -> np.ndarray:
        """Warn about boxes outside their image; returns which boxes had their image."""
        uniq, uw, uh, uidx = table
        if len(box_idx) == 0 or len(uniq) == 0:
            return np.zeros(len(box_idx), bool)
        pos, found = _lookup(box_img, uniq)
        w = np.where(found, uw[pos], np.nan)
        h = np.where(found, uh[pos], np.nan)
        x, y, bw, bh = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
        tol = BOX_TOLERANCE
        with np.errstate(invalid="ignore"):
            out = (x < -tol) | (y < -tol) | (x + bw > w + tol) | (y + bh > h + tol)
        out &= np.isfinite(w) & np.isfinite(h)
        rows = np.flatnonzero(out)
        rows = rows[np.argsort(box_idx[rows], kind="stable")]

        def make(k: int) -> tuple[str, str]:
            r = rows[k]
            bx, by, ww, hh = boxes[r]
            iw, ih = w[r], h[r]
            iw, ih = int(iw), int(ih)
            why = []
            if bx < -tol:
                why.append(f"x = {_num(bx)} < 0")
            if by < -tol:
                why.append(f"y = {_num(by)} < 0")
            if bx + ww > iw + tol:
                why.append(f"x + width = {_num(bx + ww)} > image width {_num(iw)}")
            if by + hh > ih + tol:
                why.append(f"y + height = {_num(by + hh)} > image height {_num(ih)}")
            return (f"annotations[{int(box_idx[r])}].bbox",
                    f"bbox {_short(boxes[r].tolist())} extends outside its image "
                    f"(images[{int(uidx[pos[r]])}], {_num(iw)} x {_num(ih)}) by more than "
                    f"{_num(tol)} px: " + ", ".join(why))

        self._add_many("bbox-outside-image", len(rows), make,
                       lambda k: f"annotations[{int(box_idx[rows[k]])}].bbox")
        return found

    def _keypoints_vs_categories(self) -> None:
        """``bad-keypoints`` where an annotation's keypoints are not 3 values per name of
        its category's ``keypoints`` list."""
        per = np.array(self._kp_per, np.int64)
        if not self._kp or not (per >= 0).any():
            return
        kp = _cat(self._kp, np.int64, 3)
        kp = kp[np.argsort(kp[:, 0], kind="stable")]
        want = keypoint_value_counts_of(np.array(self._kp_ids, np.int64), per, kp[:, 1])
        bad = np.flatnonzero((want >= 0) & (kp[:, 2] != want))
        self._add_many("bad-keypoints", len(bad), lambda k: (
            f"annotations[{int(kp[bad[k], 0])}].keypoints",
            keypoint_names_message(int(kp[bad[k], 2]), int(want[bad[k]]))))

    def _rles_vs_images(self, uniq: np.ndarray, uw: np.ndarray, uh: np.ndarray,
                        uidx: np.ndarray) -> None:
        if not self._rle:
            return
        rle = _cat(self._rle, np.int64, 4)
        rle = rle[np.argsort(rle[:, 0], kind="stable")]
        pos, found = _lookup(rle[:, 1], uniq)
        for r in np.flatnonzero(found):
            iw, ih = uw[pos[r]], uh[pos[r]]
            if not (math.isfinite(iw) and math.isfinite(ih)):
                continue
            i, _, h, w = (int(v) for v in rle[r])
            if (h, w) != (int(ih), int(iw)):
                self.add("rle-size-mismatch", f"annotations[{i}].segmentation.size",
                         f"RLE size [{h}, {w}] differs from its image's [height, width] "
                         f"[{int(ih)}, {int(iw)}] (images[{int(uidx[pos[r]])}])")


# --------------------------------------------------------------------------------------
# Entry points


def validate_document(doc: Any, source: str = "<document>", *,
                      max_problems: int | None = None) -> Report:
    """Validate a parsed JSON document (plain Python objects)."""
    with gc_paused():
        return _validate_document(doc, source, max_problems)


def _validate_document(doc: Any, source: str, max_problems: int | None) -> Report:
    v = Validator(source, max_problems)
    if not isinstance(doc, Mapping):
        said = describe_document(doc)
        v.add("top-not-object", "",
              'the document must be a JSON object with "images", "annotations" and '
              f'"categories" arrays, {_found(doc)}' + (f"; {said}" if said else ""))
        return v.finish()
    v.feed_top(list(doc))
    feeders = {"categories": v.feed_categories, "images": v.feed_images,
               "annotations": v.feed_annotations}
    for key, feed in feeders.items():
        if key not in doc:
            continue
        section = doc[key]
        if isinstance(section, list):
            feed(section)
        else:
            v.add("section-not-array", key,
                  f'"{key}" must be an array of {_SINGULAR[key]} records, {_found(section)}')
    return v.finish()


#: Records decoded to Python objects at a time (then fed and dropped).
CHUNK_RECORDS = 50_000
#: Bytes per run of records read at a time when streaming a file.
STREAM_CHUNK_BYTES = 8 << 20

_SECTIONS = ("categories", "images", "annotations")  # the order of feeding
#: ``progress(done, total)``: records checked of the three arrays
Progress = Callable[[int, int], None]
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])


class _RecordSyntax(Exception):
    """A record that the skipping pass accepted but the full decoder refuses."""

    def __init__(self, index: int, reason: str) -> None:
        self.index = index
        self.reason = reason


def _parse_int(s: str) -> Any:
    try:
        return int(s)
    except ValueError:  # beyond Python's digit limit for int(): not an integer we keep
        return -_INF if s.startswith("-") else _INF


def _decode_records(raws: list[msgspec.Raw]) -> list[Any]:
    """A run of raw records as Python objects (numbers beyond the float range as
    infinities, which the checks report where they are)."""
    text = b"".join((b"[", b",".join(raws), b"]"))
    try:
        out: list[Any] = msgspec.json.decode(text)
        return out
    except msgspec.ValidationError:
        out = json.loads(text, parse_int=_parse_int)
        return out
    except msgspec.DecodeError:
        for j, r in enumerate(raws):
            try:
                msgspec.json.decode(r)
            except msgspec.ValidationError:
                continue
            except msgspec.DecodeError as e:
                raise _RecordSyntax(j, str(e).removeprefix("JSON is malformed: ")) from None
        raise


class _Source:
    """Where the validator's chunks come from: the top-level keys in file order, the
    top-level values other than the three arrays, and runs of raw records."""

    keys: list[str]

    def extra(self) -> Iterable[tuple[str, Any]]:
        """(key, raw text or the InputError decoding it gave) of the other values."""
        raise NotImplementedError

    def not_array(self, key: str) -> bytes | None:
        """The raw text of a section value that is not an array (None when it is one)."""
        raise NotImplementedError

    def runs(self, key: str) -> Iterator[tuple[int, list[msgspec.Raw]]]:
        """(index of the first record, raw records) of an array section, in file order."""
        raise NotImplementedError

    def count(self, key: str) -> int:
        """The number of records of an array section (for progress)."""
        raise NotImplementedError


class _MemorySource(_Source):
    """A whole document in memory: the top level as raw values, each array one run."""

    def __init__(self, data: bytes, source: str) -> None:
        self.top, self.keys, records = read_top(data, source)
        self.source = source
        # the records of each array, split by the top-level pass or by count(), for runs()
        self._counted: dict[str, list[msgspec.Raw]] = records

    def extra(self) -> Iterable[tuple[str, Any]]:
        return [(k, v) for k, v in self.top.items() if k not in _SECTIONS]

    def not_array(self, key: str) -> bytes | None:
        raw = self.top[key]
        return None if bytes(memoryview(raw)[:1]) == b"[" else bytes(raw)

    def runs(self, key: str) -> Iterator[tuple[int, list[msgspec.Raw]]]:
        raws = self._counted.pop(key, None)
        yield 0, raws if raws is not None else _RAW_LIST.decode(self.top[key])

    def count(self, key: str) -> int:
        return len(self._counted.setdefault(key, _RAW_LIST.decode(self.top[key])))


class _StreamSource(_Source):
    """A file read in runs of about ``chunk_bytes`` (the streaming tokenizer's index)."""

    def __init__(self, path: str, chunk_bytes: int,
                 scanned: Callable[[int, int], None] | None = None) -> None:
        from .io.stream import CocoStream

        self.stream = CocoStream(path, chunk_bytes, strict=False, progress=scanned)
        self.keys = list(self.stream.file_keys)

    def extra(self) -> Iterable[tuple[str, Any]]:
        s = self.stream
        return [(k, s.extra_errors.get(k)) for k in self.keys if k not in _SECTIONS]

    def not_array(self, key: str) -> bytes | None:
        raw = self.stream.raw_values.get(key)
        if key == "categories":
            return raw if raw is not None and raw[:1] != b"[" else None
        return raw

    def runs(self, key: str) -> Iterator[tuple[int, list[msgspec.Raw]]]:
        if key == "categories":
            yield 0, _RAW_LIST.decode(self.stream.raw_values["categories"])
            return
        for run, text in self.stream._run_texts(key):
            yield run.first, _RAW_LIST.decode(text)

    def count(self, key: str) -> int:
        if key == "categories":
            return len(_RAW_LIST.decode(self.stream.raw_values["categories"]))
        return sum(r.count for r in self.stream.runs[key])


def _head(name: str, data: bytes | None = None) -> bytes:
    """The first bytes of the document (for saying what a file that is not COCO is)."""
    if data is not None:
        return data[:HEAD_BYTES]
    try:
        with open(name, "rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def _validate_source(make: Callable[[], _Source], name: str, max_problems: int | None,
                     chunk: int, data: bytes | None = None,
                     progress: Progress | None = None) -> Report:
    """The one validation pass: the top level, then each section chunk by chunk.

    ``data``: the document's bytes when it is in memory (else the file ``name`` is read
    again for its first bytes, to say what a file that is not COCO looks like).
    ``progress(done, total)``: called after each chunk of records is checked."""
    with gc_paused():  # millions of short-lived objects and no cycles
        return _validate_chunks(make, name, max_problems, chunk, data, progress)


def _validate_chunks(make: Callable[[], _Source], name: str, max_problems: int | None,
                     chunk: int, data: bytes | None,
                     progress: Progress | None = None) -> Report:
    v = Validator(name, max_problems)
    try:
        src = make()
    except DocumentError as e:
        markup = describe_markup(_head(name, data)) if e.code == "json-syntax" else None
        v.add(e.code, e.where if e.code != "json-syntax" else "",
              e.problem_message() + (f"; {markup}" if markup else ""))
        return v.finish()
    except NotAnObject as e:
        said = describe_head(_head(name, data))
        v.add("top-not-object", "",
              'the document must be a JSON object with "images", "annotations" and '
              f'"categories" arrays, found {e.kind}' + (f"; {said}" if said else ""))
        return v.finish()
    v.feed_top(src.keys)
    for key, raw in src.extra():
        if isinstance(raw, InputError):
            v.add("non-finite", key, raw.message)
        elif raw is not None:
            try:
                decode_extra(raw, name, key)
            except InputError as e:
                v.add("non-finite", key, e.message)
            except msgspec.DecodeError as e:
                v.add("json-syntax", key, f"malformed JSON in this value: {e}")
    feeders = {"categories": v.feed_categories, "images": v.feed_images,
               "annotations": v.feed_annotations}
    done = total = 0
    if progress is not None:
        total = sum(src.count(k) for k in _SECTIONS
                    if k in src.keys and src.not_array(k) is None)
    for key in _SECTIONS:
        if key not in src.keys:
            continue
        other = src.not_array(key)
        if other is not None:
            value = _decode_value(other)
            v.add("section-not-array", key,
                  f'"{key}" must be an array of {_SINGULAR[key]} records, {_found(value)}')
            continue
        feed = feeders[key]
        fed = False
        for first, raws in src.runs(key):
            for s in range(0, len(raws), chunk):
                part = raws[s : s + chunk]
                if key == "annotations" and v.feed_raw_annotations(part, first + s):
                    fed = True  # read into columns by the reader
                    if progress is not None:
                        done += len(part)
                        progress(done, total)
                    continue
                try:
                    records = _decode_records(part)
                except _RecordSyntax as e:
                    v.add("json-syntax", f"{key}[{first + s + e.index}]",
                          f"malformed JSON in this record: {e.reason}")
                    records = []
                feed(records, first + s)
                fed = True
                del records
                if progress is not None:
                    done += len(part)
                    progress(done, total)
            del raws
        if not fed:
            feed([], 0)
    return v.finish()


def _decode_value(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:
        return json.loads(raw, parse_int=_parse_int)


def validate_bytes(data: bytes | bytearray | memoryview, source: str = "<bytes>", *,
                   max_problems: int | None = None, chunk: int = CHUNK_RECORDS,
                   progress: Progress | None = None) -> Report:
    """Validate the JSON bytes of a COCO document (malformed JSON: one ``json-syntax``
    error, and see :mod:`cocokit.io.jsontext`); ``chunk`` records are decoded at a time,
    and ``progress(done, total)`` is called after each chunk (records of the three
    arrays)."""
    from .io.files import decompress

    raw = bytes(data)
    try:
        raw = decompress(raw, source)
    except InputError:  # not gzip after all: the JSON checks report what the bytes are
        pass
    return _validate_source(lambda: _MemorySource(raw, source), source, max_problems, chunk,
                            raw, progress)


def validate_file(path: str | os.PathLike[str], *, max_problems: int | None = None,
                  stream: bool | None = None, chunk: int = CHUNK_RECORDS,
                  chunk_bytes: int = STREAM_CHUNK_BYTES, progress: Progress | None = None,
                  scanned: Progress | None = None) -> Report:
    """Read and validate a COCO JSON file; an unreadable file raises InputError.

    The file is read whole (``stream=False``) or in runs of about ``chunk_bytes``
    (``stream=True``; default: when it is big for this machine's memory). Either way
    the same checks see the same records, ``chunk`` at a time, and the report is the
    same; only the memory held differs. ``progress(done, total)`` is called after each
    chunk of records checked; streamed, ``scanned(bytes, size)`` as the file is indexed.
    """
    name = os.fspath(path)
    from .io import files

    if files.is_url(name) or name.lower().endswith(".gz"):  # read whole: no runs of a URL
        return validate_bytes(files.read_document(name), name, max_problems=max_problems,
                              chunk=chunk, progress=progress)
    if stream is None:
        from .io.stream import should_stream

        try:
            stream = should_stream(os.path.getsize(name))
        except OSError:
            stream = False
    if os.path.isdir(name):
        said = describe_path(name)
        raise InputError(name, None, said or "is a directory, expected a COCO JSON file")
    if stream:
        return _validate_source(lambda: _StreamSource(name, chunk_bytes, scanned), name,
                                max_problems, chunk, progress=progress)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(name, None, f"cannot read the file: {e.strerror or e}") from e
    return validate_bytes(data, name, max_problems=max_problems, chunk=chunk,
                          progress=progress)


def validate(obj: Any, source: str | None = None, *,
             max_problems: int | None = None) -> Report:
    """Validate a file path, JSON bytes, a parsed document or a :class:`cocokit.Dataset`."""
    if isinstance(obj, (str, os.PathLike)):
        return validate_file(obj, max_problems=max_problems)
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return validate_bytes(obj, source or "<bytes>", max_problems=max_problems)
    if isinstance(obj, Mapping) or isinstance(obj, list):
        return validate_document(obj, source or "<document>", max_problems=max_problems)
    from .dataset import Dataset

    if isinstance(obj, Dataset):
        return validate_document(obj.document(), source or "<dataset>",
                                 max_problems=max_problems)
    return validate_document(obj, source or "<document>", max_problems=max_problems)
