"""Apply a pipeline: exact annotation geometry, one warp per image, a process pool.

The per-image work is :func:`augment_image`, a pure function of the image record, its
annotation columns, the pipeline and the seed (it also writes the image files it
makes), so a process pool runs the same code as one process. Each copy draws from its
own generator, ``SeedSequence(seed, spawn_key=(image row, copy))``, and results are
assembled in image order, so the output is the same for any number of workers.

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
import dataclasses
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import msgspec
import numpy as np

from ..clipping import clip_polygons, polygon_areas
from ..dataset import Annotations, Dataset, Images, plain
from ..engine import Engine, JobFailure, run_on_ray
from ..errors import CocoKitError, InputError, OptionError
from ..geometry import Polygons, mask_api, parse_polygons, polygon_bboxes
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
IdPolicy = Literal["auto", "keep"]
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


def _seg_kind(seg: Any) -> int:
    """0 none, 1 polygons, 2 RLE (any counts)."""
    if seg is None:
        return 0
    if isinstance(seg, msgspec.Raw):
        head = bytes(memoryview(seg)[:1])
        return 1 if head == b"[" else 2 if head == b"{" else 0
    if isinstance(seg, dict):
        return 2
    if isinstance(seg, (list, tuple, np.ndarray)):
        return 1
    return 0




def _encoded_rle(rle: Mapping[str, Any]) -> dict[str, Any]:
    mask_utils = mask_api()
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        out: dict[str, Any] = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return out
    return {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


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


def _quad_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _warp_rle(seg: Any, m: np.ndarray, width: int, height: int
              ) -> tuple[dict[str, Any], float, float, list[float]]:
    """(new RLE dict, area, visible share, xywh box) of an RLE mask mapped by ``m``."""
    mask_utils = mask_api()
    d = plain(seg)
    as_list = isinstance(d.get("counts"), list)
    enc = _encoded_rle(d)
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
        scale = _quad_area(quad) / float(sw * sh)
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


def _clip_rings(polys: Polygons, window: np.ndarray) -> tuple[Polygons, np.ndarray]:
    """Clip every ring on its own, regroup by annotation; areas of the union.

    pycocotools rasterizes the rings of an annotation one by one and unions the masks,
    so overlapping rings may enclose a hole. Clipping ring by ring keeps that meaning
    (union and clipping commute); clipping the union would fill such holes, since COCO
    rings cannot hold one.
    """
    n_rings = len(polys.ring_offsets) - 1
    per_ring = Polygons(polys.coords, polys.ring_offsets, np.arange(n_rings + 1, dtype=np.int64))
    cut, ring_area = clip_polygons(per_ring, np.arange(n_rings), window)
    # annotation i owns rings offsets[i]:offsets[i+1] of polys, hence entries of cut
    counts = np.diff(cut.offsets)
    ring_owner = np.repeat(np.arange(len(polys)), np.diff(polys.offsets))
    per_ann = np.bincount(ring_owner, weights=counts, minlength=len(polys)).astype(np.int64)
    offsets = np.zeros(len(polys) + 1, np.int64)
    np.cumsum(per_ann, out=offsets[1:])
    out = Polygons(cut.coords, cut.ring_offsets, offsets)
    area = np.zeros(len(polys))
    single = np.diff(polys.offsets) == 1
    area[single] = ring_area[polys.offsets[:-1][single]]
    multi = np.flatnonzero(np.diff(polys.offsets) > 1)
    if len(multi):
        area[multi] = polygon_areas(out, multi)
    return out, area


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

    kinds = np.array([_seg_kind(s) for s in columns.segmentation], np.int8).reshape(n)
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
        clipped, kept_area = _clip_rings(moved, window)
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
    for r in np.flatnonzero(kinds == 2).tolist():
        rle, a, vis, box = _warp_rle(columns.segmentation[r], m, width, height)
        geometric[r] = True
        seg[r] = rle
        area[r] = a
        visible[r] = vis
        bbox[r] = box

    # box-only annotations
    brow = np.flatnonzero((kinds == 0) & ~np.isnan(columns.bbox).any(axis=1))
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

_SIDE = re.compile(r"left|right|Left|Right|LEFT|RIGHT")
_SIDE_SWAP = {"left": "right", "right": "left", "Left": "Right", "Right": "Left",
              "LEFT": "RIGHT", "RIGHT": "LEFT"}
_PREFIX = re.compile(r"^([lrLR])([_\-. ])")
_SUFFIX = re.compile(r"([_\-. ])([lrLR])$")
_LR = {"l": "r", "r": "l", "L": "R", "R": "L"}


def _mirror_name(name: str) -> str:
    swapped = _SIDE.sub(lambda mt: _SIDE_SWAP[mt.group(0)], name)
    if swapped != name:
        return swapped
    swapped = _PREFIX.sub(lambda mt: _LR[mt.group(1)] + mt.group(2), name)
    if swapped != name:
        return swapped
    return _SUFFIX.sub(lambda mt: mt.group(1) + _LR[mt.group(2)], name)


def keypoint_flip_permutation(names: Sequence[str],
                              pairs: Sequence[Sequence[str]] = ()) -> np.ndarray:
    """The keypoint order after a mirror: ``new[i] = old[perm[i]]``.

    Names that differ only by ``left``/``right`` (any case) or by an ``l_``/``r_``
    prefix or ``_l``/``_r`` suffix swap; ``pairs`` adds or overrides pairs by name
    (pairs whose names are not both present are ignored).
    """
    names = [str(n) for n in names]
    index = {n: i for i, n in enumerate(names)}
    partner: dict[str, str] = {}
    for n in names:
        other = _mirror_name(n)
        if other != n and other in index:
            partner[n] = other
    for a, b in pairs:
        if a in index and b in index:
            for x in (a, b):
                old = partner.pop(x, None)
                if old is not None:
                    partner.pop(old, None)
            partner[a], partner[b] = b, a
    perm = np.arange(len(names))
    for n, other in partner.items():
        if partner.get(other) == n:
            perm[index[n]] = index[other]
    return perm


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
    """What :func:`augment_image` made of one source image."""

    row: int
    original_written: bool
    copies: list[CopyResult]


@dataclasses.dataclass(frozen=True)
class _Task:
    row: int
    width: int
    height: int
    source: str
    original_name: str | None
    copy_names: tuple[str, ...]
    columns: AnnotationColumns


@dataclasses.dataclass(frozen=True)
class _Job:
    pipeline: Pipeline
    seed: int
    images_dir: str
    quality: int
    permutations: dict[int, np.ndarray]
    ignore_negative_samples: bool


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def augment_image(task: _Task, job: _Job) -> ImageResult:
    """Make every copy of one source image: annotations, pixels, files.

    Decodes the source once (only if some copy needs pixels). A copy whose geometry is
    the identity and that has no pixel operation is the source file itself, copied byte
    for byte when the output format is the source's.
    """
    pipe = job.pipeline
    out_dir = Path(job.images_dir)
    decoded: tuple[np.ndarray, str] | None = None
    src_ext = PurePosixPath(task.source).suffix.lower()
    original_written = False
    if task.original_name is not None and not (
            job.ignore_negative_samples and len(task.columns) == 0):
        dest = out_dir / task.original_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(task.source, dest)
        except FileNotFoundError:
            raise InputError(task.source, None, "image file not found") from None
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
        dest = out_dir / name
        if sp.is_identity and (sp.width, sp.height) == (task.width, task.height) \
                and not sp.pixel and ext == src_ext:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(task.source, dest)
        else:
            if decoded is None:
                decoded = _pixels.decode(task.source, task.width, task.height)
            img, order = decoded
            out = _pixels.warp(img, sp.matrix, sp.width, sp.height,
                               interpolation=pipe.interpolation, fill=pipe.fill, order=order)
            for op, params in sp.pixel:
                out = op.apply(out, params, order)
            _write(dest, _pixels.encode(out, order, ext, job.quality))
        copies.append(CopyResult(name, sp.width, sp.height, sp.applied, matrix, anns))
    return ImageResult(task.row, original_written, copies)


class _Failure:
    """An error raised in a worker, carried back whole (CocoKitError subclasses do not
    all survive pickling through their constructors)."""

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


def _run(task: _Task, job: _Job) -> ImageResult | _Failure:
    try:
        return augment_image(task, job)
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
    """What :func:`augment` did."""

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


def _prepare_output(out_dir: Path, image_dir: Path, overwrite: bool) -> tuple[Path, bool]:
    """Check the output folder, create it if needed; returns (staging dir, created)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError("out_dir", str(out_dir), "a folder (this is a file)")
    parent = out_dir.parent if str(out_dir.parent) else Path(".")
    if not out_dir.exists() and not parent.is_dir():
        raise OptionError("out_dir", str(out_dir), "a folder whose parent folder exists")
    images = out_dir / "images"
    try:
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
    created = not out_dir.exists()
    try:
        out_dir.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".augment-", dir=out_dir))
        (staging / "images").mkdir()
    except OSError as e:
        raise OptionError("out_dir", str(out_dir), f"a writable folder ({e.strerror})") from None
    return staging, created


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
    image_ids: IdPolicy = "auto",
    annotation_ids: IdPolicy = "auto",
    ignore_negative_samples: bool = False,
    format: Format = "same",
    quality: int = 95,
    overwrite: bool = False,
    engine: Engine = "local",
    address: str | None = None,
) -> tuple[Dataset, AugmentSummary]:
    """Write ``copies`` augmented versions of every image and the grown dataset.

    Images go to ``out_dir/images/`` (originals copied byte for byte when
    ``keep_originals``; copies named ``<stem>_aug<k><ext>`` beside them, in the same
    sub-folders), annotations to ``out_dir/annotations.json`` under the export contract.
    Returns the written dataset (file names relative to ``out_dir/images``) and a
    summary.

    * ``pipeline``: a :class:`Pipeline`, a list of operations or a pipeline file.
    * ``seed``: copy ``k`` of image row ``i`` draws from
      ``SeedSequence(seed, spawn_key=(i, k))``; output is identical for any ``workers``.
    * ``image_ids`` / ``annotation_ids``: ``"auto"`` numbers everything 1..N in output
      order (each original followed by its copies); ``"keep"`` keeps the originals' ids
      and gives new records ids above the largest one.
    * New images record ``augmented_from`` (the id the source image has in the output
      when originals are kept, else its id in ``ds``), ``augmentation`` (the operations
      applied with their sampled parameters) and ``augmentation_matrix`` (source pixel
      coordinates to output coordinates, 3x3); their other fields are the source's.
    * ``ignore_negative_samples``: images left without annotations are not written.
    * ``format``: ``"same"`` as the source, or ``"jpg"``/``"png"``; ``quality`` for JPEG.
    * Nothing is written until everything is ready: work happens in a hidden folder
      inside ``out_dir`` that is renamed into place at the end and removed on failure.
      An existing ``images/`` or ``annotations.json`` is refused unless ``overwrite``.
    """
    from ..io.coco import plan_export, write_coco

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
    for opt, val in (("image_ids", image_ids), ("annotation_ids", annotation_ids)):
        if val not in ("auto", "keep"):
            raise OptionError(opt, val, "'auto' or 'keep'")
    image_root = Path(image_dir)
    if not image_root.is_dir():
        raise OptionError("image_dir", str(image_root), "an existing folder of images")
    out_root = Path(out_dir)
    target = str(out_root / "annotations.json")

    # everything that can be checked before work starts
    plan_export(ds, image_ids=image_ids, annotation_ids=annotation_ids, target=target)
    images, anns = ds.images, ds.annotations
    n_img = len(images)
    sources = [image_root / str(images.file_name[i]) for i in range(n_img)]
    missing = [i for i, p in enumerate(sources) if not p.is_file()]
    if missing:
        i = missing[0]
        more = f" ({len(missing)} images missing in all)" if len(missing) > 1 else ""
        raise InputError(str(sources[i]), f"images[{i}].file_name",
                         f"image file not found under {str(image_root)!r}{more}")
    perms = _category_permutations(ds, pipe.keypoint_flip_map)
    _check_keypoint_lengths(ds, perms)
    originals, copy_names = _output_names(ds, copies, keep_originals, format)

    staging, created = _prepare_output(out_root, image_root, overwrite)
    try:
        job = _Job(pipe, seed, str(staging / "images"), quality, perms, ignore_negative_samples)
        tasks = (
            _Task(i, int(images.width[i]), int(images.height[i]), str(sources[i]), originals[i],
                  copy_names[i], AnnotationColumns.from_table(anns, ds.annotation_rows(i)))
            for i in range(n_img)
        )
        if engine == "ray":
            results = _execute_ray(list(tasks), job, n_img, address, progress)
        elif engine == "local":
            results = _execute(tasks, job, n_img, workers, progress)
        else:
            raise OptionError("engine", engine, "'local' or 'ray'")
        out_ds, summary_counts = _assemble(ds, results, keep_originals, image_ids,
                                           annotation_ids, ignore_negative_samples)
        write_coco(out_ds, staging / "annotations.json", image_ids="keep",
                   annotation_ids="keep")
        _commit(staging, out_root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            try:
                out_root.rmdir()
            except OSError:
                pass
        raise
    summary = AugmentSummary(
        output=str(out_root), source_images=n_img, images=len(out_ds.images),
        augmented_images=summary_counts["augmented"], source_annotations=len(anns),
        annotations=len(out_ds.annotations), dropped_annotations=sum(
            summary_counts["dropped"].values()),
        dropped_by_reason=summary_counts["dropped"],
        skipped_negative_images=summary_counts["skipped"],
        seconds=time.perf_counter() - started)
    return out_ds, summary


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


def _pool_context() -> Any:
    """``fork`` on Linux while this process runs one Python thread (fast: workers inherit
    the imported modules, and scripts need no ``__main__`` guard); otherwise a fork
    server (Linux) or fresh interpreters."""
    import multiprocessing
    import sys
    import threading

    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if sys.platform.startswith("linux") and "forkserver" in methods:
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def _execute_ray(tasks: list[Any], job: _Job, total: int, address: str | None,
                 progress: Progress | None) -> list[ImageResult]:
    """The same per-image function as the local pool, run on a Ray cluster."""
    results: list[ImageResult] = []
    for res in run_on_ray(_run, tasks, job, address=address, progress=progress):
        if isinstance(res, JobFailure):
            raise InputError(None, None, f"augmenting image {res.index + 1} of {total} failed "
                             f"on Ray: {res.error}")
        if isinstance(res, _Failure):
            raise res.rebuild()
        results.append(res)
    return results


def _execute(tasks: Any, job: _Job, total: int, workers: int,
             progress: Progress | None) -> list[ImageResult]:
    results: list[ImageResult] = []

    def take(res: ImageResult | _Failure) -> None:
        """Collect one result in order (or raise the worker's error)."""
        if isinstance(res, _Failure):
            raise res.rebuild()
        results.append(res)
        if progress is not None:
            progress(len(results), total)

    if workers <= 1 or total <= 1:
        for task in tasks:
            take(_run(task, job))
        return results
    from concurrent.futures import Future, ProcessPoolExecutor

    ctx = _pool_context()
    forked = ctx.get_start_method() == "fork"
    pending: collections.deque[Future[ImageResult | _Failure]] = collections.deque()
    # OpenCV's native thread pool does not survive a fork: while workers are forked,
    # OpenCV runs single-threaded here (its pool idle), and gets its threads back after
    cv2 = _pixels._import_cv2() if forked and "cv2" in sys.modules else None
    cv_threads = cv2.getNumThreads() if cv2 is not None else None
    if cv2 is not None:
        cv2.setNumThreads(1)
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             initializer=_init_worker) as pool:
        try:
            for task in tasks:
                pending.append(pool.submit(_run, task, job))
                if len(pending) >= 2 * workers:
                    _restore_threads(cv2, cv_threads)
                    cv2 = None
                    take(pending.popleft().result())
            _restore_threads(cv2, cv_threads)
            while pending:
                take(pending.popleft().result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        finally:
            _restore_threads(cv2, cv_threads)
    return results


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


def _commit(staging: Path, out_root: Path) -> None:
    """Move the staged images/ and annotations.json into place (old ones replaced)."""
    final_images = out_root / "images"
    old: Path | None = None
    if final_images.exists():
        old = Path(tempfile.mkdtemp(prefix=".augment-old-", dir=out_root))
        os.rename(final_images, old / "images")
    os.rename(staging / "images", final_images)
    os.replace(staging / "annotations.json", out_root / "annotations.json")
    shutil.rmtree(staging, ignore_errors=True)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
