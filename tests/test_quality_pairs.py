"""Pairs, vectorized (cocokit.quality.pairs): against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from cocokit.quality.pairs import box_iou, near_pairs, popcount


def _brute(a: np.ndarray, b: np.ndarray | None, t: int) -> set[tuple[int, int]]:
    other = a if b is None else b
    d = popcount(a[:, None] ^ other[None, :])
    i, j = np.nonzero(d <= t)
    return {(x, y) for x, y in zip(i.tolist(), j.tolist(), strict=True)
            if b is not None or x < y}


def _hashes(n: int, seed: int, planted: int, flips: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h = rng.integers(0, 2**63, n, dtype=np.int64).astype(np.uint64) * np.uint64(2)
    near = h[:planted].copy()
    for _ in range(flips):
        near ^= np.uint64(1) << rng.integers(0, 64, planted).astype(np.uint64)
    return np.concatenate([h, near])


@pytest.mark.parametrize("t", [0, 2, 5, 8, 11, 16])
def test_near_pairs_within_one_set(t: int) -> None:
    h = _hashes(1500, t, 200, t // 2 + 1)
    i, j, d = near_pairs(h, None, t)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == _brute(h, None, t)
    assert np.array_equal(d, popcount(h[i] ^ h[j]))


@pytest.mark.parametrize("t", [1, 8])
def test_near_pairs_between_sets(t: int) -> None:
    h = _hashes(800, 3, 100, 3)
    a, b = h[:850], h[850:]  # the planted copies sit in b
    i, j, _ = near_pairs(a, b, t)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == _brute(a, b, t)


def test_near_pairs_of_equal_hashes() -> None:
    h = np.array([5, 5, 5, 9], np.uint64)
    i, j, d = near_pairs(h, None, 0)
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 2)]
    assert d.tolist() == [0, 0, 0]


def test_popcount() -> None:
    x = np.array([0, 1, 3, 2**64 - 1, 2**63], np.uint64)
    assert popcount(x).tolist() == [0, 1, 2, 64, 1]


@pytest.mark.parametrize(("a", "b", "iou"), [
    ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),
    ([0, 0, 10, 10], [5, 0, 10, 10], 50 / 150),
    ([0, 0, 10, 10], [20, 20, 5, 5], 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),
])
def test_box_iou(a: list[float], b: list[float], iou: float) -> None:
    assert box_iou(np.array([a]), np.array([b]))[0] == pytest.approx(iou)
