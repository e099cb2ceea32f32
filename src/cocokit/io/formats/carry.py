"""What the CVAT, DOTA and YOLO writers share: building a dataset from records, the
losses of keys a format has no place for, and box corners.

A format reader builds plain COCO records and turns them into tables through the one
record decoder (:func:`cocokit.io.coco.tables_from_records`); a writer counts the
records whose keys the target cannot carry (:func:`dropped_keys`), so that nothing is
lost without a line in the loss report.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from ...dataset import Categories, Dataset
from ...errors import IntegrityError, OptionError
from ..coco import tables_from_records
from ..files import local_path
from .losses import Losses

__all__ = [
    "area_losses",
    "box_corners",
    "dataset_from_records",
    "dropped_keys",
    "label_paths",
    "local_folder",
]

def dataset_from_records(
    images: Sequence[Mapping[str, Any]],
    annotations: Sequence[Mapping[str, Any]],
    categories: Sequence[Mapping[str, Any]],
    source: str | None,
    extra: Mapping[str, Any] | None = None,
) -> Dataset:
    """A :class:`Dataset` of plain COCO records (through the one record decoder)."""
    imgs, anns = tables_from_records(images, annotations)
    return Dataset(imgs, anns, Categories(categories), extra or {}, None, source)


def dropped_keys(
    ds: Dataset,
    image_rows: np.ndarray,
    ann_rows: np.ndarray,
    fmt: str,
    *,
    image_keys: Iterable[str] | None = (),
    annotation_keys: Iterable[str] | None = (),
    category_keys: Iterable[str] | None = ("id", "name"),
    top_level: bool = True,
) -> Losses:
    """The records whose keys ``fmt`` has no place for, counted: images and annotations
    with extra keys other than ``image_keys``/``annotation_keys``, categories with keys
    other than ``category_keys`` (None: the format keeps them all), and the top-level
    keys (``info``, ``licenses``, ...) unless ``top_level`` is False (kept)."""
    losses = Losses()
    if image_keys is not None:
        keep_img = frozenset(image_keys)
        n_img = sum(1 for e in ds.images.extra[image_rows]
                    if e and any(k not in keep_img for k in e))
        losses.add("image-keys-dropped", n_img, f"images with keys {fmt} has no place for "
                   "(dropped: coco_url, license, ...)")
    if annotation_keys is not None:
        keep_ann = frozenset(annotation_keys)
        n_ann = sum(1 for e in ds.annotations.extra[ann_rows]
                    if e and any(k not in keep_ann for k in e))
        losses.add("annotation-keys-dropped", n_ann, f"annotations with keys {fmt} has no "
                   "place for (dropped)")
    if category_keys is not None:
        keep_cat = frozenset(category_keys)
        n_cat = sum(1 for c in ds.categories.records if any(k not in keep_cat for k in c))
        losses.add("category-keys-dropped", n_cat, f"categories with keys {fmt} has no place "
                   "for (dropped: supercategory, keypoints, ...)")
    if top_level:
        losses.add("top-level-keys-dropped", len(ds.extra),
                   f"top-level keys {fmt} has no place for (dropped: info, licenses, ...)")
    return losses


def area_losses(given: np.ndarray, computed: np.ndarray, fmt: str) -> Losses:
    """The annotations whose ``area`` (``given``; NaN: none) will not come back: the
    target has no area and its reader computes ``computed`` (NaN: not known here)."""
    losses = Losses()
    with np.errstate(invalid="ignore"):
        differ = (np.isfinite(given) & np.isfinite(computed)
                  & (np.abs(given - computed) > 1e-6 * np.maximum(1.0, np.abs(given))))
    losses.add("area-recomputed", int(differ.sum()), f"areas {fmt} cannot keep, computed "
               "anew on reading (pycocotools pixel area, or w*h of a box)")
    return losses


def box_corners(bbox: np.ndarray) -> np.ndarray:
    """The 4 corners (n, 4, 2) of xywh boxes, clockwise on an image from the top left."""
    x, y, w, h = np.asarray(bbox, np.float64).reshape(-1, 4).T
    return np.stack([np.stack([x, y], 1), np.stack([x + w, y], 1),
                     np.stack([x + w, y + h], 1), np.stack([x, y + h], 1)], axis=1)


def label_paths(file_names: Sequence[str], suffix: str, folder: str, target: str) -> list[str]:
    """The label file of each image, relative to ``folder``: its ``file_name`` with
    ``suffix`` (sub-folders kept; an absolute name or one with ``..`` loses its folders).
    Two images that need the same label file are an :class:`IntegrityError`."""
    out: list[str] = []
    seen: dict[str, int] = {}
    clashes: list[str] = []
    for r, name in enumerate(file_names):
        p = PurePosixPath(str(name).replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts:
            p = PurePosixPath(p.name)
        rel = str(p.with_suffix(suffix)) if p.name else ""
        if not rel:
            clashes.append(f"images[{r}].file_name: not a file name: {name!r}")
            continue
        first = seen.setdefault(rel, r)
        if first != r:
            clashes.append(f"images[{r}].file_name {name!r} and images[{first}].file_name "
                           f"{file_names[first]!r} both need {folder}/{rel}")
        out.append(rel)
    if clashes:
        raise IntegrityError(clashes, target)
    return out


def local_folder(path: str | os.PathLike[str], option: str) -> str:
    """``path`` as a local path; a URL (``s3://``, ``memory://``) is refused for the
    folder formats, which are written and read on the local disk."""
    local = local_path(path)
    if local is None:
        raise OptionError(option, os.fspath(path), "a local folder (folder formats are not "
                          "read from or written to URLs)")
    return os.fspath(local)
