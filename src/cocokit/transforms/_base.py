"""What every transform shares: the report, the result pair and the id and category helpers.

The transform modules import these from here (not from the package ``__init__``, which
imports the transforms), so imports inside :mod:`cocokit.transforms` point one way.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple, ParamSpec, TypeVar

import numpy as np

from ..dataset import Categories, Dataset
from ..dataset import gc_paused as paused
from ..errors import OptionError
from ..io.idmap import IdMap


@dataclasses.dataclass(frozen=True)
class TransformReport:
    """What a transform did: sizes before and after, and what it dropped or changed.

    ``dropped_annotations`` and ``dropped_images`` map a reason to a count; each dropped
    record is counted under one reason (the first that applied), so the counts add up
    to the totals. ``notes`` are sentences for a person (ids renumbered, listed images
    that were not found, ...). ``id_maps`` (merge): per input, the map from its ids to
    the output's.
    """

    operation: str
    images_in: int
    images_out: int
    annotations_in: int
    annotations_out: int
    categories_in: int
    categories_out: int
    dropped_annotations: Mapping[str, int] = dataclasses.field(default_factory=dict)
    dropped_images: Mapping[str, int] = dataclasses.field(default_factory=dict)
    dropped_categories: tuple[str, ...] = ()
    added_categories: tuple[str, ...] = ()
    changed_annotations: int = 0
    notes: tuple[str, ...] = ()
    id_maps: tuple[IdMap, ...] = dataclasses.field(default=(), compare=False, repr=False)

    @property
    def total_dropped_annotations(self) -> int:
        """Number of annotations dropped, over all reasons."""
        return int(sum(self.dropped_annotations.values()))

    @property
    def total_dropped_images(self) -> int:
        """Number of images dropped, over all reasons."""
        return int(sum(self.dropped_images.values()))

    def lines(self) -> list[str]:
        """The report as short lines of text."""
        out = [
            f"{self.operation}: {self.images_in} -> {self.images_out} images, "
            f"{self.annotations_in} -> {self.annotations_out} annotations, "
            f"{self.categories_in} -> {self.categories_out} categories"
        ]
        for reason, n in self.dropped_images.items():
            if n:
                out.append(f"  dropped {n} image(s): {reason}")
        for reason, n in self.dropped_annotations.items():
            if n:
                out.append(f"  dropped {n} annotation(s): {reason}")
        if self.dropped_categories:
            out.append(f"  dropped categories: {', '.join(self.dropped_categories)}")
        if self.added_categories:
            out.append(f"  added categories: {', '.join(self.added_categories)}")
        if self.changed_annotations:
            out.append(f"  changed {self.changed_annotations} annotation(s)")
        out.extend(f"  {note}" for note in self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


class Transformed(NamedTuple):
    """The result of a transform: the new dataset and its report."""

    dataset: Dataset
    report: TransformReport


def make_report(operation: str, before: Dataset | Iterable[Dataset], after: Dataset,
                **fields: Any) -> TransformReport:
    """A :class:`TransformReport` with the sizes of ``before`` (one or several) and ``after``."""
    inputs = [before] if isinstance(before, Dataset) else list(before)
    return TransformReport(
        operation=operation,
        images_in=sum(len(d.images) for d in inputs),
        images_out=len(after.images),
        annotations_in=sum(len(d.annotations) for d in inputs),
        annotations_out=len(after.annotations),
        categories_in=(len(inputs[0].categories) if len(inputs) == 1
                       else len({str(n) for d in inputs for n in d.categories.name})),
        categories_out=len(after.categories),
        **fields,
    )


def describe(ds: Dataset, index: int | None = None) -> str:
    """How to name a dataset in a message: its source file, else ``input N``."""
    if ds.source:
        return ds.source
    return f"input {index + 1}" if index is not None else "dataset"


def located(ds: Dataset, section: str, row: int, index: int | None = None) -> tuple[str, str]:
    """The file and the JSON path (``annotations[15]``) to name row ``row`` of
    ``section`` (``images`` or ``annotations``) of ``ds`` in an
    :class:`~cocokit.errors.InputError`: where it was read when ``ds`` is a transform's
    result (:attr:`~cocokit.dataset.Dataset.origin`), else ``ds`` itself as
    :func:`describe` names it."""
    if ds.origin is not None:
        source, read = ds.origin.read_at(section, row)
        return source or describe(ds, index), f"{section}[{read}]"
    return describe(ds, index), f"{section}[{row}]"


def category_rows(categories: Categories, items: Iterable[str | int], option: str) -> np.ndarray:
    """Rows of the categories named by ``items`` (names as str, ids as int), in order.

    Raises :class:`OptionError` naming ``option`` for a name or id the dataset lacks.
    """
    rows: list[int] = []
    for item in items:
        if isinstance(item, (bool, np.bool_)):
            raise OptionError(option, item, "a category name (str) or id (int)")
        if isinstance(item, (int, np.integer)):
            hit = np.flatnonzero(categories.id == int(item))
            what = "a category id of the dataset"
        elif isinstance(item, str):
            hit = np.flatnonzero(categories.name == item)
            what = "a category name of the dataset"
        else:
            raise OptionError(option, item, "a category name (str) or id (int)")
        if len(hit) == 0:
            known = ", ".join(map(str, categories.name[:8]))
            more = ", ..." if len(categories) > 8 else ""
            raise OptionError(option, item, f"{what} ({known}{more})")
        rows.append(int(hit[0]))
    return np.asarray(rows, np.int64)


def repeats(ids: np.ndarray) -> np.ndarray:
    """Mask of the rows whose value already occurred in an earlier row."""
    ids = np.asarray(ids)
    out = np.zeros(len(ids), bool)
    if len(ids) < 2:
        return out
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    out[order[1:][s[1:] == s[:-1]]] = True
    return out


def first_repeat(ids: np.ndarray) -> tuple[int, int] | None:
    """``(row, first_row)`` of the first row whose value repeats an earlier one, or None."""
    mask = repeats(ids)
    if not mask.any():
        return None
    row = int(np.flatnonzero(mask)[0])
    first = int(np.flatnonzero(np.asarray(ids) == ids[row])[0])
    return row, first


def new_ids(keep: np.ndarray, taken: np.ndarray, start: int) -> np.ndarray:
    """Ids for rows: ``keep`` where it is not in ``taken`` and not repeated, else fresh.

    Fresh ids count up from ``start``. Used wherever ids must be unique but should stay
    as they were where they already are.
    """
    keep = np.asarray(keep, np.int64)
    clash = repeats(keep)
    if len(taken):
        clash |= np.isin(keep, taken)
    out = keep.copy()
    out[clash] = start + np.arange(int(clash.sum()), dtype=np.int64)
    return out


P = ParamSpec("P")
R = TypeVar("R")


def gc_paused(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the cyclic garbage collector paused.

    Transforms make many small objects that hold no cycles (lists of coordinates,
    dicts of extra keys); a collection pass over a large dataset's objects would cost
    more than the transform itself (see STYLE.md).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with paused():
            return fn(*args, **kwargs)

    return wrapper
