"""Problems found in a COCO document: the codes, their severity, and the report.

Every check of cocokit (the reader, the export contract, :mod:`cocokit.validate`)
names what it found with one of the stable codes of :data:`CODES` and the JSON path
of the offending value (``annotations[1834].bbox``); a :class:`Report` holds them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import ValidationFailed

__all__ = [
    "CODES", "RESULTS_CODES", "SEVERITIES", "Problem", "Report", "Severity", "found_value",
    "is_number", "json_kind", "short_number", "short_value", "typed_value",
]

Severity = Literal["error", "warning"]

#: Every problem code, with a one-line description (for the documentation).
CODES: dict[str, str] = {
    # errors: the document
    "json-syntax": "The file is not well-formed UTF-8 JSON (the message gives line and column): "
    "also trailing data, NaN/Infinity, an empty or truncated file, UTF-16/32 or a BOM.",
    "too-deep": "Arrays/objects nested deeper than the reader's limit (500 levels).",
    "duplicate-key": "The top-level object gives a key twice (inside records the last "
    "value is kept, as Python's json module does).",
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
    "bad-file-name": "An image file_name is empty or holds control characters (NUL, ...).",
    "bad-bbox": "A bbox is not an array of 4 numbers [x, y, width, height].",
    "negative-bbox-size": "A bbox has a negative width or height.",
    "non-finite": "A bbox, area, polygon or keypoint holds NaN or an infinity, or a number "
    "elsewhere (info, ...) is beyond the float range (1e999).",
    "bad-iscrowd": "iscrowd is not 0 or 1.",
    "bad-segmentation": "A segmentation is neither an array of polygons nor an RLE object.",
    "bad-polygon": "A polygon has an odd number of coordinates, fewer than 6, or non-numbers.",
    "bad-rle": "An RLE object lacks a valid size [h, w] or counts (a string or "
    "non-negative integers).",
    "rle-counts-sum": "The counts of an RLE (a list, or the run lengths a compressed string "
    "decodes to) do not sum to height * width.",
    "rle-size-mismatch": "The size of an RLE differs from its image's [height, width].",
    "bad-keypoints": "keypoints is not an array of numbers whose length is a multiple of 3, "
    "or its length is not 3 per keypoint name of its category.",
    "duplicate-image-id": "Two images share an id.",
    "duplicate-annotation-id": "Two annotations share an id.",
    "duplicate-category-id": "Two categories share an id.",
    "dangling-image-id": "An annotation's image_id matches no image.",
    "dangling-category-id": "An annotation's category_id matches no category.",
    # errors: results lists (cocokit.io.results)
    "score-out-of-range": "A result's score is not a number from 0 to 1.",
    # warnings
    "bbox-outside-image": "A bbox extends outside its image (beyond a small tolerance).",
    "zero-area-bbox": "A bbox has zero width or height.",
    "area-mismatch": "An annotation's area disagrees with its segmentation (or exceeds its box).",
    "duplicate-file-name": "Two images share a file_name.",
    "unused-category": "A category is declared but no annotation uses it.",
}

#: The codes that only a results list can have (the rest are those of a COCO document).
RESULTS_CODES = frozenset({"score-out-of-range"})

_WARNING_CODES = frozenset(
    {"bbox-outside-image", "zero-area-bbox", "area-mismatch", "duplicate-file-name",
     "unused-category"}
)

#: The severity of every code in :data:`CODES`.
SEVERITIES: dict[str, Severity] = {
    code: ("warning" if code in _WARNING_CODES else "error") for code in CODES
}


@dataclass(frozen=True, slots=True)
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


# -- short renderings of values, for the messages of every check ---------------------


def json_kind(v: Any) -> str:
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


def short_number(v: Any) -> str:
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
        if math.isinf(f):
            return "Infinity" if f > 0 else "-Infinity"
        s = f"{f:.10g}"
        return s if any(c in s for c in ".en") else s + ".0"  # 100.0 is not 100
    return short_value(v)


def short_value(v: Any, limit: int = 60) -> str:
    """A JSON-like rendering of ``v`` of at most about ``limit`` characters."""
    if v is None or isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)):
        return "null" if v is None else short_number(v)
    if isinstance(v, str):
        s = json.dumps(v, ensure_ascii=False)
        return s if len(s) <= limit else s[: limit - 4] + '..."'
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)):
        items = (short_value(item, max(12, limit // 3)) for item in v)
        return _joined(items, "[]", f"{len(v)} items", limit)
    if isinstance(v, Mapping):
        items = (f"{short_value(str(key), 24)}: {short_value(item, max(12, limit // 3))}"
                 for key, item in v.items())
        return _joined(items, "{}", f"{len(v)} keys", limit)
    s = repr(v)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def typed_value(v: Any) -> str:
    """'<type> <value>' for a message ('null' alone)."""
    if v is None:
        return "null"
    return f"{json_kind(v)} {short_value(v)}"


def found_value(v: Any) -> str:
    """'found <type> <value>' for a message."""
    return f"found {typed_value(v)}"


# --------------------------------------------------------------------------------------
# Small helpers


def is_number(v: Any) -> bool:
    """A JSON number (int or float, numpy scalars too); booleans are not numbers."""
    t = type(v)
    if t is int or t is float:
        return True
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _joined(items: Iterator[str], brackets: str, count: str, limit: int) -> str:
    """``items`` between ``brackets``, cut with "... (count)" once past ``limit`` (the
    rest of ``items`` is never rendered)."""
    parts: list[str] = []
    used = 2
    for k, s in enumerate(items):
        if used + len(s) > limit and k > 0:
            parts.append(f"... ({count})")
            break
        parts.append(s)
        used += len(s) + 2
    return brackets[0] + ", ".join(parts) + brackets[1]
