"""The one segmentation-kind classifier (geometry.segmentation_kind) on values and JSON text."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit.geometry import (
    RLE_KINDS,
    Polygons,
    SegmentationKind,
    annotation_areas,
    box_corners,
    min_area_rectangles,
    oriented_boxes,
    polygon_rings,
    ring_areas,
    segmentation_kind,
    segmentation_kinds,
    segmentation_rle,
)

from .conftest import real_path

K = SegmentationKind

CASES: list[tuple[Any, SegmentationKind]] = [
    (None, K.NONE),
    ([[0, 0, 10, 0, 10, 10]], K.POLYGON),
    ([], K.POLYGON),  # an empty polygon list is still a list (validate says it is empty)
    ((np.array([0.0, 0, 1, 0, 1, 1]),), K.POLYGON),
    ({"size": [4, 4], "counts": [0, 16]}, K.RLE_UNCOMPRESSED),
    ({"size": [4, 4], "counts": "04L4"}, K.RLE_COMPRESSED),
    ({"size": [4, 4], "counts": b"04L4"}, K.RLE_COMPRESSED),
    ({"size": [4, 4]}, K.INVALID),  # no counts
    ({"size": [4, 4], "counts": 7}, K.INVALID),
    ("polygon", K.INVALID),
    (12, K.INVALID),
]


@pytest.mark.parametrize(("value", "kind"), CASES, ids=[f"{k.name}-{i}" for i, (_, k) in
                                                         enumerate(CASES)])
def test_kind_of_a_value(value: Any, kind: SegmentationKind) -> None:
    assert segmentation_kind(value) is kind


JSON_CASES: list[tuple[bytes, SegmentationKind]] = [
    (b"null", K.NONE),
    (b"[[0, 0, 10, 0, 10, 10]]", K.POLYGON),
    (b'{"size": [4, 4], "counts": [0, 16]}', K.RLE_UNCOMPRESSED),
    (b'{"counts":"04L4","size":[4,4]}', K.RLE_COMPRESSED),
    (b'{"size": [4, 4],\n "counts" :\t"04L4"}', K.RLE_COMPRESSED),
    (b'{"size": [4, 4]}', K.INVALID),
    (b'{"size": [4, 4], "counts": 7}', K.INVALID),
    # a second "counts" inside another key: decoded, the top-level one decides
    (b'{"note": {"counts": [1]}, "size": [4, 4], "counts": "04L4"}', K.RLE_COMPRESSED),
    # an escaped key is no "counts" key for the byte scan; decoding finds it
    (b'{"size": [4, 4], "co\\u0075nts": [0, 16]}', K.RLE_UNCOMPRESSED),
    (b'"polygon"', K.INVALID),
    (b"3", K.INVALID),
]


@pytest.mark.parametrize(("text", "kind"), JSON_CASES)
def test_kind_of_json_text_equals_kind_of_its_value(text: bytes, kind: SegmentationKind) -> None:
    assert segmentation_kind(msgspec.Raw(text)) is kind
    assert segmentation_kind(msgspec.json.decode(text)) is kind


def test_rle_kinds_and_column() -> None:
    values = [v for v, _ in CASES]
    column = np.empty(len(values), object)
    column[:] = values
    kinds = segmentation_kinds(column)
    assert kinds.dtype == np.int8
    assert kinds.tolist() == [int(k) for _, k in CASES]
    assert [K(k).is_rle for k in kinds] == [k in RLE_KINDS for _, k in CASES]


@pytest.mark.parametrize(("parts", "expected"), [
    # polygons and crowd RLE (counts lists)
    (("coco-mini", "annotations", "instances_val2017.json"), {K.POLYGON, K.RLE_UNCOMPRESSED}),
    (("lvis-val100", "lvis_val_100.json"), {K.POLYGON}),
    # compressed RLE (counts strings) of a results file
    (("cocoapi-val2014-100", "instances_val2014_fakesegm100_results.json"), {K.RLE_COMPRESSED}),
])
def test_real_files_raw_and_decoded_agree(parts: tuple[str, ...],
                                          expected: set[SegmentationKind]) -> None:
    path = real_path(*parts)
    if parts[-1].endswith("_results.json"):  # a results list: segmentations of each record
        segs = [r.get("segmentation") for r in msgspec.json.decode(path.read_bytes())]
        raws = [None if s is None else msgspec.Raw(msgspec.json.encode(s)) for s in segs]
    else:
        anns = cocokit.load(path).annotations
        raws = list(anns.segmentation)
        segs = [None if r is None else msgspec.json.decode(r) for r in raws]
        # the table's cached column is the same classifier
        assert anns.segmentation_kind.tolist() == [int(segmentation_kind(r)) for r in raws]
    from_raw = [segmentation_kind(r) for r in raws]
    assert from_raw == [segmentation_kind(s) for s in segs]
    assert set(from_raw) == expected


@pytest.mark.parametrize(("points", "expected"), [
    # a rectangle comes back as it is, clockwise on an image (y down)
    ([[0, 0], [10, 0], [10, 5], [0, 5]], [[0, 0], [10, 0], [10, 5], [0, 5]]),
    ([[0, 5], [10, 5], [10, 0], [0, 0]], [[0, 0], [10, 0], [10, 5], [0, 5]]),
    # a diamond: its own 4 points are the smallest rectangle
    ([[0, 0], [4, 4], [8, 0], [4, -4], [4, 0]], {(0, 0), (4, 4), (8, 0), (4, -4)}),
    # collinear points: their bounds, a flat rectangle
    ([[0, 0], [1, 0], [3, 0]], [[0, 0], [3, 0], [3, 0], [0, 0]]),
])
def test_min_area_rectangles(points: list[list[float]], expected: Any) -> None:
    (rect,) = min_area_rectangles([np.array(points, float)])
    if isinstance(expected, set):
        assert {tuple(p) for p in np.round(rect, 9).tolist()} == expected
    else:
        assert rect.tolist() == expected
    x, y = rect[:, 0], rect[:, 1]
    assert float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y)) >= 0


def test_min_area_rectangles_cover_the_points() -> None:
    import shapely

    rng = np.random.default_rng(0)
    sets = [rng.normal(size=(int(n), 2)) * 50 for n in rng.integers(3, 30, size=50)]
    for pts, rect in zip(sets, min_area_rectangles(sets), strict=True):
        poly = shapely.Polygon(rect)
        assert poly.buffer(1e-9).covers(shapely.MultiPoint(pts))
        assert abs(poly.area - shapely.MultiPoint(pts).minimum_rotated_rectangle.area) < 1e-6
    assert np.isnan(min_area_rectangles([np.zeros((0, 2))])).all()


def test_box_corners_go_clockwise_from_the_top_left() -> None:
    assert box_corners(np.array([[1, 2, 3, 4]], float)).tolist() == [
        [[1, 2], [4, 2], [4, 6], [1, 6]]]


# (segmentation, bbox) -> (corners, kept, rotated)
ORIENTED = [
    ([[10, 10, 50, 10, 50, 30, 10, 30]], [10, 10, 40, 20],
     [[10, 10], [50, 10], [50, 30], [10, 30]], True, False),  # 4 points: as they are
    ([[0, 0, 4, 0, 4, 2, 0, 2, 0, 1]], [0, 0, 4, 2],
     [[0, 0], [4, 0], [4, 2], [0, 2]], False, True),  # 5 points: their rectangle
    ([[0, 0, 2, 0, 2, 2], [5, 5, 6, 5, 6, 6, 5, 6]], [0, 0, 6, 6],
     None, False, True),  # two parts: one rectangle around both
    (None, [1, 2, 3, 4], [[1, 2], [4, 2], [4, 6], [1, 6]], False, False),  # a box
    ({"size": [10, 10], "counts": "PP3"}, [0, 0, 2, 2],
     [[0, 0], [2, 0], [2, 2], [0, 2]], False, False),  # an RLE mask: its box
]


@pytest.mark.parametrize(("seg", "bbox", "corners", "kept", "rotated"), ORIENTED)
def test_oriented_boxes(seg: Any, bbox: list[float], corners: Any, kept: bool,
                        rotated: bool) -> None:
    segs = np.empty(1, object)
    segs[0] = seg
    kinds = np.array([int(segmentation_kind(seg))])
    got, k, r = oriented_boxes(segs, np.array([0]), kinds, np.array([bbox], float))
    assert (bool(k[0]), bool(r[0])) == (kept, rotated)
    if corners is not None:
        assert sorted(map(tuple, np.round(got[0], 9).tolist())) == sorted(map(tuple, corners))
    else:  # contains every point of both parts, and is a rectangle of positive area
        import shapely

        rect = shapely.Polygon(got[0])
        assert rect.area > 0 and rect.buffer(1e-9).contains(
            shapely.MultiPoint([(0, 0), (2, 0), (2, 2), (5, 5), (6, 5), (6, 6), (5, 6)]))


# -- segmentation_rle: one conversion to a pycocotools mask --------------------------------

SQUARE = [2.0, 2.0, 12.0, 2.0, 12.0, 9.0, 2.0, 9.0]
FAR = [20, 14, 27, 14, 27, 19]


def _pycocotools_rle(seg: Any, h: int, w: int) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    if isinstance(seg, dict):
        return mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
    return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))


@pytest.mark.parametrize("seg", [
    [SQUARE],
    [SQUARE, FAR],  # two parts: their union
    {"size": [24, 30], "counts": [30, 40, 10, 640]},  # uncompressed
    "compressed",
    "raw",
], ids=["polygon", "two-rings", "uncompressed", "compressed", "json-text"])
def test_segmentation_rle_is_pycocotools_mask(seg: Any) -> None:
    from pycocotools import mask as mask_utils

    h, w = 24, 30
    if seg == "compressed":
        seg = _pycocotools_rle([SQUARE, FAR], h, w)
        seg = {"size": seg["size"], "counts": seg["counts"].decode("ascii")}
    value: Any = msgspec.Raw(msgspec.json.encode([SQUARE])) if seg == "raw" else seg
    want = _pycocotools_rle([SQUARE] if seg == "raw" else seg, h, w)
    got = segmentation_rle(value, h, w)
    assert got is not None
    assert (mask_utils.decode(got) == mask_utils.decode(want)).all()
    assert mask_utils.area(got) == mask_utils.area(want) > 0


@pytest.mark.parametrize("seg", [None, [], [[0, 0, 5, 5]], [[1, 1, 9, 9], [3, 3]]])
def test_segmentation_rle_of_no_mask_is_none(seg: Any) -> None:
    assert segmentation_rle(seg, 10, 10) is None


def test_segmentation_rle_leaves_out_rings_of_two_points() -> None:
    """A ring of 4 numbers encloses nothing: left out, wherever it stands (pycocotools
    reads a first one as a box and refuses the list)."""
    from pycocotools import mask as mask_utils

    want = mask_utils.decode(_pycocotools_rle([SQUARE], 24, 30))
    for seg in ([[20, 20, 25, 22], SQUARE], [SQUARE, [20, 20, 25, 22]]):
        got = segmentation_rle(seg, 24, 30)
        assert got is not None and (mask_utils.decode(got) == want).all()


# -- ring_areas: the one shoelace ---------------------------------------------------------


def test_ring_areas_are_the_shoelace_areas() -> None:
    import shapely

    rng = np.random.default_rng(7)
    rings = [rng.random((k, 2)) * 100 for k in (3, 4, 9, 30)]
    rings.insert(2, np.zeros((0, 2)))  # a ring without vertices
    offsets = np.r_[0, np.cumsum([len(r) for r in rings])]
    coords = np.concatenate(rings)
    got = ring_areas(coords, offsets)
    want = [shapely.Polygon(r).area if len(r) else 0.0 for r in rings]
    assert np.allclose(got, want, rtol=1e-12) and got[2] == 0.0
    assert (ring_areas(coords.ravel(), offsets) == got).all()  # flat [x, y, ...] alike
    assert ring_areas(np.array([[0, 0], [4, 0], [4, 3]]), np.array([0, 3]))[0] == 6.0
    # clockwise or not, the area; NaN where a vertex is NaN
    assert ring_areas(np.array([[0, 0], [4, 3], [4, 0]]), np.array([0, 3]))[0] == 6.0
    assert np.isnan(ring_areas(np.array([[0, 0], [np.nan, 0], [4, 3]]), np.array([0, 3])))[0]
    assert ring_areas(np.zeros((0, 2)), np.array([0])).shape == (0,)


def test_ring_areas_of_polygons_layout() -> None:
    polys = Polygons.from_rings([[[0, 0, 10, 0, 10, 10, 0, 10]], [],
                                 [[0, 0, 2, 0, 0, 2], [5, 5, 6, 5, 6, 6, 5, 6]]])
    assert ring_areas(polys.coords, polys.ring_offsets).tolist() == [100.0, 2.0, 1.0]


def test_signed_ring_areas_keep_the_direction() -> None:
    """Positive for a ring clockwise on an image (y down), negative the other way; the
    same magnitude as the area; 0 for a ring without vertices or area."""
    import shapely

    on_image_clockwise = [[0, 0], [4, 0], [4, 3], [0, 3]]  # right, then down
    coords = np.array(on_image_clockwise + on_image_clockwise[::-1] + [[0, 0], [5, 0]],
                      np.float64)
    offsets = np.array([0, 4, 8, 8, 10])
    got = ring_areas(coords, offsets, signed=True)
    assert got.tolist() == [12.0, -12.0, 0.0, 0.0]
    assert (np.abs(got) == ring_areas(coords, offsets)).all()
    rng = np.random.default_rng(3)
    angle = np.sort(rng.random(12)) * 2 * np.pi  # a star-shaped (simple) ring
    star = np.stack([np.cos(angle), np.sin(angle)], 1) * (10 + 40 * rng.random((12, 1)))
    for ring in (star, star[::-1]):
        signed = ring_areas(ring, np.array([0, 12]), signed=True)[0]
        # counter-clockwise in shapely's y-up axes when the shoelace sum is positive
        assert (signed > 0) == shapely.LinearRing(ring).is_ccw
        assert np.isclose(abs(signed), shapely.Polygon(ring).area, rtol=1e-12)


FLAT = [0, 0, 10, 0, 10, 10]


@pytest.mark.parametrize(("polygon", "rings"), [
    (FLAT, [FLAT]),                                   # one flat ring: wrapped
    ([FLAT, [1, 2, 3, 4, 5, 6]], [FLAT, [1, 2, 3, 4, 5, 6]]),  # rings: as they are
    ([], []),
    ((0.5, 1.5, 2, 3, 4, 5), [[0.5, 1.5, 2, 3, 4, 5]]),  # a flat tuple
    ([np.float64(1), np.int64(2)], [[1.0, 2]]),     # numpy numbers are numbers
    ([(0, 0, 1, 1, 1, 0)], [(0, 0, 1, 1, 1, 0)]),    # a tuple or array is a ring
    (np.array([[0, 0, 1, 1, 1, 0]]), [[0, 0, 1, 1, 1, 0]]),
])
def test_polygon_rings(polygon: Any, rings: Any) -> None:
    got = polygon_rings(polygon)
    assert [np.asarray(r).tolist() for r in got] == [np.asarray(r).tolist() for r in rings]


def test_polygon_rings_leaves_its_argument_alone() -> None:
    flat, nested = list(FLAT), [list(FLAT)]
    assert polygon_rings(flat) is not flat and polygon_rings(nested) is not nested
    assert flat == FLAT and nested == [FLAT]


def test_annotation_areas_are_what_coco_states_and_validate_checks() -> None:
    """A polygon's area is its shoelace area summed over rings (COCO's own values, on
    every polygon of coco-mini), a mask's its pixel count; None, an RLE-less empty
    polygon or a malformed ring give NaN without stopping the others."""
    ds = cocokit.load(real_path("coco-mini", "annotations", "instances_val2017.json"))
    anns = ds.annotations
    rows = np.flatnonzero(anns.segmentation_kind == K.POLYGON)
    ii = ds.image_index[rows]
    got = annotation_areas(anns.segmentation[rows], ds.images.height[ii], ds.images.width[ii])
    np.testing.assert_allclose(got, anns.area[rows], rtol=1e-12)
    seg = np.empty(6, object)
    seg[:] = [[[0, 0, 10, 0, 10, 10, 0, 10]], [[0, 0, 4, 0, 4, 4], [10, 10, 12, 10, 12, 12]],
              None, {"size": [4, 4], "counts": [2, 3, 11]}, [[0, 0, 1, 1]], [[0, 0, 1, 1, 2]]]
    out = annotation_areas(seg, np.full(6, 20), np.full(6, 20))
    assert out[:2].tolist() == [100.0, 10.0] and out[3] == 3.0
    assert np.isnan(out[[2, 4, 5]]).all()
