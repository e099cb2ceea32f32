"""Statistics of a dataset: counts per category, object sizes, images.

:func:`compute_stats` (``cocokit.compute_stats(ds)``) returns a
:class:`DatasetStats`, a frozen dataclass whose :meth:`~DatasetStats.to_dict` is plain
JSON data. Everything is computed on the numpy columns at once (sorts, ``bincount``,
group offsets); nothing loops over annotations in Python, and no segmentation is parsed
unless an annotation lacks its ``area`` field.

:func:`compute_stats` takes a loaded dataset or a
:class:`~cocokit.io.stream.CocoStream` (a file read in runs) and runs the same code over
their runs of tables: it keeps the image sizes and, per annotation, only the four small
columns the statistics need (image row, category row, area, crowd flag); each run's
table is dropped once they are extracted.

What is counted, and how:

* **area** is the annotation's ``area`` field, as COCOeval uses it. Where a record has
  no ``area``, the value an export would write is used instead (the mask area of the
  segmentation, else the box ``w * h``); :attr:`DatasetStats.areas_computed` says how
  many. Area min/median/max of a category cover all its annotations, crowds included.
* **small / medium / large** count exactly the ground truths COCOeval evaluates in its
  ``areaRng`` ranges ``[0, 32**2]``, ``[32**2, 96**2]``, ``[96**2, 1e5**2]``: not crowd
  (``iscrowd`` absent or 0), on an image of the dataset, of a declared category, with
  ``lo <= area <= hi``. The bounds are inclusive on both sides as in COCOeval, so an
  area of exactly 1024 counts as small *and* medium, and the three counts can add up
  to more (or, for crowds and areas over ``1e10``, less) than the annotations.
* **images** of a category: distinct images of the dataset holding at least one of its
  annotations (crowds included). **negatives**: images without any annotation.
* annotations whose ``image_id`` is not an image of the dataset are **dangling**; ones
  whose ``category_id`` is not declared are listed as extra categories with
  ``declared = False`` and ``name = None``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from .dataset import Categories, Dataset, filled_areas, images_per_category, lookup, present

if TYPE_CHECKING:
    from .io.results import Results
    from .io.stream import CocoStream

__all__ = [
    "AREA_RANGES",
    "CategoryStats",
    "DatasetStats",
    "Distribution",
    "ImageSize",
    "ResultsStats",
    "annotation_areas",
    "compute_stats",
    "results_stats",
    "size_buckets",
]

#: COCOeval's area ranges (``Params.areaRng`` for boxes and masks), bounds inclusive.
AREA_RANGES: dict[str, tuple[float, float]] = {
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}

#: How many of the most common image sizes :class:`DatasetStats` lists.
TOP_IMAGE_SIZES = 10


@dataclasses.dataclass(frozen=True)
class Distribution:
    """Summary of a set of numbers; every field is None when the set is empty."""

    count: int
    min: float | None
    median: float | None
    mean: float | None
    max: float | None

    @classmethod
    def of(cls, values: np.ndarray) -> Distribution:
        """Summary of the finite values of an array."""
        v = np.asarray(values, np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return cls(0, None, None, None, None)
        return cls(len(v), _num(v.min()), _num(np.median(v)), _num(v.mean()), _num(v.max()))


@dataclasses.dataclass(frozen=True)
class ImageSize:
    """One image size (width x height) and how many images have it."""

    width: int
    height: int
    images: int


@dataclasses.dataclass(frozen=True)
class CategoryStats:
    """Statistics of one category (see the module docstring for what is counted)."""

    id: int
    name: str | None
    declared: bool
    images: int
    annotations: int
    crowd: int
    area_min: float | None
    area_median: float | None
    area_max: float | None
    small: int
    medium: int
    large: int


@dataclasses.dataclass(frozen=True)
class DatasetStats:
    """Statistics of a dataset; :meth:`to_dict` gives plain JSON data.

    Per dataset: images, negatives (images without annotations), annotations, crowd,
    dangling annotations, annotations per image, image widths/heights and the most
    common sizes, area distribution and COCO size buckets. Per category
    (:attr:`per_category`, in file order, then undeclared ids used by annotations):
    see :class:`CategoryStats`.
    """

    source: str | None
    images: int
    negatives: int
    annotations: int
    crowd: int
    dangling: int
    undeclared: int
    categories: int
    categories_used: int
    areas_computed: int
    annotations_per_image: Distribution
    image_width: Distribution
    image_height: Distribution
    image_sizes: tuple[ImageSize, ...]
    distinct_image_sizes: int
    area: Distribution
    small: int
    medium: int
    large: int
    per_category: tuple[CategoryStats, ...]

    def to_dict(self) -> dict[str, Any]:
        """The statistics as plain JSON data (ints, floats, str, None, lists, dicts)."""
        out: dict[str, Any] = dataclasses.asdict(self)
        out["image_sizes"] = [dataclasses.asdict(s) for s in self.image_sizes]
        out["per_category"] = [dataclasses.asdict(c) for c in self.per_category]
        return out

    def category(self, key: int | str) -> CategoryStats:
        """The statistics of the category with this id or name (KeyError if none)."""
        for c in self.per_category:
            if (isinstance(key, str) and c.name == key) or (
                not isinstance(key, str) and c.id == int(key)
            ):
                return c
        raise KeyError(f"no category {key!r} in these statistics")


def _num(x: Any) -> float:
    return float(x)


def _opt(x: float) -> float | None:
    return None if not np.isfinite(x) else float(x)


def annotation_areas(ds: Dataset) -> tuple[np.ndarray, int]:
    """The area of each annotation as COCOeval would see it, and how many were computed.

    The ``area`` column where present; elsewhere the value an export writes
    (:func:`cocokit.geometry.annotation_areas`: a polygon's shoelace area, a mask's
    pixel count; only those rows are parsed), else the box ``w * h``; NaN where none of
    these exists.
    """
    anns = ds.annotations
    return filled_areas(anns.area, anns.bbox, anns.segmentation, ds.image_index,
                        ds.images.height, ds.images.width)


def size_buckets(area: np.ndarray, eligible: np.ndarray) -> dict[str, np.ndarray]:
    """Per COCO size range, a mask of the eligible rows whose area lies in it (inclusive)."""
    with np.errstate(invalid="ignore"):
        return {
            name: eligible & (area >= lo) & (area <= hi)
            for name, (lo, hi) in AREA_RANGES.items()
        }


def _unique(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values and their counts (a sort and a diff: numpy's hash-based
    ``np.unique`` is several times slower on large integer arrays)."""
    v = np.sort(values)
    if len(v) == 0:
        return v, np.zeros(0, np.int64)
    starts = np.flatnonzero(np.concatenate([[True], v[1:] != v[:-1]]))
    counts = np.diff(np.append(starts, len(v)))
    return v[starts], counts


def _group_order_stats(
    group: np.ndarray, values: np.ndarray, n_groups: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min, median and max of ``values`` per group (NaN for empty groups), by one sort."""
    order = np.argsort(values)
    # a stable sort on small integers is a radix sort in numpy: much faster than lexsort
    small = np.int16 if n_groups < np.iinfo(np.int16).max else np.int64
    order = order[np.argsort(group[order].astype(small), kind="stable")]
    v = values[order]
    del order  # the index arrays are the big temporaries: free them before the rest
    counts = np.bincount(group, minlength=n_groups)
    starts = np.zeros(n_groups, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    has = counts > 0
    mins = np.full(n_groups, np.nan)
    meds = np.full(n_groups, np.nan)
    maxs = np.full(n_groups, np.nan)
    s = starts[has]
    c = counts[has]
    mins[has] = v[s]
    maxs[has] = v[s + c - 1]
    meds[has] = (v[s + (c - 1) // 2] + v[s + c // 2]) / 2.0
    return mins, meds, maxs


def _image_sizes(width: np.ndarray, height: np.ndarray) -> tuple[tuple[ImageSize, ...], int]:
    """The most common (width, height) pairs, most images first, and how many there are."""
    h_span = int(height.max()) - int(height.min()) + 1 if len(height) else 1
    h0 = int(height.min()) if len(height) else 0
    key = width.astype(np.int64) * h_span + (height.astype(np.int64) - h0)
    uniq, counts = _unique(key)
    top = np.lexsort((uniq, -counts))[:TOP_IMAGE_SIZES]
    sizes = tuple(
        ImageSize(int(uniq[i] // h_span), int(uniq[i] % h_span + h0), int(counts[i])) for i in top
    )
    return sizes, len(uniq)


def compute_stats(source: Dataset | CocoStream) -> DatasetStats:
    """Statistics of a loaded dataset or of a file read in runs (see the module docstring).

    ``source`` is a :class:`~cocokit.Dataset` (one run) or a
    :class:`~cocokit.io.stream.CocoStream` (a file of any size): the same computation
    runs over its runs of tables, so both give equal results. Two passes: the images
    (ids, widths, heights), then the annotations run by run. Of each run only the image
    row, category row, area (computed where missing, as :func:`annotation_areas` does)
    and crowd flag of every annotation are kept, 17 bytes an annotation (the medians
    need every area); no run's table (segmentations, extra keys) outlives its run.
    """
    ids, heights, widths = [], [], []
    for _, t in source.image_tables():
        ids.append(t.id)
        heights.append(t.height)
        widths.append(t.width)
    image_ids, image_h, image_w = (
        np.concatenate(c) if c else np.zeros(0, np.int64) for c in (ids, heights, widths)
    )
    cats = source.categories
    n = source.num_annotations
    row_type = np.int32 if max(len(image_ids), len(cats)) < np.iinfo(np.int32).max else np.int64
    image_row = np.empty(n, row_type)
    category_row = np.empty(n, row_type)
    area = np.empty(n, np.float64)
    crowd = np.empty(n, bool)
    undeclared: list[np.ndarray] = []
    areas_computed = 0
    for first, anns in source.annotation_tables():
        rows = slice(first, first + len(anns))
        img = lookup(image_ids, anns.image_id)
        cat = lookup(cats.id, anns.category_id)
        image_row[rows] = img
        category_row[rows] = cat
        undeclared.append(anns.category_id[cat < 0])
        area[rows], computed = filled_areas(anns.area, anns.bbox, anns.segmentation, img,
                                            image_h, image_w)
        areas_computed += computed
        crowd[rows] = anns.crowd
    return _stats_of_columns(
        source=source.source,
        categories=cats,
        image_width=image_w,
        image_height=image_h,
        image_row=image_row,
        category_row=category_row,
        undeclared_ids=np.concatenate(undeclared) if undeclared else np.zeros(0, np.int64),
        area=area,
        crowd=crowd,
        areas_computed=areas_computed,
    )


def _stats_of_columns(
    *,
    source: str | None,
    categories: Categories,
    image_width: np.ndarray,
    image_height: np.ndarray,
    image_row: np.ndarray,
    category_row: np.ndarray,
    undeclared_ids: np.ndarray,
    area: np.ndarray,
    crowd: np.ndarray,
    areas_computed: int,
) -> DatasetStats:
    """The statistics from plain columns, shared by the in-memory and streaming paths.

    Per image: ``image_width``, ``image_height``. Per annotation, in file order:
    ``image_row`` (row of its image, -1 for none), ``category_row`` (row of its
    category, -1 if undeclared), ``area`` (completed as by :func:`annotation_areas`),
    ``crowd`` (bool). ``undeclared_ids``: the ``category_id`` of the annotations whose
    ``category_row`` is -1, in the same order.
    """
    cats = categories
    n_img = len(image_width)
    n_ann = len(area)

    img = image_row
    on_image = img >= 0
    all_on_image = bool(on_image.all())
    # undeclared category ids become extra groups after the declared ones
    undeclared_mask = category_row < 0
    extra_ids = _unique(undeclared_ids)[0]
    group = category_row
    if len(extra_ids):
        group = category_row.copy()
        group[undeclared_mask] = len(cats) + np.searchsorted(extra_ids, undeclared_ids)
    n_groups = len(cats) + len(extra_ids)

    eligible = ~crowd & on_image & ~undeclared_mask
    buckets = size_buckets(area, eligible)
    del eligible

    # per category
    ann_counts = np.bincount(group, minlength=n_groups)
    crowd_counts = np.bincount(group[crowd], minlength=n_groups)
    bucket_counts = {
        k: np.bincount(group[m], minlength=n_groups) for k, m in buckets.items()
    }
    bucket_totals = {k: int(np.count_nonzero(m)) for k, m in buckets.items()}
    del buckets
    pairs = (group, img) if all_on_image else (group[on_image], img[on_image])
    image_counts = images_per_category([pairs], n_groups, n_img)
    del pairs
    finite = np.isfinite(area)
    if finite.all():  # the usual case: no copies of the two columns
        amin, amed, amax = _group_order_stats(group, area, n_groups)
    else:
        amin, amed, amax = _group_order_stats(group[finite], area[finite], n_groups)
    del finite

    per_category: list[CategoryStats] = []
    ids = np.concatenate([cats.id, extra_ids]).tolist()
    for g in range(n_groups):
        declared = g < len(cats)
        per_category.append(
            CategoryStats(
                id=int(ids[g]),
                name=str(cats.name[g]) if declared else None,
                declared=declared,
                images=int(image_counts[g]),
                annotations=int(ann_counts[g]),
                crowd=int(crowd_counts[g]),
                area_min=_opt(amin[g]),
                area_median=_opt(amed[g]),
                area_max=_opt(amax[g]),
                small=int(bucket_counts["small"][g]),
                medium=int(bucket_counts["medium"][g]),
                large=int(bucket_counts["large"][g]),
            )
        )

    # per image
    per_image = np.bincount(img[on_image], minlength=n_img)
    image_sizes, distinct = _image_sizes(image_width, image_height)

    return DatasetStats(
        source=source,
        images=n_img,
        negatives=int(np.count_nonzero(per_image == 0)),
        annotations=n_ann,
        crowd=int(np.count_nonzero(crowd)),
        dangling=int(np.count_nonzero(~on_image)),
        undeclared=int(np.count_nonzero(undeclared_mask)),
        categories=len(cats),
        categories_used=int(np.count_nonzero(ann_counts[: len(cats)])),
        areas_computed=areas_computed,
        annotations_per_image=Distribution.of(per_image),
        image_width=Distribution.of(image_width),
        image_height=Distribution.of(image_height),
        image_sizes=image_sizes,
        distinct_image_sizes=distinct,
        area=Distribution.of(area),
        small=bucket_totals["small"],
        medium=bucket_totals["medium"],
        large=bucket_totals["large"],
        per_category=tuple(per_category),
    )


# -- detection results ----------------------------------------------------------------

#: The bins of the score histogram of :class:`ResultsStats` (ten, 0.1 wide).
SCORE_BINS = np.linspace(0.0, 1.0, 11)


@dataclasses.dataclass(frozen=True)
class ResultsStats:
    """Statistics of a results list (:func:`results_stats`).

    ``per_category``: ``{"id", "name", "detections", "images", "score_mean"}`` per
    category id used (name from the dataset when given, else None);
    ``score_histogram``: counts of scores in [0, 0.1), [0.1, 0.2), ... [0.9, 1.0].
    """

    source: str | None
    detections: int
    images: int
    categories: int
    with_segmentation: int
    score: Distribution
    box_area: Distribution
    per_image: Distribution
    score_histogram: list[int]
    per_category: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        out = dataclasses.asdict(self)
        out["score_bins"] = SCORE_BINS.tolist()
        return out


def results_stats(results: Results, dataset: Dataset | None = None) -> ResultsStats:
    """Counts per category, score and box-area distributions and the score histogram
    of detection results (category names from ``dataset`` when given)."""
    cats, cat_rows, counts = np.unique(results.category_id, return_inverse=True,
                                       return_counts=True)
    imgs, img_rows, per_image = np.unique(results.image_id, return_inverse=True,
                                          return_counts=True)
    names: dict[int, str] = {}
    if dataset is not None:
        names = dict(zip(dataset.categories.id.tolist(), dataset.categories.name, strict=True))
    score_sum = np.bincount(cat_rows, weights=results.score, minlength=len(cats))
    hist, _ = np.histogram(np.clip(results.score, 0.0, 1.0), SCORE_BINS)
    images_per_cat = images_per_category([(cat_rows, img_rows)], len(cats), len(imgs))
    table = [{"id": cid, "name": names.get(cid), "detections": int(counts[k]),
              "images": int(images_per_cat[k]), "score_mean": float(score_sum[k] / counts[k])}
             for k, cid in enumerate(cats.tolist())]
    return ResultsStats(
        results.source, len(results), len(imgs), len(cats),
        int(present(results.segmentation).sum()),
        Distribution.of(results.score), Distribution.of(results.bbox[:, 2] * results.bbox[:, 3]),
        Distribution.of(per_image), hist.astype(int).tolist(), table,
    )
