"""Checks of JSON text shared by the reader and the validator, whatever the chunk source.

Every document-level failure of a COCO file becomes one :class:`DocumentError` (a
:class:`~cocokit.errors.JSONSyntaxError`) that carries a problem ``code`` of
:data:`cocokit.problems.CODES`, the 1-based line and column, and one sentence. The
in-memory reader (one buffer) and the streamed reader (blocks of a file) build it with
the same functions from the same byte offset, so both say the same thing:

* ``json-syntax``: malformed JSON, including trailing data after the document (two
  documents one after the other), ``NaN``/``Infinity`` literals, an empty or
  whitespace-only file, a truncated one, and text that is not UTF-8 (RFC 8259): a
  UTF-16/UTF-32 file with or without a byte order mark and a UTF-8 byte order mark (the
  message names the encoding), or an invalid UTF-8 sequence (at its byte offset);
* ``too-deep``: nesting the decoder cannot follow (msgspec recurses, up to about
  Python's recursion limit, 1000 levels); the place named is where the nesting passes
  :data:`MAX_DEPTH`, found by a scan of the offending text only when decoding failed;
* ``duplicate-key``: a top-level key given twice (the in-memory parser would keep the
  last value and the streamed one both). Inside records a repeated key keeps its last
  value, as Python's ``json`` module (and so pycocotools) does;
* ``non-finite``: a number beyond the float range (``1e999``) outside the places the
  validator checks (``info`` ...): it cannot be kept as a finite number.

When a document has several syntax, UTF-8 or nesting errors, the first in the file
wins, in both paths; a duplicate key is reported only when the text is otherwise
readable.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from ..errors import InputError, JSONSyntaxError

__all__ = [
    "MAX_DEPTH",
    "DocumentError",
    "NotAnObject",
    "Utf8Scan",
    "decode_error",
    "decode_extra",
    "encoding_problem",
    "line_column",
    "nesting_error",
    "read_top",
    "syntax_error",
    "value_kind",
]

#: The depth named in a ``too-deep`` error (where the nesting passes it). Documents are
#: refused where msgspec's recursion stops (about 1000 levels, Python's recursion
#: limit), so this is a lower bound, below any real COCO file's nesting (5 or so).
MAX_DEPTH = 500

_BYTE = re.compile(r"\s*\(byte (\d+)\)\s*$")
_UTF8_BLOCK = 1 << 24
_WS = b" \t\r\n"

# a truncated input, said the same way in every path
TRUNCATED = "the input ended before the JSON value was complete"
TRAILING = "unexpected characters after the JSON value"


class DocumentError(JSONSyntaxError):
    """The text of a document is not readable JSON; ``code`` says how (see the module).

    ``reason`` is the sentence without the place; ``where`` the top-level key or record
    (``info``, ``annotations[3]``) when known, else "".
    """

    def __init__(self, file: str | None, line: int, column: int, reason: str,
                 code: str = "json-syntax", where: str = "", offset: int = -1) -> None:
        super().__init__(file, line, column, reason)
        self.code = code
        self.reason = reason
        self.where = where
        self.offset = offset

    def problem_message(self) -> str:
        """The sentence of the validator's problem for this error."""
        what = "malformed JSON at" if self.code == "json-syntax" else "at"
        return f"{what} line {self.line}, column {self.column}: {self.reason}"


def line_column(data: bytes | memoryview, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of byte ``offset`` of ``data``."""
    offset = max(0, min(offset, len(data)))
    head = bytes(memoryview(data)[:offset])
    start = head.rfind(b"\n") + 1
    return head.count(b"\n") + 1, len(head[start:].decode("utf-8", errors="replace")) + 1


def file_line_column(path: str, offset: int) -> tuple[int, int]:
    """:func:`line_column` of a file, read block by block."""
    line, seen, tail = 1, 0, b""
    with open(path, "rb") as f:
        while seen < offset:
            block = f.read(min(1 << 24, offset - seen))
            if not block:
                break
            n = block.count(b"\n")
            if n:
                line += n
                tail = block[block.rfind(b"\n") + 1 :]
            else:
                tail += block
            seen += len(block)
    return line, len(tail.decode("utf-8", errors="replace")) + 1


def encoding_problem(head: bytes) -> str | None:
    """Why a file starting with ``head`` (its first bytes) is not UTF-8 JSON, or None."""
    boms = (
        (codecs.BOM_UTF32_LE, "UTF-32 (little-endian) with a byte order mark"),
        (codecs.BOM_UTF32_BE, "UTF-32 (big-endian) with a byte order mark"),
        (codecs.BOM_UTF8, "UTF-8 with a byte order mark"),
        (codecs.BOM_UTF16_LE, "UTF-16 (little-endian) with a byte order mark"),
        (codecs.BOM_UTF16_BE, "UTF-16 (big-endian) with a byte order mark"),
    )
    for bom, name in boms:
        if head.startswith(bom):
            return _encoding_sentence(name)
    b = head[:4]
    if len(b) >= 4 and b[0] == 0 and b[1] == 0 and b[2] == 0 and b[3] != 0:
        return _encoding_sentence("UTF-32 (big-endian)")
    if len(b) >= 4 and b[0] != 0 and b[1] == 0 and b[2] == 0 and b[3] == 0:
        return _encoding_sentence("UTF-32 (little-endian)")
    if len(b) >= 2 and b[0] == 0 and b[1] != 0:
        return _encoding_sentence("UTF-16 (big-endian)")
    if len(b) >= 2 and b[0] != 0 and b[1] == 0:
        return _encoding_sentence("UTF-16 (little-endian)")
    return None


def _encoding_sentence(name: str) -> str:
    if name.startswith("UTF-8"):
        return ("the file starts with a UTF-8 byte order mark, which JSON does not allow; "
                "save it as UTF-8 without BOM")
    return f"the file is encoded as {name}; JSON files must be UTF-8"


class Utf8Scan:
    """Checks that consecutive blocks of a file are UTF-8; ``bad`` is the offset of the
    first invalid byte (None while all is well). Blocks must come in order, from 0."""

    def __init__(self) -> None:
        self.bad: int | None = None
        self._seen = 0  # offset of the first byte not decoded yet
        self._carry = b""  # an incomplete sequence at the end of the last block

    def feed(self, block: bytes | memoryview, final: bool = False) -> None:
        mv = memoryview(block)
        for s in range(0, max(len(mv), 1), _UTF8_BLOCK):
            if self.bad is not None:
                return
            part: bytes | memoryview = mv[s : s + _UTF8_BLOCK]
            last = final and s + _UTF8_BLOCK >= len(mv)
            if self._carry:
                part = self._carry + bytes(part)
            try:
                _, used = codecs.utf_8_decode(part, "strict", last)
            except UnicodeDecodeError as e:
                self.bad = self._seen + e.start
                return
            self._carry = bytes(part[used:])
            self._seen += used

    def error(self, file: str | None, locate: Callable[[int], tuple[int, int]]
              ) -> DocumentError:
        assert self.bad is not None
        line, col = locate(self.bad)
        return DocumentError(file, line, col, f"invalid UTF-8 byte sequence at byte "
                             f"{self.bad}; JSON files must be UTF-8", "json-syntax")


def utf8_offset(data: bytes | memoryview) -> int | None:
    """Offset of the first invalid UTF-8 byte of a whole buffer, or None."""
    scan = Utf8Scan()
    scan.feed(data, final=True)
    return scan.bad


def decode_error(e: msgspec.DecodeError, base: int, size: int,
                 text: bytes | memoryview = b"") -> tuple[int, str]:
    """(absolute offset, reason) of a msgspec decode error of ``text``, which starts at byte
    ``base`` of a file of ``size`` bytes (a truncated input points at the end)."""
    msg = str(e)
    m = _BYTE.search(msg)
    reason = _BYTE.sub("", msg).removeprefix("JSON is malformed: ")
    if m is None:
        return size, TRUNCATED if "truncated" in msg else reason
    rel = int(m.group(1))
    if reason.startswith("trailing characters"):
        return base + rel - 1, TRAILING  # msgspec points one past the first one
    if reason == "invalid character":
        c = bytes(memoryview(text)[rel : rel + 2])
        if c[:1] in (b"N", b"I") or c in (b"-I", b"-N"):
            reason += " (NaN and Infinity are not JSON numbers)"
    return base + rel, reason


def empty_reason(only_whitespace: bool) -> str:
    return ("the file holds only whitespace, no JSON value" if only_whitespace
            else "the file is empty")


_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{},:]', re.S)


def nesting_error(file: str | None, text: bytes | memoryview, base: int,
                  locate: Callable[[int], tuple[int, int]], *, depth: int = 0,
                  key: str | None = None, first: int = 0) -> DocumentError:
    """The place where ``text`` nests deeper than :data:`MAX_DEPTH`.

    ``text`` is a piece of a file starting at byte ``base``: the whole document
    (``depth`` 0), or the value of the top-level ``key`` (``depth`` 1), which may be a
    run of the records of a section whose first is record ``first``. The message names
    the top-level key and, for the three sections, the record.
    """
    d = depth
    record = -1
    expect_key = False
    last_string = b""
    at = len(text)
    for m in _TOKEN.finditer(bytes(text)):
        tok = m.group()
        c = tok[:1]
        if c == b'"':
            last_string = tok
            continue
        if c in b"[{":
            d += 1
            if d > MAX_DEPTH:
                at = m.start()
                break
            if d == 2 and c == b"[" and key in ("images", "annotations", "categories"):
                record = first
            expect_key = c == b"{"
        elif c in b"]}":
            d -= 1
        elif c == b":":
            if d == 1 and expect_key:
                try:
                    key = msgspec.json.decode(last_string, type=str)
                except msgspec.DecodeError:
                    key = None
                record = -1
        elif c == b",":
            if d == 1:
                expect_key = True
            elif d == 2 and record >= 0:
                record += 1
    where = "" if key is None else key + (f"[{record}]" if record >= 0 else "")
    offset = base + at
    line, col = locate(offset)
    place = f" in `{where}`" if where else ""
    return DocumentError(file, line, col, f"nesting deeper than {MAX_DEPTH} levels{place}",
                         "too-deep", where, offset)


def value_kind(first: bytes) -> str:
    """The JSON type of a value from its first byte (for messages)."""
    c = first[:1]
    return {b"[": "an array", b"{": "an object", b'"': "a string", b"t": "a boolean",
            b"f": "a boolean", b"n": "null"}.get(c, "a number" if c else "nothing")


def duplicate_key_reason(key: str) -> str:
    return (f'the top-level key "{key}" appears twice; a JSON object must not repeat a key '
            "(readers disagree on which value wins)")


def out_of_range_reason(where: str) -> str:
    return (f"a number in `{where}` is beyond the 64-bit float range (such as 1e999) "
            "and cannot be kept")


def skip_ws(data: bytes | memoryview, pos: int) -> int:
    n = len(data)
    while pos < n and data[pos] in _WS:
        pos += 1
    return pos


class NotAnObject(InputError):
    """The top level of a document is not a JSON object; ``kind`` says what it is."""

    def __init__(self, file: str | None, kind: str) -> None:
        super().__init__(file, None, f"expected a JSON object at the top level, found {kind}")
        self.kind = kind


def string_end(data: bytes, pos: int) -> int:
    """Offset just after the JSON string starting at ``pos`` (-1 when it does not end)."""
    end = pos + 1
    while True:
        i = data.find(b'"', end)
        if i < 0:
            return -1
        j = i
        while data[j - 1] == 0x5C:  # count the backslashes before the quote
            j -= 1
        if (i - j) % 2 == 0:
            return i + 1
        end = i + 1


def _value_end(mv: memoryview, pos: int) -> int:
    """Offset just after the JSON value at ``pos`` of an already checked text."""
    try:
        msgspec.json.decode(mv[pos:], type=msgspec.Raw)
    except msgspec.DecodeError as e:
        m = _BYTE.search(str(e))
        if m and str(e).find("trailing characters") >= 0:
            return pos + int(m.group(1)) - 1
        raise
    return len(mv)


class _Coco(msgspec.Struct, forbid_unknown_fields=True):
    """A top level with no key but COCO's five, its arrays split into their records."""

    info: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    licenses: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    images: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    annotations: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET
    categories: list[msgspec.Raw] | msgspec.UnsetType = msgspec.UNSET


_COCO = msgspec.json.Decoder(_Coco)


def _address(buffer: Any) -> int:
    """Where a buffer's bytes start in memory (a raw value is a view of the document)."""
    return int(np.frombuffer(buffer, np.uint8).__array_interface__["data"][0])


def _split_top(
    data: bytes,
) -> tuple[dict[str, msgspec.Raw], dict[str, list[msgspec.Raw]]] | None:
    """The top level and its arrays' records in one pass over ``data``, or None when the
    document holds anything else (another key, an array that is not one, a syntax
    error: :func:`read_top` then reads it the general way and says what is wrong).

    Each array is given as raw JSON too: a view of ``data`` from its ``[`` to its ``]``,
    found from the places of its first and last records."""
    try:
        doc = _COCO.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    base = _address(data) if data else 0
    mv = memoryview(data)
    top: dict[str, msgspec.Raw] = {}
    records: dict[str, list[msgspec.Raw]] = {}
    for key in _Coco.__struct_fields__:
        value = getattr(doc, key)
        if value is msgspec.UNSET:
            continue
        if not isinstance(value, list):
            top[key] = value
            continue
        records[key] = value
        if not value:
            top[key] = msgspec.Raw(b"[]")
            continue
        first = _address(value[0]) - base
        last = _address(value[-1]) - base + len(memoryview(value[-1]))
        end = skip_ws(data, last)
        top[key] = msgspec.Raw(mv[data.rindex(b"[", 0, first) : end + 1])
    return top, records


def read_top(
    data: bytes, file: str | None
) -> tuple[dict[str, msgspec.Raw], list[str], dict[str, list[msgspec.Raw]]]:
    """The top-level object of a whole document: each value as raw JSON (views of
    ``data``), the keys in file order, and the records of the arrays ``images``,
    ``annotations`` and ``categories`` (raw JSON, views of ``data``) where the same pass
    could split them: a document with COCO's five top-level keys and no other (most
    files) is read once instead of twice. The mapping is empty otherwise: split the
    arrays' raw values then.

    Raises :class:`DocumentError` (see the module for the codes) or :class:`NotAnObject`.
    """
    size = len(data)

    def locate(offset: int) -> tuple[int, int]:
        return line_column(data, offset)

    enc = encoding_problem(data[:4])
    if enc is not None:
        raise DocumentError(file, 1, 1, enc, "json-syntax")
    first = skip_ws(data, 0)
    if first == size:
        raise DocumentError(file, *locate(size), empty_reason(size > 0))
    bad_utf8 = utf8_offset(data)

    def utf8_first(offset: int) -> None:
        if bad_utf8 is not None and bad_utf8 <= offset:
            scan = Utf8Scan()
            scan.bad = bad_utf8
            raise scan.error(file, locate) from None

    if data[first] != 0x7B:  # '{'
        utf8_first(first)
        raise top_not_object(file, data[first : first + 1], first, locate)
    split = _split_top(data)
    if split is not None:
        top, records = split
        utf8_first(size)
        return top, _top_keys(data, top, file, locate), records
    try:
        top = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    except msgspec.DecodeError as e:
        offset, reason = decode_error(e, 0, size, data)
        utf8_first(offset)
        raise DocumentError(file, *locate(offset), reason) from None
    except RecursionError:
        err = nesting_error(file, data, 0, locate)
        utf8_first(err.offset)
        raise err from None
    utf8_first(size)
    return top, _top_keys(data, top, file, locate), {}


def top_not_object(file: str | None, first: bytes, offset: int,
                   locate: Callable[[int], tuple[int, int]]) -> InputError:
    """The error for a document whose first byte (at ``offset``) is not ``{``."""
    if first and first in b'["-0123456789tfn':
        return NotAnObject(file, value_kind(first))
    return DocumentError(file, *locate(offset), "invalid character", offset=offset)


def _top_keys(data: bytes, top: dict[str, msgspec.Raw], file: str | None,
              locate: Callable[[int], tuple[int, int]]) -> list[str]:
    """The top-level keys in file order; a key given twice is a ``duplicate-key`` error."""
    mv = memoryview(data)
    base = _address(data) if data else 0
    keys: list[str] = []
    seen: set[str] = set()
    pos = skip_ws(data, 0) + 1
    while True:
        pos = skip_ws(data, pos)
        if data[pos] == 0x7D:  # '}'
            return keys
        end = string_end(data, pos)
        key = msgspec.json.decode(mv[pos:end], type=str)
        if key in seen:
            raise DocumentError(file, *locate(pos), duplicate_key_reason(key), "duplicate-key",
                                key, pos)
        seen.add(key)
        keys.append(key)
        pos = skip_ws(data, skip_ws(data, end) + 1)  # past the colon
        raw = memoryview(top[key])
        if (len(raw) > 1 and _address(raw) - base == pos) or data.startswith(raw, pos):
            pos += len(raw)
        else:  # the first of two values of this key
            pos = _value_end(mv, pos)
        pos = skip_ws(data, pos)
        if data[pos] == 0x2C:  # ','
            pos += 1


def decode_extra(raw: bytes | memoryview, file: str | None, key: str) -> Any:
    """A top-level value other than the three arrays, as Python objects.

    A number out of range is an InputError; a msgspec.DecodeError (text the skipping
    pass let through) is left to the caller, which knows where the value lies."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.ValidationError:  # a number beyond the float range, or a huge integer
        raise InputError(file, key, out_of_range_reason(key)) from None


def syntax_error(data: bytes, file: str | None, e: msgspec.DecodeError) -> JSONSyntaxError:
    """The :class:`~cocokit.errors.JSONSyntaxError` (line, column, reason) of a msgspec
    decode error of the whole document ``data``."""
    offset, reason = decode_error(e, 0, len(data), data)
    line, column = line_column(data, offset)
    return JSONSyntaxError(file, line, column, reason)
