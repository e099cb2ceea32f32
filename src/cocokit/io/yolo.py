"""Ultralytics YOLO: write a dataset as YOLO labels, read YOLO labels back as COCO.

Layout (the one Ultralytics trains on)::

    OUT/
      data.yaml              path, train/val/test and one key per split, nc, names
      images/<split>/...     the image files: symlinks, copies, or left to you
      labels/<split>/...     one .txt per image: same relative path, suffix .txt
      labels/<split>/image_sizes.json   only when no images are written (images="none")

Without images (``images="none"``) the labels alone cannot be read back: their
coordinates are divided by image sizes that only the images (or the COCO file) hold. So
such an export also writes :data:`SIZES_FILE` in each label folder, the sizes table
``{file_name: [width, height]}`` of its images (file names relative to the split
folder), and :func:`read_yolo` reads it for a label file whose image is not there.
Ultralytics does not look at it (it finds labels from the image paths).

``data.yaml`` always has ``train`` and ``val`` (Ultralytics' ``check_det_dataset``
refuses it without them): split names map to them (``train2017`` -> ``train``,
``val2017``/``valid`` -> ``val``, ``test-dev`` -> ``test``), and a missing one points at
an existing split, with a note (``no val split: val points at train``); see
:func:`yaml_splits`.

Ultralytics finds the label of an image by replacing the last ``/images/`` of the image
path with ``/labels/`` and the suffix with ``.txt``; file names with sub-folders
(``batch_1/0001.jpg``) keep them under both trees.

Label rows, one object per row, numbers separated by single spaces:

* ``task="detect"``: ``cls cx cy w h``, the box centre and size divided by the image
  width and height;
* ``task="segment"``: ``cls x1 y1 x2 y2 ...``, one polygon of at least 3 points, each
  coordinate divided by the image width (x) or height (y). Ultralytics treats a file as
  segments as soon as one row has more than 6 numbers, so in a segment export every
  row is a polygon: an annotation without one (a box only, or an RLE mask) is written
  as the 4-corner polygon of its box, and the summary counts them.

Class indices are 0..K-1 in the order of the dataset's categories, whatever the COCO
category ids are (COCO's 80 categories have ids 1..90 with gaps; their class indices are
0..79); ``data.yaml`` writes that mapping down twice: ``names`` (index -> name, for
Ultralytics) and ``coco_categories`` (the full COCO category records in index order,
which Ultralytics ignores and :func:`read_yolo` uses to give back the original ids).

A multi-part polygon (a COCO segmentation with several rings) becomes one row, joined as
Ultralytics' own COCO converter joins it (``merge_multi_segment``), so that the single
ring Ultralytics reads (and fills with ``cv2.fillPoly``) covers the same pixels: each
ring is linked to the next at the pair of their vertices closest to each other (in
pixels, not counting points where parts touch); the path goes once around the first
ring back to its link vertex, crosses to the next ring, follows it forward to the vertex
that links to the ring after it, and so on; it goes all the way around the last ring,
then walks back through the rings in reverse order along their remaining vertices,
crossing each link a second time in the opposite direction. The links are thus
zero-width "bridges" that add no area; where parts overlap, a filler with the even-odd
rule (pycocotools) leaves the overlap empty, as it does for Ultralytics' own join: a
single ring cannot say more. Unlike Ultralytics' function, which mirrors a middle ring
without renumbering its link vertices (so its bridges can land next to the closest
points), the bridges here always join the closest vertices and no ring is mirrored, so
:func:`split_rings` can undo the join exactly on import (each bridge is an edge walked
once in each direction).

Coordinates are written with the shortest text that reads back as the same float
(``repr``), so COCO -> YOLO -> COCO gives back boxes and polygons to float precision;
``precision=N`` writes N significant digits instead (Ultralytics' converter uses 6).
Coordinates outside the image are clamped onto its border by default (Ultralytics rejects
a whole image as corrupt when a coordinate is beyond 1.01 or below -0.01): a box is cut
to the image; a polygon vertex moves to the nearest border point, which for the slight
overshoots of real annotations is close to cutting the shape at the border (for shapes
far outside, use the clip transform first). Crowd annotations are skipped by default, as
Ultralytics' converter does; boxes and polygons with no extent left are skipped.

Writing is all-or-nothing per call: every check (categories, file names, image files and
their sizes) runs before anything is written; labels and image links are written into
hidden folders beside their targets and renamed into place at the end (an existing
``labels/<split>`` is replaced by a rename, and Ultralytics' stale ``labels/<split>.cache``
removed); ``data.yaml`` is written last, to a temporary file renamed over the old one, so
it is never half-written. Exporting one split at a time into the same folder adds each
split to ``data.yaml`` (the class names must be the same).

Reading takes ``data.yaml`` through the one YAML reader (:mod:`cocokit.io.yamlfile`: a
size limit, no aliases, a nesting limit) and the label rows as they are: a value the
format does not allow is an :class:`~cocokit.errors.InputError` naming the label file,
the line and the value, never dropped or clamped: a class index not in ``names``, a row
of the wrong length (a polygon with an odd count of coordinates), a non-finite number, a
negative box width or height, a coordinate outside [0, 1] by more than
:data:`COORD_TOLERANCE` (0.01, Ultralytics' own bound; values within it are kept as
written). ``nc`` must agree with ``names``.

Reading sizes images from their file headers with Pillow (no pixel decoding), swapping
width and height for JPEG files whose EXIF orientation is a quarter turn, as Ultralytics'
``exif_size`` does (it checks orientations 6 and 8; 5 and 7, the mirrored quarter turns
that OpenCV also applies on loading, swap here too), or from a sizes table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import msgspec
import numpy as np

from ..contract import InvalidPolicy
from ..dataset import Annotations, Categories, Dataset, Images, plain
from ..errors import InputError, IntegrityError, OptionError
from ..geometry import (
    Polygons,
    keypoint_flip_permutation,
    oriented_boxes,
    parse_polygons,
    polygon_bboxes,
    segmentation_bboxes,
    shoelace_areas,
)
from ..problems import found_value, short_value
from . import files
from .atomic import atomic_write, current_umask, output_error, output_fault
from .coco import screen_export
from .yamlfile import parse_yaml, read_yaml

__all__ = [
    "COORD_TOLERANCE",
    "IMG_FORMATS",
    "MAX_CLASSES",
    "SIZES_FILE",
    "PoseShape",
    "YoloExportSummary",
    "YoloSplitSummary",
    "flip_index",
    "image_size",
    "join_rings",
    "labels_only_note",
    "load_data_yaml",
    "pose_shape",
    "read_yolo",
    "split_rings",
    "split_role",
    "write_yolo",
    "yaml_splits",
]

Task = Literal["detect", "segment", "pose", "obb"]
ReadTask = Literal["auto", "detect", "segment", "pose", "obb"]
ImageMode = Literal["link", "copy", "none"]
CrowdMode = Literal["skip", "keep"]
Progress = Callable[[int, int], None]
PathLike = str | os.PathLike[str]
SizesTable = PathLike | Mapping[str, Any] | Dataset

#: Image suffixes Ultralytics loads (lower case, without the dot).
IMG_FORMATS = frozenset({"bmp", "dng", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp", "pfm",
                         "heic"})

_RESERVED_KEYS = frozenset({"path", "names", "nc", "download", "coco_categories", "kpt_shape",
                            "flip_idx", "kpt_names", "channels", "yaml_file"})
_KNOWN_SPLITS = ("train", "val", "validation", "test", "minival")
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_CHUNK = 20_000
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_JSON = msgspec.json.Encoder()
_KPT_NOTE = ("keypoint names kept in data.yaml (kpt_names, and in coco_categories); "
             "flip_idx from their left/right names")
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
#: The sizes table an export without images writes in each ``labels/<split>/`` folder:
#: ``{file_name: [width, height]}``, file names relative to the split folder (the module
#: docstring); :func:`read_yolo` reads it for label files without their image.
SIZES_FILE = "image_sizes.json"


def labels_only_note(split: str) -> str:
    """The note of an export that wrote no images (``images="none"``; ``cocokit convert
    --to yolo`` without ``-i``): what it wrote instead."""
    return (f"no images written: labels and data.yaml only, and the image sizes in "
            f"labels/{split}/{SIZES_FILE} for reading the labels back")


# -- summaries ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class YoloSplitSummary:
    """What was written for one split.

    ``images``: label files written (one per image); ``rows``: label rows (objects);
    ``negatives``: images whose label file is empty; ``skipped_crowd``: crowd
    annotations left out (``crowd="skip"``); ``skipped_empty``: annotations with no
    usable geometry (no box and no polygon, or a box of zero width or height after
    clipping); ``box_as_polygon``: segment rows written as the 4 corners of the box
    because the annotation had no polygon; ``clipped``: rows with a coordinate moved
    onto the image border; ``unsupported_suffix``: images whose suffix Ultralytics does
    not load (see :data:`IMG_FORMATS`); ``image_files``: images linked or copied;
    ``keypoints_padded`` (pose): rows whose object had fewer keypoints than
    ``kpt_shape`` (or none), padded with unlabelled ``0 0 0``; ``rotated_from_polygon``
    (obb): rows written as the minimum-area rotated rectangle of a polygon that is not
    4 points.
    """

    name: str
    images: int
    rows: int
    negatives: int
    skipped_crowd: int
    skipped_empty: int
    box_as_polygon: int
    clipped: int
    unsupported_suffix: int
    image_files: int
    skipped: tuple[str, ...] = ()
    keypoints_padded: int = 0
    rotated_from_polygon: int = 0


@dataclasses.dataclass(frozen=True)
class YoloExportSummary:
    """What :func:`write_yolo` wrote: the folder, ``data.yaml``, the class names and one
    :class:`YoloSplitSummary` per split written; ``val_is_train`` is True when no ``val``
    split exists and ``data.yaml`` names the train images as ``val`` (Ultralytics
    requires the key); ``notes`` says which of ``train``/``val`` point at another split
    ("no val split: val points at train ...", see :func:`yaml_splits`)."""

    path: str
    data_yaml: str
    task: str
    names: tuple[str, ...]
    splits: dict[str, YoloSplitSummary]
    val_is_train: bool
    notes: tuple[str, ...] = ()

    @property
    def images(self) -> int:
        """Label files written, all splits."""
        return sum(s.images for s in self.splits.values())

    @property
    def rows(self) -> int:
        """Label rows written, all splits."""
        return sum(s.rows for s in self.splits.values())

    @property
    def skipped(self) -> tuple[str, ...]:
        """Invalid records left out (``invalid="skip"``), all splits, as ``split: path: why``."""
        return tuple(f"{name}: {p}" for name, s in self.splits.items() for p in s.skipped)


# -- small helpers -----------------------------------------------------------------------


def _check_choice(option: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise OptionError(option, value, " or ".join(repr(a) for a in allowed))


def _fmt(values: np.ndarray, precision: int | None) -> list[str]:
    """Numbers as text: shortest round-trip repr, or ``precision`` significant digits."""
    vals = (np.asarray(values, np.float64) + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    if precision is None:
        return list(map(repr, vals))
    spec = f".{precision}g"
    return [format(v, spec) for v in vals]


_PLAIN_SCALAR = re.compile(r"^[A-Za-z_/.][A-Za-z0-9_ ./()+\-]*$")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "nan",
                         "inf"})


def _yaml_str(s: str) -> str:
    """A YAML scalar for ``s``: plain when that reads back as the same string, else a
    double-quoted (JSON) string."""
    if (_PLAIN_SCALAR.match(s) and s == s.strip() and s.lower().lstrip(".") not in _YAML_WORDS
            and " #" not in s):
        return s
    return json.dumps(s, ensure_ascii=False)


# -- the join of multi-part polygons -----------------------------------------------------


def _nearest_pair(a: np.ndarray, b: np.ndarray, shared: set[tuple[float, float]],
                  ) -> tuple[int, int]:
    """Indices (i, j) of the closest vertices a[i], b[j] (the first such pair in row
    order), leaving out vertices in ``shared`` (points of several rings) and coinciding
    pairs; (0, 0) when nothing is left."""
    skip_a = np.array([tuple(p) in shared for p in a.tolist()], bool) if shared else None
    skip_b = np.array([tuple(p) in shared for p in b.tolist()], bool) if shared else None
    best = (np.inf, 0, 0)
    step = max(1, 1_000_000 // max(len(b), 1))
    for s in range(0, len(a), step):
        d = ((a[s : s + step, None, :] - b[None, :, :]) ** 2).sum(-1)
        d[d == 0] = np.inf
        if skip_a is not None and skip_b is not None:
            d[skip_a[s : s + step]] = np.inf
            d[:, skip_b] = np.inf
        k = int(np.argmin(d))
        i, j = divmod(k, len(b))
        if d[i, j] < best[0]:
            best = (float(d[i, j]), s + i, j)
    return best[1], best[2]


def join_rings(rings: Sequence[np.ndarray | Sequence[float]]) -> np.ndarray:
    """Join the rings of a multi-part polygon into one closed path, as Ultralytics does.

    ``rings``: (k, 2) arrays or flat ``[x1, y1, ...]`` lists. Returns an (m, 2) array.
    Consecutive rings are linked at their closest vertices (leaving out points that
    belong to several rings, where parts touch, so that no link has zero length or runs
    along an edge); the path goes around the
    first ring, forward along each middle ring to its next link, around the last ring,
    and back along the rest of each middle ring, so every link is walked once each way
    (a zero-width bridge). A single ring is returned as it is. See the module docstring.
    """
    rs = [np.asarray(r, np.float64).reshape(-1, 2) for r in rings]
    rs = [r for r in rs if len(r)]
    if not rs:
        return np.zeros((0, 2), np.float64)
    if len(rs) == 1:
        return rs[0].copy()
    seen: set[tuple[float, float]] = set()
    shared: set[tuple[float, float]] = set()
    for r in rs:
        pts = {(float(x), float(y)) for x, y in r.tolist()}
        shared |= seen & pts
        seen |= pts
    links = [_nearest_pair(rs[i], rs[i + 1], shared) for i in range(len(rs) - 1)]
    forward: list[np.ndarray] = []
    back: list[np.ndarray] = []
    last = len(rs) - 1
    for i, ring in enumerate(rs):
        if i == 0 or i == last:
            start = links[0][0] if i == 0 else links[-1][1]
            forward.append(np.concatenate([ring[start:], ring[: start + 1]]))
            continue
        entry, leave = links[i - 1][1], links[i][0]
        if leave >= entry:  # forward entry..leave, back leave..end, start..entry
            forward.append(ring[entry : leave + 1])
            back.append(np.concatenate([ring[leave:], ring[: entry + 1]]))
        else:  # forward entry..end, start..leave, back leave..entry
            forward.append(np.concatenate([ring[entry:], ring[: leave + 1]]))
            back.append(ring[leave : entry + 1])
    return np.concatenate(forward + back[::-1])


def split_rings(points: np.ndarray | Sequence[float]) -> list[np.ndarray] | None:
    """Undo :func:`join_rings`: the rings of a joined path, or None if it has no bridges.

    ``points`` is an (m, 2) array or a flat ``[x1, y1, ...]`` list, the path closed
    implicitly (last point to first). A
    bridge is an edge between two distinct points that the path walks once in each
    direction, the second time after everything reached through it; bridges nest, so a
    stack rebuilds the rings. Returns None when the path has no such edge, or when the
    edges do not nest (then the path is not a join and is best kept as one ring). Rings
    of fewer than 3 points (a spike walked out and back) are dropped.
    """
    flat = (np.asarray(points, np.float64).ravel().tolist() if isinstance(points, np.ndarray)
            else list(points))
    tup = list(zip(flat[0::2], flat[1::2], strict=True))
    m = len(tup)
    if m < 4 or len(set(tup)) == m:
        return None  # a join repeats at least its first link vertex
    pts = np.array(tup, np.float64)
    edges = [(tup[k], tup[(k + 1) % m]) for k in range(m)]
    edge_set = set(edges)
    candidate = [p != q and (q, p) in edge_set for p, q in edges]
    if not any(candidate):
        return None
    # each ring: (the order it was entered in, its vertex indices); a stack of the rings
    # left through a bridge not yet walked back
    stack: list[tuple[tuple[Any, Any], tuple[int, list[int]]]] = []
    current: tuple[int, list[int]] = (0, [0])
    entered = 1
    rings: list[tuple[int, list[int]]] = []
    for k in range(m):
        nxt = (k + 1) % m
        if candidate[k]:
            p, q = edges[k]
            if stack and stack[-1][0] == (q, p):
                rings.append(current)
                _, current = stack.pop()
                verts = current[1]
                if nxt != 0 and (not verts or tup[verts[-1]] != tup[nxt]):
                    verts.append(nxt)
            else:
                stack.append(((p, q), current))
                current = (entered, [nxt] if nxt != 0 else [])
                entered += 1
        elif nxt != 0:
            current[1].append(nxt)
    if stack:
        return None
    rings.append(current)
    out: list[np.ndarray] = []
    for _, ring in sorted(rings, key=lambda r: r[0]):
        if len(ring) > 1 and tup[ring[0]] == tup[ring[-1]]:
            ring = ring[:-1]
        if len(ring) >= 3:
            out.append(pts[ring])
    return out or None


# -- data.yaml ---------------------------------------------------------------------------


def load_data_yaml(path: PathLike) -> dict[str, Any]:
    """Read a data.yaml as a dict, with the one YAML reader and its limits
    (:func:`cocokit.io.yamlfile.read_yaml`: size, no aliases, nesting, duplicate keys).

    Raises :class:`~cocokit.errors.InputError` naming the file and line.
    """
    p = Path(path)
    data = read_yaml(p, "data.yaml")
    if not isinstance(data, dict):
        raise InputError(str(p), None, f"expected a mapping of keys, {found_value(data)}")
    return data


def _class_names(data: Mapping[str, Any], file: str) -> list[str]:
    """The class names of a data.yaml: ``names``, else ``class_0..`` for ``nc``; ``nc``
    (when given) must be a whole number agreeing with ``names``, and alone at most
    :data:`MAX_CLASSES`."""
    nc = data.get("nc")
    if nc is not None and (isinstance(nc, bool) or not isinstance(nc, int) or nc < 0):
        raise InputError(file, "nc", f"expected the number of classes, {found_value(nc)}")
    if "names" not in data:
        if nc is None:
            raise InputError(file, "names", "missing: the class names are needed")
        if nc > MAX_CLASSES:
            raise InputError(file, "nc", f"{nc} classes without names refused (at most "
                             f"{MAX_CLASSES}); list the names")
        return [f"class_{i}" for i in range(nc)]
    names = _names_list(data["names"], file)
    if nc is not None and nc != len(names):
        raise InputError(file, "nc", f"nc is {nc} but names lists {len(names)} classes")
    return names


def _names_list(names: Any, file: str) -> list[str]:
    """data.yaml ``names`` (a list, or a mapping index -> name) as a list by index."""
    if isinstance(names, list):
        return [str(x) for x in names]
    if isinstance(names, dict):
        bad = next((k for k in names if isinstance(k, bool) or not (
            isinstance(k, int) or (isinstance(k, str) and k.isdecimal()))), None)
        if bad is not None:
            raise InputError(file, "names", f"expected integer class indices as keys, "
                             f"{found_value(bad)}")
        idx = {int(k): str(v) for k, v in names.items()}
        if len(idx) != len(names):
            raise InputError(file, "names", "a class index is given twice")
        if sorted(idx) != list(range(len(idx))):
            raise InputError(file, "names", f"class indices must be 0..{len(idx) - 1}, got "
                             f"{sorted(idx)[:10]}")
        return [idx[i] for i in range(len(idx))]
    raise InputError(file, "names", f"expected a list or a mapping, got {type(names).__name__}")


_ROLES = ("train", "val", "test")


def split_role(name: str) -> str | None:
    """The data.yaml key a split name stands for: ``train*`` -> ``train``, ``val*`` and
    ``valid*`` -> ``val``, ``test*`` -> ``test`` (case aside), else None.

    >>> [split_role(n) for n in ("train2017", "val2017", "validation", "test-dev", "fold1")]
    ['train', 'val', 'val', 'test', None]
    """
    low = name.lower()
    for role, prefixes in (("train", ("train",)), ("val", ("val", "valid")),
                           ("test", ("test",))):
        if low.startswith(prefixes):
            return role
    return None


def yaml_splits(names: Sequence[str], kept: Mapping[str, str | list[str]] | None = None,
                ) -> tuple[dict[str, str | list[str]], dict[str, str]]:
    """The split keys of data.yaml for the splits ``names`` (written to ``images/<name>``)
    and the ``kept`` entries of an earlier data.yaml; returns (entries, aliases).

    Ultralytics' ``check_det_dataset`` refuses a data.yaml without ``train`` and ``val``,
    so they are always there: a split named ``train``/``val``/``test`` is its own key;
    otherwise the key points at the splits whose names stand for it (:func:`split_role`:
    ``val2017`` -> ``val``; several make a list). A missing ``train`` points at ``val``
    (else ``test``, else the first split), a missing ``val`` at what ``train`` is; ``aliases``
    maps each such key to the key or split it points at. Every split also keeps its own
    key (``val2017: images/val2017``), so reading the folder back names it as exported.
    """
    own: dict[str, str | list[str]] = {name: f"images/{name}" for name in names}
    for key, value in (kept or {}).items():
        own.setdefault(key, value)
    entries: dict[str, str | list[str]] = {}
    for role in _ROLES:
        if role in own:
            entries[role] = own[role]
            continue
        values: list[str] = []
        for key, value in own.items():
            if key not in _ROLES and split_role(key) == role:
                values += [value] if isinstance(value, str) else list(value)
        if values:
            entries[role] = values[0] if len(values) == 1 else values
    aliases: dict[str, str] = {}
    if "train" not in entries and own:
        found = next((r for r in ("val", "test") if r in entries), None)
        source = found if found is not None else next(iter(own))
        entries["train"] = entries[found] if found is not None else own[source]
        aliases["train"] = source
    if "val" not in entries and "train" in entries:
        entries["val"] = entries["train"]
        aliases["val"] = aliases.get("train", "train")  # what train itself points at
    ordered = {r: entries[r] for r in _ROLES if r in entries}
    for key, value in own.items():
        ordered.setdefault(key, value)
    return ordered, aliases


def _alias_note(role: str, source: str) -> str:
    return f"no {role} split: {role} points at {source} (Ultralytics requires train and val)"


def _aliased_roles(data: Mapping[str, Any]) -> set[str]:
    """The train/val/test keys of an earlier data.yaml that only point at another split
    (as :func:`yaml_splits` writes them): they are worked out anew, not kept."""
    exported = {json.dumps(v): k for k, v in data.items()
                if isinstance(k, str) and v == f"images/{k}"}
    out = set()
    for role in _ROLES:
        if role in data:
            owner = exported.get(json.dumps(data[role]))
            if owner is not None and owner != role:
                out.add(role)
            elif isinstance(data[role], list) and all(
                    json.dumps(v) in exported for v in data[role]):
                out.add(role)
    return out


def _dump_data_yaml(root: Path, splits: Mapping[str, str | list[str]], names: Sequence[str],
                    categories: Sequence[Mapping[str, Any]], aliases: Mapping[str, str],
                    task_lines: Sequence[str] = ()) -> bytes:
    out = [
        "# Ultralytics YOLO dataset written by cocokit",
        "# class index i is the i-th category of the COCO file (see coco_categories below)",
        f"path: {_yaml_str(str(root))}",
    ]
    for key, value in splits.items():
        if key in aliases:
            out.append(f"# {_alias_note(key, aliases[key])}")
        if isinstance(value, list):
            out.append(f"{key}: [{', '.join(_yaml_str(v) for v in value)}]")
        else:
            out.append(f"{key}: {_yaml_str(value)}")
    out.append(f"nc: {len(names)}")
    out.append("names:")
    out.extend(f"  {i}: {_yaml_str(n)}" for i, n in enumerate(names))
    out.extend(task_lines)
    out.append("# the COCO category of each class index, in index order (read back by cocokit;")
    out.append("# Ultralytics ignores this key)")
    out.append("coco_categories:")
    out.extend(f"  - {json.dumps(plain(dict(c)), ensure_ascii=False)}" for c in categories)
    return ("\n".join(out) + "\n").encode("utf-8")


# -- image headers -----------------------------------------------------------------------


def image_size(path: PathLike) -> tuple[int, int]:
    """(width, height) of an image as a trainer sees it, from the file header only.

    Pillow reads the header without decoding pixels. For a JPEG whose EXIF orientation
    is a quarter turn (5, 6, 7 or 8) width and height are swapped, as OpenCV rotates the
    image on loading (Ultralytics' ``exif_size`` swaps for 6 and 8).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if im.format in ("JPEG", "MPO"):
                    with contextlib.suppress(Exception):
                        if im.getexif().get(274) in _QUARTER_TURNS:
                            w, h = h, w
    except FileNotFoundError:
        raise InputError(os.fspath(path), None, "image file not found") from None
    except Image.DecompressionBombError as e:
        raise InputError(os.fspath(path), None, f"{e}; give the image sizes in a sizes "
                         "table instead") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise InputError(os.fspath(path), None, f"cannot read the image header: {e}") from None
    return int(w), int(h)


# -- export ------------------------------------------------------------------------------


@dataclasses.dataclass
class _SplitPlan:
    name: str
    ds: Dataset
    label_rel: list[str]          # per image row: labels/<split>/<this>
    image_rel: list[str]          # per image row: images/<split>/<this>
    image_src: list[str] | None   # per image row: the source file (link/copy), else None
    ann_order: np.ndarray         # annotation rows to write, grouped by image row
    ann_offsets: np.ndarray       # image row i owns ann_order[ann_offsets[i]:ann_offsets[i+1]]
    bbox: np.ndarray              # per annotation row (all rows): xywh, computed where absent
    skipped_crowd: int
    unsupported_suffix: int
    skipped: tuple[str, ...] = ()

    def image_sizes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(width, height) as floats of the image of each annotation row."""
        ii = self.ds.image_index[rows]
        return (self.ds.images.width[ii].astype(np.float64),
                self.ds.images.height[ii].astype(np.float64))


def _categories_key(ds: Dataset) -> tuple[tuple[int, str], ...]:
    return tuple(zip(ds.categories.id.tolist(), map(str, ds.categories.name.tolist()),
                     strict=True))


def _layout_name(file_name: str) -> str:
    """The path of an image under images/<split>/: file_name when it is a safe relative
    path, else its last component."""
    p = PurePosixPath(file_name)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        return p.name
    return str(p)


def _plan_split(name: str, ds: Dataset, images: ImageMode, image_dir: Path | None,
                crowd: CrowdMode, check_sizes: bool, target: str,
                invalid: InvalidPolicy, no_images: str = "images='none'") -> _SplitPlan:
    # the export contract: integrity and invalid records, as a COCO export checks them;
    # YOLO writes no ids, so only image ids that make references ambiguous matter (auto)
    screened = screen_export(ds, image_ids="auto", annotation_ids="auto", target=target,
                             invalid=invalid)
    if screened.skipped:
        ds = ds.replace(images=ds.images.take(screened.image_rows),
                        annotations=ds.annotations.take(screened.ann_rows))
    source = ds.source
    anns = ds.annotations
    imgs = ds.images
    file_names = [str(f) for f in imgs.file_name.tolist()]
    image_rel = [_layout_name(f) for f in file_names]
    for r, rel in enumerate(image_rel):
        if not rel or rel in (".", ""):
            raise InputError(source, f"images[{r}].file_name", f"not a file name: "
                             f"{file_names[r]!r}")
    label_rel = [str(PurePosixPath(rel).with_suffix(".txt")) for rel in image_rel]
    seen: dict[str, int] = {}
    clashes: list[str] = []
    for r, lab in enumerate(label_rel):
        first = seen.setdefault(lab, r)
        if first != r:
            clashes.append(f"images[{r}].file_name {file_names[r]!r} and images[{first}]."
                           f"file_name {file_names[first]!r} both need labels/{name}/{lab}")
    if clashes:
        raise IntegrityError(clashes, target)
    unsupported = sum(1 for rel in image_rel
                      if PurePosixPath(rel).suffix[1:].lower() not in IMG_FORMATS)

    image_src: list[str] | None = None
    if images != "none":
        if image_dir is None:
            if source and os.path.isfile(source):
                image_dir = Path(source).parent
            else:
                raise OptionError("image_dir", None, "the folder of the images (needed to "
                                  f"{images} them; or {no_images})")
        image_src = [os.path.abspath(os.path.join(image_dir, f)) for f in file_names]
        missing = [f"images[{r}].file_name: {s}" for r, s in enumerate(image_src)
                   if not os.path.isfile(s)]
        if missing:
            raise InputError(source, None, f"{len(missing)} image file(s) not found under "
                             f"{str(image_dir)!r} (give the image folder, or {no_images}): "
                             + "; ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        if check_sizes:
            wrong: list[str] = []
            for r, s in enumerate(image_src):
                w, h = image_size(s)
                if w != int(imgs.width[r]) or h != int(imgs.height[r]):
                    wrong.append(f"images[{r}] {file_names[r]!r}: file is {w}x{h}, "
                                 f"record says {int(imgs.width[r])}x{int(imgs.height[r])}")
            if wrong:
                raise InputError(source, None, f"{len(wrong)} image(s) differ in size from "
                                 "their record, so normalized labels would be wrong (sizes "
                                 "are after EXIF rotation; check_sizes=False skips this): "
                                 + "; ".join(wrong[:5]) + (" ..." if len(wrong) > 5 else ""))

    keep = np.ones(len(anns), bool)
    skipped_crowd = 0
    if crowd == "skip":
        is_crowd = anns.crowd
        skipped_crowd = int(is_crowd.sum())
        keep &= ~is_crowd
    rows = np.flatnonzero(keep)
    img_of = ds.image_index[rows]
    order = rows[np.argsort(img_of, kind="stable")]
    counts = np.bincount(img_of, minlength=len(imgs))
    offsets = np.zeros(len(imgs) + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])

    bbox = anns.bbox
    need = np.isnan(bbox[:, 0]) & keep & np.array([s is not None for s in anns.segmentation],
                                                  bool).reshape(-1)
    if need.any():
        bbox = bbox.copy()
        ii = ds.image_index[need]
        bbox[need] = segmentation_bboxes(anns.segmentation[need], imgs.height[ii], imgs.width[ii])
    return _SplitPlan(name, ds, label_rel, image_rel, image_src, order, offsets, bbox,
                      skipped_crowd, unsupported, tuple(screened.skipped))


@dataclasses.dataclass
class _Counts:
    rows: int = 0
    skipped_empty: int = 0
    box_as_polygon: int = 0
    clipped: int = 0
    keypoints_padded: int = 0
    rotated_from_polygon: int = 0


def _box_lines(plan: _SplitPlan, rows: np.ndarray, cls: list[str], clip: bool,
               precision: int | None, counts: _Counts) -> list[str | None]:
    W, H = plan.image_sizes(rows)
    x, y, w, h = plan.bbox[rows].T
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(plan.bbox[rows]).all(axis=1) & (w > 0) & (h > 0)
        if clip:
            x1, y1 = np.clip(x, 0, W), np.clip(y, 0, H)
            x2, y2 = np.clip(x + w, 0, W), np.clip(y + h, 0, H)
            moved = ok & ((x1 != x) | (y1 != y) | (x2 != x + w) | (y2 != y + h))
            x, y = np.where(moved, x1, x), np.where(moved, y1, y)
            w, h = np.where(moved, x2 - x1, w), np.where(moved, y2 - y1, h)
            ok &= (w > 0) & (h > 0)
            counts.clipped += int((moved & ok).sum())
        cx, cy, nw, nh = (x + w / 2) / W, (y + h / 2) / H, w / W, h / H
    counts.skipped_empty += int((~ok).sum())
    counts.rows += int(ok.sum())
    parts = [_fmt(v, precision) for v in (cx, cy, nw, nh)]
    lines = list(map(" ".join, zip(cls, *parts, strict=True)))
    return [ln if k else None for ln, k in zip(lines, ok.tolist(), strict=True)]


def _polygon_lines(plan: _SplitPlan, rows: np.ndarray, cls: list[str], clip: bool,
                   precision: int | None, counts: _Counts) -> list[str | None]:
    ds = plan.ds
    anns = ds.annotations
    W, H = plan.image_sizes(rows)
    kinds = anns.segmentation_kind[rows]
    try:
        polys = parse_polygons(anns.segmentation, rows[kinds == 1])
    except (ValueError, TypeError) as e:
        raise InputError(ds.source, "annotations[].segmentation", f"a polygon cannot be read: "
                         f"{e}") from None
    # per annotation of `rows`: its ring range in `polys` (rows that are not polygons: none)
    ring_start = np.zeros(len(rows), np.int64)
    ring_stop = np.zeros(len(rows), np.int64)
    pos = np.flatnonzero(kinds == 1)
    ring_start[pos], ring_stop[pos] = polys.offsets[:-1], polys.offsets[1:]
    ring_len = np.diff(polys.ring_offsets).tolist()
    ro = polys.ring_offsets.tolist()
    coords = polys.coords
    box = plan.bbox[rows]
    box_ok = (np.isfinite(box).all(axis=1) & (box[:, 2] > 0) & (box[:, 3] > 0)).tolist()
    # the points of each row: one ring, rings joined, or the box's corners
    pieces: list[np.ndarray] = []
    owner: list[int] = []
    from_box: list[bool] = []
    for j, (r0, r1) in enumerate(zip(ring_start.tolist(), ring_stop.tolist(), strict=True)):
        ks = [k for k in range(r0, r1) if ring_len[k] >= 3]
        if len(ks) == 1:
            pts = coords[ro[ks[0]] : ro[ks[0] + 1]]
        elif ks:
            pts = join_rings([coords[ro[k] : ro[k + 1]] for k in ks])
        elif box_ok[j]:
            bx, by, bw, bh = box[j]
            pts = np.array([[bx, by], [bx + bw, by], [bx + bw, by + bh], [bx, by + bh]])
        else:
            counts.skipped_empty += 1
            continue
        pieces.append(pts)
        owner.append(j)
        from_box.append(not ks)
    lines: list[str | None] = [None] * len(rows)
    if not pieces:
        return lines
    sizes = np.array([len(p) for p in pieces], np.int64)
    starts = np.zeros(len(pieces), np.int64)
    np.cumsum(sizes[:-1], out=starts[1:])
    own = np.array(owner, np.int64)
    norm = np.concatenate(pieces) / np.repeat(np.stack([W, H], axis=1)[own], sizes, axis=0)
    with np.errstate(invalid="ignore"):
        ok = np.logical_and.reduceat(np.isfinite(norm).all(axis=1), starts)
        moved = np.zeros(len(pieces), bool)
        if clip:
            clipped = np.clip(norm, 0.0, 1.0)
            moved = np.logical_or.reduceat((clipped != norm).any(axis=1), starts)
            norm = clipped
        extent = np.maximum.reduceat(norm, starts) - np.minimum.reduceat(norm, starts)
        ok &= (extent > 0).all(axis=1)  # something left inside the image
    counts.skipped_empty += int((~ok).sum())
    counts.rows += int(ok.sum())
    counts.clipped += int((moved & ok).sum())
    counts.box_as_polygon += int((np.array(from_box) & ok).sum())
    text = _fmt(norm.ravel(), precision)
    for j, a, n, keep in zip(owner, (2 * starts).tolist(), (2 * sizes).tolist(), ok.tolist(),
                             strict=True):
        if keep:
            lines[j] = cls[j] + " " + " ".join(text[a : a + n])
    return lines


# -- pose and obb rows -------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PoseShape:
    """The keypoints of a pose export: ``k`` keypoints of ``ndim`` values each (3: x, y,
    visibility), the keypoint names of each class index that has them, and
    ``flip_idx`` (the keypoint that each one becomes in a left-right flip)."""

    k: int
    ndim: int
    names: dict[int, list[str]]
    flip_idx: list[int]


def flip_index(names: Sequence[str]) -> list[int]:
    """``flip_idx`` for keypoint ``names``: the index of the name with left and right
    swapped (``left_eye`` <-> ``right_eye``), or the keypoint itself (``nose``).

    >>> flip_index(["nose", "left_eye", "right_eye"])
    [0, 2, 1]
    """
    return keypoint_flip_permutation(names).tolist()  # the one rule, augmentation's too


def pose_shape(ds: Dataset) -> PoseShape:
    """The :class:`PoseShape` of a dataset: ``k`` is the longest keypoint name list of
    its categories (or of its annotations' keypoints when no category names them);
    ``flip_idx`` comes from the names of the first category that has ``k`` of them
    (a category's own ``flip_idx`` key wins), else is the identity. A dataset without
    keypoints is an :class:`~cocokit.errors.OptionError`."""
    names: dict[int, list[str]] = {}
    flip: list[int] | None = None
    for i, cat in enumerate(ds.categories.records):
        kps = cat.get("keypoints")
        if isinstance(kps, list) and kps:
            names[i] = [str(n) for n in kps]
    k = max((len(v) for v in names.values()), default=0)
    lengths = [len(plain(kp)) // 3 for kp in ds.annotations.keypoints if kp is not None]
    k = max(k, max(lengths, default=0))
    if k == 0:
        raise OptionError("task", "pose", "a dataset with keypoints (categories with "
                          "'keypoints' names, annotations with 'keypoints')")
    for i, kp_names in names.items():
        if len(kp_names) == k:
            own = ds.categories.records[i].get("flip_idx")
            flip = ([int(v) for v in own] if isinstance(own, list) and len(own) == k
                    else flip_index(kp_names))
            break
    return PoseShape(k, 3, names, flip if flip is not None else list(range(k)))


def _pose_yaml_lines(shape: PoseShape) -> list[str]:
    """The data.yaml lines of a pose export (kpt_shape, flip_idx, kpt_names)."""
    out = ["# pose: keypoints per object, (x, y, visibility) each; names by class index",
           f"kpt_shape: [{shape.k}, {shape.ndim}]",
           f"flip_idx: [{', '.join(map(str, shape.flip_idx))}]"]
    if shape.names:
        out.append("kpt_names:")
        out += [f"  {i}: [{', '.join(_yaml_str(n) for n in names)}]"
                for i, names in shape.names.items()]
    return out


def _pose_lines(plan: _SplitPlan, rows: np.ndarray, cls: list[str], clip: bool,
                precision: int | None, counts: _Counts, shape: PoseShape,
                ) -> list[str | None]:
    """Rows ``cls cx cy w h x1 y1 v1 ... xk yk vk``: the box as in detect, then the
    keypoints divided by the image size, visibility as 0, 1 or 2. An object with fewer
    keypoints (or none) is padded with ``0 0 0`` (counted); a labelled keypoint outside
    the image is moved onto its border when ``clip`` (counted with the row)."""
    boxes = _box_lines(plan, rows, cls, clip, precision, counts)
    ds = plan.ds
    W, H = plan.image_sizes(rows)
    kp = np.zeros((len(rows), shape.k, 3), np.float64)
    short = np.zeros(len(rows), bool)
    for j, r in enumerate(rows.tolist()):
        value = ds.annotations.keypoints[r]
        arr = (np.asarray(plain(value), np.float64).reshape(-1, 3) if value is not None
               else np.zeros((0, 3)))
        if len(arr) > shape.k:
            raise InputError(ds.source, f"annotations[{r}].keypoints", f"{len(arr)} "
                             f"keypoints, more than the {shape.k} of kpt_shape")
        kp[j, : len(arr)] = arr
        short[j] = len(arr) < shape.k
    labelled = kp[:, :, 2] > 0
    x = np.where(labelled, kp[:, :, 0] / W[:, None], 0.0)
    y = np.where(labelled, kp[:, :, 1] / H[:, None], 0.0)
    moved = np.zeros(len(rows), bool)
    bx, by, bw, bh = plan.bbox[rows].T
    with np.errstate(invalid="ignore"):
        box_moved = clip & ((bx < 0) | (by < 0) | (bx + bw > W) | (by + bh > H))
    if clip:
        cx, cy = np.clip(x, 0.0, 1.0), np.clip(y, 0.0, 1.0)
        moved = ((cx != x) | (cy != y)).any(axis=1)
        x, y = cx, cy
    vis = kp[:, :, 2].astype(np.int64)
    xs, ys = _fmt(x.ravel(), precision), _fmt(y.ravel(), precision)
    vs = list(map(str, vis.ravel().tolist()))
    out: list[str | None] = []
    for j, line in enumerate(boxes):
        if line is None:
            out.append(None)
            continue
        a = j * shape.k
        parts = [f"{xs[a + q]} {ys[a + q]} {vs[a + q]}" for q in range(shape.k)]
        out.append(line + " " + " ".join(parts))
        counts.keypoints_padded += int(short[j])
        counts.clipped += int(moved[j] and not box_moved[j])  # once per row
    return out


def _obb_lines(plan: _SplitPlan, rows: np.ndarray, cls: list[str], clip: bool,
               precision: int | None, counts: _Counts) -> list[str | None]:
    """Rows ``cls x1 y1 x2 y2 x3 y3 x4 y4`` (Ultralytics OBB), divided by the image
    size: a one-ring polygon of 4 points as it is, any other polygon as its minimum-area
    rotated rectangle (counted), a box or an RLE mask as its box's corners (counted as
    ``box_as_polygon``). Corners outside the image move onto its border when ``clip``."""
    ds = plan.ds
    anns = ds.annotations
    W, H = plan.image_sizes(rows)
    kinds = anns.segmentation_kind[rows]
    try:
        corners, kept, rotated_mask = oriented_boxes(anns.segmentation, rows, kinds,
                                                     plan.bbox[rows])
    except (ValueError, TypeError) as e:
        raise InputError(ds.source, "annotations[].segmentation", f"a polygon cannot be read: "
                         f"{e}") from None
    from_poly = kept | rotated_mask
    norm = corners / np.stack([W, H], axis=1)[:, None, :]
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(norm).all(axis=(1, 2))
        moved = np.zeros(len(rows), bool)
        if clip:
            clipped = np.clip(norm, 0.0, 1.0)
            moved = (clipped != norm).any(axis=(1, 2)) & ok
            norm = clipped
        extent = norm.max(axis=1) - norm.min(axis=1)
        ok &= (extent > 0).all(axis=1)
    counts.skipped_empty += int((~ok).sum())
    counts.rows += int(ok.sum())
    counts.clipped += int((moved & ok).sum())
    counts.box_as_polygon += int((~from_poly & ok).sum())
    counts.rotated_from_polygon += int((rotated_mask & ok).sum())
    text = _fmt(norm.reshape(-1), precision)
    return [cls[j] + " " + " ".join(text[8 * j : 8 * j + 8]) if ok[j] else None
            for j in range(len(rows))]


def _image_chunks(offsets: np.ndarray) -> Iterator[tuple[int, int]]:
    n = len(offsets) - 1
    i = 0
    while i < n:
        stop = int(np.searchsorted(offsets, offsets[i] + _CHUNK, side="right")) - 1
        stop = min(max(stop, i + 1), n)
        yield i, stop
        i = stop


def _stage_dir(parent: Path, name: str) -> Path:
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=parent))


def _replace_dir(staged: Path, final: Path) -> None:
    old: Path | None = None
    if final.exists() or final.is_symlink():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(staged, final)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()


def _write_split(plan: _SplitPlan, label_dir: Path, image_dir: Path | None, task: Task,
                 images: ImageMode, clip: bool, precision: int | None,
                 progress: Callable[[int], None], kpt: PoseShape | None = None,
                 ) -> YoloSplitSummary:
    ds = plan.ds
    counts = _Counts()
    cls_of = ds.category_index
    for sub in {str(PurePosixPath(r).parent) for r in plan.label_rel} - {"."}:
        (label_dir / sub).mkdir(parents=True, exist_ok=True)
        if image_dir is not None:
            (image_dir / sub).mkdir(parents=True, exist_ok=True)
    negatives = 0
    image_files = 0
    label_root = str(label_dir)
    for start, stop in _image_chunks(plan.ann_offsets):
        rows = plan.ann_order[plan.ann_offsets[start] : plan.ann_offsets[stop]]
        cls = list(map(str, cls_of[rows].tolist()))
        if task == "detect":
            lines = _box_lines(plan, rows, cls, clip, precision, counts)
        elif task == "segment":
            lines = _polygon_lines(plan, rows, cls, clip, precision, counts)
        elif task == "pose":
            assert kpt is not None
            lines = _pose_lines(plan, rows, cls, clip, precision, counts, kpt)
        else:
            lines = _obb_lines(plan, rows, cls, clip, precision, counts)
        base = int(plan.ann_offsets[start])
        for i in range(start, stop):
            a, b = int(plan.ann_offsets[i]) - base, int(plan.ann_offsets[i + 1]) - base
            body = [ln for ln in lines[a:b] if ln is not None]
            if not body:
                negatives += 1
            text = "\n".join(body) + "\n" if body else ""
            fd = os.open(os.path.join(label_root, plan.label_rel[i]), _CREATE, 0o666)
            try:
                data = memoryview(text.encode("utf-8"))
                while data:
                    data = data[os.write(fd, data):]
            finally:
                os.close(fd)
            if image_dir is not None and plan.image_src is not None:
                dst = image_dir / plan.image_rel[i]
                if images == "link":
                    try:
                        os.symlink(plan.image_src[i], dst)
                    except OSError as e:
                        raise InputError(str(dst), None, f"cannot make a symbolic link here "
                                         f"({e}); use images='copy'") from None
                else:
                    shutil.copyfile(plan.image_src[i], dst)
                image_files += 1
        progress(stop - start)
    if images == "none":  # the labels read back without their images (module docstring)
        imgs = ds.images
        table = dict(zip(plan.image_rel, zip(imgs.width.tolist(), imgs.height.tolist(),
                                             strict=True), strict=True))
        with open(os.path.join(label_root, SIZES_FILE), "xb") as f:
            f.write(_JSON.encode(table))
    return YoloSplitSummary(plan.name, len(plan.label_rel), counts.rows, negatives,
                            plan.skipped_crowd, counts.skipped_empty, counts.box_as_polygon,
                            counts.clipped, plan.unsupported_suffix, image_files,
                            plan.skipped, counts.keypoints_padded, counts.rotated_from_polygon)


def write_yolo(
    ds: Dataset | Mapping[str, Dataset],
    out_dir: PathLike,
    *,
    split_name: str = "train",
    task: Task = "detect",
    images: ImageMode = "link",
    image_dir: PathLike | Mapping[str, PathLike] | None = None,
    crowd: CrowdMode = "skip",
    clip: bool = True,
    precision: int | None = None,
    check_sizes: bool = True,
    progress: Progress | None = None,
    invalid: InvalidPolicy = "error",
    no_images: str = "images='none'",
) -> YoloExportSummary:
    """Write ``ds`` as an Ultralytics YOLO dataset in ``out_dir``; see the module docstring.

    ``ds`` is one dataset, written as the split ``split_name``, or a mapping of split
    name -> dataset (for instance what a split transform returns); all splits must have
    the same categories. ``task``: ``"detect"`` (boxes) or ``"segment"`` (polygons).
    ``images``: ``"link"`` symlinks each image from ``image_dir`` into
    ``images/<split>/``, ``"copy"`` copies it, ``"none"`` leaves ``images/<split>/`` as it
    is (labels, data.yaml and each split's :data:`SIZES_FILE`, so that :func:`read_yolo`
    reads the labels back without the images; a note says so). An existing
    ``images/<split>/`` is replaced only when it holds nothing but links; one with image
    files in it is refused (use ``"none"``). An existing ``labels/<split>/`` is replaced.
    ``image_dir`` (one folder, or one per split) holds the images under their
    ``file_name``; by default the folder of the COCO file.
    ``crowd``: ``"skip"`` crowd annotations (iscrowd=1) or ``"keep"`` them as ordinary
    objects. ``clip`` moves coordinates outside the image onto its border. ``precision``:
    significant digits, or None for exact round-trip text. ``check_sizes`` compares each
    linked or copied image's size (after EXIF rotation) with its record and refuses the
    export on a mismatch. Every image gets a label file, an empty one when it has no
    object. ``progress(done, total)`` counts images. The records are checked as a COCO
    export checks them (:func:`cocokit.io.coco.screen_export`): ``invalid="error"``
    refuses a split with an invalid record, ``"skip"`` leaves those records out and
    names them in the split's summary (``skipped``). ``no_images``: how the messages
    that offer writing no images name it (the caller's spelling; the CLI passes its
    option).

    Raises :class:`~cocokit.errors.OptionError` for bad options,
    :class:`~cocokit.errors.IntegrityError` for dangling references, duplicate category
    ids or two images that need the same label file, and
    :class:`~cocokit.errors.InputError` for missing images, size mismatches or a
    ``data.yaml`` already in ``out_dir`` with other class names. Nothing is written then.
    """
    _check_choice("task", task, ("detect", "segment", "pose", "obb"))
    _check_choice("images", images, ("link", "copy", "none"))
    _check_choice("crowd", crowd, ("skip", "keep"))
    _check_choice("invalid", invalid, ("error", "skip"))
    if precision is not None and (not isinstance(precision, int) or not 1 <= precision <= 17):
        raise OptionError("precision", precision, "an integer from 1 to 17, or None")
    splits: dict[str, Dataset] = {split_name: ds} if isinstance(ds, Dataset) else dict(ds)
    if not splits:
        raise OptionError("ds", {}, "a dataset or a non-empty mapping of split name -> dataset")
    for name, d in splits.items():
        if not isinstance(name, str) or not _SPLIT_NAME.match(name) or name in _RESERVED_KEYS:
            raise OptionError("split_name", name, "a split name of letters, digits, '_', '-' "
                              f"or '.', not one of {sorted(_RESERVED_KEYS)}")
        if not isinstance(d, Dataset):
            raise OptionError(f"splits[{name!r}]", type(d).__name__, "a Dataset")
    first_name, first = next(iter(splits.items()))
    for name, d in splits.items():
        if _categories_key(d) != _categories_key(first):
            raise InputError(d.source, "categories", f"split {name!r} has other categories "
                             f"than split {first_name!r}; class indices would disagree")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OptionError("out_dir", str(out), "a folder (it is a file)")
    names = [str(n) for n in first.categories.name.tolist()]
    yaml_path = out / "data.yaml"
    kpt = pose_shape(first) if task == "pose" else None

    kept_splits: dict[str, str | list[str]] = {}
    if yaml_path.exists():
        old = load_data_yaml(yaml_path)
        old_names = _names_list(old.get("names", []), str(yaml_path))
        if old_names != names:
            raise InputError(str(yaml_path), "names", "this folder holds a dataset with other "
                             "class names; export into an empty folder, or with the same "
                             "categories")
        aliased = _aliased_roles(old)
        for key, value in old.items():
            if key in _RESERVED_KEYS or key in splits or key in aliased:
                continue
            if isinstance(value, str) or (isinstance(value, list)
                                          and all(isinstance(v, str) for v in value)):
                kept_splits[str(key)] = value

    dirs: dict[str, Path | None] = {}
    for name in splits:
        given = image_dir.get(name) if isinstance(image_dir, Mapping) else image_dir
        dirs[name] = Path(given) if given is not None else None
    plans = [_plan_split(name, d, images, dirs[name], crowd, check_sizes and images != "none",
                         str(out), invalid, no_images) for name, d in splits.items()]
    if images != "none":
        for name in splits:
            held = _regular_file_in(out / "images" / name)
            if held is not None:
                raise InputError(str(held), None, f"images/{name} already holds image files "
                                 f"(not links); they would be replaced: export with "
                                 f"{no_images} to keep them there, or into another folder")

    split_entries, aliases = yaml_splits(list(splits), kept_splits)
    val_is_train = aliases.get("val") == "train"
    yaml_text = _dump_data_yaml(out.resolve(), split_entries, names, list(first.categories),
                                aliases, _pose_yaml_lines(kpt) if kpt else ())
    try:  # what is written must read back, under the reader's limits
        parse_yaml(yaml_text, str(yaml_path))
    except InputError as e:
        raise IntegrityError([f"data.yaml: {e.path or ''}: {e.message} (the categories are too "
                              "many or too large for a data.yaml)"], str(out)) from None

    total = sum(len(p.label_rel) for p in plans)
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(done, total)

    created = not out.exists()
    files.makedirs(out)
    staged: list[tuple[Path, Path]] = []
    summaries: dict[str, YoloSplitSummary] = {}
    try:
        for plan in plans:
            lab_tmp = _stage_dir(out / "labels", plan.name)
            staged.append((lab_tmp, out / "labels" / plan.name))
            img_tmp = None
            if images != "none":
                img_tmp = _stage_dir(out / "images", plan.name)
                staged.append((img_tmp, out / "images" / plan.name))
            summaries[plan.name] = _write_split(plan, lab_tmp, img_tmp, task, images, clip,
                                                precision, tick, kpt)
        for tmp, final in staged:
            os.chmod(tmp, 0o755 & ~current_umask())
            _replace_dir(tmp, final)
            cache = final.with_suffix(".cache") if final.parent.name == "labels" else None
            if cache is not None and cache.exists():
                cache.unlink()
    except BaseException as e:
        for tmp, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError) and output_fault(e, out):
            # a fault of the output (disk full, read-only...) fails the run, naming it
            raise output_error(out, e) from None
        raise

    atomic_write(yaml_path, [yaml_text])
    notes = [_alias_note(r, a) for r, a in aliases.items()]
    if images == "none":
        notes += [labels_only_note(name) for name in summaries]
    if kpt is not None:
        notes.append(_KPT_NOTE)
    return YoloExportSummary(str(out), str(yaml_path), task, tuple(names), summaries, val_is_train,
                             notes=tuple(notes))


def _regular_file_in(folder: Path) -> Path | None:
    """A regular file (not a symlink) under ``folder``, or None."""
    if folder.is_symlink() or not folder.is_dir():
        return None
    for dirpath, _, filenames in os.walk(folder):
        for f in filenames:
            p = Path(dirpath) / f
            if not p.is_symlink():
                return p
    return None


# -- import ------------------------------------------------------------------------------


def _path_like(value: Any) -> bool:
    """A string the file system can take as a path: no NUL, at most 4096 bytes, no part
    over 255 bytes (longer ones make every look-up fail with "file name too long")."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    raw = value.encode("utf-8", "surrogateescape")
    parts = raw.replace(b"\\", b"/").split(b"/")
    return len(raw) <= 4096 and all(len(part) <= 255 for part in parts)


def _path_value(value: Any, file: str, where: str) -> str:
    """``value`` from data.yaml (or a list file) checked as a path (:func:`_path_like`)."""
    if not _path_like(value):
        raise InputError(file, where, f"expected a path (at most 4096 bytes, parts of at "
                         f"most 255), {found_value(value)}")
    return str(value)


def _find_yaml(root: Path) -> Path:
    if root.is_file():
        return root
    if not root.is_dir():
        raise InputError(str(root), None, "no such file or folder")
    for name in ("data.yaml", "data.yml"):
        if (root / name).is_file():
            return root / name
    found = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise InputError(str(root), None, "no data.yaml in this folder (a YOLO dataset needs "
                         "one for its class names)")
    raise InputError(str(root), None, f"several YAML files ({', '.join(f.name for f in found)}); "
                     "give the data.yaml path")


def _dataset_root(yaml_path: Path, data: Mapping[str, Any]) -> Path:
    """The dataset root of a data.yaml: its ``path`` (absolute, or relative to the YAML's
    folder, then to the current folder); the YAML's folder when ``path`` is empty or
    names a folder that does not exist (a dataset that was moved)."""
    base = yaml_path.parent
    given = data.get("path")
    if not given:
        return base
    p = Path(_path_value(given, str(yaml_path), "path"))
    for cand in ([p] if p.is_absolute() else [base / p, Path.cwd() / p]):
        if cand.is_dir():
            return cand
    return base


def _label_path(image: Path) -> Path:
    """Ultralytics' rule: the last ``images`` folder of the path becomes ``labels``, the
    suffix becomes ``.txt``."""
    parts = list(image.parts)
    for k in range(len(parts) - 2, -1, -1):
        if parts[k] == "images":
            parts[k] = "labels"
            break
    return Path(*parts).with_suffix(".txt")


def _walk_images(folder: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames
                  if not f.startswith(".") and f.rpartition(".")[2].lower() in IMG_FORMATS]
    return sorted(found, key=lambda p: p.as_posix())


_Found = tuple[Path, Path, Path, bool, tuple[str, tuple[int, int]] | None]


def _own_sizes(labels: Path) -> dict[str, tuple[str, tuple[int, int]]]:
    """The :data:`SIZES_FILE` of a label folder (an export without images), by path
    without suffix: ``{"a/0001": ("a/0001.jpg", (w, h))}``; empty when there is none."""
    file = labels / SIZES_FILE
    if not file.is_file():
        return {}
    return {str(PurePosixPath(name).with_suffix("")): (name, size)
            for name, size in _sizes_table(file).items()}


def _split_images(root: Path, value: Any, yaml_path: Path, missing_ok: bool, key: str = "",
                  ) -> list[_Found]:
    """(image path, folder its file_name is relative to, label path, image file exists,
    its entry in the label folder's :data:`SIZES_FILE` when it does not) of each image
    of one split entry; a folder that is not there (nor its labels) is an error unless
    ``missing_ok``."""
    entries = value if isinstance(value, list) else [value]
    out: list[_Found] = []
    for entry in entries:
        p = Path(_path_value(entry, str(yaml_path), key))
        p = p if p.is_absolute() else root / p
        if not p.exists() and str(entry).startswith("../") and (root / str(entry)[3:]).exists():
            p = root / str(entry)[3:]  # as Ultralytics does (Roboflow exports say ../train)
        if p.is_dir():
            out += [(f, p, _label_path(f), True, None) for f in _walk_images(p)]
        elif p.is_file() and p.suffix.lower() == ".txt":
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
                line = line.strip()
                if not line:
                    continue
                q = Path(_path_value(line, str(p), f"line {n}"))
                if not q.is_absolute():
                    q = p.parent / line if line.startswith("./") or (p.parent / line).exists() \
                        else root / line
                out.append((q, root, _label_path(q), True, None))
        elif not p.exists():
            labels = _label_path(p / "x.jpg").parent
            if not labels.is_dir():
                if missing_ok:
                    continue
                raise InputError(str(yaml_path), None, f"split folder "
                                 f"{short_value(str(p), 200)} does not exist")
            own = _own_sizes(labels)
            for lab in sorted(labels.rglob("*.txt"), key=lambda r: r.as_posix()):
                rel = lab.relative_to(labels).as_posix()[: -len(".txt")]
                out.append((p / rel, p, lab, False, own.get(rel)))
        else:
            raise InputError(str(yaml_path), None, f"{short_value(str(p), 200)} is neither a "
                             "folder of images "
                             "nor a .txt list of images")
    return out


def _sizes_table(sizes: SizesTable | None) -> dict[str, tuple[int, int]]:
    if sizes is None:
        return {}
    if isinstance(sizes, Dataset):
        return {str(f): (int(w), int(h)) for f, w, h in zip(
            sizes.images.file_name.tolist(), sizes.images.width.tolist(),
            sizes.images.height.tolist(), strict=True)}
    file: str | None = None
    data: Any = sizes
    if not isinstance(sizes, Mapping):
        file = os.fspath(sizes)
        try:
            data = json.loads(Path(file).read_bytes())
        except FileNotFoundError:
            raise InputError(file, None, "sizes table not found") from None
        except ValueError as e:
            raise InputError(file, None, f"sizes table is not JSON: {e}") from None
    if isinstance(data, Mapping) and isinstance(data.get("images"), list):
        data = data["images"]
    table: dict[str, tuple[int, int]] = {}
    try:
        if isinstance(data, list):
            for rec in data:
                table[str(rec["file_name"])] = (int(rec["width"]), int(rec["height"]))
        elif isinstance(data, Mapping):
            for k, v in data.items():
                if isinstance(v, Mapping):
                    table[str(k)] = (int(v["width"]), int(v["height"]))
                else:
                    w, h = v
                    table[str(k)] = (int(w), int(h))
        else:
            raise TypeError(type(data).__name__)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(file, None, "expected a COCO file, a list of {file_name, width, height} "
                         "records or a mapping file_name -> [width, height]; "
                         f"could not read: {e!r}") from None
    return table


def _lookup_size(table: dict[str, tuple[int, int]], by_stem: dict[str, str | None], rel: str,
                 ) -> tuple[int, int] | None:
    if rel in table:
        return table[rel]
    base = PurePosixPath(rel).name
    if base in table:
        return table[base]
    key = by_stem.get(str(PurePosixPath(rel).with_suffix("")))
    return table[key] if key is not None else None


#: How far outside [0, 1] a label coordinate may lie and still be read (as written, not
#: clamped): Ultralytics' own bound, which rejects an image with a coordinate below -0.01
#: or above 1.01. Beyond it the label file is refused (:func:`read_yolo`).
COORD_TOLERANCE = 0.01
#: Most classes a data.yaml may declare with ``nc`` alone (without ``names``).
MAX_CLASSES = 100_000
_BOX_FIELDS = ("cx", "cy", "w", "h")


def _label_value(text: str) -> str:
    return short_value(text, 40)[1:-1] if len(text) > 38 else text


def _parse_label_file(path: Path, nc: int, task: ReadTask = "auto",
                      kpt: tuple[int, int] | None = None) -> list[tuple[int, list[float]]]:
    """The rows of a label file; every value the format does not allow is an
    :class:`InputError` naming the file, the line and the value (never dropped or
    changed): a class not in 0..nc-1, a row neither ``cls cx cy w h`` nor a polygon of
    3+ points (an odd count of coordinates), a non-finite number, a coordinate outside
    [0, 1] by more than :data:`COORD_TOLERANCE`, a negative width or height. ``task``
    and ``kpt`` (the pose shape) say which row lengths are read (:func:`_check_row_length`);
    the visibility flags of pose keypoints are not coordinates."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, f"cannot read: {e}") from None
    rows: list[tuple[int, list[float]]] = []
    low, high = -COORD_TOLERANCE, 1 + COORD_TOLERANCE
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        try:
            c = float(parts[0])
            vals = list(map(float, parts[1:]))
        except ValueError:
            raise InputError(str(path), f"line {n}", f"expected numbers, got "
                             f"{short_value(line.strip(), 80)}") from None
        if not c.is_integer() or not 0 <= c < nc:
            raise InputError(str(path), f"line {n}", f"class {_label_value(parts[0])} is not "
                             f"an index of names (0..{nc - 1})")
        k = len(vals)
        _check_row_length(path, n, k, task, kpt)
        box = k == 4 or task == "pose"  # rows that start with cx cy w h
        dims = kpt[1] if task == "pose" and kpt is not None else 0
        if not _row_ok(vals, box, dims, low, high):
            _refuse_row(path, n, parts, vals, box, dims, low, high)
        rows.append((int(c), vals))
    return rows


def _row_ok(vals: list[float], box: bool, dims: int, low: float, high: float) -> bool:
    """Whether a row's values pass :func:`_parse_label_file`'s checks (finite, box sizes
    not negative, coordinates in [low, high]; pose visibility flags are not
    coordinates), a whole row at a time."""
    if not all(map(math.isfinite, vals)):
        return False
    if box and (vals[2] < 0 or vals[3] < 0):
        return False
    coords = (vals[:4], vals[4::3], vals[5::3]) if box and dims == 3 else (vals,)
    return all(not c or (low <= min(c) and max(c) <= high) for c in coords)


def _refuse_row(path: Path, n: int, parts: list[str], vals: list[float], box: bool,
                dims: int, low: float, high: float) -> None:
    """Raise the error of the first value of a row that :func:`_row_ok` refused."""
    for j, v in enumerate(vals):
        if box and j < 4:
            name = _BOX_FIELDS[j]
        elif box:
            point, d = divmod(j - 4, dims)
            name = f"keypoint {point + 1} {'xyv'[d]}"
        else:
            name = f"{'xy'[j % 2]}{j // 2 + 1}"
        if not math.isfinite(v):
            raise InputError(str(path), f"line {n}", f"non-finite coordinate {name} "
                             f"{_label_value(parts[j + 1])}")
        if box and 2 <= j < 4 and v < 0:
            raise InputError(str(path), f"line {n}", f"negative box size: {name} "
                             f"{_label_value(parts[j + 1])}")
        if box and j >= 4 and (j - 4) % dims == 2:
            continue  # a visibility flag (0, 1, 2), not a coordinate
        if not low <= v <= high:
            raise InputError(str(path), f"line {n}", f"coordinate {name} "
                             f"{_label_value(parts[j + 1])} is outside [0, 1] (by more "
                             f"than {COORD_TOLERANCE}); labels hold coordinates divided "
                             "by the image size")
    raise InputError(str(path), f"line {n}", "a value out of place")  # never: _row_ok agrees


def _check_row_length(path: Path, n: int, k: int, task: ReadTask,
                      kpt: tuple[int, int] | None) -> None:
    """Refuse a row of ``k`` values after the class that ``task`` cannot read."""
    if task == "pose":
        assert kpt is not None
        if k != 4 + kpt[0] * kpt[1]:
            raise InputError(str(path), f"line {n}", f"expected 'cls cx cy w h' and "
                             f"{kpt[0]} keypoints of {kpt[1]} values (kpt_shape {list(kpt)}): "
                             f"{5 + kpt[0] * kpt[1]} numbers, got {k + 1}")
    elif task == "obb":
        if k != 8:
            raise InputError(str(path), f"line {n}", f"expected 'cls x1 y1 x2 y2 x3 y3 x4 y4' "
                             f"(9 numbers), got {k + 1}")
    elif task == "detect":
        if k != 4:
            raise InputError(str(path), f"line {n}", f"expected 'cls cx cy w h' (5 numbers), "
                             f"got {k + 1}")
    elif task == "segment":
        if k < 6 or k % 2:
            raise InputError(str(path), f"line {n}", f"expected 'cls x1 y1 x2 y2 x3 y3 ...' "
                             f"(an odd count of at least 7 numbers), got {k + 1}")
    elif k != 4 and (k < 6 or k % 2):
        raise InputError(str(path), f"line {n}", f"expected 'cls cx cy w h' or 'cls x1 y1 "
                         f"x2 y2 x3 y3 ...', got {k + 1} numbers")


def _kpt_shape(data: Mapping[str, Any], file: str) -> tuple[int, int] | None:
    """data.yaml's ``kpt_shape`` as (K, ndim), or None when it has none."""
    value = data.get("kpt_shape")
    if value is None:
        return None
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            or value[0] < 1 or value[1] not in (2, 3)):
        raise InputError(file, "kpt_shape", f"expected [K, 2] or [K, 3] (K >= 1), got "
                         f"{value!r}")
    return int(value[0]), int(value[1])


def _pose_categories(categories: list[dict[str, Any]], data: Mapping[str, Any],
                     kpt: tuple[int, int]) -> list[dict[str, Any]]:
    """Categories of a pose dataset: a category without ``keypoints`` names gets those
    of ``kpt_names`` (by class index), else ``kpt_0``...; ``flip_idx`` is kept."""
    kpt_names = data.get("kpt_names")
    flip = data.get("flip_idx")
    out = []
    for i, cat in enumerate(categories):
        cat = dict(cat)
        if not isinstance(cat.get("keypoints"), list):
            given = kpt_names.get(i) if isinstance(kpt_names, Mapping) else None
            cat["keypoints"] = ([str(v) for v in given]
                                if isinstance(given, list) and len(given) == kpt[0]
                                else [f"kpt_{q}" for q in range(kpt[0])])
            if isinstance(flip, list) and len(flip) == kpt[0]:
                cat["flip_idx"] = [int(v) for v in flip]
        out.append(cat)
    return out


def _pose_keypoints(rows: list[list[float]], kpt: tuple[int, int], W: np.ndarray,
                    H: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``keypoints`` (x, y, v in pixels) and ``num_keypoints`` of pose rows (the
    values after the box). Without a visibility (ndim 2), a point at 0, 0 is
    unlabelled (v 0), any other labelled (v 2)."""
    k, ndim = kpt
    arr = np.array(rows, np.float64).reshape(len(rows), k, ndim)
    if ndim == 3:
        v = arr[:, :, 2]
    else:
        v = np.where((arr[:, :, 0] == 0) & (arr[:, :, 1] == 0), 0.0, 2.0)
    x = arr[:, :, 0] * W[:, None]
    y = arr[:, :, 1] * H[:, None]
    out = np.empty(len(rows), dtype=object)
    triples = np.stack([x, y, v], axis=2).reshape(len(rows), -1)
    out[:] = [[int(t) if float(t).is_integer() else t for t in row]
              for row in triples.tolist()]
    return out, (v > 0).sum(axis=1).astype(np.int64)


def read_yolo(
    root_or_data_yaml: PathLike,
    *,
    split: str | None = None,
    sizes: SizesTable | None = None,
    split_polygons: bool = True,
    progress: Progress | None = None,
    task: ReadTask = "auto",
) -> Dataset:
    """Read an Ultralytics YOLO dataset (detect or segment labels) as a COCO dataset.

    ``root_or_data_yaml``: the dataset folder (holding ``data.yaml``, or a single other
    ``.yaml``) or the YAML file. The dataset root is the YAML's ``path`` when it exists
    (absolute, or relative to the YAML's folder, then to the current folder), else the
    YAML's folder. ``split``: the split key to read (``train``, ``val``, ...); None reads
    every split the YAML names (once per distinct folder; folders that do not exist are
    passed over). A split is a folder of images
    (searched recursively), a ``.txt`` list of image paths, or a list of those; when its
    image folder is missing but its label folder exists (an export with
    ``images="none"``), images are taken from the label files and their sizes from
    ``sizes``, else from the label folder's :data:`SIZES_FILE` (what such an export
    writes).

    ``file_name`` is the image path relative to its split folder when one split is read,
    relative to the dataset root when several are. Image sizes come from ``sizes`` (a
    COCO file or :class:`Dataset`, a list of ``{file_name, width, height}`` records, or
    a mapping ``file_name -> [width, height]``; matched by relative path, then by file
    name, then by path without suffix) or else from the image headers (see
    :func:`image_size`). Categories are ``coco_categories`` from data.yaml when it
    matches ``names`` (a cocokit export), else ``{"id": i + 1, "name": names[i]}``.

    Rows ``cls cx cy w h`` become boxes (area ``w * h``); polygon rows become one-ring
    polygons with their tight box and their shoelace area (the sum over their rings, as
    COCO's files state it and :func:`cocokit.validate` checks it), or, with
    ``split_polygons`` (default), the rings of a multi-part polygon joined by
    :func:`join_rings` (or Ultralytics' converter) when the row is such a join (see
    :func:`split_rings`). Images with no label file or an empty one are kept without
    annotations. Ids are 1..N in path order.

    ``task``: ``"auto"`` (the default) reads a data.yaml with ``kpt_shape`` as pose,
    else each row by its count of values (5: a box, more: a polygon); ``"detect"``,
    ``"segment"``, ``"obb"`` and ``"pose"`` refuse rows of another length. Pose rows
    ``cls cx cy w h x1 y1 v1 ...`` become a box with ``keypoints`` (pixels) and
    ``num_keypoints``; the categories get ``keypoints`` names from ``coco_categories``,
    ``kpt_names`` or ``kpt_0``.... OBB rows ``cls x1 y1 ... x4 y4`` become 4-point
    polygons.
    """
    _check_choice("task", task, ("auto", "detect", "segment", "pose", "obb"))
    yaml_path = _find_yaml(Path(root_or_data_yaml))
    data = load_data_yaml(yaml_path)
    file = str(yaml_path)
    kpt = _kpt_shape(data, file)
    if task == "auto" and kpt is not None:
        task = "pose"
    if task == "pose" and kpt is None:
        raise InputError(file, "kpt_shape", "missing: a pose dataset names the keypoint "
                         "shape ([K, 3])")
    names = _class_names(data, file)
    root = _dataset_root(yaml_path, data)
    split_keys = [k for k in data if isinstance(k, str) and k not in _RESERVED_KEYS
                  and data[k] and (isinstance(data[k], str) or (
                      isinstance(data[k], list) and all(isinstance(v, str) for v in data[k])))]
    if split is not None:
        if split not in split_keys:
            raise OptionError("split", split, f"one of the splits in {file}: "
                              f"{short_value(', '.join(split_keys) or '(none)', 200)[1:-1]}")
        chosen = [split]
    else:
        chosen = [k for k in split_keys if k in _KNOWN_SPLITS or _is_path(root, data[k])]
        if not chosen:
            raise InputError(file, None, "names no split (train, val, test, ...)")
    found: list[_Found] = []
    seen_values: set[str] = set()
    for key in chosen:
        sig = json.dumps(data[key])
        if sig in seen_values:
            continue
        seen_values.add(sig)
        part = _split_images(root, data[key], yaml_path, missing_ok=split is None, key=key)
        if part:
            found += part
        else:
            seen_values.discard(sig)
    if not found and split is None:
        raise InputError(file, None, f"no images (nor labels) in any split folder of "
                         f"{short_value(', '.join(chosen), 200)[1:-1]}")
    several = len(seen_values) > 1

    table = _sizes_table(sizes)
    by_stem: dict[str, str | None] = {}
    for entry in table:
        stem = str(PurePosixPath(entry).with_suffix(""))
        by_stem[stem] = None if stem in by_stem else entry
    nc = len(names)
    seen_paths: set[Path] = set()
    file_names: list[str] = []
    sizes_wh: list[tuple[int, int]] = []
    ann_img: list[int] = []
    ann_cls: list[int] = []
    ann_vals: list[list[float]] = []
    for pos, (img, base, label, exists, own) in enumerate(found):
        if img in seen_paths:
            continue
        seen_paths.add(img)
        rel = _relative(img, base)  # the sizes table is matched relative to the split
        name = _relative(img, root) if several else rel
        if exists:
            size = _lookup_size(table, by_stem, rel) or image_size(img)
        else:  # enumerated from a label file: a sizes table names the image
            match = by_stem.get(rel)
            if match is not None:
                size = table[match]
            elif own is not None:  # the export's own table, beside the labels
                match, size = own
            else:
                raise InputError(str(label), None, "no image for this label file, and no "
                                 "entry for it in the sizes table (--sizes, or "
                                 f"{SIZES_FILE} in the label folder; matched by path "
                                 "without suffix)")
            suffix = PurePosixPath(match).name[len(PurePosixPath(rel).name):]
            name += suffix
        i = len(file_names)
        file_names.append(name)
        sizes_wh.append(size)
        for c, vals in _parse_label_file(label, nc, task, kpt):
            ann_img.append(i)
            ann_cls.append(c)
            ann_vals.append(vals)
        if progress is not None and (pos % 1000 == 999 or pos == len(found) - 1):
            progress(pos + 1, len(found))
    n = len(file_names)
    widths = np.array([s[0] for s in sizes_wh], np.int64)
    heights = np.array([s[1] for s in sizes_wh], np.int64)

    categories = _categories(data, names, file)
    if task == "pose":
        assert kpt is not None
        categories = _pose_categories(categories, data, kpt)
    cat_ids = np.array([int(c["id"]) for c in categories], np.int64)
    m = len(ann_img)
    img_idx = np.array(ann_img, np.int64)
    W = widths[img_idx].astype(np.float64) if m else np.zeros(0)
    H = heights[img_idx].astype(np.float64) if m else np.zeros(0)
    bbox = np.full((m, 4), np.nan)
    area = np.full(m, np.nan)
    seg = np.empty(m, dtype=object)
    keypoints = np.full(m, None, dtype=object)
    num_keypoints = np.full(m, -1, np.int64)
    if task == "pose" and m:
        assert kpt is not None
        keypoints, num_keypoints = _pose_keypoints([v[4:] for v in ann_vals], kpt, W, H)
        ann_vals = [v[:4] for v in ann_vals]
    is_box = np.array([len(v) == 4 for v in ann_vals], bool)
    if is_box.any():
        b = np.array([v for v, k in zip(ann_vals, is_box.tolist(), strict=True) if k],
                     np.float64)
        bw, bh = b[:, 2] * W[is_box], b[:, 3] * H[is_box]
        bbox[is_box] = np.stack([b[:, 0] * W[is_box] - bw / 2, b[:, 1] * H[is_box] - bh / 2,
                                 bw, bh], axis=1)
        area[is_box] = bw * bh
    poly_rows = np.flatnonzero(~is_box)
    for c0 in range(0, len(poly_rows), _CHUNK):  # a chunk of polygons alive as objects
        rows = poly_rows[c0 : c0 + _CHUNK]
        rings_per: list[list[np.ndarray]] = []
        for r in rows.tolist():
            parts = split_rings(ann_vals[r]) if split_polygons and task != "obb" else None
            rings_per.append(parts or [np.array(ann_vals[r], np.float64).reshape(-1, 2)])
        norm = Polygons.from_rings(rings_per)
        per_vertex = np.repeat(np.arange(len(rows)), np.diff(norm.ring_offsets[norm.offsets]))
        scale = np.stack([W[rows], H[rows]], axis=1)[per_vertex]
        px = Polygons(norm.coords * scale, norm.ring_offsets, norm.offsets)
        bbox[rows] = polygon_bboxes(px)
        segs = np.empty(len(rows), dtype=object)
        segs[:] = [px.to_coco(i) for i in range(len(rows))]
        area[rows] = shoelace_areas(px)  # as COCO states it and validate checks it
        seg[rows] = [msgspec.Raw(_JSON.encode(x)) for x in segs]
    ann_table = Annotations(
        id=np.arange(1, m + 1, dtype=np.int64),
        image_id=img_idx + 1,
        category_id=cat_ids[np.array(ann_cls, np.int64)] if m else np.zeros(0, np.int64),
        bbox=bbox,
        area=area,
        iscrowd=np.zeros(m, np.int8),
        segmentation=seg,
        keypoints=keypoints,
        num_keypoints=num_keypoints,
        extra=np.full(m, None, dtype=object),
    )
    fn = np.empty(n, dtype=object)
    fn[:] = file_names
    img_table = Images(id=np.arange(1, n + 1, dtype=np.int64), file_name=fn, width=widths,
                       height=heights, extra=np.full(n, None, dtype=object))
    return Dataset(img_table, ann_table, Categories(categories), {}, None, file)


def _relative(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def _is_path(root: Path, value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    return all(_path_like(v) and (Path(v) if Path(v).is_absolute() else root / v).exists()
               for v in values)


def _categories(data: Mapping[str, Any], names: list[str], file: str) -> list[dict[str, Any]]:
    cats = data.get("coco_categories")
    if (isinstance(cats, list) and len(cats) == len(names)
            and all(isinstance(c, dict) and "id" in c and "name" in c for c in cats)
            and [str(c["name"]) for c in cats] == names):
        ids = [c["id"] for c in cats]
        if all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids):
            return [dict(c) for c in cats]
    return [{"id": i + 1, "name": name} for i, name in enumerate(names)]
