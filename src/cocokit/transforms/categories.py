"""Edit the category list: rename, merge, drop, add, remap to a name -> id table, sort,
renumber. Annotations follow their categories; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ..dataset import Categories, Dataset, derived, plain
from ..errors import InputError, OptionError
from ._base import Transformed, describe, first_repeat, gc_paused, located, make_report

__all__ = ["edit_categories"]


class _Entry:
    """One output category: its record and the input category rows that flow into it."""

    def __init__(self, record: dict[str, Any], rows: list[int]) -> None:
        self.record = record
        self.rows = rows

    @property
    def name(self) -> str:
        return str(self.record["name"])

    @property
    def id(self) -> int:
        return int(self.record["id"])


@gc_paused
def edit_categories(
    ds: Dataset,
    *,
    rename: Mapping[str | int, str] | None = None,
    merge: Mapping[str, Sequence[str | int]] | None = None,
    drop: Iterable[str | int] | None = None,
    add: Iterable[str | Mapping[str, Any]] | None = None,
    mapping: Mapping[str, int] | None = None,
    sort: Literal["name", "id"] | None = None,
    reindex: int | None = None,
) -> Transformed:
    """Edit the categories; returns ``(dataset, report)``.

    The steps run in this order (each sees the result of the one before):

    1. ``rename``: ``{old: new}`` (old a name or id); all renames at once, so
       ``{"a": "b", "b": "a"}`` swaps. A new name already in use is an error (merge
       instead).
    2. ``merge``: ``{target: [sources...]}``: the sources become one category named
       ``target``. If ``target`` exists it absorbs the sources (keeping its record and
       id), otherwise the first source is renamed ``target`` and absorbs the others.
    3. ``drop``: remove these categories and their annotations.
    4. ``add``: new categories without annotations: a name, or a record with at least
       ``name`` (and ``id``; without one it gets one past the largest id).
    5. ``mapping``: a target ``{name: id}`` table (SAHI's ``desired_name2id``): the
       result has exactly these categories, in this order, with these ids; categories
       not in it are dropped with their annotations, names it adds are created.
    6. ``sort``: order the list by ``"name"`` or ``"id"``.
    7. ``reindex``: number the ids ``reindex, reindex + 1, ...`` in list order (0 or 1
       usually; any integer >= 0 is accepted).

    Category records keep their other keys (supercategory, keypoints, skeleton, ...).
    Raises :class:`~cocokit.errors.InputError` if the input has duplicate category
    ids or names (annotations would be ambiguous), and
    :class:`~cocokit.errors.OptionError` for unknown categories or clashing names/ids.
    """
    cats = ds.categories
    src = describe(ds)
    for column, what in ((cats.id, "id"), (np.asarray(cats.name, dtype=str), "name")):
        rep = first_repeat(column)
        if rep is not None:
            raise InputError(src, f"categories[{rep[0]}].{what}",
                             f"duplicate category {what} {plain(column[rep[0]])!r} (first at "
                             f"categories[{rep[1]}]); annotations would be ambiguous")
    entries = [_Entry(dict(rec), [i]) for i, rec in enumerate(cats.records)]
    notes: list[str] = []
    dropped_by: dict[int, str] = {}  # input category row -> reason
    added: list[str] = []

    if rename:
        targets = [(_find(entries, old, "rename"), str(new)) for old, new in rename.items()]
        for e, new in targets:
            if not new:
                raise OptionError("rename", dict(rename), "non-empty new names")
            notes.append(f"renamed {e.name!r} to {new!r}")
            e.record["name"] = new
        _check_unique(entries, "rename", "a new name that no other category has ({} would "
                      "name two; --merge combines categories)")

    if merge:
        for target, sources in merge.items():
            if not sources:
                raise OptionError("merge", dict(merge), "at least one source per target")
            found = [_find(entries, s, "merge") for s in sources]
            existing = [e for e in entries if e.name == target]
            keeper = existing[0] if existing else found[0]
            for e in found:
                if e is not keeper:
                    keeper.rows.extend(e.rows)
                    entries.remove(e)
            names = ", ".join(repr(str(s)) for s in sources)
            if not existing:
                keeper.record["name"] = str(target)
            notes.append(f"merged {names} into {target!r} (id {keeper.id})")

    if drop is not None:
        for item in drop:
            e = _find(entries, item, "drop")
            entries.remove(e)
            for row in e.rows:
                dropped_by[row] = "category dropped"

    if add is not None:
        for new_cat in add:
            rec: dict[str, Any] = (
                {"name": new_cat} if isinstance(new_cat, str) else dict(new_cat))
            if not isinstance(rec.get("name"), str) or not rec["name"]:
                raise OptionError("add", new_cat, "a name or a record with a non-empty 'name'")
            if any(e.name == rec["name"] for e in entries):
                raise OptionError("add", rec["name"], "a name not already in the categories")
            if "id" not in rec:
                rec = {"id": max((e.id for e in entries), default=0) + 1, **rec}
            if isinstance(rec["id"], bool) or not isinstance(rec["id"], (int, np.integer)):
                raise OptionError("add", new_cat, "an integer id")
            rec["id"] = int(rec["id"])
            if any(e.id == rec["id"] for e in entries):
                raise OptionError("add", new_cat, f"an id not already in use ({rec['id']} is)")
            entries.append(_Entry(rec, []))
            added.append(rec["name"])

    if mapping is not None:
        ids = [int(v) for v in mapping.values()]
        rep = first_repeat(np.asarray(ids, np.int64))
        if rep is not None:
            raise OptionError("mapping", dict(mapping), f"unique ids ({ids[rep[0]]} is repeated)")
        by_name = {e.name: e for e in entries}
        new_entries: list[_Entry] = []
        for name, cid in mapping.items():
            hit = by_name.get(str(name))
            if hit is None:
                hit = _Entry({"id": int(cid), "name": str(name)}, [])
                added.append(str(name))
            hit.record["id"] = int(cid)
            new_entries.append(hit)
        kept = {id(e) for e in new_entries}
        for e in entries:
            if id(e) not in kept:
                for row in e.rows:
                    dropped_by[row] = "category not in the mapping"
        entries = new_entries

    if sort is not None:
        if sort not in ("name", "id"):
            raise OptionError("sort", sort, "'name' or 'id'")
        entries.sort(key=(lambda e: e.name) if sort == "name" else (lambda e: e.id))

    if reindex is not None:
        if isinstance(reindex, bool) or int(reindex) != reindex or reindex < 0:
            raise OptionError("reindex", reindex, "a whole number >= 0 (usually 0 or 1)")
        for i, e in enumerate(entries):
            e.record["id"] = int(reindex) + i
        notes.append(f"category ids renumbered from {int(reindex)}")
    _check_unique(entries, "categories", "unique ids and names ({} would occur twice)")

    # -- annotations follow ------------------------------------------------------------
    new_id_of_row = np.full(len(cats) + 1, -1, np.int64)  # last: undeclared category
    for e in entries:
        new_id_of_row[e.rows] = e.id
    ci = ds.category_index
    anns = ds.annotations
    new_cat = new_id_of_row[ci]
    undeclared = ci < 0
    out_ids = np.asarray([e.id for e in entries], np.int64)
    if undeclared.any():
        joined = undeclared & np.isin(anns.category_id, out_ids)
        if joined.any():
            r = int(np.flatnonzero(joined)[0])
            file, where = located(ds, "annotations", r)
            raise InputError(file, f"{where}.category_id",
                             f"category id {int(anns.category_id[r])} is not declared, and "
                             "the edited categories would give that id to another category")
        new_cat[undeclared] = anns.category_id[undeclared]
        notes.append(f"{int(undeclared.sum())} annotation(s) name undeclared categories; "
                     "left as they are")
    keep = new_cat >= 0
    changed = int(np.count_nonzero(keep & (new_cat != anns.category_id)))
    dropped_anns: dict[str, int] = {}
    row_reason = np.array([dropped_by.get(i, "") for i in range(len(cats))] + [""], dtype=object)
    for reason in dict.fromkeys(dropped_by.values()):
        dropped_anns[reason] = int(np.count_nonzero(~keep & (row_reason[ci] == reason)))
    new_anns = anns
    if not keep.all():
        new_anns = new_anns.take(keep)
        new_cat = new_cat[keep]
    if changed:
        new_anns = new_anns.replace(category_id=new_cat)
    out = derived(ds, ds.replace(annotations=new_anns,
                                 categories=Categories([e.record for e in entries])),
                  np.arange(len(ds.images)), np.flatnonzero(keep))
    kept_rows = {row for e in entries for row in e.rows}
    report = make_report(
        "categories", ds, out,
        dropped_annotations=dropped_anns,
        dropped_categories=tuple(str(cats.name[i]) for i in range(len(cats))
                                 if i not in kept_rows),
        added_categories=tuple(added),
        changed_annotations=changed,
        notes=tuple(notes),
    )
    return Transformed(out, report)


def _find(entries: list[_Entry], item: str | int, option: str) -> _Entry:
    if isinstance(item, (bool, np.bool_)):
        raise OptionError(option, item, "a category name (str) or id (int)")
    if isinstance(item, (int, np.integer)):
        hit = [e for e in entries if e.id == int(item)]
    elif isinstance(item, str):
        hit = [e for e in entries if e.name == item]
    else:
        raise OptionError(option, item, "a category name (str) or id (int)")
    if not hit:
        known = ", ".join(e.name for e in entries[:8]) + (", ..." if len(entries) > 8 else "")
        raise OptionError(option, item, f"a category of the dataset ({known})")
    return hit[0]


def _check_unique(entries: list[_Entry], option: str, expected: str) -> None:
    names = [e.name for e in entries]
    ids = [e.id for e in entries]
    for values in (names, ids):
        seen: set[Any] = set()
        for v in values:
            if v in seen:
                raise OptionError(option, v, expected.format(repr(v)))
            seen.add(v)
