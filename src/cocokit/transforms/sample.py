"""Subsample images (every Nth, a seeded random fraction or count) and upsample them.

Sampling works on images: an image comes with all its annotations or not at all. The
order of the images in the output is their order in the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..dataset import Annotations, Dataset, Images, derived, object_array, plain, ranges
from ..errors import OptionError
from ._base import Transformed, category_rows, gc_paused, make_report

__all__ = ["SOURCE_KEY", "repeat_factors", "sample", "upsample"]

SOURCE_KEY = "source_image_id"


@gc_paused
def sample(
    ds: Dataset,
    *,
    every: int | None = None,
    offset: int = 0,
    fraction: float | None = None,
    count: int | None = None,
    seed: int | None = 0,
    containing: Iterable[str | int] | None = None,
    negatives: bool = False,
    keep_rest: bool = False,
) -> Transformed:
    """Keep a subset of the images; returns ``(dataset, report)``.

    Give exactly one of:

    * ``every=N``: every Nth image, starting at position ``offset``;
    * ``fraction=F``: ``round(F * n)`` images drawn at random (0 < F <= 1);
    * ``count=N``: N images drawn at random (all when there are fewer).

    Random draws use ``numpy.random.default_rng(seed)``: the same seed gives the same
    images, and no global random state is touched.

    The draw is made among the *pool*: all images, or with ``containing`` only the
    images that hold an annotation of one of those categories, or with ``negatives``
    only the images without annotations. Images outside the pool are dropped, unless
    ``keep_rest`` keeps them (so ``negatives=True, fraction=0.1, keep_rest=True`` keeps
    every positive image and a tenth of the negatives).
    """
    given = [name for name, v in (("every", every), ("fraction", fraction), ("count", count))
             if v is not None]
    if len(given) != 1:
        raise OptionError("every/fraction/count", given or None, "exactly one of them")
    if containing is not None and negatives:
        raise OptionError("negatives", True, "not together with containing")
    n_img = len(ds.images)
    notes: list[str] = []

    if containing is not None:
        rows = category_rows(ds.categories, containing, "containing")
        hit = np.isin(ds.category_index, rows) & (ds.image_index >= 0)
        in_pool = np.zeros(n_img, bool)
        in_pool[ds.image_index[hit]] = True
    elif negatives:
        in_pool = ds.annotation_counts == 0
    else:
        in_pool = np.ones(n_img, bool)
    pool = np.flatnonzero(in_pool)

    if every is not None:
        if isinstance(every, bool) or int(every) != every or every < 1:
            raise OptionError("every", every, "a whole number >= 1")
        if isinstance(offset, bool) or int(offset) != offset or offset < 0:
            raise OptionError("offset", offset, "a whole number >= 0")
        chosen = pool[int(offset)::int(every)]
    else:
        if fraction is not None:
            if not 0 < float(fraction) <= 1:
                raise OptionError("fraction", fraction, "a number in (0, 1]")
            k = round(float(fraction) * len(pool))
        else:
            if count is None or isinstance(count, bool) or int(count) != count or count < 0:
                raise OptionError("count", count, "a whole number >= 0")
            k = int(count)
            if k > len(pool):
                notes.append(f"asked for {k} images but the pool has {len(pool)}; kept all")
                k = len(pool)
        rng = np.random.default_rng(seed)
        chosen = np.sort(rng.choice(pool, size=k, replace=False)) if k else pool[:0]

    keep = ~in_pool if keep_rest else np.zeros(n_img, bool)
    keep[chosen] = True
    img_idx = ds.image_index
    ann_keep = (img_idx < 0) | keep[np.maximum(img_idx, 0)] if n_img else img_idx < 0
    out = derived(ds, ds.replace(images=ds.images.take(keep),
                                 annotations=ds.annotations.take(ann_keep)),
                  np.flatnonzero(keep), np.flatnonzero(ann_keep))
    report = make_report(
        "sample", ds, out,
        dropped_images={"not sampled": int(n_img - keep.sum())},
        dropped_annotations={"their image was not sampled": int((~ann_keep).sum())},
        notes=tuple(notes),
    )
    return Transformed(out, report)


@gc_paused
def repeat_factors(ds: Dataset, repeats: Mapping[str | int, int]) -> np.ndarray:
    """How many times :func:`upsample` writes each image (int64, one per image row):
    the largest N of the categories it holds, 1 for the others."""
    cats = ds.categories
    rows = category_rows(cats, list(repeats), "repeats")
    factor_of_cat = np.ones(len(cats) + 1, np.int64)  # last: undeclared category
    for row, n in zip(rows.tolist(), repeats.values(), strict=True):
        if isinstance(n, bool) or int(n) != n or not 1 <= n <= 2**31:
            raise OptionError("repeats", dict(repeats), "whole numbers from 1 to 2**31")
        factor_of_cat[row] = max(factor_of_cat[row], int(n))
    img_idx = ds.image_index
    has = img_idx >= 0
    factor = np.ones(len(ds.images), np.int64)
    if has.any():
        np.maximum.at(factor, img_idx[has], factor_of_cat[ds.category_index[has]])
    return factor


def upsample(ds: Dataset, repeats: Mapping[str | int, int], *,
             mark: str = SOURCE_KEY) -> Transformed:
    """Repeat the images that contain given categories; returns ``(dataset, report)``.

    ``repeats`` maps a category (name or id) to N: every image holding an annotation
    of that category appears N times in the output (the original and N - 1 copies);
    an image with several such categories takes the largest N. Copies (and their
    annotations) are appended after the input's records with fresh ids above the
    largest existing ones, and each copy carries an extra key ``mark`` (default
    ``"source_image_id"``) holding the id of the image it repeats (the first source,
    when the image is itself a copy). The originals are unchanged.
    """
    if not mark or not isinstance(mark, str):
        raise OptionError("mark", mark, "a non-empty key name")
    factor = repeat_factors(ds, repeats)
    n_img = len(ds.images)
    img_idx = ds.image_index
    has = img_idx >= 0
    copies = factor - 1
    if not copies.any():
        out = derived(ds, ds.replace(), np.arange(n_img), np.arange(len(ds.annotations)))
        return Transformed(out, make_report("upsample", ds, out,
                                            notes=("no image holds those categories",)))

    # image copies, in input order, copy 1..f-1 of each
    src_rows = np.repeat(np.arange(n_img), copies)
    base_img = int(ds.images.id.max()) + 1
    first_copy = np.cumsum(copies) - copies  # position of each image's first copy
    new_img_ids = base_img + np.arange(len(src_rows), dtype=np.int64)
    extra = object_array([_marked(ds.images.extra[r], int(ds.images.id[r]), mark)
                          for r in src_rows.tolist()])
    img_copies = ds.images.take(src_rows).replace(id=new_img_ids, extra=extra)

    # annotation copies: each annotation of a repeated image, once per copy of it
    ann_copies_n = np.where(has, copies[np.maximum(img_idx, 0)], 0) if n_img else img_idx * 0
    ann_src = np.repeat(np.arange(len(ds.annotations)), ann_copies_n)
    copy_no = ranges(ann_copies_n)
    ann_img_ids = base_img + first_copy[img_idx[ann_src]] + copy_no
    order = np.argsort(ann_img_ids, kind="stable")
    ann_src, ann_img_ids = ann_src[order], ann_img_ids[order]
    base_ann = int(ds.annotations.id.max()) + 1 if len(ds.annotations) else 1
    ann_copies = ds.annotations.take(ann_src).replace(
        id=base_ann + np.arange(len(ann_src), dtype=np.int64), image_id=ann_img_ids)

    out = derived(ds, ds.replace(images=Images.concat([ds.images, img_copies]),
                                 annotations=Annotations.concat([ds.annotations, ann_copies])),
                  np.concatenate([np.arange(n_img), src_rows]),
                  np.concatenate([np.arange(len(ds.annotations)), ann_src]))
    report = make_report(
        "upsample", ds, out,
        notes=(f"{int((copies > 0).sum())} image(s) repeated: {len(src_rows)} copies with "
               f"{len(ann_src)} annotations added, marked with {mark!r}",),
    )
    return Transformed(out, report)


def _marked(extra: dict[str, Any] | None, image_id: int, mark: str) -> dict[str, Any]:
    out = dict(extra) if extra else {}
    source = plain(out[mark]) if mark in out else image_id
    out[mark] = source if isinstance(source, int) and not isinstance(source, bool) else image_id
    return out


