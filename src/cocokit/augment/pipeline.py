"""Pipelines: an ordered list of operations plus the rules for what survives them.

A pipeline file is YAML or JSON. Either a list of operations, or a mapping with the
list under ``pipeline`` and optional settings::

    min_area: 16            # drop annotations left with fewer pixels (default 1)
    min_visibility: 0.3     # ... or with less than this share of their area (default 0)
    fill: [114, 114, 114]   # colour of pixels that come from outside the image (default 0)
    interpolation: linear   # linear, cubic or nearest
    keypoint_flip_map:      # pairs swapped by a mirror, besides the left_/right_ names
      - [hand_a, hand_b]
    pipeline:
      - rotate: {angle: [-30, 30], p: 0.5}        # {name: {parameters}}
      - {op: random_crop, width: 2000, height: 2000}
      - op: color_jitter                          # or {op: name, parameters...}
        brightness: [0.8, 1.2]
      - hflip                                     # a bare name: default parameters
      - {op: albumentations, transform: CLAHE, params: {clip_limit: 2.0}, p: 0.3}

Ranges are ``[low, high]`` and a single number is a fixed value; every operation takes
a probability ``p``. Errors name the entry: ``pipeline[2].angle``.

Files are read by the one configuration reader (:mod:`cocokit.io.yamlfile`): at most
4 MiB, no YAML aliases, at most 32 levels of nesting and 250,000 values; errors quote at
most 200 characters of a value (docs/limits.md).

Geometric operations are composed into one matrix (pixels are warped once); pixel
operations then run on the warped image in their listed order.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from ..errors import SHOWN, InputError, OptionError, cut, shown
from ..io.yamlfile import MAX_DEPTH, check_nesting, parse_yaml, read_limited
from .ops import OPERATIONS, GeometricOp, Op, PixelOp

__all__ = ["Pipeline", "SampledPipeline", "load_pipeline"]

Interpolation = Literal["linear", "cubic", "nearest"]
_SETTINGS = ("pipeline", "min_area", "min_visibility", "fill", "interpolation",
             "keypoint_flip_map")


@dataclasses.dataclass(frozen=True)
class SampledPipeline:
    """One draw of a pipeline for one image.

    ``matrix`` maps source pixel coordinates to output coordinates (all geometric
    operations composed), ``width`` x ``height`` is the output canvas, ``applied`` the
    operations that fired with their parameters (``{"op": name, ...}``, in order) and
    ``pixel`` the pixel operations to run after the warp, with their parameters.
    """

    matrix: np.ndarray
    width: int
    height: int
    applied: list[dict[str, Any]]
    pixel: list[tuple[PixelOp, dict[str, Any]]]

    @property
    def is_identity(self) -> bool:
        """True when the geometry is untouched (identity matrix, same canvas)."""
        return bool(np.array_equal(self.matrix, np.eye(3)))

    @property
    def mirrored(self) -> bool:
        """True when the transform reverses orientation (left and right swap)."""
        m = self.matrix
        return bool(np.linalg.det(m) * (1.0 if m[2, 2] >= 0 else -1.0) < 0)


@dataclasses.dataclass(frozen=True)
class Pipeline:
    """Operations in order, and the settings that decide what survives them.

    ``min_area``: annotations left with less area (pixels) are dropped;
    ``min_visibility``: ... or with less than this share of their transformed area
    inside the canvas; ``fill``: grey level or RGB of pixels from outside the image;
    ``interpolation``: ``"linear"``, ``"cubic"`` or ``"nearest"`` for images (masks
    always use nearest); ``keypoint_flip_map``: extra pairs of keypoint names swapped
    by a mirror (pairs named ``left_*``/``right_*`` are found on their own).
    """

    ops: Sequence[Op]
    min_area: float = 1.0
    min_visibility: float = 0.0
    fill: int | Sequence[int] = 0
    interpolation: Interpolation = "linear"
    keypoint_flip_map: Sequence[Sequence[str]] = ()

    def __post_init__(self) -> None:
        ops = tuple(self.ops) if isinstance(self.ops, (list, tuple)) else None
        if ops is None:
            raise OptionError("pipeline", self.ops, "a list of operations")
        for i, op in enumerate(ops):
            if not isinstance(op, (GeometricOp, PixelOp)):
                raise OptionError(f"pipeline[{i}]", op, "an operation object (see cocokit.augment)")
        object.__setattr__(self, "ops", ops)
        if not _number(self.min_area) or self.min_area < 0:
            raise OptionError("min_area", self.min_area, "a number of pixels >= 0")
        if not _number(self.min_visibility) or not 0 <= self.min_visibility <= 1:
            raise OptionError("min_visibility", self.min_visibility, "a share in [0, 1]")
        object.__setattr__(self, "min_area", float(self.min_area))
        object.__setattr__(self, "min_visibility", float(self.min_visibility))
        fill = self.fill
        if _number(fill) and float(fill).is_integer() and 0 <= fill <= 255:  # type: ignore[operator, arg-type]
            fill = int(fill)  # type: ignore[arg-type]
        elif (isinstance(fill, (list, tuple)) and len(fill) == 3
              and all(_number(v) and float(v).is_integer() and 0 <= v <= 255 for v in fill)):
            fill = tuple(int(v) for v in fill)
        else:
            raise OptionError("fill", self.fill, "a grey level 0-255 or [r, g, b]")
        object.__setattr__(self, "fill", fill)
        if self.interpolation not in ("linear", "cubic", "nearest"):
            raise OptionError("interpolation", self.interpolation, "linear, cubic or nearest")
        pairs = self.keypoint_flip_map
        if not isinstance(pairs, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2
                and all(isinstance(n, str) for n in p) for p in pairs):
            raise OptionError("keypoint_flip_map", pairs, "a list of [name, name] pairs")
        object.__setattr__(self, "keypoint_flip_map", tuple((a, b) for a, b in pairs))

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def has_pixel_ops(self) -> bool:
        """True when some operation changes pixel values."""
        return any(isinstance(op, PixelOp) for op in self.ops)

    def sample(self, rng: np.random.Generator, width: int, height: int) -> SampledPipeline:
        """Draw every operation for a ``width`` x ``height`` image.

        Each operation first draws a number against its ``p`` (always, so the stream
        of draws does not depend on earlier outcomes' parameters), then its parameters.
        """
        m = np.eye(3)
        w, h = int(width), int(height)
        applied: list[dict[str, Any]] = []
        pixel: list[tuple[PixelOp, dict[str, Any]]] = []
        for op in self.ops:
            if rng.random() >= op.p:
                continue
            if isinstance(op, GeometricOp):
                s = op.sample(rng, w, h)
                m = s.matrix @ m
                w, h = s.width, s.height
                applied.append({"op": op.name, **s.params})
            elif isinstance(op, PixelOp):
                params = op.sample(rng)
                pixel.append((op, params))
                applied.append({"op": op.name, **params})
        return SampledPipeline(m, w, h, applied, pixel)

    def estimate_pixels(self, widths: Any, heights: Any, probe: int = 1000, seed: int = 0,
                        ) -> tuple[float, int]:
        """(pixels of one copy of every image, largest canvas drawn), estimated before a
        run: the pipeline is drawn once for each of up to ``probe`` images spread over
        the list, and their mean ratio of output to input pixels applied to all."""
        w = np.maximum(np.asarray(widths, np.int64).reshape(-1), 1)
        h = np.maximum(np.asarray(heights, np.int64).reshape(-1), 1)
        if not len(w):
            return 0.0, 0
        rng = np.random.default_rng(seed)
        rows = np.unique(np.linspace(0, len(w) - 1, min(probe, len(w))).astype(np.int64))
        src = out = 0.0
        largest = 0
        for r in rows.tolist():
            drawn = self.sample(rng, int(w[r]), int(h[r]))
            px = drawn.width * drawn.height
            largest = max(largest, px)
            src += float(w[r]) * float(h[r])
            out += px
        return float((w.astype(np.float64) * h).sum()) * out / src, largest

    # -- files -------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The pipeline as a pipeline-file document (plain JSON values)."""
        return {
            "min_area": self.min_area,
            "min_visibility": self.min_visibility,
            "fill": list(self.fill) if isinstance(self.fill, tuple) else self.fill,
            "interpolation": self.interpolation,
            "keypoint_flip_map": [list(p) for p in self.keypoint_flip_map],
            "pipeline": [op.to_dict() for op in self.ops],
        }

    @classmethod
    def from_dict(cls, data: Any, file: str | None = None) -> Pipeline:
        """Build from a parsed pipeline document (a list, or a mapping with ``pipeline``).

        Errors are :class:`~cocokit.errors.InputError` naming ``file`` and the entry
        (``pipeline[2].angle``).
        """
        settings: dict[str, Any] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key not in _SETTINGS:
                    raise InputError(file, cut(str(key)), _unknown("key", key, _SETTINGS))
            if "pipeline" not in data:
                raise InputError(file, "pipeline", "missing: the list of operations")
            entries = data["pipeline"]
            settings = {k: v for k, v in data.items() if k != "pipeline"}
        else:
            entries = data
        if not isinstance(entries, list):
            raise InputError(file, "pipeline", f"expected a list of operations, got "
                                               f"{type(entries).__name__}")
        ops = [_parse_entry(entry, i, file) for i, entry in enumerate(entries)]
        try:
            return cls(ops, **settings)
        except OptionError as e:
            raise InputError(file, e.option, f"expected {cut(e.expected)}, got "
                             f"{shown(e.value)}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Pipeline:
        """Load a YAML (``.yaml``/``.yml``) or JSON pipeline file."""
        return cls.from_dict(_read_document(path), os.fspath(path))


def load_pipeline(source: Pipeline | Sequence[Op] | str | os.PathLike[str] | Mapping[str, Any]
                  ) -> Pipeline:
    """A :class:`Pipeline` from a pipeline, a list of operations, a file path or a dict."""
    if isinstance(source, Pipeline):
        return source
    if isinstance(source, (str, os.PathLike)):
        return Pipeline.from_file(source)
    if isinstance(source, Mapping):
        return Pipeline.from_dict(source)
    if isinstance(source, (list, tuple)) and all(isinstance(o, Op) for o in source):
        return Pipeline(list(source))
    if isinstance(source, (list, tuple)):
        return Pipeline.from_dict(list(source))
    raise OptionError("pipeline", source, "a Pipeline, a list of operations or a file path")


def _number(v: Any) -> bool:
    return (isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def _unknown(what: str, value: Any, choices: Sequence[str]) -> str:
    text = str(value)[:SHOWN]
    close = difflib.get_close_matches(text, list(choices), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {shown(value)}{hint}; expected one of: {', '.join(choices)}"


def _parse_entry(entry: Any, i: int, file: str | None) -> Op:
    where = f"pipeline[{i}]"
    if isinstance(entry, str):
        name, params = entry, {}
    elif isinstance(entry, Mapping) and "op" in entry:
        name = entry["op"]
        params = {k: v for k, v in entry.items() if k != "op"}
    elif isinstance(entry, Mapping) and len(entry) == 1:
        ((name, params),) = entry.items()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            raise InputError(file, f"{where}.{cut(str(name))}",
                             f"expected a mapping of parameters, got {shown(params)}")
    else:
        raise InputError(file, where, "expected an operation: a name, {op: name, ...} or "
                                      f"{{name: {{parameters}}}}, got {shown(entry)}")
    if not isinstance(name, str) or name not in OPERATIONS:
        from .ops import SPATIAL_ALBUMENTATIONS

        if isinstance(name, str) and name in SPATIAL_ALBUMENTATIONS:
            raise InputError(file, f"{where}.op", f"{name!r} is an Albumentations spatial "
                             f"transform; use cocokit's {SPATIAL_ALBUMENTATIONS[name]} "
                             "operation, which keeps annotations exact")
        raise InputError(file, f"{where}.op", _unknown("operation", name, list(OPERATIONS)))
    cls = OPERATIONS[name]
    fields = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    for key in params:
        if key not in fields:
            raise InputError(file, f"{where}.{cut(str(key))}",
                             _unknown(f"parameter of {name}", key, fields))
    try:
        return cls(**params)
    except OptionError as e:
        field = e.option.split(".", 1)[-1]
        raise InputError(file, f"{where}.{field}",
                         f"{name}: expected {cut(e.expected)}, got {shown(e.value)}") from None


def _read_document(path: str | os.PathLike[str]) -> Any:
    """The parsed pipeline file: JSON (``.json``, or a file starting with ``[``/``{``
    that parses as JSON) or YAML, read by the one configuration reader
    (:mod:`cocokit.io.yamlfile`: a size limit, no YAML aliases, a nesting limit)."""
    p = Path(path)
    name = os.fspath(path)
    data = read_limited(p, "pipeline file")
    if not data.strip():
        raise InputError(name, None, "the pipeline file is empty")
    suffix = p.suffix.lower()
    if suffix == ".json" or (suffix not in (".yaml", ".yml") and data.lstrip()[:1] in b"[{"):
        try:
            doc = msgspec.json.decode(data)
        except RecursionError:
            raise InputError(name, None, f"nested more than {MAX_DEPTH} levels deep") from None
        except msgspec.DecodeError as e:
            if suffix == ".json":
                raise InputError(name, None, f"malformed JSON: {e}") from None
        else:
            check_nesting(doc, name)
            return doc
    return parse_yaml(data, name)
