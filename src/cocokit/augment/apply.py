"""Apply a pipeline: exact annotation geometry, one warp per image, a process pool or Ray.

The per-image work is :func:`augment_image`, a pure function of the image record, its
annotation columns, the pipeline and the seed (it also writes the image files it
makes), so a process pool and a Ray cluster (:mod:`cocokit.engine`) run the same code
as one process. Each copy draws from its own generator,
``SeedSequence(seed, spawn_key=(image row, copy))``, and results are assembled in image
order, so the output is the same, byte for byte, for any number of workers and either
engine.

Image folders are local paths or fsspec URLs (``s3://bucket/train``, ``gs://...``,
``memory://...``; see :mod:`cocokit.io.files`). A filesystem that lives inside this
process (``memory://``) is invisible to pool workers and to Ray: its source files are
read here and their bytes travel with the jobs, and the workers hand the encoded output
files back to be written here. Reading from bytes gives the same pixels as reading the
file.

Bad images do not stop the run: an image that is missing or unreadable (or whose files
cannot be written; passing I/O errors are tried again, up to three times) is set aside
while the others are done, then all of them are named together in a
:class:`~cocokit.errors.BadImagesError`, or, with ``skip_bad_images``, left out of the
output (with their annotations) and listed in :attr:`AugmentSummary.skipped`.

Annotation geometry (:func:`transform_annotations`), with the sampled matrix ``M``:

* polygons: every vertex mapped by ``M`` in float64, then clipped to the canvas with
  shapely (:func:`cocokit.clipping.clip_polygons`: a polygon cut in two keeps both
  parts); box = tight bounds of the clipped polygon; area = its geometric area (how
  the official COCO files compute polygon areas);
* RLE masks: decoded, warped as masks (nearest neighbour, only the window the object
  lands in), re-encoded (a ``counts`` list stays a list, a string stays a string);
  box and area from the mask;
* box-only annotations: the four corners mapped, bounds taken, clipped to the canvas;
* keypoints: mapped; those outside the canvas become ``(0, 0, 0)``; a mirrored
  transform swaps left/right keypoints (see :func:`keypoint_flip_permutation`);
  ``num_keypoints`` is recounted;
* an annotation is dropped when nothing is left, when its area is below
  ``min_area`` or when less than ``min_visibility`` of its transformed area lies inside
  the canvas. Dropped annotations are counted by reason.

When the sampled geometry is the identity (for example two flips), annotations are
passed through untouched, bit for bit.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from ..clipping import clip_polygons, polygon_areas
from ..dataset import Annotations, Dataset, Images, plain
from ..engine import Engine, JobFailure, pool_context, retry_io, run_local, run_on_ray
from ..errors import BadImagesError, CocoKitError, InputError, OptionError, OutputError
from ..geometry import (
    RLE_KINDS,
    Polygons,
    encoded_rle,
    keypoint_flip_permutation,
    mask_api,
    parse_polygons,
    polygon_bboxes,
    ring_areas,
    segmentation_kinds,
)
from ..io import files
from ..io.atomic import output_error, output_fault
from ..io.coco import DEFAULT_IDS, IdPolicy, check_policy
from ..io.staging import staged
from . import _pixels
from .ops import Op, apply_matrix, translation
from .pipeline import Pipeline, load_pipeline

__all__ = [
    "AnnotationColumns",
    "AugmentSummary",
    "CopyResult",
    "ImageResult",
    "TransformedAnnotations",
    "augment",
    "augment_image",
    "copy_rng",
    "keypoint_flip_permutation",
    "transform_annotations",
]

Progress = Callable[[int, int], None]
Format = Literal["same", "jpg", "png"]

DROP_REASONS = ("outside", "min_area", "min_visibility")


# -- annotation columns ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AnnotationColumns:
    """The annotations of one image as plain columns (rows of the Annotations table).

    ``bbox`` is (k, 4) xywh with NaN rows where absent; ``segmentation`` and
    ``keypoints`` are objects as the table holds them (JSON text, lists, dicts, None).
    """

    category_id: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    segmentation: np.ndarray
    keypoints: np.ndarray
    num_keypoints: np.ndarray

    def __len__(self) -> int:
        return len(self.category_id)

    @classmethod
    def from_table(cls, annotations: Annotations, rows: np.ndarray) -> AnnotationColumns:
        """The given rows of an Annotations table."""
        r = np.asarray(rows, np.int64)
        a = annotations
        return cls(a.category_id[r], a.bbox[r], a.area[r], a.iscrowd[r], a.segmentation[r],
                   a.keypoints[r], a.num_keypoints[r])


@dataclasses.dataclass(frozen=True)
class TransformedAnnotations:
    """Annotations after a transform: ``keep`` (indices into the input columns, in
    order) and the new values of the kept rows; ``dropped`` counts by reason."""

    keep: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    segmentation: np.ndarray
    keypoints: np.ndarray
    num_keypoints: np.ndarray
    dropped: dict[str, int]

    def __len__(self) -> int:
        return len(self.keep)


def _uncompressed_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE counts of a mask (column-major, starting with zeros)."""
    flat = np.asarray(mask, np.uint8).ravel(order="F")
    if len(flat) == 0:
        return []
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], change, [len(flat)]])
    counts = np.diff(bounds).tolist()
    if flat[0]:
        counts.insert(0, 0)
    return counts


def _warp_rle(seg: Any, m: np.ndarray, width: int, height: int
              ) -> tuple[dict[str, Any], float, float, list[float]]:
    """(new RLE dict, area, visible share, xywh box) of an RLE mask mapped by ``m``."""
    mask_utils = mask_api()
    d = plain(seg)
    as_list = isinstance(d.get("counts"), list)
    enc = encoded_rle(d)
    mask = mask_utils.decode(enc)
    sx, sy, sw, sh = (round(float(v)) for v in mask_utils.toBbox(enc))
    src_area = int(mask_utils.area(enc))
    full = np.zeros((height, width), np.uint8, order="F")
    new_area = 0.0
    visible = 0.0
    if src_area > 0 and sw > 0 and sh > 0:
        rect = np.array([[sx, sy], [sx + sw, sy], [sx + sw, sy + sh], [sx, sy + sh]], np.float64)
        quad = apply_matrix(rect, m)
        ox0 = max(0, math.floor(quad[:, 0].min()) - 1)
        oy0 = max(0, math.floor(quad[:, 1].min()) - 1)
        ox1 = min(width, math.ceil(quad[:, 0].max()) + 1)
        oy1 = min(height, math.ceil(quad[:, 1].max()) + 1)
        if ox1 > ox0 and oy1 > oy0:
            local = translation(-ox0, -oy0) @ m @ translation(sx, sy)
            sub = np.ascontiguousarray(mask[sy : sy + sh, sx : sx + sw])
            piece = _pixels.warp(sub, local, ox1 - ox0, oy1 - oy0, interpolation="nearest",
                                 fill=0)
            full[oy0:oy1, ox0:ox1] = piece
            new_area = float(np.count_nonzero(piece))
        scale = float(ring_areas(quad, np.array([0, len(quad)]))[0]) / float(sw * sh)
        expected = src_area * scale
        visible = new_area / expected if expected > 0 else 0.0
    if as_list:
        out = {"size": [height, width], "counts": _uncompressed_counts(full)}
    else:
        res = mask_utils.encode(full)
        out = {"size": [height, width], "counts": res["counts"].decode("ascii")}
    if new_area > 0:
        box = [float(v) for v in mask_utils.toBbox(mask_utils.encode(full))]
    else:
        box = [0.0, 0.0, 0.0, 0.0]
    return out, new_area, visible, box


def _transform_keypoints(kp: Any, m: np.ndarray, width: int, height: int,
                         perm: np.ndarray | None) -> tuple[list[Any], int]:
    arr = np.asarray(plain(kp), np.float64).reshape(-1, 3)
    labeled = arr[:, 2] > 0
    pts = apply_matrix(arr[:, :2], m)
    x, y = pts[:, 0], pts[:, 1]
    with np.errstate(invalid="ignore"):
        inside = labeled & (x >= 0) & (x <= width) & (y >= 0) & (y <= height)
    out = np.zeros_like(arr)
    out[inside, :2] = pts[inside]
    out[inside, 2] = arr[inside, 2]
    if perm is not None and len(perm) == len(out):
        out = out[perm]
    values: list[Any] = []
    for (px, py, v) in out.tolist():
        values.extend((px, py, int(v)) if v > 0 else (0, 0, 0))
    return values, int(np.count_nonzero(out[:, 2] > 0))


def transform_annotations(
    columns: AnnotationColumns,
    matrix: np.ndarray,
    source_size: tuple[int, int],
    output_size: tuple[int, int],
    *,
    min_area: float = 1.0,
    min_visibility: float = 0.0,
    keypoint_permutations: Mapping[int, np.ndarray] | None = None,
) -> TransformedAnnotations:
    """Map one image's annotations by ``matrix`` onto a ``output_size`` canvas.

    ``source_size`` and ``output_size`` are ``(width, height)``. See the module
    docstring for what happens to each kind of geometry and what is dropped.
    ``keypoint_permutations`` maps a category id to the permutation of its keypoints
    that a mirror applies (used when ``matrix`` reverses orientation).
    """
    n = len(columns)
    m = np.asarray(matrix, np.float64)
    width, height = int(output_size[0]), int(output_size[1])
    if np.array_equal(m, np.eye(3)) and tuple(source_size) == (width, height):
        return TransformedAnnotations(
            np.arange(n, dtype=np.int64), columns.bbox.copy(), columns.area.copy(),
            columns.segmentation.copy(), columns.keypoints.copy(),
            columns.num_keypoints.copy(), dict.fromkeys(DROP_REASONS, 0))
    mirrored = bool(np.linalg.det(m) * (1.0 if m[2, 2] >= 0 else -1.0) < 0)

    kinds = segmentation_kinds(columns.segmentation)
    bbox = np.full((n, 4), np.nan)
    area = columns.area.astype(np.float64, copy=True)
    seg = np.empty(n, dtype=object)
    seg[:] = list(columns.segmentation)
    visible = np.ones(n)
    geometric = np.zeros(n, bool)
    window = np.array([0.0, 0.0, float(width), float(height)])

    # polygons
    prow = np.flatnonzero(kinds == 1)
    if len(prow):
        polys = parse_polygons(columns.segmentation, prow)
        has_rings = polys.ring_count > 0
        moved = Polygons(apply_matrix(polys.coords, m), polys.ring_offsets, polys.offsets)
        # the unclipped area is only needed for the visibility rule
        full_area = polygon_areas(moved) if min_visibility > 0 else np.ones(len(prow))
        clipped, kept_area = clip_polygons(moved, np.arange(len(moved)), window)
        boxes = polygon_bboxes(clipped)
        for j, r in enumerate(prow.tolist()):
            if not has_rings[j]:
                kinds[r] = 0  # "segmentation": [] -> a box-only annotation
                continue
            geometric[r] = True
            seg[r] = clipped.to_coco(j)
            area[r] = kept_area[j]
            bbox[r] = boxes[j] if kept_area[j] > 0 else 0.0
            visible[r] = kept_area[j] / full_area[j] if min_visibility > 0 and full_area[j] > 0 \
                else float(min_visibility <= 0)

    # RLE masks
    for r in np.flatnonzero(np.isin(kinds, RLE_KINDS)).tolist():
        rle, a, vis, box = _warp_rle(columns.segmentation[r], m, width, height)
        geometric[r] = True
        seg[r] = rle
        area[r] = a
        visible[r] = vis
        bbox[r] = box

    # box-only annotations
    brow = np.flatnonzero((kinds <= 0) & ~np.isnan(columns.bbox).any(axis=1))
    if len(brow):
        b = columns.bbox[brow]
        x0, y0 = b[:, 0], b[:, 1]
        x1, y1 = x0 + b[:, 2], y0 + b[:, 3]
        corners = np.stack([np.stack([x0, y0], 1), np.stack([x1, y0], 1),
                            np.stack([x1, y1], 1), np.stack([x0, y1], 1)], axis=1)
        pts = apply_matrix(corners.reshape(-1, 2), m).reshape(-1, 4, 2)
        lo, hi = pts.min(axis=1), pts.max(axis=1)
        full = (hi[:, 0] - lo[:, 0]) * (hi[:, 1] - lo[:, 1])
        clo = np.clip(lo, 0.0, [width, height])
        chi = np.clip(hi, 0.0, [width, height])
        wh = np.maximum(chi - clo, 0.0)
        kept = wh[:, 0] * wh[:, 1]
        for j, r in enumerate(brow.tolist()):
            geometric[r] = True
            bbox[r] = [clo[j, 0], clo[j, 1], wh[j, 0], wh[j, 1]]
            area[r] = kept[j]
            visible[r] = kept[j] / full[j] if full[j] > 0 else 0.0

    # what is dropped
    dropped = dict.fromkeys(DROP_REASONS, 0)
    keep = np.ones(n, bool)
    for r in np.flatnonzero(geometric).tolist():
        if not area[r] > 0:
            reason = "outside"
        elif area[r] < min_area:
            reason = "min_area"
        elif visible[r] < min_visibility:
            reason = "min_visibility"
        else:
            continue
        keep[r] = False
        dropped[reason] += 1

    # keypoints of what is kept
    kps = np.empty(n, dtype=object)
    kps[:] = list(columns.keypoints)
    nkp = columns.num_keypoints.copy()
    perms = keypoint_permutations or {}
    for r in np.flatnonzero(keep).tolist():
        if columns.keypoints[r] is None:
            continue
        perm = perms.get(int(columns.category_id[r])) if mirrored else None
        values, count = _transform_keypoints(columns.keypoints[r], m, width, height, perm)
        kps[r] = values
        if nkp[r] >= 0:
            nkp[r] = count
    idx = np.flatnonzero(keep)
    return TransformedAnnotations(idx.astype(np.int64), bbox[idx], area[idx], seg[idx],
                                  kps[idx], nkp[idx], dropped)


# -- keypoint flip maps ----------------------------------------------------------------

def _category_permutations(ds: Dataset, pairs: Sequence[Sequence[str]]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for rec in ds.categories.records:
        names = plain(rec.get("keypoints"))
        if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
            perm = keypoint_flip_permutation(names, pairs)
            if not np.array_equal(perm, np.arange(len(names))):
                out[int(rec["id"])] = perm
    return out


# -- one image ---------------------------------------------------------------------------


def copy_rng(seed: int, image_row: int, copy: int) -> np.random.Generator:
    """The generator of one copy: ``SeedSequence(seed, spawn_key=(image_row, copy))``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(image_row, copy)))


@dataclasses.dataclass(frozen=True)
class CopyResult:
    """One augmented copy: its file (relative to the images folder), size, the applied
    operations and composed matrix, and its annotations (None when it was not written
    because nothing was left and negatives are ignored)."""

    file_name: str
    width: int
    height: int
    applied: list[dict[str, Any]]
    matrix: list[list[float]]
    annotations: TransformedAnnotations | None


@dataclasses.dataclass(frozen=True)
class ImageResult:
    """What :func:`augment_image` made of one source image. ``files`` holds the encoded
    output files, ``(location, bytes)``, when the job asked to have them handed back
    (a filesystem the worker cannot see); the caller writes them."""

    row: int
    original_written: bool
    copies: list[CopyResult]
    files: tuple[tuple[str, bytes], ...] = ()


@dataclasses.dataclass(frozen=True)
class _Task:
    row: int
    width: int
    height: int
    source: str
    original_name: str | None
    copy_names: tuple[str, ...]
    columns: AnnotationColumns
    data: bytes | None = None  # the source file, read by the caller (memory://)
    error: str | None = None  # why the caller could not read it


@dataclasses.dataclass(frozen=True)
class _Job:
    pipeline: Pipeline
    seed: int
    images_dir: str
    quality: int
    permutations: dict[int, np.ndarray]
    ignore_negative_samples: bool
    return_files: bool = False  # hand the output files back instead of writing them


class _Output:
    """Where one image's files go: written under the images folder, or kept to be
    handed back. Remembers what it wrote, to take it back if the image fails."""

    def __init__(self, job: _Job) -> None:
        self.root = job.images_dir
        self.local = None if job.return_files else files.local_path(self.root)
        self.kept: list[tuple[str, bytes]] | None = [] if job.return_files else None
        self.written: list[str] = []

    def put(self, name: str, data: bytes) -> None:
        """The file ``name`` (relative to the images folder) with content ``data``."""
        dest = files.join(self.root, name)
        if self.kept is not None:
            self.kept.append((dest, data))
            return
        self.written.append(dest)
        files.write_bytes(dest, data)

    def copy_local(self, name: str, source: Path) -> bool:
        """Copy a local file byte for byte when both ends are local; False otherwise."""
        if self.local is None:
            return False
        dest = self.local / name
        files.makedirs(dest.parent)
        self.written.append(str(dest))
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError:
            if not source.exists():
                raise InputError(str(source), None, "image file not found") from None
            raise
        except IsADirectoryError:
            raise InputError(str(source), None, "is a folder, not an image file") from None
        except OSError as e:  # the copy's end failed (disk full...), or its source
            if output_fault(e, dest):
                raise output_error(dest, e) from None
            raise
        return True

    def discard(self) -> None:
        """Remove what was written (the image failed)."""
        for dest in self.written:
            _remove(dest)
        self.written.clear()


def _remove(location: str) -> None:
    """Delete a file or a folder and everything in it, if there (best effort)."""
    try:
        files.remove(location)
    except Exception:  # cleaning up must not hide the error that made it necessary
        pass


def _same_file(a: str, b: str) -> bool:
    """Whether two locations name the same file (a path and its ``file://`` URL)."""
    if a == b:
        return True
    pa, pb = files.local_path(a), files.local_path(b)
    return pa is not None and pa == pb


def augment_image(task: _Task, job: _Job) -> ImageResult:
    """Make every copy of one source image: annotations, pixels, files.

    Decodes the source once (only if some copy needs pixels). A copy whose geometry is
    the identity and that has no pixel operation is the source file itself, copied byte
    for byte when the output format is the source's. The source is read from
    ``task.data`` when the caller read it, else from its location (a local file
    directly, a URL through fsspec). If anything fails, the files written so far are
    removed and the error is raised.
    """
    if task.error is not None:
        raise InputError(task.source, None, task.error)
    out = _Output(job)
    try:
        original_written, copies = _make_copies(task, job, out)
    except BaseException:
        out.discard()
        raise
    return ImageResult(task.row, original_written, copies,
                       tuple(out.kept) if out.kept is not None else ())


def _make_copies(task: _Task, job: _Job, out: _Output) -> tuple[bool, list[CopyResult]]:
    pipe = job.pipeline
    src_path = files.local_path(task.source) if task.data is None else None
    data = task.data
    decoded: tuple[np.ndarray, str] | None = None
    src_ext = PurePosixPath(task.source).suffix.lower()

    def copy_source(name: str) -> None:
        nonlocal data
        if data is None and src_path is not None and out.copy_local(name, src_path):
            return
        if data is None:
            data = files.read_bytes(task.source)
        out.put(name, data)

    original_written = False
    if task.original_name is not None and not (
            job.ignore_negative_samples and len(task.columns) == 0):
        copy_source(task.original_name)
        original_written = True
    copies: list[CopyResult] = []
    for k, name in enumerate(task.copy_names):
        rng = copy_rng(job.seed, task.row, k)
        sp = pipe.sample(rng, task.width, task.height)
        anns = transform_annotations(
            task.columns, sp.matrix, (task.width, task.height), (sp.width, sp.height),
            min_area=pipe.min_area, min_visibility=pipe.min_visibility,
            keypoint_permutations=job.permutations)
        matrix = sp.matrix.tolist()
        if job.ignore_negative_samples and len(anns) == 0:
            copies.append(CopyResult(name, sp.width, sp.height, sp.applied, matrix, None))
            continue
        ext = PurePosixPath(name).suffix.lower()
        if sp.is_identity and (sp.width, sp.height) == (task.width, task.height) \
                and not sp.pixel and ext == src_ext:
            copy_source(name)
        else:
            if decoded is None:
                if data is None and src_path is None:
                    data = files.read_bytes(task.source)
                decoded = _pixels.decode(src_path if src_path is not None else task.source,
                                         task.width, task.height, data)
            img, order = decoded
            pixels = _pixels.warp(img, sp.matrix, sp.width, sp.height,
                                  interpolation=pipe.interpolation, fill=pipe.fill, order=order)
            for op, params in sp.pixel:
                pixels = op.apply(pixels, params, order)
            out.put(name, _pixels.encode(pixels, order, ext, job.quality))
        copies.append(CopyResult(name, sp.width, sp.height, sp.applied, matrix, anns))
    return original_written, copies


class _Failure:
    """An error raised in a worker, carried back whole (CocoKitError subclasses do not
    all survive pickling through their constructors). It stops the run: it is not about
    one image (a missing optional dependency, say)."""

    def __init__(self, error: BaseException) -> None:
        self.cls = type(error)
        self.state = dict(error.__dict__)
        self.text = str(error)

    def rebuild(self) -> BaseException:
        """The error again, as raised in the worker (class, fields and message)."""
        err = self.cls.__new__(self.cls)
        Exception.__init__(err, self.text)
        err.__dict__.update(self.state)
        return err


@dataclasses.dataclass(frozen=True)
class _BadImage:
    """An image that failed: its row, its file and why. The others go on."""

    row: int
    file: str
    reason: str


def _run(task: _Task, job: _Job) -> ImageResult | _BadImage | _Failure:
    """:func:`augment_image`, with its failures as data (picklable).

    A missing or undecodable image fails at once; any other I/O error is tried again
    (:func:`~cocokit.engine.retry_io`) before the image is reported as failed. An
    :class:`~cocokit.errors.OutputError` is raised: it stops the run.
    """
    try:
        return retry_io(augment_image, task, job, file=task.source)
    except OutputError:  # the output disk is full...: no image's failure, the run stops
        raise
    except InputError as e:
        named = e.file if e.file and not _same_file(e.file, task.source) else None
        where = ": ".join(p for p in (named, e.path) if p)
        return _BadImage(task.row, task.source, f"{where}: {e.message}" if where
                         else e.message)
    except CocoKitError as e:
        return _Failure(e)


def _init_worker() -> None:
    """Workers run OpenCV single-threaded: the pool is the parallelism. A worker forked
    from a parent that had OpenCV loaded inherits that setting (see :func:`_execute`) and
    must not touch OpenCV's thread pool, which forking left without its threads."""
    if "cv2" in sys.modules:
        return
    cv2 = _pixels._import_cv2()
    if cv2 is not None:
        cv2.setNumThreads(1)


# -- the dataset ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentSummary:
    """What :func:`augment` did. ``skipped`` lists ``(file, reason)`` for each image that
    failed and was left out (``skip_bad_images``), in image order."""

    output: str
    source_images: int
    images: int
    augmented_images: int
    source_annotations: int
    annotations: int
    dropped_annotations: int
    dropped_by_reason: dict[str, int]
    skipped_negative_images: int
    seconds: float
    skipped: tuple[tuple[str, str], ...] = ()


def _check_int(option: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise OptionError(option, value, f"an integer >= {minimum}")
    return int(value)


def _relative_name(file_name: str) -> PurePosixPath:
    p = PurePosixPath(str(file_name).replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.name:
        return PurePosixPath(p.name or "image")
    return p


def _output_names(ds: Dataset, copies: int, keep_originals: bool, fmt: str
                  ) -> tuple[list[str | None], list[tuple[str, ...]]]:
    """Output file names (relative to images/) of each source's original and copies."""
    n = len(ds.images)
    originals: list[str | None] = []
    seen_original: set[str] = set()
    copy_names: list[list[str]] = []
    for i in range(n):
        rel = _relative_name(ds.images.file_name[i])
        name = str(rel)
        if keep_originals and name not in seen_original:
            originals.append(name)
            seen_original.add(name)
        else:
            originals.append(None)
        ext = rel.suffix if fmt == "same" else f".{fmt}"
        ext = ext or ".png"
        copy_names.append([str(rel.with_name(f"{rel.stem}_aug{k}{ext}")) for k in range(copies)])
    taken = collections.Counter(n_ for names in copy_names for n_ in names)
    taken.update(seen_original)
    for i in range(n):
        if any(taken[c] > 1 for c in copy_names[i]):
            rel = _relative_name(ds.images.file_name[i])
            ext = (rel.suffix if fmt == "same" else f".{fmt}") or ".png"
            copy_names[i] = [str(rel.with_name(f"{rel.stem}_r{i}_aug{k}{ext}"))
                             for k in range(copies)]
    final = collections.Counter(n_ for names in copy_names for n_ in names)
    final.update(seen_original)
    clash = [c for c, cnt in final.items() if cnt > 1]
    if clash:
        raise OptionError("file names", clash[0], "output names that do not collide")
    return originals, [tuple(c) for c in copy_names]


def _prepare_output(out_dir: Path, image_dir: Path | None, overwrite: bool) -> None:
    """Check a local output folder (it is staged by :mod:`cocokit.io.staging`)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError("out_dir", str(out_dir), "a folder (this is a file)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not out_dir.exists() and not parent.is_dir():
        raise OptionError("out_dir", str(out_dir), "a folder whose parent folder exists")
    images = out_dir / "images"
    try:
        if image_dir is not None:
            src = image_dir.resolve()
            dst = images.resolve()
            if src == dst or dst in src.parents:
                raise OptionError("out_dir", str(out_dir),
                                  "a folder whose images/ is not the source image folder")
    except OSError:
        pass
    if not overwrite:
        for p in (images, out_dir / "annotations.json"):
            if p.exists():
                raise OptionError("out_dir", str(out_dir), f"a folder without {p.name} "
                                  "(it exists; pass overwrite=True / --overwrite to replace it)")


def _check_url_output(out_dir: str, image_dir: str, overwrite: bool) -> list[str]:
    """Check an output folder given as a URL; returns the existing outputs to replace."""
    fs, path = files.filesystem(out_dir)
    if fs.isfile(path):
        raise OptionError("out_dir", out_dir, "a folder (this is a file)")
    images = files.join(out_dir, "images")
    src = image_dir.rstrip("/")
    if files.is_url(image_dir) and (src == images or src.startswith(images + "/")):
        raise OptionError("out_dir", out_dir,
                          "a folder whose images/ is not the source image folder")
    found = [files.join(out_dir, name) for name in ("annotations.json", "images")
             if fs.exists(f"{path.rstrip('/')}/{name}")]
    if found and not overwrite:
        name = found[0].rsplit("/", 1)[1]
        raise OptionError("out_dir", out_dir, f"a folder without {name} "
                          "(it exists; pass overwrite=True / --overwrite to replace it)")
    return found


def _new_ids(policy: str, kept_ids: np.ndarray, is_new: np.ndarray, floor: int) -> np.ndarray:
    """Final ids: 1..N ("auto"), or kept ids and new ones counting up from ``floor``."""
    n = len(is_new)
    if policy == "auto":
        return np.arange(1, n + 1, dtype=np.int64)
    out = np.asarray(kept_ids, np.int64).copy()
    out[is_new] = np.arange(floor, floor + int(is_new.sum()), dtype=np.int64)
    return out


def augment(
    ds: Dataset,
    pipeline: Pipeline | Sequence[Op] | str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    copies: int = 1,
    seed: int = 0,
    keep_originals: bool = True,
    workers: int = 1,
    progress: Progress | None = None,
    image_ids: IdPolicy = DEFAULT_IDS,
    annotation_ids: IdPolicy = DEFAULT_IDS,
    ignore_negative_samples: bool = False,
    format: Format = "same",
    quality: int = 95,
    overwrite: bool = False,
    engine: Engine = "local",
    address: str | None = None,
    skip_bad_images: bool = False,
) -> tuple[Dataset, AugmentSummary]:
    """Write ``copies`` augmented versions of every image and the grown dataset.

    Images go to ``out_dir/images/`` (originals copied byte for byte when
    ``keep_originals``; copies named ``<stem>_aug<k><ext>`` beside them, in the same
    sub-folders), annotations to ``out_dir/annotations.json`` under the export contract.
    Returns the written dataset (file names relative to ``out_dir/images``) and a
    summary. ``image_dir`` (the folder the ``file_name`` of each image is relative to)
    and ``out_dir`` may be local paths or fsspec URLs (``s3://bucket/train``,
    ``gs://...``, ``memory://...``).

    * ``pipeline``: a :class:`Pipeline`, a list of operations or a pipeline file.
    * ``seed``: copy ``k`` of image row ``i`` draws from
      ``SeedSequence(seed, spawn_key=(i, k))``; output is identical for any ``workers``
      and either ``engine``.
    * ``image_ids`` / ``annotation_ids``: ``"keep"`` (the default) keeps the originals'
      ids and gives new records ids above the largest one (a repeated id is refused,
      naming ``"auto"``); ``"auto"`` numbers everything 1..N in output order (each
      original followed by its copies).
    * New images record ``augmented_from`` (the id the source image has in the output
      when originals are kept, else its id in ``ds``), ``augmentation`` (the operations
      applied with their sampled parameters) and ``augmentation_matrix`` (source pixel
      coordinates to output coordinates, 3x3); their other fields are the source's.
    * ``ignore_negative_samples``: images left without annotations are not written.
    * ``format``: ``"same"`` as the source, or ``"jpg"``/``"png"``; ``quality`` for JPEG.
    * ``workers`` processes (1 runs in this process), or ``engine="ray"``: the
      per-image jobs run on a Ray cluster (``address``; see :mod:`cocokit.engine`).
    * Bad images: an image that is missing or unreadable, or whose files cannot be
      written (passing I/O errors are tried again), does not stop the others. When all
      are done, :class:`~cocokit.errors.BadImagesError` names every failed image and no
      ``annotations.json`` is written, unless ``skip_bad_images``: then those images and
      their annotations are left out and listed in the summary's ``skipped``. When not
      a single source image exists (the wrong ``image_dir``, most likely), an
      :class:`~cocokit.errors.InputError` says so before any work starts.
    * A local ``out_dir``: nothing is written until everything is ready. Work happens in
      a hidden folder beside ``out_dir`` (:mod:`cocokit.io.staging`) that is moved into
      place at the end and removed on failure or Ctrl-C. An existing ``images/`` or
      ``annotations.json`` is refused unless ``overwrite``.
    * A URL ``out_dir`` (object stores cannot rename a folder in one step): images are
      written directly under ``out_dir/images/`` and ``annotations.json`` last, only when
      everything else succeeded, so its presence marks a complete output. On failure the
      images written are removed. An existing ``images/`` or ``annotations.json`` is
      refused unless ``overwrite``, which removes them (``annotations.json`` first)
      before the first image is written: a failed run leaves neither the old output nor
      a partial new one.
    """
    from ..io.coco import plan_export, to_json, write_coco

    started = time.perf_counter()
    pipe = load_pipeline(pipeline)
    copies = _check_int("copies", copies, 1)
    seed = _check_int("seed", seed, 0)
    workers = _check_int("workers", workers, 1)
    quality = _check_int("quality", quality, 1)
    if quality > 100:
        raise OptionError("quality", quality, "an integer in [1, 100]")
    if format not in ("same", "jpg", "png"):
        raise OptionError("format", format, "'same', 'jpg' or 'png'")
    check_policy("image_ids", image_ids)
    check_policy("annotation_ids", annotation_ids)
    if engine not in ("local", "ray"):
        raise OptionError("engine", engine, "'local' or 'ray'")
    src_root = str(image_dir) if files.is_url(image_dir) else os.fspath(image_dir)
    out_root = str(out_dir) if files.is_url(out_dir) else os.fspath(out_dir)
    src_local, out_local = files.local_path(src_root), files.local_path(out_root)
    if not files.is_dir(src_root):
        raise OptionError("image_dir", src_root, "an existing folder of images")
    target = files.join(out_root, "annotations.json")
    replaced = _check_url_output(out_root, src_root, overwrite) if out_local is None else []

    # everything that can be checked before work starts
    plan_export(ds, image_ids=image_ids, annotation_ids=annotation_ids, target=target)
    images, anns = ds.images, ds.annotations
    n_img = len(images)
    sources = [files.join(src_root, str(images.file_name[i])) for i in range(n_img)]
    _check_some_source_exists(sources, src_root)
    perms = _category_permutations(ds, pipe.keypoint_flip_map)
    _check_keypoint_lengths(ds, perms)
    originals, copy_names = _output_names(ds, copies, keep_originals, format)
    # pool workers and Ray cannot see a filesystem that lives in this process: its
    # files are read and written here, and the bytes travel with the jobs
    elsewhere = engine == "ray" or (workers > 1 and n_img > 1)
    read_here = elsewhere and not files.is_shared(src_root)
    write_here = elsewhere and not files.is_shared(out_root)

    if out_local is not None:
        _prepare_output(out_local, src_local, overwrite)
    else:
        for old in replaced:  # annotations.json first: it marks a complete output
            files.remove(old)
    # a local output is staged beside out_dir and moved into place at the end (images/
    # as a whole); on a URL everything under images/ is this run's (checked absent or
    # removed above), so a failure removes it
    with staged(out_root, replace=("images",)) as stage:
        images_dir = files.join(stage.path, "images")
        if stage.local:
            Path(images_dir).mkdir()
        else:
            stage.record([images_dir])
        job = _Job(pipe, seed, images_dir, quality, perms, ignore_negative_samples,
                   return_files=write_here)

        def task(i: int) -> _Task:
            data, error = _read_source(sources[i]) if read_here else (None, None)
            return _Task(i, int(images.width[i]), int(images.height[i]), sources[i],
                         originals[i], copy_names[i],
                         AnnotationColumns.from_table(anns, ds.annotation_rows(i)), data, error)

        tasks = (task(i) for i in range(n_img))
        done = _Done(sources, progress if engine == "local" else None, n_img)
        if engine == "ray":
            _execute_ray(list(tasks), job, address, progress, done)
        else:
            _execute(tasks, job, n_img, workers, done)
        if done.failures and not skip_bad_images:
            raise BadImagesError(done.failures, "augmented")
        out_ds, summary_counts = _assemble(ds, done.results, keep_originals, image_ids,
                                           annotation_ids, ignore_negative_samples)
        if stage.local:
            write_coco(out_ds, Path(stage.path) / "annotations.json", image_ids="keep",
                       annotation_ids="keep")
        else:
            files.write_bytes(target, to_json(out_ds, image_ids="keep", annotation_ids="keep"))
    summary = AugmentSummary(
        output=out_root if out_local is None else str(out_local), source_images=n_img,
        images=len(out_ds.images),
        augmented_images=summary_counts["augmented"], source_annotations=len(anns),
        annotations=len(out_ds.annotations), dropped_annotations=sum(
            summary_counts["dropped"].values()),
        dropped_by_reason=summary_counts["dropped"],
        skipped_negative_images=summary_counts["skipped"],
        seconds=time.perf_counter() - started, skipped=tuple(done.failures))
    return out_ds, summary


def _check_some_source_exists(sources: Sequence[str], image_dir: str) -> None:
    """Fail early when not a single source image is there: the image folder is most
    likely the wrong one, and naming every image as missing would bury that. Looks
    until it finds one (usually the first)."""
    if not sources or any(files.exists(s) for s in sources):
        return
    n = len(sources)
    none = f" (none of the {n} images is there)" if n > 1 else ""
    raise InputError(sources[0], "images[0].file_name",
                     f"image file not found under {image_dir!r}{none}: is this the image "
                     "folder?")


def _read_source(location: str) -> tuple[bytes | None, str | None]:
    """(bytes, None) of a source file read here for a worker, or (None, why not)."""
    try:
        return retry_io(files.read_bytes, location, file=location), None
    except InputError as e:
        return None, e.message


class _Done:
    """Collects what the jobs return, in image order: results, failed images, and the
    files that workers handed back, written here."""

    def __init__(self, sources: Sequence[str], progress: Progress | None, total: int) -> None:
        self.sources = sources
        self.progress = progress
        self.total = total
        self.results: list[ImageResult] = []
        self.failures: list[tuple[str, str]] = []

    def __call__(self, res: ImageResult | _BadImage | _Failure | JobFailure) -> None:
        """Take one job's outcome (or raise a worker's error that stops the run)."""
        if isinstance(res, _Failure):
            raise res.rebuild()
        if isinstance(res, JobFailure):
            res = _BadImage(res.index, self.sources[res.index], f"failed on Ray: {res.error}")
        if isinstance(res, ImageResult) and res.files:
            res = self._write(res)
        if isinstance(res, _BadImage):
            self.failures.append((res.file, res.reason))
        else:
            self.results.append(res)
        if self.progress is not None:
            self.progress(len(self.results) + len(self.failures), self.total)

    def _write(self, res: ImageResult) -> ImageResult:
        """Write the files a worker handed back; a failure stops the run (its staged
        output goes as a whole)."""
        for path, data in res.files:
            try:
                retry_io(files.write_bytes, path, data, file=path)
            except OutputError:
                raise
            except InputError as e:  # the output failed, not the image: the run fails
                raise OutputError(path, f"cannot write: {e.message}") from None
        return dataclasses.replace(res, files=())


def _check_keypoint_lengths(ds: Dataset, perms: Mapping[int, np.ndarray]) -> None:
    if not perms:
        return
    anns = ds.annotations
    for r in np.flatnonzero(np.isin(anns.category_id, list(perms))).tolist():
        kp = anns.keypoints[r]
        if kp is None:
            continue
        k = len(plain(kp))
        expected = 3 * len(perms[int(anns.category_id[r])])
        if k != expected:
            raise InputError(ds.source, f"annotations[{r}].keypoints",
                             f"{k} numbers, but its category names {expected // 3} keypoints "
                             f"(expected {expected} numbers)")


def _execute_ray(tasks: list[_Task], job: _Job, address: str | None,
                 progress: Progress | None, take: Callable[[Any], None]) -> None:
    """The same per-image function as the local pool, run on a Ray cluster. A job that
    raised on every attempt (not an image error: those come back as data) is reported
    as a failed image."""
    for res in run_on_ray(_run_on_worker, tasks, job, address=address, progress=progress):
        take(res)


def _run_on_worker(task: _Task, job: _Job) -> ImageResult | _BadImage | _Failure:
    """:func:`_run` in a Ray worker, set up as a pool worker is (OpenCV single-threaded:
    the cluster's processes are the parallelism)."""
    _init_worker()
    return _run(task, job)


def _execute(tasks: Iterable[_Task], job: _Job, total: int, workers: int,
             take: Callable[[Any], None]) -> None:
    """Run the jobs here (one worker) or in a process pool (:func:`cocokit.engine.run_local`);
    ``take`` gets each outcome, in image order."""
    workers = workers if total > 1 else 1
    forked = workers > 1 and pool_context().get_start_method() == "fork"
    # OpenCV's native thread pool does not survive a fork: while workers are forked,
    # OpenCV runs single-threaded here (its pool idle), and gets its threads back after
    cv2 = _pixels._import_cv2() if forked and "cv2" in sys.modules else None
    cv_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)
    try:
        # closed before the staging is cleaned up: no worker goes on writing into it
        with contextlib.closing(run_local(
                _run, tasks, job, workers=workers, initializer=_init_worker,
                started=lambda: _restore_threads(cv2, cv_threads))) as outcomes:
            for outcome in outcomes:
                take(outcome)
    finally:
        _restore_threads(cv2, cv_threads)


def _restore_threads(cv2: Any, n: int | None) -> None:
    if cv2 is not None and n is not None:
        cv2.setNumThreads(n)


def _assemble(ds: Dataset, results: list[ImageResult], keep_originals: bool,
              image_ids: str, annotation_ids: str, ignore_negative: bool
              ) -> tuple[Dataset, dict[str, Any]]:
    images, anns = ds.images, ds.annotations
    img_rows: list[int] = []        # source row of each output image
    img_copy: list[CopyResult | None] = []
    ann_src: list[np.ndarray] = []  # global source rows of each output image's annotations
    ann_new: list[TransformedAnnotations | None] = []
    dropped = dict.fromkeys(DROP_REASONS, 0)
    skipped = 0
    augmented = 0
    for res in results:
        rows = ds.annotation_rows(res.row)
        if keep_originals:
            if res.original_written or not (ignore_negative and len(rows) == 0):
                img_rows.append(res.row)
                img_copy.append(None)
                ann_src.append(rows)
                ann_new.append(None)
            else:
                skipped += 1
        for c in res.copies:
            if c.annotations is None:
                skipped += 1
                continue
            for k, v in c.annotations.dropped.items():
                dropped[k] += v
            img_rows.append(res.row)
            img_copy.append(c)
            ann_src.append(rows[c.annotations.keep])
            ann_new.append(c.annotations)
            augmented += 1

    rows_arr = np.asarray(img_rows, np.int64)
    is_new = np.array([c is not None for c in img_copy], bool)
    src_ids = images.id[rows_arr] if len(rows_arr) else np.zeros(0, np.int64)
    floor = int(images.id.max()) + 1 if len(images) else 1
    out_img_ids = _new_ids(image_ids, src_ids, is_new, floor)
    # the output id of each source row's original (when kept)
    original_id: dict[int, int] = {}
    for j in np.flatnonzero(~is_new).tolist():
        original_id.setdefault(int(rows_arr[j]), int(out_img_ids[j]))

    file_name = images.file_name[rows_arr].copy() if len(rows_arr) else np.empty(0, object)
    width = images.width[rows_arr].copy() if len(rows_arr) else np.zeros(0, np.int64)
    height = images.height[rows_arr].copy() if len(rows_arr) else np.zeros(0, np.int64)
    extra = np.empty(len(rows_arr), dtype=object)
    for j, cr in enumerate(img_copy):
        src_extra = images.extra[rows_arr[j]]
        if cr is None:
            extra[j] = src_extra
            file_name[j] = str(_relative_name(images.file_name[rows_arr[j]]))
            continue
        row = int(rows_arr[j])
        rec = dict(src_extra) if src_extra else {}
        rec["augmented_from"] = original_id.get(row, int(images.id[row]))
        rec["augmentation"] = cr.applied
        rec["augmentation_matrix"] = cr.matrix
        extra[j] = rec
        file_name[j] = cr.file_name
        width[j] = cr.width
        height[j] = cr.height
    new_images = Images(id=out_img_ids, file_name=file_name, width=width, height=height,
                        extra=extra)

    counts = np.array([len(s) for s in ann_src], np.int64)
    all_src = np.concatenate(ann_src) if ann_src else np.zeros(0, np.int64)
    taken = anns.take(all_src)
    bbox = taken.bbox.copy()
    area = taken.area.copy()
    seg = taken.segmentation.copy()
    kps = taken.keypoints.copy()
    nkp = taken.num_keypoints.copy()
    starts = np.concatenate([[0], np.cumsum(counts)])
    for j, t in enumerate(ann_new):
        if t is None or len(t) == 0:
            continue
        sl = slice(int(starts[j]), int(starts[j + 1]))
        bbox[sl] = t.bbox
        area[sl] = t.area
        seg[sl] = t.segmentation
        kps[sl] = t.keypoints
        nkp[sl] = t.num_keypoints
    ann_is_new = np.repeat(is_new, counts)
    ann_floor = int(anns.id.max()) + 1 if len(anns) else 1
    new_ann_ids = _new_ids(annotation_ids, taken.id, ann_is_new, ann_floor)
    new_anns = taken.replace(id=new_ann_ids, image_id=np.repeat(out_img_ids, counts),
                             bbox=bbox, area=area, segmentation=seg, keypoints=kps,
                             num_keypoints=nkp)
    out = ds.replace(images=new_images, annotations=new_anns)
    return out, {"dropped": dropped, "skipped": skipped, "augmented": augmented}
