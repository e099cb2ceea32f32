"""Split a dataset into named parts: random or iteratively stratified, optionally grouped.

Every image lands in exactly one split. The unit of assignment is the *example*: an
image, or with ``group_by`` / ``group_pattern`` a group of images that share a key
(a video id, a source, a regex match on the file name), which then stay together.

Stratified splitting works on the example x category matrices of annotation counts and
of image counts, in two stages:

1. **Iterative stratification** (Sechidis, Tsoumakas and Vlahavas, "On the
   stratification of multi-label data", ECML PKDD 2011), at image level: take the
   category with the fewest examples still unassigned; hand each of its examples (in
   random order) to the split that most lacks images of that category (ties: the split
   that most lacks images, then at random); repeat. Examples without annotations go to
   the splits that most lack images.
2. **Refinement** by local search: move single examples (and, for up to
   :data:`SWAP_LIMIT` examples, swap pairs) between splits while that lowers the sum
   of squared deviations from the ideal counts (per split and category: annotations
   and images; per split: images). Categories still off by more than their tolerance
   (below) get a larger weight and the search runs again, a few times. The search
   stops after a fixed amount of work (:data:`_WORK_BUDGET` sparse entries visited),
   so results are deterministic for a seed and large datasets stay well under a
   second; on small datasets (TACO, coco-mini) it runs until no move helps.

Everything runs on sparse numpy arrays; the only Python loops are over examples in
stage 1 (a few operations each) and over accepted moves in stage 2.

**The measure.** For split ``j`` with ratio ``r_j`` and category ``l`` with ``N_l``
annotations, the ideal count is ``r_j * N_l``; the split holds ``n_jl``. Since an image
cannot be divided, the smallest step by which a count can be adjusted is the number
of annotations of ``l`` on one image (on one group with grouping); ``g_l``, the largest
such number, is the category's *tolerance*. A split is "within one rounding" for ``l``
when ``|n_jl - r_j * N_l| <= g_l``; where no image holds two annotations of ``l``
this is the usual "within one annotation". :meth:`SplitReport.within_tolerance` gives
it for every split and category.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import msgspec
import numpy as np

from ..dataset import Dataset, derived
from ..errors import OptionError
from ._base import describe, gc_paused

__all__ = ["SWAP_LIMIT", "SplitReport", "SplitResult", "split"]

#: stratified splitting also tries swapping pairs of examples when there are at most
#: this many examples (the pair search holds a dense examples x examples matrix)
SWAP_LIMIT = 2000
_WORK_BUDGET = 20_000_000  # refinement: upper bound on sparse entries visited
_REWEIGHT_ROUNDS = 8


@dataclasses.dataclass(frozen=True, eq=False)
class SplitReport:
    """Per-split counts of a split, overall and per category.

    ``category_annotations`` and ``category_images`` are (splits x categories) arrays
    in the order of ``category_ids``; ``image_split`` gives the split (index into
    ``names``) of each image row of the input. ``tolerance`` is the per-category
    rounding step described in :mod:`cocokit.transforms.split`.
    """

    names: tuple[str, ...]
    ratios: tuple[float, ...]
    method: Literal["random", "stratified"]
    seed: int | None
    group_key: str | None
    groups: int
    images: tuple[int, ...]
    annotations: tuple[int, ...]
    category_ids: np.ndarray
    category_names: tuple[str, ...]
    category_annotations: np.ndarray
    category_images: np.ndarray
    tolerance: np.ndarray
    image_split: np.ndarray
    notes: tuple[str, ...] = ()

    def expected_annotations(self) -> np.ndarray:
        """Ideal annotation count of each split and category: ``r_j * N_l``."""
        r = np.asarray(self.ratios)
        return r[:, None] * self.category_annotations.sum(axis=0)[None, :]

    def deviation(self) -> np.ndarray:
        """``n_jl - r_j * N_l`` for each split and category."""
        return self.category_annotations - self.expected_annotations()

    def within_tolerance(self) -> np.ndarray:
        """Boolean (splits x categories): ``|n_jl - r_j * N_l| <= g_l``."""
        return np.abs(self.deviation()) <= self.tolerance[None, :] + 1e-9

    def lines(self) -> list[str]:
        """The report as short lines of text."""
        total = sum(self.images)
        used = self.category_annotations.sum(axis=0) > 0
        ok = self.within_tolerance()
        out = [f"split ({self.method}{', grouped by ' + self.group_key if self.group_key else ''}"
               f", seed {self.seed}): {total} images into {len(self.names)} splits"]
        for j, name in enumerate(self.names):
            present = int(np.count_nonzero(self.category_annotations[j] > 0))
            out.append(
                f"  {name}: ratio {self.ratios[j]:.3f}, {self.images[j]} images "
                f"(ideal {self.ratios[j] * total:.1f}), {self.annotations[j]} annotations, "
                f"{present} categories, {int(ok[j][used].sum())}/{int(used.sum())} within "
                "tolerance")
        out.extend(f"  {note}" for note in self.notes)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


class SplitResult(NamedTuple):
    """The result of :func:`split`: a dataset per split name, and the report."""

    datasets: dict[str, Dataset]
    report: SplitReport


@gc_paused
def split(
    ds: Dataset,
    ratios: Mapping[str, float],
    *,
    stratify: bool = False,
    seed: int | None = 0,
    group_by: str | None = None,
    group_pattern: str | re.Pattern[str] | None = None,
) -> SplitResult:
    """Split the images into named parts; returns ``(datasets, report)``.

    ``ratios`` maps split names to weights (normalised to sum to 1, with a note when
    they do not; 0 makes an empty split). Each image goes to exactly one split with all
    its annotations; categories, ``info``, ``licenses`` and other top-level keys are
    copied to every split.

    * random (default): the examples are shuffled with
      ``numpy.random.default_rng(seed)`` and cut so each split gets its share of the
      images (rounded);
    * ``stratify=True``: iterative stratification with refinement (see
      :mod:`cocokit.transforms.split`), so each split's per-category annotation and
      image counts follow the ratios as closely as possible, rare categories included.

    ``group_by`` names an image field (``id``, ``file_name``, ``width``, ``height`` or any
    extra key such as ``video_id``); ``group_pattern`` is a regex searched in the file
    name (the first group if it has one, else the whole match). Images with the same
    key stay in the same split; images without the key (or no match) are on their own.

    Annotations that name no image cannot go anywhere; they are left out and counted
    in the notes.
    """
    names, r, total = _ratios(ratios)
    if group_by is not None and group_pattern is not None:
        raise OptionError("group_by", group_by, "either group_by or group_pattern, not both")
    notes: list[str] = []
    if abs(total - 1) > 1e-9:  # 0.8 + 0.1 is more likely a slip than weights: say so
        shares = ", ".join(f"{n} {v:.3f}" for n, v in zip(names, r.tolist(), strict=True))
        notes.append(f"the ratios sum to {total:g}, not 1: used as weights ({shares})")
    n_img = len(ds.images)
    group, n_groups, key_name, group_notes = _groups(ds, group_by, group_pattern)
    notes += group_notes
    sizes = np.bincount(group, minlength=n_groups).astype(np.float64)
    rng = np.random.default_rng(seed)
    ex, lab, ann_count, img_count, n_cat = _examples(ds, group, n_groups)
    if stratify:
        assign = _stratify(ex, lab, ann_count, img_count, sizes, n_groups, n_cat, r, rng)
    else:
        assign = _random(sizes, r, rng)
    image_split = assign[group] if n_img else np.zeros(0, np.int64)

    datasets: dict[str, Dataset] = {}
    img_idx = ds.image_index
    ann_split = np.where(img_idx >= 0, image_split[np.maximum(img_idx, 0)], -1) if n_img \
        else np.full(len(img_idx), -1, np.int64)
    for j, name in enumerate(names):
        part = image_split == j
        datasets[name] = derived(ds, ds.select_images(part), np.flatnonzero(part),
                                 np.flatnonzero(ann_split == j))
    dangling = int(np.count_nonzero(ds.image_index < 0))
    if dangling:
        notes.append(f"{dangling} annotation(s) of {describe(ds)} name no image; left out")

    k = len(names)
    cell = assign[ex] * n_cat + lab
    cat_ann = np.bincount(cell, weights=ann_count, minlength=k * n_cat).reshape(k, n_cat)
    cat_img = np.bincount(cell, weights=img_count, minlength=k * n_cat).reshape(k, n_cat)
    tolerance = _label_max(lab, ann_count, n_cat)
    report = SplitReport(
        names=tuple(names),
        ratios=tuple(float(v) for v in r),
        method="stratified" if stratify else "random",
        seed=seed,
        group_key=key_name,
        groups=n_groups,
        images=tuple(int(np.count_nonzero(image_split == j)) for j in range(k)),
        annotations=tuple(len(d.annotations) for d in datasets.values()),
        category_ids=ds.categories.id.copy(),
        category_names=tuple(str(n) for n in ds.categories.name),
        category_annotations=cat_ann.astype(np.int64),
        category_images=cat_img.astype(np.int64),
        tolerance=tolerance,
        image_split=image_split.astype(np.int64),
        notes=tuple(notes),
    )
    return SplitResult(datasets, report)


# -- inputs ----------------------------------------------------------------------------


def _ratios(ratios: Mapping[str, float]) -> tuple[list[str], np.ndarray, float]:
    """The split names, their ratios normalised to sum to 1, and the sum as given."""
    if not ratios:
        raise OptionError("ratios", dict(ratios), "at least one name=ratio")
    names = [str(n) for n in ratios]
    for n in names:
        if not n or "/" in n or "\\" in n or n in (".", ".."):
            raise OptionError("ratios", n, "split names usable as file names")
    try:
        r = np.asarray([float(v) for v in ratios.values()], np.float64)
    except (TypeError, ValueError):
        raise OptionError("ratios", dict(ratios), "numbers") from None
    if not np.isfinite(r).all() or (r < 0).any() or r.sum() <= 0:
        raise OptionError("ratios", dict(ratios), "finite numbers >= 0 with a positive sum")
    return names, r / r.sum(), float(r.sum())


def _groups(ds: Dataset, group_by: str | None, pattern: str | re.Pattern[str] | None
            ) -> tuple[np.ndarray, int, str | None, list[str]]:
    """Group index of each image row, number of groups, a label for the key, notes."""
    n = len(ds.images)
    if group_by is None and pattern is None:
        return np.arange(n, dtype=np.int64), n, None, []
    keys: list[Any]
    if pattern is not None:
        try:
            rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        except re.error as e:
            raise OptionError("group_pattern", pattern,
                              f"a valid regular expression ({e})") from None
        keys = []
        for name in ds.images.file_name.tolist():
            m = rx.search(name)
            keys.append(None if m is None else (m.group(1) if rx.groups else m.group(0)))
        label = f"file_name ~ /{rx.pattern}/"
    else:
        field = label = str(group_by)
        if field in ("id", "file_name", "width", "height"):
            keys = getattr(ds.images, field).tolist()
        else:
            keys = [_key_of(ex.get(field)) if ex else None for ex in ds.images.extra]
    index: dict[Any, int] = {}
    group = np.empty(n, np.int64)
    alone = 0
    for i, key in enumerate(keys):
        if key is None:
            group[i] = len(index)
            index[("\0alone", i)] = group[i]
            alone += 1
        else:
            group[i] = index.setdefault(key, len(index))
    notes = [f"{len(index)} groups by {label}"]
    if alone:
        notes.append(f"{alone} image(s) without a {label} key form groups of their own")
    return group, len(index), label, notes


def _key_of(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, msgspec.Raw):
        text = bytes(value)
        return None if text == b"null" else text
    return msgspec.json.encode(value)


def _examples(ds: Dataset, group: np.ndarray, n_groups: int
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Sparse example x category entries: example, category row, annotations, images."""
    n_cat = len(ds.categories)
    img = ds.image_index
    cat = ds.category_index
    ok = (img >= 0) & (cat >= 0)
    if not ok.any() or n_cat == 0:
        z = np.zeros(0, np.int64)
        return z, z, z, z, n_cat
    # images per (image, category) pair first, then summed per (group, category)
    pair = np.unique(img[ok].astype(np.int64) * n_cat + cat[ok], return_counts=True)
    pair_img, pair_cat = np.divmod(pair[0], n_cat)
    if n_groups == len(group) and (group == np.arange(len(group))).all():
        return pair_img, pair_cat, pair[1].astype(np.int64), np.ones(len(pair_img), np.int64), n_cat
    key = group[pair_img] * n_cat + pair_cat
    uniq, inverse = np.unique(key, return_inverse=True)
    ann_count = np.bincount(inverse, weights=pair[1]).astype(np.int64)
    img_count = np.bincount(inverse).astype(np.int64)
    ex, lab = np.divmod(uniq, n_cat)
    return ex, lab, ann_count, img_count, n_cat


# -- random ----------------------------------------------------------------------------


def _cut(order: np.ndarray, sizes: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Split index for each example of ``order``: cut the running image count by ratios."""
    total = sizes.sum()
    bounds = np.cumsum(r) * total
    mid = np.cumsum(sizes[order]) - sizes[order] / 2
    where = np.minimum(np.searchsorted(bounds, mid, side="right"), len(r) - 1)
    # never into a split of ratio 0 (it can only be hit by rounding at a boundary)
    active = np.flatnonzero(r > 0)
    where = active[np.minimum(np.searchsorted(active, where), len(active) - 1)]
    out = np.empty(len(order), np.int64)
    out[order] = where
    return out


def _random(sizes: np.ndarray, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _cut(rng.permutation(len(sizes)), sizes, r)


# -- stratified ------------------------------------------------------------------------


def _spans(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Entry indices of the given rows of a CSR-like layout (``ptr``)."""
    lens = ptr[rows + 1] - ptr[rows]
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    starts = np.cumsum(lens) - lens
    return np.repeat(ptr[rows], lens) + np.arange(total) - np.repeat(starts, lens)


def _label_max(lab: np.ndarray, values: np.ndarray, n_cat: int) -> np.ndarray:
    """Largest value of each label over the entries (0 for labels without entries)."""
    out = np.zeros(n_cat, np.int64)
    np.maximum.at(out, lab, values)
    return out


def _stratify(ex: np.ndarray, lab: np.ndarray, ann_count: np.ndarray, img_count: np.ndarray,
              sizes: np.ndarray, n_ex: int, n_cat: int, r: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    assign = _iterative(ex, lab, img_count, sizes, n_ex, n_cat, r, rng)
    if len(ex):
        assign = _refine(ex, lab, ann_count, img_count, sizes, n_ex, n_cat, r, assign)
    return assign


def _iterative(ex: np.ndarray, lab: np.ndarray, img_count: np.ndarray, sizes: np.ndarray,
               n_ex: int, n_cat: int, r: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stage 1: iterative stratification on the example x category image counts."""
    k = len(r)
    active = r > 0
    # CSR by example (entries are sorted by example already) and by category
    ex_ptr = np.zeros(n_ex + 1, np.int64)
    np.cumsum(np.bincount(ex, minlength=n_ex), out=ex_ptr[1:])
    by_lab = np.argsort(lab, kind="stable")
    lab_ptr = np.zeros(n_cat + 1, np.int64)
    np.cumsum(np.bincount(lab, minlength=n_cat), out=lab_ptr[1:])
    lab_ex = ex[by_lab]
    lab_w = img_count[by_lab]

    desired = r[:, None] * np.bincount(lab, weights=img_count, minlength=n_cat)[None, :]
    desired[~active] = -np.inf
    desired_n = np.where(active, r * sizes.sum(), -np.inf)
    remaining = np.bincount(lab, minlength=n_cat).astype(np.int64)
    assign = np.full(n_ex, -1, np.int64)
    while True:
        cand = np.flatnonzero(remaining > 0)
        if len(cand) == 0:
            break
        label = int(cand[np.argmin(remaining[cand])])
        s, e = lab_ptr[label], lab_ptr[label + 1]
        members = lab_ex[s:e]
        weights = lab_w[s:e]
        free = assign[members] < 0
        members, weights = members[free], weights[free]
        perm = rng.permutation(len(members))
        members, weights = members[perm], weights[perm]
        picked = _greedy(weights.tolist(), sizes[members].tolist(),
                         desired[:, label].tolist(), desired_n.tolist(),
                         rng.random((len(members), k)).tolist())
        assign[members] = picked
        entries = _spans(ex_ptr, members)
        owner = np.repeat(picked, np.diff(ex_ptr)[members])
        desired -= np.bincount(owner * n_cat + lab[entries], weights=img_count[entries],
                               minlength=k * n_cat).reshape(k, n_cat)
        desired_n -= np.bincount(picked, weights=sizes[members], minlength=k)
        remaining -= np.bincount(lab[entries], minlength=n_cat)
    rest = np.flatnonzero(assign < 0)
    if len(rest):
        rest = rest[rng.permutation(len(rest))]
        n = len(rest)
        assign[rest] = _greedy([0.0] * n, sizes[rest].tolist(), [0.0] * k, desired_n.tolist(),
                               rng.random((n, k)).tolist())
    return assign


def _greedy(weights: list[float], sizes: list[float], dl: list[float], dn: list[float],
            jitter: list[list[float]]) -> np.ndarray:
    """Give each example in turn to the split that most lacks the label (``dl``), then
    images (``dn``), then at random (``jitter``); both lacks shrink as examples go."""
    k = len(dl)
    out = np.empty(len(weights), np.int64)
    for i, w in enumerate(weights):
        jit = jitter[i]
        best, bl, bn, bj = 0, dl[0], dn[0], jit[0]
        for j in range(1, k):
            v = dl[j]
            if v > bl or (v == bl and (dn[j] > bn or (dn[j] == bn and jit[j] > bj))):
                best, bl, bn, bj = j, v, dn[j], jit[j]
        dl[best] -= w
        dn[best] -= sizes[i]
        out[i] = best
    return out


class _Features:
    """Per-example sparse feature vectors and per-split deviations from the ideal.

    Columns: ``n_cat`` annotation counts (weighted), ``n_cat`` image counts, 1 size.
    ``dev[j]`` is the sum of the features of split ``j``'s examples minus ``r_j`` times
    the total; the objective is ``sum(dev ** 2)``.
    """

    def __init__(self, ex: np.ndarray, lab: np.ndarray, ann: np.ndarray, img: np.ndarray,
                 sizes: np.ndarray, n_ex: int, n_cat: int, r: np.ndarray) -> None:
        self.n_ex, self.n_cat, self.r = n_ex, n_cat, r
        # entries of example e (``ex`` is sorted): its annotation counts, its image
        # counts, its size; placed by arithmetic rather than by sorting
        count = np.bincount(ex, minlength=n_ex)
        ex_ptr = np.cumsum(count) - count
        self.ptr = np.zeros(n_ex + 1, np.int64)
        np.cumsum(2 * count + 1, out=self.ptr[1:])
        rank = np.arange(len(ex)) - ex_ptr[ex]
        at_ann = self.ptr[ex] + rank
        at_img = at_ann + count[ex]
        at_size = self.ptr[1:] - 1
        total = int(self.ptr[-1])
        self.ex = np.empty(total, np.int64)
        self.col = np.empty(total, np.int64)
        self.base = np.empty(total, np.float64)
        for at, e, c, v in ((at_ann, ex, lab, ann), (at_img, ex, lab + n_cat, img),
                            (at_size, np.arange(n_ex), np.full(n_ex, 2 * n_cat), sizes)):
            self.ex[at], self.col[at], self.base[at] = e, c, v
        self.is_ann = self.col < n_cat
        # the same numbers as one entry per (example, category), for products with the
        # deviations (half the entries of the layout above)
        self.pair_ex, self.pair_lab = ex, lab
        self.pair_ann, self.pair_img = ann.astype(np.float64), img.astype(np.float64)
        self.sizes = sizes
        self.set_weights(np.ones(n_cat))

    def set_weights(self, weights: np.ndarray) -> None:
        self.weights = weights
        w = np.where(self.is_ann, weights[np.minimum(self.col, self.n_cat - 1)], 1.0)
        self.val = self.base * w
        self.self_sq = np.bincount(self.ex, weights=self.val ** 2, minlength=self.n_ex)
        self.pair_ann_w = self.pair_ann * weights[self.pair_lab]

    def products(self, dev: np.ndarray) -> np.ndarray:
        """(examples x splits): each example's features dotted with each split's deviation."""
        n_cat, lab = self.n_cat, self.pair_lab
        return np.stack([
            np.bincount(self.pair_ex,
                        weights=self.pair_ann_w * d[lab] + self.pair_img * d[n_cat + lab],
                        minlength=self.n_ex) + self.sizes * d[2 * n_cat]
            for d in dev], axis=1)

    def deviations(self, assign: np.ndarray) -> np.ndarray:
        k, width = len(self.r), 2 * self.n_cat + 1
        dev = np.bincount(assign[self.ex] * width + self.col, weights=self.val,
                          minlength=k * width).reshape(k, width)
        return dev - self.r[:, None] * np.bincount(self.col, weights=self.val,
                                                    minlength=width)[None, :]


def _refine(ex: np.ndarray, lab: np.ndarray, ann: np.ndarray, img: np.ndarray,
            sizes: np.ndarray, n_ex: int, n_cat: int, r: np.ndarray,
            assign: np.ndarray) -> np.ndarray:
    """Stage 2: local search, then reweighting of categories out of tolerance."""
    feats = _Features(ex, lab, ann, img, sizes, n_ex, n_cat, r)
    tolerance = _label_max(lab, ann, n_cat).astype(np.float64)
    budget = [_WORK_BUDGET]
    best_assign, best_key = assign, None
    weights = np.ones(n_cat)
    for _ in range(_REWEIGHT_ROUNDS):
        assign = _local_search(feats, assign.copy(), budget)
        dev = feats.deviations(assign)
        ann_dev = np.abs(dev[:, :n_cat]) / feats.weights[None, :]
        bad = ann_dev > tolerance[None, :] + 1e-9
        plain_obj = float(((dev[:, :n_cat] / feats.weights) ** 2).sum()
                          + (dev[:, n_cat:] ** 2).sum())
        key = (int(bad.sum()), plain_obj)
        if best_key is None or key < best_key:
            best_assign, best_key = assign, key
        if not bad.any() or budget[0] <= 0:
            break
        weights = np.where(bad.any(axis=0), weights * 2.0, weights)
        feats.set_weights(weights)
    return best_assign


def _local_search(feats: _Features, assign: np.ndarray, budget: list[int]) -> np.ndarray:
    r = feats.r
    k = len(r)
    allowed = r > 0
    n = feats.n_ex
    dev = feats.deviations(assign)
    batch = max(1, n // 50)
    rows = np.arange(n)
    gram: np.ndarray | None = None
    nnz = len(feats.pair_ex)
    while budget[0] > 0:
        budget[0] -= nnz * (k + 1)
        # gain of moving example e to split b: 2 * (F_e . (dev_b - dev_a) + |F_e|^2)
        fd = feats.products(dev)
        gain = 2.0 * (fd - fd[rows, assign][:, None] + feats.self_sq[:, None])
        gain[rows, assign] = np.inf
        gain[:, ~allowed] = np.inf
        flat = gain.ravel()
        m = min(batch, int(np.count_nonzero(flat < -1e-9)))
        moved = 0
        if m:
            cand = np.argpartition(flat, m - 1)[:m] if m < len(flat) else np.arange(len(flat))
            cand = cand[np.argsort(flat[cand], kind="stable")]
            touched = np.zeros(n, bool)
            for c in cand.tolist():
                e, b = divmod(c, k)
                if touched[e]:
                    continue
                a = int(assign[e])
                s, t = feats.ptr[e], feats.ptr[e + 1]
                cols, vals = feats.col[s:t], feats.val[s:t]
                g = 2.0 * (float(vals @ (dev[b, cols] - dev[a, cols])) + float(vals @ vals))
                if g < -1e-9:
                    dev[a, cols] -= vals
                    dev[b, cols] += vals
                    assign[e] = b
                    touched[e] = True
                    moved += 1
        if moved:
            continue
        if n > SWAP_LIMIT or k < 2:
            break
        # no single move helps: try the best swap of two examples of different splits
        if gram is None:
            dense = np.zeros((n, 2 * feats.n_cat + 1))
            dense[feats.ex, feats.col] = feats.val
            gram = dense @ dense.T
        budget[0] -= n * n
        g0 = np.where(np.isinf(gain), 0.0, gain)
        best, pair = -1e-9, None
        for a in range(k):
            ea = np.flatnonzero(assign == a)
            for b in range(a + 1, k):
                fb = np.flatnonzero(assign == b)
                if not len(ea) or not len(fb) or not (allowed[a] and allowed[b]):
                    continue
                cost = g0[ea, b][:, None] + g0[fb, a][None, :] - 4.0 * gram[np.ix_(ea, fb)]
                i = int(np.argmin(cost))
                if cost.flat[i] < best:
                    best = float(cost.flat[i])
                    pair = (int(ea[i // len(fb)]), int(fb[i % len(fb)]), a, b)
        if pair is None:
            break
        e, f, a, b = pair
        for x, src, dst in ((e, a, b), (f, b, a)):
            s, t = feats.ptr[x], feats.ptr[x + 1]
            dev[src, feats.col[s:t]] -= feats.val[s:t]
            dev[dst, feats.col[s:t]] += feats.val[s:t]
            assign[x] = dst
    return assign
