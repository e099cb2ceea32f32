"""The error checks of the export contract, in columns.

Before a byte of COCO (or YOLO) is written, the records that would be written are
checked for the errors :mod:`cocokit.validate` reports for a file, with the same codes
(:data:`cocokit.problems.CODES`) and the same JSON paths (the row of the input table:
``annotations[12].segmentation[0]``, ``images[3].width``):

* images: ``bad-image-size`` (width or height not positive), ``bad-file-name`` (empty,
  or holding control characters such as NUL);
* boxes and areas: ``non-finite``, ``negative-bbox-size``;
* ``bad-iscrowd`` (not 0 or 1; the reader keeps such a value as read, see
  :data:`ISCROWD_AS_READ`);
* segmentations: ``bad-segmentation`` (neither polygons nor RLE), ``bad-polygon``
  (odd length, fewer than 6 numbers, non-numbers), ``non-finite``, ``bad-rle``,
  ``rle-counts-sum`` (uncompressed counts, or the counts a compressed string decodes
  to, do not sum to height * width), ``rle-size-mismatch`` (the RLE size is not its
  image's);
* ``bad-keypoints`` (not numbers, a length that is not a multiple of 3, or not 3 values
  per keypoint name of its category).

The checks run over columns. A segmentation read from a file is its raw JSON text: the
polygons of a run of records are checked on their bytes at once with numpy (brackets
and commas counted, no number decoded), and only the records that fail (or that the
byte check cannot decide, such as text with whitespace) are decoded to build the exact
message. RLE records (few) are decoded. Geometry made in memory (Python lists and
dicts) is checked per record.

The category id 0 warning (Datumaro and some trainers treat 0 as background) is here
too: :func:`category_warnings`.

This module sits below :mod:`cocokit.io` and does not import :mod:`cocokit.validate`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import re
from collections.abc import Mapping, Sequence
from itertools import repeat
from typing import Annotated, Any, Literal

import msgspec
import numpy as np

from .dataset import Annotations, Categories, Images, Origin, lookup
from .problems import SEVERITIES, Problem
from .problems import found_value as _found
from .problems import is_number as _is_number
from .problems import short_number as _num
from .problems import short_value as _short
from .rawjson import Joined, array_groups
from .rawjson import heads as raw_heads

__all__ = [
    "ISCROWD_AS_READ",
    "Checked",
    "InvalidPolicy",
    "Start",
    "bad_file_names",
    "category_warnings",
    "check_annotations",
    "check_image_sizes",
    "check_images",
    "check_invalid",
    "check_segmentations",
    "file_name_problem",
    "keypoint_names_message",
    "keypoint_value_count",
    "keypoint_value_counts",
    "keypoint_value_counts_of",
    "place",
    "rle_counts_problem",
    "rle_string_counts",
]

#: The ``iscrowd`` column's value for an annotation whose iscrowd is neither 0 nor 1 as
#: read (-1, 2, ...): the reader keeps the value as read in the record's ``extra`` under
#: ``"iscrowd"`` (so it is never silently dropped or rewritten) and the export contract
#: refuses it (``bad-iscrowd``), or leaves the record out with ``invalid="skip"``.
ISCROWD_AS_READ = -2

InvalidPolicy = Literal["error", "skip"]

#: How a check names the rows it checks: an offset (row ``r`` is ``section[start + r]``,
#: for a part of a larger input) or a derived dataset's :class:`~cocokit.dataset.Origin`
#: (row ``r`` is the place it was read: ``file: section[row]``).
Start = int | Origin


def place(section: str, start: Start, row: int) -> str:
    """The name of row ``row`` of ``section`` under ``start`` (see :data:`Start`)."""
    if isinstance(start, Origin):
        return start.place(section, row)
    return f"{section}[{start + row}]"

_RUN = 20_000  # records whose segmentation bytes are checked at once


def check_invalid(value: str) -> None:
    """Refuse an ``invalid`` policy other than error or skip."""
    if value not in ("error", "skip"):
        from .errors import OptionError

        raise OptionError("invalid", value, "'error' or 'skip'")


@dataclasses.dataclass(frozen=True)
class Checked:
    """What the checks of one table found.

    ``problems`` in row order (every one an error); ``bad`` the rows (positions in the
    checked table, or in ``rows`` when given) that have at least one problem.
    """

    problems: list[Problem]
    bad: np.ndarray

    @property
    def ok(self) -> bool:
        return not self.problems


def _problem(code: str, path: str, message: str) -> Problem:
    return Problem(code, SEVERITIES[code], path, message)


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond any float
        return False


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


# -- images ---------------------------------------------------------------------------


def check_images(images: Images, rows: np.ndarray | None = None, start: Start = 0) -> Checked:
    """``bad-image-size`` and ``bad-file-name`` of the image rows ``rows`` (all by
    default); paths name each row as ``start`` says (:data:`Start`)."""
    return check_image_sizes(images.width, images.height, rows, start, images.file_name)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAME_BLOCK = 1 << 16  # file names checked at a time


def file_name_problem(name: str) -> str | None:
    """Why ``name`` is not a usable ``file_name`` (empty, or holding control characters
    such as NUL, which no file system path may hold), or None when it is fine."""
    if not name:
        return "file_name is empty; expected the image's file name"
    m = _CONTROL.search(name)
    if m is None:
        return None
    return (f"file_name {_short(name)} holds the control character "
            f"U+{ord(m.group()):04X}; expected a file name without control characters")


def bad_file_names(names: np.ndarray) -> np.ndarray:
    """Positions of ``names`` (str, or None for "not checked") that are not usable."""
    out: list[int] = []
    for s in range(0, len(names), _NAME_BLOCK):  # bounded temporaries on a big file
        values = names[s : s + _NAME_BLOCK].tolist()
        if all(values) and _CONTROL.search("".join(values)) is None:
            continue  # the common case: one search over the block's names
        out += [s + k for k, v in enumerate(values)
                if v is not None and file_name_problem(v) is not None]
    return np.array(out, np.int64)


def check_image_sizes(
    width: np.ndarray, height: np.ndarray, rows: np.ndarray | None = None, start: Start = 0,
    file_names: np.ndarray | None = None,
) -> Checked:
    """:func:`check_images` on the width and height columns (what a streamed export
    knows of its images) and, when given, the ``file_names`` column (str, or None where
    the name is known to be fine)."""
    idx = np.arange(len(width)) if rows is None else np.asarray(rows, np.int64)
    w = width[idx]
    h = height[idx]
    bad = (w <= 0) | (h <= 0)
    names = np.zeros(len(idx), bool)
    if file_names is not None and len(idx):
        names[bad_file_names(file_names[idx])] = True
    problems: list[Problem] = []
    for k in np.flatnonzero(bad | names).tolist():
        i = place("images", start, int(idx[k]))
        if names[k] and file_names is not None:
            problems.append(_problem("bad-file-name", f"{i}.file_name",
                                     str(file_name_problem(file_names[idx[k]]))))
        for key, v in (("width", w[k]), ("height", h[k])):
            if v <= 0:
                problems.append(_problem(
                    "bad-image-size", f"{i}.{key}",
                    f"image {key} must be a positive integer, found {int(v)}"))
    return Checked(problems, np.flatnonzero(bad | names))


# -- annotations ----------------------------------------------------------------------


class _Found:
    """Problems of annotation rows, kept by row so they come out in row order."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[Problem]] = {}

    def add(self, row: int, code: str, path: str, message: str) -> None:
        self.by_row.setdefault(row, []).append(_problem(code, path, message))


def check_annotations(
    annotations: Annotations,
    heights: np.ndarray,
    widths: np.ndarray,
    rows: np.ndarray | None = None,
    start: Start = 0,
    keypoint_counts: np.ndarray | None = None,
) -> Checked:
    """The error checks of the annotation rows ``rows`` (all by default).

    ``heights`` and ``widths`` give, per checked row, the size of its image (what an
    RLE's size must be; negative where unknown); ``keypoint_counts``, per checked row,
    how many keypoint values its category's keypoint names call for (3 per name; -1
    where the category names none, see :func:`keypoint_value_counts`). Paths name each
    row as ``start`` says (:data:`Start`).
    """
    idx = np.arange(len(annotations)) if rows is None else np.asarray(rows, np.int64)
    found = _Found()

    def path(k: int, tail: str) -> str:
        return place("annotations", start, int(idx[k])) + tail

    # boxes: a NaN row is "no bbox"; a partly missing or infinite one is non-finite
    bbox = annotations.bbox[idx]
    finite = np.isfinite(bbox)
    missing = np.isnan(bbox).all(axis=1)
    nonfinite = ~finite.all(axis=1) & ~missing
    for k in np.flatnonzero(nonfinite).tolist():
        found.add(k, "non-finite", path(k, ".bbox"),
                  f"bbox values must be finite, found {_short(bbox[k].tolist())}")
    with np.errstate(invalid="ignore"):
        negative = ~nonfinite & ~missing & (bbox[:, 2:] < 0).any(axis=1)
    for k in np.flatnonzero(negative).tolist():
        b = bbox[k]
        found.add(k, "negative-bbox-size", path(k, ".bbox"),
                  f"bbox width and height must be >= 0, found width {_num(b[2])} and height "
                  f"{_num(b[3])} in {_short(b.tolist())}")
    area = annotations.area[idx]
    for k in np.flatnonzero(np.isinf(area)).tolist():
        found.add(k, "non-finite", path(k, ".area"),
                  f"area must be a finite number, found {_num(area[k])}")
    crowd = annotations.iscrowd[idx]
    for k in np.flatnonzero((crowd != -1) & (crowd != 0) & (crowd != 1)).tolist():
        found.add(k, "bad-iscrowd", path(k, ".iscrowd"),
                  f"iscrowd must be 0 or 1, {_crowd_as_read(annotations, int(idx[k]))}")

    seg = annotations.segmentation[idx]
    for k in np.flatnonzero(missing).tolist():  # no box: the segmentation must give one
        if _no_segmentation(seg[k]):
            found.add(k, "missing-geometry", path(k, ""),
                      'annotation has neither "bbox" nor a non-empty "segmentation"; '
                      "expected at least one")
    _check_segmentations(seg, heights, widths, found, path)
    kps = annotations.keypoints[idx]
    expected = (np.full(len(idx), -1, np.int64) if keypoint_counts is None
                else np.asarray(keypoint_counts, np.int64))
    _check_keypoints(kps, expected, found, path)

    rows_out = sorted(found.by_row)
    problems = [p for r in rows_out for p in found.by_row[r]]
    return Checked(problems, np.array(rows_out, np.int64))


def check_segmentations(segmentation: np.ndarray, section: str, start: Start = 0) -> Checked:
    """The segmentation checks of :func:`check_annotations` on one column alone (raw JSON
    texts as the reader keeps them, Python data, or None for no segmentation; no image
    size to compare an RLE with), at paths ``{section}[row].segmentation...``, each row
    named as ``start`` says (:data:`Start`)."""
    unknown = np.full(len(segmentation), -1, np.int64)
    found = _Found()
    _check_segmentations(segmentation, unknown, unknown, found,
                         lambda k, tail: place(section, start, k) + tail)
    rows = sorted(found.by_row)
    return Checked([p for r in rows for p in found.by_row[r]], np.array(rows, np.int64))


def _crowd_as_read(annotations: Annotations, row: int) -> str:
    """"found ..." for the iscrowd of ``row`` (kept as read in ``extra``, see
    :data:`ISCROWD_AS_READ`)."""
    value: Any = int(annotations.iscrowd[row])
    extra = annotations.extra[row]
    if value == ISCROWD_AS_READ and extra and "iscrowd" in extra:
        value = extra["iscrowd"]
        if isinstance(value, msgspec.Raw):
            value = _decode(value)
    return _found(value)


def keypoint_value_count(category: Mapping[str, Any]) -> int:
    """How many keypoint values an annotation of this category record must hold: 3 per
    name of its ``keypoints`` list, -1 where it has no such list."""
    names = category.get("keypoints")
    return 3 * len(names) if isinstance(names, list) else -1


def keypoint_value_counts(categories: Categories, category_id: np.ndarray) -> np.ndarray:
    """Per category id, how many keypoint values an annotation of it must hold: 3 per
    name of the category's ``keypoints`` list, -1 where the category has no such list
    (or is not there)."""
    per = np.array([keypoint_value_count(c) for c in categories.records], np.int64)
    return keypoint_value_counts_of(categories.id, per, category_id)


def keypoint_value_counts_of(ids: np.ndarray, per: np.ndarray,
                             category_id: np.ndarray) -> np.ndarray:
    """:func:`keypoint_value_counts` on columns: ``per[k]`` is the
    :func:`keypoint_value_count` of the category of id ``ids[k]`` (the first one, when an
    id is repeated); -1 for an id that no category has."""
    if not (per >= 0).any():
        return np.full(len(category_id), -1, np.int64)
    row = lookup(ids, category_id)
    return np.where(row >= 0, per[np.maximum(row, 0)], -1).astype(np.int64)


def keypoint_names_message(n: int, expected: int) -> str:
    """The ``bad-keypoints`` message of a keypoints array of ``n`` values whose category
    names ``expected // 3`` keypoints."""
    return (f"keypoints has {n} values ({n // 3} keypoints), expected {expected} "
            f"(3 per name of its category's {expected // 3} keypoints)")


def _no_segmentation(seg: Any) -> bool:
    """No segmentation at all, or an empty list of polygons (as JSON text or decoded)."""
    if seg is None:
        return True
    if isinstance(seg, msgspec.Raw):
        return bytes(seg).translate(None, b" \t\r\n") in (b"[]", b"null")
    return isinstance(seg, list) and not seg


# -- raw JSON lists, by their bytes ---------------------------------------------------

def _raw_chunks(n: int) -> list[slice]:
    return [slice(s, s + _RUN) for s in range(0, n, _RUN)]


def _raw_rows(column: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Rows of an object column holding a msgspec.Raw, and rows holding something else
    (not None)."""
    values = column.tolist()
    n = len(values)
    is_none = np.fromiter(map(operator.is_, values, repeat(None)), bool, count=n)
    if is_none.all():
        return np.zeros(0, np.int64), []
    types = set(map(type, values))
    if types <= {msgspec.Raw, type(None)}:
        return np.flatnonzero(~is_none), []
    raw_type = msgspec.Raw
    raw = [k for k, v in enumerate(values) if type(v) is raw_type]
    other = [k for k, v in enumerate(values) if v is not None and type(v) is not raw_type]
    return np.array(raw, np.int64), other


def _check_segmentations(
    seg: np.ndarray, heights: np.ndarray, widths: np.ndarray, found: _Found, path: Any
) -> None:
    rr, other = _raw_rows(seg)
    for k in other:
        _check_segmentation_value(seg[k], k, heights, widths, found, path)
    for sl in _raw_chunks(len(rr)):
        part = rr[sl]
        raws = seg[part].tolist()
        heads = raw_heads(raws)
        decode = heads != 91  # anything but polygons: decode (RLE below)
        poly = np.flatnonzero(~decode)
        if len(poly):
            # the polygons' text alone (RLE objects hold strings and letters)
            jp = Joined(raws if len(poly) == len(part) else [raws[k] for k in poly.tolist()])
            sure, rings, count = array_groups(jp, np.arange(len(poly)), 2)
            unsure = ~sure
            ring_row = np.repeat(np.arange(len(poly)), rings)
            unsure[ring_row[(count < 6) | (count % 2 == 1)]] = True
            # an array holding no ring at all: "[]" is no segmentation, "[1, 2]" is wrong
            unsure[(rings == 0) & (jp.lens != 2)] = True
            decode[poly[unsure]] = True
        rle = np.flatnonzero(heads == 123)
        if len(rle):
            ok = _good_rles([raws[k] for k in rle.tolist()], heights[part[rle]],
                            widths[part[rle]])
            decode[rle[ok]] = False
        for k in np.flatnonzero(decode).tolist():
            row = int(part[k])
            _check_segmentation_value(_decode(raws[k]), row, heights, widths, found, path)


_Count = Annotated[int, msgspec.Meta(ge=0)]


class _RLE(msgspec.Struct):
    size: tuple[_Count, _Count]
    counts: str | list[_Count]


_RLES = msgspec.json.Decoder(list[_RLE])
_ONE_RLE = msgspec.json.Decoder(_RLE)


def _good_rles(raws: list[Any], heights: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Which raw RLE objects are valid and of their image's size (the others are
    decoded again to say why)."""
    try:
        rles: list[_RLE | None] = list(_RLES.decode(b"[" + b",".join(raws) + b"]"))
    except msgspec.DecodeError:
        rles = []
        for r in raws:
            try:
                rles.append(_ONE_RLE.decode(r))
            except msgspec.DecodeError:
                rles.append(None)
    ok = np.zeros(len(raws), bool)
    for k, rle in enumerate(rles):
        if rle is None:
            continue
        h, w = rle.size
        if rle_counts_problem(rle.counts, h, w) is not None:
            continue
        ih, iw = int(heights[k]), int(widths[k])
        ok[k] = ih < 0 or iw < 0 or (h == ih and w == iw)
    return ok


def rle_string_counts(counts: str | bytes) -> np.ndarray | None:
    """The run lengths a compressed RLE string (pycocotools' ``counts``) stands for, or
    None when it is not one: a character outside ``0``..``o``, a number cut short at the
    end, one beyond 64 bits, or a run length that comes out negative.

    Each number is 5 bits a character, least significant first, ``0x20`` meaning "more
    follows" and ``0x10`` of the last character its sign; from the third number on, each
    is a difference from the number two before (as pycocotools' ``rleFrString`` reads
    it). What the lengths must sum to (height * width) is for the caller to check.
    """
    data = counts.encode("latin-1") if isinstance(counts, str) else bytes(counts)
    if not data:
        return np.zeros(0, np.int64)
    c = np.frombuffer(data, np.uint8).astype(np.int64) - 48
    if c.min() < 0 or c.max() > 63:
        return None
    more = (c & 0x20) != 0
    if more[-1]:
        return None
    ends = np.flatnonzero(~more)
    starts = np.zeros(len(ends), np.int64)
    starts[1:] = ends[:-1] + 1
    digits = ends - starts + 1
    if digits.max() > 12:  # beyond 60 bits: no run length of an image
        return None
    shift = 5 * (np.arange(len(c)) - np.repeat(starts, digits))
    x = np.add.reduceat((c & 0x1F) << shift, starts)
    negative = (c[ends] & 0x10) != 0
    x[negative] -= np.left_shift(1, 5 * digits[negative])
    x[1::2] = np.cumsum(x[1::2])  # x[3] += x[1], x[5] += x[3], ...
    x[2::2] = np.cumsum(x[2::2])  # x[4] += x[2], ...
    if len(x) and x.min() < 0:
        return None
    return x


def rle_counts_problem(counts: str | Sequence[int], h: int, w: int,
                       runs: np.ndarray | None = None) -> tuple[str, str] | None:
    """(code, message) of RLE counts that do not make an ``h`` x ``w`` mask, or None:
    a compressed string that pycocotools cannot read, or counts (decoded from the
    string, or the list's) whose sum is not h * w. ``runs``: the run lengths when the
    caller has decoded them already (a string's by :func:`rle_string_counts`, a list's
    as an integer array whose sum cannot overflow), so they are not decoded again.
    validate and the export contract both say it with this."""
    if isinstance(counts, str):
        decoded = rle_string_counts(counts) if runs is None else runs
        if decoded is None:
            return ("bad-rle", "compressed RLE counts are not a valid pycocotools string "
                    f"(characters 0..o, 5 bits each, non-negative run lengths), found "
                    f"{_short(counts)}")
        total, how = int(decoded.sum()), (f" ({len(decoded)} run lengths decoded from the "
                                          "compressed string)")
    else:
        total, how = (int(sum(counts)) if runs is None else int(runs.sum())), ""
    if total != h * w:
        return ("rle-counts-sum", f"RLE counts must sum to height * width = {h} * {w} = "
                f"{h * w}, found a sum of {total}{how}")
    return None


def _decode(raw: Any) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a number beyond a float: as Python reads it (inf)
        return json.loads(bytes(raw))


def _check_segmentation_value(
    s: Any, k: int, heights: np.ndarray, widths: np.ndarray, found: _Found, path: Any
) -> None:
    """One segmentation as Python data (decoded, or made in memory)."""
    if isinstance(s, np.ndarray):
        s = s.tolist()
    if isinstance(s, (list, tuple)):
        _check_polygons(s, k, found, path)
    elif isinstance(s, Mapping):
        _check_rle(s, k, int(heights[k]), int(widths[k]), found, path)
    else:
        found.add(k, "bad-segmentation", path(k, ".segmentation"),
                  "segmentation must be an array of polygons or an RLE object "
                  f'{{"size": [h, w], "counts": ...}}, {_found(s)}')


def _check_polygons(seg: Sequence[Any], k: int, found: _Found, path: Any) -> None:
    for j, ring in enumerate(seg):
        p = path(k, f".segmentation[{j}]")
        if isinstance(ring, np.ndarray):
            ring = ring.tolist()
        if not isinstance(ring, (list, tuple)):
            found.add(k, "bad-segmentation", p,
                      "a polygon must be an array of numbers [x1, y1, x2, y2, ...], "
                      f"{_found(ring)}")
            continue
        n = len(ring)
        if n & 1:
            found.add(k, "bad-polygon", p,
                      f"a polygon must have an even number of coordinates, found {n}: "
                      f"{_short(ring)}")
        elif n < 6:
            found.add(k, "bad-polygon", p,
                      f"a polygon must have at least 6 coordinates (3 points), found {n}: "
                      f"{_short(ring)}")
        elif not all(_is_number(x) for x in ring):
            bad = next(x for x in ring if not _is_number(x))
            found.add(k, "bad-polygon", p,
                      f"polygon coordinates must be numbers, {_found(bad)} in {_short(ring)}")
        elif not all(_finite(x) for x in ring):
            found.add(k, "non-finite", p,
                      f"polygon coordinates must be finite, found {_short(ring)}")


def _check_rle(seg: Mapping[str, Any], k: int, ih: int, iw: int, found: _Found,
               path: Any) -> None:
    p = path(k, ".segmentation")
    size = seg.get("size")
    counts = seg.get("counts")
    h = w = -1
    if (isinstance(size, (list, tuple)) and len(size) == 2
            and all(_is_int(s) and s >= 0 for s in size)):
        h, w = int(size[0]), int(size[1])
    elif "size" not in seg:
        found.add(k, "bad-rle", p, 'RLE object has no "size"; expected [height, width]')
    else:
        found.add(k, "bad-rle", f"{p}.size",
                  f"RLE size must be [height, width], two non-negative integers, "
                  f"{_found(size)}")
    counts_ok = False
    if isinstance(counts, (str, bytes)):
        counts_ok = counts.isascii()
        if not counts_ok:
            found.add(k, "bad-rle", f"{p}.counts",
                      f"compressed RLE counts must be an ASCII string, found {_short(counts)}")
    elif isinstance(counts, (list, tuple)):
        arr = np.array(counts) if counts else np.zeros(0, np.int64)
        counts_ok = arr.dtype.kind in "iu" and not (arr < 0).any() if arr.dtype != object \
            else all(_is_int(c) and c >= 0 for c in counts)
        if counts_ok and arr.dtype.kind == "b":
            counts_ok = False
        if not counts_ok:
            bad = next(c for c in counts if not (_is_int(c) and c >= 0))
            found.add(k, "bad-rle", f"{p}.counts",
                      "uncompressed RLE counts must be non-negative integers, "
                      f"{_found(bad)} in {_short(counts)}")
    elif "counts" not in seg:
        if "size" in seg:
            found.add(k, "bad-rle", p,
                      'RLE object has no "counts"; expected a string or an array of integers')
    else:
        found.add(k, "bad-rle", f"{p}.counts",
                  f"RLE counts must be a string or an array of integers, {_found(counts)}")
    if h < 0:
        return
    if counts_ok and isinstance(counts, (list, tuple, str, bytes)):
        why = rle_counts_problem(counts.decode("latin-1") if isinstance(counts, bytes)
                                 else counts, h, w)
        if why is not None:
            found.add(k, why[0], f"{p}.counts", why[1])
    if ih >= 0 and iw >= 0 and (h, w) != (ih, iw):
        found.add(k, "rle-size-mismatch", f"{p}.size",
                  f"RLE size [{h}, {w}] differs from its image's [height, width] [{ih}, {iw}]")


def _check_keypoints(kps: np.ndarray, expected: np.ndarray, found: _Found, path: Any) -> None:
    rr, other = _raw_rows(kps)
    for k in other:
        _check_keypoint_value(kps[k], k, int(expected[k]), found, path)
    for sl in _raw_chunks(len(rr)):
        part = rr[sl]
        j = Joined(kps[part].tolist())
        lists = np.flatnonzero(j.heads == 91)
        ok = np.zeros(len(part), bool)
        if len(lists):
            jl = j if len(lists) == len(part) else Joined([j.raws[k] for k in lists.tolist()])
            sure, groups, count = array_groups(jl, np.arange(len(lists)), 1)
            good = sure & (groups <= 1)
            first = np.cumsum(groups) - groups  # each row's first group
            n = np.where(groups == 1, count[np.minimum(first, max(len(count) - 1, 0))]
                         if len(count) else 0, 0)
            want = expected[part[lists]]
            good &= (n % 3 == 0) & ((want < 0) | (n == want))
            ok[lists[good]] = True
        for k in np.flatnonzero(~ok).tolist():
            row = int(part[k])
            _check_keypoint_value(_decode(j.raws[k]), row, int(expected[row]), found, path)


def _check_keypoint_value(kp: Any, k: int, expected: int, found: _Found, path: Any) -> None:
    if isinstance(kp, np.ndarray):
        kp = kp.ravel().tolist()
    p = path(k, ".keypoints")
    if isinstance(kp, (list, tuple)) and not len(kp) % 3 and 0 <= expected != len(kp):
        found.add(k, "bad-keypoints", p, keypoint_names_message(len(kp), expected))
    elif not isinstance(kp, (list, tuple)) or len(kp) % 3:
        found.add(k, "bad-keypoints", p,
                  "keypoints must be an array of numbers [x, y, v, ...] whose length is a "
                  f"multiple of 3, {_found(kp)}"
                  + (f" ({len(kp)} values)" if isinstance(kp, (list, tuple)) else ""))
    elif not all(_is_number(v) for v in kp):
        bad = next(v for v in kp if not _is_number(v))
        found.add(k, "bad-keypoints", p, f"keypoints must be numbers, {_found(bad)} in "
                  f"{_short(kp)}")
    elif not all(_finite(v) for v in kp):
        found.add(k, "non-finite", p, f"keypoints must be finite, found {_short(kp)}")


# -- warnings -------------------------------------------------------------------------


def category_warnings(categories: Categories) -> list[str]:
    """Warnings about the categories an export writes (category id 0)."""
    rows = np.flatnonzero(categories.id == 0)
    return [
        f"categories[{int(r)}].id: category id 0 ({categories.name[r]!s}) is read as the "
        "background class by some tools (Datumaro, some trainers); ids from 1 are safer"
        for r in rows.tolist()
    ]
