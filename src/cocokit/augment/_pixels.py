"""Pixels: decode, warp, colour operations and encode, with OpenCV or Pillow.

OpenCV (``opencv-python-headless``, the optional extra ``cocokit[augment]``) is used
when it is installed: it decodes JPEG faster and warps several times faster than
Pillow. Pillow is the fallback and is always there. ``COCOKIT_PIXELS=pillow`` in the
environment forces Pillow (tests use it to check both paths). The two give slightly
different pixels (interpolation and JPEG coder details); each is deterministic.

Images are uint8 numpy arrays, (h, w) for grey or (h, w, 3) for colour, with a channel
``order`` of ``"BGR"`` (as OpenCV decodes) or ``"RGB"`` (as Pillow decodes), so no
full-size colour conversion is ever made.

Warps map continuous coordinates (pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``).
Pillow's transform uses that convention; OpenCV puts pixel centres on integers, so its
matrix is conjugated by a half-pixel shift. Matrices that only permute, mirror and
shift by whole pixels (flips, quarter turns, crops) are done by numpy slicing: exact,
and nearly free.
"""

from __future__ import annotations

import functools
import io
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from ..errors import InputError, MissingDependency, OptionError

__all__ = [
    "albumentations_transform",
    "apply_albumentations",
    "backend",
    "color_matrix",
    "decode",
    "encode",
    "gaussian_blur",
    "hsv_shift",
    "jpeg_roundtrip",
    "lut",
    "warp",
]

_EXIF_ORIENTATION = 0x0112


def _cv2() -> Any:
    """The cv2 module, or None when OpenCV is absent or Pillow is forced."""
    if os.environ.get("COCOKIT_PIXELS", "").lower() == "pillow":
        return None
    return _import_cv2()


@functools.lru_cache(maxsize=1)
def _import_cv2() -> Any:
    try:
        import cv2
    except ImportError:
        return None
    return cv2


def backend() -> str:
    """``"opencv"`` or ``"pillow"``: the library that handles pixels in this process."""
    return "opencv" if _cv2() is not None else "pillow"


# -- decode / encode -------------------------------------------------------------------


def _to_8bit(im: Any) -> np.ndarray:
    """A Pillow image of any mode as a uint8 array: grey stays grey, the rest RGB."""
    mode = im.mode
    if mode in ("L", "RGB"):
        return np.asarray(im)
    if mode in ("1", "LA", "La"):
        return np.asarray(im.convert("L"))
    if mode.startswith("I") or mode == "F":
        a = np.asarray(im)
        if a.dtype.kind == "f":
            return np.clip(np.rint(a), 0, 255).astype(np.uint8)
        if a.dtype.itemsize > 1 and a.max(initial=0) > 255:
            return np.clip(np.rint(a.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return np.clip(a, 0, 255).astype(np.uint8)
    return np.asarray(im.convert("RGB"))  # P, PA, RGBA, CMYK, YCbCr, ...: alpha dropped


def decode(path: str | os.PathLike[str], width: int, height: int,
           data: bytes | None = None) -> tuple[np.ndarray, str]:
    """Read an image as a uint8 array and its channel order.

    ``data``: the file's bytes when they are already in memory (read from object
    storage, or by another process); ``path`` then only names the file in errors. The
    pixels are the same as decoding the file itself. EXIF orientation is applied when
    the oriented size is the recorded ``width`` x ``height`` (and the stored one is
    not); a size that matches neither raises :class:`~cocokit.errors.InputError`, as
    does a file that is missing or not an image. Grey images stay grey; every other mode
    becomes 3 channels (alpha dropped; 16-bit scaled to 8).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    name = os.fspath(path)
    try:
        im = Image.open(io.BytesIO(data) if data is not None else name)
    except FileNotFoundError:
        raise InputError(name, None, "image file not found") from None
    except IsADirectoryError:
        raise InputError(name, None, "is a folder, not an image file") from None
    except UnidentifiedImageError:  # its message names the file object: say it plainly
        raise InputError(name, None, "cannot read the image: not a known image format"
                         ) from None
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # a broken file makes Pillow raise many kinds of error
        raise InputError(name, None, f"cannot read the image: {e}") from None
    with im:
        raw_w, raw_h = im.size
        orientation = 1
        try:
            orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1))
        except Exception:  # a broken EXIF block means no orientation
            orientation = 1
        turned = orientation in (5, 6, 7, 8)
        oriented = (raw_h, raw_w) if turned else (raw_w, raw_h)
        use_exif = orientation != 1 and oriented == (width, height)
        if not use_exif and (raw_w, raw_h) != (width, height):
            raise InputError(name, None, f"image is {raw_w}x{raw_h} but its record says "
                                         f"{width}x{height}")
        cv2 = _cv2()
        if cv2 is not None and not use_exif and im.mode in ("L", "RGB") and im.format in (
                "JPEG", "PNG", "BMP", "TIFF", "WEBP"):
            flag = (cv2.IMREAD_GRAYSCALE if im.mode == "L" else cv2.IMREAD_COLOR)
            buf = np.frombuffer(data, np.uint8) if data is not None else np.fromfile(
                name, np.uint8)
            arr = cv2.imdecode(buf, flag | cv2.IMREAD_IGNORE_ORIENTATION)
            if arr is not None and arr.shape[:2] == (height, width):
                return arr, "BGR"
        try:
            pic: Image.Image = ImageOps.exif_transpose(im) if use_exif else im
            pic.load()
        except (MemoryError, RecursionError):
            raise
        except Exception as e:  # truncated or corrupt pixel data
            raise InputError(name, None, f"cannot decode the image: {e}") from None
        return _to_8bit(pic), "RGB"


def _ext_format(ext: str) -> str:
    e = ext.lower().lstrip(".")
    return {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "tif": "TIFF",
            "tiff": "TIFF", "webp": "WEBP", "gif": "GIF"}.get(e, e.upper())


def encode(image: np.ndarray, order: str, ext: str, quality: int = 95) -> bytes:
    """Encode as the format of extension ``ext`` (JPEG with ``quality``)."""
    fmt = _ext_format(ext)
    cv2 = _cv2()
    if cv2 is not None and fmt in ("JPEG", "PNG"):
        bgr = image if image.ndim == 2 or order == "BGR" else image[..., ::-1]
        params = ([cv2.IMWRITE_JPEG_QUALITY, int(quality)] if fmt == "JPEG"
                  else [cv2.IMWRITE_PNG_COMPRESSION, 3])
        ok, buf = cv2.imencode(".jpg" if fmt == "JPEG" else ".png",
                               np.ascontiguousarray(bgr), params)
        if ok:
            return bytes(buf)
    from PIL import Image

    rgb = image if image.ndim == 2 or order == "RGB" else image[..., ::-1]
    im = Image.fromarray(np.ascontiguousarray(rgb))
    out = io.BytesIO()
    if fmt == "JPEG":
        im.save(out, "JPEG", quality=int(quality))
    elif fmt == "PNG":
        im.save(out, "PNG", compress_level=3)
    else:
        im.save(out, fmt)
    return out.getvalue()


# -- warping ---------------------------------------------------------------------------

_CV_INTER = {"nearest": 0, "linear": 1, "cubic": 2}


def _exact_parts(m: np.ndarray) -> bool:
    """True when ``m`` permutes/mirrors axes and shifts by whole pixels."""
    if not (m[2, 0] == 0 and m[2, 1] == 0 and m[2, 2] == 1):
        return False
    a = m[:2, :2]
    if not np.all(np.isin(a, (-1.0, 0.0, 1.0))):
        return False
    if not (np.count_nonzero(a, axis=0) == 1).all() or not (np.count_nonzero(a, axis=1) == 1).all():
        return False
    return bool(float(m[0, 2]).is_integer() and float(m[1, 2]).is_integer())


def _warp_exact(img: np.ndarray, m: np.ndarray, ow: int, oh: int, fill: Any) -> np.ndarray:
    src = img
    m = m.copy()
    if m[0, 0] == 0:  # x' depends on y: transpose the array, swap the matrix columns
        src = src.swapaxes(0, 1)
        m[:, [0, 1]] = m[:, [1, 0]]
    h, w = src.shape[:2]
    if m[0, 0] < 0:  # x' = -x + c = (w - x) + (c - w)
        src = src[:, ::-1]
        m[0, 0], m[0, 2] = 1.0, m[0, 2] - w
    if m[1, 1] < 0:
        src = src[::-1]
        m[1, 1], m[1, 2] = 1.0, m[1, 2] - h
    tx, ty = int(m[0, 2]), int(m[1, 2])
    if tx == 0 and ty == 0 and (w, h) == (ow, oh):
        return np.ascontiguousarray(src)
    out = np.empty((oh, ow, *src.shape[2:]), img.dtype)
    out[...] = fill
    # out[y, x] = src[y - ty, x - tx]
    x0, x1 = max(0, tx), min(ow, w + tx)
    y0, y1 = max(0, ty), min(oh, h + ty)
    if x0 < x1 and y0 < y1:
        out[y0:y1, x0:x1] = src[y0 - ty : y1 - ty, x0 - tx : x1 - tx]
    return out


def _fill_value(img: np.ndarray, fill: Any, order: str) -> Any:
    """The fill as a scalar (grey) or a 3-tuple in the image's channel order."""
    scalar = isinstance(fill, (int, float, np.integer, np.floating))
    if img.ndim == 2:
        return int(fill) if scalar else round(sum(fill) / len(fill))
    f3 = (fill, fill, fill) if scalar else tuple(fill)
    return tuple(int(v) for v in (f3[::-1] if order == "BGR" else f3))


def _source_window(m: np.ndarray, width: int, height: int, src_w: int, src_h: int,
                   margin: int) -> tuple[int, int, int, int] | None:
    """Integer box of the input that the output window reads (None: it reads nothing)."""
    inv = np.linalg.inv(m)
    corners = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    p = corners @ inv.T
    if (p[:, 2] <= 0).any():  # the window reaches beyond the horizon: read everything
        return 0, 0, src_w, src_h
    xy = p[:, :2] / p[:, 2:3]
    x0 = max(0, math.floor(xy[:, 0].min()) - margin)
    y0 = max(0, math.floor(xy[:, 1].min()) - margin)
    x1 = min(src_w, math.ceil(xy[:, 0].max()) + margin)
    y1 = min(src_h, math.ceil(xy[:, 1].max()) + margin)
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def _warp_cv2(cv2: Any, image: np.ndarray, m: np.ndarray, width: int, height: int,
              interpolation: str, fv: Any) -> np.ndarray:
    """OpenCV warp of only the input window the output needs.

    Three-channel images are warped as four channels (OpenCV's vectorized path, about
    twice as fast), converting only that input window and the output.
    """
    h, w = image.shape[:2]
    three = image.ndim == 3 and image.shape[2] == 3
    border = (*fv, 0) if isinstance(fv, tuple) else (fv, fv, fv, fv)
    win = _source_window(m, width, height, w, h, margin=3)
    if win is None:
        out = np.empty((height, width, *image.shape[2:]), np.uint8)
        out[...] = fv
        return out
    x0, y0, x1, y1 = win
    src = image[y0:y1, x0:x1]
    if three:
        src = cv2.cvtColor(src, cv2.COLOR_BGR2BGRA)  # the same for RGB -> RGBA
    else:
        src = np.ascontiguousarray(src)
    half = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    unhalf = np.array([[1.0, 0.0, 0.5 + x0], [0.0, 1.0, 0.5 + y0], [0.0, 0.0, 1.0]])
    mc = half @ m @ unhalf
    flags = _CV_INTER[interpolation]
    if mc[2, 0] == 0 and mc[2, 1] == 0:
        mc = mc / mc[2, 2]
        out = cv2.warpAffine(src, mc[:2], (width, height), flags=flags,
                             borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    else:
        out = cv2.warpPerspective(src, mc, (width, height), flags=flags,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    if three:
        out = cv2.cvtColor(out, cv2.COLOR_BGRA2BGR)
    return out


def warp(image: np.ndarray, matrix: np.ndarray, width: int, height: int, *,
         interpolation: str = "linear", fill: Any = 0, order: str = "RGB") -> np.ndarray:
    """The ``width`` x ``height`` output window of ``image`` mapped by ``matrix``.

    ``matrix`` (3x3) maps input coordinates to output coordinates; only output pixels
    are computed. Pixels from outside the input get ``fill`` (a number or an RGB
    triple). Whole-pixel permutations, mirrors and shifts are exact.
    """
    m = np.asarray(matrix, np.float64)
    fv = _fill_value(image, fill, order)
    if _exact_parts(m):
        return _warp_exact(image, m, width, height, fv)
    cv2 = _cv2()
    if cv2 is not None:
        return _warp_cv2(cv2, image, m, width, height, interpolation, fv)
    from PIL import Image

    inv = np.linalg.inv(m)
    inv = inv / inv[2, 2]
    resample = {"nearest": Image.Resampling.NEAREST, "linear": Image.Resampling.BILINEAR,
                "cubic": Image.Resampling.BICUBIC}[interpolation]
    im = Image.fromarray(np.ascontiguousarray(image))
    if inv[2, 0] == 0 and inv[2, 1] == 0:
        out = im.transform((width, height), Image.Transform.AFFINE, tuple(inv[:2].ravel()),
                           resample=resample, fillcolor=fv)
    else:
        out = im.transform((width, height), Image.Transform.PERSPECTIVE,
                           tuple(inv.ravel()[:8]), resample=resample, fillcolor=fv)
    return np.asarray(out)


# -- colour ----------------------------------------------------------------------------


def lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every value through a 256-entry table (rounded and clipped to uint8)."""
    t = np.clip(np.rint(np.asarray(table, np.float64)), 0, 255).astype(np.uint8)
    cv2 = _cv2()
    if cv2 is not None:
        return cv2.LUT(np.ascontiguousarray(image), t)
    return t[image]


_LUMA = np.array([0.299, 0.587, 0.114])
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_INV = np.linalg.inv(_YIQ)


def _apply_affine_color(image: np.ndarray, k: np.ndarray, off: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    if cv2 is not None:
        mat = np.hstack([k, off.reshape(-1, 1)]).astype(np.float32)
        return cv2.transform(np.ascontiguousarray(image), mat)
    f = image.astype(np.float32) @ k.T.astype(np.float32) + off.astype(np.float32)
    return np.clip(np.rint(f), 0, 255).astype(np.uint8)


def _channel_means(image: np.ndarray) -> np.ndarray:
    """Mean of each channel (exact; numpy's axis reductions are slow on uint8 images)."""
    cv2 = _cv2()
    if cv2 is not None:
        return np.asarray(cv2.mean(np.ascontiguousarray(image))[: image.shape[2]], np.float64)
    counts = [np.bincount(image[..., c].ravel(), minlength=256) for c in range(image.shape[2])]
    values = np.arange(256, dtype=np.float64)
    return np.array([float(values @ c) / max(1, int(c.sum())) for c in counts])


def color_matrix(image: np.ndarray, order: str, brightness: float, contrast: float,
                 saturation: float, hue: float) -> np.ndarray:
    """Brightness, contrast, saturation (factors) and hue (turns) as one colour matrix."""
    if image.ndim == 2:
        mean = float(_channel_means(image[..., None])[0])
        lut_t = np.arange(256) * brightness * contrast + (1 - contrast) * brightness * mean
        return lut(image, lut_t)
    rgb_means = _channel_means(image)
    if order == "BGR":
        rgb_means = rgb_means[::-1]
    mean = float(_LUMA @ rgb_means)
    sat = saturation * np.eye(3) + (1 - saturation) * np.outer(np.ones(3), _LUMA)
    a = 2 * np.pi * hue
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    hue_m = _YIQ_INV @ rot @ _YIQ
    k = contrast * brightness * (hue_m @ sat)
    off = np.full(3, (1 - contrast) * brightness * mean)
    if order == "BGR":
        k = k[::-1, ::-1]
    return _apply_affine_color(image, k, off)


def hsv_shift(image: np.ndarray, order: str, hue_deg: float, saturation: float,
              value: float) -> np.ndarray:
    """Shift hue (degrees) and scale saturation and value in HSV (grey: value only)."""
    vt = np.arange(256) * value
    if image.ndim == 2:
        return lut(image, vt)
    ht = (np.arange(256) + hue_deg * 256.0 / 360.0) % 256
    st = np.arange(256) * saturation
    cv2 = _cv2()
    tables = [np.clip(np.rint(t), 0, 255).astype(np.uint8) for t in (ht, st, vt)]
    tables[0] = (np.rint(ht).astype(np.int64) % 256).astype(np.uint8)
    if cv2 is not None:
        to_hsv = cv2.COLOR_BGR2HSV_FULL if order == "BGR" else cv2.COLOR_RGB2HSV_FULL
        back = cv2.COLOR_HSV2BGR_FULL if order == "BGR" else cv2.COLOR_HSV2RGB_FULL
        hsv = cv2.cvtColor(np.ascontiguousarray(image), to_hsv)
        hsv = cv2.LUT(hsv, np.stack(tables, axis=1).reshape(256, 1, 3))
        return cv2.cvtColor(hsv, back)
    from PIL import Image

    rgb = image if order == "RGB" else image[..., ::-1]
    hsv_a = np.asarray(Image.fromarray(np.ascontiguousarray(rgb)).convert("HSV")).copy()
    for c in range(3):
        hsv_a[..., c] = tables[c][hsv_a[..., c]]
    out = np.asarray(Image.fromarray(hsv_a, "HSV").convert("RGB"))
    return out if order == "RGB" else np.ascontiguousarray(out[..., ::-1])


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``sigma`` pixels (0: unchanged)."""
    if sigma <= 0:
        return image
    cv2 = _cv2()
    if cv2 is not None:
        return cv2.GaussianBlur(np.ascontiguousarray(image), (0, 0), sigma)
    from PIL import Image, ImageFilter

    im = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(im.filter(ImageFilter.GaussianBlur(radius=sigma)))


def add_noise(image: np.ndarray, std: float, seed: int, per_channel: bool,
              order: str = "RGB") -> np.ndarray:
    """Add Gaussian noise drawn from ``numpy.random.default_rng(seed)`` (drawn in RGB
    order, so the picture is the same whatever the channel order)."""
    if std <= 0:
        return image
    rng = np.random.default_rng(seed)
    shape = image.shape if per_channel or image.ndim == 2 else (*image.shape[:2], 1)
    noise = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
    if order == "BGR" and noise.ndim == 3 and noise.shape[2] == 3:
        noise = noise[..., ::-1]
    out = image.astype(np.float32) + noise
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def jpeg_roundtrip(image: np.ndarray, order: str, quality: int) -> np.ndarray:
    """The image after JPEG compression at ``quality``."""
    data = encode(image, order, ".jpg", quality)
    cv2 = _cv2()
    if cv2 is not None:
        flag = cv2.IMREAD_GRAYSCALE if image.ndim == 2 else cv2.IMREAD_COLOR
        out = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
        return out if image.ndim == 2 or order == "BGR" else np.ascontiguousarray(out[..., ::-1])
    from PIL import Image

    out = np.asarray(Image.open(io.BytesIO(data)))
    return out if image.ndim == 2 or order == "RGB" else np.ascontiguousarray(out[..., ::-1])


# -- Albumentations ---------------------------------------------------------------------


def _albumentations() -> Any:
    try:
        import albumentations
    except ImportError:
        raise MissingDependency("albumentations", "albumentations") from None
    return albumentations


@functools.lru_cache(maxsize=64)
def _cached_transform(name: str, params_json: bytes) -> Any:
    a = _albumentations()
    cls = getattr(a, name, None)
    if not isinstance(cls, type):
        raise OptionError("albumentations.transform", name,
                          "the name of an Albumentations transform class, such as CLAHE")
    if not issubclass(cls, a.ImageOnlyTransform):
        raise OptionError(
            "albumentations.transform", name,
            f"a pixel-level transform (ImageOnlyTransform); {name} changes geometry and "
            "cocokit has no exact equivalent for the annotations")
    params = msgspec.json.decode(params_json)
    try:
        with warnings.catch_warnings():
            # Albumentations only warns about unknown arguments; refuse them instead
            warnings.filterwarnings("error", message=".*not valid for transform.*")
            return cls(**params, p=1.0)
    except Exception as e:  # any refusal of the parameters is the user's to fix
        raise OptionError("albumentations.params", params,
                          f"parameters accepted by {name} ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None


def albumentations_transform(name: str, params: Mapping[str, Any]) -> Any:
    """An instance of Albumentations' ``name`` with ``params`` (validated, cached)."""
    try:
        key = msgspec.json.encode(dict(params), order="sorted")
    except (TypeError, msgspec.EncodeError):
        raise OptionError("albumentations.params", params, "JSON-like parameters") from None
    return _cached_transform(name, key)


def apply_albumentations(image: np.ndarray, order: str, name: str, params: Mapping[str, Any],
                         seed: int) -> np.ndarray:
    """Apply an Albumentations pixel transform with its own seed (never the global one)."""
    t = albumentations_transform(name, params)
    t.set_random_seed(seed)
    rgb = image if image.ndim == 2 or order == "RGB" else np.ascontiguousarray(image[..., ::-1])
    out = np.asarray(t(image=rgb)["image"])
    if out.dtype != np.uint8:
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if out.ndim == 3 and image.ndim == 2:
        out = out[..., 0]
    if out.ndim == 3 and order == "BGR":
        out = np.ascontiguousarray(out[..., ::-1])
    return out


def read_bytes(path: str | os.PathLike[str]) -> bytes:
    """The bytes of a file (a missing file raises InputError)."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(os.fspath(path), None, "image file not found") from None
