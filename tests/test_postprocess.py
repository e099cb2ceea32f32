"""cocokit.postprocess: SAHI's NMS / NMM / greedy NMM, vectorized, and their parts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cocokit.errors import OptionError
from cocokit.postprocess import (
    dense_ids,
    match_pairs,
    merge_detections,
    overlap,
    rank_order,
    stable_int_order,
)


def _random(seed: int, n: int = 80) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Integer boxes (exact in SAHI's float32), distinct scores, 3 categories, 2 images."""
    rng = np.random.default_rng(seed)
    x, y = rng.integers(0, 200, n), rng.integers(0, 200, n)
    w, h = rng.integers(1, 60, n), rng.integers(1, 60, n)
    xyxy = np.stack([x, y, x + w, y + h], axis=1).astype(float)
    score = (rng.permutation(n) + 1) / (n + 1)
    score = score.astype(np.float32).astype(float)
    return xyxy, score, rng.integers(0, 3, n), rng.integers(0, 2, n)


def _sahi(sahi: Any, merge: str, xyxy: np.ndarray, score: np.ndarray, cat: np.ndarray,
          metric: str, threshold: float, agnostic: bool) -> list[tuple[Any, ...]]:
    from sahi.prediction import ObjectPrediction

    cls = {"nms": sahi.NMSPostprocess, "nmm": sahi.NMMPostprocess,
           "greedy-nmm": sahi.GreedyNMMPostprocess}[merge]
    post = cls(match_threshold=threshold, match_metric=metric.upper(), class_agnostic=agnostic)
    preds = [ObjectPrediction(bbox=xyxy[i].tolist(), score=float(score[i]),
                              category_id=int(cat[i]), full_shape=[400, 400])
             for i in range(len(xyxy))]
    return sorted((*np.round(p.bbox.to_xyxy(), 6).tolist(), round(p.score.value, 6),
                   p.category.id) for p in post(preds))


@pytest.mark.parametrize("merge", ["nms", "nmm", "greedy-nmm"])
@pytest.mark.parametrize("metric", ["iou", "ios"])
@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.5, 0.9])
@pytest.mark.parametrize("agnostic", [False, True])
def test_same_detections_as_sahi(merge: str, metric: str, threshold: float,
                                 agnostic: bool) -> None:
    sahi = pytest.importorskip("sahi.postprocess.combine", reason="sahi is not installed "
                               "(pip install 'cocokit[test]')")
    for seed in range(4):
        xyxy, score, cat, _ = _random(seed)
        want = _sahi(sahi, merge, xyxy, score, cat, metric, threshold, agnostic)
        got = merge_detections(xyxy, score, cat, np.zeros(len(xyxy), np.int64), merge=merge,
                               match_metric=metric, match_threshold=threshold,
                               class_agnostic=agnostic)
        mine = sorted((*np.round(got.bbox[i], 6).tolist(), round(float(got.score[i]), 6),
                       int(got.category_id[i])) for i in range(len(got.keep)))
        assert mine == want, (seed, len(mine), len(want))


def test_images_never_merge_with_each_other() -> None:
    xyxy, score, cat, image = _random(1)
    together = merge_detections(xyxy, score, cat, image, class_agnostic=True)
    apart = [merge_detections(xyxy[image == i], score[image == i], cat[image == i],
                              image[image == i], class_agnostic=True) for i in (0, 1)]
    assert len(together.keep) == sum(len(a.keep) for a in apart)
    # every kept row lies with the rows of its own image
    for k, owner in zip(together.member, together.member_of, strict=True):
        assert image[k] == image[together.keep[owner]]


@pytest.mark.parametrize("block", [1, 7, 1 << 20])
@pytest.mark.parametrize("metric", ["iou", "ios"])
def test_match_pairs_finds_every_matching_pair(block: int, metric: str) -> None:
    rng = np.random.default_rng(3)
    n = 300
    xy = rng.uniform(-50, 400, (n, 2))
    wh = rng.uniform(0, 80, (n, 2))
    wh[:5] = 0  # empty boxes match nothing
    xyxy = np.concatenate([xy, xy + wh], axis=1)
    xyxy[7] = np.nan  # nor do non-finite ones
    group = rng.integers(0, 4, n)
    i, j = match_pairs(xyxy, group, metric, 0.3, block=block)
    got = {(min(a, b), max(a, b)) for a, b in zip(i.tolist(), j.tolist(), strict=True)}
    a, b = np.triu_indices(n, 1)
    ratio = overlap(xyxy[a], xyxy[b], metric)
    want = {(int(p), int(q)) for p, q in zip(a[(ratio >= 0.3) & (group[a] == group[b])],
                                             b[(ratio >= 0.3) & (group[a] == group[b])],
                                             strict=True)}
    assert got == want and len(i) == len(got)


def test_rank_order_breaks_ties_like_sahi() -> None:
    xyxy = np.array([[5, 0, 9, 9], [1, 2, 3, 4], [1, 1, 3, 4], [1, 1, 3, 4], [0, 0, 1, 1]],
                    float)
    score = np.array([0.5, 0.5, 0.5, 0.5, 0.9])
    group = np.array([0, 0, 0, 0, 1])
    # SAHI: np.lexsort((y2, x2, y1, x1, -score)), then input order
    assert rank_order(xyxy, score, group).tolist() == [2, 3, 1, 0, 4]


@pytest.mark.parametrize("high", [10, 70_000, 1 << 40])
def test_stable_int_order_is_a_stable_sort(high: int) -> None:
    key = np.random.default_rng(0).integers(0, high, 5000)
    assert stable_int_order(key).tolist() == np.argsort(key, kind="stable").tolist()


@pytest.mark.parametrize("ids", [[7, 3, 7, 1], [10**12, 5, 10**12]])
def test_dense_ids(ids: list[int]) -> None:
    rank, k = dense_ids(np.array(ids))
    uniq, inv = np.unique(ids, return_inverse=True)
    assert rank.tolist() == inv.tolist() and k == len(uniq)


def test_nms_keeps_boxes_as_they_are_and_none_keeps_all() -> None:
    xyxy, score, cat, image = _random(2)
    nms = merge_detections(xyxy, score, cat, image, merge="nms", match_metric="iou")
    assert np.array_equal(nms.bbox, xyxy[nms.keep]) and len(nms.member) == 0
    none = merge_detections(xyxy, score, cat, image, merge="none")
    assert sorted(none.keep.tolist()) == list(range(len(xyxy)))


def test_greedy_merges_a_cut_object_into_its_union() -> None:
    # two halves of one object seen by two tiles, and a far box
    xyxy = np.array([[0, 0, 60, 40], [50, 0, 100, 40], [300, 300, 310, 310]], float)
    out = merge_detections(xyxy, np.array([0.9, 0.8, 0.7]), np.array([1, 1, 1]),
                           np.zeros(3, np.int64), match_threshold=0.1)
    assert out.bbox.tolist() == [[0, 0, 100, 40], [300, 300, 310, 310]]
    assert out.score.tolist() == [0.9, 0.7]
    assert out.member.tolist() == [1] and out.member_of.tolist() == [0]


@pytest.mark.parametrize(("option", "kwargs"), [
    ("merge", {"merge": "soft-nms"}),
    ("match_metric", {"match_metric": "giou"}),
    ("match_threshold", {"match_threshold": 1.5}),
    ("match_threshold", {"match_threshold": float("nan")}),
])
def test_bad_options(option: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(OptionError) as e:
        merge_detections(np.zeros((1, 4)), [1.0], [1], [1], **kwargs)
    assert e.value.option == option


@pytest.mark.parametrize("merge", ["nms", "nmm", "greedy-nmm", "none"])
def test_chunks_of_whole_images_give_the_same_result(merge: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import cocokit.postprocess as pp

    rng = np.random.default_rng(5)
    n = 3000
    xy = rng.uniform(0, 300, (n, 2))
    xyxy = np.concatenate([xy, xy + rng.uniform(5, 60, (n, 2))], axis=1)
    score, cat, image = rng.random(n), rng.integers(0, 4, n), rng.integers(0, 37, n) * 3
    whole = merge_detections(xyxy, score, cat, image, merge=merge, match_threshold=0.3)
    monkeypatch.setattr(pp, "CHUNK", 100)
    chunked = merge_detections(xyxy, score, cat, image, merge=merge, match_threshold=0.3)
    for field in ("keep", "bbox", "score", "category_id", "member", "member_of"):
        assert np.array_equal(getattr(whole, field), getattr(chunked, field)), field
