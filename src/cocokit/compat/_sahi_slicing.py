"""The dataset side of ``sahi.slicing``: tile windows, sliced annotations, tile files.

Windows follow SAHI's rule exactly (:func:`get_slice_bboxes`, :func:`get_auto_slice_params`),
so tiles and their file names are the ones SAHI makes. Annotations are cut by
:func:`cocokit.slicing.slice_annotations` (vectorized per image, built on
:mod:`cocokit.clipping`): polygons keep float coordinates and every piece, RLE masks are
cropped, boxes stay boxes, keypoints move with the tile, ``iscrowd`` and unknown keys
are kept.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..dataset import Dataset
from ..errors import InputError, OptionError, OutputError
from ..geometry import mask_api
from ..io.atomic import atomic_file
from ..io.coco import read_coco, to_dict, write_coco
from ..slicing import axis_windows, slice_annotations, tile_tables
from ._sahi_base import (
    CocoAnnotation,
    CocoImage,
    SahiTypeError,
    SahiValueError,
    load_store,
    slice_annotation_objects,
    xywh_windows,
)

__all__ = [
    "SliceImageResult",
    "SlicedImage",
    "annotation_inside_slice",
    "get_auto_slice_params",
    "get_slice_bboxes",
    "process_coco_annotations",
    "shift_bboxes",
    "shift_masks",
    "slice_annotation_objects",
    "slice_coco",
    "slice_image",
]

log = logging.getLogger("cocokit.compat.sahi")

_LOSSY = (".jpg", ".jpeg")
_GEOMETRY = ("bbox", "area", "segmentation", "keypoints", "num_keypoints")


# -- windows -----------------------------------------------------------------------------


def _axis_windows(length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """SAHI's windows ``(lo, hi)`` along one axis: :func:`cocokit.slicing.axis_windows`,
    the one grid of cocokit (start at 0, step ``size - overlap``, the first window that
    reaches the end moved back to end there)."""
    if length <= 0:
        return []
    if size < length and size - overlap <= 0:  # SAHI loops forever here
        raise SahiValueError("overlap", overlap, f"less than the slice size {size}")
    starts, n = axis_windows(length, size, overlap)
    return [(lo, lo + n) for lo in starts.tolist()]


def get_slice_bboxes(
    image_height: int,
    image_width: int,
    slice_height: int | None = None,
    slice_width: int | None = None,
    auto_slice_resolution: bool | None = True,
    overlap_height_ratio: float | None = 0.2,
    overlap_width_ratio: float | None = 0.2,
) -> list[list[int]]:
    """The slice windows ``[x_min, y_min, x_max, y_max]`` of an image, row by row, as SAHI.

    The overlap in pixels is ``int(ratio * slice size)``; windows step by ``size -
    overlap`` and the last one of a row or column is moved back to end at the image
    edge. Without slice sizes and with ``auto_slice_resolution``, sizes and overlaps
    come from :func:`get_auto_slice_params`.
    """
    if slice_height and slice_width:
        for name, ratio in (("overlap_height_ratio", overlap_height_ratio),
                            ("overlap_width_ratio", overlap_width_ratio)):
            if ratio is not None and ratio >= 1.0:
                raise SahiValueError(name, ratio, "less than 1.0 (Overlap ratio must be less "
                                     "than 1.0)")
        y_overlap = int((overlap_height_ratio if overlap_height_ratio is not None else 0.2)
                        * slice_height)
        x_overlap = int((overlap_width_ratio if overlap_width_ratio is not None else 0.2)
                        * slice_width)
    elif auto_slice_resolution:
        x_overlap, y_overlap, slice_width, slice_height = get_auto_slice_params(
            height=image_height, width=image_width)
    else:
        raise SahiValueError("slice_height/slice_width", (slice_height, slice_width),
                             "slice sizes, or auto_slice_resolution=True (Compute type is not "
                             "auto and slice width and height are not provided.)")
    ys = _axis_windows(int(image_height), int(slice_height), int(y_overlap))
    xs = _axis_windows(int(image_width), int(slice_width), int(x_overlap))
    return [[x0, y0, x1, y1] for y0, y1 in ys for x0, x1 in xs]


def get_auto_slice_params(height: int, width: int) -> tuple[int, int, int, int]:
    """``(x_overlap, y_overlap, slice_width, slice_height)`` for an image, as SAHI picks them.

    The resolution class comes from ``n``, the largest power of two below
    ``height * width`` (``2**n < h * w <= 2**(n+1)``): ``n <= 18`` low (one window, the
    whole image), ``19..20`` medium (split 1 x 2, overlap 0.8), ``21..23`` high (2 x 4,
    0.4), larger ultra-high (4 x 8, 0.4); the longer side gets the larger split.
    """
    resolution = int(height) * int(width)
    factor = (resolution - 1).bit_length() - 1 if resolution > 1 else -1
    if factor <= 18:
        split_rows = split_cols = 1
        ratio = 1.0
    else:
        slide, ratio = (1, 0.8) if factor < 21 else (2, 0.4) if factor < 24 else (4, 0.4)
        if width < height:      # vertical
            split_rows, split_cols = slide, slide * 2
        elif width > height:    # horizontal
            split_rows, split_cols = slide * 2, slide
        else:
            split_rows = split_cols = slide
    slice_height = int(height) // split_cols
    slice_width = int(width) // split_rows
    return int(slice_width * ratio), int(slice_height * ratio), slice_width, slice_height


def annotation_inside_slice(annotation: Mapping[str, Any], slice_bbox: Sequence[float]) -> bool:
    """True when the annotation's ``bbox`` overlaps the slice ``[x_min, y_min, x_max, y_max]``
    with a positive area (touching edges do not count)."""
    if "bbox" not in annotation or len(annotation["bbox"]) != 4:
        raise InputError(None, "annotation.bbox", "a box [x, y, width, height] is needed")
    left, top, width, height = annotation["bbox"]
    return not (left >= slice_bbox[2] or top >= slice_bbox[3]
                or left + width <= slice_bbox[0] or top + height <= slice_bbox[1])


# -- annotations -------------------------------------------------------------------------


def process_coco_annotations(coco_annotation_list: Sequence[CocoAnnotation],
                             slice_bbox: Sequence[int],
                             min_area_ratio: float) -> list[CocoAnnotation]:
    """The annotations cut to one slice ``[x_min, y_min, x_max, y_max]`` that keep at least
    ``min_area_ratio`` of their area."""
    return slice_annotation_objects(coco_annotation_list, [list(slice_bbox)], min_area_ratio)[0]


# -- results -----------------------------------------------------------------------------


class SlicedImage:
    """One slice: its pixels, its :class:`CocoImage` and its top-left corner ``[x, y]``."""

    def __init__(self, image: np.ndarray, coco_image: CocoImage,
                 starting_pixel: list[int]) -> None:
        """A slice."""
        self.image = image
        self.coco_image = coco_image
        self.starting_pixel = starting_pixel


class SliceImageResult:
    """The slices of one image (``sahi.slicing.SliceImageResult``)."""

    def __init__(self, original_image_size: list[int], image_dir: str | None = None,
                 original_image: np.ndarray | None = None) -> None:
        """An empty result for an image of ``original_image_size`` ``[height, width]``."""
        self.original_image_height = original_image_size[0]
        self.original_image_width = original_image_size[1]
        self.image_dir = image_dir
        self.original_image = original_image
        self._sliced_image_list: list[SlicedImage] = []

    def add_sliced_image(self, sliced_image: SlicedImage) -> None:
        """Add a slice."""
        if not isinstance(sliced_image, SlicedImage):
            raise SahiTypeError("sliced_image", type(sliced_image).__name__,
                                "a SlicedImage instance")
        self._sliced_image_list.append(sliced_image)

    @property
    def sliced_image_list(self) -> list[SlicedImage]:
        """The slices."""
        return self._sliced_image_list

    @property
    def images(self) -> list[np.ndarray]:
        """The pixels of each slice (views into the decoded image)."""
        return [s.image for s in self._sliced_image_list]

    @property
    def coco_images(self) -> list[CocoImage]:
        """The :class:`CocoImage` of each slice (with its annotations)."""
        return [s.coco_image for s in self._sliced_image_list]

    @property
    def starting_pixels(self) -> list[list[int]]:
        """The top-left corner ``[x, y]`` of each slice."""
        return [s.starting_pixel for s in self._sliced_image_list]

    @property
    def filenames(self) -> list[str]:
        """The file name of each slice."""
        return [s.coco_image.file_name for s in self._sliced_image_list]

    def _item(self, i: int) -> dict[str, Any]:
        s = self._sliced_image_list[i]
        return {"image": s.image, "coco_image": s.coco_image, "starting_pixel": s.starting_pixel,
                "filename": s.coco_image.file_name}

    def __getitem__(self, i: int | slice | list[int] | tuple[int, ...] | np.ndarray
                    ) -> dict[str, Any] | list[dict[str, Any]]:
        """A slice as a dict (``image``, ``coco_image``, ``starting_pixel``, ``filename``),
        or a list of them for a slice or a list of indices."""
        if isinstance(i, np.ndarray):
            i = i.tolist()
        if isinstance(i, (int, np.integer)):
            return self._item(int(i))
        if isinstance(i, slice):
            return [self._item(k) for k in range(*i.indices(len(self)))]
        if isinstance(i, (list, tuple)):
            return [self._item(int(k)) for k in i]
        raise SahiTypeError("index", type(i).__name__, "an int, a slice or a list of ints")

    def __len__(self) -> int:
        return len(self._sliced_image_list)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for k in range(len(self)):
            yield self._item(k)


# -- pixels ------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_pixel_limit() -> Iterator[Any]:
    """Pillow with its decompression-bomb limit lifted for this block only (restored)."""
    from PIL import Image

    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield Image
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _header_size(path: str, exif_fix: bool) -> tuple[int, int]:
    """(width, height) of the image as SAHI decodes it (EXIF quarter turns swap them)."""
    with _no_pixel_limit() as Image:
        try:
            with Image.open(path) as im:
                w, h = im.size
                if exif_fix and im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
        except FileNotFoundError:
            raise InputError(path, None, "image file not found") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise InputError(path, None, f"cannot read the image: {e}") from None
    return int(w), int(h)


def _open(path: str, exif_fix: bool) -> Any:
    """The decoded image, EXIF orientation applied when ``exif_fix``."""
    from PIL import ImageOps

    with _no_pixel_limit() as Image:
        try:
            img = Image.open(path)
            orientation = img.getexif().get(0x0112, 1)
            img.load()
        except FileNotFoundError:
            raise InputError(path, None, "image file not found") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise InputError(path, None, f"cannot read the image: {e}") from None
        if exif_fix and orientation in (2, 3, 4, 5, 6, 7, 8):
            img = ImageOps.exif_transpose(img)
    return img


def _format_of(suffix: str) -> str:
    from PIL import Image

    fmt = Image.registered_extensions().get(suffix.lower())
    if fmt is None:
        raise OptionError("out_ext", suffix, "an image file extension Pillow can write "
                          "(.png, .jpg, ...)")
    return str(fmt)


def _writable(img: Any, fmt: str) -> Any:
    """The tile in a mode ``fmt`` can hold: the source's mode where possible (grayscale,
    palette and alpha stay in PNG), else RGB (as SAHI writes every tile)."""
    mode = img.mode
    if fmt == "PNG" and mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16", "I"):
        return img
    if fmt == "JPEG" and mode in ("L", "RGB", "CMYK"):
        return img
    if fmt not in ("PNG", "JPEG") and mode in ("L", "RGB", "RGBA"):
        return img
    return img.convert("RGB")


def _save_tile(tile: Any, path: Path, fmt: str) -> None:
    try:
        with atomic_file(path, fsync=False) as f:
            try:
                _writable(tile, fmt).save(f, format=fmt)
            except (OSError, ValueError, KeyError):
                f.seek(0)
                f.truncate()
                tile.convert("RGB").save(f, format=fmt)
    except OutputError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise InputError(str(path), None, f"cannot write the slice as {fmt}: {e}") from None


def _write_tiles(img: Any, windows: Sequence[Sequence[int]], paths: Sequence[Path],
                 fmt: str) -> None:
    jobs = [(img.crop(tuple(int(v) for v in w)), p) for w, p in zip(windows, paths, strict=True)]
    if not jobs:
        return
    workers = max(1, min(32, (os.cpu_count() or 4) * 2, len(jobs)))
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        for f in [pool.submit(_save_tile, tile, p, fmt) for tile, p in jobs]:
            f.result()


# -- slice_image -------------------------------------------------------------------------


def _slice_suffix(image: Any, out_ext: str | None) -> str:
    """SAHI's tile extension: ``out_ext``; else the source's for an open PIL image with a
    lossless format; else ``.png`` (also for every image given as a path or array)."""
    if out_ext:
        return out_ext
    suffix = Path(str(getattr(image, "filename", "") or "")).suffix
    if not suffix or suffix.lower() in _LOSSY:
        return ".png"
    return suffix


def slice_image(
    image: str | os.PathLike[str] | Any,
    coco_annotation_list: Sequence[CocoAnnotation] | None = None,
    output_file_name: str | None = None,
    output_dir: str | os.PathLike[str] | None = None,
    slice_height: int | None = None,
    slice_width: int | None = None,
    overlap_height_ratio: float | None = 0.2,
    overlap_width_ratio: float | None = 0.2,
    auto_slice_resolution: bool | None = True,
    min_area_ratio: float | None = 0.1,
    out_ext: str | None = None,
    verbose: bool | None = False,
    exif_fix: bool = True,
) -> SliceImageResult:
    """Slice one image (a path, a PIL image or an RGB array) and its annotations.

    The windows and file names (``{output_file_name}_{x0}_{y0}_{x1}_{y1}{ext}``) are
    SAHI's. The slices' pixels are views into the decoded RGB image; with
    ``output_file_name`` and ``output_dir`` they are written as files (keeping the
    source's mode where the format allows). Annotations are cut as described in
    :func:`slice_annotation_objects`.
    """
    from PIL import Image as PILImage

    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    if isinstance(image, (str, os.PathLike)):
        pil = _open(os.fspath(image), exif_fix)
        arr = np.asarray(pil if pil.mode == "RGB" else pil.convert("RGB"))
    elif isinstance(image, PILImage.Image):
        pil = image
        arr = np.asarray(image)
    elif isinstance(image, np.ndarray):
        arr = image
        pil = None
    else:
        raise SahiTypeError("image", type(image).__name__, "a path, a PIL image or an array")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    if width == 0 or height == 0:
        raise SahiValueError("image", (width, height), "an image with pixels (invalid image "
                             "size for 'slice_image')")
    windows = get_slice_bboxes(height, width, slice_height, slice_width, auto_slice_resolution,
                               overlap_height_ratio, overlap_width_ratio)
    suffix = _slice_suffix(image, out_ext)
    mar = 0.1 if min_area_ratio is None else float(min_area_ratio)
    per_window = (slice_annotation_objects(list(coco_annotation_list), windows, mar)
                  if coco_annotation_list is not None else [[] for _ in windows])
    result = SliceImageResult([height, width], None if output_dir is None else str(output_dir),
                              arr)
    for (x0, y0, x1, y1), anns in zip(windows, per_window, strict=True):
        name = f"{output_file_name}_{x0}_{y0}_{x1}_{y1}{suffix}"
        ci = CocoImage(file_name=name, height=y1 - y0, width=x1 - x0)
        for a in anns:
            ci.add_annotation(a)
        result.add_sliced_image(SlicedImage(arr[y0:y1, x0:x1], ci, [x0, y0]))
    if output_file_name and output_dir:
        src = pil if pil is not None else PILImage.fromarray(arr)
        _write_tiles(src, windows, [Path(output_dir) / f for f in result.filenames],
                     _format_of(suffix))
    if verbose:
        log.info("Num slices: %d slice_height: %s slice_width: %s", len(result), slice_height,
                 slice_width)
    return result


# -- slice_coco --------------------------------------------------------------------------


def slice_coco(
    coco_annotation_file_path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    output_coco_annotation_file_name: str,
    output_dir: str | os.PathLike[str] | None = None,
    ignore_negative_samples: bool | None = False,
    slice_height: int | None = 512,
    slice_width: int | None = 512,
    overlap_height_ratio: float | None = 0.2,
    overlap_width_ratio: float | None = 0.2,
    min_area_ratio: float | None = 0.1,
    out_ext: str | None = None,
    verbose: bool | None = False,
    exif_fix: bool = True,
) -> tuple[dict[str, Any], str]:
    """Slice every image of a COCO file; returns ``(coco_dict, save_path)`` as SAHI.

    Tiles are SAHI's: the same windows (from each image's size as decoded, EXIF
    orientation applied with ``exif_fix``), file names
    ``{stem}_{index}_{x0}_{y0}_{x1}_{y1}{ext}`` (``ext``: ``out_ext`` or ``.png``), ids
    1..N in image then window order, annotation ids 1..M. With ``output_dir`` the tiles
    are written there and, with ``output_coco_annotation_file_name``, the JSON as
    ``{output_dir}/{name}_coco.json`` (atomically). Without ``output_dir`` nothing is
    written and an image file that is missing is sized from its record.

    Unlike SAHI: annotations keep RLE (cropped), ``iscrowd``, float polygon
    coordinates, keypoints and unknown keys; an annotation wholly inside a tile keeps
    its ``bbox`` and ``area`` values; top-level keys (``info``, ``licenses``) and the
    source image's keys are kept, and each tile records ``source_image_id``,
    ``source_file_name``, ``source_window`` and ``source_width``/``source_height``;
    with ``ignore_negative_samples`` the tiles left out of the JSON are not written
    either.
    """
    ds = read_coco(coco_annotation_file_path)
    store, _ = load_store(ds, None)
    mar = 0.1 if min_area_ratio is None else float(min_area_ratio)
    suffix = out_ext or ".png"
    fmt = _format_of(suffix) if output_dir is not None else ""
    if output_dir is not None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    images, anns = store.images, store.annotations
    img_cols: dict[str, list[Any]] = {"file_name": [], "width": [], "height": [], "extra": []}
    parts: list[tuple[np.ndarray, np.ndarray, Any]] = []  # source rows, tile ids, annotations
    n_written = 0
    for idx in range(len(store)):
        file_name = str(images.file_name[idx])
        path = os.path.join(os.fspath(image_dir), file_name)
        if output_dir is None and not os.path.isfile(path):
            w, h = int(images.width[idx]), int(images.height[idx])
        else:
            w, h = _header_size(path, exif_fix)
        windows = get_slice_bboxes(h, w, slice_height, slice_width, True,
                                   overlap_height_ratio, overlap_width_ratio)
        rows = np.arange(store.offsets[idx], store.offsets[idx + 1])
        cols = {k: v[rows] for k, v in anns.columns().items() if k in _GEOMETRY}
        ta = slice_annotations(cols, xywh_windows(np.asarray(windows)), mar, file=store.source,
                               ids=anns.id[rows])
        per_tile = np.bincount(ta.tile, minlength=len(windows))
        keep = per_tile > 0 if ignore_negative_samples else np.ones(len(windows), bool)
        stem = Path(file_name).stem
        names = [f"{stem}_{idx}_{x0}_{y0}_{x1}_{y1}{suffix}" for x0, y0, x1, y1 in windows]
        first_id = len(img_cols["file_name"]) + 1
        tile_ids = np.zeros(len(windows), np.int64)
        tile_ids[keep] = first_id + np.arange(int(keep.sum()))
        src_extra = images.extra[idx]
        for t in np.flatnonzero(keep).tolist():
            x0, y0, x1, y1 = windows[t]
            extra = dict(src_extra) if src_extra else {}
            extra["source_image_id"] = int(images.id[idx])
            extra["source_file_name"] = file_name
            extra["source_window"] = [x0, y0, x1 - x0, y1 - y0]
            extra["source_width"] = int(images.width[idx])
            extra["source_height"] = int(images.height[idx])
            img_cols["file_name"].append(names[t])
            img_cols["width"].append(x1 - x0)
            img_cols["height"].append(y1 - y0)
            img_cols["extra"].append(extra)
        if output_dir is not None and keep.any():
            img = _open(path, exif_fix)
            sel = np.flatnonzero(keep).tolist()
            _write_tiles(img, [windows[t] for t in sel],
                         [Path(output_dir) / names[t] for t in sel], fmt)
            n_written += len(sel)
            del img
        if len(ta):
            parts.append((rows[ta.source], tile_ids[ta.tile], ta))
        if verbose:
            log.info("%s: %d slice(s)", path, int(keep.sum()))

    n_tiles = len(img_cols["file_name"])
    tiles, tile_anns = tile_tables(anns, img_cols, parts)
    # annotations of tiles left out (negatives never have any)
    tile_anns = tile_anns.take(tile_anns.image_id > 0)
    out = Dataset(tiles, tile_anns, ds.categories, ds.extra, ds.key_order)
    coco_dict = to_dict(out, image_ids="keep", annotation_ids="keep")
    save_path = ""
    if output_coco_annotation_file_name and output_dir:
        save_path = str(Path(output_dir) / (output_coco_annotation_file_name + "_coco.json"))
        write_coco(out, save_path, image_ids="keep", annotation_ids="keep")
    log.debug("slice_coco: %d tiles, %d written", n_tiles, n_written)
    return coco_dict, save_path


# -- predictions on slices ---------------------------------------------------------------


def shift_bboxes(bboxes: Any, offset: Sequence[int]) -> Any:
    """Boxes ``[x1, y1, x2, y2]`` moved by ``offset`` ``(x, y)`` (``sahi.slicing.shift_bboxes``).

    Returns the kind it was given: a list of lists, a numpy array (its shape kept, one
    vectorized add) or a torch tensor (``new_tensor``, on the same device). As in SAHI,
    a negative coordinate is refused (:class:`SahiValueError`).
    """
    if not hasattr(bboxes, "__iter__"):
        raise SahiTypeError("bboxes", type(bboxes).__name__, "an iterable of [x1, y1, x2, y2]")
    dx, dy = offset[0], offset[1]
    torch_like = type(bboxes).__module__.split(".")[0] == "torch"
    arr = np.asarray(bboxes.tolist() if torch_like else bboxes)
    if arr.size == 0:
        arr = arr.reshape(0, 4)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise SahiValueError("bboxes", getattr(arr, "shape", None), "n boxes [x1, y1, x2, y2]")
    if (arr < 0).any():
        raise SahiValueError("bboxes", arr[(arr < 0).any(axis=1)][0].tolist(),
                             "4 non-negative numbers [minx, miny, maxx, maxy]")
    moved = arr + np.array([dx, dy, dx, dy])
    if isinstance(bboxes, np.ndarray):
        return moved
    if torch_like:
        return bboxes.new_tensor(moved.tolist())
    return moved.tolist()


def shift_masks(masks: Any, offset: Sequence[int], full_shape: Sequence[int]) -> Any:
    """Masks of a slice placed in the full image (``sahi.slicing.shift_masks``).

    ``masks`` holds, per object, a boolean (or 0/1) ``(h, w)`` mask of the slice, or
    COCO polygons ``[[x, y, ...], ...]`` in slice coordinates. Returns an ``(n, height,
    width)`` bool array for ``full_shape`` ``(height, width)``; ``None`` gives ``None``.

    A mask array is placed at ``offset`` (the part outside the image is cut off). SAHI
    0.12 reads a mask array's rows as polygons, which draws a few stray pixels; polygons
    are moved (clamped to the image, as SAHI does) and drawn by pycocotools, as COCO
    areas and evaluation draw them (SAHI uses OpenCV's ``fillPoly`` on rounded points,
    so boundary pixels may differ).
    """
    if masks is None:
        return None
    height, width = int(full_shape[0]), int(full_shape[1])
    dx, dy = int(offset[0]), int(offset[1])
    out = np.zeros((len(masks), height, width), bool)
    for k, mask in enumerate(masks):
        if isinstance(mask, np.ndarray) and mask.ndim == 2 and mask.dtype != object:
            h, w = mask.shape
            x0, y0 = max(dx, 0), max(dy, 0)
            x1, y1 = min(dx + w, width), min(dy + h, height)
            if x1 > x0 and y1 > y0:
                out[k, y0:y1, x0:x1] = mask[y0 - dy: y1 - dy, x0 - dx: x1 - dx] != 0
            continue
        rings = [np.asarray(r, np.float64).reshape(-1) for r in mask]
        moved = []
        for r in rings:
            if len(r) < 6:
                continue
            xy = r[: len(r) // 2 * 2].reshape(-1, 2) + np.array([dx, dy], np.float64)
            xy[:, 0] = np.minimum(xy[:, 0], width)
            xy[:, 1] = np.minimum(xy[:, 1], height)
            moved.append(xy.reshape(-1).tolist())
        if moved:
            mu = mask_api()
            out[k] = mu.decode(mu.merge(mu.frPyObjects(moved, height, width))).astype(bool)
    return out
