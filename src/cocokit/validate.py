"""Validation of COCO documents: every problem, reported as data.

A :class:`Validator` is fed the sections of a document (in any order, in chunks) and
returns a :class:`Report` listing every :class:`Problem` it found, each with a stable
machine ``code`` (see :data:`CODES`), a severity, the JSON path of the offending value
(``annotations[1834].bbox``) and one human sentence.

>>> report = validate_document({"images": [], "annotations": [], "categories": []})
>>> report.ok
True

The per-record checks are tight Python loops; everything that needs more than one
record (duplicate ids, dangling references, boxes against their image, RLE sizes
against their image) is decided in :meth:`Validator.finish` with numpy, from id arrays
collected while feeding. Numbers in boxes, polygons and keypoints are checked and
measured in bulk, one numpy array per chunk.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec
import numpy as np

from .errors import InputError, ValidationFailed

__all__ = [
    "AREA_ABS_TOLERANCE",
    "AREA_REL_TOLERANCE",
    "BOX_AREA_SLACK",
    "BOX_TOLERANCE",
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

Severity = Literal["error", "warning"]

#: Every problem code, with a one-line description (for the documentation).
CODES: dict[str, str] = {
    # errors: the document
    "json-syntax": "The file is not well-formed JSON (the message gives line and column).",
    "top-not-object": "The top level of the document is not a JSON object.",
    "missing-key": "A required top-level key (images, annotations, categories) is missing.",
    "section-not-array": "images, annotations or categories is not an array.",
    # errors: records
    "record-not-object": "An image, annotation or category record is not a JSON object.",
    "missing-field": "A record lacks a required field (id, width, height, file_name, "
    "image_id, category_id, name).",
    "missing-geometry": "An annotation has neither a bbox nor a segmentation.",
    "bad-type": "A field has the wrong JSON type (ids must be integers, not booleans; "
    "width/height integers; file_name and name strings; area a number).",
    "bad-image-size": "An image width or height is not positive.",
    "bad-bbox": "A bbox is not an array of 4 numbers [x, y, width, height].",
    "negative-bbox-size": "A bbox has a negative width or height.",
    "non-finite": "A bbox, area, polygon or keypoint holds NaN or an infinity.",
    "bad-iscrowd": "iscrowd is not 0 or 1.",
    "bad-segmentation": "A segmentation is neither an array of polygons nor an RLE object.",
    "bad-polygon": "A polygon has an odd number of coordinates, fewer than 6, or non-numbers.",
    "bad-rle": "An RLE object lacks a valid size [h, w] or counts (a string or "
    "non-negative integers).",
    "rle-counts-sum": "The counts of an uncompressed RLE do not sum to height * width.",
    "rle-size-mismatch": "The size of an RLE differs from its image's [height, width].",
    "bad-keypoints": "keypoints is not an array of numbers whose length is a multiple of 3.",
    "duplicate-image-id": "Two images share an id.",
    "duplicate-annotation-id": "Two annotations share an id.",
    "duplicate-category-id": "Two categories share an id.",
    "dangling-image-id": "An annotation's image_id matches no image.",
    "dangling-category-id": "An annotation's category_id matches no category.",
    # warnings
    "bbox-outside-image": "A bbox extends outside its image (beyond a small tolerance).",
    "zero-area-bbox": "A bbox has zero width or height.",
    "area-mismatch": "An annotation's area disagrees with its segmentation (or exceeds its box).",
    "duplicate-file-name": "Two images share a file_name.",
    "unused-category": "A category is declared but no annotation uses it.",
}

_WARNING_CODES = frozenset(
    {"bbox-outside-image", "zero-area-bbox", "area-mismatch", "duplicate-file-name",
     "unused-category"}
)

#: The severity of every code in :data:`CODES`.
SEVERITIES: dict[str, Severity] = {
    code: ("warning" if code in _WARNING_CODES else "error") for code in CODES
}

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
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1
_NO_ID = _I64_MIN  # marks "no valid image id" in int64 columns
_INF = math.inf
_FAST_NUMBER_TYPES = frozenset({int, float})
_MISSING: Any = object()


# --------------------------------------------------------------------------------------
# The report


@dataclass(frozen=True)
class Problem:
    """One problem: a stable ``code``, its ``severity``, where (``path``) and what."""

    code: str
    severity: Severity
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "severity": self.severity, "path": self.path,
                "message": self.message}


@dataclass
class Report:
    """Every problem found in one document.

    ``truncated`` counts problems that were found but not stored (``max_problems``);
    ``truncated_errors`` how many of those were errors, so :attr:`ok` stays right.
    """

    source: str
    problems: list[Problem] = field(default_factory=list)
    truncated: int = 0
    truncated_errors: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return self.truncated_errors == 0 and all(p.severity != "error" for p in self.problems)

    def codes(self) -> dict[str, int]:
        """How many stored problems have each code."""
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.code] = out.get(p.code, 0) + 1
        return out

    def __str__(self) -> str:
        lines = [f"{self.source}: {p.path}: {p.severity} [{p.code}] {p.message}"
                 for p in self.problems]
        if self.truncated:
            lines.append(
                f"{self.source}: ... and {self.truncated} more problem(s) found but not stored "
                f"({self.truncated_errors} of them errors)"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        n_err = sum(p.severity == "error" for p in self.problems)
        return {
            "source": self.source,
            "ok": self.ok,
            "errors": n_err + self.truncated_errors,
            "warnings": len(self.problems) - n_err + self.truncated - self.truncated_errors,
            "truncated": self.truncated,
            "problems": [p.to_dict() for p in self.problems],
        }

    def raise_for_errors(self) -> None:
        """Raise :class:`cocokit.errors.ValidationFailed` if there is any error."""
        if not self.ok:
            raise ValidationFailed(self)


# --------------------------------------------------------------------------------------
# Formatting values for messages


def _kind(v: Any) -> str:
    """The JSON type name of a value."""
    if v is None:
        return "null"
    if isinstance(v, (bool, np.bool_)):
        return "boolean"
    if isinstance(v, (int, np.integer)):
        return "integer"
    if isinstance(v, (float, np.floating)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (list, tuple)):
        return "array"
    if isinstance(v, Mapping):
        return "object"
    return type(v).__name__


def _num(v: Any) -> str:
    """A number, short: integers as they are, floats with up to 10 significant digits."""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        s = str(int(v))
        return s if len(s) <= 24 else s[:10] + "..." + s[-4:]
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if f != f:
            return "NaN"
        if f in (_INF, -_INF):
            return "Infinity" if f > 0 else "-Infinity"
        return f"{f:.10g}"
    return _short(v)


def _short(v: Any, limit: int = 60) -> str:
    """A JSON-like rendering of ``v`` of at most about ``limit`` characters."""
    if v is None or isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
        return "null" if v is None else _num(v)
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= limit else s[: limit - 4] + '..."'
    if isinstance(v, (list, tuple)):
        parts: list[str] = []
        used = 2
        for k, item in enumerate(v):
            s = _short(item, max(12, limit // 3))
            if used + len(s) > limit and k > 0:
                parts.append(f"... ({len(v)} items)")
                break
            parts.append(s)
            used += len(s) + 2
        return "[" + ", ".join(parts) + "]"
    if isinstance(v, Mapping):
        parts = []
        used = 2
        for k, (key, item) in enumerate(v.items()):
            s = f"{_short(str(key), 24)}: {_short(item, max(12, limit // 3))}"
            if used + len(s) > limit and k > 0:
                parts.append(f"... ({len(v)} keys)")
                break
            parts.append(s)
            used += len(s) + 2
        return "{" + ", ".join(parts) + "}"
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _found(v: Any) -> str:
    """'found <type> <value>' for a message."""
    if v is None:
        return "found null"
    return f"found {_kind(v)} {_short(v)}"


# --------------------------------------------------------------------------------------
# Small helpers


def _is_number(v: Any) -> bool:
    """A JSON number (int or float, numpy scalars too); booleans are not numbers."""
    t = type(v)
    if t is int or t is float:
        return True
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _as_id(v: Any) -> int | None:
    """``v`` as an int64 id, or None when it is not an integer in range (bool is not)."""
    if type(v) is int:
        return v if _I64_MIN <= v <= _I64_MAX else None
    if isinstance(v, np.integer) and not isinstance(v, np.bool_):
        return int(v)
    return None


def _floats(values: list[Any]) -> np.ndarray | None:
    """float64 array of ``values`` if every one is a number, else None."""
    n = len(values)
    if n == 0:
        return np.empty(0, np.float64)
    types = set(map(type, values))
    try:
        if types <= _FAST_NUMBER_TYPES:
            return np.fromiter(values, np.float64, n)
        if all(issubclass(t, (int, float, np.integer, np.floating))
               and not issubclass(t, (bool, np.bool_)) for t in types):
            return np.array([float(v) for v in values], np.float64)
    except OverflowError:  # an integer too large for a float: go value by value
        pass
    return None


def _float_or_inf(v: Any) -> float:
    try:
        return float(v)
    except OverflowError:
        return _INF if v > 0 else -_INF


def _grouped_floats(
    flat: list[Any], lens: list[int]
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


def _first_of_duplicates(
    ids: np.ndarray, idx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique ids with the row of their first occurrence (smallest index), and duplicates.

    Returns ``(unique_ids, first_row, dup_rows, dup_first_rows)``: rows index ``ids``;
    ``dup_rows`` are the later occurrences (by index), ``dup_first_rows`` the first
    occurrence each of them repeats.
    """
    if len(ids) == 0:
        e = np.zeros(0, np.int64)
        return ids, e, e, e
    order = np.lexsort((idx, ids))
    s = ids[order]
    new = np.ones(len(s), bool)
    new[1:] = s[1:] != s[:-1]
    group_start = np.flatnonzero(new)
    first_row = order[group_start]
    group_of = np.cumsum(new) - 1
    dup_pos = np.flatnonzero(~new)
    return s[group_start], first_row, order[dup_pos], first_row[group_of[dup_pos]]


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


def _sort_key(item: tuple[int, Problem]) -> tuple[int, int, int]:
    seq, p = item
    if not p.path:
        return (0, 0, seq)
    m = _PATH_RE.match(p.path)
    if m is None:
        return (4, 0, seq)
    return (_SECTION_RANK.get(m.group(1), 4), int(m.group(2) or -1), seq)


def _mask_api() -> Any:
    try:
        from pycocotools import mask as mask_utils
    except ImportError:  # pragma: no cover - pycocotools is a dependency in practice
        return None
    return mask_utils


# --------------------------------------------------------------------------------------
# The validator


class Validator:
    """Incremental validator: feed sections in any order, in chunks, then :meth:`finish`.

    ``start`` of a ``feed_*`` call is the index of ``records[0]`` in the whole array, so
    paths name the record as it is in the file. Between calls the validator keeps only
    numpy arrays of ids (and of boxes, for the check against image sizes), the few RLE
    sizes and the file names, so a huge file can be validated chunk by chunk.

    References are checked only against sections that were fed: call
    ``feed_images([])`` for an empty images array. A section reported missing by
    :meth:`feed_top` is never checked against.
    """

    def __init__(self, source: str, max_problems: int | None = None) -> None:
        self.source = source
        self.max_problems = max_problems
        self._stored: list[Problem] = []
        self._truncated = 0
        self._truncated_errors = 0
        self._finished: Report | None = None
        self._fed: set[str] = set()
        self._missing: set[str] = set()
        # images
        self._img_ids: list[np.ndarray] = []
        self._img_idx: list[np.ndarray] = []
        self._img_w: list[np.ndarray] = []
        self._img_h: list[np.ndarray] = []
        self._file_names: list[tuple[int, str]] = []
        # categories
        self._cat_ids: list[np.ndarray] = []
        self._cat_idx: list[np.ndarray] = []
        self._cat_names: dict[int, Any] = {}
        # annotations
        self._ann_ids: list[np.ndarray] = []
        self._ann_idx: list[np.ndarray] = []
        self._ref_img: list[np.ndarray] = []
        self._ref_img_idx: list[np.ndarray] = []
        self._ref_cat: list[np.ndarray] = []
        self._ref_cat_idx: list[np.ndarray] = []
        self._box_idx: list[np.ndarray] = []  # boxes to check against their image
        self._box_img: list[np.ndarray] = []
        self._box: list[np.ndarray] = []
        self._rle: list[tuple[int, int, int, int]] = []  # (index, image_id, h, w)

    # -- problems -----------------------------------------------------------------------

    def _room(self) -> int | None:
        if self.max_problems is None:
            return None
        return max(0, self.max_problems - len(self._stored))

    def add(self, code: str, path: str, message: str) -> None:
        """Record a problem (for readers that find one themselves, e.g. a bad section)."""
        severity = SEVERITIES[code]
        if self.max_problems is not None and len(self._stored) >= self.max_problems:
            self._truncated += 1
            if severity == "error":
                self._truncated_errors += 1
            return
        self._stored.append(Problem(code, severity, path, message))

    def _add_many(self, code: str, n: int, make: Any) -> None:
        """Add ``n`` problems of one code; ``make(k)`` -> (path, message), called lazily."""
        room = self._room()
        keep = n if room is None else min(n, room)
        for k in range(keep):
            path, message = make(k)
            self._stored.append(Problem(code, SEVERITIES[code], path, message))
        rest = n - keep
        if rest:
            self._truncated += rest
            if SEVERITIES[code] == "error":
                self._truncated_errors += rest

    def _check_open(self) -> None:
        if self._finished is not None:
            raise RuntimeError("Validator.finish() was already called")

    # -- top level ----------------------------------------------------------------------

    def feed_top(self, doc_keys: Iterable[str]) -> None:
        """The top-level keys present: an error for each required array missing."""
        self._check_open()
        keys = set(doc_keys)
        for key in _REQUIRED_SECTIONS:
            if key not in keys:
                self._missing.add(key)
                self.add("missing-key", "",
                         f'the document has no "{key}" key; expected an array of {key[:-1]} '
                         f"records, found only {_short(sorted(keys))}")

    # -- records ------------------------------------------------------------------------

    def _bad_record(self, section: str, i: int, r: Any) -> None:
        self.add("record-not-object", f"{section}[{i}]",
                 f"a {section[:-1]} record must be an object, {_found(r)}")

    def _bad_id(self, section: str, i: int, key: str, v: Any) -> None:
        path = f"{section}[{i}].{key}"
        what = "category" if section == "categories" else section[:-1]
        if v is _MISSING:
            expected = {"id": f"the integer id of this {what}",
                        "image_id": "the integer id of its image",
                        "category_id": "the integer id of its category"}[key]
            self.add("missing-field", path, f'{what} has no "{key}"; expected {expected}')
        else:
            extra = ("an integer in the int64 range" if isinstance(v, int)
                     and not isinstance(v, bool) else "an integer")
            self.add("bad-type", path, f'"{key}" must be {extra}, {_found(v)}')

    def feed_categories(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the categories array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        self._fed.add("categories")
        ids: list[int] = []
        idx: list[int] = []
        for k, r in enumerate(records):
            i = start + k
            if type(r) is not dict:
                if not isinstance(r, Mapping):
                    self._bad_record("categories", i, r)
                    continue
            v = r.get("id", _MISSING)
            cid = v if type(v) is int and _I64_MIN <= v <= _I64_MAX else _as_id(v)
            if cid is None:
                self._bad_id("categories", i, "id", v)
            else:
                ids.append(cid)
                idx.append(i)
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
        self._cat_ids.append(np.array(ids, np.int64))
        self._cat_idx.append(np.array(idx, np.int64))

    def feed_images(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the images array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        self._fed.add("images")
        add = self.add
        ids: list[int] = []
        idx: list[int] = []
        ws: list[float] = []
        hs: list[float] = []
        names = self._file_names
        nan = math.nan
        for k, r in enumerate(records):
            i = start + k
            if type(r) is not dict:
                if not isinstance(r, Mapping):
                    self._bad_record("images", i, r)
                    continue
            v = r.get("id", _MISSING)
            iid = v if type(v) is int and _I64_MIN <= v <= _I64_MAX else _as_id(v)
            if iid is None:
                self._bad_id("images", i, "id", v)
            sizes: list[float] = []
            for key in ("width", "height"):
                s = r.get(key, _MISSING)
                if type(s) is int and s > 0:
                    sizes.append(s)
                    continue
                sv = _as_id(s)
                if sv is not None and sv > 0:
                    sizes.append(sv)
                    continue
                sizes.append(nan)
                path = f"images[{i}].{key}"
                if s is _MISSING:
                    add("missing-field", path,
                        f'image has no "{key}"; expected a positive integer (pixels)')
                elif sv is not None:
                    add("bad-image-size", path,
                        f"image {key} must be a positive integer, found {_num(s)}")
                else:
                    add("bad-type", path, f"image {key} must be a positive integer, {_found(s)}")
            if iid is not None:
                ids.append(iid)
                idx.append(i)
                ws.append(sizes[0])
                hs.append(sizes[1])
            fn = r.get("file_name", _MISSING)
            if type(fn) is str:
                names.append((i, fn))
            elif fn is _MISSING:
                add("missing-field", f"images[{i}].file_name",
                    'image has no "file_name"; expected a string')
            else:
                add("bad-type", f"images[{i}].file_name",
                    f'image "file_name" must be a string, {_found(fn)}')
        self._img_ids.append(np.array(ids, np.int64))
        self._img_idx.append(np.array(idx, np.int64))
        self._img_w.append(np.array(ws, np.float64))
        self._img_h.append(np.array(hs, np.float64))

    def feed_annotations(self, records: list[Any], start: int = 0) -> None:
        """A chunk of the annotations array; ``start`` is the index of ``records[0]``."""
        self._check_open()
        self._fed.add("annotations")
        add = self.add
        nan = math.nan
        inf = _INF
        ids: list[int] = []
        ids_idx: list[int] = []
        ref_img: list[int] = []
        ref_img_idx: list[int] = []
        ref_cat: list[int] = []
        ref_cat_idx: list[int] = []
        # boxes: 4 values per row laid end to end
        bb_flat: list[Any] = []
        bb_idx: list[int] = []
        bb_img: list[int] = []
        bb_area: list[float] = []
        bb_only: list[bool] = []
        # polygons: rings laid end to end
        pg_flat: list[Any] = []
        pg_ring_len: list[int] = []
        pg_rings: list[int] = []
        pg_idx: list[int] = []
        pg_area: list[float] = []
        # keypoints
        kp_flat: list[Any] = []
        kp_len: list[int] = []
        kp_idx: list[int] = []

        for k, a in enumerate(records):
            i = start + k
            if type(a) is not dict:
                if not isinstance(a, Mapping):
                    self._bad_record("annotations", i, a)
                    continue
            # ids and references
            v = a.get("id", _MISSING)
            if type(v) is int and _I64_MIN <= v <= _I64_MAX:
                ids.append(v)
                ids_idx.append(i)
            else:
                aid = _as_id(v)
                if aid is None:
                    self._bad_id("annotations", i, "id", v)
                else:
                    ids.append(aid)
                    ids_idx.append(i)
            v = a.get("image_id", _MISSING)
            image_id: int | None = (
                v if type(v) is int and _I64_MIN <= v <= _I64_MAX else _as_id(v)
            )
            if image_id is None:
                self._bad_id("annotations", i, "image_id", v)
            else:
                ref_img.append(image_id)
                ref_img_idx.append(i)
            v = a.get("category_id", _MISSING)
            cat_id = v if type(v) is int and _I64_MIN <= v <= _I64_MAX else _as_id(v)
            if cat_id is None:
                self._bad_id("annotations", i, "category_id", v)
            else:
                ref_cat.append(cat_id)
                ref_cat_idx.append(i)
            # area
            area = a.get("area", _MISSING)
            area_val = nan
            if area is not _MISSING:
                t = type(area)
                if t is float or t is int:
                    if -inf < area < inf:
                        area_val = area
                    else:
                        add("non-finite", f"annotations[{i}].area",
                            f"area must be a finite number, found {_num(area)}")
                elif _is_number(area):
                    area_val = _float_or_inf(area)
                    if not math.isfinite(area_val):
                        add("non-finite", f"annotations[{i}].area",
                            f"area must be a finite number, found {_num(area)}")
                        area_val = nan
                else:
                    add("bad-type", f"annotations[{i}].area",
                        f"area must be a number, {_found(area)}")
            # iscrowd
            c = a.get("iscrowd", 0)
            if not (type(c) is int and (c == 0 or c == 1)):
                if _as_id(c) not in (0, 1):
                    add("bad-iscrowd", f"annotations[{i}].iscrowd",
                        f"iscrowd must be 0 or 1, {_found(c)}")
            # segmentation
            seg = a.get("segmentation", _MISSING)
            has_seg = False
            if type(seg) is list:
                if seg:
                    has_seg = True
                    for ring in seg:
                        if type(ring) is not list:
                            break
                        n = len(ring)
                        if n < 6 or n & 1:
                            break
                    else:
                        for ring in seg:
                            pg_flat.extend(ring)
                            pg_ring_len.append(len(ring))
                        pg_rings.append(len(seg))
                        pg_idx.append(i)
                        pg_area.append(area_val)
                        seg = None  # done
                    if seg is not None:
                        self._bad_polygons(seg, i)
            elif seg is not _MISSING:
                has_seg = True
                if isinstance(seg, Mapping):
                    self._feed_rle(seg, i, image_id, area_val)
                else:
                    add("bad-segmentation", f"annotations[{i}].segmentation",
                        "segmentation must be an array of polygons or an RLE object "
                        f'{{"size": [h, w], "counts": ...}}, {_found(seg)}')
            # bbox
            b = a.get("bbox", _MISSING)
            if b is _MISSING:
                if not has_seg:
                    add("missing-geometry", f"annotations[{i}]",
                        'annotation has neither "bbox" nor a non-empty "segmentation"; '
                        "expected at least one")
            elif type(b) is list and len(b) == 4:
                bb_flat.extend(b)
                bb_idx.append(i)
                bb_img.append(_NO_ID if image_id is None else image_id)
                bb_area.append(area_val)
                bb_only.append(not has_seg)
            else:
                add("bad-bbox", f"annotations[{i}].bbox",
                    f"bbox must be an array of 4 numbers [x, y, width, height], {_found(b)}")
            # keypoints
            kp = a.get("keypoints", _MISSING)
            if kp is not _MISSING:
                if type(kp) is list and len(kp) % 3 == 0:
                    if kp:
                        kp_flat.extend(kp)
                        kp_len.append(len(kp))
                        kp_idx.append(i)
                else:
                    add("bad-keypoints", f"annotations[{i}].keypoints",
                        "keypoints must be an array of numbers [x, y, v, ...] whose length "
                        f"is a multiple of 3, {_found(kp)}"
                        + (f" ({len(kp)} values)" if isinstance(kp, list) else ""))

        self._ann_ids.append(np.array(ids, np.int64))
        self._ann_idx.append(np.array(ids_idx, np.int64))
        self._ref_img.append(np.array(ref_img, np.int64))
        self._ref_img_idx.append(np.array(ref_img_idx, np.int64))
        self._ref_cat.append(np.array(ref_cat, np.int64))
        self._ref_cat_idx.append(np.array(ref_cat_idx, np.int64))
        if bb_idx:
            self._check_boxes(records, start, bb_flat, bb_idx, bb_img, bb_area, bb_only)
        if pg_idx:
            self._check_polygons(records, start, pg_flat, pg_ring_len, pg_rings, pg_idx,
                                 pg_area)
        if kp_idx:
            self._check_keypoints(records, start, kp_flat, kp_len, kp_idx)

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
                         f"polygon coordinates must be numbers, found {_kind(bad)} "
                         f"{_short(bad)} in {_short(ring)}")
            elif not all(math.isfinite(_float_or_inf(x)) for x in ring):
                self.add("non-finite", path,
                         f"polygon coordinates must be finite, found {_short(ring)}")

    def _feed_rle(self, seg: Mapping[str, Any], i: int, image_id: int | None,
                  area_val: float) -> None:
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
        if h >= 0:
            self._rle.append((i, _NO_ID if image_id is None else image_id, h, w))
        counts_ok = False
        if isinstance(counts, str):
            counts_ok = counts.isascii()
            if not counts_ok:
                self.add("bad-rle", f"{path}.counts",
                         f"compressed RLE counts must be an ASCII string, found {_short(counts)}")
        elif isinstance(counts, list):
            counts_ok = all(_as_id(c) is not None and c >= 0 for c in counts)
            if not counts_ok:
                bad = next(c for c in counts if _as_id(c) is None or c < 0)
                self.add("bad-rle", f"{path}.counts",
                         "uncompressed RLE counts must be non-negative integers, found "
                         f"{_kind(bad)} {_short(bad)} in {_short(counts)}")
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
        if isinstance(counts, list):
            total = sum(int(c) for c in counts)
            if total != h * w:
                self.add("rle-counts-sum", f"{path}.counts",
                         f"RLE counts must sum to height * width = {h} * {w} = {h * w}, "
                         f"found a sum of {total}")
                return
        if area_val == area_val:  # an area to compare
            mask_area = self._rle_area(seg, counts, h, w)
            if mask_area is not None:
                self._compare_area(i, area_val, mask_area, "RLE mask")

    @staticmethod
    def _rle_area(seg: Mapping[str, Any], counts: Any, h: int, w: int) -> float | None:
        mask_utils = _mask_api()
        if mask_utils is None:
            if isinstance(counts, list):
                return float(sum(counts[1::2]))
            return None
        try:
            if isinstance(counts, list):
                rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
            else:
                rle = {"size": [h, w], "counts": counts.encode("ascii")}
            return float(mask_utils.area(rle))
        except Exception:  # a malformed compressed string: nothing sensible to compare
            return None

    def _compare_area(self, i: int, area: float, computed: float, what: str) -> None:
        diff = abs(area - computed)
        if diff > AREA_REL_TOLERANCE * computed and diff > AREA_ABS_TOLERANCE:
            self.add("area-mismatch", f"annotations[{i}].area",
                     f"area {_num(area)} differs from the {what} area {_num(computed)} by "
                     f"more than {AREA_REL_TOLERANCE:.0%} and {_num(AREA_ABS_TOLERANCE)} px")

    def _check_boxes(self, records: list[Any], start: int, flat: list[Any], idx: list[int],
                     img: list[int], area: list[float], box_only: list[bool]) -> None:
        arr, bad_type, nonfinite = _grouped_floats(flat, [4] * len(idx))
        boxes = arr.reshape(-1, 4)
        index = np.array(idx, np.int64)
        for r in np.flatnonzero(bad_type):
            i = int(index[r])
            self.add("bad-bbox", f"annotations[{i}].bbox",
                     "bbox must be an array of 4 numbers [x, y, width, height], found "
                     f"{_short(records[i - start]['bbox'])}")
        for r in np.flatnonzero(nonfinite):
            i = int(index[r])
            self.add("non-finite", f"annotations[{i}].bbox",
                     f"bbox values must be finite, found {_short(records[i - start]['bbox'])}")
        good = ~(bad_type | nonfinite)
        wh = boxes[:, 2:]
        negative = good & (wh < 0).any(axis=1)
        for r in np.flatnonzero(negative):
            self.add("negative-bbox-size", f"annotations[{int(index[r])}].bbox",
                     "bbox width and height must be >= 0, found width "
                     f"{_num(boxes[r, 2])} and height {_num(boxes[r, 3])} in "
                     f"{_short(boxes[r].tolist())}")
        good &= ~negative
        zero = good & (wh == 0).any(axis=1)
        for r in np.flatnonzero(zero):
            self.add("zero-area-bbox", f"annotations[{int(index[r])}].bbox",
                     f"bbox has zero width or height: {_short(boxes[r].tolist())}")
        # area of a box-only annotation larger than its box
        areas = np.array(area, np.float64)
        box_area = wh[:, 0] * wh[:, 1]
        with np.errstate(invalid="ignore"):
            big = good & np.array(box_only, bool) & (areas > box_area * BOX_AREA_SLACK)
        for r in np.flatnonzero(big):
            self.add("area-mismatch", f"annotations[{int(index[r])}].area",
                     f"area {_num(areas[r])} is larger than its box "
                     f"{_num(boxes[r, 2])} x {_num(boxes[r, 3])} = {_num(box_area[r])} "
                     f"(by more than {BOX_AREA_SLACK - 1:.0%}) and there is no segmentation")
        imgs = np.array(img, np.int64)
        keep = good & (imgs != _NO_ID)
        self._box_idx.append(index[keep])
        self._box_img.append(imgs[keep])
        self._box.append(boxes[keep])

    def _check_polygons(self, records: list[Any], start: int, flat: list[Any],
                        ring_len: list[int], rings: list[int], idx: list[int],
                        area: list[float]) -> None:
        arr, bad_type, nonfinite = _grouped_floats(flat, ring_len)
        if bad_type.any() or nonfinite.any():
            ring_start = np.zeros(len(rings), np.int64)
            np.cumsum(np.asarray(rings[:-1], np.int64), out=ring_start[1:])
            bad_ann = np.logical_or.reduceat(bad_type | nonfinite, ring_start)
            for a in np.flatnonzero(bad_ann):
                i = idx[a]
                self._bad_polygons(records[i - start]["segmentation"], i)
        # shoelace, every ring at once
        x = arr[0::2]
        y = arr[1::2]
        nv = np.asarray(ring_len, np.int64) // 2
        vstart = np.zeros(len(nv), np.int64)
        np.cumsum(nv[:-1], out=vstart[1:])
        nxt = np.arange(1, len(x) + 1, dtype=np.int64)
        nxt[vstart + nv - 1] = vstart
        cross = x * y[nxt] - x[nxt] * y
        ring_area = np.abs(np.add.reduceat(cross, vstart)) * 0.5
        ann_start = np.zeros(len(rings), np.int64)
        np.cumsum(np.asarray(rings[:-1], np.int64), out=ann_start[1:])
        poly_area = np.add.reduceat(ring_area, ann_start)
        given = np.array(area, np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.abs(given - poly_area)
            off = (diff > AREA_REL_TOLERANCE * poly_area) & (diff > AREA_ABS_TOLERANCE)
        for a in np.flatnonzero(off):
            self._compare_area(idx[a], float(given[a]), float(poly_area[a]),
                               "polygon (shoelace)")

    def _check_keypoints(self, records: list[Any], start: int, flat: list[Any],
                         lens: list[int], idx: list[int]) -> None:
        _, bad_type, nonfinite = _grouped_floats(flat, lens)
        for r in np.flatnonzero(bad_type):
            i = idx[r]
            kp = records[i - start]["keypoints"]
            bad = next(v for v in kp if not _is_number(v))
            self.add("bad-keypoints", f"annotations[{i}].keypoints",
                     f"keypoints must be numbers, found {_kind(bad)} {_short(bad)} in "
                     f"{_short(kp)}")
        for r in np.flatnonzero(nonfinite):
            i = idx[r]
            self.add("non-finite", f"annotations[{i}].keypoints",
                     f"keypoints must be finite, found {_short(records[i - start]['keypoints'])}")

    # -- finish -------------------------------------------------------------------------

    def _duplicates(self, section: str, code: str, ids: np.ndarray,
                    idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        uniq, first, dup, dup_first = _first_of_duplicates(ids, idx)
        order = np.argsort(idx[dup], kind="stable")
        dup, dup_first = dup[order], dup_first[order]
        what = section[:-1] if section != "categories" else "category"

        def make(k: int) -> tuple[str, str]:
            r, f = dup[k], dup_first[k]
            return (f"{section}[{int(idx[r])}].id",
                    f"{what} id {int(ids[r])} is already used by {section}[{int(idx[f])}]; "
                    "expected unique ids")

        self._add_many(code, len(dup), make)
        return uniq, first

    def _dangling(self, code: str, key: str, refs: np.ndarray, idx: np.ndarray,
                  known: np.ndarray, target: str) -> None:
        _, found = _lookup(refs, known)
        bad = np.flatnonzero(~found)
        bad = bad[np.argsort(idx[bad], kind="stable")]

        def make(k: int) -> tuple[str, str]:
            r = bad[k]
            return (f"annotations[{int(idx[r])}].{key}",
                    f"{key} {int(refs[r])} matches no id in {target} "
                    f"({len(known)} distinct ids)")

        self._add_many(code, len(bad), make)

    def finish(self) -> Report:
        """Run the checks that need every section and return the report."""
        if self._finished is not None:
            return self._finished
        img_ids = _cat(self._img_ids, np.int64)
        img_idx = _cat(self._img_idx, np.int64)
        img_w = _cat(self._img_w, np.float64)
        img_h = _cat(self._img_h, np.float64)
        cat_ids = _cat(self._cat_ids, np.int64)
        cat_idx = _cat(self._cat_idx, np.int64)
        ann_ids = _cat(self._ann_ids, np.int64)
        ann_idx = _cat(self._ann_idx, np.int64)
        ref_img = _cat(self._ref_img, np.int64)
        ref_img_idx = _cat(self._ref_img_idx, np.int64)
        ref_cat = _cat(self._ref_cat, np.int64)
        ref_cat_idx = _cat(self._ref_cat_idx, np.int64)

        img_uniq, img_first = self._duplicates("images", "duplicate-image-id", img_ids, img_idx)
        self._duplicates("annotations", "duplicate-annotation-id", ann_ids, ann_idx)
        cat_uniq, cat_first = self._duplicates("categories", "duplicate-category-id", cat_ids,
                                               cat_idx)
        have_images = "images" in self._fed
        have_cats = "categories" in self._fed
        if have_images:
            self._dangling("dangling-image-id", "image_id", ref_img, ref_img_idx, img_uniq,
                           "images")
        if have_cats:
            self._dangling("dangling-category-id", "category_id", ref_cat, ref_cat_idx,
                           cat_uniq, "categories")
        if have_images:
            uw = img_w[img_first]
            uh = img_h[img_first]
            self._boxes_vs_images(img_uniq, uw, uh, img_idx[img_first])
            self._rles_vs_images(img_uniq, uw, uh, img_idx[img_first])
        self._duplicate_file_names()
        if have_cats and "annotations" in self._fed:
            used = np.unique(ref_cat)
            _, is_used = _lookup(cat_uniq, used)
            unused = cat_idx[cat_first][~is_used]
            unused_ids = cat_uniq[~is_used]
            order = np.argsort(unused, kind="stable")
            unused, unused_ids = unused[order], unused_ids[order]

            def make(k: int) -> tuple[str, str]:
                cid = int(unused_ids[k])
                name = self._cat_names.get(cid)
                label = f" ({_short(name, 40)})" if isinstance(name, str) else ""
                return (f"categories[{int(unused[k])}]",
                        f"category {cid}{label} is declared but no annotation uses it")

            self._add_many("unused-category", len(unused), make)

        ordered = sorted(enumerate(self._stored), key=_sort_key)
        report = Report(self.source, [p for _, p in ordered], self._truncated,
                        self._truncated_errors)
        self._finished = report
        # free the arrays
        self._box_idx, self._box_img, self._box = [], [], []
        return report

    def _boxes_vs_images(self, uniq: np.ndarray, uw: np.ndarray, uh: np.ndarray,
                         uidx: np.ndarray) -> None:
        box_idx = _cat(self._box_idx, np.int64)
        box_img = _cat(self._box_img, np.int64)
        boxes = _cat(self._box, np.float64, 4)
        if len(box_idx) == 0:
            return
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

        self._add_many("bbox-outside-image", len(rows), make)

    def _rles_vs_images(self, uniq: np.ndarray, uw: np.ndarray, uh: np.ndarray,
                        uidx: np.ndarray) -> None:
        if not self._rle:
            return
        rle = np.array(self._rle, np.int64).reshape(-1, 4)
        rle = rle[np.argsort(rle[:, 0], kind="stable")]
        pos, found = _lookup(rle[:, 1], uniq)
        for r in range(len(rle)):
            if not found[r]:
                continue
            iw, ih = uw[pos[r]], uh[pos[r]]
            if not (math.isfinite(iw) and math.isfinite(ih)):
                continue
            i, _, h, w = (int(v) for v in rle[r])
            if (h, w) != (int(ih), int(iw)):
                self.add("rle-size-mismatch", f"annotations[{i}].segmentation.size",
                         f"RLE size [{h}, {w}] differs from its image's [height, width] "
                         f"[{int(ih)}, {int(iw)}] (images[{int(uidx[pos[r]])}])")

    def _duplicate_file_names(self) -> None:
        names = sorted(self._file_names)
        first: dict[str, int] = {}
        for i, fn in names:
            j = first.setdefault(fn, i)
            if j != i:
                self.add("duplicate-file-name", f"images[{i}].file_name",
                         f"file_name {_short(fn)} is already used by images[{j}]")
        self._file_names = []


# --------------------------------------------------------------------------------------
# Entry points


def validate_document(doc: Any, source: str = "<document>", *,
                      max_problems: int | None = None) -> Report:
    """Validate a parsed JSON document (plain Python objects)."""
    v = Validator(source, max_problems)
    if not isinstance(doc, Mapping):
        v.add("top-not-object", "",
              'the document must be a JSON object with "images", "annotations" and '
              f'"categories" arrays, {_found(doc)}')
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
                  f'"{key}" must be an array of {key[:-1] if key != "categories" else "category"}'
                  f" records, {_found(section)}")
    return v.finish()


_BYTE_RE = re.compile(r"\s*\(byte (\d+)\)\s*$")


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    offset = max(0, min(offset, len(data)))
    line_start = data.rfind(b"\n", 0, offset) + 1
    line = data.count(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return line, column


def _syntax_report(source: str, data: bytes, line: int, column: int, reason: str) -> Report:
    v = Validator(source)
    hint = ""
    if data.startswith(b"\xef\xbb\xbf") and line == 1 and column <= 2:
        hint = " (the file starts with a UTF-8 byte order mark, which JSON does not allow)"
    v.add("json-syntax", "",
          f"malformed JSON at line {line}, column {column}: {reason}{hint}")
    return v.finish()


def validate_bytes(data: bytes | bytearray | memoryview, source: str = "<bytes>", *,
                   max_problems: int | None = None) -> Report:
    """Parse JSON bytes and validate them; malformed JSON gives one ``json-syntax`` error."""
    raw = bytes(data)
    try:
        doc = msgspec.json.decode(raw)
    except msgspec.DecodeError as e:
        msg = str(e)
        m = _BYTE_RE.search(msg)
        offset = int(m.group(1)) if m else len(raw)
        reason = _BYTE_RE.sub("", msg).removeprefix("JSON is malformed: ")
        if not m and "truncated" in msg:
            reason = "the input ended before the JSON value was complete"
        line, column = _line_column(raw, offset)
        return _syntax_report(source, raw, line, column, reason)
    except msgspec.ValidationError:
        # msgspec rejects numbers beyond the float range (1e999); Python's parser reads
        # them as infinities, which the checks then report where they are.
        try:
            doc = json.loads(raw)
        except ValueError as e:
            if isinstance(e, json.JSONDecodeError):
                return _syntax_report(source, raw, e.lineno, e.colno, e.msg)
            return _syntax_report(source, raw, 1, 1, str(e))
    return validate_document(doc, source, max_problems=max_problems)


def validate_file(path: str | os.PathLike[str], *, max_problems: int | None = None) -> Report:
    """Read and validate a COCO JSON file; an unreadable file raises InputError."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(name, None, f"cannot read the file: {e.strerror or e}") from e
    return validate_bytes(data, name, max_problems=max_problems)


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
        from .io.coco import raw_document

        return validate_document(raw_document(obj), source or "<dataset>",
                                 max_problems=max_problems)
    return validate_document(obj, source or "<document>", max_problems=max_problems)
