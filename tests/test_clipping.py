"""Clipping of boxes, polygons, RLE masks and keypoints to windows (cocokit.clipping)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import cocokit
from cocokit.clipping import (
    clip_boxes,
    clip_keypoints,
    clip_polygons,
    crop_rle,
    crop_rle_many,
    paste_rle,
    polygon_areas,
    rle_area,
)
from cocokit.geometry import Polygons, parse_polygons

DATA = Path(__file__).resolve().parent / "data"

SQUARE = [[0, 0, 10, 0, 10, 10, 0, 10]]
# a U opening downwards in image coordinates: two legs joined at the top (y 0..10)
U_SHAPE = [[0, 0, 30, 0, 30, 30, 20, 30, 20, 10, 10, 10, 10, 30, 0, 30]]
BOW_TIE = [[0, 0, 10, 10, 10, 0, 0, 10]]


def polys_of(*annotations: list[list[float]]) -> Polygons:
    return Polygons.from_rings([[np.asarray(r, float) for r in a] for a in annotations])


def clip_one(rings: list[list[float]], window: list[float]) -> tuple[list[list[float]], float]:
    out, area = clip_polygons(polys_of(rings), np.array([0]), np.array([window], float))
    return out.to_coco(0), float(area[0])


# -- polygons: exact expected outputs ------------------------------------------------


@pytest.mark.parametrize(
    ("rings", "window", "expected_rings", "expected_area"),
    [
        # crossing a tile corner: the quarter inside, start/orientation from normalize
        (SQUARE, [5, 5, 20, 20], [[5, 5, 5, 10, 10, 10, 10, 5]], 25.0),
        (SQUARE, [-5, -5, 5, 5], [[0, 0, 0, 5, 5, 5, 5, 0]], 25.0),
        # a U cut below its bridge: two legs, both kept as parts of one annotation
        (
            U_SHAPE,
            [0, 20, 30, 40],
            [[20, 20, 20, 30, 30, 30, 30, 20], [0, 20, 0, 30, 10, 30, 10, 20]],
            200.0,
        ),
        # self-intersecting bow-tie: repaired into two triangles, then cut at x = 2
        (BOW_TIE, [2, 0, 20, 10], [[2, 2, 2, 8, 5, 5], [5, 5, 10, 10, 10, 0]], 34.0),
        # fully inside: copied vertex for vertex (even the invalid bow-tie), area repaired
        (BOW_TIE, [-1, -1, 11, 11], BOW_TIE, 50.0),
        (U_SHAPE, [0, 0, 30, 30], U_SHAPE, 700.0),
        # fully outside, or only touching an edge: nothing
        (SQUARE, [20, 20, 30, 30], [], 0.0),
        (SQUARE, [10, 0, 20, 10], [], 0.0),
    ],
    ids=["corner", "corner-origin", "u-two-pieces", "bow-tie-cut", "bow-tie-inside",
         "u-inside", "outside", "touching-edge"],
)
def test_clip_polygon_exact(
    rings: list[list[float]], window: list[float], expected_rings: list[list[float]],
    expected_area: float,
) -> None:
    out, area = clip_one(rings, window)
    assert out == [[float(v) for v in r] for r in expected_rings]
    assert area == pytest.approx(expected_area, abs=1e-9)


def test_clip_polygon_crossing_an_edge_through_a_vertex_drops_the_line() -> None:
    # a triangle whose apex touches the window: the intersection is a point, no polygon
    out, area = clip_one([[0, 0, 10, 5, 0, 10]], [10, 0, 20, 10])
    assert out == [] and area == 0.0


def test_clip_polygon_keeps_float_coordinates() -> None:
    out, _ = clip_one([[0.25, 0.5, 10.75, 0.5, 10.75, 9.125, 0.25, 9.125]], [5, 0, 20, 20])
    assert out == [[5.0, 0.5, 5.0, 9.125, 10.75, 9.125, 10.75, 0.5]]


def test_clip_polygon_overlapping_parts_count_once_and_stay_parts() -> None:
    two = [[0, 0, 10, 0, 10, 10, 0, 10], [5, 0, 15, 0, 15, 10, 5, 10]]
    out, area = clip_one(two, [2, -1, 20, 11])
    assert area == pytest.approx(130.0)  # union 15x10 minus the 2x10 cut off
    # clipped ring by ring (the rule of cocokit.clipping): the cut part, then the part
    # inside the window as it was; pycocotools unites them into the same mask
    assert out == [[2.0, 0.0, 2.0, 10.0, 10.0, 10.0, 10.0, 0.0],
                   [5.0, 0.0, 15.0, 0.0, 15.0, 10.0, 5.0, 10.0]]
    assert polygon_areas(polys_of(two))[0] == pytest.approx(150.0)


def test_clip_polygons_many_pairs_and_degenerate_rows() -> None:
    polys = polys_of(SQUARE, [], [[0, 0, 1, 1]], U_SHAPE)  # empty, and a 2-vertex ring
    ann = np.array([3, 0, 1, 2, 3, 0])
    windows = np.array(
        [[0, 20, 30, 40], [5, 5, 20, 20], [0, 0, 9, 9], [0, 0, 9, 9], [0, 0, 30, 30],
         [100, 100, 200, 200]], float,
    )
    out, area = clip_polygons(polys, ann, windows)
    assert len(out) == 6
    # the degenerate ring lies inside its window: copied as it is, with area 0
    assert [len(out.rings(k)) for k in range(6)] == [2, 1, 0, 1, 1, 0]
    assert out.to_coco(3) == [[0.0, 0.0, 1.0, 1.0]]
    np.testing.assert_allclose(area, [200, 25, 0, 0, 700, 0])
    # the input is not changed
    assert polys.to_coco(3) == [[float(v) for v in U_SHAPE[0]]]


def test_clip_polygons_inside_is_bit_for_bit() -> None:
    ring = [0.1, 0.2, 10.30000000000001, 0.2, 10.30000000000001, 9.7, 0.1, 9.7]
    out, _ = clip_one([ring], [0, 0, 20, 20])
    assert out == [ring]


# -- polygons: invariants --------------------------------------------------------------

coord = st.floats(min_value=0, max_value=100, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    rings=st.lists(st.lists(st.tuples(coord, coord), min_size=3, max_size=9), min_size=1,
                   max_size=3),
    step=st.sampled_from([7.0, 13.5, 25.0, 50.0]),
)
def test_abutting_windows_partition_the_area(rings: list[list[tuple[float, float]]],
                                             step: float) -> None:
    """With overlap 0 the pieces add up to the whole; every piece lies in its window.

    The invariant holds for valid rings: each random ring is replaced by its convex hull
    (self-crossing rings are repaired by ``make_valid``, whose pieces need not add up to
    the repair of the whole; their rule is tested in test_polygon_rule.py)."""
    hulls = [shapely.MultiPoint(r).convex_hull for r in rings]
    valid = [np.asarray(h.exterior.coords[:-1], float).ravel().tolist()
             for h in hulls if isinstance(h, shapely.Polygon) and h.area > 0]
    assume(valid)
    polys = polys_of(valid)
    edges = np.arange(0.0, 100.0 + step, step)
    windows = np.array([[x, y, x + step, y + step] for x in edges[:-1] for y in edges[:-1]])
    out, area = clip_polygons(polys, np.zeros(len(windows), np.int64), windows)
    assert area.sum() == pytest.approx(polygon_areas(polys)[0], rel=1e-9, abs=1e-6)
    for k in range(len(windows)):
        for ring in out.rings(k):
            assert len(ring) >= 3
            x0, y0, x1, y1 = windows[k]
            assert (ring[:, 0] >= x0 - 1e-9).all() and (ring[:, 0] <= x1 + 1e-9).all()
            assert (ring[:, 1] >= y0 - 1e-9).all() and (ring[:, 1] <= y1 + 1e-9).all()
        if out.rings(k):
            # the rings describe the clipped piece (holes aside, which random input
            # repaired by make_valid may have): the union covers at least the area
            parts = shapely.union_all([shapely.Polygon(r) for r in out.rings(k)])
            assert parts.area >= area[k] - 1e-6


def test_real_polygons_partition_and_match_pycocotools_masks() -> None:
    ds = cocokit.load(DATA / "tiny_coco_val2017.json")
    anns = ds.annotations
    rows = np.flatnonzero(anns.segmentation_kind == 1)
    polys = parse_polygons(anns.segmentation, rows)  # one entry per row, in order
    assert len(polys) == len(rows)
    img_row = ds.image_index[rows]
    widths, heights = ds.images.width[img_row], ds.images.height[img_row]
    original = polygon_areas(polys)
    for j in range(len(rows)):
        w, h = int(widths[j]), int(heights[j])
        windows = np.array([[x, y, min(x + 128, w), min(y + 128, h)]
                            for x in range(0, w, 128) for y in range(0, h, 128)], float)
        out, area = clip_polygons(polys, np.full(len(windows), j), windows)
        assert area.sum() == pytest.approx(original[j], rel=1e-9)
        if j % 10:
            continue
        # rasterized pieces agree with the rasterized whole, cropped (pycocotools)
        whole = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys.to_coco(j), h, w)))
        for k, (x0, y0, x1, y1) in enumerate(windows.astype(int)):
            piece_rings = [(r - [x0, y0]).ravel().tolist() for r in out.rings(k)]
            tw, th = x1 - x0, y1 - y0
            if piece_rings:
                rle = mask_utils.merge(mask_utils.frPyObjects(piece_rings, th, tw))
                piece = mask_utils.decode(rle)
            else:
                piece = np.zeros((th, tw), np.uint8)
            crop = whole[y0:y1, x0:x1]
            # rasterization at the cut edge may differ by one pixel column/row
            assert np.abs(piece.astype(int) - crop).sum() <= (tw + th) * 2


# -- boxes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("box", "window", "expected"),
    [
        ([0.1, 0.2, 0.2, 0.3], [0, 0, 8, 8], [0.1, 0.2, 0.2, 0.3]),  # inside: bit for bit
        ([5, 5, 10, 10], [0, 0, 8, 8], [5, 5, 3, 3]),
        ([-5, 2, 10, 3], [0, 0, 8, 8], [0, 2, 5, 3]),
        ([-5, -5, 20, 20], [0, 0, 8, 8], [0, 0, 8, 8]),
        ([50, 50, 1, 1], [0, 0, 8, 8], [8, 8, 0, 0]),
        ([-3, 1, 2, 2], [0, 0, 8, 8], [0, 1, 0, 2]),
        ([8, 1, 2, 2], [0, 0, 8, 8], [8, 1, 0, 2]),
    ],
)
def test_clip_boxes(box: list[float], window: list[float], expected: list[float]) -> None:
    out = clip_boxes(np.array([box], float), np.array([window], float))
    assert out[0].tolist() == [float(v) for v in expected]


def test_clip_boxes_vectorized_nan_and_no_mutation() -> None:
    boxes = np.array([[1, 1, 2, 2], [np.nan] * 4, [6, 6, 4, 4]], float)
    before = boxes.copy()
    out = clip_boxes(boxes, np.array([[0, 0, 8, 8], [0, 0, 8, 8], [5, 5, 7, 9]], float))
    np.testing.assert_array_equal(out, [[1, 1, 2, 2], [np.nan] * 4, [6, 6, 1, 3]])
    np.testing.assert_array_equal(boxes, before)


# -- RLE -------------------------------------------------------------------------------


def test_crop_rle_exact() -> None:
    mask = np.zeros((6, 8), np.uint8)
    mask[1:5, 2:7] = 1
    mask[0, 0] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle = {"size": rle["size"], "counts": rle["counts"].decode()}
    out = crop_rle(rle, [1, 2, 5, 6])
    assert out["size"] == [4, 4] and isinstance(out["counts"], str)
    got = mask_utils.decode({"size": out["size"], "counts": out["counts"].encode()})
    np.testing.assert_array_equal(got, mask[2:6, 1:5])
    assert rle_area(out) == 9.0  # rows 2..4 x cols 2..4
    # uncompressed (list) counts are accepted too
    assert rle_area({"size": [2, 2], "counts": [1, 2, 1]}) == 2.0
    assert crop_rle({"size": [2, 2], "counts": [1, 2, 1]}, [0, 0, 1, 2])["size"] == [2, 1]


def test_crop_rle_real_crowd_pieces_add_up() -> None:
    ds = cocokit.load(DATA / "tiny_coco_val2017.json")
    crowd = np.flatnonzero(ds.annotations.segmentation_kind == 2)
    assert len(crowd) >= 1
    for r in crowd:
        rle = ds.annotations.rle(int(r))
        h, w = rle["size"]
        whole = mask_utils.decode(mask_utils.frPyObjects(rle, h, w))
        windows = [[x, y, min(x + 100, w), min(y + 100, h)]
                   for x in range(0, w, 100) for y in range(0, h, 100)]
        pieces = crop_rle_many(rle, windows)
        assert sum(rle_area(p) for p in pieces) == rle_area(rle) == whole.sum()
        for (x0, y0, x1, y1), p in zip(windows, pieces, strict=True):
            got = mask_utils.decode({"size": p["size"], "counts": p["counts"].encode()})
            np.testing.assert_array_equal(got, whole[y0:y1, x0:x1])


# -- keypoints -------------------------------------------------------------------------


def test_clip_keypoints_exact() -> None:
    kps = np.array([[[1, 1, 2], [9, 9, 1], [0, 0, 0], [5, 5, 2], [3, 4, 0]]], float)
    out = clip_keypoints(kps, np.array([[1, 1, 5, 6]], float))
    np.testing.assert_array_equal(
        out, [[[0, 0, 2], [0, 0, 0], [0, 0, 0], [4, 4, 2], [0, 0, 0]]]
    )
    np.testing.assert_array_equal(kps[0, 1], [9, 9, 1])  # input untouched


def test_clip_keypoints_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\(n, k, 3\)"):
        clip_keypoints(np.zeros((2, 3)), np.zeros((2, 4)))


def test_clip_polygons_with_precomputed_geometries_gives_the_same() -> None:
    from cocokit.clipping import polygon_geometries

    polys = polys_of(SQUARE, U_SHAPE, BOW_TIE)
    ann = np.array([0, 1, 2, 2, 1])
    windows = np.array([[5, 5, 20, 20], [0, 20, 30, 40], [2, 0, 20, 10], [-1, -1, 11, 11],
                        [100, 100, 101, 101]], float)
    a, area_a = clip_polygons(polys, ann, windows)
    b, area_b = clip_polygons(polys, ann, windows, geometries=polygon_geometries(polys))
    assert [a.to_coco(k) for k in range(5)] == [b.to_coco(k) for k in range(5)]
    np.testing.assert_array_equal(area_a, area_b)
    with pytest.raises(ValueError, match="geometries"):
        clip_polygons(polys, ann, windows, geometries=polygon_geometries(polys)[:2])


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_paste_rle_puts_the_mask_at_its_place(data: st.DataObject) -> None:
    height = data.draw(st.integers(1, 30))
    width = data.draw(st.integers(1, 30))
    h, w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
    x, y = data.draw(st.integers(0, width - w)), data.draw(st.integers(0, height - h))
    seed = data.draw(st.integers(0, 2**31))
    fill = data.draw(st.sampled_from([0.0, 0.3, 1.0]))
    mask = (np.random.default_rng(seed).random((h, w)) < fill).astype(np.uint8)
    enc = mask_utils.encode(np.asfortranarray(mask))
    out = paste_rle({"size": [h, w], "counts": enc["counts"].decode()}, x, y, height, width)
    whole = np.zeros((height, width), np.uint8)
    whole[y:y + h, x:x + w] = mask
    assert out["size"] == [height, width] and isinstance(out["counts"], str)
    assert (mask_utils.decode(out) == whole).all()
    # and cropping it back gives the mask again
    back = crop_rle(out, [x, y, x + w, y + h])
    assert (mask_utils.decode(back) == mask).all()


def test_paste_rle_refuses_a_mask_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        paste_rle({"size": [2, 2], "counts": [0, 4]}, 3, 0, 4, 4)
