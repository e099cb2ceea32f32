"""Detection results (a COCO results list) as columns.

A minimal stand-in for the results module of the ``results`` branch (the same
interface): :class:`Results`, :func:`load_results`, :func:`write_results`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..dataset import Dataset, object_array
from ..errors import InputError
from .atomic import atomic_write

__all__ = ["Results", "load_results", "write_results"]

_KNOWN = ("image_id", "category_id", "bbox", "score", "segmentation")


@dataclass(frozen=True)
class Results:
    """Detections as columns: one row per detection."""

    image_id: np.ndarray
    category_id: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    segmentation: np.ndarray
    extra: np.ndarray
    source: str | None = None

    def __len__(self) -> int:
        return len(self.image_id)

    def take(self, rows: np.ndarray) -> Results:
        """The rows ``rows`` (indices or a mask), in that order."""
        return Results(self.image_id[rows], self.category_id[rows], self.bbox[rows],
                       self.score[rows], self.segmentation[rows], self.extra[rows],
                       self.source)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], *,
                     source: str | None = None) -> Results:
        """Columns of a list of result dicts; InputError names ``results[i].field``."""
        n = len(records)
        image_id = np.zeros(n, np.int64)
        category_id = np.zeros(n, np.int64)
        bbox = np.full((n, 4), np.nan)
        score = np.zeros(n, np.float64)
        seg: list[Any] = [None] * n
        extra: list[dict[str, Any]] = [{}] * n
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InputError(source, f"results[{i}]",
                                 f"expected an object, found {type(rec).__name__}")
            field = "image_id"
            try:
                image_id[i] = int(rec["image_id"])
                field = "category_id"
                category_id[i] = int(rec["category_id"])
                field = "score"
                score[i] = float(rec.get("score", 1.0))
                field = "bbox"
                if rec.get("bbox") is not None:
                    bbox[i] = np.asarray(rec["bbox"], np.float64).reshape(4)
            except (KeyError, TypeError, ValueError) as e:
                raise InputError(source, f"results[{i}].{field}",
                                 f"missing or malformed: {e}") from None
            seg[i] = rec.get("segmentation")
            extra[i] = {k: v for k, v in rec.items() if k not in _KNOWN}
        return cls(image_id, category_id, bbox, score, object_array(seg),
                   object_array(extra), source)

    def to_records(self) -> list[dict[str, Any]]:
        """The results as a list of dicts (extra keys after the known ones)."""
        out = []
        for i in range(len(self)):
            rec: dict[str, Any] = {"image_id": int(self.image_id[i]),
                                   "category_id": int(self.category_id[i])}
            if np.isfinite(self.bbox[i]).all():
                rec["bbox"] = [float(v) for v in self.bbox[i]]
            rec["score"] = float(self.score[i])
            if self.segmentation[i] is not None:
                rec["segmentation"] = self.segmentation[i]
            rec.update(self.extra[i] or {})
            out.append(rec)
        return out


def load_results(src: str | os.PathLike[str] | Sequence[Mapping[str, Any]],
                 dataset: Dataset | None = None) -> Results:
    """Results from a JSON file (a list of records) or a list of dicts."""
    if isinstance(src, (str, os.PathLike)):
        name = os.fspath(src)
        try:
            data = Path(src).read_bytes()
        except OSError as e:
            raise InputError(name, None, f"cannot read: {e.strerror or e}") from None
        try:
            records = msgspec.json.decode(data)
        except msgspec.DecodeError as e:
            raise InputError(name, None, f"malformed JSON: {e}") from None
        if not isinstance(records, list):
            raise InputError(name, None, "expected a JSON list of results, found "
                             f"{type(records).__name__}")
        return Results.from_records(records, source=name)
    return Results.from_records(list(src))


def write_results(results: Results, path: str | os.PathLike[str]) -> None:
    """Write the results as a JSON list, atomically."""
    atomic_write(path, [msgspec.json.encode(results.to_records())])
