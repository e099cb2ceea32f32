"""Pairs, vectorized: the IoU of pairs of boxes, hashes within a Hamming distance.

Shared by :mod:`.check` (duplicate annotations, near-duplicate images) and
:mod:`.diff` (annotations matched by IoU); the pairs of boxes that overlap come from
:func:`cocokit.postprocess.match_pairs`:

* :func:`box_iou`: IoU of pairs of COCO ``xywh`` boxes;
* :func:`near_pairs`: pairs of 64-bit hashes (packed in ``uint64``) at most ``t`` bits
  apart, by multi-index hashing: the hashes are cut into ``m`` chunks, and two hashes
  within ``t`` bits agree within ``t // m`` bits on at least one chunk (pigeonhole). Each
  chunk indexes the hashes in a direct-address table (chunks are at most 22 bits);
  every hash probes its chunk and the chunk values ``t // m`` bits away; the candidates
  found are checked with a popcount. Exact: every pair within ``t`` is found, none
  beyond. The number of chunks is picked for the least expected work (probes plus
  candidates) for ``t`` and the number of hashes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from ..dataset import ranges

__all__ = ["box_iou", "near_pairs", "popcount"]

#: hashes probed at a time by :func:`near_pairs` (bounds its memory)
PROBE_BLOCK = 4096

if hasattr(np, "bitwise_count"):  # numpy >= 2

    def popcount(x: np.ndarray) -> np.ndarray:
        """Number of set bits of each ``uint64``."""
        return np.bitwise_count(np.asarray(x, np.uint64)).astype(np.int64)

else:  # pragma: no cover - numpy < 2
    _TABLE = np.array([bin(i).count("1") for i in range(1 << 16)], np.int64)

    def popcount(x: np.ndarray) -> np.ndarray:
        """Number of set bits of each ``uint64``."""
        v = np.asarray(x, np.uint64)
        m = np.uint64(0xFFFF)
        return (_TABLE[v & m] + _TABLE[(v >> np.uint64(16)) & m]
                + _TABLE[(v >> np.uint64(32)) & m] + _TABLE[v >> np.uint64(48)])


def box_iou(a_xywh: np.ndarray, b_xywh: np.ndarray) -> np.ndarray:
    """IoU of each pair of boxes ``a[k]``, ``b[k]`` (COCO xywh); 0 where both are empty,
    NaN where a box is NaN."""
    a = np.asarray(a_xywh, np.float64).reshape(-1, 4)
    b = np.asarray(b_xywh, np.float64).reshape(-1, 4)
    ix = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    iy = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(ix, 0, None) * np.clip(iy, 0, None)
    union = (np.clip(a[:, 2], 0, None) * np.clip(a[:, 3], 0, None)
             + np.clip(b[:, 2], 0, None) * np.clip(b[:, 3], 0, None) - inter)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    out[np.isnan(a).any(axis=1) | np.isnan(b).any(axis=1)] = np.nan
    return out


def _flips(bits: int, radius: int) -> np.ndarray:
    """Every mask of at most ``radius`` set bits among ``bits`` bits."""
    masks = [0]
    for r in range(1, radius + 1):
        masks += [sum(1 << b for b in c) for c in itertools.combinations(range(bits), r)]
    return np.array(masks, np.int64)


def _cost(t: int, m: int, n: int) -> float:
    """Probes plus expected candidates of a search within ``t`` bits among ``n`` hashes
    cut into ``m`` chunks (uniform hashes)."""
    bits = 64 // m
    r = t // m
    flips = sum(math.comb(bits, k) for k in range(r + 1))
    return m * n * flips * (1 + n / 2**bits)


def _chunks(t: int, n: int) -> list[tuple[int, int]]:
    """(shift, bits) of each chunk of a 64-bit hash for a search within ``t`` bits among
    ``n`` hashes: the number of chunks (3 or more, so that no chunk is wider than 22 bits
    and its direct-address table stays at most 4M entries) with the least expected work."""
    m = min(range(3, max(3, min(t + 1, 64)) + 1), key=lambda k: _cost(t, k, max(n, 1)))
    widths = [64 // m + (1 if k < 64 % m else 0) for k in range(m)]
    shifts = np.cumsum([0, *widths[:-1]]).tolist()
    return list(zip(shifts, widths, strict=True))


def _chunk(h: np.ndarray, shift: int, bits: int) -> np.ndarray:
    mask = np.uint64((1 << bits) - 1)
    return ((h >> np.uint64(shift)) & mask).astype(np.int64)


def _probe(queries: np.ndarray, base: np.ndarray, t: int, same: bool
           ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Candidate pairs (query row, base row) sharing a chunk within the probe radius."""
    chunks = _chunks(t, len(base))
    radius = t // len(chunks)
    for shift, bits in chunks:
        key = _chunk(base, shift, bits)
        order = np.argsort(key, kind="stable")
        counts = np.bincount(key, minlength=1 << bits)
        offsets = np.zeros((1 << bits) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        flips = _flips(bits, radius)
        qkey = _chunk(queries, shift, bits)
        for s in range(0, len(queries), PROBE_BLOCK):
            q = qkey[s : s + PROBE_BLOCK]
            probe = (q[:, None] ^ flips[None, :]).ravel()
            n = counts[probe]
            hit = np.flatnonzero(n)
            if not len(hit):
                continue
            n = n[hit]
            qrow = np.repeat(hit // len(flips) + s, n)
            brow = order[np.repeat(offsets[probe[hit]], n) + ranges(n)]
            if same:
                keep = brow > qrow
                qrow, brow = qrow[keep], brow[keep]
            yield qrow, brow


def near_pairs(hashes: np.ndarray, other: np.ndarray | None = None, t: int = 8
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of 64-bit hashes at most ``t`` bits apart, with their distance.

    Without ``other``: pairs ``(i, j)``, ``i < j``, within ``hashes``. With it: pairs
    ``(i, j)`` of a row of ``hashes`` and a row of ``other``. Sorted by (i, j).
    """
    if not 0 <= t < 64:
        raise ValueError(f"t must be in [0, 63], got {t}")
    a = np.ascontiguousarray(hashes, np.uint64).ravel()
    b = a if other is None else np.ascontiguousarray(other, np.uint64).ravel()
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    if len(a) and len(b):
        for qi, bj in _probe(a, b, t, other is None):
            d = popcount(a[qi] ^ b[bj])
            ok = d <= t
            found_i.append(qi[ok])
            found_j.append(bj[ok])
    if not found_i:
        z = np.zeros(0, np.int64)
        return z, z.copy(), z.copy()
    i = np.concatenate(found_i)
    j = np.concatenate(found_j)
    key = np.unique(i * np.int64(len(b)) + j)  # a pair found through several chunks
    i, j = key // len(b), key % len(b)
    return i, j, popcount(a[i] ^ b[j])
