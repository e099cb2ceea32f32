"""Augmentation operations as Python objects.

Two kinds:

* :class:`GeometricOp` samples its parameters with a :class:`numpy.random.Generator`
  for a canvas of a given size and returns a :class:`Sampled`: a 3x3 float64 matrix that
  maps the input canvas to the output canvas, the output canvas size and the sampled
  parameters (plain JSON values, recorded on the new image). Geometric operations are
  never applied one by one: a pipeline multiplies their matrices into one and warps the
  pixels once, computing only the output window (see :mod:`cocokit.augment.apply`).
* :class:`PixelOp` samples its parameters and changes pixel values only.

Coordinates are COCO's continuous pixel coordinates: pixel ``(row i, column j)`` covers
``[j, j + 1) x [i, i + 1)``, so its centre is ``(j + 0.5, i + 0.5)``. A horizontal flip
is ``x' = W - x``, the same on polygon vertices, box corners, keypoints and pixels.

Every range is written ``(low, high)`` and sampled uniformly; a single number is a
fixed value. Angles are in degrees, counter-clockwise as displayed (OpenCV's sense).
Each operation has a probability ``p`` (default 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import OptionError
from . import _pixels

__all__ = [
    "OPERATIONS",
    "Affine",
    "Albumentations",
    "Blur",
    "BrightnessContrast",
    "CenterCrop",
    "ColorJitter",
    "Gamma",
    "GeometricOp",
    "HorizontalFlip",
    "HueSaturation",
    "JpegQuality",
    "Noise",
    "Op",
    "Perspective",
    "PixelOp",
    "RandomCrop",
    "RandomResizedCrop",
    "Resize",
    "Rotate",
    "Rotate90",
    "Sampled",
    "Scale",
    "Shear",
    "Translate",
    "VerticalFlip",
    "apply_matrix",
    "homography",
    "translation",
]

RangeLike = float | Sequence[float]


# -- matrices --------------------------------------------------------------------------


def translation(tx: float, ty: float) -> np.ndarray:
    """The 3x3 matrix of a translation by ``(tx, ty)``."""
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _scaling(sx: float, sy: float) -> np.ndarray:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def _rotation(angle: float) -> np.ndarray:
    """Counter-clockwise as displayed (y points down), about the origin."""
    a = math.radians(angle)
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def _about(m: np.ndarray, cx: float, cy: float) -> np.ndarray:
    return translation(cx, cy) @ m @ translation(-cx, -cy)


def homography(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 3x3 perspective matrix that maps the 4 points ``src`` onto ``dst`` ((4, 2) each)."""
    src = np.asarray(src, np.float64).reshape(4, 2)
    dst = np.asarray(dst, np.float64).reshape(4, 2)
    a = np.zeros((8, 8))
    b = np.zeros(8)
    for i, ((x, y), (u, v)) in enumerate(zip(src, dst, strict=True)):
        a[2 * i] = [x, y, 1, 0, 0, 0, -u * x, -u * y]
        a[2 * i + 1] = [0, 0, 0, x, y, 1, -v * x, -v * y]
        b[2 * i], b[2 * i + 1] = u, v
    h = np.linalg.solve(a, b)
    return np.append(h, 1.0).reshape(3, 3)


def apply_matrix(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (m, 2) mapped by a 3x3 matrix, in float64 (perspective divide when needed).

    An affine matrix with entries 0 and ±1 maps coordinates without rounding beyond
    the one subtraction it implies; the identity returns them bit for bit.
    """
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64)
    x, y = pts[:, 0], pts[:, 1]
    if m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1:
        out = np.empty_like(pts)
        out[:, 0] = _lin(m[0, 0], x, m[0, 1], y, m[0, 2])
        out[:, 1] = _lin(m[1, 0], x, m[1, 1], y, m[1, 2])
        return out
    w = m[2, 0] * x + m[2, 1] * y + m[2, 2]
    return np.stack(
        [(m[0, 0] * x + m[0, 1] * y + m[0, 2]) / w, (m[1, 0] * x + m[1, 1] * y + m[1, 2]) / w],
        axis=1,
    )


def _lin(a: float, x: np.ndarray, b: float, y: np.ndarray, c: float) -> np.ndarray:
    """``a*x + b*y + c``, skipping zero terms so that 0 * inf or -0.0 never appear."""
    out = np.full_like(x, c)
    if a != 0:
        out = a * x + c if a != 1 else x + c
    if b != 0:
        out = out + (b * y if b != 1 else y)
    return out


# -- parameter checking ----------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _range(op: str, field: str, value: Any, lo: float | None = None, hi: float | None = None,
           integer: bool = False) -> tuple[float, float]:
    """``value`` (a number or ``[low, high]``) as a checked ``(low, high)`` tuple."""
    kind = "an integer" if integer else "a number"
    bounds = ""
    if lo is not None and hi is not None:
        bounds = f" in [{lo}, {hi}]"
    elif lo is not None:
        bounds = f" >= {lo}"
    expected = f"{kind}{bounds} or a range [low, high] of them"
    if _is_number(value):
        pair = (value, value)
    elif (isinstance(value, (list, tuple)) and len(value) == 2
          and all(_is_number(v) for v in value)):
        pair = (value[0], value[1])
    else:
        raise OptionError(f"{op}.{field}", value, expected)
    a, b = float(pair[0]), float(pair[1])
    if not (math.isfinite(a) and math.isfinite(b)) or a > b:
        raise OptionError(f"{op}.{field}", value, expected + " with low <= high")
    if integer and not (a.is_integer() and b.is_integer()):
        raise OptionError(f"{op}.{field}", value, expected)
    if (lo is not None and a < lo) or (hi is not None and b > hi):
        raise OptionError(f"{op}.{field}", value, expected)
    return (a, b)


def _positive_int(op: str, field: str, value: Any, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if not _is_number(value) or not float(value).is_integer() or value < 1:
        raise OptionError(f"{op}.{field}", value, "a positive integer")
    return int(value)


def _bool(op: str, field: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OptionError(f"{op}.{field}", value, "true or false")
    return bool(value)


def _uniform(rng: np.random.Generator, r: tuple[float, float]) -> float:
    lo, hi = r
    return lo if lo == hi else float(rng.uniform(lo, hi))


def _integer(rng: np.random.Generator, lo: float, hi: float) -> int:
    return int(lo) if lo == hi else int(rng.integers(int(lo), int(hi) + 1))


# -- base classes ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sampled:
    """What one geometric operation did: the matrix from its input canvas to its output
    canvas, the output size, and the parameters it drew (plain JSON values)."""

    matrix: np.ndarray
    width: int
    height: int
    params: dict[str, Any]


class Op:
    """Base of every operation: ``name`` (as written in pipeline files) and ``p``."""

    name: ClassVar[str] = ""
    geometric: ClassVar[bool] = False
    p: float

    def _check_p(self) -> None:
        if not _is_number(self.p) or not 0.0 <= float(self.p) <= 1.0:
            raise OptionError(f"{self.name}.p", self.p, "a probability in [0, 1]")
        object.__setattr__(self, "p", float(self.p))

    def _set(self, field: str, value: Any) -> None:
        object.__setattr__(self, field, value)

    def to_dict(self) -> dict[str, Any]:
        """The operation as a pipeline-file entry (``{"op": name, ...parameters}``)."""
        out: dict[str, Any] = {"op": self.name}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out


class GeometricOp(Op):
    """An operation on the canvas: sampled as a matrix (see :class:`Sampled`)."""

    geometric: ClassVar[bool] = True

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """Draw parameters for a ``width`` x ``height`` input canvas."""
        raise NotImplementedError


class PixelOp(Op):
    """An operation on pixel values only (annotations are untouched)."""

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """Draw parameters (plain JSON values)."""
        raise NotImplementedError

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """Apply to a uint8 image (h, w) or (h, w, 3); ``order`` is ``"RGB"`` or ``"BGR"``."""
        raise NotImplementedError


# -- geometric operations ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HorizontalFlip(GeometricOp):
    """Mirror left-right: ``x' = W - x``. Keypoints swap left and right names."""

    name: ClassVar[str] = "hflip"
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        m = np.array([[-1.0, 0.0, float(width)], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return Sampled(m, width, height, {})


@dataclasses.dataclass(frozen=True)
class VerticalFlip(GeometricOp):
    """Mirror top-bottom: ``y' = H - y``. Keypoints swap left and right names."""

    name: ClassVar[str] = "vflip"
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        m = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, float(height)], [0.0, 0.0, 1.0]])
        return Sampled(m, width, height, {})


@dataclasses.dataclass(frozen=True)
class Rotate90(GeometricOp):
    """Rotate by ``k`` quarter turns counter-clockwise (as ``numpy.rot90``); exact.

    ``k`` is an integer or an inclusive range ``[low, high]`` to draw from.
    """

    name: ClassVar[str] = "rotate90"
    k: RangeLike = (1, 3)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("k", _range(self.name, "k", self.k, integer=True))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        lo, hi = self.k  # type: ignore[misc]
        k = _integer(rng, lo, hi) % 4
        w, h = float(width), float(height)
        mats = {
            0: (np.eye(3), width, height),
            1: (np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, w], [0.0, 0.0, 1.0]]), height, width),
            2: (np.array([[-1.0, 0.0, w], [0.0, -1.0, h], [0.0, 0.0, 1.0]]), width, height),
            3: (np.array([[0.0, -1.0, h], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), height, width),
        }
        m, ow, oh = mats[k]
        return Sampled(m, ow, oh, {"k": k})


@dataclasses.dataclass(frozen=True)
class Rotate(GeometricOp):
    """Rotate by ``angle`` degrees about the canvas centre.

    With ``expand`` the canvas grows to hold the whole rotated image; otherwise it keeps
    its size and corners are cut (what leaves the canvas is clipped away).
    """

    name: ClassVar[str] = "rotate"
    angle: RangeLike = (-30.0, 30.0)
    expand: bool = False
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("angle", _range(self.name, "angle", self.angle))
        self._set("expand", _bool(self.name, "expand", self.expand))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        angle = _uniform(rng, self.angle)  # type: ignore[arg-type]
        r = _rotation(angle)
        if not self.expand:
            return Sampled(_about(r, width / 2, height / 2), width, height, {"angle": angle})
        c, s = abs(r[0, 0]), abs(r[0, 1])
        ow = max(1, math.ceil(width * c + height * s - 1e-6))
        oh = max(1, math.ceil(width * s + height * c - 1e-6))
        m = translation(ow / 2, oh / 2) @ r @ translation(-width / 2, -height / 2)
        return Sampled(m, ow, oh, {"angle": angle})


@dataclasses.dataclass(frozen=True)
class Scale(GeometricOp):
    """Scale the image and its canvas by ``factor`` (the output size is rounded)."""

    name: ClassVar[str] = "scale"
    factor: RangeLike = (0.8, 1.2)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        r = _range(self.name, "factor", self.factor, lo=0.0)
        if r[0] <= 0:
            raise OptionError(f"{self.name}.factor", self.factor, "factors > 0")
        self._set("factor", r)

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        f = _uniform(rng, self.factor)  # type: ignore[arg-type]
        ow, oh = max(1, round(width * f)), max(1, round(height * f))
        return Sampled(_scaling(ow / width, oh / height), ow, oh, {"factor": f})


@dataclasses.dataclass(frozen=True)
class Resize(GeometricOp):
    """Resize to ``width`` x ``height``; give one of them to keep the aspect ratio."""

    name: ClassVar[str] = "resize"
    width: int | None = 512
    height: int | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("width", _positive_int(self.name, "width", self.width, optional=True))
        self._set("height", _positive_int(self.name, "height", self.height, optional=True))
        if self.width is None and self.height is None:
            raise OptionError(f"{self.name}.width", None, "width and/or height")

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        ow = self.width if self.width is not None else max(1, round(width * self.height / height))  # type: ignore[operator]
        oh = self.height if self.height is not None else max(1, round(height * ow / width))
        return Sampled(_scaling(ow / width, oh / height), ow, oh, {"width": ow, "height": oh})


@dataclasses.dataclass(frozen=True)
class Translate(GeometricOp):
    """Shift by ``x`` and ``y``, fractions of the canvas width and height; canvas kept."""

    name: ClassVar[str] = "translate"
    x: RangeLike = (-0.1, 0.1)
    y: RangeLike = (-0.1, 0.1)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("x", _range(self.name, "x", self.x, lo=-1.0, hi=1.0))
        self._set("y", _range(self.name, "y", self.y, lo=-1.0, hi=1.0))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        fx = _uniform(rng, self.x)  # type: ignore[arg-type]
        fy = _uniform(rng, self.y)  # type: ignore[arg-type]
        return Sampled(translation(fx * width, fy * height), width, height, {"x": fx, "y": fy})


@dataclasses.dataclass(frozen=True)
class Shear(GeometricOp):
    """Shear by ``x`` and ``y`` degrees about the canvas centre; canvas kept."""

    name: ClassVar[str] = "shear"
    x: RangeLike = (-10.0, 10.0)
    y: RangeLike = (0.0, 0.0)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("x", _range(self.name, "x", self.x, lo=-80.0, hi=80.0))
        self._set("y", _range(self.name, "y", self.y, lo=-80.0, hi=80.0))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        sx = _uniform(rng, self.x)  # type: ignore[arg-type]
        sy = _uniform(rng, self.y)  # type: ignore[arg-type]
        m = _shear(sx, sy)
        return Sampled(_about(m, width / 2, height / 2), width, height, {"x": sx, "y": sy})


def _shear(sx: float, sy: float) -> np.ndarray:
    return np.array([[1.0, math.tan(math.radians(sx)), 0.0],
                     [math.tan(math.radians(sy)), 1.0, 0.0], [0.0, 0.0, 1.0]])


@dataclasses.dataclass(frozen=True)
class Affine(GeometricOp):
    """A full affine transform about the canvas centre; canvas kept.

    Either sampled: ``scale`` (factor), ``rotate`` (degrees), ``shear_x``/``shear_y``
    (degrees), ``translate_x``/``translate_y`` (fractions of the canvas), composed as
    translate . rotate . scale . shear about the centre; or a fixed ``matrix``
    ``[[a, b, c], [d, e, f]]`` in pixel coordinates (then the others must be left out).
    """

    name: ClassVar[str] = "affine"
    scale: RangeLike = 1.0
    rotate: RangeLike = 0.0
    shear_x: RangeLike = 0.0
    shear_y: RangeLike = 0.0
    translate_x: RangeLike = 0.0
    translate_y: RangeLike = 0.0
    matrix: Sequence[Sequence[float]] | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        sc = _range(self.name, "scale", self.scale, lo=0.0)
        if sc[0] <= 0:
            raise OptionError(f"{self.name}.scale", self.scale, "factors > 0")
        self._set("scale", sc)
        self._set("rotate", _range(self.name, "rotate", self.rotate))
        self._set("shear_x", _range(self.name, "shear_x", self.shear_x, lo=-80.0, hi=80.0))
        self._set("shear_y", _range(self.name, "shear_y", self.shear_y, lo=-80.0, hi=80.0))
        self._set("translate_x", _range(self.name, "translate_x", self.translate_x, -1.0, 1.0))
        self._set("translate_y", _range(self.name, "translate_y", self.translate_y, -1.0, 1.0))
        if self.matrix is not None:
            try:
                m = np.asarray(self.matrix, np.float64)
            except (TypeError, ValueError):
                m = np.zeros(0)
            if m.shape == (3, 3) and np.array_equal(m[2], [0, 0, 1]):
                m = m[:2]
            if (m.shape != (2, 3) or not np.isfinite(m).all()
                    or abs(np.linalg.det(m[:, :2])) < 1e-12):
                raise OptionError(f"{self.name}.matrix", self.matrix,
                                  "an invertible [[a, b, c], [d, e, f]] of numbers")
            if any(getattr(self, f) != (d, d) for f, d in (
                    ("scale", 1.0), ("rotate", 0.0), ("shear_x", 0.0), ("shear_y", 0.0),
                    ("translate_x", 0.0), ("translate_y", 0.0))):
                raise OptionError(f"{self.name}.matrix", self.matrix,
                                  "a matrix alone (without scale, rotate, shear or translate)")
            self._set("matrix", tuple(tuple(float(v) for v in row) for row in m))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        if self.matrix is not None:
            m = np.vstack([np.asarray(self.matrix, np.float64), [0.0, 0.0, 1.0]])
            return Sampled(m, width, height, {"matrix": [list(r) for r in self.matrix]})
        s = _uniform(rng, self.scale)  # type: ignore[arg-type]
        a = _uniform(rng, self.rotate)  # type: ignore[arg-type]
        shx = _uniform(rng, self.shear_x)  # type: ignore[arg-type]
        shy = _uniform(rng, self.shear_y)  # type: ignore[arg-type]
        tx = _uniform(rng, self.translate_x)  # type: ignore[arg-type]
        ty = _uniform(rng, self.translate_y)  # type: ignore[arg-type]
        core = _rotation(a) @ _scaling(s, s) @ _shear(shx, shy)
        m = translation(tx * width, ty * height) @ _about(core, width / 2, height / 2)
        params = {"scale": s, "rotate": a, "shear_x": shx, "shear_y": shy,
                  "translate_x": tx, "translate_y": ty}
        return Sampled(m, width, height, params)


@dataclasses.dataclass(frozen=True)
class Perspective(GeometricOp):
    """Move each corner inwards by up to ``distortion`` x half the canvas; canvas kept.

    A distortion ``d`` is drawn from the range, then each corner moves inwards by a
    uniform amount in ``[0, d * W / 2]`` and ``[0, d * H / 2]`` (torchvision's
    RandomPerspective). Straight edges stay straight, so polygons stay exact.
    """

    name: ClassVar[str] = "perspective"
    distortion: RangeLike = (0.0, 0.3)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("distortion", _range(self.name, "distortion", self.distortion, 0.0, 0.9))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        d = _uniform(rng, self.distortion)  # type: ignore[arg-type]
        dx = rng.uniform(0.0, 1.0, 4) * d * width / 2
        dy = rng.uniform(0.0, 1.0, 4) * d * height / 2
        w, h = float(width), float(height)
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        sign = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float64)
        dst = src + sign * np.stack([dx, dy], axis=1)
        m = homography(src, dst)
        return Sampled(m, width, height, {"distortion": d, "corners": dst.tolist()})


def _offset(rng: np.random.Generator, size: int, crop: int) -> int:
    """Integer offset of a crop; a crop larger than the canvas pads around it."""
    if crop <= size:
        return int(rng.integers(0, size - crop + 1))
    return -int(rng.integers(0, crop - size + 1))


@dataclasses.dataclass(frozen=True)
class RandomCrop(GeometricOp):
    """Cut a ``width`` x ``height`` window at a random integer position.

    A window larger than the canvas pads it (with the pipeline's ``fill``).
    """

    name: ClassVar[str] = "random_crop"
    width: int = 512
    height: int = 512
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("width", _positive_int(self.name, "width", self.width))
        self._set("height", _positive_int(self.name, "height", self.height))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        x0 = _offset(rng, width, self.width)
        y0 = _offset(rng, height, self.height)
        return Sampled(translation(-x0, -y0), self.width, self.height,
                       {"x": x0, "y": y0, "width": self.width, "height": self.height})


@dataclasses.dataclass(frozen=True)
class CenterCrop(GeometricOp):
    """Cut a ``width`` x ``height`` window from the centre (integer position)."""

    name: ClassVar[str] = "center_crop"
    width: int = 512
    height: int = 512
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("width", _positive_int(self.name, "width", self.width))
        self._set("height", _positive_int(self.name, "height", self.height))

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        x0 = (width - self.width) // 2
        y0 = (height - self.height) // 2
        return Sampled(translation(-x0, -y0), self.width, self.height,
                       {"x": x0, "y": y0, "width": self.width, "height": self.height})


@dataclasses.dataclass(frozen=True)
class RandomResizedCrop(GeometricOp):
    """Cut a window of random area and aspect ratio, resized to ``width`` x ``height``.

    ``scale`` bounds the window's area as a fraction of the canvas, ``ratio`` its
    width / height; ten tries, then a centre crop (torchvision's algorithm).
    """

    name: ClassVar[str] = "random_resized_crop"
    width: int = 512
    height: int = 512
    scale: RangeLike = (0.08, 1.0)
    ratio: RangeLike = (3 / 4, 4 / 3)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("width", _positive_int(self.name, "width", self.width))
        self._set("height", _positive_int(self.name, "height", self.height))
        sc = _range(self.name, "scale", self.scale, lo=0.0, hi=1.0)
        if sc[1] <= 0:
            raise OptionError(f"{self.name}.scale", self.scale, "a range within (0, 1]")
        self._set("scale", sc)
        ra = _range(self.name, "ratio", self.ratio, lo=0.0)
        if ra[0] <= 0:
            raise OptionError(f"{self.name}.ratio", self.ratio, "ratios > 0")
        self._set("ratio", ra)

    def _window(self, rng: np.random.Generator, width: int, height: int
                ) -> tuple[int, int, int, int]:
        area = width * height
        log_lo, log_hi = (math.log(r) for r in self.ratio)  # type: ignore[union-attr]
        for _ in range(10):
            target = area * _uniform(rng, self.scale)  # type: ignore[arg-type]
            aspect = math.exp(_uniform(rng, (log_lo, log_hi)))
            w = round(math.sqrt(target * aspect))
            h = round(math.sqrt(target / aspect))
            if 0 < w <= width and 0 < h <= height:
                x0 = int(rng.integers(0, width - w + 1))
                return x0, int(rng.integers(0, height - h + 1)), w, h
        ratio = width / height
        lo_r, hi_r = self.ratio  # type: ignore[misc]
        if ratio < lo_r:
            w, h = width, max(1, round(width / lo_r))
        elif ratio > hi_r:
            w, h = max(1, round(height * hi_r)), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def sample(self, rng: np.random.Generator, width: int, height: int) -> Sampled:
        """See :meth:`GeometricOp.sample`."""
        x0, y0, w, h = self._window(rng, width, height)
        m = _scaling(self.width / w, self.height / h) @ translation(-x0, -y0)
        return Sampled(m, self.width, self.height,
                       {"x": x0, "y": y0, "crop_width": w, "crop_height": h})


# -- pixel operations ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BrightnessContrast(PixelOp):
    """``v' = v * (1 + contrast) + 255 * brightness`` (both ranges around 0)."""

    name: ClassVar[str] = "brightness_contrast"
    brightness: RangeLike = (-0.2, 0.2)
    contrast: RangeLike = (-0.2, 0.2)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("brightness", _range(self.name, "brightness", self.brightness, -1.0, 1.0))
        self._set("contrast", _range(self.name, "contrast", self.contrast, -1.0, 10.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {"brightness": _uniform(rng, self.brightness),  # type: ignore[arg-type]
                "contrast": _uniform(rng, self.contrast)}  # type: ignore[arg-type]

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        gain = 1 + params["contrast"]
        lut = np.arange(256, dtype=np.float64) * gain + 255 * params["brightness"]
        return _pixels.lut(image, lut)


@dataclasses.dataclass(frozen=True)
class ColorJitter(PixelOp):
    """Brightness, contrast and saturation factors and a hue shift, as one colour matrix.

    ``brightness`` scales values, ``contrast`` blends with the mean grey, ``saturation``
    with each pixel's grey (factors, 1 = unchanged; torchvision's meaning). ``hue`` turns
    colours about the grey axis by a fraction of a full turn (in [-0.5, 0.5]). The four
    are composed into one 3x4 colour matrix applied in one pass, clipped once at the
    end. Grey images get brightness and contrast only.
    """

    name: ClassVar[str] = "color_jitter"
    brightness: RangeLike = (0.8, 1.2)
    contrast: RangeLike = (0.8, 1.2)
    saturation: RangeLike = (0.8, 1.2)
    hue: RangeLike = (-0.05, 0.05)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        for f in ("brightness", "contrast", "saturation"):
            self._set(f, _range(self.name, f, getattr(self, f), lo=0.0))
        self._set("hue", _range(self.name, "hue", self.hue, -0.5, 0.5))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {f: _uniform(rng, getattr(self, f))
                for f in ("brightness", "contrast", "saturation", "hue")}

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.color_matrix(image, order, params["brightness"], params["contrast"],
                                    params["saturation"], params["hue"])


@dataclasses.dataclass(frozen=True)
class HueSaturation(PixelOp):
    """Shift hue by ``hue`` degrees, scale saturation and value by factors (in HSV)."""

    name: ClassVar[str] = "hue_saturation"
    hue: RangeLike = (-20.0, 20.0)
    saturation: RangeLike = (0.7, 1.3)
    value: RangeLike = (0.8, 1.2)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("hue", _range(self.name, "hue", self.hue, -180.0, 180.0))
        self._set("saturation", _range(self.name, "saturation", self.saturation, lo=0.0))
        self._set("value", _range(self.name, "value", self.value, lo=0.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {f: _uniform(rng, getattr(self, f)) for f in ("hue", "saturation", "value")}

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.hsv_shift(image, order, params["hue"], params["saturation"],
                                 params["value"])


@dataclasses.dataclass(frozen=True)
class Gamma(PixelOp):
    """``v' = 255 * (v / 255) ** gamma``."""

    name: ClassVar[str] = "gamma"
    gamma: RangeLike = (0.8, 1.2)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        g = _range(self.name, "gamma", self.gamma, lo=0.0)
        if g[0] <= 0:
            raise OptionError(f"{self.name}.gamma", self.gamma, "values > 0")
        self._set("gamma", g)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {"gamma": _uniform(rng, self.gamma)}  # type: ignore[arg-type]

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        lut = 255.0 * (np.arange(256) / 255.0) ** params["gamma"]
        return _pixels.lut(image, lut)


@dataclasses.dataclass(frozen=True)
class Blur(PixelOp):
    """Gaussian blur with standard deviation ``sigma`` pixels."""

    name: ClassVar[str] = "blur"
    sigma: RangeLike = (0.5, 1.5)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("sigma", _range(self.name, "sigma", self.sigma, 0.0, 100.0))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {"sigma": _uniform(rng, self.sigma)}  # type: ignore[arg-type]

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.gaussian_blur(image, params["sigma"])


@dataclasses.dataclass(frozen=True)
class Noise(PixelOp):
    """Add Gaussian noise of standard deviation ``std`` (in 0-255 units).

    The noise comes from its own generator whose seed is drawn and recorded, so the
    recorded parameters reproduce it. ``per_channel`` False adds the same noise to
    every channel.
    """

    name: ClassVar[str] = "noise"
    std: RangeLike = (2.0, 10.0)
    per_channel: bool = True
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("std", _range(self.name, "std", self.std, 0.0, 255.0))
        self._set("per_channel", _bool(self.name, "per_channel", self.per_channel))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {"std": _uniform(rng, self.std),  # type: ignore[arg-type]
                "seed": int(rng.integers(0, 2**63 - 1))}

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.add_noise(image, params["std"], params["seed"], self.per_channel, order)


@dataclasses.dataclass(frozen=True)
class JpegQuality(PixelOp):
    """JPEG compression artefacts: encode at ``quality`` and decode again."""

    name: ClassVar[str] = "jpeg"
    quality: RangeLike = (50, 95)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        self._set("quality", _range(self.name, "quality", self.quality, 1, 100, integer=True))

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        lo, hi = self.quality  # type: ignore[misc]
        return {"quality": _integer(rng, lo, hi)}

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.jpeg_roundtrip(image, order, int(params["quality"]))


# -- Albumentations (pixel-level only) ---------------------------------------------------

#: Albumentations transforms that move pixels, and the cocokit operation to use instead.
SPATIAL_ALBUMENTATIONS: dict[str, str] = {
    "HorizontalFlip": "hflip",
    "VerticalFlip": "vflip",
    "Flip": "hflip or vflip",
    "Transpose": "rotate90 with hflip",
    "D4": "rotate90 with hflip",
    "RandomRotate90": "rotate90",
    "Rotate": "rotate",
    "SafeRotate": "rotate (expand: true)",
    "Affine": "affine",
    "ShiftScaleRotate": "affine",
    "Perspective": "perspective",
    "RandomCrop": "random_crop",
    "Crop": "random_crop",
    "CenterCrop": "center_crop",
    "RandomResizedCrop": "random_resized_crop",
    "RandomSizedCrop": "random_resized_crop",
    "RandomSizedBBoxSafeCrop": "random_resized_crop",
    "RandomCropFromBorders": "random_crop",
    "CropAndPad": "random_crop",
    "PadIfNeeded": "random_crop (a window larger than the image pads it)",
    "Pad": "random_crop (a window larger than the image pads it)",
    "Resize": "resize",
    "LongestMaxSize": "resize",
    "SmallestMaxSize": "resize",
    "RandomScale": "scale",
}


@dataclasses.dataclass(frozen=True)
class Albumentations(PixelOp):
    """A pixel-level Albumentations transform given by class ``name`` and ``params``.

    Needs the optional extra ``cocokit[albumentations]``. Transforms that move pixels
    (flips, rotations, crops, affine, elastic, ...) are refused: annotations could not
    follow them exactly; the error names the cocokit operation to use instead. The
    transform gets its own seed per image (recorded), never the global random state.
    """

    name: ClassVar[str] = "albumentations"
    transform: str = ""
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    p: float = 1.0

    def __post_init__(self) -> None:
        self._check_p()
        if not isinstance(self.transform, str) or not self.transform:
            raise OptionError(f"{self.name}.transform", self.transform,
                              "the name of an Albumentations transform, such as CLAHE")
        if not isinstance(self.params, Mapping):
            raise OptionError(f"{self.name}.params", self.params, "a mapping of parameters")
        if self.transform in SPATIAL_ALBUMENTATIONS:
            raise OptionError(
                f"{self.name}.transform", self.transform,
                f"a pixel-level transform; {self.transform} moves pixels, use cocokit's "
                f"{SPATIAL_ALBUMENTATIONS[self.transform]!s} operation, which keeps "
                "annotations exact")
        self._set("params", dict(self.params))
        _pixels.albumentations_transform(self.transform, self.params)  # validates

    def to_dict(self) -> dict[str, Any]:
        """See :meth:`Op.to_dict`."""
        return {"op": self.name, "transform": self.transform, "params": dict(self.params),
                "p": self.p}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """See :meth:`PixelOp.sample`."""
        return {"transform": self.transform, "seed": int(rng.integers(0, 2**31 - 1))}

    def apply(self, image: np.ndarray, params: Mapping[str, Any], order: str) -> np.ndarray:
        """See :meth:`PixelOp.apply`."""
        return _pixels.apply_albumentations(image, order, self.transform, self.params,
                                            int(params["seed"]))


#: Every operation by the name used in pipeline files.
OPERATIONS: dict[str, type[Op]] = {
    cls.name: cls
    for cls in (
        HorizontalFlip, VerticalFlip, Rotate90, Rotate, Scale, Resize, Translate, Shear,
        Affine, Perspective, RandomCrop, CenterCrop, RandomResizedCrop,
        BrightnessContrast, ColorJitter, HueSaturation, Gamma, Blur, Noise, JpegQuality,
        Albumentations,
    )
}
