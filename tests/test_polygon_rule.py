"""One polygon rule for slicing, the clip transform and augmentation (cocokit.clipping).

The rule is the one pycocotools draws: an annotation's rings are parts whose union is
the shape, so a ring inside another adds nothing and two rings can enclose a real hole.
The three paths cut the same polygon at the same window, and every one of them must give
rings that pycocotools draws as the original mask cropped to the window.
"""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit.augment.apply import AnnotationColumns, transform_annotations
from cocokit.geometry import mask_api
from cocokit.slicing import slice_annotations
from cocokit.transforms import clip

from .conftest import real_path

Rings = list[list[float]]

# a 20x20 square with a 10x10 square inside: pycocotools fills it (area 400, no hole)
NESTED = [[0, 0, 20, 0, 20, 20, 0, 20], [5, 5, 15, 5, 15, 15, 5, 15]]
# two overlapping C shapes that draw a 20x20 frame around a 10x10 hole (area 300)
FRAME = [[0, 0, 12, 0, 12, 5, 5, 5, 5, 15, 12, 15, 12, 20, 0, 20],
         [8, 0, 20, 0, 20, 20, 8, 20, 8, 15, 15, 15, 15, 5, 8, 5]]


def _mask(rings: Rings, height: int, width: int) -> np.ndarray:
    mu = mask_api()
    rings = [r for r in rings if len(r) >= 6]
    if not rings:
        return np.zeros((height, width), np.uint8)
    return np.asarray(mu.decode(mu.merge(mu.frPyObjects(rings, height, width))))


def _shift(rings: Rings, dx: float, dy: float) -> Rings:
    return [[v - (dx if k % 2 == 0 else dy) for k, v in enumerate(r)] for r in rings]


def _plain(seg: Any) -> Rings:
    return msgspec.json.decode(seg) if isinstance(seg, msgspec.Raw) else [list(r) for r in seg]


def _three_paths(rings: Rings, window: tuple[int, int, int, int]) -> dict[str, Rings]:
    """The rings each path makes of ``rings`` cut to ``window`` (x, y, w, h), in the
    window's frame."""
    x, y, w, h = window
    xy = np.concatenate([np.reshape(r, (-1, 2)) for r in rings])
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    bbox = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
    seg = np.empty(1, object)
    seg[0] = rings
    tiles = slice_annotations(
        {"bbox": np.array([bbox]), "area": np.array([np.nan]), "segmentation": seg,
         "keypoints": np.array([None], object), "num_keypoints": np.array([-1])},
        np.array([[x, y, w, h]]), 0.0)
    assert len(tiles) == 1
    # the clip transform: the image is the window, the polygon moved into its frame
    b = cocokit.DatasetBuilder()
    b.add_category("thing")
    img = b.add_image("a.jpg", width=w, height=h)
    moved = _shift(rings, x, y)
    b.add_annotation(img, "thing", polygon=moved,
                     bbox=[bbox[0] - x, bbox[1] - y, bbox[2], bbox[3]])
    clipped, _ = clip(cocokit.load(cocokit.to_json(b.build())))
    # augmentation: a crop, i.e. a translation onto a w x h canvas
    m = np.array([[1.0, 0.0, -x], [0.0, 1.0, -y], [0.0, 0.0, 1.0]])
    cols = AnnotationColumns(np.array([1]), np.array([bbox]), np.array([np.nan]),
                             np.array([0], np.int8), seg.copy(), np.array([None], object),
                             np.array([-1]))
    aug = transform_annotations(cols, m, (x + w + 50, y + h + 50), (w, h), min_area=0.0)
    assert len(aug) == 1
    return {
        "slicing": _plain(tiles.segmentation[0]),
        "clip": _plain(clipped.annotations.segmentation[0]),
        "augment": _plain(aug.segmentation[0]),
    }


@pytest.mark.parametrize(("rings", "window", "expected_area"), [
    (NESTED, (6, 0, 30, 30), 14 * 20),  # the nested square is filled, as pycocotools does
    # the hole between the rings stays a hole, also in a cut piece (clipping the union
    # and writing back its outline would fill it: 18 * 20 and 18 * 18)
    (FRAME, (0, 0, 18, 30), 18 * 20 - 10 * 10),
    (FRAME, (2, 2, 30, 30), 18 * 18 - 10 * 10),
    (FRAME, (6, 0, 30, 30), 14 * 20 - 9 * 10),  # the hole opens onto the cut
    (FRAME, (0, 3, 10, 14), 10 * 14 - 5 * 10),  # cut through the hole on three sides
])
def test_three_paths_draw_the_cropped_pycocotools_mask(
    rings: Rings, window: tuple[int, int, int, int], expected_area: int,
) -> None:
    x, y, w, h = window
    full = _mask(rings, y + h + 1, x + w + 1)
    expected = full[y:y + h, x:x + w]
    assert int(expected.sum()) == expected_area  # what pycocotools draws, cropped
    for path, out in _three_paths(rings, window).items():
        got = _mask(out, h, w)
        assert np.array_equal(got, expected), f"{path}: {int(got.sum())} != {expected_area}"


def test_three_paths_give_the_same_rings() -> None:
    out = _three_paths(FRAME, (6, 0, 30, 30))
    norm = {k: sorted(tuple(np.round(r, 9)) for r in v) for k, v in out.items()}
    assert norm["slicing"] == norm["clip"] == norm["augment"]
    # the left C cut in two pieces, and the right C: parts, not one outline with a hole
    assert len(out["slicing"]) == 3


def test_real_lvis_polygon_same_rule_on_three_paths() -> None:
    ds = cocokit.load(real_path("lvis-val100", "lvis_val_100.json"))
    anns = ds.annotations
    # a real annotation with several parts, cut through the middle of its box
    row = next(i for i in range(len(anns))
               if len(anns.polygons.rings(i)) >= 3 and anns.bbox[i, 2] > 40)
    rings = _plain(anns.segmentation[row])
    bx, by, bw, bh = anns.bbox[row]
    window = (int(bx + bw / 2), int(by), int(bw), int(bh) + 2)
    x, y, w, h = window
    image = ds.images.take([ds.image_index[row]])
    full = _mask(rings, int(image.height[0]) + h, int(image.width[0]) + w)
    expected = full[y:y + h, x:x + w]
    assert expected.sum() > 0
    masks = {path: _mask(out, h, w) for path, out in _three_paths(rings, window).items()}
    # the three paths give the same mask, pixel for pixel
    assert np.array_equal(masks["slicing"], masks["clip"])
    assert np.array_equal(masks["slicing"], masks["augment"])
    # and it is the cropped original, up to pixels on the cut line
    differ = int((masks["slicing"] != expected).sum())
    assert differ <= h, f"{differ} pixels differ from the cropped pycocotools mask"


@pytest.mark.parametrize(("rings", "union", "sums"), [
    ([[0, 0, 4, 0, 4, 4, 0, 4], [10, 0, 12, 0, 12, 2, 10, 2]], 20.0, 20.0),  # apart
    (NESTED, 400.0, 500.0),  # the inner square is inside the outer one: counted once
    (FRAME, 300.0, 340.0),  # the two C shapes (170 each) overlap in two 4x5 blocks
])
def test_polygon_areas_union_and_sums(rings: Rings, union: float, sums: float) -> None:
    from cocokit.clipping import polygon_areas
    from cocokit.geometry import Polygons

    polys = Polygons.from_rings([[np.array(r, float) for r in rings]])
    assert polygon_areas(polys)[0] == pytest.approx(union)
    assert polygon_areas(polys, union=False)[0] == pytest.approx(sums)
