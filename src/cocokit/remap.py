"""Carry detection results over to a renumbered dataset.

After ``cocokit export --image-ids auto`` (or any command that renumbers ids) the
results predicted on the old file name images and categories that the new file numbers
differently. :func:`remap_results` rewrites their ``image_id`` and ``category_id``:

* with the :class:`~cocokit.io.idmap.IdMap` the command wrote (``--id-map``), or
* with :func:`id_map_between` two datasets, when no map was kept: images matched by
  ``file_name``, categories by ``name``.

A result whose image (or category) is not in the map, because the image was filtered
out, is dropped (``missing="drop"``, the default) or refused (``missing="error"``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from .dataset import Dataset, lookup
from .errors import InputError, OptionError
from .io.idmap import IdMap
from .io.results import Results

__all__ = ["category_pairs", "id_map_between", "remap_results"]


def _unique_names(names: np.ndarray, what: str, key: str, source: str | None) -> None:
    values, counts = np.unique(names.astype(str), return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1][0]
        raise InputError(source, key, f"{what} {dup!r} is used {int(counts[counts > 1][0])} "
                         f"times; records cannot be matched by {what} (keep an --id-map "
                         "when renumbering instead)")


def id_map_between(old: Dataset, new: Dataset) -> IdMap:
    """The map from ``old``'s ids to ``new``'s: images by ``file_name``, categories by
    ``name`` (each must be unique on both sides). Images or categories of ``old`` that
    ``new`` lacks are left out of the map."""
    for ds in (old, new):
        _unique_names(np.asarray(ds.images.file_name), "file_name", "images", ds.source)
        _unique_names(np.asarray(ds.categories.name, dtype=object), "category name",
                      "categories", ds.source)
    new_names = {n: i for i, n in enumerate(new.images.file_name.tolist())}
    at = np.array([new_names.get(n, -1) for n in old.images.file_name.tolist()], np.int64)
    img = np.flatnonzero(at >= 0)
    new_cats = {n: i for i, n in enumerate(new.categories.name)}
    cat_at = np.array([new_cats.get(n, -1) for n in old.categories.name], np.int64)
    cat = np.flatnonzero(cat_at >= 0)
    return IdMap(
        old.images.id[img], new.images.id[at[img]],
        categories_old=old.categories.id[cat], categories_new=new.categories.id[cat_at[cat]],
        file_names=tuple(new.images.file_name[at[img]].tolist()),
    )


def remap_results(
    results: Results,
    id_map: IdMap | None = None,
    *,
    source: Dataset | None = None,
    target: Dataset | None = None,
    missing: Literal["drop", "error"] = "drop",
) -> Results:
    """``results`` with image and category ids of the renumbered dataset.

    Give ``id_map`` (read with :func:`cocokit.io.idmap.read_id_map`), or ``source`` and
    ``target`` (the dataset the results were predicted on, and the renumbered one) to
    match them by file name and category name. A map without categories keeps the
    category ids. Results of images (categories) the map lacks are dropped, or with
    ``missing="error"`` refused naming the first (``results[12].image_id``).
    """
    if missing not in ("drop", "error"):
        raise OptionError("missing", missing, "'drop' or 'error'")
    if id_map is None:
        if source is None or target is None:
            raise OptionError("id_map/source/target", None,
                              "an id map, or both the source and the target datasets")
        id_map = id_map_between(source, target)
    elif source is not None or target is not None:
        raise OptionError("id_map/source/target", "both",
                          "an id map or the two datasets, not both")
    img = lookup(id_map.images_old, results.image_id)
    keep = img >= 0
    new_cat = results.category_id
    if len(id_map.categories_old):
        cat = lookup(id_map.categories_old, results.category_id)
        keep &= cat >= 0
        new_cat = np.where(cat >= 0, id_map.categories_new[np.maximum(cat, 0)], -1)
    if missing == "error" and not keep.all():
        i = int(np.flatnonzero(~keep)[0])
        field, value = (("image_id", results.image_id[i]) if img[i] < 0
                        else ("category_id", results.category_id[i]))
        raise InputError(results.source, f"results[{i}].{field}",
                         f"{field} {int(value)} is not in the id map")
    out = results.replace(
        image_id=np.where(keep, id_map.images_new[np.maximum(img, 0)], -1),
        category_id=new_cat,
    )
    return out.take(np.flatnonzero(keep)) if not keep.all() else out


def category_pairs(before: Dataset, after: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Old and new category ids of a category edit (``cocokit categories``), learnt
    from the annotations it kept (their ids do not change), and for categories without
    annotations from their names. Only the ids that changed or that were kept are
    listed; a dropped category is not."""
    at = lookup(before.annotations.id, after.annotations.id)
    ok = at >= 0
    pairs = set(zip(before.annotations.category_id[at[ok]].tolist(),
                    after.annotations.category_id[ok].tolist(), strict=True))
    seen = {old for old, _ in pairs}
    new_by_name = dict(zip(after.categories.name, after.categories.id.tolist(), strict=True))
    for cid, name in zip(before.categories.id.tolist(), before.categories.name, strict=True):
        if cid not in seen and name in new_by_name:
            pairs.add((cid, new_by_name[name]))
    ordered = sorted(pairs)
    return (np.array([o for o, _ in ordered], np.int64),
            np.array([n for _, n in ordered], np.int64))
