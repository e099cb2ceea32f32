"""COCO files of any size in bounded memory: a streaming reader and writer.

:func:`open_stream` makes a first pass over the file that reads it block by block and
records where each top-level value lies and, for the ``images`` and ``annotations``
arrays, where runs of about ``chunk_bytes`` of whole records begin and end (a page
map). It works whatever the order of the top-level keys. Later passes seek to those
runs and decode them with the same record decoders as :func:`cocokit.load`, so a
stream yields exactly the tables the in-memory path would, one run at a time.

How a run is cut without a full JSON tokenizer: near the end of a block the reader
looks for the last ``}`` ``,`` ``{`` (records are objects) and asks msgspec to decode
``[`` + the text up to that ``}`` + ``]`` as a list of raw records. That succeeds only
when the cut lies between two records of the array; a cut inside a nested value or a
string leaves brackets or a string open and fails, and the next candidate is tried. When
the array ends inside the text, msgspec reports trailing characters at the array's end.

Images with their annotations (:meth:`CocoStream.datasets`, :meth:`CocoStream.items`,
``for item in stream``): the images are cut into chunks of ``images_per_chunk`` in file
order, and each chunk comes as a :class:`~cocokit.Dataset` holding those images and
exactly their annotations, whatever the order of the annotations array (COCO
train2017's is not sorted by image). Pass 1 reads only the image ids (one int64 column);
pass 2 reads only the ``image_id`` of each annotation and maps it to the chunk of its
image. While the chunk numbers never decrease the annotations are already grouped, and
the chunks are then cut straight from the runs (no spill). Otherwise each annotation's
raw JSON text is appended to a spill file of its chunk, in file order, in a temporary
directory (beside the input unless ``tmp_dir`` says where); each chunk's spill is then
decoded with the same record decoder as :func:`cocokit.load`, yielded, and deleted. The
directory goes away at the end, on an error, or when the consumer stops early. Memory
holds one chunk, one run and the id columns. Joins follow :class:`~cocokit.Dataset`: an
annotation belongs to the first image with its ``image_id``; one whose ``image_id`` names
no image (an orphan) belongs to no image and is left out (counted in
``orphan_annotations``).

:func:`cocokit.io.coco.write_coco` writes a stream (or a lazily filtered one,
:class:`cocokit.io.coco.FilteredStream`) under the export contract (ids auto/keep,
categories passed through, negatives kept or dropped, integrity checked before the
final rename, atomic) holding only id columns in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import re
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from msgspec import Raw

from ..dataset import (
    Annotations,
    Categories,
    Dataset,
    ImageItem,
    Images,
    gc_paused,
    unique,
)
from ..errors import InputError, OptionError
from . import sniff
from .coco import (
    RecordDecoder,
    annotation_decoder,
    decode_categories,
    image_decoder,
)
from .jsontext import (
    TRAILING,
    TRUNCATED,
    DocumentError,
    Utf8Scan,
    decode_error,
    decode_extra,
    duplicate_key_reason,
    empty_reason,
    encoding_problem,
    file_line_column,
    nesting_error,
    top_not_object,
)

__all__ = ["CocoStream", "open_stream"]

CHUNK_BYTES = 32 << 20
_CUT = re.compile(rb"\}\s*,\s*\{")
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")
_WS = b" \t\r\n"
_RAW_LIST = msgspec.json.Decoder(list[Raw])


def _cuts(buf: bytes, lo: int, hi: int) -> Iterator[int]:
    """Offsets just after a ``}`` followed by ``,`` and ``{`` in buf[lo:hi], last first."""
    step = 1 << 20
    top = hi
    while top > lo:
        bottom = max(lo, top - step)
        found = [m.start() + 1 for m in _CUT.finditer(buf, bottom, top)]
        yield from reversed(found)
        # a match may straddle the boundary: the next window overlaps by a few bytes
        top = bottom + 64 if bottom > lo else lo
        if bottom == lo:
            break
        step *= 4


class _AnnRef(msgspec.Struct):
    image_id: int


_REF_LIST = msgspec.json.Decoder(list[_AnnRef])


def _referenced_image_ids(text: bytes) -> np.ndarray | None:
    """The ``image_id`` of each annotation of a run of records (a JSON array), read
    without decoding the rest; None when a record does not fit (the full decoder then
    says what is wrong)."""
    try:
        refs = _REF_LIST.decode(text)
        return np.fromiter((r.image_id for r in refs), np.int64, len(refs))
    except (msgspec.ValidationError, OverflowError):
        return None


class _ImageRef(msgspec.Struct):
    id: int


_IMAGE_REF_LIST = msgspec.json.Decoder(list[_ImageRef])


class _RowFinder:
    """:func:`cocokit.dataset.lookup` with the keys sorted once: row of each value, or -1."""

    def __init__(self, keys: np.ndarray) -> None:
        self.order = np.argsort(keys, kind="stable")  # equal ids: the first row first
        self.sorted = keys[self.order]

    def __call__(self, values: np.ndarray) -> np.ndarray:
        if len(self.sorted) == 0:
            return np.full(len(values), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.sorted, values), len(self.sorted) - 1)
        found = self.sorted[pos] == values
        return np.where(found, self.order[pos], -1).astype(np.int64)


def _segments(chunks: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(chunk, rows) for the rows of each chunk number >= 0, chunks ascending, rows in order."""
    rows = np.flatnonzero(chunks >= 0)
    if not len(rows):
        return
    rows = rows[np.argsort(chunks[rows], kind="stable")]
    sorted_chunks = chunks[rows]
    bounds = [0, *(np.flatnonzero(np.diff(sorted_chunks)) + 1).tolist(), len(rows)]
    for a, b in itertools.pairwise(bounds):
        yield int(sorted_chunks[a]), rows[a:b]


@dataclasses.dataclass(frozen=True)
class _Run:
    start: int  # file offset of the first record's first byte
    end: int  # file offset just after the last record
    first: int  # index of the first record in the array
    count: int


class _Window:
    """A forward-only view of a file: ``buf`` holds bytes ``base .. base + len(buf)``."""

    def __init__(self, f: Any, block: int, read: Callable[[int], None] | None = None) -> None:
        self.f = f
        self.block = block
        self.read = read  # called with the bytes read so far, after each read
        self.buf = b""
        self.base = 0
        self.eof = False
        self.utf8 = Utf8Scan()  # every byte read is checked, in order

    @property
    def stop(self) -> int:
        return self.base + len(self.buf)

    def fill(self, upto: int) -> None:
        """Read until the window reaches file offset ``upto`` (or the end of the file)."""
        parts = [self.buf]
        have = self.stop
        while have < upto and not self.eof:
            data = self.f.read(max(self.block, upto - have))
            if not data:
                self.eof = True
                self.utf8.feed(b"", final=True)
                break
            self.utf8.feed(data)
            parts.append(data)
            have += len(data)
            if self.read is not None:
                self.read(have)
        if len(parts) > 1:
            self.buf = b"".join(parts)

    def forget(self, pos: int) -> None:
        """Drop the bytes before file offset ``pos``."""
        if pos - self.base > self.block:
            self.buf = self.buf[pos - self.base :]
            self.base = pos

    def skip_ws(self, pos: int) -> int:
        while True:
            self.fill(pos + 1)
            i = pos - self.base
            while i < len(self.buf) and self.buf[i] in _WS:
                i += 1
            if i < len(self.buf) or self.eof:
                return self.base + i
            pos = self.base + i

    def at(self, pos: int) -> bytes:
        self.fill(pos + 1)
        i = pos - self.base
        return self.buf[i : i + 1]


class CocoStream:
    """A COCO file read in runs of records; see :func:`open_stream`.

    Attributes: ``key_order`` (top-level keys as in the file), ``extra`` (the top-level
    values other than images/annotations/categories, decoded), ``categories``,
    ``num_images``, ``num_annotations``, ``size`` (bytes), ``orphan_annotations``
    (annotations naming no image, once :meth:`datasets` has grouped them).

    Runs of records come from :meth:`image_tables` and :meth:`annotation_tables`;
    images with their annotations from :meth:`datasets` (chunks of images as
    :class:`~cocokit.Dataset`) and :meth:`items` (or iterating the stream).
    """

    def __init__(
        self, path: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES, *, strict: bool = True,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.chunk_bytes = chunk_bytes
        try:
            self.size = Path(self.path).stat().st_size
        except FileNotFoundError:
            raise InputError(self.path, None, "no such file") from None
        if Path(self.path).is_dir():
            raise InputError(self.path, None, sniff.describe_path(self.path) or "is a directory")
        self.key_order: list[str] = []
        self.extra: dict[str, Any] = {}
        self.runs: dict[str, list[_Run]] = {"images": [], "annotations": []}
        #: (not ``strict``) the raw text of images/annotations/categories values that are
        #: not arrays, and of the categories array, for the validator to report on.
        self.raw_values: dict[str, bytes] = {}
        #: (not ``strict``) top-level values that could not be decoded (1e999 ...).
        self.extra_errors: dict[str, InputError] = {}
        cats_raw = b"[]"
        self.used_image_ids = np.zeros(0, np.int64)
        duplicate: tuple[int, str] | None = None
        with open(self.path, "rb") as f, gc_paused():
            read = (lambda done: progress(done, self.size)) if progress is not None else None
            w = self._w = _Window(f, min(chunk_bytes, 1 << 24), read)
            w.fill(4)
            enc = encoding_problem(w.buf[:4])
            if enc is not None:
                raise DocumentError(self.path, 1, 1, enc, "json-syntax")
            pos = w.skip_ws(0)
            if pos >= self.size:
                raise self._syntax(self.size, empty_reason(self.size > 0))
            if w.at(pos) != b"{":
                err = top_not_object(self.path, w.at(pos), pos, self._locate)
                if strict:  # say what the file is (a results list, XML ...) when it can
                    w.fill(sniff.HEAD_BYTES)
                    said = sniff.describe_head(w.buf, self.path)
                    if said is not None:
                        err = InputError(self.path, None, said)
                raise self._first(pos, err)
            pos = w.skip_ws(pos + 1)
            while w.at(pos) != b"}":
                key_at = pos
                key, pos = self._key(w, pos)
                if key in self.key_order and duplicate is None:
                    duplicate = (key_at, key)
                if key in ("images", "annotations") and w.at(pos) == b"[":
                    pos = self._array(w, pos, key)
                else:
                    raw, pos = self._value(w, pos, key)
                    if key in ("images", "annotations"):
                        if strict:
                            raise InputError(self.path, key, "expected an array")
                        self.raw_values[key] = raw
                    elif key == "categories":
                        cats_raw = raw
                        if not strict:
                            self.raw_values[key] = raw
                    else:
                        self._extra(key, raw, pos, strict)
                if key not in self.key_order:
                    self.key_order.append(key)
                pos = w.skip_ws(pos)
                sep = w.at(pos)
                if sep == b",":
                    pos = w.skip_ws(pos + 1)
                elif sep != b"}":
                    raise self._syntax(pos, "expected ',' or '}'" if sep else TRUNCATED)
                w.forget(pos)
            after = w.skip_ws(pos + 1)
            if after < self.size:
                raise self._syntax(after, TRAILING)
            w.fill(self.size + 1)  # the end of the file: the UTF-8 check is complete
            w.buf = b""  # keep the check, not the last block
        if w.utf8.bad is not None:
            raise w.utf8.error(self.path, self._locate)
        if duplicate is not None:
            raise DocumentError(
                self.path, *self._locate(duplicate[0]), duplicate_key_reason(duplicate[1]),
                "duplicate-key", duplicate[1], duplicate[0],
            )
        if strict and not sniff.is_coco_top(self.key_order):
            said = sniff.describe_document(dict.fromkeys(self.key_order))
            raise InputError(self.path, None, said or "not a COCO dataset")
        cats = decode_categories(cats_raw, self.path) if strict else []
        self.categories = Categories(cats)
        self.file_keys = tuple(self.key_order)
        for key in ("images", "annotations", "categories"):
            if key not in self.key_order:
                self.key_order.append(key)
        self.num_images = sum(r.count for r in self.runs["images"])
        self.num_annotations = sum(r.count for r in self.runs["annotations"])
        #: Annotations whose ``image_id`` names no image, left out of :meth:`datasets`;
        #: known once a grouping pass has run (None before).
        self.orphan_annotations: int | None = None

    def _extra(self, key: str, raw: bytes, end: int, strict: bool) -> None:
        try:
            self.extra[key] = decode_extra(raw, self.path, key)
        except msgspec.DecodeError as e:  # what the skipping pass let through
            self._w.fill(end)
            if self._w.utf8.bad is not None:
                raise self._w.utf8.error(self.path, self._locate) from None
            raise self._syntax(*decode_error(e, end - len(raw), self.size, raw)) from None
        except InputError as e:
            if strict:
                raise
            self.extra_errors[key] = e

    def _locate(self, offset: int) -> tuple[int, int]:
        return file_line_column(self.path, offset)

    def _first(self, offset: int, err: InputError) -> InputError:
        """``err`` (at ``offset``), unless an invalid UTF-8 byte comes before it."""
        bad = self._w.utf8.bad
        if bad is not None and bad <= offset:
            return self._w.utf8.error(self.path, self._locate)
        return err

    def _syntax(self, offset: int, reason: str) -> InputError:
        err = DocumentError(self.path, *self._locate(offset), reason, offset=offset)
        return self._first(offset, err)

    def _nesting(
        self, text: bytes | memoryview, base: int, key: str, first: int = 0
    ) -> InputError:
        err = nesting_error(self.path, text, base, self._locate, depth=1, key=key, first=first)
        return self._first(err.offset, err)

    # -- the index pass -------------------------------------------------------------

    def _key(self, w: _Window, pos: int) -> tuple[str, int]:
        if w.at(pos) != b'"':
            raise self._syntax(pos, "object keys must be strings" if w.at(pos) else TRUNCATED)
        end = pos + 1
        while True:
            w.fill(end + 1)
            i = w.buf.find(b'"', end - w.base)
            if i < 0:
                if w.eof:
                    raise self._syntax(self.size, TRUNCATED)
                w.fill(w.stop + w.block)
                continue
            j = i
            while j > 0 and w.buf[j - 1] == 0x5C:  # count backslashes before the quote
                j -= 1
            end = w.base + i + 1
            if (i - j) % 2 == 0:
                break
        text = w.buf[pos - w.base : end - w.base]
        try:
            key = msgspec.json.decode(text, type=str)
        except msgspec.DecodeError as e:
            if w.utf8.bad is not None:
                raise w.utf8.error(self.path, self._locate) from None
            raise self._syntax(*decode_error(e, pos, self.size, text)) from None
        colon = w.skip_ws(end)
        if w.at(colon) != b":":
            raise self._syntax(colon, "expected ':'" if w.at(colon) else TRUNCATED)
        value = w.skip_ws(colon + 1)
        if value >= self.size:
            raise self._syntax(self.size, TRUNCATED)
        return key, value

    def _value(self, w: _Window, pos: int, key: str) -> tuple[bytes, int]:
        """A whole top-level value (not images/annotations): grow the window until it ends."""
        size = 1 << 16
        while True:
            w.fill(pos + size)
            text = w.buf[pos - w.base : pos - w.base + size]
            try:
                msgspec.json.decode(text, type=Raw)
                if w.eof and pos + len(text) >= w.stop:
                    return text, pos + len(text)
            except RecursionError:
                raise self._nesting(text, pos, key) from None
            except msgspec.DecodeError as e:
                m = _TRAILING.search(str(e))
                if m:  # msgspec points just past the first trailing character
                    n = int(m.group(1)) - 1
                    return text[:n].rstrip(_WS), pos + n
                at = re.search(r"\(byte (\d+)\)", str(e))
                near_end = at is None or int(at.group(1)) >= len(text) - 64
                if not near_end or pos + len(text) >= self.size:
                    raise self._decode_error(e, pos, key, text) from None
            size *= 2

    def _decode_error(
        self, e: msgspec.DecodeError, base: int, where: str, text: bytes | memoryview = b""
    ) -> InputError:
        return self._syntax(*decode_error(e, base, self.size, text))

    def _probe(self, key: str, text: bytes) -> int:
        """Decode ``text`` (a JSON array of records) just enough to check and count it.

        For annotations this also collects the image ids they reference. Raises
        msgspec.DecodeError where the text is not a whole array.
        """
        if key == "annotations":
            ids = _referenced_image_ids(text)
            if ids is None:
                return len(_RAW_LIST.decode(text))  # reported with its path when read
            self._used.append(unique(ids))
            if len(self._used) > 16:
                self._used[:] = [unique(np.concatenate(self._used))]
            return len(ids)
        return len(_RAW_LIST.decode(text))

    def _array(self, w: _Window, pos: int, key: str) -> int:
        """Index an array of records into runs; returns the offset after its ``]``."""
        runs = self.runs[key]
        first = 0
        pos = w.skip_ws(pos + 1)
        if w.at(pos) == b"]":
            return pos + 1
        self._used: list[np.ndarray] = []
        span = self.chunk_bytes
        while True:
            start = pos
            w.forget(start)
            w.fill(start + span)
            lo = start - w.base
            hi = min(len(w.buf), lo + span)
            end: tuple[int, int, int] | None = None  # (records end, array end, count)
            cut: tuple[int, int] | None = None  # (cut offset in buf, count)
            for c in _cuts(w.buf, lo, hi):
                seg = memoryview(w.buf)[lo:c]
                text = b"".join((b"[", seg, b"]"))
                try:
                    cut = (c, self._probe(key, text))
                    break
                except RecursionError:
                    raise self._nesting(text, start - 1, key, first) from None
                except msgspec.DecodeError as e:
                    m = _TRAILING.search(str(e))
                    if m is None:
                        continue  # the cut fell inside a record
                    end = self._closed(key, start, bytes(seg), int(m.group(1)))
                    break
            if cut is None and end is None:
                if start + span < self.size:
                    span *= 2  # a record longer than the block: look further
                    continue
                end = self._tail(w, start, key, first)
            if end is not None:
                rec_end, after, count = end
                if count:
                    runs.append(_Run(start, rec_end, first, count))
                if key == "annotations":
                    self.used_image_ids = unique(np.concatenate([self.used_image_ids, *self._used]))
                return after
            assert cut is not None
            c, count = cut
            span = self.chunk_bytes
            runs.append(_Run(start, w.base + c, first, count))
            first += count
            pos = w.skip_ws(w.skip_ws(w.base + c) + 1)  # past the comma

    def _closed(self, key: str, start: int, seg: bytes, n: int) -> tuple[int, int, int]:
        """The array closed inside ``seg``: msgspec saw trailing text at ``n`` of '[' + seg.

        msgspec reports the offset just past the first trailing character, so that
        character is ``seg[n - 2]``.
        """
        text = seg[: n - 2].rstrip(_WS)  # the records, then the array's ']'
        records = text[:-1].rstrip(_WS)
        count = self._probe(key, b"[" + records + b"]") if records else 0
        return start + len(records), start + len(text), count

    def _tail(self, w: _Window, start: int, key: str, first: int) -> tuple[int, int, int]:
        """No cut in the block: the rest of the array is one run; find where it ends."""
        size = 2 * max(self.chunk_bytes, 1 << 16)
        while True:
            w.fill(start + size)
            seg = w.buf[start - w.base : start - w.base + size]
            try:
                _RAW_LIST.decode(b"[" + seg)
                n = len(seg) + 2  # the file ends right after the array
            except RecursionError:
                raise self._nesting(b"[" + seg, start - 1, key, first) from None
            except msgspec.DecodeError as e:
                m = _TRAILING.search(str(e))
                if m is None:
                    at = re.search(r"\(byte (\d+)\)", str(e))
                    near_end = at is None or int(at.group(1)) >= len(seg) - 64
                    if near_end and start + len(seg) < self.size:
                        size *= 2  # the window ended inside a record
                        continue
                    raise self._decode_error(e, start - 1, key, b"[" + seg) from None
                n = int(m.group(1))
            return self._closed(key, start, seg, n)

    # -- reading runs ---------------------------------------------------------------

    def _run_texts(self, key: str) -> Iterator[tuple[_Run, bytes]]:
        with open(self.path, "rb") as f:
            for run in self.runs[key]:
                f.seek(run.start)
                yield run, b"".join((b"[", f.read(run.end - run.start), b"]"))

    @property
    def source(self) -> str:
        """The file's path (as :attr:`cocokit.Dataset.source` names a loaded file)."""
        return self.path

    def image_tables(self) -> Iterator[tuple[int, Images]]:
        """Runs of images as tables, in file order: (index of the first image, table)."""
        dec = image_decoder(self.path)
        for run, text in self._run_texts("images"):
            with gc_paused():
                table = dec.decode_array(text, run.first)
            yield run.first, table

    def annotation_tables(self) -> Iterator[tuple[int, Annotations]]:
        """Runs of annotations as tables, in file order: (index of the first, table)."""
        dec = annotation_decoder(self.path)
        for run, text in self._run_texts("annotations"):
            with gc_paused():
                table = dec.decode_array(text, run.first)
            yield run.first, table

    # -- images with their annotations -----------------------------------------------

    def datasets(
        self,
        images_per_chunk: int | None = None,
        *,
        tmp_dir: str | os.PathLike[str] | None = None,
    ) -> Generator[Dataset, None, None]:
        """Consecutive chunks of ``images_per_chunk`` images in file order, as datasets.

        ``images_per_chunk`` defaults to as many images as have, on average, about
        ``chunk_bytes`` of annotation text (some thousands for COCO-like files). Each
        :class:`~cocokit.Dataset` holds its images, exactly their annotations (in
        file order), the stream's categories and top-level extras, so iterating the chunks
        one after the other gives what iterating :func:`cocokit.load` gives, whatever the
        order of the annotations array. An annotation belongs to the first image with its
        ``image_id`` (as :meth:`Dataset.annotation_rows`); one whose ``image_id`` names
        no image belongs to no chunk (their number is then in ``orphan_annotations``).

        Two cheap passes read the image ids, then the ``image_id`` of each annotation.
        When the annotations are not already grouped by chunk, their raw JSON text is
        spilled to one file per chunk in a temporary directory made in ``tmp_dir``
        (default: beside the input, else the system's temporary folder), about the size
        of the annotations array; it is removed at the end, on an error, and when the
        generator is closed early. Memory holds one chunk, one run and the id columns.

        >>> s = open_stream("objects365_train.json")                  # doctest: +SKIP
        >>> for ds in s.datasets(images_per_chunk=5000):              # doctest: +SKIP
        ...     print(len(ds.images), len(ds.annotations))
        """
        if images_per_chunk is None:
            images_per_chunk = self.default_images_per_chunk()
        if isinstance(images_per_chunk, bool) or not isinstance(images_per_chunk, int) or (
            images_per_chunk < 1
        ):
            raise OptionError("images_per_chunk", images_per_chunk, "a positive integer")
        return self._datasets(images_per_chunk, tmp_dir)

    def default_images_per_chunk(self) -> int:
        """Images whose annotations take about ``chunk_bytes`` of text, on average."""
        text = sum(r.end - r.start for r in self.runs["annotations"])
        if not text or not self.num_images:
            return max(self.num_images, 1)
        return max(1, min(self.num_images, self.num_images * self.chunk_bytes // text))

    def items(
        self,
        images_per_chunk: int | None = None,
        *,
        tmp_dir: str | os.PathLike[str] | None = None,
    ) -> Generator[ImageItem, None, None]:
        """Each image with its annotations, in file order, as :class:`~cocokit.ImageItem`.

        The same items as iterating ``cocokit.load(path)`` (``index`` is the image's
        position in the file), read chunk by chunk with :meth:`datasets`;
        ``for item in stream`` is the same with the defaults.

        >>> for item in open_stream("huge.json"):                     # doctest: +SKIP
        ...     print(item.index, item.image["file_name"], len(item.annotations))
        """
        chunks = self.datasets(images_per_chunk, tmp_dir=tmp_dir)

        def gen() -> Generator[ImageItem, None, None]:
            base = 0
            with contextlib.closing(chunks):
                for ds in chunks:
                    for it in ds:
                        yield ImageItem(base + it.index, it.image, it.annotations)
                    base += len(ds)

        return gen()

    def __iter__(self) -> Iterator[ImageItem]:
        return self.items()

    def _image_ids(self) -> np.ndarray:
        """The id of every image, in file order (pass 1)."""
        parts = [np.zeros(0, np.int64)]
        for run, text in self._run_texts("images"):
            try:
                refs = _IMAGE_REF_LIST.decode(text)
                parts.append(np.fromiter((r.id for r in refs), np.int64, len(refs)))
            except (msgspec.ValidationError, OverflowError):  # the full decoder says why
                parts.append(image_decoder(self.path).decode_array(text, run.first).id)
        return np.concatenate(parts)

    def _chunk_numbers(self, run: _Run, text: bytes, find: _RowFinder, n: int) -> np.ndarray:
        """For each annotation of a run, the chunk of its image (-1: no such image)."""
        ids = _referenced_image_ids(text)
        if ids is None:  # let the full decoder say what is wrong
            ids = annotation_decoder(self.path).decode_array(text, run.first).image_id
        rows = find(ids)
        return np.where(rows >= 0, rows // n, -1)

    def _image_chunks(self, n: int) -> Generator[Images, None, None]:
        """The images in tables of ``n`` rows (the last one shorter), in file order."""
        parts: list[Images] = []
        have = 0
        for _, table in self.image_tables():
            s = 0
            while s < len(table):
                take = min(n - have, len(table) - s)
                whole = s == 0 and take == len(table)
                parts.append(table if whole else table.take(np.arange(s, s + take)))
                have += take
                s += take
                if have == n:
                    yield parts[0] if len(parts) == 1 else Images.concat(parts)
                    parts, have = [], 0
        if parts:
            yield parts[0] if len(parts) == 1 else Images.concat(parts)

    def _chunk_dataset(self, images: Images, annotations: Annotations) -> Dataset:
        return Dataset(
            images, annotations, self.categories, self.extra, self.key_order, source=self.path
        )

    def _spill_dir(self, stack: contextlib.ExitStack, tmp_dir: Any) -> Path:
        where = tmp_dir if tmp_dir is not None else os.path.dirname(os.path.abspath(self.path))
        try:
            d = tempfile.TemporaryDirectory(prefix=".cocokit-spill-", dir=where)
        except OSError:
            if tmp_dir is not None:
                raise
            d = tempfile.TemporaryDirectory(prefix="cocokit-spill-")  # input folder read-only
        return Path(stack.enter_context(d))

    def _spill(self, text: bytes, chunks: np.ndarray, where: Path) -> None:
        """Append the raw text of each annotation of a run to its chunk's spill file."""
        segments = list(_segments(chunks))
        if not segments:
            return
        raws = _RAW_LIST.decode(text)  # views of ``text``, each one whole record
        for c, rows in segments:
            with open(where / f"{c}.json", "ab") as f:
                f.write(b",")  # every piece starts with a comma; the first becomes '['
                f.write(b",".join([raws[i] for i in rows.tolist()]))

    def _read_spill(self, path: Path, dec: RecordDecoder[Annotations]) -> Annotations:
        if not path.exists():
            return Annotations.empty()
        with open(path, "rb") as f:
            f.seek(1)
            text = b"".join((b"[", f.read(), b"]"))
        path.unlink()
        try:
            with gc_paused():
                table = dec.decode_array(text, 0)
        except InputError:
            # name the bad record as the file has it: the first one in file order
            for _ in self.annotation_tables():
                pass
            raise
        return table

    def _datasets(self, n: int, tmp_dir: Any) -> Generator[Dataset, None, None]:
        with contextlib.ExitStack() as stack:
            with gc_paused():
                ids = self._image_ids()
            if not len(ids):
                self.orphan_annotations = self.num_annotations
                return
            find = _RowFinder(ids)
            del ids
            # pass 2: the chunk of each annotation; spill once they are out of order
            where: Path | None = None
            orphans, last = 0, -1
            for k, (run, text) in enumerate(self._run_texts("annotations")):
                with gc_paused():
                    chunks = self._chunk_numbers(run, text, find, n)
                    orphans += int(np.count_nonzero(chunks < 0))
                    if where is None:
                        valid = chunks[chunks >= 0]
                        if not len(valid) or (
                            valid[0] >= last and not (valid[1:] < valid[:-1]).any()
                        ):
                            last = int(valid[-1]) if len(valid) else last
                            continue
                        where = self._spill_dir(stack, tmp_dir)
                        for r0, t0 in itertools.islice(self._run_texts("annotations"), k):
                            self._spill(t0, self._chunk_numbers(r0, t0, find, n), where)
                    self._spill(text, chunks, where)
            self.orphan_annotations = orphans
            images = stack.enter_context(contextlib.closing(self._image_chunks(n)))
            if where is not None:
                dec = annotation_decoder(self.path)
                for c, imgs in enumerate(images):
                    yield self._chunk_dataset(imgs, self._read_spill(where / f"{c}.json", dec))
                return
            # already grouped: cut the chunks straight from the runs, in file order
            pieces = stack.enter_context(contextlib.closing(self._pieces(find, n)))
            nxt = next(pieces, None)
            for c, imgs in enumerate(images):
                parts: list[Annotations] = []
                while nxt is not None and nxt[0] == c:
                    parts.append(nxt[1])
                    nxt = next(pieces, None)
                anns = (
                    Annotations.empty()
                    if not parts
                    else parts[0]
                    if len(parts) == 1
                    else Annotations.concat(parts)
                )
                yield self._chunk_dataset(imgs, anns)

    def _pieces(
        self, find: _RowFinder, n: int
    ) -> Generator[tuple[int, Annotations], None, None]:
        """(chunk, its annotations of one run), runs in file order, orphans left out."""
        for _, table in self.annotation_tables():
            rows = find(table.image_id)
            chunks = np.where(rows >= 0, rows // n, -1)
            for c, r in _segments(chunks):
                yield c, table if len(r) == len(table) else table.take(r)

    def __repr__(self) -> str:
        return (
            f"<CocoStream {self.path!r}: {self.num_images} images, "
            f"{self.num_annotations} annotations, {len(self.categories)} categories>"
        )


def open_stream(path: str | os.PathLike[str], chunk_bytes: int = CHUNK_BYTES, *,
                progress: Callable[[int, int], None] | None = None) -> CocoStream:
    """Index a COCO file for streaming (one pass, bounded memory); see :class:`CocoStream`.
    ``progress(done, size)`` is called with the bytes scanned as the file is indexed.

    >>> s = open_stream("huge.json")                              # doctest: +SKIP
    >>> for first, anns in s.annotation_tables(): ...             # doctest: +SKIP
    >>> for item in s: ...                                        # doctest: +SKIP
    """
    return CocoStream(path, chunk_bytes, progress=progress)


# -- choosing the path, validating a stream -----------------------------------------

#: Loading a file in memory takes about twice its size at the peak; stream when the
#: file is bigger than available memory divided by this.
STREAM_FACTOR = 3


def available_memory() -> int:
    """Bytes of memory available to this process (MemAvailable, or physical memory)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 1 << 34


def should_stream(size: int) -> bool:
    """Whether a file of ``size`` bytes is better streamed than loaded on this machine."""
    return size * STREAM_FACTOR > available_memory()
