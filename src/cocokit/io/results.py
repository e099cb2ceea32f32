"""Detection results (a COCO results list) as columns: read, checked, written.

A results file is the JSON array a detector writes for COCO evaluation::

    [{"image_id": 42, "category_id": 18, "bbox": [x, y, w, h], "score": 0.9}, ...]

with an optional ``segmentation`` (polygons or an RLE object) and any other keys, which
are kept in :attr:`Results.extra` and written back. :func:`load_results` reads one with
msgspec into numpy columns (:class:`Results`); :func:`check_results` reports every
problem by JSON path (``results[12].image_id``) with the codes of
:data:`cocokit.problems.CODES`, against a dataset when one is given.

Reading is typed first (one msgspec decode of the whole array into small structs, each
segmentation kept as its raw JSON text, which the export contract's column check
:func:`cocokit.contract.check_segmentations` reads on its bytes, before it is decoded);
only a file that does not fit the usual shape (extra keys, a wrong type) is decoded as
plain data and checked record by record, which names every problem.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from ..contract import check_segmentations
from ..dataset import gc_paused, lookup, object_array, plain, present
from ..errors import InputError
from ..geometry import segmentation_bboxes
from ..problems import SEVERITIES, Problem, Report, found_value, is_number, short_value
from ..rawjson import heads
from .atomic import atomic_write
from .files import read_document
from .jsontext import syntax_error

if TYPE_CHECKING:  # pragma: no cover
    from ..dataset import Dataset

__all__ = [
    "RESULT_KEYS",
    "Results",
    "check_results",
    "load_results",
    "read_results",
    "write_results",
]

#: The keys of a result record that have columns; every other key goes to ``extra``.
RESULT_KEYS = ("image_id", "category_id", "bbox", "score", "segmentation")

ResultsSource = (str | os.PathLike[str] | bytes | bytearray | memoryview
                 | Sequence[Mapping[str, Any]])


class _Fast(msgspec.Struct, forbid_unknown_fields=True):
    """The usual shape of a result; anything else takes the checked path. The
    segmentation is its raw JSON text, checked as a column before it is decoded."""

    image_id: int
    category_id: int
    score: float
    bbox: tuple[float, float, float, float] | None = None
    segmentation: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET


_FAST = msgspec.json.Decoder(list[_Fast])
_ENCODER = msgspec.json.Encoder()
_NULL = ord("n")  # the first byte of a raw JSON null
_DECODE_BLOCK = 50_000  # raw segmentations decoded at a time
_NO_GEOMETRY = "a result needs a bbox [x, y, width, height], a segmentation or keypoints"


_IMAGE_ID, _CATEGORY_ID, _SCORE, _BBOX, _SEGMENTATION = (
    attrgetter(k) for k in ("image_id", "category_id", "score", "bbox", "segmentation"))
#: The extra keys of a record that has none: one read-only empty mapping, shared.
_NO_EXTRA: Mapping[str, Any] = MappingProxyType({})


@dataclasses.dataclass(frozen=True)
class Results:
    """Detections as columns, one row per result record.

    ``bbox`` is xywh float64 as read (computed from the segmentation, as pycocotools'
    ``loadRes`` does, where a record has none: ``bbox_computed`` marks those rows, and
    :meth:`to_records` leaves their box out again). ``segmentation`` holds None,
    polygons or an RLE dict per row; ``extra`` a mapping of every other key of the
    record (one shared, read-only empty mapping where there is none).
    """

    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    segmentation: np.ndarray
    extra: np.ndarray
    source: str | None = None
    bbox_computed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.image_id)

    def __repr__(self) -> str:
        return f"<Results: {len(self)} detections from {self.source or '<memory>'}>"

    @property
    def computed(self) -> np.ndarray:
        """Boolean per row: the box was computed from the segmentation."""
        if self.bbox_computed is None:
            return np.zeros(len(self), bool)
        return self.bbox_computed

    @property
    def has_segmentation(self) -> bool:
        """Whether any row has a segmentation."""
        return bool(present(self.segmentation).any())

    def take(self, rows: np.ndarray) -> Results:
        """The results of ``rows`` (indices or a boolean mask), in that order."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        return Results(
            self.image_id[rows], self.category_id[rows], self.bbox[rows], self.score[rows],
            self.segmentation[rows], self.extra[rows], self.source,
            None if self.bbox_computed is None else self.bbox_computed[rows],
        )

    def replace(self, **columns: Any) -> Results:
        """A copy with some columns replaced (``image_id=...``)."""
        return dataclasses.replace(self, **columns)

    @classmethod
    def empty(cls, source: str | None = None) -> Results:
        """No detections."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)),
                   np.zeros(0), np.empty(0, object), np.empty(0, object), source)

    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], *, source: str | None = None
    ) -> Results:
        """Columns of result records (dicts); raises :class:`~cocokit.errors.InputError`
        naming ``results[i].field`` for the first malformed record (every problem is in
        :func:`check_results`)."""
        res, report = read_results(records, name=source)
        if res is None or not report.ok:
            _raise_first(report.problems, source)
        assert res is not None
        return res

    def to_records(self) -> list[dict[str, Any]]:
        """The result records as plain JSON data: the columns, then the extra keys (a
        computed box left out, as it was read)."""
        out: list[dict[str, Any]] = []
        has_seg = present(self.segmentation)
        computed = self.computed
        ids, cats = self.image_id.tolist(), self.category_id.tolist()
        boxes, scores = self.bbox.tolist(), self.score.tolist()
        if not has_seg.any() and not computed.any() and not any(self.extra):
            with gc_paused():  # boxes only, the common case: one comprehension
                return [{"image_id": i, "category_id": c, "bbox": b, "score": s}
                        for i, c, b, s in zip(ids, cats, boxes, scores, strict=True)]
        for i in range(len(self)):
            rec: dict[str, Any] = {"image_id": ids[i], "category_id": cats[i]}
            if not computed[i]:
                rec["bbox"] = boxes[i]
            rec["score"] = scores[i]
            if has_seg[i]:
                rec["segmentation"] = plain(self.segmentation[i])
            extra = self.extra[i]
            if extra:
                rec.update(plain(extra))
            out.append(rec)
        return out


# -- reading -----------------------------------------------------------------------------


def _name(src: Any) -> str | None:
    return os.fspath(src) if isinstance(src, (str, os.PathLike)) else None


def _bytes_of(src: ResultsSource) -> tuple[bytes | None, str | None]:
    if isinstance(src, (str, os.PathLike)):
        # the one reader of annotation files: paths and URLs, .json.gz decompressed
        return read_document(src), os.fspath(src)
    if isinstance(src, (bytes, bytearray, memoryview)):
        return bytes(src), None
    return None, None


def _decode(data: bytes, file: str | None) -> tuple[Results | None, list[Any] | None]:
    """Typed decode (fast: columns whose segmentations are still raw JSON texts, see
    :func:`_typed_problems`) or, when the records are not all of the usual shape, plain
    data for the checks. Raises JSONSyntaxError / InputError for a document that is not
    a JSON array."""
    try:
        with gc_paused():
            fast = _FAST.decode(data)
        return _fast_columns(fast, file), None
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as e:
        raise syntax_error(data, file, e) from None
    try:
        with gc_paused():
            top = msgspec.json.decode(data)
    except msgspec.ValidationError:  # a number beyond a float (1e999): as Python reads it
        top = json.loads(data)
    except msgspec.DecodeError as e:  # pragma: no cover - the typed decode saw it first
        raise syntax_error(data, file, e) from None
    if not isinstance(top, list):
        what = "an object" if isinstance(top, dict) else found_value(top)
        hint = ""
        if isinstance(top, dict) and any(k in top for k in ("images", "annotations")):
            hint = " (this looks like a COCO dataset: give it as the ground truth)"
        raise InputError(file, None, "a results file must be a JSON array of result "
                         f"records, found {what}{hint}")
    return None, top


def _decoded_segmentations(res: Results) -> Results:
    """``res`` with its raw segmentation texts (checked) decoded to polygons and RLE
    dicts, a block of rows at a time."""
    seg = res.segmentation
    rows = np.flatnonzero(present(seg))
    if not len(rows):
        return res
    out = seg.copy()
    with gc_paused():
        for s in range(0, len(rows), _DECODE_BLOCK):
            part = rows[s : s + _DECODE_BLOCK]
            text = b"[" + b",".join(seg[part].tolist()) + b"]"
            try:
                values = msgspec.json.decode(text)
            except msgspec.ValidationError:  # a number beyond a float: as Python reads it
                values = json.loads(text)
            out[part] = object_array(values)
    return res.replace(segmentation=out)


def _fast_columns(recs: list[_Fast], file: str | None) -> Results:
    n = len(recs)
    with gc_paused():
        image_id = np.fromiter(map(_IMAGE_ID, recs), np.int64, n)
        category_id = np.fromiter(map(_CATEGORY_ID, recs), np.int64, n)
        score = np.fromiter(map(_SCORE, recs), np.float64, n)
        boxes = list(map(_BBOX, recs))
        unset = msgspec.UNSET
        seg = np.fromiter((None if v is unset else v for v in map(_SEGMENTATION, recs)),
                          object, n)
    have = np.flatnonzero(present(seg))
    if len(have):
        seg[have[heads(seg[have].tolist()) == _NULL]] = None  # null: no segmentation
    missing = np.fromiter((b is None for b in boxes), bool, n) if None in boxes \
        else np.zeros(n, bool)
    if not missing.any():
        bbox = np.array(boxes, np.float64).reshape(n, 4)
    else:
        bbox = np.full((n, 4), np.nan)
        have = np.flatnonzero(~missing)
        if len(have):
            bbox[have] = np.array([boxes[i] for i in have.tolist()], np.float64)
    extra = np.full(n, _NO_EXTRA, object)
    return Results(image_id, category_id, bbox, score, seg, extra, file,
                   missing if missing.any() else None)


def _columns(records: Sequence[Mapping[str, Any]], source: str | None) -> Results:
    """Columns of records already checked by :func:`_record_problems`."""
    n = len(records)
    with gc_paused():
        image_id = np.fromiter((r["image_id"] for r in records), np.int64, n)
        category_id = np.fromiter((r["category_id"] for r in records), np.int64, n)
        score = np.fromiter((r["score"] for r in records), np.float64, n)
        bbox = np.full((n, 4), np.nan)
        missing = np.ones(n, bool)
        for i, r in enumerate(records):
            b = r.get("bbox")
            if b is not None:
                bbox[i] = b
                missing[i] = False
        seg = object_array([r.get("segmentation") for r in records])
        extra = object_array([{k: v for k, v in r.items() if k not in RESULT_KEYS} or _NO_EXTRA
                              for r in records])
    return Results(image_id, category_id, bbox, score, seg, extra, source,
                   missing if missing.any() else None)


def _complete_boxes(res: Results, dataset: Dataset | None) -> Results:
    """Boxes of the rows that have only a segmentation (pycocotools' ``toBbox``)."""
    rows = np.flatnonzero(res.computed)
    if not len(rows):
        return res
    heights = np.full(len(rows), -1, np.int64)
    widths = np.full(len(rows), -1, np.int64)
    if dataset is not None:
        at = lookup(dataset.images.id, res.image_id[rows])
        ok = at >= 0
        heights[ok] = dataset.images.height[at[ok]]
        widths[ok] = dataset.images.width[at[ok]]
    bbox = res.bbox.copy()
    kps = ~present(res.segmentation[rows])
    for i in rows[kps].tolist():  # keypoints only: their extent, as loadRes makes it
        xy = np.asarray(res.extra[i]["keypoints"], np.float64).reshape(-1, 3)[:, :2]
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        bbox[i] = [lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]]
    rows, heights, widths = rows[~kps], heights[~kps], widths[~kps]
    if not len(rows):
        return res.replace(bbox=bbox)
    segs = res.segmentation[rows]
    polys = np.array([not isinstance(s, Mapping) for s in segs])
    if (polys & (heights < 0)).any():
        # polygons need no image size for their box; pycocotools' RLE carries its own
        heights[polys] = 1
        widths[polys] = 1
    bbox[rows] = segmentation_bboxes(segs, heights, widths)
    return res.replace(bbox=bbox)


# -- checks --------------------------------------------------------------------------------


def _problem(code: str, path: str, message: str) -> Problem:
    return Problem(code, SEVERITIES[code], path, message)


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _typed_problems(res: Results) -> list[Problem]:
    """The problems of records the typed decode read (ids, score and box are of the
    right type there): a record without geometry, and the segmentations, which the
    export contract's column check reads on their raw JSON text."""
    out = [_problem("missing-geometry", f"results[{i}]", _NO_GEOMETRY)
           for i in np.flatnonzero(res.computed & ~present(res.segmentation)).tolist()]
    return out + check_segmentations(res.segmentation, "results").problems


def _record_problems(records: Sequence[Any]) -> list[Problem]:
    """Every problem of the records' own shape (no dataset needed); the problems of a
    record's segmentation come after its others."""
    out: list[Problem] = []
    segs: list[Any] = []
    for i, r in enumerate(records):
        p = f"results[{i}]"
        if not isinstance(r, Mapping):
            out.append(_problem("record-not-object", p,
                                f"a result must be an object, {found_value(r)}"))
            segs.append(None)
            continue
        for key in ("image_id", "category_id"):
            if key not in r:
                out.append(_problem("missing-field", f"{p}.{key}", f"a result needs {key}"))
            elif not _is_int(r[key]):
                out.append(_problem("bad-type", f"{p}.{key}",
                                    f"{key} must be an integer, {found_value(r[key])}"))
        if "score" not in r:
            out.append(_problem("missing-field", f"{p}.score", "a result needs a score"))
        elif not is_number(r["score"]):
            out.append(_problem("bad-type", f"{p}.score",
                                f"score must be a number, {found_value(r['score'])}"))
        seg = r.get("segmentation")
        box = r.get("bbox")
        if box is None and seg is None and "keypoints" not in r:
            out.append(_problem("missing-geometry", p, _NO_GEOMETRY))
        if box is not None and not (isinstance(box, (list, tuple)) and len(box) == 4
                                    and all(is_number(v) for v in box)):
            out.append(_problem("bad-bbox", f"{p}.bbox",
                                f"bbox must be 4 numbers [x, y, width, height], "
                                f"{found_value(box)}"))
        segs.append(seg)
    return out + check_segmentations(object_array(segs), "results").problems


def _value_problems(res: Results, offset: np.ndarray | None = None) -> list[Problem]:
    """Vectorized checks of the columns: finite boxes, no negative size, score in [0, 1]."""
    out: list[Problem] = []
    index = np.arange(len(res)) if offset is None else offset
    given = ~res.computed
    finite = np.isfinite(res.bbox).all(axis=1)
    for i in np.flatnonzero(given & ~finite).tolist():
        out.append(_problem("non-finite", f"results[{index[i]}].bbox",
                            f"bbox must be finite, found {short_value(res.bbox[i])}"))
    neg = given & finite & ((res.bbox[:, 2] < 0) | (res.bbox[:, 3] < 0))
    for i in np.flatnonzero(neg).tolist():
        out.append(_problem("negative-bbox-size", f"results[{index[i]}].bbox",
                            f"bbox width and height must be >= 0, found "
                            f"{short_value(res.bbox[i])}"))
    bad = ~((res.score >= 0) & (res.score <= 1))
    for i in np.flatnonzero(bad).tolist():
        out.append(_problem("score-out-of-range", f"results[{index[i]}].score",
                            f"score must be from 0 to 1, found {short_value(res.score[i])}"))
    return out


def _dataset_problems(res: Results, dataset: Dataset,
                      offset: np.ndarray | None = None) -> list[Problem]:
    out: list[Problem] = []
    index = np.arange(len(res)) if offset is None else offset
    img = lookup(dataset.images.id, res.image_id)
    for i in np.flatnonzero(img < 0).tolist():
        out.append(_problem("dangling-image-id", f"results[{index[i]}].image_id",
                            f"image_id {int(res.image_id[i])} is not an image of "
                            f"{dataset.source or 'the dataset'}"))
    cat = lookup(dataset.categories.id, res.category_id)
    for i in np.flatnonzero(cat < 0).tolist():
        out.append(_problem("dangling-category-id", f"results[{index[i]}].category_id",
                            f"category_id {int(res.category_id[i])} is not a category of "
                            f"{dataset.source or 'the dataset'}"))
    return out


def _row(p: Problem) -> int:
    """The record index of a problem's path (``results[12].bbox``: 12)."""
    head = p.path.split("]", 1)[0]
    return int(head[len("results["):]) if head.startswith("results[") else -1


def _good_rows(n: int, problems: list[Problem]) -> np.ndarray:
    """The rows of ``n`` records that have none of these problems."""
    bad = {_row(p) for p in problems}
    return np.array([i for i in range(n) if i not in bad], np.int64)


def _ordered(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=_row)


def read_results(
    src: ResultsSource, dataset: Dataset | None = None, *, name: str | None = None
) -> tuple[Results | None, Report]:
    """Read and check results: ``(results, report)``; ``results`` is None when the
    records cannot be made into columns (the report says why, by JSON path).

    Raises :class:`~cocokit.errors.InputError` (JSONSyntaxError for malformed JSON)
    when the document is no JSON array at all.
    """
    data, file = _bytes_of(src)
    file = name or file
    report = Report(file or "<results>")
    res: Results | None
    if data is None:
        records: list[Any] | None = list(src)  # type: ignore[arg-type]
        res = None
    else:
        res, records = _decode(data, file)
    good: np.ndarray | None = None
    problems: list[Problem] = []
    if res is None:
        assert records is not None
        problems = _record_problems(records)
        if problems:  # the well-formed records are still checked, for a whole report
            good = _good_rows(len(records), problems)
        res = _columns([records[i] for i in good.tolist()] if good is not None else records,
                       file)
    else:
        problems = _typed_problems(res)
        if problems:
            good = _good_rows(len(res), problems)
            res = res.take(good)
        else:
            res = _decoded_segmentations(res)
    problems += _value_problems(res, good)
    if dataset is not None:
        problems += _dataset_problems(res, dataset, good)
    report.problems.extend(_ordered(problems))
    if good is not None:
        return None, report
    if report.ok:
        res = _complete_boxes(res, dataset)
    return res, report


def check_results(src: ResultsSource | Results, dataset: Dataset | None = None) -> Report:
    """Every problem of a results file or list (``results[12].score`` ...), checked
    against ``dataset`` (image and category ids) when given."""
    if isinstance(src, Results):
        report = Report(src.source or "<results>")
        problems = _value_problems(src)
        if dataset is not None:
            problems += _dataset_problems(src, dataset)
        report.problems.extend(_ordered(problems))
        return report
    return read_results(src, dataset)[1]


def _raise_first(problems: Sequence[Problem], file: str | None) -> None:
    errors = [p for p in problems if p.severity == "error"]
    first = errors[0]
    more = (f" ({len(errors)} problems in all; `cocokit validate --results` lists them)"
            if len(errors) > 1 else "")
    raise InputError(file, first.path, first.message + more)


def load_results(src: ResultsSource, dataset: Dataset | None = None) -> Results:
    """Read a COCO results list (a path, JSON bytes or a list of dicts) into columns,
    checked (against ``dataset`` when given: every image and category id must be in it).

    Raises :class:`~cocokit.errors.InputError` naming the file and the JSON path of the
    first problem (``results[12].image_id``) and how many there are.
    """
    res, report = read_results(src, dataset)
    if not report.ok or res is None:
        _raise_first(report.problems, report.source if report.source != "<results>" else None)
    assert res is not None
    return res


def _record_chunks(res: Results, size: int = 50_000) -> Iterator[bytes]:
    yield b"["
    for start in range(0, len(res), size):
        part = res.take(np.arange(start, min(start + size, len(res))))
        body = _ENCODER.encode(part.to_records())
        yield (b"," if start else b"") + body[1:-1]
    yield b"]"


def write_results(results: Results, path: str | os.PathLike[str]) -> None:
    """Write ``results`` as a COCO results JSON array (atomically: a temporary file
    renamed, :func:`cocokit.io.atomic.atomic_write`)."""
    atomic_write(path, _record_chunks(results))
