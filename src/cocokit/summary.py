"""Counts of a dataset (what ``cocokit info`` shows), from memory or from a stream.

The counts are accumulated over runs of annotations, so a dataset in memory (one run)
and a file streamed in bounded memory (many runs) give the same summary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .dataset import Annotations, Categories, Dataset, images_per_category, lookup

__all__ = ["Summary", "summarize"]


@dataclasses.dataclass(frozen=True)
class Summary:
    """Counts of a dataset; ``per_category`` rows follow the category list."""

    images: int
    annotations: int
    categories: int
    negative_images: int
    crowd_annotations: int
    dangling_annotations: int
    undeclared_category_annotations: int
    top_level_keys: list[str]
    per_category: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        return dataclasses.asdict(self)


def _summarize(
    image_ids: np.ndarray, runs: Iterable[Annotations], categories: Categories, key_order: list[str]
) -> Summary:
    n_img, n_cat = len(image_ids), len(categories)
    ann_per_cat = np.zeros(n_cat, np.int64)
    has_ann = np.zeros(n_img, bool)
    total = crowd = dangling = undeclared = 0

    def pairs() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The (category row, image row) of each run's annotations that have both; the
        other counts are taken on the way."""
        nonlocal total, crowd, dangling, undeclared
        for anns in runs:
            img = lookup(image_ids, anns.image_id)
            cat = lookup(categories.id, anns.category_id)
            total += len(anns)
            crowd += int(np.count_nonzero(anns.crowd))
            dangling += int(np.count_nonzero(img < 0))
            undeclared += int(np.count_nonzero(cat < 0))
            ann_per_cat[:] += np.bincount(cat[cat >= 0], minlength=n_cat)
            has_ann[img[img >= 0]] = True
            ok = (img >= 0) & (cat >= 0)
            yield cat[ok], img[ok]

    img_per_cat = images_per_category(pairs(), n_cat, n_img)
    return Summary(
        images=n_img,
        annotations=total,
        categories=n_cat,
        negative_images=int(n_img - np.count_nonzero(has_ann)),
        crowd_annotations=crowd,
        dangling_annotations=dangling,
        undeclared_category_annotations=undeclared,
        top_level_keys=list(key_order),
        per_category=[
            {
                "id": int(categories.id[i]),
                "name": str(categories.name[i]),
                "annotations": int(ann_per_cat[i]),
                "images": int(img_per_cat[i]),
            }
            for i in range(n_cat)
        ],
    )


def summarize(source: Any) -> Summary:
    """Counts of a :class:`~cocokit.Dataset` or a :class:`~cocokit.io.stream.CocoStream`."""
    if isinstance(source, Dataset):
        return _summarize(
            source.images.id, [source.annotations], source.categories, list(source.key_order)
        )
    ids = [t.id for _, t in source.image_tables()]
    image_ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
    return _summarize(
        image_ids,
        (t for _, t in source.annotation_tables()),
        source.categories,
        list(source.key_order),
    )
