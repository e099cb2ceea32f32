"""Slice large images into overlapping tiles, with their annotations clipped to each tile.

Slicing is how detectors are trained on small objects: each tile is seen at full
resolution. :func:`slice_dataset` writes the tile images and returns the tiled dataset;
``cocokit slice`` is the command for it.

The grid (:func:`tile_grid`, :func:`axis_windows`)
    SAHI's grid, so ``cocokit slice``, :func:`slice_dataset` and
    :mod:`cocokit.compat.sahi` cut the same tiles. Along an axis of length ``L``
    with tile ``t`` and overlap ratio ``r``, neighbours overlap by
    ``o = int(r * t)`` pixels (rounded down, as SAHI does), so tiles step by
    ``s = t - o``: at ``t = 512, r = 0.2``, ``o = 102`` and ``s = 410``. Tiles start
    at ``0, s, 2s, ...``; the first one that reaches the edge is moved back to end
    there (no tile leaves the image, none is padded). That is
    ``n = 1 + ceil((L - t) / s)`` tiles when ``L > t``, else one tile of length
    ``L``; an image has ``n_x * n_y`` tiles, numbered row by row (y, then x).

Annotations (:func:`slice_annotations`, built on :mod:`cocokit.clipping`)
    An annotation goes into a tile when ``clipped measure / original measure >=
    min_area_ratio``, the measure being its polygon area (geometric, repaired with
    ``make_valid`` when invalid), its RLE pixel count, or, without a usable
    segmentation, its box area. A polygon cut into several pieces keeps every piece
    as parts of one annotation, with float coordinates. RLE masks are cropped and
    re-encoded (``counts`` a compressed string). Keypoints move with the tile; those
    outside get ``(0, 0, 0)`` and ``num_keypoints`` is recounted. Category,
    ``iscrowd`` and unknown keys are kept. An annotation that lies wholly inside a
    tile keeps its ``area`` and box values; one that is cut gets the box of its
    visible part and the area of that part (geometric for polygons, as COCO's
    polygon areas are; pixel count for RLE; ``w * h`` for boxes). Absent ``bbox`` or
    ``area`` stay absent (the writer computes them from the segmentation).

Tile images
    Each tile record has ``source_image_id``, ``source_file_name``,
    ``source_window`` (``[x, y, width, height]`` in the source image) and
    ``source_width``/``source_height`` (the source image's size) besides the source
    image's own extra keys (``license``, ``coco_url``, ...), so results on tiles can be
    mapped back. File names are ``{stem}_{x}_{y}_{w}_{h}.{ext}``, under the same
    sub-folders as the source. Tile and annotation ids are numbered from 1 in output
    order.

Pixels
    EXIF orientation is applied and annotations are taken to be in the oriented frame
    (as COCO tools do); the oriented size must equal the record's width and height.
    For JPEG output, images that JPEG cannot hold are converted once per image:
    palette, RGBA, CMYK and other colour modes become RGB, LA and 1-bit become L (alpha
    is dropped, as ``Image.convert`` does); 16-bit grayscale becomes 8-bit by keeping
    the high byte (``v >> 8``, no stretching, so every tile of an image is scaled
    alike); 32-bit float grayscale is clipped to 0..255. PNG output keeps the mode
    (palette, grayscale, RGBA, 16-bit) as it is. An ICC profile is carried over unless
    the mode had to change. Tiles are staged (:mod:`cocokit.io.staging`): written to a
    hidden folder beside the output folder and moved into it when slicing succeeds, so
    if slicing stops on an error or Ctrl-C, the output folder is as it was (on an
    object store, the tiles of this run are removed) and no COCO file is written (the
    CLI writes it last). Nothing is created when no tile is written.

Parallelism
    Each image is one job for a process pool: a pure function of (the image record,
    its annotations' geometry columns, the parameters) that reads one image, writes
    its tiles and returns the tiles' annotation columns. A worker holds one source
    image at a time, at most ``2 * workers`` jobs are in flight, and results are
    assembled in image order, so the output is the same whatever the number of
    workers. Workers are forked on Linux when this process runs one thread (fast, and
    no ``if __name__ == "__main__"`` guard needed); elsewhere they start from a fork
    server or a fresh interpreter, and a script that calls :func:`slice_dataset` with
    ``workers > 1`` needs the usual ``__main__`` guard. Workers keep a few of Pillow's
    freed memory blocks for the next image (``Image.core.set_blocks_max``), which
    saves the page faults of decoding each large image into fresh memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, overload

import msgspec
import numpy as np
import shapely

from .clipping import (
    clip_boxes,
    clip_keypoints,
    clip_polygons,
    crop_rle_many,
    polygon_geometries,
    rle_area,
    rle_bbox,
)
from .dataset import Annotations, Dataset, Images, object_array, plain
from .engine import Engine, JobFailure, retry_io, run_local, run_on_ray
from .errors import BadImagesError, InputError, OptionError, OutputError
from .geometry import RLE_KINDS, Polygons, parse_polygons, polygon_bboxes, segmentation_kinds
from .io import files
from .io.atomic import atomic_file, output_error, output_fault
from .io.staging import Staging, outside_set, staged

if TYPE_CHECKING:  # pragma: no cover
    from .io.stream import CocoStream

__all__ = [
    "SliceFormat",
    "SliceSummary",
    "TileAnnotations",
    "auto_slice_params",
    "axis_windows",
    "overlap_pixels",
    "slice_annotations",
    "slice_dataset",
    "tile_counts",
    "tile_grid",
]

SliceFormat = Literal["jpg", "png", "same"]
Progress = Callable[[int, int], None]

_JPEG_EXT = {".jpg", ".jpeg", ".jpe", ".jfif"}
_GEOMETRY_COLUMNS = (
    "bbox", "area", "segmentation", "segmentation_kind", "keypoints", "num_keypoints",
)


# -- the grid --------------------------------------------------------------------------


def _pair(value: Any, option: str, kind: type) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise OptionError(option, value, "one value or a pair (x, y)")
        return kind(value[0]), kind(value[1])
    return kind(value), kind(value)


def _check_size_overlap(size: Any, overlap: Any) -> tuple[tuple[int, int], tuple[float, float]]:
    try:
        tw, th = _pair(size, "size", int)
    except (TypeError, ValueError) as e:
        raise OptionError("size", size, "a positive integer or a pair of them") from e
    try:
        ox, oy = _pair(overlap, "overlap", float)
    except (TypeError, ValueError) as e:
        raise OptionError("overlap", overlap, "a number in [0, 1) or a pair of them") from e
    if tw < 1 or th < 1:
        raise OptionError("size", size, "a positive integer or a pair of them")
    if not (0.0 <= ox < 1.0 and 0.0 <= oy < 1.0):
        raise OptionError("overlap", overlap, "a number in [0, 1) or a pair of them")
    return (tw, th), (ox, oy)


def axis_windows(length: int, tile: int, overlap_px: int) -> tuple[np.ndarray, int]:
    """Tile starts along one axis and the tile length there: SAHI's rule.

    Starts step by ``tile - overlap_px`` from 0; the first tile that reaches
    ``length`` is moved back to end there. An axis no longer than the tile is one tile
    of length ``length``. ``overlap_px < tile`` (else :class:`OptionError`); a negative
    overlap leaves gaps between tiles, as it does in SAHI (:func:`tile_grid` refuses it).

    >>> starts, n = axis_windows(1000, 512, 102)  # step 410
    >>> starts.tolist(), n
    ([0, 410, 488], 512)
    """
    length, tile, overlap_px = int(length), int(tile), int(overlap_px)
    if length < 1 or tile < 1:
        raise OptionError("tile size", (length, tile), "a positive length and tile size")
    if length <= tile:
        return np.zeros(1, np.int64), length
    if overlap_px >= tile:
        raise OptionError("overlap", overlap_px, f"less than the tile ({tile} pixels)")
    step = tile - overlap_px
    n = 1 + -(-(length - tile) // step)  # 1 + ceil((length - tile) / step)
    starts = np.arange(n, dtype=np.int64) * step
    starts[-1] = length - tile
    return starts, tile


def overlap_pixels(tile: int, overlap: float) -> int:
    """The overlap in pixels of a ratio, as SAHI rounds it: ``int(overlap * tile)``."""
    return int(float(overlap) * int(tile))


def tile_grid(
    width: int, height: int, size: int | tuple[int, int] = 512,
    overlap: float | tuple[float, float] = 0.2,
) -> np.ndarray:
    """The tile windows of an image, as an (n, 4) int64 array of ``[x, y, w, h]``.

    ``size`` is one side or ``(width, height)``; ``overlap`` the share of a tile that
    overlaps its neighbour, one value or ``(x, y)``, in ``[0, 1)``. See the module
    docstring for the formula. Tiles are ordered row by row.

    >>> tile_grid(900, 500, 512, 0.2).tolist()  # x: 0, then 388 = 900 - 512; one row
    [[0, 0, 512, 500], [388, 0, 512, 500]]
    >>> tile_grid(2000, 512, 512, 0.2)[:, 0].tolist()  # step 512 - int(0.2 * 512) = 410
    [0, 410, 820, 1230, 1488]
    """
    (tw, th), (ox, oy) = _check_size_overlap(size, overlap)
    if int(width) < 1 or int(height) < 1:
        raise OptionError("image size", (width, height), "a positive width and height")
    xs, w = axis_windows(int(width), tw, overlap_pixels(tw, ox))
    ys, h = axis_windows(int(height), th, overlap_pixels(th, oy))
    gx, gy = np.meshgrid(xs, ys)  # rows of y, columns of x
    n = gx.size
    return np.stack(
        [gx.ravel(), gy.ravel(), np.full(n, w, np.int64), np.full(n, h, np.int64)], axis=1
    )


_AUTO_SIDES = ((1024, 512), (2048, 640), (4096, 800), (8192, 1024))


def auto_slice_params(width: int, height: int) -> tuple[tuple[int, int], tuple[float, float]]:
    """Tile size and overlap for an image of this resolution (``--auto``).

    The tile grows slowly with the image's long side ``L``, so objects stay near
    native resolution while very large images do not explode into thousands of
    tiles: ``L <= 1024``: 512; ``L <= 2048``: 640; ``L <= 4096``: 800; ``L <= 8192``:
    1024; larger: 1280. Tiles are square, clamped to the image (an image smaller than
    the tile is one tile); overlap is 0.2 both ways. Returns ``((w, h), (ox, oy))``.
    """
    long_side = max(int(width), int(height))
    side = next((s for limit, s in _AUTO_SIDES if long_side <= limit), 1280)
    return (min(side, int(width)), min(side, int(height))), (0.2, 0.2)


def tile_counts(
    widths: Any, heights: Any, size: int | tuple[int, int] = 512,
    overlap: float | tuple[float, float] = 0.2, auto: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """How many tiles :func:`tile_grid` cuts each image into, and their pixels, without
    building the windows: (tiles per image, pixels of the tiles of each image), int64.

    ``auto`` takes size and overlap per image from :func:`auto_slice_params`; sides
    below 1 count as 1. Used to check the size of a run before it starts.

    >>> [a.tolist() for a in tile_counts([900, 2000], [500, 512], 512, 0.2)]
    [[2, 5], [512000, 1310720]]
    """
    w = np.maximum(np.asarray(widths, np.int64).reshape(-1), 1)
    h = np.maximum(np.asarray(heights, np.int64).reshape(-1), 1)
    if auto:
        long_side = np.maximum(w, h)
        side = np.full(len(w), 1280, np.int64)
        for limit, s in reversed(_AUTO_SIDES):
            side[long_side <= limit] = s
        tw, th = np.minimum(side, w), np.minimum(side, h)
        ox = oy = 0.2
    else:
        (sw, sh), (ox, oy) = _check_size_overlap(size, overlap)
        tw, th = np.full(len(w), sw, np.int64), np.full(len(h), sh, np.int64)

    def axis(length: np.ndarray, tile: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray]:
        step = tile - (ratio * tile).astype(np.int64)  # overlap_pixels, for each image
        n = np.where(length <= tile, 1, 1 + -(-(length - tile) // np.maximum(step, 1)))
        return n, np.minimum(length, tile)

    nx, lx = axis(w, tw, float(ox))
    ny, ly = axis(h, th, float(oy))
    tiles = nx * ny
    return tiles, tiles * lx * ly


# -- annotations of the tiles of one image ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class TileAnnotations:
    """The annotations of the tiles of one image, as columns (one row per kept piece).

    ``tile`` is the tile index (row of the window array), ``source`` the index of the
    annotation among those given; geometry is in tile coordinates. Rows are ordered by
    tile, then by source annotation. ``bbox``/``area`` are NaN and ``num_keypoints`` -1
    where the source had none; ``segmentation`` and ``keypoints`` are Python values
    (or the source's value where it had no geometry to clip).
    """

    tile: np.ndarray
    source: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    segmentation: np.ndarray
    keypoints: np.ndarray
    num_keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.tile)


def _numbers(values: np.ndarray) -> list[Any]:
    """Floats as JSON numbers, integral ones as ints (COCO writes keypoints as ints)."""
    return [int(v) if v.is_integer() else v for v in values.tolist()]


def _overlaps(ext: np.ndarray, win: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """(n, t) mask: extent i overlaps window j (with positive area, or touches if closed)."""
    x0, y0, x1, y1 = (ext[:, k : k + 1] for k in range(4))
    wx0, wy0, wx1, wy1 = (win[None, :, k] for k in range(4))
    with np.errstate(invalid="ignore"):
        open_ = (x0 < wx1) & (x1 > wx0) & (y0 < wy1) & (y1 > wy0)
        shut = (x0 <= wx1) & (x1 >= wx0) & (y0 <= wy1) & (y1 >= wy0)
    return np.where(closed[:, None], shut, open_)


def slice_annotations(
    columns: dict[str, np.ndarray], windows_xywh: np.ndarray, min_area_ratio: float = 0.1,
    *, file: str | None = None, ids: np.ndarray | None = None,
) -> TileAnnotations:
    """Clip the annotations of one image to its tile windows.

    ``columns`` holds the geometry columns of the image's annotations (``bbox``,
    ``area``, ``segmentation``, ``keypoints``, ``num_keypoints``, as in
    :class:`~cocokit.dataset.Annotations`); ``windows_xywh`` the tiles (see
    :func:`tile_grid`). A pure function: nothing is read or written. ``file`` and
    ``ids`` (annotation ids) only name things in error messages.
    """
    if not 0.0 <= float(min_area_ratio) <= 1.0:
        raise OptionError("min_area_ratio", min_area_ratio, "a number in [0, 1]")
    bbox = np.asarray(columns["bbox"], np.float64).reshape(-1, 4)
    area = np.asarray(columns["area"], np.float64)
    seg = columns["segmentation"]
    kps = columns["keypoints"]
    nkp = np.asarray(columns["num_keypoints"], np.int64)
    n = len(bbox)
    wins = np.asarray(windows_xywh, np.int64).reshape(-1, 4)
    win = np.stack(
        [wins[:, 0], wins[:, 1], wins[:, 0] + wins[:, 2], wins[:, 1] + wins[:, 3]], axis=1
    ).astype(np.float64)
    kinds = columns.get("segmentation_kind")
    if kinds is None:
        kinds = segmentation_kinds(seg)

    # extent (xyxy) and measure of every annotation, by the geometry that decides
    ext = np.stack([bbox[:, 0], bbox[:, 1], bbox[:, 0] + bbox[:, 2], bbox[:, 1] + bbox[:, 3]],
                   axis=1) if n else np.zeros((0, 4))
    measure = bbox[:, 2] * bbox[:, 3]
    mode = np.where(np.isnan(bbox[:, 0]), 0, 3).astype(np.int8)  # 0 none, 1 poly, 2 rle, 3 box
    poly_rows = np.flatnonzero(kinds == 1)
    try:
        polys = parse_polygons(seg, poly_rows)
    except (ValueError, msgspec.DecodeError) as e:
        raise InputError(file, "annotations", f"unreadable polygon: {e}") from e
    poly_of = np.full(n, -1, np.int64)
    poly_of[poly_rows] = np.arange(len(poly_rows))
    geoms = polygon_geometries(polys)
    if len(poly_rows):
        p_area = np.asarray(shapely.area(geoms), np.float64)
        p_box = polygon_bboxes(polys)
        good = p_area > 0
        r = poly_rows[good]
        mode[r] = 1
        measure[r] = p_area[good]
        b = p_box[good]
        ext[r] = np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    rles: dict[int, dict[str, Any]] = {}
    for i in np.flatnonzero(np.isin(kinds, RLE_KINDS)).tolist():
        rle = plain(seg[i])
        try:
            px = rle_area(rle)
            rb = rle_bbox(rle)
        except (KeyError, TypeError, ValueError) as e:
            aid = int(ids[i]) if ids is not None else i
            raise InputError(file, f"annotation {aid}.segmentation", f"unreadable RLE: {e}") from e
        rles[i] = rle
        if px > 0:
            mode[i] = 2
            measure[i] = px
            ext[i] = [rb[0], rb[1], rb[0] + rb[2], rb[1] + rb[3]]
    # keypoint-only annotations: placed by their labeled keypoints
    kp_arrays: dict[int, np.ndarray] = {}
    for i, kp in enumerate(kps):
        if kp is not None:
            arr = np.asarray(plain(kp), np.float64).reshape(-1, 3)
            kp_arrays[i] = arr
            if mode[i] == 0 and (arr[:, 2] > 0).any():
                lab = arr[arr[:, 2] > 0]
                ext[i] = [lab[:, 0].min(), lab[:, 1].min(), lab[:, 0].max(), lab[:, 1].max()]
                mode[i] = 3
                measure[i] = 0.0
    measure = np.where(mode == 0, np.nan, measure)
    degenerate = (mode == 3) & ~(measure > 0)

    cand = _overlaps(ext, win, degenerate) & (mode > 0)[:, None]
    ann_idx, tile_idx = np.nonzero(cand)  # sorted by annotation, then tile
    p = len(ann_idx)
    clipped = np.zeros(p)
    new_box = np.full((p, 4), np.nan)
    new_area = area[ann_idx].copy()
    new_seg = object_array([seg[i] for i in ann_idx.tolist()])
    pw = win[tile_idx]
    origin = pw[:, :2]

    src_box = bbox[ann_idx]
    has_box = ~np.isnan(src_box[:, 0])
    cb = clip_boxes(src_box, pw)
    box_inside = has_box & (src_box[:, 0] >= pw[:, 0]) & (src_box[:, 1] >= pw[:, 1]) & (
        src_box[:, 0] + src_box[:, 2] <= pw[:, 2]) & (src_box[:, 1] + src_box[:, 3] <= pw[:, 3])
    new_box[has_box] = cb[has_box]

    # boxes (and degenerate annotations) measure by the clipped box
    is_box = mode[ann_idx] == 3
    clipped[is_box] = cb[is_box, 2] * cb[is_box, 3]

    # polygons: every polygon row gets its pieces (shifted) whatever its mode
    is_poly = kinds[ann_idx] == 1
    piece_of = np.full(p, -1, np.int64)  # pair -> entry of `pieces`
    pieces = Polygons.from_rings([])
    if is_poly.any():
        k = np.flatnonzero(is_poly)
        pieces, piece_area = clip_polygons(polys, poly_of[ann_idx[k]], pw[k], geometries=geoms)
        pb = polygon_bboxes(pieces)
        pe, w = ext[ann_idx[k]], pw[k]
        inside = (pe[:, 0] >= w[:, 0]) & (pe[:, 1] >= w[:, 1]) & (pe[:, 2] <= w[:, 2]) & (
            pe[:, 3] <= w[:, 3])
        piece_of[k] = np.arange(len(k))
        by_poly = mode[ann_idx[k]] == 1
        clipped[k[by_poly]] = piece_area[by_poly]
        cut_poly = by_poly & ~inside
        kc = k[cut_poly]
        # a cut polygon: box of the visible part, geometric area of it
        keep_box = has_box[kc]
        new_box[kc[keep_box]] = pb[cut_poly][keep_box]
        new_area[kc] = np.where(np.isnan(area[ann_idx[kc]]), np.nan, piece_area[cut_poly])

    # RLE: crop each mask once per candidate tile
    is_rle = np.flatnonzero(mode[ann_idx] == 2)
    if len(is_rle):
        for i in np.unique(ann_idx[is_rle]).tolist():
            rows = is_rle[ann_idx[is_rle] == i]
            rle = rles[i]
            crops = crop_rle_many(rle, pw[rows])
            for row, crop in zip(rows.tolist(), crops, strict=True):
                px = rle_area(crop)
                clipped[row] = px
                new_seg[row] = crop
                if px != measure[i]:  # cut
                    rb = rle_bbox(crop)
                    if has_box[row]:
                        new_box[row] = rb + np.array([origin[row, 0], origin[row, 1], 0, 0])
                    if not np.isnan(area[i]):
                        new_area[row] = px
    # RLE rows measured by their box (empty masks) still need their mask cropped
    other_rle = np.flatnonzero((mode[ann_idx] != 2) & np.isin(kinds[ann_idx], (2, 3)))
    for row in other_rle.tolist():
        new_seg[row] = crop_rle_many(rles[int(ann_idx[row])], pw[row : row + 1])[0]

    # boxes that were cut: area of the clipped box
    box_cut = is_box & has_box & ~box_inside
    new_area[box_cut] = np.where(np.isnan(area[ann_idx[box_cut]]), np.nan,
                                 cb[box_cut, 2] * cb[box_cut, 3])

    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = clipped / measure[ann_idx]
    keep = (clipped > 0) & (ratio >= float(min_area_ratio) - 1e-12)
    keep |= degenerate[ann_idx]

    # order by tile, then annotation
    order = np.lexsort((ann_idx, tile_idx))
    order = order[keep[order]]
    a_sel, t_sel = ann_idx[order], tile_idx[order]
    box = new_box[order]
    box[:, 0] -= pw[order, 0]
    box[:, 1] -= pw[order, 1]
    seg_out = new_seg[order]
    for row, pair in enumerate(order.tolist()):  # polygon pieces, shifted into the tile
        j = int(piece_of[pair])
        if j >= 0:
            seg_out[row] = [(r - origin[pair]).ravel().tolist() for r in pieces.rings(j)]

    out_kp = np.empty(len(order), object)
    out_nkp = np.full(len(order), -1, np.int64)
    for i in np.unique(a_sel).tolist():
        if i not in kp_arrays:
            continue
        rows = np.flatnonzero(a_sel == i)
        arr = kp_arrays[i]
        moved = clip_keypoints(np.broadcast_to(arr, (len(rows), *arr.shape)), win[t_sel[rows]])
        for row, m in zip(rows.tolist(), moved, strict=True):
            out_kp[row] = _numbers(m.ravel())
            if nkp[i] >= 0:
                out_nkp[row] = int(np.count_nonzero(m[:, 2] > 0))
    out_nkp = np.where((nkp[a_sel] >= 0) & (out_nkp < 0), nkp[a_sel], out_nkp)

    return TileAnnotations(
        tile=t_sel.astype(np.int64),
        source=a_sel.astype(np.int64),
        bbox=box,
        area=new_area[order],
        segmentation=seg_out,
        keypoints=out_kp,
        num_keypoints=out_nkp,
    )


# -- pixels ----------------------------------------------------------------------------


def _pil() -> Any:
    from PIL import Image, ImageOps

    return Image, ImageOps


def _open_image(path: str, width: int, height: int, data: bytes | None = None) -> Any:
    """The image at ``path`` (or its bytes ``data``), decoded, EXIF orientation applied,
    size checked. A local file is opened directly; a URL is fetched through fsspec
    first, and an error fetching it (other than "not found") is raised as it is, for
    the caller to retry."""
    Image, ImageOps = _pil()
    if data is None and files.local_path(path) is None:
        data = files.read_bytes(path)
    source: Any = io.BytesIO(data) if data is not None else path
    # the record's size is known: allow it past Pillow's decompression-bomb guard (big
    # aerial images are what slicing is for), restoring the limit afterwards
    limit = Image.MAX_IMAGE_PIXELS
    try:
        if limit is not None:
            Image.MAX_IMAGE_PIXELS = max(limit, width * height)
        img = Image.open(source)
        orientation = img.getexif().get(0x0112, 1)
        img.load()
    except FileNotFoundError as e:
        raise InputError(str(path), None, "image file not found") from e
    except IsADirectoryError as e:
        raise InputError(str(path), None, "is a folder, not an image file") from e
    except (MemoryError, RecursionError):
        raise
    except Exception as e:  # a broken file makes Pillow raise many kinds of error
        raise InputError(str(path), None, f"cannot read image: {e}") from e
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    if orientation in (2, 3, 4, 5, 6, 7, 8):
        img = ImageOps.exif_transpose(img)
    if img.size != (width, height):
        raise InputError(
            str(path), None,
            f"image is {img.size[0]}x{img.size[1]} (after EXIF orientation) but its record "
            f"says {width}x{height}",
        )
    return img


def _pillow_format(ext: str, src_format: str | None) -> str:
    e = ext.lower()
    if e in _JPEG_EXT:
        return "JPEG"
    if e == ".png":
        return "PNG"
    Image, _ = _pil()
    fmt = Image.registered_extensions().get(e)
    return str(fmt or src_format or "PNG")


def _for_format(img: Any, fmt: str) -> Any:
    """Convert once per image to a mode ``fmt`` can hold (see the module docstring)."""
    Image, _ = _pil()
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        if fmt in ("PNG", "TIFF"):
            return img
        a = np.asarray(img).astype(np.int64)
        return Image.fromarray(np.clip(a >> 8, 0, 255).astype(np.uint8), "L")
    if mode == "F":
        if fmt == "TIFF":
            return img
        a = np.asarray(img, np.float64)
        return Image.fromarray(np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8), "L")
    if fmt == "JPEG":
        if mode in ("RGB", "L"):
            return img
        if mode in ("1", "LA", "La"):
            return img.convert("L")
        return img.convert("RGB")
    if fmt == "PNG":
        if mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
            return img
        return img.convert("RGBA" if "A" in mode else "RGB")
    if mode in ("L", "RGB", "RGBA"):
        return img
    return img.convert("RGBA" if "A" in mode or "transparency" in img.info else "RGB")


def _save_tile(tile: Any, path: str, fmt: str, quality: int, icc: bytes | None,
               out: list[tuple[str, bytes]] | None = None) -> None:
    """Write one tile, or encode it and append ``(path, bytes)`` to ``out`` for the
    caller to write (a filesystem the worker cannot see). A URL is written through
    fsspec in one request. A local file already there (an earlier run's tile, which an earlier COCO
    file may list) is replaced atomically (:func:`cocokit.io.atomic.atomic_file`). A new
    file is written in place, which saves a rename per tile (about 8 % of the time):
    if that is interrupted, the partial file is new, no COCO file lists it, and the
    next run replaces it."""
    options: dict[str, Any] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if icc and tile.mode in ("RGB", "RGBA", "L", "CMYK", "P"):
        options["icc_profile"] = icc
    if out is not None or files.local_path(path) is None:
        buf = io.BytesIO()
        try:
            tile.save(buf, format=fmt, **options)
        except (OSError, ValueError, KeyError) as e:
            raise InputError(path, None, f"cannot write tile as {fmt}: {e}") from e
        if out is not None:
            out.append((path, buf.getvalue()))
        else:
            files.write_bytes(path, buf.getvalue())
        return
    try:
        if os.path.lexists(path):
            with atomic_file(path, fsync=False, tidy=False) as f:
                tile.save(f, format=fmt, **options)
        else:
            try:
                tile.save(path, format=fmt, **options)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                raise
    except OutputError:
        raise
    except OSError as e:
        if output_fault(e, path):  # the file system failed (disk full...): the run fails
            raise output_error(path, e) from None
        raise InputError(path, None, f"cannot write tile as {fmt}: {e}") from e
    except (ValueError, KeyError) as e:  # the encoder refused these pixels
        raise InputError(path, None, f"cannot write tile as {fmt}: {e}") from e


# -- one image: the job a worker runs ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Params:
    min_area_ratio: float
    keep_empty: bool
    format: str
    quality: int
    out_dir: str
    return_tiles: bool = False  # encode tiles and return them: the caller writes them


@dataclasses.dataclass(frozen=True)
class _Job:
    index: int
    source: str
    width: int
    height: int
    size: tuple[int, int]
    overlap: tuple[float, float]
    stem: str
    ext: str
    columns: dict[str, np.ndarray]
    ids: np.ndarray
    data: bytes | None = None  # the source file, read by the caller (memory://)


@dataclasses.dataclass(frozen=True)
class _Result:
    index: int
    windows: np.ndarray
    written: np.ndarray
    names: list[str]
    annotations: TileAnnotations | None
    error: tuple[str | None, str | None, str] | None = None
    tiles: list[tuple[str, bytes]] | None = None  # with return_tiles: (path, encoded)


def _tile_name(stem: str, window: np.ndarray, ext: str) -> str:
    x, y, w, h = (int(v) for v in window)
    return f"{stem}_{x}_{y}_{w}_{h}{ext}"


@dataclasses.dataclass(frozen=True)
class _TileLocations:
    """The tile files one image may write, listed when iterated (a failed run on a URL
    output removes them; see :class:`~cocokit.io.staging.Staging`)."""

    out_dir: str
    stem: str
    ext: str
    width: int
    height: int
    size: tuple[int, int]
    overlap: tuple[float, float]

    def __iter__(self) -> Iterator[str]:
        for w in tile_grid(self.width, self.height, self.size, self.overlap):
            yield files.join(self.out_dir, _tile_name(self.stem, w, self.ext))


def _failed(index: int, file: str | None, path: str | None, message: str) -> _Result:
    return _Result(index, np.zeros((0, 4), np.int64), np.zeros(0, bool), [], None,
                   (file, path, message))


def _run(job: _Job, params: _Params) -> _Result:
    """Slice one image: annotations, then pixels. Errors come back as data (picklable).

    A missing or undecodable image fails at once; any other I/O error is tried again
    (:func:`~cocokit.engine.retry_io`) before the image is reported as failed. An
    :class:`~cocokit.errors.OutputError` (the output disk is full...) is no image's
    failure: it is raised, and stops the run.
    """
    try:
        return retry_io(_slice_one, job, params, file=job.source)
    except OutputError:
        raise
    except InputError as e:
        return _failed(job.index, e.file, e.path, e.message)


def _slice_one(job: _Job, params: _Params) -> _Result:
    windows = tile_grid(job.width, job.height, job.size, job.overlap)
    anns = slice_annotations(job.columns, windows, params.min_area_ratio, file=job.source,
                             ids=job.ids)
    if params.keep_empty:
        written = np.ones(len(windows), bool)
    else:
        written = np.zeros(len(windows), bool)
        written[anns.tile] = True
    names = [_tile_name(job.stem, w, job.ext) for w in windows]
    tiles: list[tuple[str, bytes]] | None = [] if params.return_tiles else None
    if written.any():
        img = _open_image(job.source, job.width, job.height, job.data)
        fmt = _pillow_format(job.ext, img.format)
        icc = img.info.get("icc_profile")
        mode = img.mode
        img = _for_format(img, fmt)
        if img.mode != mode:  # the profile describes the old colour space
            icc = None
        out = params.out_dir
        if tiles is None and files.local_path(out) is not None:
            folder = os.path.dirname(os.path.join(out, job.stem))
            files.makedirs(folder)
        for t in np.flatnonzero(written).tolist():
            x, y, w, h = (int(v) for v in windows[t])
            _save_tile(img.crop((x, y, x + w, y + h)), files.join(out, names[t]), fmt,
                       params.quality, icc, tiles)
        del img
    return _Result(job.index, windows, written, names, anns, tiles=tiles)


def _run_on_worker(job: _Job, params: _Params) -> _Result:
    """:func:`_run` in a Ray worker, set up as a pool worker is (its Pillow block cache)."""
    _init_worker()
    return _run(job, params)


# -- the dataset -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SliceSummary:
    """What :func:`slice_dataset` did.

    ``images``: source images sliced; ``tiles``: tile images written (and recorded);
    ``annotations``: tile annotations; ``empty_tiles_dropped``: tiles left out for
    having no annotation (``keep_empty=False``); ``skipped``: ``(path, reason)`` of the
    images left out with ``skip_missing``; ``unplaced_annotations``: source annotations
    with no box, segmentation or labeled keypoint, which no tile can hold;
    ``warnings``: those of the COCO file a streamed :func:`slice_dataset` wrote
    (:attr:`cocokit.io.coco.ExportSummary.warnings`; :func:`slice_dataset` writes none).
    """

    images: int
    tiles: int
    annotations: int
    empty_tiles_dropped: int
    skipped: tuple[tuple[str, str], ...]
    unplaced_annotations: int
    warnings: tuple[str, ...] = ()


def _stem(file_name: str) -> str:
    p = PurePosixPath(file_name.replace("\\", "/"))
    parts = [s for s in p.parts if s not in ("", ".", "/")]
    if p.is_absolute() or ".." in parts or not parts:
        return PurePosixPath(p.name or "image").stem
    rel = PurePosixPath(*parts)
    return str(rel.with_suffix("")) if rel.suffix else str(rel)


def _out_ext(file_name: str, fmt: str) -> str:
    if fmt == "jpg":
        return ".jpg"
    if fmt == "png":
        return ".png"
    suffix = PurePosixPath(file_name).suffix
    return suffix if suffix else ".png"


# Pillow frees image memory to the OS at once unless told to keep some blocks (16 MB
# each by default): then every decoded image faults its pages in anew, which cost about
# a fifth of the CPU time of slicing 4000x3000 JPEGs. Keeping a few blocks for reuse
# removes most of that, at the price of holding up to this many blocks per worker.
_PIL_BLOCKS = 8


def _set_blocks_max(n: int | None) -> int | None:
    """Set Pillow's cache of free memory blocks; returns the old value (None: unknown)."""
    Image, _ = _pil()
    core = Image.core
    if not (hasattr(core, "get_blocks_max") and hasattr(core, "set_blocks_max")):
        return None
    old = int(core.get_blocks_max())
    if n is not None:
        core.set_blocks_max(n)
    return old


def _init_worker() -> None:
    """Set up a worker process of the pool (its Pillow block cache)."""
    old = _set_blocks_max(None)
    if old is not None and old < _PIL_BLOCKS:
        _set_blocks_max(_PIL_BLOCKS)


@contextlib.contextmanager
def _pil_block_cache() -> Iterator[None]:
    """The block cache while slicing in this process, restored after (no lasting change)."""
    old = _set_blocks_max(None)
    if old is None or old >= _PIL_BLOCKS:
        yield
        return
    _set_blocks_max(_PIL_BLOCKS)
    try:
        yield
    finally:
        _set_blocks_max(old)


def _cpu_count() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@overload
def slice_dataset(
    source: Dataset,
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | Staging,
    *,
    size: int | tuple[int, int] = ...,
    overlap: float | tuple[float, float] = ...,
    auto: bool = ...,
    min_area_ratio: float = ...,
    keep_empty: bool = ...,
    format: SliceFormat = ...,
    quality: int = ...,
    workers: int | None = ...,
    skip_bad_images: bool = ...,
    progress: Progress | None = ...,
    engine: Engine = ...,
    address: str | None = ...,
    skip_missing: bool | None = ...,
    json_path: None = ...,
    images_per_chunk: int | None = ...,
) -> tuple[Dataset, SliceSummary]: ...


@overload
def slice_dataset(
    source: CocoStream,
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    size: int | tuple[int, int] = ...,
    overlap: float | tuple[float, float] = ...,
    auto: bool = ...,
    min_area_ratio: float = ...,
    keep_empty: bool = ...,
    format: SliceFormat = ...,
    quality: int = ...,
    workers: int | None = ...,
    skip_bad_images: bool = ...,
    progress: Progress | None = ...,
    engine: Engine = ...,
    address: str | None = ...,
    skip_missing: bool | None = ...,
    json_path: str | os.PathLike[str] | None = ...,
    images_per_chunk: int | None = ...,
) -> SliceSummary: ...


def slice_dataset(
    source: Dataset | CocoStream,
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | Staging,
    *,
    size: int | tuple[int, int] = 512,
    overlap: float | tuple[float, float] = 0.2,
    auto: bool = False,
    min_area_ratio: float = 0.1,
    keep_empty: bool = True,
    format: SliceFormat = "jpg",
    quality: int = 95,
    workers: int | None = None,
    skip_bad_images: bool = False,
    progress: Progress | None = None,
    engine: Engine = "local",
    address: str | None = None,
    skip_missing: bool | None = None,
    json_path: str | os.PathLike[str] | None = None,
    images_per_chunk: int | None = None,
) -> tuple[Dataset, SliceSummary] | SliceSummary:
    """Cut every image of ``source`` into tiles, write them to ``out_dir``; return the
    tiled dataset (a loaded dataset) or write its COCO file (a streamed file).

    ``source`` is a loaded :class:`~cocokit.Dataset` (returns ``(tiled, summary)``), or
    a :class:`~cocokit.io.stream.CocoStream` of any size, sliced in bounded memory:
    the file is read in chunks of ``images_per_chunk`` images
    (:meth:`~cocokit.io.stream.CocoStream.datasets`), each chunk is sliced as a loaded
    dataset is, and its tiles are handed to a :class:`~cocokit.io.parts.PartWriter`,
    which numbers them on and writes ``json_path`` (default ``out_dir/<file name>``) at
    the end, atomically; returns the summary. That file is byte for byte what the
    loaded dataset's tiles saved with ids kept would be. Failed images are collected
    over all chunks. Memory holds one chunk of images with their annotations and tiles.
    The tiles of every chunk (and ``json_path`` when it lies in ``out_dir``) are staged
    as one (:mod:`cocokit.io.staging`): a failed run leaves ``out_dir`` as it was.

    ``image_dir`` is the folder the ``file_name`` of each image is relative to; tiles are
    written to ``out_dir`` and their ``file_name`` is relative to it. The tiles are
    staged (:mod:`cocokit.io.staging`): written to a hidden folder beside ``out_dir``
    and moved into it when slicing succeeds; on an error (or Ctrl-C) they are removed
    and ``out_dir`` is as it was. ``out_dir`` is only created when a tile is written.
    It may also be an open :class:`~cocokit.io.staging.Staging`, which the caller
    commits (as the streamed path does for all its chunks; a loaded dataset only).
    Both may be local paths or fsspec URLs (``s3://bucket/train``, ``gs://...``,
    ``memory://...``; see :mod:`cocokit.io.files`).
    ``size`` (one side or ``(w, h)``) and ``overlap`` (one value or ``(x, y)``) define the
    grid (:func:`tile_grid`); ``auto`` picks them per image (:func:`auto_slice_params`).
    An annotation goes into a tile when at least ``min_area_ratio`` of it is inside.
    ``keep_empty=False`` leaves out (and does not write) tiles without annotations.
    ``format``: ``jpg``, ``png`` or ``same`` (the source's extension); ``quality`` is the
    JPEG/WebP quality. ``workers`` processes (default: all cores; 1 runs in this
    process). An image that is missing or unreadable, or whose tiles cannot be
    written (tried again on passing I/O errors), does not stop the others: when all
    are done, :class:`~cocokit.errors.BadImagesError` names every failed image, unless
    ``skip_bad_images``, which leaves them out and lists them in the summary's
    ``skipped`` (``skip_missing`` is the older name of this option).
    ``progress(done, total)`` is called as images finish. ``engine="ray"`` runs the
    per-image jobs on a Ray cluster (``address``; see :mod:`cocokit.engine`) instead of
    this machine's processes; the output is the same, byte for byte. A filesystem that
    the workers cannot see (``memory://``) is read and written here, in this process,
    and the bytes travel with the jobs.

    The categories, ``info``, ``licenses`` and other top-level keys are kept; ``source``
    is not changed. See the module docstring for what happens to each kind of annotation.
    """
    if not isinstance(source, Dataset):
        if isinstance(out_dir, Staging):
            raise OptionError("out_dir", out_dir, "a folder when slicing a streamed file")
        return _slice_stream(
            source, image_dir, out_dir, json_path, images_per_chunk=images_per_chunk,
            skip_bad_images=bool(skip_bad_images or skip_missing), progress=progress,
            size=size, overlap=overlap, auto=auto, min_area_ratio=min_area_ratio,
            keep_empty=keep_empty, format=format, quality=quality, workers=workers,
            engine=engine, address=address)
    if json_path is not None:
        raise OptionError("json_path", json_path, "None for a loaded dataset (its tiles are "
                          "returned: save them)")
    ds = source
    options: dict[str, Any] = dict(
        size=size, overlap=overlap, auto=auto, min_area_ratio=min_area_ratio,
        keep_empty=keep_empty, format=format, quality=quality, workers=workers,
        skip_bad_images=skip_bad_images, progress=progress, engine=engine, address=address,
        skip_missing=skip_missing)
    if isinstance(out_dir, Staging):
        return _slice_dataset(ds, image_dir, out_dir, **options)
    with staged(out_dir) as stage:
        return _slice_dataset(ds, image_dir, stage, **options)


def _slice_dataset(
    ds: Dataset,
    image_dir: str | os.PathLike[str],
    stage: Staging,
    *,
    size: int | tuple[int, int] = 512,
    overlap: float | tuple[float, float] = 0.2,
    auto: bool = False,
    min_area_ratio: float = 0.1,
    keep_empty: bool = True,
    format: SliceFormat = "jpg",
    quality: int = 95,
    workers: int | None = None,
    skip_bad_images: bool = False,
    progress: Progress | None = None,
    engine: Engine = "local",
    address: str | None = None,
    skip_missing: bool | None = None,
) -> tuple[Dataset, SliceSummary]:
    """:func:`slice_dataset` writing into ``stage``."""
    if format not in ("jpg", "png", "same"):
        raise OptionError("format", format, "'jpg', 'png' or 'same'")
    if not (isinstance(quality, (int, np.integer)) and 1 <= int(quality) <= 100):
        raise OptionError("quality", quality, "an integer from 1 to 100")
    if not 0.0 <= float(min_area_ratio) <= 1.0:
        raise OptionError("min_area_ratio", min_area_ratio, "a number in [0, 1]")
    n_workers = _cpu_count() if workers is None else int(workers)
    if n_workers < 1:
        raise OptionError("workers", workers, "a positive number of processes")
    grid_size, grid_overlap = _check_size_overlap(size, overlap)
    skip = bool(skip_bad_images or skip_missing)
    if engine not in ("local", "ray"):
        raise OptionError("engine", engine, "'local' or 'ray'")

    images, anns = ds.images, ds.annotations
    src_root = image_dir if files.is_url(image_dir) else os.fspath(image_dir)
    out_root = stage.path
    # workers in other processes cannot see a filesystem that lives in this one
    elsewhere = engine == "ray" or (n_workers > 1 and len(images) > 1)
    read_here = elsewhere and not files.is_shared(src_root)
    write_here = elsewhere and not files.is_shared(out_root)
    params = _Params(float(min_area_ratio), bool(keep_empty), format, int(quality),
                     str(out_root), return_tiles=write_here)

    # tile names must not collide: check the stems up front
    stems = [_stem(str(f)) for f in images.file_name]
    exts = [_out_ext(str(f), format) for f in images.file_name]
    seen: dict[tuple[str, str], int] = {}
    for i, key in enumerate(zip(stems, exts, strict=True)):
        if key in seen:
            raise InputError(
                None, f"images[{i}].file_name",
                f"{images.file_name[i]!r} gives the same tile names as "
                f"images[{seen[key]}] ({images.file_name[seen[key]]!r})",
            )
        seen[key] = i

    counts = ds.annotation_counts
    geometry = {k: getattr(anns, k) for k in _GEOMETRY_COLUMNS}

    def job(i: int) -> _Job:
        rows = ds.annotation_rows(i)
        w, h = int(images.width[i]), int(images.height[i])
        tsize, tover = auto_slice_params(w, h) if auto else (grid_size, grid_overlap)
        source = files.join(src_root, str(images.file_name[i]))
        data = None
        if read_here:
            try:
                data = files.read_bytes(source)
            except InputError:
                data = None  # the worker reports it, as for any missing file
        if not stage.local:  # a URL: this job's tiles are removed if the run fails
            stage.record(_TileLocations(out_root, stems[i], exts[i], w, h, tsize, tover))
        return _Job(i, source, w, h, tsize, tover, stems[i], exts[i],
                    {k: v[rows] for k, v in geometry.items()}, anns.id[rows], data)

    def finish(r: _Result) -> _Result:
        """Write the tiles a worker handed back (see ``return_tiles``)."""
        if r.tiles:
            for path, data in r.tiles:
                try:
                    retry_io(files.write_bytes, path, data, file=path)
                except OutputError:
                    raise
                except InputError as e:  # the output failed: the run fails
                    raise OutputError(path, f"cannot write: {e.message}") from None
        return dataclasses.replace(r, tiles=None) if r.tiles is not None else r

    todo = [i for i in range(len(images)) if keep_empty or counts[i] > 0]
    results: dict[int, _Result] = {}
    _pil()  # imported once here, so forked workers inherit it instead of each importing it
    total = len(todo)
    if engine == "ray":
        jobs = [job(i) for i in todo]
        for i, r in zip(todo, run_on_ray(_run_on_worker, jobs, params, address=address,
                                         progress=progress)):
            if isinstance(r, JobFailure):
                r = _failed(i, str(images.file_name[i]), None, f"failed on Ray: {r.error}")
            results[i] = finish(r)
    else:
        here = n_workers == 1 or total <= 1

        def started() -> None:
            # only now: a progress bar may start a thread, and forked workers need none
            if progress:
                progress(0, total)

        # closed before the staging is cleaned up: no worker goes on writing into it
        with _pil_block_cache() if here else contextlib.nullcontext(), contextlib.closing(
                run_local(_run, (job(i) for i in todo), params,
                          workers=1 if here else min(n_workers, total),
                          initializer=_init_worker, started=started)) as outcomes:
            for done, outcome in enumerate(outcomes, 1):
                r = finish(outcome)
                results[r.index] = r
                if progress:
                    progress(done, total)

    failures = [_reason(images, i, results[i]) for i in todo if results[i].error is not None]
    if failures and not skip:
        raise BadImagesError(failures, "sliced")
    return _assemble(ds, todo, results, stems)


def _slice_stream(
    stream: CocoStream,
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    json_path: str | os.PathLike[str] | None,
    *,
    images_per_chunk: int | None,
    skip_bad_images: bool,
    progress: Progress | None,
    **options: Any,
) -> SliceSummary:
    """:func:`slice_dataset` of a streamed file, chunk by chunk (see there)."""
    from .io.parts import PartWriter

    fmt = options.get("format", "jpg")
    if fmt not in ("jpg", "png", "same"):
        raise OptionError("format", fmt, "'jpg', 'png' or 'same'")
    _check_stream_stems(stream, fmt)
    target = json_path if json_path is not None else files.join(
        out_dir, os.path.basename(stream.path))
    local_target = files.local_path(target)
    total = stream.num_images
    done_before = 0
    failed: list[tuple[str, str]] = []
    counts = {"images": 0, "tiles": 0, "annotations": 0, "dropped": 0, "unplaced": 0}

    def chunk_progress(done: int, _total: int) -> None:
        if progress is not None:
            progress(done_before + done, total)

    skip = skip_bad_images
    # a local target outside out_dir is renamed after the tiles are moved in (one set)
    with outside_set(out_dir, local_target), staged(out_dir) as stage, \
            tempfile.TemporaryDirectory(prefix="cocokit-slice-") as tmp:
        # a URL target is written here first and put in one request at the end; one
        # inside a local out_dir is staged with the tiles
        written = (stage.place(local_target) if local_target is not None
                   else Path(tmp) / "tiles.json")
        # tiles are new records, numbered 1..N over the whole file (auto), as slice_dataset
        # numbers those of one chunk
        with PartWriter(written, categories=stream.categories, extra=stream.extra,
                        key_order=stream.key_order, image_ids="auto",
                        annotation_ids="auto") as writer:
            chunks = stream.datasets(images_per_chunk)
            try:
                for chunk in chunks:
                    tiled, summary = slice_dataset(chunk, image_dir, stage,
                                                   skip_bad_images=True,
                                                   progress=chunk_progress, **options)
                    done_before += len(chunk.images)
                    failed.extend(summary.skipped)
                    counts["images"] += summary.images
                    counts["tiles"] += summary.tiles
                    counts["annotations"] += summary.annotations
                    counts["dropped"] += summary.empty_tiles_dropped
                    counts["unplaced"] += summary.unplaced_annotations
                    writer.add(tiled)
            finally:
                chunks.close()
            if failed and not skip:
                raise BadImagesError(failed, "sliced")
            written_summary = writer.close()
        if local_target is None:
            files.upload(written, str(target))
    return SliceSummary(images=counts["images"], tiles=counts["tiles"],
                        annotations=counts["annotations"],
                        empty_tiles_dropped=counts["dropped"], skipped=tuple(failed),
                        unplaced_annotations=counts["unplaced"],
                        warnings=written_summary.warnings)


def _check_stream_stems(stream: Any, fmt: str) -> None:
    """Tile names must not collide across the whole file: one pass over the images
    keeps a 64-bit hash of each (stem, extension) and names a clash if one is found."""
    hashes = []
    for _, t in stream.image_tables():
        names = t.file_name.tolist()
        hashes.append(np.fromiter((hash((_stem(str(f)), _out_ext(str(f), fmt))) for f in names),
                                  np.int64, len(names)))
    if not hashes:
        return
    keys = np.concatenate(hashes)
    s = np.sort(keys)
    if not (s[1:] == s[:-1]).any():
        return
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    for first, t in stream.image_tables():
        for k, f in enumerate(t.file_name.tolist()):
            key = (_stem(str(f)), _out_ext(str(f), fmt))
            if key in seen:
                i, g = seen[key]
                raise InputError(stream.path, f"images[{first + k}].file_name",
                                 f"{f!r} gives the same tile names as images[{i}] ({g!r})")
            seen[key] = (first + k, str(f))


def _reason(images: Images, i: int, r: _Result) -> tuple[str, str]:
    """(file, reason) of a failed image."""
    assert r.error is not None
    file, path, message = r.error
    return (file or str(images.file_name[i]), f"{path}: {message}" if path else message)


def _assemble(ds: Dataset, todo: list[int], results: dict[int, _Result],
              stems: list[str]) -> tuple[Dataset, SliceSummary]:
    images, anns = ds.images, ds.annotations
    img_cols: dict[str, list[Any]] = {"file_name": [], "width": [], "height": [], "extra": []}
    ann_parts: list[tuple[np.ndarray, np.ndarray, TileAnnotations]] = []  # rows, tile ids
    skipped: list[tuple[str, str]] = []
    dropped = 0
    sliced = 0
    next_id = 1
    for i in todo:
        r = results[i]
        if r.error is not None:
            skipped.append(_reason(images, i, r))
            continue
        sliced += 1
        tile_ids = np.zeros(len(r.windows), np.int64)
        src_extra = images.extra[i]
        for t in np.flatnonzero(r.written).tolist():
            tile_ids[t] = next_id
            next_id += 1
            x, y, w, h = (int(v) for v in r.windows[t])
            extra = dict(src_extra) if src_extra else {}
            extra["source_image_id"] = int(images.id[i])
            extra["source_file_name"] = str(images.file_name[i])
            extra["source_window"] = [x, y, w, h]
            extra["source_width"] = int(images.width[i])
            extra["source_height"] = int(images.height[i])
            img_cols["file_name"].append(r.names[t])
            img_cols["width"].append(w)
            img_cols["height"].append(h)
            img_cols["extra"].append(extra)
        dropped += int(np.count_nonzero(~r.written))
        ta = r.annotations
        if ta is None:  # pragma: no cover - set whenever error is None
            continue
        rows = ds.annotation_rows(i)[ta.source]
        ann_parts.append((rows, tile_ids[ta.tile], ta))

    n_tiles = next_id - 1
    new_images, new_anns = tile_tables(anns, img_cols, ann_parts)
    placed = _placeable(anns)
    summary = SliceSummary(
        images=sliced, tiles=n_tiles, annotations=len(new_anns),
        empty_tiles_dropped=dropped, skipped=tuple(skipped),
        unplaced_annotations=int(np.count_nonzero(~placed & (ds.image_index >= 0))),
    )
    return ds.replace(images=new_images, annotations=new_anns), summary


def tile_tables(
    anns: Annotations,
    img_cols: dict[str, list[Any]],
    parts: Sequence[tuple[np.ndarray, np.ndarray, TileAnnotations]],
) -> tuple[Images, Annotations]:
    """The tile images and their annotations as tables, ids 1..N in order.

    ``img_cols`` holds the tile images' ``file_name``, ``width``, ``height`` and ``extra``
    lists; each part is (source annotation rows, tile image id of each, their clipped
    :class:`TileAnnotations`). Category, iscrowd and extra keys come from the source rows.
    """
    images = Images(
        id=np.arange(1, len(img_cols["file_name"]) + 1, dtype=np.int64),
        file_name=object_array(img_cols["file_name"]),
        width=np.asarray(img_cols["width"], np.int64).reshape(-1),
        height=np.asarray(img_cols["height"], np.int64).reshape(-1),
        extra=object_array(img_cols["extra"]),
    )
    if not parts:
        return images, Annotations.empty()
    rows = np.concatenate([p[0] for p in parts]).astype(np.int64)
    tas = [p[2] for p in parts]
    tile_anns = Annotations(
        id=np.arange(1, len(rows) + 1, dtype=np.int64),
        image_id=np.concatenate([p[1] for p in parts]).astype(np.int64),
        category_id=anns.category_id[rows],
        bbox=np.concatenate([t.bbox for t in tas]).reshape(-1, 4),
        area=np.concatenate([t.area for t in tas]),
        iscrowd=anns.iscrowd[rows],
        segmentation=np.concatenate([t.segmentation for t in tas]),
        keypoints=np.concatenate([t.keypoints for t in tas]),
        num_keypoints=np.concatenate([t.num_keypoints for t in tas]),
        extra=anns.extra[rows],
        int_text=anns.int_text[rows],  # a whole value of an integer as read stays one
    )
    return images, tile_anns


def _placeable(anns: Annotations) -> np.ndarray:
    """Annotations with a box, a segmentation or keypoints (something a tile can hold)."""
    has = ~np.isnan(anns.bbox[:, 0]) | (anns.segmentation_kind > 0)
    return has | np.fromiter((k is not None for k in anns.keypoints), bool, len(anns))


