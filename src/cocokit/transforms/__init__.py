"""Transforms: ``Dataset -> Dataset`` functions for the work done before training.

Every transform takes a :class:`~cocokit.dataset.Dataset` and keyword options, leaves its
input untouched and returns a :class:`Transformed` pair ``(dataset, report)``; only
:func:`split` returns several datasets, as a :class:`SplitResult` pair
``(datasets, report)``. So the convention is the same everywhere::

    ds2, report = filter_dataset(ds, drop_categories=["person"])
    print(report)            # what was dropped, and why

What a transform does not change comes out as it went in (RLE, keypoints, ``iscrowd``,
unknown keys, ``info``, ``licenses``, ids), and the result passes the export integrity
check whenever the input did.

=========================  ============================================================
:func:`merge`              several datasets into one (categories by name, unique ids)
:func:`filter_dataset`     keep/drop categories, areas, box sizes, crowd, images
:func:`sample`             every Nth image, a random fraction or count (seeded)
:func:`upsample`           repeat images that contain given categories
:func:`split`              named splits, random or iteratively stratified, grouped
:func:`edit_categories`    rename, merge, drop, add, remap, sort, renumber categories
:func:`clip`               clip boxes and polygons to the image bounds
=========================  ============================================================

Options that name categories accept names (``str``) or ids (``int``); an unknown one
raises :class:`~cocokit.errors.OptionError`.
"""

from __future__ import annotations

from ._base import Transformed, TransformReport, first_repeat
from .categories import edit_categories
from .clip import clip
from .filter import filter_dataset
from .merge import merge
from .sample import sample, upsample
from .split import SplitReport, SplitResult, split

__all__ = [
    "SplitReport",
    "SplitResult",
    "TransformReport",
    "Transformed",
    "clip",
    "edit_categories",
    "filter_dataset",
    "first_repeat",
    "merge",
    "sample",
    "split",
    "upsample",
]
