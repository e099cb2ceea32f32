"""Merge duplicate detections: NMS, NMM and greedy NMM with IoU or IoS matching.

SAHI's postprocess (``sahi.postprocess.combine``), on numpy columns and vectorized
over every group of boxes at once (a group is one image, or one image and category):

Ranking
    Boxes are ranked by score, highest first; equal scores by ``x1, y1, x2, y2``
    ascending, then by input order (SAHI's ``lexsort`` order).

Matching
    Two boxes of a group *match* when ``IoU >= threshold`` (intersection over union)
    or ``IoS >= threshold`` (intersection over the smaller box's area); a zero
    denominator gives 0. Boxes are ``xyxy``.

``nms``
    Walk the ranking; a box is kept unless a kept box ranked above it matches it.
    The kept boxes come out as they went in.
``greedy-nmm`` (SAHI's ``GreedyNMMPostprocess``)
    The same kept boxes as ``nms``; each dropped box is merged into the highest-ranked
    kept box that matches it.
``nmm`` (SAHI's ``NMMPostprocess``, transitive)
    A box is merged into the group of the highest-ranked box above it that matches it
    (even a box that is itself merged); a box no box above matches is kept.
``none``
    Nothing is merged.

Merging (SAHI's ``merge_object_prediction_pair``, pair by pair)
    A kept box takes its merge candidates in order (greedy: by rank; nmm: in the
    order they were claimed) and re-checks each against the box merged so far: a
    candidate that still matches is merged in (union box, highest score, the category
    of the higher score, the later one's on a tie); one that no longer matches is
    dropped, as in SAHI. Which candidates were merged is returned, so masks can be
    merged too.

The pairs that match are found by a sweep: boxes sorted by group and ``x1``; each box
is paired only with the boxes that start before it ends, in blocks of a bounded
number of pairs; the keep/drop decisions are a fixed point over the pair list, so no
Python loop runs per box or per pair. Large inputs are merged in chunks of whole
groups (:data:`CHUNK` rows), which keeps the arrays in cache and changes nothing.

Differences from SAHI: equal scores are ranked by the boxes under ``nmm`` too (SAHI's
``nmm`` then merges only identical boxes); masks are merged by the caller
(:mod:`cocokit.unslice` unites them as RLE).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .dataset import ranges
from .errors import OptionError

__all__ = [
    "MATCH_METRICS",
    "MERGES",
    "MatchMetric",
    "Merge",
    "Merged",
    "check_options",
    "dense_ids",
    "match_pairs",
    "merge_detections",
    "overlap",
    "rank_order",
    "stable_int_order",
]

Merge = Literal["nms", "nmm", "greedy-nmm", "none"]
MatchMetric = Literal["iou", "ios"]
MERGES: tuple[Merge, ...] = ("nms", "nmm", "greedy-nmm", "none")
MATCH_METRICS: tuple[MatchMetric, ...] = ("iou", "ios")

#: Candidate pairs examined at once by :func:`match_pairs` (bounds its memory).
PAIR_BLOCK = 1 << 21
#: Rows :func:`merge_detections` merges at once (whole groups; smaller arrays stay in cache).
CHUNK = 1 << 15

_UNKNOWN, _KEEP, _DROP = 0, 1, 2


def check_options(merge: str, match_metric: str, match_threshold: float) -> None:
    """OptionError for a merge, metric or threshold SAHI would not take."""
    if merge not in MERGES:
        raise OptionError("merge", merge, "one of " + ", ".join(MERGES))
    if match_metric not in MATCH_METRICS:
        raise OptionError("match_metric", match_metric, "iou or ios")
    try:
        ok = bool(np.isfinite(float(match_threshold)))
    except (TypeError, ValueError):
        ok = False
    if not ok or not 0.0 <= float(match_threshold) <= 1.0:
        raise OptionError("match_threshold", match_threshold, "a number from 0 to 1")


def overlap(a: np.ndarray, b: np.ndarray, metric: MatchMetric) -> np.ndarray:
    """IoU or IoS of ``a[i]`` and ``b[i]`` (both (n, 4) ``xyxy``); 0 where undefined."""
    iw = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if metric == "iou":
        denom = area_a + area_b - inter
    else:
        denom = np.minimum(area_a, area_b)
    out = np.zeros(len(inter))
    np.divide(inter, denom, out=out, where=denom > 0)
    return out


def stable_int_order(key: np.ndarray, order: np.ndarray | None = None) -> np.ndarray:
    """``order`` (default: the rows) re-sorted stably by a non-negative integer ``key``:
    least significant 16 bits first, numpy's radix sort on each (linear time)."""
    key = np.asarray(key).astype(np.uint64, copy=False)
    out = np.arange(len(key)) if order is None else order
    top = int(key.max()) if len(key) else 0
    shift = 0
    while True:
        digit = ((key[out] >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.uint16)
        out = out[np.argsort(digit, kind="stable")]
        shift += 16
        if top >> shift == 0:
            return out


def rank_order(xyxy: np.ndarray, score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Rows by group, then score descending, then ``x1, y1, x2, y2`` ascending, then
    input order. ``group`` holds non-negative integers. Sorted by score, then stably by
    group; only runs of equal scores are sorted again by the box."""
    order = stable_int_order(group, np.argsort(-score))
    sg, ss = group[order], score[order]
    tie = (sg[1:] == sg[:-1]) & (ss[1:] == ss[:-1])
    if not tie.any():
        return order
    in_run = np.zeros(len(order), bool)
    in_run[1:] |= tie
    in_run[:-1] |= tie
    at = np.flatnonzero(in_run)
    run = np.cumsum(np.concatenate([[True], ~tie]))[at]  # one id per run of ties
    rows = order[at]
    b = xyxy[rows]
    order[at] = rows[np.lexsort((rows, b[:, 3], b[:, 2], b[:, 1], b[:, 0], run))]
    return order


def match_pairs(
    xyxy: np.ndarray, group: np.ndarray, metric: MatchMetric, threshold: float,
    *, block: int = PAIR_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair ``(i, j)`` of rows of one group whose boxes match
    (``overlap >= threshold``, ``threshold > 0``); rows with a non-finite box match none.
    ``group`` holds non-negative integers.

    A sweep along x: rows sorted by (group, whole pixel of x1); row k is paired with the
    rows after it that start no later than the pixel where it ends (a superset of the
    pairs that overlap along x, then checked exactly), ``block`` candidates at a time.
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    finite = np.flatnonzero(np.isfinite(xyxy).all(axis=1))
    empty = np.zeros(0, np.int64)
    if len(finite) < 2:
        return empty, empty
    box = xyxy[finite]
    lo = float(box[:, [0, 2]].min())
    fx1 = np.floor(box[:, 0] - lo).astype(np.int64)
    fx2 = np.floor(np.maximum(box[:, 2], box[:, 0]) - lo).astype(np.int64)
    width = int(fx2.max()) + 1
    grp = np.asarray(group, np.int64)[finite]
    by_x = stable_int_order(grp * width + fx1)
    key = (grp * width + fx1)[by_x]
    end = np.searchsorted(key, (grp * width + fx2)[by_x], side="right")
    x1, y1, x2, y2 = (np.ascontiguousarray(box[by_x, c]) for c in range(4))
    area = (x2 - x1) * (y2 - y1)
    n = len(box)
    count = np.maximum(end - np.arange(n) - 1, 0)
    total = int(count.sum())
    if total == 0:
        return empty, empty
    bounds = np.searchsorted(np.cumsum(count), np.arange(block, total, block), side="left")
    starts = np.concatenate([[0], np.unique(bounds + 1), [n]])
    out_i: list[np.ndarray] = []
    out_j: list[np.ndarray] = []
    for k0, k1 in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
        if k1 <= k0:
            continue
        c = count[k0:k1]
        if not c.any():
            continue
        i = np.repeat(np.arange(k0, k1), c)
        j = i + ranges(c) + 1
        ih = np.minimum(y2[i], y2[j]) - np.maximum(y1[i], y1[j])
        hit = ih > 0
        i, j, ih = i[hit], j[hit], ih[hit]
        iw = np.minimum(x2[i], x2[j]) - np.maximum(x1[i], x1[j])
        hit = iw > 0
        i, j = i[hit], j[hit]
        inter = iw[hit] * ih[hit]
        a, b = area[i], area[j]
        denom = a + b - inter if metric == "iou" else np.minimum(a, b)
        ratio = np.zeros(len(inter))
        np.divide(inter, denom, out=ratio, where=denom > 0)
        hit = ratio >= threshold
        out_i.append(finite[by_x[i[hit]]])
        out_j.append(finite[by_x[j[hit]]])
    if not out_i:
        return empty, empty
    return np.concatenate(out_i), np.concatenate(out_j)


def _greedy_status(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Keep/drop of each ranked position: kept unless a kept position above matches it.

    A fixed point over the edges ``src -> dst`` (``src`` ranked above ``dst``): each
    round drops what a kept box matches and keeps what only dropped boxes match.
    """
    status = np.full(n, _KEEP, np.int8)
    status[dst] = _UNKNOWN
    while len(dst):
        s = status[src]
        status[dst[s == _KEEP]] = _DROP
        live = (status[dst] == _UNKNOWN) & (status[src] != _DROP)
        src, dst = src[live], dst[live]
        waiting = np.zeros(n, bool)
        waiting[dst] = True
        pending = np.flatnonzero(status == _UNKNOWN)
        status[pending[~waiting[pending]]] = _KEEP
    return status


def _first_per(target: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct ``target``, the smallest ``value`` paired with it."""
    o = np.lexsort((value, target))
    t, v = target[o], value[o]
    first = np.concatenate([[True], t[1:] != t[:-1]]) if len(t) else np.zeros(0, bool)
    return t[first], v[first]


@dataclass(frozen=True)
class Merged:
    """What :func:`merge_detections` made of the rows it was given.

    ``keep`` holds the kept rows (one per output detection), sorted by image id, then
    (unless class-agnostic) category id, then rank;
    ``bbox`` (``xyxy``), ``score`` and ``category_id`` are the merged values of each.
    ``member`` lists the rows merged into a kept row, ``member_of`` the index (into
    ``keep``) of the kept row each was merged into; the rows of neither were dropped.
    """

    keep: np.ndarray
    bbox: np.ndarray
    score: np.ndarray
    category_id: np.ndarray
    member: np.ndarray
    member_of: np.ndarray


def dense_ids(ids: np.ndarray) -> tuple[np.ndarray, int]:
    """Each id's rank among the distinct ids (0..k-1, in id order), and k; by a lookup
    table when the ids span a small range (no sort)."""
    ids = np.asarray(ids, np.int64)
    if not len(ids):
        return np.zeros(0, np.int64), 0
    low, high = int(ids.min()), int(ids.max())
    if high - low <= 4 * len(ids) + 1024:
        seen = np.zeros(high - low + 1, bool)
        seen[ids - low] = True
        rank = np.cumsum(seen) - 1
        return rank[ids - low], int(rank[-1]) + 1
    uniq, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.int64).reshape(-1), len(uniq)


def _groups(image_id: np.ndarray, category_id: np.ndarray, class_agnostic: bool) -> np.ndarray:
    gi, _ = dense_ids(image_id)
    if class_agnostic:
        return gi
    ci, k = dense_ids(category_id)
    return gi * max(1, k) + ci


def merge_detections(
    xyxy: np.ndarray,
    score: np.ndarray,
    category_id: np.ndarray,
    image_id: np.ndarray,
    *,
    merge: Merge = "greedy-nmm",
    match_metric: MatchMetric = "ios",
    match_threshold: float = 0.5,
    class_agnostic: bool = False,
) -> Merged:
    """Merge the duplicates among detections (see the module docstring).

    Boxes are ``xyxy`` (n, 4); detections of different images never merge, nor (unless
    ``class_agnostic``) those of different categories. SAHI's sliced-prediction
    defaults: greedy NMM, IoS, 0.5, per category.
    """
    check_options(merge, match_metric, match_threshold)
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    score = np.asarray(score, np.float64).reshape(-1)
    category_id = np.asarray(category_id, np.int64).reshape(-1)
    image_id = np.asarray(image_id, np.int64).reshape(-1)
    group = _groups(image_id, category_id, class_agnostic)
    threshold = float(match_threshold)
    if len(xyxy) <= CHUNK:
        return _merge(xyxy, score, category_id, group, merge, match_metric, threshold)
    # whole groups at a time, about CHUNK rows each: the same result, in cache
    by_group = stable_int_order(group)
    sizes = np.bincount(group)
    ends = np.cumsum(sizes)
    cuts = np.unique(np.searchsorted(ends, np.arange(CHUNK, len(xyxy), CHUNK), side="left"))
    bounds = np.concatenate([[0], ends[cuts[cuts < len(ends) - 1]], [len(xyxy)]])
    parts: list[Merged] = []
    rows_of: list[np.ndarray] = []
    for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if b <= a:
            continue
        rows = by_group[a:b]
        parts.append(_merge(xyxy[rows], score[rows], category_id[rows], group[rows], merge,
                            match_metric, threshold))
        rows_of.append(rows)
    first = np.cumsum([0] + [len(p.keep) for p in parts[:-1]])
    return Merged(
        np.concatenate([r[p.keep] for r, p in zip(rows_of, parts, strict=True)]),
        np.concatenate([p.bbox for p in parts]),
        np.concatenate([p.score for p in parts]),
        np.concatenate([p.category_id for p in parts]),
        np.concatenate([r[p.member] for r, p in zip(rows_of, parts, strict=True)]),
        np.concatenate([p.member_of + f for p, f in zip(parts, first.tolist(), strict=True)]),
    )


def _merge(xyxy: np.ndarray, score: np.ndarray, category_id: np.ndarray, group: np.ndarray,
           merge: Merge, match_metric: MatchMetric, threshold: float) -> Merged:
    """:func:`merge_detections` of rows whose ``group`` ids are given."""
    n = len(xyxy)
    order = rank_order(xyxy, score, group)
    empty = np.zeros(0, np.int64)
    if merge == "none" or n == 0:
        return Merged(order, xyxy[order], score[order], category_id[order], empty, empty)

    pos = np.empty(n, np.int64)
    pos[order] = np.arange(n)
    if threshold <= 0:  # every pair matches: the first of each group matches the rest
        sg = group[order]
        head = np.concatenate([[0], np.flatnonzero(sg[1:] != sg[:-1]) + 1])
        lead = np.repeat(head, np.diff(np.concatenate([head, [n]])))
        rest = lead != np.arange(n)
        src, dst = lead[rest], np.arange(n)[rest]
    else:
        i, j = match_pairs(xyxy, group, match_metric, threshold)
        a, b = pos[i], pos[j]
        src, dst = np.minimum(a, b), np.maximum(a, b)

    if merge in ("nms", "greedy-nmm"):
        status = _greedy_status(n, src, dst)
        kept_pos = np.flatnonzero(status == _KEEP)
        if merge == "nms":
            keep = order[kept_pos]
            return Merged(keep, xyxy[keep], score[keep], category_id[keep], empty, empty)
        by_kept = status[src] == _KEEP
        member_pos, owner_pos = _first_per(dst[by_kept], src[by_kept])
        # candidates of a kept box in rank order
        o = np.lexsort((member_pos, owner_pos))
        member_pos, owner_pos = member_pos[o], owner_pos[o]
    else:  # nmm: each box hangs on the highest-ranked box above it that matches it
        child, parent = _first_per(dst, src)
        up = np.arange(n)
        up[child] = parent
        root = up.copy()
        while True:
            nxt = root[root]
            if np.array_equal(nxt, root):
                break
            root = nxt
        kept_pos = np.flatnonzero(up == np.arange(n))
        # claimed in the order of the claiming box's rank, then by input row
        o = np.lexsort((order[child], parent, root[child]))
        member_pos, owner_pos = child[o], root[child][o]

    keep = order[kept_pos]
    slot_of = np.full(n, -1, np.int64)
    slot_of[kept_pos] = np.arange(len(kept_pos))
    members = order[member_pos]
    owner = slot_of[owner_pos]
    box, best, cat, accepted = _apply(xyxy, score, category_id, keep, members, owner,
                                      match_metric, threshold)
    return Merged(keep, box, best, cat, members[accepted], owner[accepted])


def _apply(
    xyxy: np.ndarray, score: np.ndarray, category_id: np.ndarray, keep: np.ndarray,
    members: np.ndarray, owner: np.ndarray, metric: MatchMetric, threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """SAHI's pair-by-pair merge, one candidate per kept box per round.

    ``members`` are grouped by ``owner`` (index into ``keep``) in merge order.
    """
    x1, y1, x2, y2 = (xyxy[keep, c].copy() for c in range(4))
    best = score[keep].copy()
    cat = category_id[keep].copy()
    accepted = np.zeros(len(members), bool)
    if len(members):
        counts = np.bincount(owner, minlength=len(keep))
        slot = ranges(counts[counts > 0])  # members are grouped by owner, owners ascending
        by_slot = stable_int_order(slot)
        at = 0
        for size in np.bincount(slot).tolist():
            sel = by_slot[at: at + size]
            at += size
            k, rows = owner[sel], members[sel]
            mb = xyxy[rows]
            mx1, my1, mx2, my2 = mb[:, 0], mb[:, 1], mb[:, 2], mb[:, 3]
            # the growing box of each owner against its candidate member
            grown = np.stack([x1[k], y1[k], x2[k], y2[k]], axis=1)
            hit = overlap(grown, mb, metric) >= threshold
            k, rows, sel = k[hit], rows[hit], sel[hit]
            x1[k] = np.minimum(x1[k], mx1[hit])
            y1[k] = np.minimum(y1[k], my1[hit])
            x2[k] = np.maximum(x2[k], mx2[hit])
            y2[k] = np.maximum(y2[k], my2[hit])
            s = score[rows]
            cat[k] = np.where(best[k] > s, cat[k], category_id[rows])
            best[k] = np.maximum(best[k], s)
            accepted[sel] = True
    return np.stack([x1, y1, x2, y2], axis=1), best, cat, accepted
