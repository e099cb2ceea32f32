"""Raw JSON arrays of numbers read by their bytes, in columns.

The reader keeps each ``segmentation`` and ``keypoints`` value as its JSON text (a
:class:`msgspec.Raw`), so a load never parses a coordinate. What needs the numbers or
only their layout reads the texts here, a chunk at a time, without a Python object per
number:

- :class:`Joined` and :func:`array_groups` give the layout (arrays per row, numbers per
  array) from the brackets and commas alone;
- :func:`read_arrays` gives the layout and every number of a chunk of polygon lists or
  keypoint arrays, the numbers as one float64 array. It parses them with simdjson (the
  ``pysimdjson`` wheel, about 25 ns a number) where it is installed and the layout is
  plain, and with msgspec (about 90 ns, the Python float it makes included) otherwise,
  or when simdjson refuses the text (an integer beyond 64 bits, say): msgspec decides
  every text simdjson does not read, so the columns are the same, bit for bit.

Nothing here reports a problem: a text that is not what the caller expects raises
:class:`ValueError`, and the caller decodes it the slow way to say exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain
from typing import Any

import msgspec
import numpy as np


def _compiled() -> Any:
    """simdjson when its wheel is there (every CPython up to 3.13), else None."""
    try:
        import simdjson
    except ImportError:  # pragma: no cover - the tests force the fallback instead
        return None
    return simdjson


_simdjson: Any = _compiled()

__all__ = ["Joined", "array_groups", "heads", "read_arrays", "simdjson_enabled"]

_WS = b" \t\r\n"
_LONG_DIGITS = 309  # an integer part this long may overflow a float
_NUMBER_BYTES = b"0123456789.-"  # what plain numbers are made of (no exponent)
_POLYGONS = msgspec.json.Decoder(list[list[list[float]]])
_NUMBERS = msgspec.json.Decoder(list[list[float]])
_HEADS_BLOCK = 1 << 15  # texts joined at once by heads()


def simdjson_enabled() -> bool:
    """Whether :func:`read_arrays` has the compiled parser."""
    return _simdjson is not None


def heads(raws: Sequence[Any]) -> np.ndarray:
    """The first byte of each raw JSON text (never empty, never whitespace).

    Read off the texts laid end to end, a block at a time: a copy of the bytes costs
    less than a memoryview per text (about 110 against 260 ns a polygon list here).
    """
    m = len(raws)
    out = np.empty(m, np.uint8)
    for s in range(0, m, _HEADS_BLOCK):
        part = raws[s : s + _HEADS_BLOCK]
        lens = np.fromiter(map(len, part), np.int64, count=len(part))
        out[s : s + len(part)] = np.frombuffer(b"".join(part), np.uint8)[np.cumsum(lens) - lens]
    return out


class Joined:
    """Raw JSON texts laid end to end, with their offsets and first bytes."""

    def __init__(self, raws: Sequence[Any]) -> None:
        m = len(raws)
        self.raws = raws
        text = b"".join(raws)
        if any(c in text for c in _WS):  # indented JSON: the texts without whitespace
            raws = [bytes(r).translate(None, _WS) for r in raws]
            text = b"".join(raws)
        lens = np.fromiter(map(len, raws), np.int64, count=m)
        self.lens = lens
        self.offsets = np.zeros(m + 1, np.int64)
        np.cumsum(lens, out=self.offsets[1:])
        self.text = text
        self.data = np.frombuffer(self.text, np.uint8)
        self.heads = np.zeros(m, np.uint8)
        nonempty = lens > 0
        self.heads[nonempty] = self.data[self.offsets[:-1][nonempty]]

    def rows_of(self, positions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.offsets, positions, "right") - 1


def array_groups(
    j: Joined, rows: np.ndarray, depth: int, *, long_numbers: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Numbers per group of the raw JSON arrays ``rows`` of ``j`` (every raw of ``j`` an
    array), counted on the bytes.

    ``depth`` 2: each raw is an array of arrays (polygons; the groups are the rings);
    ``depth`` 1: an array of numbers (keypoints; the group is the raw itself). Returns
    ``sure`` (per row: the byte count decides; False means decode it to know), the
    number of groups per row, and the count of numbers of every group (rows in order).
    Rows of ``j`` not in ``rows`` are ignored. ``long_numbers=False`` leaves out the
    search for numbers long enough to overflow a float, for a caller that parses them.

    The numbers are taken out of the text first (``bytes.translate``): what is left of
    plain arrays of numbers is brackets and commas only, about a seventh of the text, and
    the numbers of a group are the commas between its brackets, plus one.
    """
    m = len(j.raws)
    wanted = np.zeros(m, bool)
    wanted[rows] = True
    sure = np.ones(m, bool)
    text = j.text
    unsure = (np.zeros(len(rows), bool), np.zeros(len(rows), np.int64), np.zeros(0, np.int64))
    if b'"' in text:  # a string may hold brackets: decode every row of this run
        return unsure
    bare = np.frombuffer(text.translate(None, _NUMBER_BYTES), np.uint8)
    is_bracket = (bare == 91) | (bare == 93)
    pos = np.flatnonzero(is_bracket)  # in order
    is_open = bare[pos] == 91
    level = np.cumsum(np.where(is_open, 1, -1))  # depth after each bracket
    row_open = is_open & (level == 1)  # each raw is one array: its first bracket
    brow = np.cumsum(row_open) - 1  # the row of each bracket
    if len(pos) == 0 or brow[-1] != m - 1 or (level < 0).any() or level[-1] != 0:
        return unsure
    # anything left but brackets and commas (an object, a literal true/false/null, an
    # exponent): decode those rows
    other = np.flatnonzero(~is_bracket & (bare != 44))
    if len(other):
        sure[np.searchsorted(pos[row_open], other, "right") - 1] = False
    sure[brow[level > depth]] = False  # nested deeper: decode
    # the groups: brackets opening at ``depth``, closed by the next bracket
    g = np.flatnonzero(is_open & (level == depth) & wanted[brow])
    g = g[g + 1 < len(pos)]
    g_row = brow[g]
    count = pos[g + 1] - pos[g]  # the commas between them, plus one
    count[count < 2] = 0  # "[]", or a group of one number: decode its row to know
    sure[g_row[count == 0]] = False
    # a number long enough to overflow a float (309 digits) holds a whole aligned block
    # of 154 bytes of the text without a comma: decode the rows of such blocks
    data = j.data
    if long_numbers and len(data) >= _LONG_DIGITS:
        block = _LONG_DIGITS // 2
        full = len(data) // block * block
        has = (data[:full].reshape(-1, block) == 44).any(axis=1)
        empty = np.flatnonzero(~has) * block
        if full < len(data) - block // 2 and 44 not in data[full:]:
            empty = np.append(empty, full)
        if len(empty):
            sure[np.unique(j.rows_of(empty))] = False
    if depth == 2:
        # between the rings only "," (and the raw's own "[" and "]"); anything else, such
        # as a number at the outer level (a "," more or less here), is decided by decoding
        outer = np.flatnonzero(level[:-1] == 1)
        expected = 1 + (~is_open[outer] & is_open[outer + 1])
        gap = pos[outer + 1] - pos[outer]
        sure[brow[outer[gap != expected]]] = False
    else:
        per_raw = np.bincount(brow, minlength=m)
        sure[per_raw != 2] = False  # the raw's own brackets only
    groups = np.bincount(g_row, minlength=m)
    return sure[rows], groups[rows], count


def read_arrays(raws: Sequence[Any], depth: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw JSON arrays ``raws`` in columns: groups per raw, numbers per group, and
    every number in order (float64).

    ``depth`` 2: each raw is an array of arrays of numbers (a polygon list; the groups
    are its rings); ``depth`` 1: an array of numbers (keypoints; the group is the raw).
    Raises ValueError when a raw is anything else (a string, an object, a number outside
    a ring, a ring nested deeper, a number beyond float64). Groups are not checked for
    length: a ring of one number or none is returned as it is.
    """
    m = len(raws)
    if not m:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float64)
    text = b"[" + b",".join(raws) + b"]"
    if _simdjson is not None:
        # numbers beyond float64 are simdjson's to refuse, not the layout's to find
        sure, groups, count = array_groups(Joined(raws), np.arange(m), depth,
                                           long_numbers=False)
        numbers = _simd_numbers(text) if sure.all() else None
        if numbers is not None and len(numbers) == int(count.sum()):
            return groups, count, numbers
    values: Any
    try:
        values = (_POLYGONS if depth == 2 else _NUMBERS).decode(text)
    except msgspec.DecodeError as e:
        raise ValueError(str(e)) from None
    if depth == 2:
        groups = np.fromiter(map(len, values), np.int64, count=m)
        values = list(chain.from_iterable(values))
    else:
        groups = np.ones(m, np.int64)
    count = np.fromiter(map(len, values), np.int64, count=len(values))
    numbers = np.fromiter(chain.from_iterable(values), np.float64, count=int(count.sum()))
    if not np.isfinite(numbers).all():
        raise ValueError("a number beyond float64")
    return groups, count, numbers


def _simd_numbers(text: bytes) -> np.ndarray | None:
    """Every number of ``text`` (arrays of numbers nested to any depth), flattened; None
    when simdjson refuses the text (msgspec then decides what it is)."""
    parser = _simdjson.Parser()
    doc: Any
    try:
        doc = parser.parse(text)
    except (ValueError, RuntimeError, TypeError, UnicodeDecodeError):
        return None
    try:
        return np.frombuffer(doc.as_buffer(of_type="d"), np.float64)  # a copy
    except (ValueError, RuntimeError, TypeError, AttributeError):
        return None
    finally:
        del doc
