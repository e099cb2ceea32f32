"""Filter a dataset: categories, areas, box sizes, crowd annotations, images.

The unit is explicit: by default an annotation that fails a test is removed on its own
(``unit="annotations"``); with ``unit="images"`` every image that contains such an
annotation is removed whole, with all its annotations (what SAHI's
``get_area_filtered_coco`` does, to the surprise of its users).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from ..dataset import (
    Annotations,
    Categories,
    Dataset,
    Images,
    derived,
    filled_areas,
    lookup,
    unique,
)
from ..errors import OptionError
from ..geometry import segmentation_bboxes
from ..io.coco import FilteredStream, ImageIndex
from ._base import Transformed, category_rows, gc_paused, make_report

if TYPE_CHECKING:  # pragma: no cover
    from ..io.stream import CocoStream

__all__ = ["AreaRange", "Crowd", "Unit", "filter_dataset"]

Crowd = Literal["keep", "drop", "only"]
Unit = Literal["annotations", "images"]
AreaRange = tuple[float | None, float | None]


@overload
def filter_dataset(
    source: Dataset,
    *,
    categories: Iterable[str | int] | None = ...,
    drop_categories: Iterable[str | int] | None = ...,
    area: AreaRange | None = ...,
    category_area: Mapping[str | int, AreaRange] | None = ...,
    min_width: float | None = ...,
    min_height: float | None = ...,
    crowd: Crowd = ...,
    images: Iterable[int | str] | None = ...,
    exclude_images: Iterable[int | str] | None = ...,
    image_globs: str | Sequence[str] | None = ...,
    exclude_globs: str | Sequence[str] | None = ...,
    drop_empty: bool = ...,
    unit: Unit = ...,
) -> Transformed: ...


@overload
def filter_dataset(
    source: CocoStream,
    *,
    categories: Iterable[str | int] | None = ...,
    drop_categories: Iterable[str | int] | None = ...,
    area: AreaRange | None = ...,
    category_area: Mapping[str | int, AreaRange] | None = ...,
    min_width: float | None = ...,
    min_height: float | None = ...,
    crowd: Crowd = ...,
    images: Iterable[int | str] | None = ...,
    exclude_images: Iterable[int | str] | None = ...,
    image_globs: str | Sequence[str] | None = ...,
    exclude_globs: str | Sequence[str] | None = ...,
    drop_empty: bool = ...,
    unit: Unit = ...,
) -> FilteredStream: ...


def filter_dataset(
    source: Dataset | CocoStream,
    *,
    categories: Iterable[str | int] | None = None,
    drop_categories: Iterable[str | int] | None = None,
    area: AreaRange | None = None,
    category_area: Mapping[str | int, AreaRange] | None = None,
    min_width: float | None = None,
    min_height: float | None = None,
    crowd: Crowd = "keep",
    images: Iterable[int | str] | None = None,
    exclude_images: Iterable[int | str] | None = None,
    image_globs: str | Sequence[str] | None = None,
    exclude_globs: str | Sequence[str] | None = None,
    drop_empty: bool = False,
    unit: Unit = "annotations",
) -> Transformed | FilteredStream:
    """Keep the images and annotations that pass every given test.

    Images (tested first; an image that fails takes its annotations with it):

    * ``images``: keep only these images (ints are image ids, strs exact file names);
      ``exclude_images``: drop these. Listed images the dataset lacks are reported.
    * ``image_globs``: keep only images whose file name matches one of these shell
      patterns (``fnmatch``, case-sensitive, ``*`` also matches ``/``);
      ``exclude_globs``: drop those that match.

    Annotations:

    * ``categories``: keep only these categories; ``drop_categories``: drop these
      (names or ids). The category list loses the categories that are not kept.
    * ``area=(min, max)``: keep ``min <= area <= max`` (either bound may be None).
      ``category_area`` gives a range per category that takes the place of ``area``
      for that category. The area is the record's ``area``; where it has none, the
      segmentation's pixel area (pycocotools), else the box's ``w * h``; an annotation
      whose area cannot be known fails a range.
    * ``min_width`` / ``min_height``: keep boxes at least this wide / high (the box of
      the segmentation where the record has no bbox; none at all fails).
    * ``crowd``: ``"keep"`` (default), ``"drop"`` (remove ``iscrowd=1``), ``"only"``
      (keep only ``iscrowd=1``).

    ``unit``: ``"annotations"`` removes the failing annotations; ``"images"`` removes
    every image holding a failing annotation, with all its annotations.
    ``drop_empty`` then removes every image left without annotations (images that
    had none to begin with included); by default they are kept.

    Annotations that name no image are left as they are unless a test removes them.
    The report counts every dropped record under the first reason that applied.

    On a loaded :class:`~cocokit.Dataset` returns ``(dataset, report)``. On a
    :class:`~cocokit.io.stream.CocoStream` (a file of any size) returns a
    :class:`~cocokit.io.coco.FilteredStream`: nothing is read until
    :func:`cocokit.io.coco.write_coco` writes it in bounded memory, running the
    annotation tests (categories, areas, box sizes, crowd) and ``drop_empty`` on each run
    of annotations; the output equals that of the loaded dataset filtered with
    ``unit="annotations"`` and saved with the same id policies. Tests on images (ids,
    names, globs) and ``unit="images"`` need the whole dataset and raise
    :class:`~cocokit.errors.OptionError` on a stream.
    """
    tests: dict[str, Any] = dict(
        categories=categories, drop_categories=drop_categories, area=area,
        category_area=category_area, min_width=min_width, min_height=min_height, crowd=crowd)
    if isinstance(source, Dataset):
        return _filter_dataset(source, **tests, images=images, exclude_images=exclude_images,
                               image_globs=image_globs, exclude_globs=exclude_globs,
                               drop_empty=drop_empty, unit=unit)
    image_tests = {"images": images, "exclude_images": exclude_images,
                   "image_globs": image_globs, "exclude_globs": exclude_globs}
    for name, value in image_tests.items():
        if value is not None:
            raise OptionError(name, value, "None on a streamed file (image tests need the "
                              "whole dataset: load it)")
    if unit != "annotations":
        raise OptionError("unit", unit, "'annotations' on a streamed file ('images' needs "
                          "the whole dataset: load it)")
    return _filter_stream(source, tests, drop_empty)


@gc_paused
def _filter_dataset(
    ds: Dataset,
    *,
    categories: Iterable[str | int] | None = None,
    drop_categories: Iterable[str | int] | None = None,
    area: AreaRange | None = None,
    category_area: Mapping[str | int, AreaRange] | None = None,
    min_width: float | None = None,
    min_height: float | None = None,
    crowd: Crowd = "keep",
    images: Iterable[int | str] | None = None,
    exclude_images: Iterable[int | str] | None = None,
    image_globs: str | Sequence[str] | None = None,
    exclude_globs: str | Sequence[str] | None = None,
    drop_empty: bool = False,
    unit: Unit = "annotations",
) -> Transformed:
    """:func:`filter_dataset` on a loaded dataset."""
    if crowd not in ("keep", "drop", "only"):
        raise OptionError("crowd", crowd, "'keep', 'drop' or 'only'")
    if unit not in ("annotations", "images"):
        raise OptionError("unit", unit, "'annotations' or 'images'")
    for name, value in (("min_width", min_width), ("min_height", min_height)):
        if value is not None and not np.isfinite(value):
            raise OptionError(name, value, "a finite number")
    images_tbl, anns = ds.images, ds.annotations
    n_img, n_ann = len(images_tbl), len(anns)
    notes: list[str] = []
    dropped_images: dict[str, int] = {}
    dropped_anns: dict[str, int] = {}

    # -- images ------------------------------------------------------------------------
    img_keep = np.ones(n_img, bool)

    def drop_images_where(mask: np.ndarray, reason: str) -> None:
        new = mask & img_keep
        if new.any():
            dropped_images[reason] = dropped_images.get(reason, 0) + int(new.sum())
        img_keep[new] = False

    if images is not None:
        hit, missing = _listed(ds, images)
        drop_images_where(~hit, "not in the image list")
        if missing:
            notes.append(f"{len(missing)} listed image(s) not in the dataset: "
                         f"{_preview(missing)}")
    if exclude_images is not None:
        hit, missing = _listed(ds, exclude_images)
        drop_images_where(hit, "in the exclusion list")
        if missing:
            notes.append(f"{len(missing)} excluded image(s) not in the dataset: "
                         f"{_preview(missing)}")
    if image_globs is not None:
        drop_images_where(~_glob_mask(images_tbl.file_name, image_globs, "image_globs",
                                      "--image-glob", notes),
                          "file name matches no --image-glob")
    if exclude_globs is not None:
        drop_images_where(_glob_mask(images_tbl.file_name, exclude_globs, "exclude_globs",
                                     "--exclude-glob", notes),
                          "file name matches an --exclude-glob")

    img_idx = ds.image_index
    has_img = img_idx >= 0
    safe_idx = np.where(has_img, img_idx, 0)
    alive = ~has_img | img_keep[safe_idx] if n_img else ~has_img
    if (~alive).any():
        dropped_anns["their image was dropped"] = int((~alive).sum())

    # -- annotation tests ----------------------------------------------------------------
    cats = ds.categories
    cat_keep = np.ones(len(cats), bool)
    if categories is not None:
        rows = category_rows(cats, categories, "categories")
        cat_keep[:] = False
        cat_keep[rows] = True
    if drop_categories is not None:
        cat_keep[category_rows(cats, drop_categories, "drop_categories")] = False
    cat_idx = ds.category_index
    tests: list[tuple[str, np.ndarray]] = []
    if not cat_keep.all():
        tests.append(("category not kept", (cat_idx >= 0) & ~cat_keep[np.maximum(cat_idx, 0)]))
    if crowd == "drop":
        tests.append(("crowd annotation", anns.crowd))
    elif crowd == "only":
        tests.append(("not a crowd annotation", ~anns.crowd))
    if area is not None or category_area:
        tests.append(("area out of range", ~_area_ok(ds, area, category_area, alive)))
    if min_width is not None or min_height is not None:
        tests.append(("box smaller than the minimum",
                      ~_size_ok(ds, min_width, min_height, alive)))

    failing = np.zeros(n_ann, bool)
    for reason, mask in tests:
        new = mask & alive & ~failing
        if new.any():
            dropped_anns[reason] = int(new.sum())
        failing |= new

    if unit == "images" and failing.any():
        bad_img = np.zeros(n_img, bool)
        bad_img[img_idx[failing & has_img]] = True
        drop_images_where(bad_img, "holds an annotation that fails the filter")
        # with whole images as the unit, only annotations without an image drop alone
        gone_with_image = has_img & ~img_keep[safe_idx] & alive
        for reason in [r for r, _ in tests]:
            dropped_anns.pop(reason, None)
        dropped_anns["their image was dropped"] = (
            dropped_anns.get("their image was dropped", 0) + int(gone_with_image.sum()))
        lone = failing & ~has_img
        if lone.any():
            dropped_anns["fails the filter (names no image)"] = int(lone.sum())
        ann_keep = alive & ~gone_with_image & ~lone
    else:
        ann_keep = alive & ~failing

    if drop_empty and n_img:
        counts = np.bincount(img_idx[ann_keep & has_img], minlength=n_img)
        drop_images_where(counts == 0, "no annotations left (--drop-negatives)")

    out_cats = ds.categories if cat_keep.all() else Categories(
        [r for r, k in zip(cats.records, cat_keep.tolist(), strict=True) if k])
    out = derived(ds, ds.replace(
        images=images_tbl.take(img_keep) if not img_keep.all() else images_tbl,
        annotations=anns.take(ann_keep) if not ann_keep.all() else anns,
        categories=out_cats,
    ), np.flatnonzero(img_keep), np.flatnonzero(ann_keep))
    report = make_report(
        "filter", ds, out,
        dropped_annotations=dropped_anns,
        dropped_images=dropped_images,
        dropped_categories=tuple(str(n) for n in cats.name[~cat_keep]),
        notes=tuple(notes),
    )
    return Transformed(out, report)


def _preview(items: list[int | str], n: int = 5) -> str:
    shown = ", ".join(map(repr, items[:n]))
    return shown + (", ..." if len(items) > n else "")


def _listed(ds: Dataset, items: Iterable[int | str]) -> tuple[np.ndarray, list[int | str]]:
    """Mask of the images named by id (int) or file name (str), and the names not found."""
    ids: list[int] = []
    names: set[str] = set()
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise OptionError("images", item, "image ids (int) or file names (str)")
        if isinstance(item, (int, np.integer)):
            ids.append(int(item))
        elif isinstance(item, str):
            names.add(item)
        else:
            raise OptionError("images", item, "image ids (int) or file names (str)")
    id_arr = np.asarray(ids, np.int64)
    hit = np.isin(ds.images.id, id_arr)
    if names:
        hit |= np.fromiter((n in names for n in ds.images.file_name), bool, len(ds.images))
    missing: list[int | str] = [int(i) for i in id_arr[~np.isin(id_arr, ds.images.id)]]
    if names:
        present = set(ds.images.file_name.tolist())
        missing += sorted(n for n in names if n not in present)
    return hit, missing


def _unclosed_set(pattern: str) -> bool:
    """Whether a ``[`` of ``pattern`` opens no set (no ``]`` closes it): fnmatch then
    matches the ``[`` itself, which is not what was meant (``[[]`` says that)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "[":
            i += 1
            continue
        j = i + 1
        if j < n and pattern[j] == "!":
            j += 1
        if j < n and pattern[j] == "]":  # a ']' first in a set is one of its characters
            j += 1
        end = pattern.find("]", j)
        if end < 0:
            return True
        i = end + 1
    return False


def _glob_mask(file_names: np.ndarray, patterns: str | Sequence[str], option: str,
               flag: str, notes: list[str]) -> np.ndarray:
    """Which file names match one of ``patterns``; a note for each pattern that matches
    none (a typo drops or keeps every image silently otherwise)."""
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    if not pats:
        raise OptionError(option, pats, "at least one pattern")
    for p in pats:
        if _unclosed_set(p):
            raise OptionError(option, p, "a shell pattern ('[' opens a set of characters "
                              "that ']' closes; [[] matches a '[' itself)")
    names = file_names.tolist()
    hit = np.zeros(len(names), bool)
    for p in pats:
        match = re.compile(fnmatch.translate(p)).match
        one = np.fromiter((match(n) is not None for n in names), bool, len(names))
        if len(names) and not one.any():
            notes.append(f"{flag} {p!r} matches no image")
        hit |= one
    return hit


def _bound(value: float | None, default: float, option: str) -> float:
    if value is None:
        return default
    v = float(value)
    if np.isnan(v):
        raise OptionError(option, value, "a number or None")
    return v


def _area_ok(ds: Dataset, area: AreaRange | None,
             category_area: Mapping[str | int, AreaRange] | None, alive: np.ndarray) -> np.ndarray:
    glo, ghi = area if area is not None else (None, None)
    cats = ds.categories
    lo_cat = np.full(len(cats) + 1, _bound(glo, -np.inf, "area"))  # last: undeclared category
    hi_cat = np.full(len(cats) + 1, _bound(ghi, np.inf, "area"))
    if category_area:
        rows = category_rows(cats, list(category_area), "category_area")
        for row, (lo, hi) in zip(rows.tolist(), category_area.values(), strict=True):
            lo_cat[row] = _bound(lo, -np.inf, "category_area")
            hi_cat[row] = _bound(hi, np.inf, "category_area")
    values = _areas(ds, alive)
    ci = ds.category_index
    with np.errstate(invalid="ignore"):
        return (values >= lo_cat[ci]) & (values <= hi_cat[ci])


def _areas(ds: Dataset, alive: np.ndarray) -> np.ndarray:
    """The ``area`` column, filled where absent as an export fills it (the ``alive``
    rows only: :func:`cocokit.dataset.filled_areas`)."""
    anns = ds.annotations
    return filled_areas(anns.area, anns.bbox, anns.segmentation, ds.image_index,
                        ds.images.height, ds.images.width, alive)[0]


def _with_segmentation(segmentation: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Those of ``rows`` that have a segmentation."""
    has = np.fromiter((segmentation[r] is not None for r in rows.tolist()), bool, len(rows))
    return rows[has]


def _size_ok(ds: Dataset, min_width: float | None, min_height: float | None,
             alive: np.ndarray) -> np.ndarray:
    anns = ds.annotations
    box = anns.bbox
    missing = np.isnan(box[:, 0]) & alive & (ds.image_index >= 0)
    if missing.any():
        rows = _with_segmentation(anns.segmentation, np.flatnonzero(missing))
        if len(rows):
            box = box.copy()
            img = ds.image_index[rows]
            box[rows] = segmentation_bboxes(anns.segmentation[rows], ds.images.height[img],
                                            ds.images.width[img])
    ok = np.ones(len(anns), bool)
    with np.errstate(invalid="ignore"):
        if min_width is not None:
            ok &= box[:, 2] >= float(min_width)
        if min_height is not None:
            ok &= box[:, 3] >= float(min_height)
    return ok


def _filter_stream(stream: CocoStream, tests: dict[str, Any], drop_empty: bool) -> FilteredStream:
    """The lazy filter of a stream: each run of annotations goes through
    :func:`_filter_dataset` beside the images it references."""
    # the categories kept, and the options checked now rather than at the first run
    head = _filter_dataset(Dataset(Images.empty(), Annotations.empty(), stream.categories),
                           **tests)

    def select(anns: Annotations, index: ImageIndex) -> np.ndarray:
        n = len(anns)
        rows = lookup(index.ids, anns.image_id)
        used = unique(rows[rows >= 0])
        images = Images(id=index.ids[used], file_name=np.full(len(used), "", dtype=object),
                        width=index.widths[used], height=index.heights[used],
                        extra=np.empty(len(used), dtype=object))
        mini = Dataset(images, anns.replace(id=np.arange(n, dtype=np.int64)), stream.categories)
        out = _filter_dataset(mini, **tests).dataset
        mask = np.zeros(n, bool)
        mask[out.annotations.id] = True
        return mask

    return FilteredStream(stream, select, head.dataset.categories, drop_empty)
