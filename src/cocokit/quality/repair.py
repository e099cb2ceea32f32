"""``repair``: deterministic fixes, each named, every change reported.

:func:`repair_dataset` applies the fixes asked for (:data:`FIXES`; by default
:data:`DEFAULT_FIXES`, all of them) always in the order of :data:`FIXES`, whatever the
order given, and returns the repaired dataset with one :class:`Change` per value
changed or record dropped: the fix, the JSON path in the *input* (``annotations[12].bbox``,
``annotations[40]`` for a record dropped), the old and the new value (``None`` for a
record dropped). What no fix touches comes out as it went in (ids, extra keys, RLE,
keypoints, the raw text of every segmentation not changed).

Not repaired (the export then refuses, naming them): repeated image or category ids,
and, without the ``invalid`` fix, records the writer refuses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import msgspec
import numpy as np

from ..clipping import clip_boxes, clip_polygons
from ..dataset import Annotations, Dataset, plain, ranges
from ..errors import OptionError
from ..geometry import (
    Polygons,
    SegmentationKind,
    parse_polygons,
    polygon_bboxes,
    ring_areas,
    segmentation_areas,
    segmentation_bboxes,
    shoelace_areas,
)
from ..io.coco import screen_export
from ..validate import AREA_ABS_TOLERANCE, AREA_REL_TOLERANCE

__all__ = ["BOX_TOLERANCE", "DEFAULT_FIXES", "FIXES", "Change", "Repair", "repair_dataset"]

#: Every fix, in the order they are applied, with what it does.
FIXES: dict[str, str] = {
    "dangling": "drop annotations whose image_id or category_id names no record",
    "exact-duplicates": "drop annotations equal to an earlier one of the same image in "
    "every field but the id",
    "duplicate-ids": "give annotations whose id repeats an earlier one new ids after the "
    "largest (max + 1, max + 2, ... in file order)",
    "clip": "clip boxes and polygons to their image (areas of what was cut recomputed: "
    "polygons by the shoelace formula, box-only annotations as width * height)",
    "degenerate": "drop polygon rings with fewer than 3 points, an odd number of "
    "coordinates, a non-finite one or no area; drop annotations left with neither a "
    "segmentation nor a box of positive width and height",
    "recompute": "set bbox and area from the segmentation where they are missing or "
    "disagree with it (bbox: a side off by more than 1 px; area: polygons by the shoelace "
    "formula, RLE by its mask, off by more than validate's tolerance)",
    "invalid": "drop records the writer still refuses (what validate reports as errors), "
    "an image with its annotations",
}
#: The fixes applied when none is named: all of them.
DEFAULT_FIXES: tuple[str, ...] = tuple(FIXES)
_RUN = 4096  # polygons parsed at a time when some do not parse
#: ``recompute``: a box side may differ from the segmentation's by this many px.
BOX_TOLERANCE = 1.0


@dataclasses.dataclass(frozen=True)
class Change:
    """One change: the ``fix`` that made it, the JSON ``path`` in the input, the ``old``
    and ``new`` values (plain JSON data; ``new`` is None for a record dropped)."""

    fix: str
    path: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"fix": self.fix, "path": self.path, "old": self.old, "new": self.new}


@dataclasses.dataclass
class Repair:
    """The repaired dataset and every change, in the order made."""

    dataset: Dataset
    fixes: tuple[str, ...]
    changes: list[Change]

    def counts(self) -> dict[str, int]:
        """Changes per fix (every fix applied, 0 included)."""
        out = dict.fromkeys(self.fixes, 0)
        for c in self.changes:
            out[c.fix] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.dataset.source, "fixes": list(self.fixes),
                "counts": self.counts(), "changes": [c.to_dict() for c in self.changes]}


def _box(v: np.ndarray) -> Any:
    return None if np.isnan(v).any() else [float(x) for x in v]


def _num(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def _subset(p: Polygons, idx: np.ndarray) -> Polygons:
    """The entries ``idx`` of ``p``, in that order."""
    idx = np.asarray(idx, np.int64)
    rc = p.ring_count[idx]
    ring_ids = np.repeat(p.offsets[idx], rc) + ranges(rc)
    sizes = p.ring_offsets[ring_ids + 1] - p.ring_offsets[ring_ids]
    vert = np.repeat(p.ring_offsets[ring_ids], sizes) + ranges(sizes)
    return Polygons(p.coords[vert], np.r_[0, np.cumsum(sizes)].astype(np.int64),
                    np.r_[0, np.cumsum(rc)].astype(np.int64))


def _concat(a: Polygons, b: Polygons) -> Polygons:
    return Polygons(np.concatenate([a.coords, b.coords]),
                    np.r_[a.ring_offsets, b.ring_offsets[1:] + a.ring_offsets[-1]],
                    np.r_[a.offsets, b.offsets[1:] + a.offsets[-1]])


class _Work:
    """The columns being repaired (copies), the rows kept, and the changes so far."""

    def __init__(self, ds: Dataset) -> None:
        a = ds.annotations
        self.ds = ds
        self.keep = np.ones(len(a), bool)
        self.id = a.id.copy()
        self.bbox = a.bbox.copy()
        self.area = a.area.copy()
        self.seg = a.segmentation.copy()
        self.kind = a.segmentation_kind.copy()
        self.changes: list[Change] = []
        img = ds.image_index
        self.img = img
        ok = img >= 0
        self.width = np.zeros(len(a), np.float64)
        self.height = np.zeros(len(a), np.float64)
        self.width[ok] = ds.images.width[img[ok]]
        self.height[ok] = ds.images.height[img[ok]]
        self.drop_images = np.zeros(len(ds.images), bool)
        self._cache: Polygons | None = None
        self._pos = np.full(len(a), -1, np.int64)
        self._dirty = np.zeros(len(a), bool)

    def polygons(self, rows: np.ndarray) -> tuple[np.ndarray, Polygons]:
        """The polygon rows among ``rows`` that parse, and their polygons: parsed once
        for the whole table, again only for rows a fix changed."""
        if self._cache is None:
            all_rows, self._cache = _parse_rows(
                self.seg, np.flatnonzero(self.kind == SegmentationKind.POLYGON))
            self._pos[all_rows] = np.arange(len(all_rows))
        rows = np.asarray(rows, np.int64)
        rows = rows[self.kind[rows] == SegmentationKind.POLYGON]
        dirty = self._dirty[rows]
        rows = rows[dirty | (self._pos[rows] >= 0)]
        dirty = self._dirty[rows]
        clean = rows[~dirty]
        fresh = rows[dirty]
        if not len(fresh):
            return rows, _subset(self._cache, self._pos[clean])
        both = _concat(_subset(self._cache, self._pos[clean]), parse_polygons(self.seg, fresh))
        where = np.empty(len(rows), np.int64)
        where[~dirty] = np.arange(len(clean))
        where[dirty] = len(clean) + np.arange(len(fresh))
        return rows, _subset(both, where)

    def record(self, i: int) -> dict[str, Any]:
        rec = self.ds.annotations.record(i)
        rec["id"] = int(self.id[i])
        rec.pop("bbox", None)
        rec.pop("area", None)
        rec.pop("segmentation", None)
        if self.seg[i] is not None:
            rec["segmentation"] = plain(self.seg[i])
        if not np.isnan(self.area[i]):
            rec["area"] = float(self.area[i])
        if not np.isnan(self.bbox[i, 0]):
            rec["bbox"] = self.bbox[i].tolist()
        return rec

    def drop(self, fix: str, rows: np.ndarray) -> None:
        for i in rows.tolist():
            self.changes.append(Change(fix, f"annotations[{i}]", self.record(i), None))
        self.keep[rows] = False

    def set_bbox(self, fix: str, i: int, new: np.ndarray) -> None:
        self.changes.append(Change(fix, f"annotations[{i}].bbox", _box(self.bbox[i]), _box(new)))
        self.bbox[i] = new

    def set_area(self, fix: str, i: int, new: float) -> None:
        self.changes.append(Change(fix, f"annotations[{i}].area", _num(self.area[i]), float(new)))
        self.area[i] = new

    def set_seg(self, fix: str, i: int, rings: list[list[float]]) -> None:
        self.changes.append(Change(fix, f"annotations[{i}].segmentation",
                                   plain(self.seg[i]), rings))
        self.seg[i] = rings
        self._dirty[i] = True


def _dangling(w: _Work) -> None:
    bad = (w.img < 0) | (w.ds.category_index < 0)
    w.drop("dangling", np.flatnonzero(bad & w.keep))


def _exact_duplicates(w: _Work) -> None:
    a = w.ds.annotations
    rows = np.flatnonzero(w.keep)
    if len(rows) < 2:
        return
    # candidates: same image, category and box (NaN boxes compared by their bits)
    box = w.bbox[rows]
    cols = [box[:, 3].view(np.int64), box[:, 2].view(np.int64), box[:, 1].view(np.int64),
            box[:, 0].view(np.int64), a.category_id[rows], a.image_id[rows]]
    order = np.lexsort(cols)
    same = np.ones(len(rows) - 1, bool)
    for c in cols:
        s = c[order]
        same &= s[1:] == s[:-1]
    if not same.any():
        return
    seen: dict[bytes, int] = {}
    grouped = np.zeros(len(rows), bool)
    grouped[1:] |= same
    grouped[:-1] |= same
    drop: list[int] = []
    for i in np.sort(rows[order[grouped]]).tolist():
        rec = w.record(i)
        rec.pop("id")
        key = msgspec.json.encode(rec, order="sorted")
        if key in seen:
            drop.append(i)
        else:
            seen[key] = i
    w.drop("exact-duplicates", np.array(drop, np.int64))


def _duplicate_ids(w: _Work) -> None:
    rows = np.flatnonzero(w.keep)
    ids = w.id[rows]
    order = np.argsort(ids, kind="stable")
    s = ids[order]
    later = order[np.flatnonzero(s[1:] == s[:-1]) + 1]
    if not len(later):
        return
    nxt = int(w.id.max()) + 1
    for i in np.sort(rows[later]).tolist():
        w.changes.append(Change("duplicate-ids", f"annotations[{i}].id", int(w.id[i]), nxt))
        w.id[i] = nxt
        nxt += 1


def _polygon_rows(w: _Work) -> np.ndarray:
    return np.flatnonzero(w.keep & (w.kind == SegmentationKind.POLYGON))


def _parse(seg: np.ndarray, rows: np.ndarray) -> Polygons | None:
    try:
        return parse_polygons(seg, rows)
    except (ValueError, TypeError, msgspec.DecodeError, msgspec.ValidationError):
        return None  # a ring with an odd length or a non-number: left to degenerate


def _parse_rows(seg: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, Polygons]:
    """The rows whose polygons parse, and their polygons: all at once, else run by run
    and one by one in the runs that fail."""
    whole = _parse(seg, rows)
    if whole is not None:
        return rows, whole
    kept: list[np.ndarray] = []
    parts: list[Polygons] = []
    for s in range(0, len(rows), _RUN):
        run = rows[s : s + _RUN]
        got = _parse(seg, run)
        if got is None:
            run = np.array([i for i in run.tolist() if _parse(seg, np.array([i])) is not None],
                           np.int64)
            got = parse_polygons(seg, run)
        kept.append(run)
        parts.append(got)
    out = parts[0]
    for p in parts[1:]:
        out = _concat(out, p)
    return np.concatenate(kept), out


def _clip(w: _Work) -> None:
    # an image without a positive size is the invalid fix's (it is dropped there)
    rows = np.flatnonzero(w.keep & (w.img >= 0) & (w.width > 0) & (w.height > 0))
    win = np.stack([np.zeros(len(rows)), np.zeros(len(rows)), w.width[rows], w.height[rows]],
                   axis=1)
    old = w.bbox[rows]
    new = clip_boxes(old, win)
    has_box = ~np.isnan(old).any(axis=1)
    moved = has_box & (new != old).any(axis=1)
    recut: list[int] = []
    for k in np.flatnonzero(moved).tolist():
        w.set_bbox("clip", int(rows[k]), new[k])
        if w.seg[rows[k]] is None or w.kind[rows[k]] == SegmentationKind.NONE:
            recut.append(int(rows[k]))
    poly, polys = w.polygons(_polygon_rows(w))
    sized = (w.width[poly] > 0) & (w.height[poly] > 0)
    poly, polys = poly[sized], _subset(polys, np.flatnonzero(sized))
    if len(poly):
        b = polygon_bboxes(polys)
        has = ~np.isnan(b[:, 0])
        out = has & ((b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 0] + b[:, 2] > w.width[poly])
                     | (b[:, 1] + b[:, 3] > w.height[poly]))
        idx = np.flatnonzero(out)
        if len(idx):
            pw = np.stack([np.zeros(len(idx)), np.zeros(len(idx)), w.width[poly[idx]],
                           w.height[poly[idx]]], axis=1)
            cut, _ = clip_polygons(polys, idx, pw)
            for j, k in enumerate(idx.tolist()):
                i = int(poly[k])
                w.set_seg("clip", i, cut.to_coco(j))
                recut.append(i)
    # areas of what was cut: of the segmentation where there is one, else of the box
    cut_rows = np.array(sorted(set(recut)), np.int64)
    cut_rows = cut_rows[~np.isnan(w.area[cut_rows])]
    is_poly = w.kind[cut_rows] == SegmentationKind.POLYGON
    new = w.bbox[cut_rows, 2] * w.bbox[cut_rows, 3]
    new[is_poly] = _areas(w, cut_rows[is_poly])
    for i, area in zip(cut_rows.tolist(), new.tolist(), strict=True):
        if not np.isnan(area) and area != w.area[i]:
            w.set_area("clip", i, float(area))


def _ring_ok(ring: Any) -> bool:
    if not isinstance(ring, list) or len(ring) < 6 or len(ring) % 2:
        return False
    try:
        xy = np.asarray(ring, np.float64).reshape(-1, 2)
    except (TypeError, ValueError):
        return False
    if not np.isfinite(xy).all():
        return False
    return bool(ring_areas(xy, np.array([0, len(xy)]))[0] > 0)  # as _degenerate measures


def _degenerate(w: _Work) -> None:
    rows = _polygon_rows(w)
    # rings measured at once; only the annotations with a bad ring are looked at one by one
    good, polys = w.polygons(rows)
    sizes = np.diff(polys.ring_offsets)
    finite = np.ones(len(sizes), bool)
    if len(polys.coords):
        bad_xy = ~np.isfinite(polys.coords).all(axis=1)
        finite = np.bincount(np.repeat(np.arange(len(sizes)), sizes), weights=bad_xy,
                             minlength=len(sizes)) == 0
    ring_bad = (sizes < 3) | ~finite | ~(ring_areas(polys.coords, polys.ring_offsets) > 0)
    ann_bad = np.bincount(np.repeat(np.arange(len(good)), polys.ring_count), weights=ring_bad,
                          minlength=len(good)) > 0
    mask = np.zeros(len(w.keep), bool)
    mask[rows] = True
    mask[good] = False  # rows that do not parse stay
    mask[good[ann_bad | (polys.ring_count == 0)]] = True
    look = np.flatnonzero(mask)
    empty: list[int] = []
    for i in look.tolist():
        rings = plain(w.seg[i])
        kept = [r for r in rings if _ring_ok(r)]
        if len(kept) != len(rings):
            w.set_seg("degenerate", i, kept)
        if not kept:
            empty.append(i)
    has_seg = np.zeros(len(w.keep), bool)
    has_seg[np.isin(w.kind, (SegmentationKind.RLE_COMPRESSED,
                             SegmentationKind.RLE_UNCOMPRESSED))] = True
    poly = w.kind == SegmentationKind.POLYGON
    has_seg[poly] = True
    has_seg[np.array(empty, np.int64)] = False
    with np.errstate(invalid="ignore"):
        good_box = (w.bbox[:, 2] > 0) & (w.bbox[:, 3] > 0)
    w.drop("degenerate", np.flatnonzero(w.keep & ~has_seg & ~good_box))


def _shoelace(polys: Polygons) -> np.ndarray:
    """Per annotation, the sum of its rings' areas (:func:`~cocokit.geometry.shoelace_areas`,
    the area validate compares a polygon annotation's ``area`` with), 0 where no ring has
    3 points."""
    return np.nan_to_num(shoelace_areas(polys), nan=0.0)


def _areas(w: _Work, rows: np.ndarray) -> np.ndarray:
    """Area of each row's segmentation as validate measures it: polygons by the shoelace
    formula (summed over rings), RLE by its mask (pycocotools)."""
    out = np.full(len(rows), np.nan)
    poly = w.kind[rows] == SegmentationKind.POLYGON
    if poly.any():
        got, polys = w.polygons(rows[poly])
        found = np.zeros(len(w.keep))
        found[got] = _shoelace(polys)
        out[poly] = found[rows[poly]]
    rle = ~poly
    if rle.any():
        out[rle] = segmentation_areas(w.seg[rows[rle]], w.height[rows[rle]], w.width[rows[rle]])
    return out


def _recompute(w: _Work) -> None:
    n = len(w.keep)
    rows = np.flatnonzero(w.keep & (w.img >= 0) & (w.kind > 0))
    box = np.full((n, 4), np.nan)
    area = np.full(n, np.nan)
    poly, polys = w.polygons(rows)
    has = polys.ring_count > 0
    box[poly[has]] = polygon_bboxes(polys)[has]
    area[poly[has]] = _shoelace(polys)[has]
    for i in rows[w.kind[rows] != SegmentationKind.POLYGON].tolist():  # RLE: few
        try:
            box[i] = segmentation_bboxes(w.seg[i : i + 1], w.height[i : i + 1],
                                         w.width[i : i + 1])[0]
            area[i] = segmentation_areas(w.seg[i : i + 1], w.height[i : i + 1],
                                         w.width[i : i + 1])[0]
        except Exception:  # an RLE pycocotools refuses: left to the invalid fix
            box[i], area[i] = np.nan, np.nan
    with np.errstate(invalid="ignore"):
        new_box = ~np.isnan(box).any(axis=1) & (
            np.isnan(w.bbox).any(axis=1) | (np.abs(w.bbox - box) > BOX_TOLERANCE).any(axis=1))
        diff = np.abs(w.area - area)
        new_area = ~np.isnan(area) & (
            np.isnan(w.area) | ((diff > AREA_REL_TOLERANCE * area) & (diff > AREA_ABS_TOLERANCE)))
    for i in np.flatnonzero(new_box).tolist():
        w.set_bbox("recompute", i, box[i])
    for i in np.flatnonzero(new_area).tolist():
        w.set_area("recompute", i, float(area[i]))


def _build(w: _Work) -> Dataset:
    a = w.ds.annotations
    anns = Annotations(**{**a.columns(), "id": w.id, "bbox": w.bbox, "area": w.area,
                          "segmentation": w.seg})
    images = w.ds.images
    if w.drop_images.any():
        images = images.take(~w.drop_images)
    return w.ds.replace(images=images, annotations=anns.take(w.keep))


def _invalid(w: _Work) -> None:
    ds = _build(w)
    kept_rows = np.flatnonzero(w.keep)
    img_rows = np.flatnonzero(~w.drop_images)
    # repeated annotation ids are the duplicate-ids fix's business, and repeated image
    # ids the write's (it refuses them under keep, naming --image-ids auto); here only
    # the ones that make references ambiguous refuse
    screened = screen_export(ds, invalid="skip", image_ids="auto", annotation_ids="auto")
    # what the writer would leave out is what is not in its rows (not its messages' text)
    bad_image = np.ones(len(img_rows), bool)
    bad_image[screened.image_rows] = False
    for r in img_rows[bad_image].tolist():
        w.changes.append(Change("invalid", f"images[{r}]", w.ds.images.record(r), None))
        w.drop_images[r] = True
        w.drop("invalid", np.flatnonzero(w.keep & (w.img == r)))
    bad_ann = np.ones(len(kept_rows), bool)
    bad_ann[screened.ann_rows] = False
    rows = kept_rows[bad_ann]
    w.drop("invalid", rows[w.keep[rows]])


_APPLY = {
    "dangling": _dangling,
    "exact-duplicates": _exact_duplicates,
    "duplicate-ids": _duplicate_ids,
    "clip": _clip,
    "degenerate": _degenerate,
    "recompute": _recompute,
    "invalid": _invalid,
}


def repair_dataset(ds: Dataset, fixes: Sequence[str] | None = None) -> Repair:
    """Apply ``fixes`` (names of :data:`FIXES`; default :data:`DEFAULT_FIXES`) in the
    order of :data:`FIXES`; the input is not changed. Returns a :class:`Repair`."""
    chosen = DEFAULT_FIXES if fixes is None else tuple(fixes)
    unknown = [f for f in chosen if f not in FIXES]
    if unknown:
        raise OptionError("fix", unknown[0], "one of " + ", ".join(FIXES))
    ordered = tuple(f for f in FIXES if f in chosen)
    w = _Work(ds)
    for name in ordered:
        _APPLY[name](w)
    return Repair(_build(w), ordered, w.changes)
