"""One COCO file written from parts, in bounded memory.

Work done in chunks (slicing a streamed file chunk by chunk, results coming back
from a cluster block by block) produces a dataset per chunk. :class:`PartWriter` takes
those parts in order, encodes their images and annotations at once into two spill files
beside the target, and at :meth:`PartWriter.close` writes the document (the top-level
keys in order, the spilled records streamed in) to a temporary file renamed over the
target. Memory holds one part and, with ``keep``, the id columns.

Each part is checked as an export is (:func:`cocokit.io.coco.plan_export`: integrity
and the error checks of :mod:`cocokit.contract`, ``invalid="error"`` or ``"skip"``);
messages name the rows of the parts concatenated in order. The id policy is the
export contract's, applied across parts: ``keep`` (the default) keeps the ids and
refuses a duplicate anywhere in the file before the rename, ``auto`` numbers images and
annotations 1..N in the order the parts came. The bytes are those
:func:`cocokit.io.coco.write_coco` writes for the parts concatenated into one dataset.

>>> with PartWriter("tiles.json", categories=ds.categories) as w:   # doctest: +SKIP
...     for part in parts:
...         w.add(part)
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from ..contract import InvalidPolicy, category_warnings, check_invalid
from ..dataset import Categories, Dataset
from ..errors import IntegrityError, OptionError
from .atomic import atomic_write, remove_leftovers
from .coco import (
    ANNOTATION_KEYS,
    DEFAULT_IDS,
    IMAGE_KEYS,
    ExportSummary,
    IdPolicy,
    RecordEncoder,
    annotation_columns,
    check_policy,
    duplicate_id_problems,
    image_columns,
    iter_document,
    kept_id_problems,
    plan_export,
)

__all__ = ["PartWriter"]

_READ = 1 << 20


class PartWriter:
    """Write a COCO file at ``path`` from datasets added one after another.

    ``categories``, ``extra`` (the other top-level keys) and ``key_order`` describe the
    document; every part must have these categories. Use it as a context manager: a
    clean exit writes the file (:meth:`close`), an exception leaves nothing behind
    (:meth:`abort`).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        categories: Categories,
        extra: Mapping[str, Any] | None = None,
        key_order: Sequence[str] | None = None,
        image_ids: IdPolicy = DEFAULT_IDS,
        annotation_ids: IdPolicy = DEFAULT_IDS,
        ignore_negative_samples: bool = False,
        invalid: InvalidPolicy = "error",
    ) -> None:
        check_policy("image_ids", image_ids)
        check_invalid(invalid)
        self.invalid = invalid
        check_policy("annotation_ids", annotation_ids)
        self.path = os.fspath(path)
        self.categories = categories
        self.extra = dict(extra or {})
        order = list(key_order) if key_order is not None else [*self.extra]
        for key in ("images", "annotations", "categories"):
            if key not in order:
                order.append(key)
        self.key_order = order
        self.image_ids = image_ids
        self.annotation_ids = annotation_ids
        self.ignore_negative_samples = ignore_negative_samples
        problems = duplicate_id_problems(categories.id, "categories", "category")
        if problems:
            raise IntegrityError(problems, self.path)
        folder = Path(self.path).parent
        where = folder if str(folder) and folder.is_dir() else None
        name = Path(self.path).name
        if where is not None:  # those of a killed run (the pid in the name is gone)
            remove_leftovers(where, rf"\.{re.escape(name)}\.parts-(\d+)-[a-z0-9_]{{8}}",
                             "spill folder(s)")
        self._dir = tempfile.mkdtemp(prefix=f".{name}.parts-{os.getpid()}-", dir=where)
        self._files: dict[str, BinaryIO] = {
            key: open(os.path.join(self._dir, key), "w+b")  # closed in _cleanup
            for key in ("images", "annotations")
        }
        self._encoders = {"images": RecordEncoder("Image", IMAGE_KEYS),
                          "annotations": RecordEncoder("Annotation", ANNOTATION_KEYS)}
        self._ids: dict[str, list[np.ndarray]] = {"images": [], "annotations": []}
        self.images = 0
        self.annotations = 0
        self.dropped = 0
        self.computed_bbox = 0
        self.computed_area = 0
        self.skipped: list[str] = []
        self._rows_in = (0, 0)  # input rows (images, annotations) of the parts so far
        self._closed = False

    def add(self, part: Dataset) -> None:
        """Encode one part's images and annotations (checked as an export is) and spill
        them; with ``auto`` ids they are numbered on from the previous parts."""
        if self._closed:
            raise OptionError("part", "after close", "parts added before close()")
        if part.categories is not self.categories and not np.array_equal(
                part.categories.id, self.categories.id):
            raise OptionError("part", "categories", "the writer's categories")
        plan = plan_export(part, image_ids="keep" if self.image_ids == "keep" else "auto",
                           annotation_ids=self.annotation_ids,
                           ignore_negative_samples=self.ignore_negative_samples,
                           target=self.path, invalid=self.invalid, start=self._rows_in)
        self._rows_in = (self._rows_in[0] + len(part.images),
                         self._rows_in[1] + len(part.annotations))
        self.skipped += plan.skipped
        image_ids, ann_image_ids, ann_ids = plan.image_ids, plan.ann_image_ids, plan.ann_ids
        if self.image_ids == "auto":
            image_ids = image_ids + self.images
            ann_image_ids = ann_image_ids + self.images
        else:
            self._ids["images"].append(image_ids)
        if self.annotation_ids == "auto":
            ann_ids = ann_ids + self.annotations
        else:
            self._ids["annotations"].append(ann_ids)
        imgs, anns = part.images, part.annotations
        self._spill("images", self.images, self._encoders["images"].encode(
            image_columns(imgs, plan.image_rows, image_ids), imgs.extra[plan.image_rows]))
        self._spill("annotations", self.annotations, self._encoders["annotations"].encode(
            annotation_columns(anns, plan.ann_rows, ann_ids, ann_image_ids, plan.bbox,
                               plan.area), anns.extra[plan.ann_rows]))
        self.images += len(plan.image_rows)
        self.annotations += len(plan.ann_rows)
        self.dropped += plan.dropped
        self.computed_bbox += plan.computed_bbox
        self.computed_area += plan.computed_area

    def _spill(self, key: str, written: int, body: bytes) -> None:
        if body:
            self._files[key].write((b"," if written else b"") + body)

    def _body(self, key: str) -> Iterator[bytes]:
        f = self._files[key]
        f.flush()
        f.seek(0)
        while chunk := f.read(_READ):
            yield chunk

    def close(self) -> ExportSummary:
        """Check the ids across parts, write the file atomically, remove the spill files."""
        if self._closed:
            raise OptionError("close", "twice", "one close() per writer")
        self._closed = True
        try:
            problems: list[str] = []
            for key, what in (("images", "image"), ("annotations", "annotation")):
                if self._ids[key]:
                    problems += kept_id_problems(np.concatenate(self._ids[key]), key, what)
            if problems:
                raise IntegrityError(problems, self.path)
            bodies = {key: (lambda key=key: self._body(key))
                      for key in ("images", "annotations")}
            atomic_write(self.path, iter_document(self.key_order, bodies, self.categories,
                                                  self.extra))
        finally:
            self._cleanup()
        return ExportSummary(self.path, self.images, self.annotations, len(self.categories),
                             self.dropped, self.computed_bbox, self.computed_area,
                             tuple(self.skipped), tuple(category_warnings(self.categories)))

    def abort(self) -> None:
        """Drop everything spilled; nothing is written."""
        self._closed = True
        self._cleanup()

    def _cleanup(self) -> None:
        for f in self._files.values():
            with contextlib.suppress(OSError):
                f.close()
        for key in self._files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._dir, key))
        with contextlib.suppress(OSError):
            os.rmdir(self._dir)

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            if not self._closed:
                self.close()
        else:
            self.abort()
