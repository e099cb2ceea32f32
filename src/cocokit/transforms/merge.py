"""Merge several datasets into one.

Categories are reconciled by name, image and annotation ids made unique, licences
merged, file names optionally rewritten so images from different folders stay findable.
Columns are concatenated, so segmentations (raw JSON text) are never parsed.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
import numpy as np

from ..dataset import Annotations, Categories, Dataset, Images, derived_merge, object_array, plain
from ..errors import InputError, OptionError
from ..io.idmap import IdMap
from ._base import (
    Transformed,
    describe,
    first_repeat,
    gc_paused,
    located,
    make_report,
    new_ids,
    repeats,
)

__all__ = ["Duplicates", "merge"]

Duplicates = Literal["error", "prefix", "keep"]


@gc_paused
def merge(
    datasets: Sequence[Dataset],
    *,
    category_map: Mapping[str, int] | None = None,
    renumber: bool = False,
    image_roots: Sequence[str | os.PathLike[str]] | None = None,
    prefixes: Sequence[str] | None = None,
    duplicates: Duplicates = "error",
    dedupe_images: bool = False,
    info: Mapping[str, Any] | None = None,
) -> Transformed:
    """Merge datasets into one; returns ``(dataset, report)``.

    **Categories** are matched by name. Without ``category_map`` the result has the
    union of the categories in order of first appearance; each keeps its id from the
    first input where that id is still free, and the others get the next free ids (one
    past the largest id in use). Its record keeps every key of every input
    (``supercategory``, ``keypoints``, ``skeleton``, unknown keys): a key one input has and
    another lacks is taken; two inputs giving one key different values is an
    :class:`~cocokit.errors.InputError` naming both inputs (their files, else ``input N``)
    and the key. With ``category_map`` (name -> id, SAHI's
    ``desired_name2id``) the result has exactly those categories in that order;
    categories of the inputs not in the map are dropped with their annotations
    (reported), names of the map no input has are added.

    **Ids**: image and annotation ids are kept where they do not collide with an
    earlier one (of an earlier input, or repeated within the same input), otherwise
    they get the next free ids above the largest id in use in any input, counting up;
    with ``renumber`` all are numbered 1..N in order (images in input order,
    annotations in input order). Annotations follow their images. The notes say, per
    input, how many ids changed, why (repeated within that input, or already used by
    an earlier input) and which ids they got; ``report.id_maps`` holds, per input, the
    :class:`~cocokit.io.idmap.IdMap` from its ids (images, annotations, categories) to
    the merged dataset's, for carrying predictions over (``cocokit merge --id-map``).
    Ids are so big when an input already uses big ones: COCO's crowd annotations have
    ids like 900100000000, so a clash gets 900100000001 and up.

    **File names** are kept unless ``image_roots`` (one folder per input: file names
    become relative to the folders' common root) or ``prefixes`` (one per input,
    ``prefix/file_name``) are given. Two different images of different inputs with the
    same final file name are an error unless ``duplicates`` is ``"prefix"`` (prefix the
    later one with its input's prefix: ``prefixes[k]`` or the input file's stem) or
    ``"keep"``. With ``dedupe_images``, an image with the same final file name *and*
    size as one of an earlier input is the same image: the two merge into the earlier
    record, with the annotations of both, except that an annotation of the later input
    that is an exact duplicate of one the earlier input has on that image (the same
    category, ``bbox``, ``segmentation``, ``area``, ``iscrowd``, ``keypoints``,
    ``num_keypoints`` and other keys: everything but the id) is kept once; the report
    counts them (``"N duplicate annotations dropped"``). Duplicates within one input
    are kept as they are.

    **Licences** (``licenses``) are merged without duplicates (equal but for the id) and
    their ids remapped in the images. ``info`` is the given one, else the first input's.
    Other top-level keys are taken from the first input that has them (a differing
    value in a later input is reported in the notes).

    Raises :class:`~cocokit.errors.InputError` for an input whose references are
    ambiguous or broken (duplicate image ids, annotations naming no image or an
    undeclared category, duplicate category names), and for duplicate file names as
    described above.
    """
    datasets = list(datasets)
    if not datasets:
        raise OptionError("datasets", [], "at least one dataset to merge")
    if duplicates not in ("error", "prefix", "keep"):
        raise OptionError("duplicates", duplicates, "'error', 'prefix' or 'keep'")
    for option, values in (("image_roots", image_roots), ("prefixes", prefixes)):
        if values is not None and len(values) != len(datasets):
            raise OptionError(option, list(map(str, values)),
                              f"one value per input ({len(datasets)})")
    for k, ds in enumerate(datasets):
        _check_input(ds, k)
    notes: list[str] = []

    # -- categories ------------------------------------------------------------------
    cat_records, cat_new, dropped_cats, added_cats, cat_notes = _categories(datasets, category_map)
    notes += cat_notes

    # -- licences --------------------------------------------------------------------
    licenses, license_maps, lic_notes = _licenses(datasets)
    notes += lic_notes

    # -- file names and images -------------------------------------------------------
    names = _file_names(datasets, image_roots, prefixes)
    default_prefixes = list(prefixes) if prefixes is not None else _default_prefixes(datasets)
    keep_rows, same_as, names, img_notes = _resolve_duplicates(
        datasets, names, default_prefixes, duplicates, dedupe_images)
    notes += img_notes

    all_image_ids = [ds.images.id for ds in datasets if len(ds.images)]
    fresh_image = int(max((int(a.max()) for a in all_image_ids), default=0)) + 1
    out_id_of_row: list[np.ndarray] = []
    image_tables: list[Images] = []
    taken = np.zeros(0, np.int64)
    next_id = 1
    for k, ds in enumerate(datasets):
        rows = keep_rows[k]
        if renumber:
            ids = np.arange(next_id, next_id + len(rows), dtype=np.int64)
            next_id += len(rows)
        else:
            ids = new_ids(ds.images.id[rows], taken, fresh_image)
            changed = int(np.count_nonzero(ids != ds.images.id[rows]))
            fresh_image += changed
            if changed:
                notes.append(_ids_note(describe(ds, k), "image", ds.images.id[rows], ids,
                                       taken, fresh_image))
            taken = np.concatenate([taken, ids])
        out_ids = np.full(len(ds.images), -1, np.int64)
        out_ids[rows] = ids
        for row, (k0, r0) in same_as[k].items():
            out_ids[row] = out_id_of_row[k0][r0]
        out_id_of_row.append(out_ids)
        img_extra = _remap_licenses(ds.images.extra, rows, license_maps[k])
        image_tables.append(ds.images.take(rows).replace(
            id=ids, file_name=names[k][rows], extra=img_extra))
    images = Images.concat(image_tables)

    # -- annotations -----------------------------------------------------------------
    all_ann_ids = [ds.annotations.id for ds in datasets if len(ds.annotations)]
    fresh_ann = int(max((int(a.max()) for a in all_ann_ids), default=0)) + 1
    ann_tables: list[Annotations] = []
    ann_maps: list[tuple[np.ndarray, np.ndarray]] = []
    ann_rows_of: list[np.ndarray] = []  # per input, its rows written
    taken = np.zeros(0, np.int64)
    next_id = 1
    dropped_by_map = 0
    # images that a later input's image merged into: their annotations' contents, so an
    # exact duplicate from the later input is kept once
    shared = {int(out_id_of_row[k0][r0]) for merged_rows in same_as
              for k0, r0 in merged_rows.values()}
    contents: dict[int, set[Any]] = {i: set() for i in shared}
    duplicates_dropped = 0
    for k, ds in enumerate(datasets):
        new_cat = cat_new[k][ds.category_index]
        rows = np.flatnonzero(new_cat >= 0)
        dropped_by_map += len(ds.annotations) - len(rows)
        if shared:
            rows, n_dup = _drop_duplicates(ds.annotations, rows, out_id_of_row[k][
                ds.image_index[rows]], new_cat[rows], contents)
            duplicates_dropped += n_dup
        if renumber:
            ids = np.arange(next_id, next_id + len(rows), dtype=np.int64)
            next_id += len(rows)
        else:
            ids = new_ids(ds.annotations.id[rows], taken, fresh_ann)
            changed = int(np.count_nonzero(ids != ds.annotations.id[rows]))
            fresh_ann += changed
            if changed:
                notes.append(_ids_note(describe(ds, k), "annotation", ds.annotations.id[rows],
                                       ids, taken, fresh_ann))
            taken = np.concatenate([taken, ids])
        old = ds.annotations.id[rows]
        ambiguous = np.unique(ds.annotations.id[repeats(ds.annotations.id)])
        if len(ambiguous):  # which of its new ids such an old id became is unknowable
            mapped = ~np.isin(old, ambiguous)
            old, ids_mapped = old[mapped], ids[mapped]
            shown = ", ".join(map(str, ambiguous[:5].tolist())) + (
                ", ..." if len(ambiguous) > 5 else "")
            notes.append(f"{describe(ds, k)}: {len(ambiguous)} annotation id(s) repeated "
                         f"within this input ({shown}) are left out of its id map")
        else:
            ids_mapped = ids
        ann_maps.append((old, ids_mapped))
        ann_rows_of.append(rows)
        image_id = out_id_of_row[k][ds.image_index[rows]]
        table = ds.annotations.take(rows) if len(rows) != len(ds.annotations) else ds.annotations
        ann_tables.append(table.replace(id=ids, image_id=image_id, category_id=new_cat[rows]))
    annotations = Annotations.concat(ann_tables)

    # -- top level -------------------------------------------------------------------
    extra, key_order, top_notes = _top_level(datasets, licenses, info)
    notes += top_notes
    out = derived_merge(datasets, Dataset(images, annotations, Categories(cat_records), extra,
                                          key_order), keep_rows, ann_rows_of)
    name_of = dict(zip(images.id.tolist(), images.file_name.tolist(), strict=True))
    id_maps = []
    for k, ds in enumerate(datasets):
        img = np.flatnonzero(out_id_of_row[k] >= 0)
        new_img = out_id_of_row[k][img]
        cat = np.flatnonzero(cat_new[k][:-1] >= 0)  # (its last entry: no category)
        id_maps.append(IdMap(ds.images.id[img], new_img, *ann_maps[k], ds.categories.id[cat],
                             cat_new[k][cat], tuple(name_of[i] for i in new_img.tolist())))
    merged = sum(len(s) for s in same_as)
    if duplicates_dropped:
        notes.append(f"{duplicates_dropped} duplicate annotations dropped (exact copies, on "
                     "a merged image, of an earlier input's annotation)")
    report = make_report(
        "merge", datasets, out,
        dropped_annotations={"category not in the category map": dropped_by_map,
                             "exact duplicate of an earlier input's annotation of the same "
                             "image": duplicates_dropped},
        dropped_images={"same image as in an earlier input (annotations merged into it)":
                        merged},
        dropped_categories=tuple(dropped_cats),
        added_categories=tuple(added_cats),
        notes=tuple(notes),
        id_maps=tuple(id_maps),
    )
    return Transformed(out, report)


def _ids_note(source: str, what: str, old: np.ndarray, new: np.ndarray, earlier: np.ndarray,
              fresh: int) -> str:
    """The note of one input whose ``what`` ids changed: how many, why (``earlier``:
    the ids earlier inputs took) and which fresh ids they got (up to ``fresh``)."""
    changed = old != new
    n = int(changed.sum())
    taken = changed & np.isin(old, earlier)
    within = changed & np.isin(old, old[repeats(old)])
    why = [f"{int(np.count_nonzero(c))} {w}" for c, w in (
        (within & ~taken, "repeated within this input"),
        (taken & ~within, "already used by an earlier input"),
        (taken & within, "both repeated within this input and used by an earlier one"),
    ) if c.any()]
    got = f"id {fresh - 1}" if n == 1 else f"ids {fresh - n}..{fresh - 1}"
    return (f"{source}: {n} {what} id(s) changed ({', '.join(why)}): now {got}, the next "
            f"free above {fresh - n - 1}, the largest in use")


def _frozen(value: Any) -> Any:
    """A hashable form of a JSON value; numbers compare as numbers (1 == 1.0)."""
    if isinstance(value, dict):
        return ("{", tuple(sorted((str(k), _frozen(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("[", tuple(_frozen(v) for v in value))
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return repr(value)


def _drop_duplicates(anns: Annotations, rows: np.ndarray, image_ids: np.ndarray,
                     category_ids: np.ndarray, contents: dict[int, set[Any]]
                     ) -> tuple[np.ndarray, int]:
    """``rows`` without the annotations of a shared image (a key of ``contents``) whose
    content (everything but the id; image and category as in the output) an earlier
    input already put there; records what this input puts there. Returns (rows, dropped)."""
    on_shared = np.fromiter((int(i) in contents for i in image_ids.tolist()), bool,
                            len(image_ids))
    if not on_shared.any():
        return rows, 0
    keep = np.ones(len(rows), bool)
    added: dict[int, list[Any]] = {}
    for j in np.flatnonzero(on_shared).tolist():
        rec = anns.record(int(rows[j]))
        del rec["id"]
        img = int(image_ids[j])
        rec["image_id"] = img
        rec["category_id"] = int(category_ids[j])
        key = _frozen(rec)
        if key in contents[img]:
            keep[j] = False
        else:
            added.setdefault(img, []).append(key)
    for img, keys in added.items():  # after the loop: duplicates within one input stay
        contents[img].update(keys)
    return rows[keep], int(np.count_nonzero(~keep))


def _check_input(ds: Dataset, k: int) -> None:
    src = describe(ds, k)
    rep = first_repeat(ds.images.id)
    if rep is not None:
        file, where = located(ds, "images", rep[0], k)
        first_file, first = located(ds, "images", rep[1], k)
        first = first if first_file == file else f"{first_file}: {first}"
        raise InputError(file, f"{where}.id",
                         f"duplicate image id {int(ds.images.id[rep[0]])} (first at "
                         f"{first}); annotations that reference it are ambiguous")
    bad = np.flatnonzero(ds.image_index < 0)
    if len(bad):
        r = int(bad[0])
        file, where = located(ds, "annotations", r, k)
        raise InputError(file, f"{where}.image_id",
                         f"image id {int(ds.annotations.image_id[r])} names no image "
                         f"({len(bad)} such annotation(s))")
    bad = np.flatnonzero(ds.category_index < 0)
    if len(bad):
        r = int(bad[0])
        file, where = located(ds, "annotations", r, k)
        raise InputError(file, f"{where}.category_id",
                         f"category id {int(ds.annotations.category_id[r])} is not in "
                         f"categories ({len(bad)} such annotation(s))")
    for column, what in ((ds.categories.id, "id"), (ds.categories.name, "name")):
        rep = first_repeat(column if what == "id" else np.asarray(column, dtype=str))
        if rep is not None:
            raise InputError(src, f"categories[{rep[0]}].{what}",
                             f"duplicate category {what} {plain(column[rep[0]])!r} (first at "
                             f"categories[{rep[1]}])")


def _categories(
    datasets: list[Dataset], category_map: Mapping[str, int] | None
) -> tuple[list[dict[str, Any]], list[np.ndarray], list[str], list[str], list[str]]:
    """Output category records, and per input the new id of each category row (-1: dropped)."""
    first_record: dict[str, dict[str, Any]] = {}  # the union of the inputs' records
    key_source: dict[tuple[str, str], int] = {}  # (name, key) -> input that gave the key
    conflicts: dict[str, InputError] = {}
    candidates: dict[str, list[int]] = {}
    for k, ds in enumerate(datasets):
        for row, rec in enumerate(ds.categories.records):
            name = str(rec["name"])
            candidates.setdefault(name, []).append(int(rec["id"]))
            merged = first_record.setdefault(name, {})
            for key, value in rec.items():
                if key not in merged:
                    merged[key] = value
                    key_source[(name, key)] = k
                elif key != "id" and _frozen(merged[key]) != _frozen(value) \
                        and name not in conflicts:
                    k0 = key_source[(name, key)]
                    conflicts[name] = InputError(
                        describe(ds, k), f"categories[{row}].{key}",
                        f"category {name!r} has {key} {_short(value)} here but "
                        f"{_short(merged[key])} in {describe(datasets[k0], k0)}; make them "
                        "agree (or rename one category) before merging")
    notes: list[str] = []
    dropped: list[str] = []
    added: list[str] = []
    if category_map is not None:
        ids = [int(v) for v in category_map.values()]
        rep = first_repeat(np.asarray(ids, np.int64))
        if rep is not None:
            raise OptionError("category_map", dict(category_map),
                              f"unique ids (id {ids[rep[0]]} is given twice)")
        assigned = {str(n): int(i) for n, i in category_map.items()}
        dropped = [n for n in first_record if n not in assigned]
        added = [n for n in assigned if n not in first_record]
    else:
        assigned = {}
        taken: set[int] = set()
        for name, ids_of_name in candidates.items():  # pass 1: keep a free original id
            for cid in ids_of_name:
                if cid not in taken:
                    assigned[name] = cid
                    taken.add(cid)
                    break
        next_free = max(taken, default=0) + 1
        for name in candidates:  # pass 2: the rest get the next free ids
            if name not in assigned:
                assigned[name] = next_free
                notes.append(f"category {name!r} gets id {next_free} (its id "
                             f"{candidates[name][0]} is taken)")
                taken.add(next_free)
                next_free += 1
    for name in assigned:
        if name in conflicts:
            raise conflicts[name]
    records = []
    for name, cid in assigned.items():
        if name in first_record:
            rec = dict(first_record[name])
            rec["id"] = cid
        else:
            rec = {"id": cid, "name": name}
        records.append(rec)
    per_input = [
        np.asarray([assigned.get(str(n), -1) for n in ds.categories.name] + [-1], np.int64)
        for ds in datasets
    ]  # the trailing -1 is what a category index of -1 picks
    return records, per_input, dropped, added, notes


def _short(value: Any, limit: int = 60) -> str:
    text = repr(plain(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _license_key(lic: Mapping[str, Any]) -> bytes:
    return msgspec.json.encode({k: lic[k] for k in sorted(lic) if k != "id"})


def _licenses(datasets: list[Dataset]) -> tuple[list[Any] | None, list[dict[Any, Any]], list[str]]:
    """Merged licence list (None if no input has one) and per input old id -> new id."""
    merged: list[Any] = []
    by_content: dict[bytes, Any] = {}
    used: set[Any] = set()
    maps: list[dict[Any, Any]] = []
    notes: list[str] = []
    seen_any = False
    for k, ds in enumerate(datasets):
        lics = ds.extra.get("licenses")
        mapping: dict[Any, Any] = {}
        maps.append(mapping)
        if lics is None:
            continue
        seen_any = True
        if not isinstance(lics, list):
            notes.append(f"{describe(ds, k)}: 'licenses' is not a list; left out")
            continue
        for lic in lics:
            if not isinstance(lic, dict) or "id" not in lic:
                if lic not in merged:
                    merged.append(lic)
                continue
            key = _license_key(lic)
            old = lic["id"]
            if key in by_content:
                mapping[old] = by_content[key]
                continue
            new = old
            if old in used:
                new = max((u for u in used if isinstance(u, int)), default=0) + 1
                notes.append(f"{describe(ds, k)}: licence {old} is now licence {new}")
            rec = dict(lic)
            rec["id"] = new
            merged.append(rec)
            used.add(new)
            by_content[key] = new
            mapping[old] = new
    return (merged if seen_any else None), maps, notes


def _remap_licenses(extra: np.ndarray, rows: np.ndarray, mapping: dict[Any, Any]) -> np.ndarray:
    """The extra column of ``rows`` with image ``license`` ids remapped (new dicts)."""
    col = extra[rows]
    if not any(k != v for k, v in mapping.items()):
        return col
    out = col.copy()
    for i, ex in enumerate(col):
        if ex and "license" in ex:
            old = plain(ex["license"])
            if isinstance(old, (int, str)) and old in mapping and mapping[old] != old:
                new = dict(ex)
                new["license"] = mapping[old]
                out[i] = new
    return out


def _file_names(datasets: list[Dataset], image_roots: Sequence[str | os.PathLike[str]] | None,
                prefixes: Sequence[str] | None) -> list[np.ndarray]:
    names = [ds.images.file_name for ds in datasets]
    if image_roots is not None:
        roots = [os.path.abspath(os.fspath(r)) for r in image_roots]
        common = os.path.commonpath(roots)
        out = []
        for root, col in zip(roots, names, strict=True):
            rel = Path(os.path.relpath(root, common)).as_posix()
            if rel == ".":
                out.append(col)
            else:
                out.append(object_array([posixpath.join(rel, n) for n in col.tolist()]))
        names = out
    if prefixes is not None:
        names = [col if not p else object_array([p.rstrip("/") + "/" + n for n in col.tolist()])
                 for p, col in zip(prefixes, names, strict=True)]
    return names


def _default_prefixes(datasets: list[Dataset]) -> list[str]:
    stems = [Path(ds.source).stem if ds.source else f"input{k + 1}"
             for k, ds in enumerate(datasets)]
    return [s if stems.count(s) == 1 else f"{s}_{k + 1}" for k, s in enumerate(stems)]


def _resolve_duplicates(
    datasets: list[Dataset], names: list[np.ndarray], prefixes: list[str],
    duplicates: Duplicates, dedupe: bool,
) -> tuple[list[np.ndarray], list[dict[int, tuple[int, int]]], list[np.ndarray], list[str]]:
    """Per input: rows kept, rows merged into an earlier input's image, final names.

    Works with one dict of the names seen so far (name -> global row of its first
    image) and list comprehensions, so a clash of every image costs a few passes over
    the names, not a Python block per image.
    """
    starts = np.cumsum([0] + [len(d.images) for d in datasets])
    sources = np.repeat(np.arange(len(datasets)), np.diff(starts))
    width = np.concatenate([d.images.width for d in datasets]) if len(datasets) else np.zeros(0)
    height = np.concatenate([d.images.height for d in datasets]) if len(datasets) else width
    first: dict[str, int] = {}
    keep_rows: list[np.ndarray] = []
    same_as: list[dict[int, tuple[int, int]]] = []
    out_names: list[np.ndarray] = []
    notes: list[str] = []
    for k, ds in enumerate(datasets):
        col = names[k]
        listed: list[str] = col.tolist()
        n = len(listed)
        keep = np.ones(n, bool)
        merged: dict[int, tuple[int, int]] = {}
        get = first.get
        hit = np.fromiter((get(name, -1) for name in listed), np.int64, n)
        clash = np.flatnonzero(hit >= 0)
        if len(clash):
            other = hit[clash]
            if dedupe:
                same = ((width[other] == ds.images.width[clash])
                        & (height[other] == ds.images.height[clash]))
                for i, g in zip(clash[same].tolist(), other[same].tolist(), strict=True):
                    merged[i] = (int(sources[g]), g - int(starts[sources[g]]))
                keep[clash[same]] = False
                clash, other = clash[~same], other[~same]
            if len(clash) and duplicates == "error":
                i, g = int(clash[0]), int(other[0])
                k0 = int(sources[g])
                hint = ("; use duplicates='prefix' or 'keep' (--on-duplicate prefix|keep)"
                        + (", or dedupe_images (--dedupe-images) if they are the same image"
                           if not dedupe else ""))
                file, where = located(ds, "images", i, k)
                other_file, other_where = located(datasets[k0], "images", g - int(starts[k0]), k0)
                raise InputError(
                    file, f"{where}.file_name",
                    f"file name {listed[i]!r} is also used by {other_where} of "
                    f"{other_file} ({len(clash)} such image(s)){hint}")
            if len(clash) and duplicates == "prefix":
                head = prefixes[k].rstrip("/") + "/"
                for i in clash.tolist():
                    listed[i] = head + listed[i]
                again = [i for i in clash.tolist() if listed[i] in first]
                if again:
                    file, where = located(ds, "images", again[0], k)
                    raise InputError(file, f"{where}.file_name",
                                     f"file name {listed[again[0]]!r} (prefixed) is used by an "
                                     "earlier input too")
                col = object_array(listed)
                notes.append(f"{describe(ds, k)}: {len(clash)} file name(s) prefixed with "
                             f"{head!r} to keep them apart")
            elif len(clash):
                notes.append(f"{describe(ds, k)}: {len(clash)} image(s) share their file name "
                             "with an image of an earlier input (kept both)")
            if merged:
                notes.append(f"{describe(ds, k)}: {len(merged)} image(s) merged with the same "
                             "image of an earlier input")
        rows = np.flatnonzero(keep)
        base = int(starts[k])
        # first occurrence wins: within this input (reversed update) and over earlier inputs
        seen = dict(zip(reversed([listed[i] for i in rows.tolist()]),
                        reversed((rows + base).tolist()), strict=True))
        seen.update(first)
        first = seen
        keep_rows.append(rows)
        same_as.append(merged)
        out_names.append(col)
    return keep_rows, same_as, out_names, notes


def _top_level(datasets: list[Dataset], licenses: list[Any] | None,
               info: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str], list[str]]:
    extra: dict[str, Any] = {}
    source_of: dict[str, int] = {}
    order: list[str] = []
    notes: list[str] = []
    for k, ds in enumerate(datasets):
        for key in ds.key_order:
            if key not in order:
                order.append(key)
        for key, value in ds.extra.items():
            if key == "licenses":
                continue
            if key not in extra:
                extra[key] = value
                source_of[key] = k
            elif key != "info" and extra[key] != value:
                notes.append(f"top-level {key!r} of {describe(ds, k)} differs from that of "
                             f"{describe(datasets[source_of[key]], source_of[key])}; kept the "
                             "first")
    if info is not None:
        extra["info"] = plain(dict(info))
        if "info" not in order:
            order.insert(0, "info")
    if licenses is not None:
        extra["licenses"] = licenses
    return extra, order, notes
