"""``diff``: what changed between two versions of a dataset.

* Images are matched by ``file_name``: *added* (only in B), *removed* (only in A),
  *changed* (a field differs, the id included; the keys that differ are listed).
* Categories are matched by id: *added*, *removed*, *renamed* (the name differs) and
  *changed* (another field differs).
* Annotations are matched within the same image (by file name) and category id. First
  exactly: the same box (bit for bit); the pairs whose other fields differ (id, area,
  segmentation, ...) are *changed*, with the keys that differ. Then by the same
  segmentation (its JSON text): the box changed by any amount, *moved* (a segmentation
  that stays while its box is recomputed is the same object). The rest are matched by
  box IoU, at least ``iou`` (0.5), best pairs first, and last by the same id: those are
  *moved* too (other keys that changed are listed as well). What is left is *added* (in
  B) or *removed* (in A).

Every entry names the records by JSON path in A (``a``) and B (``b``). The exact pass
is one sort of both tables; the IoU pass pairs only the annotations left whose boxes
overlap, found by a sweep along x (:func:`cocokit.postprocess.match_pairs`), not by
every pair of a group.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec
import numpy as np

from ..dataset import Annotations, Dataset, equal_pairs, plain
from ..errors import OptionError
from ..postprocess import match_pairs
from .pairs import box_iou

__all__ = ["DatasetDiff", "diff_datasets"]

#: the least IoU above 0: :func:`match_pairs` at it finds every pair of boxes that overlap
_ANY_OVERLAP = float(np.finfo(np.float64).smallest_subnormal)

_ANN_FIELDS = ("id", "image_id", "area", "iscrowd", "segmentation", "keypoints",
               "num_keypoints", "extra")


@dataclasses.dataclass
class DatasetDiff:
    """What :func:`diff_datasets` found; lists of plain dicts (see :meth:`to_dict`)."""

    a: str
    b: str
    images_added: list[dict[str, Any]]
    images_removed: list[dict[str, Any]]
    images_changed: list[dict[str, Any]]
    annotations_added: list[dict[str, Any]]
    annotations_removed: list[dict[str, Any]]
    annotations_moved: list[dict[str, Any]]
    annotations_changed: list[dict[str, Any]]
    categories_added: list[dict[str, Any]]
    categories_removed: list[dict[str, Any]]
    categories_renamed: list[dict[str, Any]]
    categories_changed: list[dict[str, Any]]

    _KINDS = ("images_added", "images_removed", "images_changed", "annotations_added",
              "annotations_removed", "annotations_moved", "annotations_changed",
              "categories_added", "categories_removed", "categories_renamed",
              "categories_changed")

    def counts(self) -> dict[str, int]:
        """The count per kind (every kind, 0 included)."""
        return {k: len(getattr(self, k)) for k in self._KINDS}

    @property
    def same(self) -> bool:
        return not any(self.counts().values())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (stable keys)."""
        out: dict[str, Any] = {"a": self.a, "b": self.b, "same": self.same,
                               "counts": self.counts()}
        for section in ("images", "annotations", "categories"):
            out[section] = {k.split("_", 1)[1]: getattr(self, k) for k in self._KINDS
                            if k.startswith(section)}
        return out


def _changed_keys(ra: dict[str, Any], rb: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(ra) | set(rb) if ra.get(k) != rb.get(k))


def _diff_images(a: Dataset, b: Dataset) -> tuple[np.ndarray, np.ndarray, list[list[dict]]]:
    """Image key of each row of A and B (a shared number per file name), and the lists."""
    names: dict[str, int] = {}
    ka = np.array([names.setdefault(str(f), len(names)) for f in a.images.file_name], np.int64)
    kb = np.array([names.setdefault(str(f), len(names)) for f in b.images.file_name], np.int64)
    first_b: dict[int, int] = {}
    for r, k in enumerate(kb.tolist()):
        first_b.setdefault(k, r)
    first_a: dict[int, int] = {}
    for r, k in enumerate(ka.tolist()):
        first_a.setdefault(k, r)
    removed = [{"file_name": str(a.images.file_name[r]), "a": f"images[{r}]"}
               for r, k in enumerate(ka.tolist()) if k not in first_b]
    added = [{"file_name": str(b.images.file_name[r]), "b": f"images[{r}]"}
             for r, k in enumerate(kb.tolist()) if k not in first_a]
    ia = np.array([r for r, k in enumerate(ka.tolist()) if k in first_b], np.int64)
    ib = np.array([first_b[int(k)] for k in ka[ia].tolist()], np.int64)
    A, B = a.images, b.images
    differ = ((A.id[ia] != B.id[ib]) | (A.width[ia] != B.width[ib])
              | (A.height[ia] != B.height[ib]) | (A.extra[ia] != B.extra[ib]))
    changed = [{"file_name": str(A.file_name[i]), "a": f"images[{i}]", "b": f"images[{j}]",
                "keys": _changed_keys(A.record(i), B.record(j))}
               for i, j in zip(ia[differ].tolist(), ib[differ].tolist(), strict=True)]
    return ka, kb, [added, removed, changed]


def _diff_categories(a: Dataset, b: Dataset) -> list[list[dict[str, Any]]]:
    ca = {int(r["id"]): plain(r) for r in a.categories.records}
    cb = {int(r["id"]): plain(r) for r in b.categories.records}
    added = [{"id": i, "name": cb[i].get("name")} for i in cb if i not in ca]
    removed = [{"id": i, "name": ca[i].get("name")} for i in ca if i not in cb]
    renamed, changed = [], []
    for i in ca:
        if i not in cb:
            continue
        keys = _changed_keys(ca[i], cb[i])
        if "name" in keys:
            renamed.append({"id": i, "old": ca[i].get("name"), "new": cb[i].get("name")})
        if [k for k in keys if k != "name"]:
            changed.append({"id": i, "keys": [k for k in keys if k != "name"]})
    return [added, removed, renamed, changed]


def _keys(anns: Annotations, img_key: np.ndarray, image_index: np.ndarray) -> np.ndarray:
    """(n, 6) int64: image key, category id and the bits of the four box numbers."""
    k = np.where(image_index >= 0, img_key[np.maximum(image_index, 0)], -1)
    box = np.ascontiguousarray(anns.bbox).view(np.int64)
    return np.column_stack([k, anns.category_id, box])


def _row_hash(keys: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row of an int64 table (equal rows, equal hashes)."""
    h = np.full(len(keys), 0x9E3779B97F4A7C15, np.uint64)
    with np.errstate(over="ignore"):
        for c in range(keys.shape[1]):
            h ^= keys[:, c].view(np.uint64)
            h *= np.uint64(0xBF58476D1CE4E5B9)
            h ^= h >> np.uint64(31)
    return h


def _exact(ka: np.ndarray, kb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of A and B paired where their keys are equal (k-th of a key in A with the
    k-th in B, in row order): one stable sort of the rows' hashes, the pairs then checked
    on the keys themselves."""
    h = np.concatenate([_row_hash(ka), _row_hash(kb)])
    side = np.r_[np.zeros(len(ka), np.int64), np.ones(len(kb), np.int64)]
    row = np.r_[np.arange(len(ka)), np.arange(len(kb))]
    order = np.argsort(h, kind="stable")  # within a hash: A's rows, then B's, in row order
    s = h[order]
    new = np.r_[True, s[1:] != s[:-1]] if len(s) else np.zeros(0, bool)
    group = np.cumsum(new) - 1
    sd = side[order]
    key = group * 2 + sd
    start = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, bool)
    pos = np.arange(len(key))
    rank = pos - np.maximum.accumulate(np.where(start, pos, 0))
    code = group * (len(h) + 1) + rank
    a_code, a_row = code[sd == 0], row[order][sd == 0]
    b_code, b_row = code[sd == 1], row[order][sd == 1]
    ia, ib = equal_pairs(a_code, b_code)  # codes are unique on each side: one to one
    ia, ib = a_row[ia], b_row[ib]
    same = (ka[ia] == kb[ib]).all(axis=1)  # a hash collision is no match
    return ia[same], ib[same]


def _with_segmentation(anns: Annotations, free: np.ndarray) -> np.ndarray:
    """Rows of ``free`` with a segmentation that is not empty."""
    seg = anns.segmentation
    return np.array([r for r in np.flatnonzero(free).tolist()
                     if seg[r] is not None and _seg_bytes(seg[r]) not in (b"[]", b"null")],
                    np.int64)


def _seg_bytes(seg: Any) -> bytes:
    return bytes(seg) if isinstance(seg, msgspec.Raw) else msgspec.json.encode(seg)


def _seg_hashes(segs: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each segmentation's JSON text (Python's hash of the bytes: the
    same within one process, which is all a diff needs; 0 for none)."""
    return np.fromiter((0 if s is None else hash(_seg_bytes(s)) for s in segs), np.int64,
                       len(segs))


def _overlapping(box_a: np.ndarray, box_b: np.ndarray, group_a: np.ndarray,
                 group_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (row of ``box_a``, row of ``box_b``) of one group (equal rows of ``group_a``
    and ``group_b``) whose finite xywh boxes overlap: a superset of the pairs of any box
    IoU above 0. Both sets go through one sweep along x (:func:`match_pairs`), at the
    least IoU above 0, and the pairs within one set are dropped."""
    box = np.concatenate([box_a, box_b])
    xyxy = np.concatenate([box[:, :2], box[:, :2] + box[:, 2:]], axis=1)  # as box_iou adds
    keys = np.concatenate([group_a, group_b])
    group = (np.unique(keys, axis=0, return_inverse=True)[1].ravel() if len(keys)
             else np.zeros(0, np.int64))
    i, j = match_pairs(xyxy, group, "iou", _ANY_OVERLAP)
    n = len(box_a)
    cross = (i < n) != (j < n)
    i, j = i[cross], j[cross]
    return np.minimum(i, j), np.maximum(i, j) - n


def _plain_box(b: np.ndarray) -> list[float] | None:
    return None if np.isnan(b).any() else b.tolist()


def _column_differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "f":
        return ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if a.dtype == object:
        return np.asarray(a != b, bool)
    return a != b


def diff_datasets(a: Dataset, b: Dataset, *, iou: float = 0.5) -> DatasetDiff:
    """What changed from ``a`` to ``b`` (see the module docstring); ``iou`` in (0, 1]."""
    if not 0.0 < iou <= 1.0:
        raise OptionError("iou", iou, "a number in (0, 1]")
    ka_img, kb_img, (img_added, img_removed, img_changed) = _diff_images(a, b)
    cats = _diff_categories(a, b)
    A, B = a.annotations, b.annotations
    key_a = _keys(A, ka_img, a.image_index)
    key_b = _keys(B, kb_img, b.image_index)
    # the same box and id first (most of a file), then the same box and segmentation, then
    # the same box: of several annotations with one box, each pairs with itself first
    free_a = np.ones(len(A), bool)
    free_b = np.ones(len(B), bool)
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    for k in range(3):
        ra, rb = np.flatnonzero(free_a), np.flatnonzero(free_b)
        ka, kb = key_a[ra], key_b[rb]
        if k == 0:
            ka, kb = np.column_stack([ka, A.id[ra]]), np.column_stack([kb, B.id[rb]])
        elif k == 1:
            ka = np.column_stack([ka, _seg_hashes(A.segmentation[ra])])
            kb = np.column_stack([kb, _seg_hashes(B.segmentation[rb])])
        ja, jb = _exact(ka, kb)
        found_a.append(ra[ja])
        found_b.append(rb[jb])
        free_a[ra[ja]] = False
        free_b[rb[jb]] = False
    ia, ib = np.concatenate(found_a), np.concatenate(found_b)
    differ = np.zeros(len(ia), bool)
    for f in _ANN_FIELDS:
        differ |= _column_differs(getattr(A, f)[ia], getattr(B, f)[ib])
    fname_a = a.images.file_name
    fname_b = b.images.file_name

    def name_a(i: int) -> str | None:
        r = int(a.image_index[i])
        return str(fname_a[r]) if r >= 0 else None

    def name_b(j: int) -> str | None:
        r = int(b.image_index[j])
        return str(fname_b[r]) if r >= 0 else None

    changed = [{"a": f"annotations[{i}]", "b": f"annotations[{j}]", "file_name": name_a(i),
                "keys": _changed_keys(A.record(i), B.record(j))}
               for i, j in sorted(zip(ia[differ].tolist(), ib[differ].tolist(), strict=True))]

    # then by the same segmentation (its box changed, by any amount)
    sa, sb = _with_segmentation(A, free_a), _with_segmentation(B, free_b)
    seg_a = np.column_stack([key_a[sa, :2], _seg_hashes(A.segmentation[sa])])
    seg_b = np.column_stack([key_b[sb, :2], _seg_hashes(B.segmentation[sb])])
    qa, qb = _exact(seg_a, seg_b)
    qa, qb = sa[qa], sb[qb]
    same_seg = np.asarray(A.segmentation[qa] == B.segmentation[qb], bool)
    qa, qb = qa[same_seg], qb[same_seg]
    free_a[qa] = False
    free_b[qb] = False
    seg_moved: list[dict[str, Any]] = []
    for i, j in zip(qa.tolist(), qb.tolist(), strict=True):
        keys = _changed_keys(A.record(i), B.record(j))
        if "bbox" in keys:
            v0 = float(box_iou(A.bbox[i], B.bbox[j])[0])
            seg_moved.append({"a": f"annotations[{i}]", "b": f"annotations[{j}]",
                              "file_name": name_a(i), "iou": None if np.isnan(v0) else round(v0, 4),
                              "old_bbox": _plain_box(A.bbox[i]), "new_bbox": _plain_box(B.bbox[j]),
                              "keys": keys})
        elif keys:
            changed.append({"a": f"annotations[{i}]", "b": f"annotations[{j}]",
                            "file_name": name_a(i), "keys": keys})
    changed.sort(key=lambda m: int(str(m["a"])[12:-1]))

    # the rest: pairs of one (image, category) by box IoU, best first
    rest_a, rest_b = np.flatnonzero(free_a), np.flatnonzero(free_b)
    all_rest_a = rest_a
    rest_a = rest_a[np.isfinite(A.bbox[rest_a]).all(axis=1) & (key_a[rest_a, 0] >= 0)]
    fin_b = rest_b[np.isfinite(B.bbox[rest_b]).all(axis=1) & (key_b[rest_b, 0] >= 0)]
    ja, jb = _overlapping(A.bbox[rest_a], B.bbox[fin_b], key_a[rest_a, :2], key_b[fin_b, :2])
    pa, pb = rest_a[ja], fin_b[jb]
    v = box_iou(A.bbox[pa], B.bbox[pb])
    good = np.flatnonzero(v >= iou)
    best = good[np.lexsort((pb[good], pa[good], -v[good]))]
    used_a: set[int] = set()
    used_b: set[int] = set()
    moved = seg_moved
    for k in best.tolist():
        i, j = int(pa[k]), int(pb[k])
        if i in used_a or j in used_b:
            continue
        used_a.add(i)
        used_b.add(j)
        moved.append({"a": f"annotations[{i}]", "b": f"annotations[{j}]",
                      "file_name": name_a(i), "iou": round(float(v[k]), 4),
                      "old_bbox": _plain_box(A.bbox[i]), "new_bbox": _plain_box(B.bbox[j]),
                      "keys": _changed_keys(A.record(i), B.record(j))})
    # last, the same id on the same image and category (a box that was empty, say)
    left_a = np.array([i for i in all_rest_a.tolist() if i not in used_a], np.int64)
    left_b = np.array([j for j in rest_b.tolist() if j not in used_b], np.int64)
    if len(left_a) and len(left_b):
        ka = np.column_stack([key_a[left_a, :2], A.id[left_a]])
        kb = np.column_stack([key_b[left_b, :2], B.id[left_b]])
        ja, jb = _exact(ka, kb)
        for i, j in zip(left_a[ja].tolist(), left_b[jb].tolist(), strict=True):
            if key_a[i, 0] < 0:
                continue  # no image: nothing to say it is the same
            used_a.add(i)
            used_b.add(j)
            v0 = float(box_iou(A.bbox[i], B.bbox[j])[0])
            moved.append({"a": f"annotations[{i}]", "b": f"annotations[{j}]",
                          "file_name": name_a(i), "iou": None if np.isnan(v0) else round(v0, 4),
                          "old_bbox": _plain_box(A.bbox[i]), "new_bbox": _plain_box(B.bbox[j]),
                          "keys": _changed_keys(A.record(i), B.record(j))})
    moved.sort(key=lambda m: int(str(m["a"])[12:-1]))
    removed = [{"a": f"annotations[{i}]", "file_name": name_a(i),
                "category_id": int(A.category_id[i])}
               for i in all_rest_a.tolist() if i not in used_a]
    added = [{"b": f"annotations[{j}]", "file_name": name_b(j),
              "category_id": int(B.category_id[j])}
             for j in rest_b.tolist() if j not in used_b]
    return DatasetDiff(a.source or "A", b.source or "B", img_added, img_removed, img_changed,
                       added, removed, moved, changed, *cats)
