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
Python loop runs per box or per pair.
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
    "match_pairs",
    "merge_detections",
    "overlap",
    "rank_order",
]

Merge = Literal["nms", "nmm", "greedy-nmm", "none"]
MatchMetric = Literal["iou", "ios"]
MERGES: tuple[Merge, ...] = ("nms", "nmm", "greedy-nmm", "none")
MATCH_METRICS: tuple[MatchMetric, ...] = ("iou", "ios")

#: Candidate pairs examined at once by :func:`match_pairs` (bounds its memory).
PAIR_BLOCK = 1 << 21

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


def rank_order(xyxy: np.ndarray, score: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Rows by group, then score descending, then ``x1, y1, x2, y2`` ascending."""
    return np.lexsort((xyxy[:, 3], xyxy[:, 2], xyxy[:, 1], xyxy[:, 0], -score, group))


def match_pairs(
    xyxy: np.ndarray, group: np.ndarray, metric: MatchMetric, threshold: float,
    *, block: int = PAIR_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """Every unordered pair ``(i, j)`` of rows of one group whose boxes match
    (``overlap >= threshold``, ``threshold > 0``); rows with a non-finite box match none.

    A sweep along x: rows sorted by (group, x1); row k is paired with the rows after it
    that start no later than it ends, ``block`` candidate pairs at a time.
    """
    xyxy = np.asarray(xyxy, np.float64).reshape(-1, 4)
    finite = np.flatnonzero(np.isfinite(xyxy).all(axis=1))
    empty = np.zeros(0, np.int64)
    if len(finite) < 2:
        return empty, empty
    box = xyxy[finite]
    grp = np.asarray(group)[finite]
    by_x = np.lexsort((box[:, 0], grp))
    sbox = box[by_x]
    sg = grp[by_x]
    g = np.concatenate([[0], np.cumsum(sg[1:] != sg[:-1])]).astype(np.float64)
    lo = float(min(sbox[:, 0].min(), sbox[:, 2].min()))
    span = float(max(sbox[:, 0].max(), sbox[:, 2].max())) - lo + 1.0
    key = g * span + (sbox[:, 0] - lo)
    # rounding is monotone, so side="right" keeps every j with x1_j <= x2_k
    end = np.searchsorted(key, g * span + (np.maximum(sbox[:, 2], sbox[:, 0]) - lo),
                          side="right")
    n = len(sbox)
    count = np.maximum(end - np.arange(n) - 1, 0)
    bounds = np.searchsorted(np.cumsum(count), np.arange(block, int(count.sum()), block),
                             side="left")
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
        a, b = sbox[i], sbox[j]
        y = (np.minimum(a[:, 3], b[:, 3]) > np.maximum(a[:, 1], b[:, 1]))
        i, j = i[y], j[y]
        hit = overlap(sbox[i], sbox[j], metric) >= threshold
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

    ``keep`` holds the kept rows (one per output detection), sorted by group and rank;
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


def _groups(image_id: np.ndarray, category_id: np.ndarray, class_agnostic: bool) -> np.ndarray:
    _, gi = np.unique(image_id, return_inverse=True)
    if class_agnostic:
        return gi.astype(np.int64)
    cats, ci = np.unique(category_id, return_inverse=True)
    return gi.astype(np.int64) * max(1, len(cats)) + ci


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
    n = len(xyxy)
    group = _groups(image_id, category_id, class_agnostic)
    order = rank_order(xyxy, score, group)
    threshold = float(match_threshold)
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
    box = xyxy[keep].copy()
    best = score[keep].copy()
    cat = category_id[keep].copy()
    accepted = np.zeros(len(members), bool)
    if not len(members):
        return box, best, cat, accepted
    counts = np.bincount(owner, minlength=len(keep))
    slot = ranges(counts[counts > 0])  # members are grouped by owner, owners ascending
    by_slot = np.argsort(slot, kind="stable")
    per_slot = np.bincount(slot)
    at = 0
    for size in per_slot.tolist():
        sel = by_slot[at: at + size]
        at += size
        k = owner[sel]
        rows = members[sel]
        hit = overlap(box[k], xyxy[rows], metric) >= threshold
        k, rows, sel = k[hit], rows[hit], sel[hit]
        b = xyxy[rows]
        box[k, :2] = np.minimum(box[k, :2], b[:, :2])
        box[k, 2:] = np.maximum(box[k, 2:], b[:, 2:])
        s = score[rows]
        cat[k] = np.where(best[k] > s, cat[k], category_id[rows])
        best[k] = np.maximum(best[k], s)
        accepted[sel] = True
    return box, best, cat, accepted
