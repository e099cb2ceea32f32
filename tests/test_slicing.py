"""Slicing images and annotations into tiles (cocokit.slicing, ``cocokit slice``)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder, InputError, OptionError
from cocokit.clipping import polygon_areas, rle_area
from cocokit.errors import BadImagesError
from cocokit.geometry import parse_polygons
from cocokit.slicing import (
    auto_slice_params,
    axis_windows,
    overlap_pixels,
    slice_annotations,
    slice_dataset,
    tile_grid,
)

REPO = Path(__file__).resolve().parents[1]
SAHI = ("sahi-testdata", "coco_utils")


def real(real_data: Path, *parts: str) -> Path:
    p = real_data.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data file not available: {p}")
    return p


def n_axis(length: int, tile: int, overlap: float) -> int:
    """The tile-count formula (SAHI's grid): 1 + ceil((L - t) / (t - int(overlap * t)))."""
    if length <= tile:
        return 1
    return 1 + math.ceil((length - tile) / (tile - int(overlap * tile)))


def columns(anns: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Geometry columns (as slice_annotations takes them) from annotation dicts."""
    def objects(values: list[Any]) -> np.ndarray:
        out = np.empty(len(values), object)
        for i, v in enumerate(values):
            out[i] = v
        return out

    nan4 = [np.nan] * 4
    return {
        "bbox": np.array([a.get("bbox", nan4) for a in anns], float).reshape(-1, 4),
        "area": np.array([a.get("area", np.nan) for a in anns], float),
        "segmentation": objects([a.get("segmentation") for a in anns]),
        "keypoints": objects([a.get("keypoints") for a in anns]),
        "num_keypoints": np.array([a.get("num_keypoints", -1) for a in anns], np.int64),
    }


def rows_of(t: Any, k: int) -> dict[str, Any]:
    return {
        "tile": int(t.tile[k]), "source": int(t.source[k]), "bbox": t.bbox[k].tolist(),
        "area": float(t.area[k]), "segmentation": t.segmentation[k],
        "keypoints": t.keypoints[k], "num_keypoints": int(t.num_keypoints[k]),
    }


# -- the grid --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "size", "overlap", "xs", "ys", "tile"),
    [
        (900, 500, 512, 0.2, [0, 388], [0], (512, 500)),
        (1000, 600, 512, 0.2, [0, 410, 488], [0, 88], (512, 512)),  # step 512 - 102
        (1024, 512, 512, 0.0, [0, 512], [0], (512, 512)),
        (512, 512, 512, 0.2, [0], [0], (512, 512)),
        (300, 200, 512, 0.2, [0], [0], (300, 200)),  # smaller than a tile: one tile
        (1000, 700, (640, 480), (0.25, 0.5), [0, 360], [0, 220], (640, 480)),
        (2048, 1365, 512, 0.2, [0, 410, 820, 1230, 1536], [0, 410, 820, 853], (512, 512)),
    ],
)
def test_tile_grid_table(width: int, height: int, size: Any, overlap: Any, xs: list[int],
                         ys: list[int], tile: tuple[int, int]) -> None:
    g = tile_grid(width, height, size, overlap)
    expected = [[x, y, tile[0], tile[1]] for y in ys for x in xs]  # row by row
    assert g.tolist() == expected
    assert g.dtype == np.int64


@settings(max_examples=150, deadline=None)
@given(
    width=st.integers(1, 5000), height=st.integers(1, 5000), size=st.integers(64, 1024),
    overlap=st.sampled_from([0.0, 0.1, 0.2, 0.25, 0.5, 0.75]),
)
def test_tile_grid_invariants(width: int, height: int, size: int, overlap: float) -> None:
    g = tile_grid(width, height, size, overlap)
    assert len(g) == n_axis(width, size, overlap) * n_axis(height, size, overlap)
    x, y, w, h = g.T
    assert (x >= 0).all() and (y >= 0).all()
    assert (x + w <= width).all() and (y + h <= height).all()  # no tile leaves the image
    assert (w == min(size, width)).all() and (h == min(size, height)).all()  # none padded
    assert x.max() + w[0] == width and y.max() + h[0] == height  # last one ends at the edge
    # every column is covered: starts step by at most the tile size
    assert (np.diff(np.unique(x)) <= w[0]).all() and (np.diff(np.unique(y)) <= h[0]).all()


@pytest.mark.parametrize(
    ("size", "overlap"),
    [(0, 0.2), (-5, 0.2), ("big", 0.2), (512, 1.0), (512, -0.1), (512, (0.2, 0.2, 0.2))],
)
def test_tile_grid_rejects_bad_options(size: Any, overlap: Any) -> None:
    with pytest.raises(OptionError):
        tile_grid(1000, 1000, size, overlap)


def sahi_windows(width: int, height: int, size: Any, overlap: Any) -> list[list[int]]:
    """SAHI's own windows (sahi.slicing.get_slice_bboxes) as [x, y, w, h]; skips without sahi."""
    slicing = pytest.importorskip("sahi.slicing", reason="sahi is not installed")
    tw, th = size if isinstance(size, tuple) else (size, size)
    ox, oy = overlap if isinstance(overlap, tuple) else (overlap, overlap)
    boxes = slicing.get_slice_bboxes(height, width, th, tw, False, oy, ox)
    return [[x0, y0, x1 - x0, y1 - y0] for x0, y0, x1, y1 in boxes]


@pytest.mark.parametrize("size", [320, 512, 640, 1024, (640, 480), (333, 777)])
@pytest.mark.parametrize("overlap", [0.0, 0.1, 0.2, 0.25, 0.29, 0.5, 0.75, (0.2, 0.29)])
@pytest.mark.parametrize(("width", "height"),
                         [(1, 1), (300, 200), (512, 512), (513, 1000), (1000, 600),
                          (1920, 1080), (4000, 3000)])
def test_tile_grid_is_sahis_grid(width: int, height: int, size: Any, overlap: Any) -> None:
    assert tile_grid(width, height, size, overlap).tolist() == sahi_windows(
        width, height, size, overlap)


@pytest.mark.parametrize(("width", "height", "size", "overlap"),
                         [(5, 3, 1, 0.0), (50, 20, 7, 0.9), (41, 9, 8, 0.5), (100, 100, 3, 0.34)])
def test_small_tiles_are_sahis_grid(width: int, height: int, size: int, overlap: float) -> None:
    assert tile_grid(width, height, size, overlap).tolist() == sahi_windows(
        width, height, size, overlap)


def test_the_grid_steps_as_sahi_does() -> None:
    """512 at 0.2 steps 410 (SAHI's int(0.2 * 512) = 102 overlap), not floor(512 * 0.8)."""
    assert tile_grid(1400, 512, 512, 0.2)[:, 0].tolist() == [0, 410, 820, 888]
    assert axis_windows(1400, 512, 102)[0].tolist() == [0, 410, 820, 888]
    assert overlap_pixels(512, 0.2) == 102
    assert overlap_pixels(100, 0.29) == int(0.29 * 100) == 28  # float product, as SAHI


@pytest.mark.parametrize(("size", "overlap"), [(512, 0.2), (640, 0.25), (320, 0.1)])
def test_grid_on_visdrone_images_is_sahis(real_data: Path, size: int, overlap: float) -> None:
    """Every image of the VisDrone file in SAHI's test data: same windows as SAHI's,
    and as the compat layer's (cocokit.compat.sahi.get_slice_bboxes)."""
    from cocokit.compat import sahi as ck_sahi

    src = cocokit.load(real(real_data, *SAHI, "visdrone2019-det-train-first50image.json"))
    assert len(src.images) == 50
    n = 0
    for w, h in zip(src.images.width.tolist(), src.images.height.tolist(), strict=True):
        grid = tile_grid(w, h, size, overlap)
        assert grid.tolist() == sahi_windows(w, h, size, overlap)
        compat = ck_sahi.get_slice_bboxes(h, w, size, size, False, overlap, overlap)
        assert [[x, y, x + tw, y + th] for x, y, tw, th in grid.tolist()] == compat
        assert len(grid) == n_axis(w, size, overlap) * n_axis(h, size, overlap)
        n += len(grid)
    assert n > 50


@pytest.mark.parametrize("json_name", ["terrain1_coco.json", "terrain2_coco.json"])
def test_sliced_tiles_sit_where_sahi_puts_them(real_data: Path, tmp_path: Path,
                                               json_name: str) -> None:
    """slice_dataset (the CLI's path) cuts SAHI's windows out of real images."""
    src = cocokit.load(real(real_data, *SAHI, json_name))
    out, _ = slice_dataset(src, real(real_data, *SAHI), tmp_path, size=256, overlap=0.2,
                           keep_empty=True, workers=1)
    for i in range(len(src.images)):
        w, h = int(src.images.width[i]), int(src.images.height[i])
        got = [e["source_window"] for e in out.images.extra
               if e["source_image_id"] == int(src.images.id[i])]
        assert got == sahi_windows(w, h, 256, 0.2)


@pytest.mark.parametrize(
    ("width", "height", "side"),
    [(640, 480, (512, 480)), (300, 200, (300, 200)), (1920, 1080, (640, 640)),
     (4000, 3000, (800, 800)), (6000, 5312, (1024, 1024)), (20000, 9000, (1280, 1280))],
)
def test_auto_slice_params(width: int, height: int, side: tuple[int, int]) -> None:
    assert auto_slice_params(width, height) == (side, (0.2, 0.2))


# -- annotations: exact expected outputs ------------------------------------------------

SQUARE_5_15 = {"bbox": [5.0, 5.0, 10.0, 10.0], "area": 100.0,
               "segmentation": [[5, 5, 15, 5, 15, 15, 5, 15]]}


def test_polygon_crossing_a_tile_corner() -> None:
    t = slice_annotations(columns([SQUARE_5_15]), tile_grid(20, 20, 10, 0.0), 0.1)
    assert [rows_of(t, k) for k in range(len(t))] == [
        {"tile": 0, "source": 0, "bbox": [5, 5, 5, 5], "area": 25.0,
         "segmentation": [[5, 5, 5, 10, 10, 10, 10, 5]], "keypoints": None, "num_keypoints": -1},
        {"tile": 1, "source": 0, "bbox": [0, 5, 5, 5], "area": 25.0,
         "segmentation": [[0, 5, 0, 10, 5, 10, 5, 5]], "keypoints": None, "num_keypoints": -1},
        {"tile": 2, "source": 0, "bbox": [5, 0, 5, 5], "area": 25.0,
         "segmentation": [[5, 0, 5, 5, 10, 5, 10, 0]], "keypoints": None, "num_keypoints": -1},
        {"tile": 3, "source": 0, "bbox": [0, 0, 5, 5], "area": 25.0,
         "segmentation": [[0, 0, 0, 5, 5, 5, 5, 0]], "keypoints": None, "num_keypoints": -1},
    ]
    # a quarter is below a 0.3 threshold: dropped everywhere
    assert len(slice_annotations(columns([SQUARE_5_15]), tile_grid(20, 20, 10, 0.0), 0.3)) == 0


def test_u_shape_cut_in_two_keeps_both_pieces_in_one_annotation() -> None:
    # a U in a 30x40 image: legs x 0..10 and 20..30 from y 10 to 30, joined for y < 10
    u = {"bbox": [0.0, 0.0, 30.0, 30.0], "area": 700.0, "iscrowd": 0,
         "segmentation": [[0, 0, 30, 0, 30, 30, 20, 30, 20, 10, 10, 10, 10, 30, 0, 30]]}
    windows = np.array([[0, 0, 30, 20], [0, 20, 30, 20]])  # two rows, cut at y = 20
    t = slice_annotations(columns([u]), windows, 0.1)
    assert len(t) == 2
    top, bottom = rows_of(t, 0), rows_of(t, 1)
    assert top["tile"] == 0 and top["area"] == 500.0 and top["bbox"] == [0, 0, 30, 20]
    assert len(top["segmentation"]) == 1
    assert bottom["tile"] == 1
    # shifted by 20: two legs of 10x10, both kept, as two parts of one annotation
    assert bottom["segmentation"] == [[20, 0, 20, 10, 30, 10, 30, 0], [0, 0, 0, 10, 10, 10, 10, 0]]
    assert bottom["area"] == 200.0 and bottom["bbox"] == [0, 0, 30, 10]


def test_self_intersecting_polygon_is_repaired_not_skipped() -> None:
    bow = {"bbox": [0.0, 0.0, 10.0, 10.0], "area": 50.0,
           "segmentation": [[0, 0, 10, 10, 10, 0, 0, 10]]}  # a bow-tie: two triangles
    windows = np.array([[2, 0, 18, 10], [0, 0, 10, 10]])
    t = slice_annotations(columns([bow]), windows, 0.1)
    cut, whole = rows_of(t, 0), rows_of(t, 1)
    # cut at x = 2: the left triangle loses its tip; shifted by 2
    assert cut["segmentation"] == [[0, 2, 0, 8, 3, 5], [3, 5, 8, 10, 8, 0]]
    assert cut["area"] == 34.0 and cut["bbox"] == [0, 0, 8, 10]
    # wholly inside: copied as it is, with its own area and box
    assert whole["segmentation"] == [[0, 0, 10, 10, 10, 0, 0, 10]]
    assert whole["area"] == 50.0 and whole["bbox"] == [0, 0, 10, 10]


def test_crowd_rle_is_cropped_and_re_encoded() -> None:
    mask = np.zeros((20, 30), np.uint8)
    mask[4:16, 6:25] = 1  # 12 x 19 = 228 pixels
    mask[0, 0] = 1
    enc = mask_utils.encode(np.asfortranarray(mask))
    rle = {"size": [20, 30], "counts": enc["counts"].decode()}
    # uncompressed (list) counts, as the crowd annotations of COCO files have
    counts = []
    flat = mask.ravel(order="F")
    run, cur = 0, 0
    for v in flat:
        if v != cur:
            counts.append(run)
            run, cur = 0, v
        run += 1
    counts.append(run)
    crowd = {"bbox": [0.0, 0.0, 25.0, 16.0], "area": 229.0, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": counts}}
    assert rle_area(crowd["segmentation"]) == 229.0 == rle_area(rle)
    windows = tile_grid(30, 20, (15, 20), 0.0)  # two tiles side by side
    t = slice_annotations(columns([crowd]), windows, 0.0)
    assert len(t) == 2
    left, right = rows_of(t, 0), rows_of(t, 1)
    seg_l, seg_r = left["segmentation"], right["segmentation"]
    assert seg_l["size"] == [20, 15] and isinstance(seg_l["counts"], str)
    got_l = mask_utils.decode({**seg_l, "counts": seg_l["counts"].encode()})
    got_r = mask_utils.decode({**seg_r, "counts": seg_r["counts"].encode()})
    np.testing.assert_array_equal(got_l, mask[:, 0:15])
    np.testing.assert_array_equal(got_r, mask[:, 15:30])
    # pixel areas add up; boxes are those of the visible pixels, in tile coordinates
    assert (left["area"], right["area"]) == (1 + 12 * 9, 12 * 10)
    assert left["bbox"] == [0, 0, 15, 16] and right["bbox"] == [0, 4, 10, 12]


def test_keypoints_shift_and_outside_ones_become_unlabeled() -> None:
    person = {"bbox": [2.0, 2.0, 16.0, 6.0], "area": 96.0,
              "keypoints": [3, 3, 2, 12, 4, 1, 0, 0, 0, 17, 7, 2], "num_keypoints": 3}
    t = slice_annotations(columns([person]), tile_grid(20, 10, (10, 10), 0.0), 0.1)
    left, right = rows_of(t, 0), rows_of(t, 1)
    assert left["keypoints"] == [3, 3, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert left["num_keypoints"] == 1
    assert right["keypoints"] == [0, 0, 0, 2, 4, 1, 0, 0, 0, 7, 7, 2]
    assert right["num_keypoints"] == 2
    assert left["bbox"] == [2, 2, 8, 6] and right["bbox"] == [0, 2, 8, 6]
    assert left["area"] == right["area"] == 48.0  # a box-only annotation: w * h of the piece


def test_box_only_and_uncut_annotations_keep_their_values() -> None:
    anns = [
        {"bbox": [1.1, 2.2, 3.3, 4.4], "area": 12.34},  # inside tile 0: bit for bit
        {"bbox": [8.0, 1.0, 4.0, 2.0]},  # cut in two, no area: area stays absent
        {"bbox": [15.0, 5.0, 0.0, 3.0], "area": 0.0},  # a zero-width box: degenerate
    ]
    t = slice_annotations(columns(anns), tile_grid(20, 10, 10, 0.0), 0.1)
    got = [(r["tile"], r["source"], r["bbox"], r["area"]) for r in
           (rows_of(t, k) for k in range(len(t)))]
    assert got[0] == (0, 0, [1.1, 2.2, 3.3, 4.4], 12.34)
    assert got[1][:3] == (0, 1, [8.0, 1.0, 2.0, 2.0]) and math.isnan(got[1][3])
    assert got[2][:3] == (1, 1, [0.0, 1.0, 2.0, 2.0]) and math.isnan(got[2][3])
    assert got[3] == (1, 2, [5.0, 5.0, 0.0, 3.0], 0.0)
    assert len(got) == 4


def test_bad_min_area_ratio_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="min_area_ratio"):
        slice_annotations(columns([SQUARE_5_15]), tile_grid(20, 20, 10), 1.5)


# -- annotations: real data, no pixels needed --------------------------------------------


def test_overlap_zero_pieces_add_up_on_real_annotations(real_data: Path) -> None:
    """With overlap 0 the pieces of every polygon and RLE add up to the whole."""
    ds = cocokit.load(real(real_data, "coco-mini", "annotations", "instances_val2017.json"))
    anns = ds.annotations
    checked_poly = checked_rle = 0
    cols = {k: getattr(anns, k) for k in
            ("bbox", "area", "segmentation", "keypoints", "num_keypoints")}
    for i in range(len(ds.images)):
        rows = ds.annotation_rows(i)
        if not len(rows):
            continue
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        # windows that partition the image (the grid's last row and column move back
        # to end at the edge, so they overlap unless the size divides the image);
        # 10 px of margin catch the polygons that stick out of the image a little
        edges_x = [-10, *range(128, w, 128), w + 10]
        edges_y = [-10, *range(128, h, 128), h + 10]
        windows = np.array([[x0, y0, x1 - x0, y1 - y0]
                            for y0, y1 in itertools.pairwise(edges_y)
                            for x0, x1 in itertools.pairwise(edges_x)])
        t = slice_annotations({k: v[rows] for k, v in cols.items()}, windows, 0.0)
        sums = np.bincount(t.source, weights=t.area, minlength=len(rows))
        kinds = anns.segmentation_kind[rows]
        polys = parse_polygons(anns.segmentation, rows)
        geo = polygon_areas(polys)
        for j, r in enumerate(rows.tolist()):
            pieces = int(np.count_nonzero(t.source == j))
            if kinds[j] == 1 and geo[j] > 0:
                # a piece that is the whole keeps the file's area; cut pieces add up to
                # the geometric area, which is what COCO's polygon areas are
                whole = anns.area[r] if pieces == 1 else geo[j]
                assert sums[j] == pytest.approx(whole, rel=1e-9, abs=1e-6)
                checked_poly += 1
            elif kinds[j] in (2, 3):
                assert sums[j] == rle_area(anns.rle(r))
                checked_rle += 1
    assert checked_poly > 500 and checked_rle >= 5


# -- the dataset, with pixels ------------------------------------------------------------


def source_masks(ds: cocokit.Dataset, image_row: int) -> dict[int, np.ndarray]:
    """Union mask per category of the image's annotations, rasterized by pycocotools."""
    w, h = int(ds.images.width[image_row]), int(ds.images.height[image_row])
    out: dict[int, np.ndarray] = {}
    for r in ds.annotation_rows(image_row).tolist():
        rec = ds.annotations[r]
        seg = rec.get("segmentation")
        if isinstance(seg, dict):
            rle = mask_utils.frPyObjects(seg, h, w) if isinstance(seg["counts"], list) else seg
        elif seg:
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        else:
            continue
        m = mask_utils.decode(rle).astype(bool)
        out[rec["category_id"]] = out.get(rec["category_id"], np.zeros((h, w), bool)) | m
    return out


def check_sliced(src: cocokit.Dataset, out: cocokit.Dataset, out_dir: Path, json_path: Path,
                 size: int, overlap: float, image_dir: Path, lossless: bool) -> None:
    """Everything the issue asks of a sliced dataset, checked on real data."""
    # tile count equals the grid formula, image by image
    per_source = np.bincount(
        np.array([out.images[i]["source_image_id"] for i in range(len(out.images))]),
        minlength=int(src.images.id.max()) + 1)
    for i in range(len(src.images)):
        w, h = int(src.images.width[i]), int(src.images.height[i])
        assert per_source[src.images.id[i]] == n_axis(w, size, overlap) * n_axis(h, size, overlap)
    # the file validates, loads in pycocotools, and its tiles exist with the recorded size
    cocokit.save(out, json_path, image_ids="keep", annotation_ids="keep")
    report = cocokit.validate(cocokit.load(json_path))
    assert not report.errors, report.errors[:3]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(json_path))
    assert len(coco.imgs) == len(out.images) and len(coco.anns) == len(out.annotations)
    src_by_id = {int(src.images.id[i]): i for i in range(len(src.images))}
    for rec in out.images:
        tile = out_dir / rec["file_name"]
        with Image.open(tile) as im:
            assert im.size == (rec["width"], rec["height"])
        x, y, w, h = rec["source_window"]
        assert (w, h) == (rec["width"], rec["height"])
        assert rec["file_name"].endswith(f"_{x}_{y}_{w}_{h}{tile.suffix}")
        assert rec["source_file_name"] == src.images[src_by_id[rec["source_image_id"]]]["file_name"]
    # every clipped geometry lies inside its tile
    for aid, ann in coco.anns.items():
        img = coco.imgs[ann["image_id"]]
        W, H = img["width"], img["height"]
        bx, by, bw, bh = ann["bbox"]
        assert bx >= 0 and by >= 0 and bx + bw <= W + 1e-9 and by + bh <= H + 1e-9, aid
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            assert seg["size"] == [H, W]
        else:
            for ring in seg:
                xy = np.asarray(ring).reshape(-1, 2)
                assert (xy >= 0).all() and (xy[:, 0] <= W).all() and (xy[:, 1] <= H).all(), aid
    # drawing the annotations of tiles looks right: per category, the rasterized tile
    # annotations match the source masks (pycocotools) cropped to the window
    compared = 0
    for img_id, img in coco.imgs.items():
        if img_id % 3:
            continue
        x, y, w, h = img["source_window"]
        row = src_by_id[img["source_image_id"]]
        masks = source_masks(src, row)
        ann_ids = coco.getAnnIds(imgIds=[img_id])
        for cat, whole in masks.items():
            expected = whole[y:y + h, x:x + w]
            got = np.zeros((h, w), bool)
            for a in coco.loadAnns(ann_ids):
                if a["category_id"] == cat:
                    got |= coco.annToMask(a).astype(bool)
            if expected.sum() < 200:
                continue
            inter = np.logical_and(got, expected).sum()
            union = np.logical_or(got, expected).sum()
            assert inter / union > 0.9, (img["file_name"], cat, inter / union)
            compared += 1
    assert compared > 0
    # the pixels are those of the source window (after EXIF orientation)
    rec = out.images[len(out.images) // 2]
    x, y, w, h = rec["source_window"]
    with Image.open(image_dir / rec["source_file_name"]) as im:
        source = np.asarray(im.convert("RGB"))[y:y + h, x:x + w].astype(int)
    with Image.open(out_dir / rec["file_name"]) as im:
        tile = np.asarray(im.convert("RGB")).astype(int)
    if lossless:
        np.testing.assert_array_equal(tile, source)
    else:
        assert np.abs(tile - source).mean() < 3.0


@pytest.mark.parametrize(
    ("json_name", "size", "overlap", "fmt"),
    [("terrain1_coco.json", 512, 0.2, "jpg"), ("terrain2_coco.json", 256, 0.25, "png"),
     ("terrain2_coco.json", 300, 0.0, "same")],
)
def test_slice_sahi_terrain_images(real_data: Path, tmp_path: Path, json_name: str, size: int,
                                   overlap: float, fmt: Any) -> None:
    folder = real(real_data, *SAHI)
    src = cocokit.load(real(real_data, *SAHI, json_name))
    out, summary = slice_dataset(src, folder, tmp_path / "tiles", size=size, overlap=overlap,
                                 min_area_ratio=0.0, format=fmt, workers=1)
    assert summary.images == 1 and summary.tiles == len(out.images) and not summary.skipped
    check_sliced(src, out, tmp_path / "tiles", tmp_path / "out.json", size, overlap, folder,
                 lossless=fmt != "jpg")
    if fmt == "same":  # terrain2.png is a palette image: PNG tiles stay palette
        with Image.open(tmp_path / "tiles" / out.images[0]["file_name"]) as im:
            assert im.format == "PNG" and im.mode == "P"


def test_slice_coco_mini_val2017_images(real_data: Path, tmp_path: Path) -> None:
    full = cocokit.load(real(real_data, "coco-mini", "annotations", "instances_val2017.json"))
    folder = real(real_data, "coco-mini", "val2017")
    # a handful of images, including crowd RLE annotations
    crowd_images = np.unique(full.image_index[full.annotations.iscrowd == 1])
    rows = np.unique(np.concatenate([np.arange(6), crowd_images[:2]]))
    src = full.select_images(rows)
    out, summary = slice_dataset(src, folder, tmp_path / "tiles", size=256, overlap=0.2,
                                 min_area_ratio=0.0, workers=2)
    assert summary.images == len(rows)
    assert np.count_nonzero(out.annotations.iscrowd == 1) >= 2
    check_sliced(src, out, tmp_path / "tiles", tmp_path / "out.json", 256, 0.2, folder,
                 lossless=False)
    # category, iscrowd and the source's extra keys are kept
    rec = out.images[0]
    for key in ("license", "coco_url", "date_captured"):
        assert rec[key] == src.images[0][key]
    assert set(out.annotations.category_id) <= set(src.annotations.category_id)


def test_keypoints_on_real_persons(real_data: Path, tmp_path: Path) -> None:
    src = cocokit.load(real(real_data, "coco-mini", "annotations",
                            "person_keypoints_val2017.json"))
    rows = np.flatnonzero(src.annotation_counts > 0)[:4]
    src = src.select_images(rows)
    out, _ = slice_dataset(src, real(real_data, "coco-mini", "val2017"), tmp_path, size=256,
                           overlap=0.2, workers=1, keep_empty=False)
    n_with = 0
    for i in range(len(out.annotations)):
        rec = out.annotations[i]
        img = out.images[int(out.image_index[i])]
        kp = np.asarray(rec["keypoints"], float).reshape(-1, 3)
        vis = kp[:, 2] > 0
        assert (kp[vis, 0] <= img["width"]).all() and (kp[vis, 1] <= img["height"]).all()
        assert (kp[vis, :2] >= 0).all() and (kp[~vis] == 0).all()
        assert rec["num_keypoints"] == int(vis.sum())
        n_with += int(vis.any())
    assert n_with > 0


# -- pixels: modes, EXIF, missing files ------------------------------------------------


def one_image_dataset(name: str, width: int, height: int) -> cocokit.Dataset:
    b = DatasetBuilder()
    cat = b.add_category("thing")
    img = b.add_image(name, width=width, height=height)
    b.add_annotation(img, cat, polygon=[2, 2, width - 2, 2, width - 2, height - 2])
    return b.build()


def gradient(width: int, height: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)


@pytest.mark.parametrize(
    ("mode", "fmt", "tile_mode"),
    [("RGBA", "jpg", "RGB"), ("P", "jpg", "RGB"), ("L", "jpg", "L"), ("I;16", "jpg", "L"),
     ("LA", "jpg", "L"), ("CMYK", "jpg", "RGB"), ("RGBA", "png", "RGBA"), ("P", "png", "P"),
     ("I;16", "png", "I;16"), ("L", "png", "L")],
)
def test_image_modes(tmp_path: Path, mode: str, fmt: Any, tile_mode: str) -> None:
    rgb = Image.fromarray(gradient(60, 40), "RGB")
    if mode == "I;16":
        arr16 = (np.arange(60 * 40, dtype=np.uint16).reshape(40, 60) * 27).astype(np.uint16)
        img = Image.fromarray(arr16)
        assert img.mode == "I;16"
    elif mode == "P":
        img = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    else:
        img = rgb.convert(mode)
    name = "src.tif" if mode == "CMYK" else "src.png"
    img.save(tmp_path / name)
    ds = one_image_dataset(name, 60, 40)
    out, summary = slice_dataset(ds, tmp_path, tmp_path / "out", size=32, overlap=0.0,
                                 format=fmt, workers=1)
    assert summary.tiles == 4
    rec = out.images[3]
    x, y, w, h = rec["source_window"]
    with Image.open(tmp_path / "out" / rec["file_name"]) as tile:
        tile.load()
    assert tile.size == (w, h)
    assert tile.mode == tile_mode or (tile_mode == "I;16" and tile.mode in ("I;16", "I"))
    got = np.asarray(tile).astype(np.int64)
    with Image.open(tmp_path / name) as im:
        src = np.asarray(im).astype(np.int64)
    if mode == "I;16":
        expected = src[y:y + h, x:x + w] >> 8 if fmt == "jpg" else src[y:y + h, x:x + w]
        tol = 3 if fmt == "jpg" else 0
        assert np.abs(got - expected).max() <= tol
    elif fmt == "png":
        np.testing.assert_array_equal(got, src[y:y + h, x:x + w])


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    raw = gradient(40, 20)  # stored 40 wide, 20 high
    img = Image.fromarray(raw, "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: 20 wide, 40 high
    img.save(tmp_path / "rot.png", exif=exif)
    ds = one_image_dataset("rot.png", 20, 40)
    out, _ = slice_dataset(ds, tmp_path, tmp_path / "out", size=(20, 16), overlap=0.0,
                           format="png", workers=1)
    assert [r["source_window"] for r in out.images] == [[0, 0, 20, 16], [0, 16, 20, 16],
                                                        [0, 24, 20, 16]]
    oriented = np.rot90(raw, k=-1)  # 90 degrees clockwise
    assert oriented.shape[:2] == (40, 20)
    for rec in out.images:
        x, y, w, h = rec["source_window"]
        with Image.open(tmp_path / "out" / rec["file_name"]) as tile:
            np.testing.assert_array_equal(np.asarray(tile), oriented[y:y + h, x:x + w])
    # a record with the stored (unrotated) size does not match the oriented image
    wrong = one_image_dataset("rot.png", 40, 20)
    with pytest.raises(InputError, match=r"rot\.png.*after EXIF orientation"):
        slice_dataset(wrong, tmp_path, tmp_path / "out2", size=16, workers=1)


def two_images(tmp_path: Path, missing: str = "gone.jpg") -> cocokit.Dataset:
    Image.fromarray(gradient(50, 30), "RGB").save(tmp_path / "ok.jpg")
    b = DatasetBuilder()
    cat = b.add_category("thing")
    for name in (missing, "ok.jpg"):
        img = b.add_image(name, width=50, height=30)
        b.add_annotation(img, cat, bbox=[5, 5, 30, 20])
    return b.build()


@pytest.mark.parametrize("workers", [1, 2])
def test_missing_image_is_an_error_naming_it(tmp_path: Path, workers: int) -> None:
    ds = two_images(tmp_path)
    with pytest.raises(BadImagesError, match=r"gone\.jpg: image file not found") as e:
        slice_dataset(ds, tmp_path, tmp_path / "out", size=32, overlap=0.0, workers=workers)
    assert isinstance(e.value, InputError)
    assert [(Path(f).name, r) for f, r in e.value.failures] == [
        ("gone.jpg", "image file not found")]
    # the run failed, so the tiles of the good image are not left behind (issue 14):
    # no output folder, no staging folder beside it
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_every_bad_image_is_named_in_image_order(tmp_path: Path) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "folder.jpg").mkdir()
    Image.fromarray(gradient(50, 30), "RGB").save(tmp_path / "ok.jpg")
    b = DatasetBuilder()
    cat = b.add_category("thing")
    for name in ("junk.jpg", "ok.jpg", "gone.jpg", "folder.jpg"):
        b.add_annotation(b.add_image(name, width=50, height=30), cat, bbox=[1, 1, 5, 5])
    ds = b.build()
    for workers in (1, 2):
        with pytest.raises(BadImagesError) as e:
            slice_dataset(ds, tmp_path, tmp_path / f"out{workers}", size=32, workers=workers)
        names = [Path(f).name for f, _ in e.value.failures]
        assert names == ["junk.jpg", "gone.jpg", "folder.jpg"]
        assert "cannot read image" in e.value.failures[0][1]
        assert "not found" in e.value.failures[1][1]
        assert "3 image(s) could not be sliced" in str(e.value)


def test_unreadable_image_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg at all")
    ds = two_images(tmp_path, missing="junk.jpg")
    with pytest.raises(InputError, match=r"junk\.jpg: cannot read image"):
        slice_dataset(ds, tmp_path, tmp_path / "out", size=32, workers=1)


@pytest.mark.parametrize("option", ["skip_bad_images", "skip_missing"])
def test_skip_bad_images_reports_and_goes_on(tmp_path: Path, option: str) -> None:
    ds = two_images(tmp_path)
    out, summary = slice_dataset(ds, tmp_path, tmp_path / "out", size=32, overlap=0.0,
                                 workers=2, **{option: True})
    assert summary.images == 1 and len(summary.skipped) == 1
    path, reason = summary.skipped[0]
    assert path.endswith("gone.jpg") and "not found" in reason
    assert {r["source_file_name"] for r in out.images} == {"ok.jpg"}
    assert summary.tiles == len(out.images) == 2


def test_same_output_whatever_the_number_of_workers(real_data: Path, tmp_path: Path) -> None:
    full = cocokit.load(real(real_data, "coco-mini", "annotations", "instances_val2017.json"))
    src = full.select_images(np.arange(5))
    folder = real(real_data, "coco-mini", "val2017")
    docs, digests = [], []
    for workers in (1, 2, 3):
        out_dir = tmp_path / f"w{workers}"
        out, _ = slice_dataset(src, folder, out_dir, size=200, overlap=0.1, workers=workers)
        docs.append(cocokit.to_json(out, image_ids="keep", annotation_ids="keep"))
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(out_dir.iterdir())})
    assert docs[0] == docs[1] == docs[2]
    assert digests[0] == digests[1] == digests[2] and len(digests[0]) > 20


def test_drop_empty_tiles(tmp_path: Path) -> None:
    ds = two_images(tmp_path, missing="ok.jpg")  # both records point at ok.jpg ...
    ds = ds.select_images([1])  # ... keep one
    out, summary = slice_dataset(ds, tmp_path, tmp_path / "out", size=16, overlap=0.0,
                                 keep_empty=False, workers=1)
    # 50x30 in 16-px tiles: x 0, 16, 32, 34 and y 0, 14, 8 tiles. The 30x20 box at
    # (5, 5) has 600 px; the tiles at x 32 and 34 hold 3 and 1 columns of it (48 and
    # 16 px < 10 %), so the 4 tiles at x 0 and 16 keep it and 4 are empty
    assert summary.tiles == len(out.images) == 4 and summary.empty_tiles_dropped == 4
    assert [r["source_window"][:2] for r in out.images] == [[0, 0], [16, 0], [0, 14], [16, 14]]
    assert out.annotations.bbox.tolist() == [[5, 5, 11, 11], [0, 5, 16, 11], [5, 0, 11, 11],
                                             [0, 0, 16, 11]]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        r["file_name"] for r in out.images)


def test_input_is_not_changed_and_top_level_keys_are_kept(real_data: Path,
                                                           tmp_path: Path) -> None:
    src = cocokit.load(real(real_data, *SAHI, "terrain2_coco.json"))
    src = src.replace(extra={"info": {"description": "x"}, "licenses": [{"id": 1}]})
    before = cocokit.to_json(src, image_ids="keep", annotation_ids="keep")
    out, _ = slice_dataset(src, real(real_data, *SAHI), tmp_path, size=400, workers=1)
    assert cocokit.to_json(src, image_ids="keep", annotation_ids="keep") == before
    assert out.extra == src.extra and out.categories.records == src.categories.records


def test_colliding_tile_names_are_refused(tmp_path: Path) -> None:
    b = DatasetBuilder()
    cat = b.add_category("thing")
    for name in ("a.jpg", "a.png"):
        b.add_annotation(b.add_image(name, width=10, height=10), cat, bbox=[1, 1, 2, 2])
    with pytest.raises(InputError, match="same tile names"):
        slice_dataset(b.build(), tmp_path, tmp_path / "out", size=8, workers=1)


@pytest.mark.parametrize(
    ("option", "value"),
    [("format", "gif"), ("quality", 0), ("quality", 101), ("workers", 0),
     ("min_area_ratio", -0.1), ("size", 0), ("overlap", 1.0)],
)
def test_bad_options(tmp_path: Path, option: str, value: Any) -> None:
    ds = one_image_dataset("x.png", 10, 10)
    with pytest.raises(OptionError, match=option):
        slice_dataset(ds, tmp_path, tmp_path / "out", **{option: value})


def test_sub_folders_in_file_names_are_kept(tmp_path: Path) -> None:
    (tmp_path / "batch_1").mkdir()
    Image.fromarray(gradient(30, 20), "RGB").save(tmp_path / "batch_1" / "000006.jpg")
    ds = one_image_dataset("batch_1/000006.jpg", 30, 20)
    out, _ = slice_dataset(ds, tmp_path, tmp_path / "out", size=20, overlap=0.0, workers=1)
    assert [r["file_name"] for r in out.images] == ["batch_1/000006_0_0_20_20.jpg",
                                                    "batch_1/000006_10_0_20_20.jpg"]
    assert all((tmp_path / "out" / r["file_name"]).is_file() for r in out.images)


def test_auto_picks_the_grid_per_image(real_data: Path, tmp_path: Path) -> None:
    src = cocokit.load(real(real_data, *SAHI, "terrain1_coco.json"))
    out, _ = slice_dataset(src, real(real_data, *SAHI), tmp_path, auto=True, workers=1)
    (tw, th), (ox, oy) = auto_slice_params(2048, 1365)
    assert len(out.images) == n_axis(2048, tw, ox) * n_axis(1365, th, oy)
    assert {(r["width"], r["height"]) for r in out.images} == {(tw, th)}


# -- the command -----------------------------------------------------------------------


def test_cli_in_process(real_data: Path, tmp_path: Path) -> None:
    from cocokit.cli import app

    src = real(real_data, *SAHI, "terrain2_coco.json")
    result = CliRunner().invoke(app, [
        "slice", str(src), "--images", str(src.parent), "-o", str(tmp_path / "tiles"),
        "--size", "300x200", "--overlap", "0.1x0.2", "--image-format", "png", "--workers", "1",
        "--drop-negatives", "--min-area-ratio", "0.2"])
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "tiles" / "terrain2_coco.json").read_bytes())
    assert all(Path(tmp_path / "tiles" / i["file_name"]).is_file() for i in doc["images"])
    assert {(i["width"], i["height"]) for i in doc["images"]} == {(300, 200)}
    assert doc["annotations"] and all(i["file_name"].endswith(".png") for i in doc["images"])
    # the same through the library gives the same document
    ds, _ = slice_dataset(cocokit.load(src), src.parent, tmp_path / "lib", size=(300, 200),
                          overlap=(0.1, 0.2), format="png", keep_empty=False,
                          min_area_ratio=0.2, workers=1)
    assert msgspec.json.decode(cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")) == doc


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--size", "abc"], "--size"), (["--size", "0"], "--size"),
     (["--overlap", "1.5"], "--overlap"), (["--auto", "--size", "512"], "--auto")],
)
def test_cli_bad_options_exit_2(real_data: Path, tmp_path: Path, args: list[str], message: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    from cocokit.cli import main

    src = real(real_data, *SAHI, "terrain2_coco.json")
    code = main(["slice", str(src), "--images", str(src.parent), "-o", str(tmp_path), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_bad_image_is_named_and_exits_1(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from cocokit.cli import main

    cocokit.save(two_images(tmp_path), tmp_path / "in.json")
    args = ["slice", str(tmp_path / "in.json"), "--images", str(tmp_path), "-o",
            str(tmp_path / "out"), "-q", "--workers", "1", "--size", "32"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"failed {tmp_path / 'gone.jpg'}: image file not found" in err
    assert "1 image(s) could not be sliced" in err and "--skip-bad-images" in err
    assert not (tmp_path / "out" / "in.json").exists()  # no COCO file without the image
    assert main([*args, "--skip-bad-images"]) == 0
    assert "skipped" in capsys.readouterr().err
    doc = json.loads((tmp_path / "out" / "in.json").read_bytes())
    assert {i["source_file_name"] for i in doc["images"]} == {"ok.jpg"}


# -- fsspec locations ----------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_memory_urls_give_the_same_tiles_as_local_paths(
        real_data: Path, tmp_path: Path, memory_fs: Any, workers: int) -> None:
    fs, root = memory_fs
    src = real(real_data, *SAHI, "terrain2_coco.json")
    fs.pipe(f"{root}/in/terrain2.png", (src.parent / "terrain2.png").read_bytes())
    ds = cocokit.load(src)
    local, local_summary = slice_dataset(ds, src.parent, tmp_path / "local", size=400,
                                         workers=workers)
    mem, mem_summary = slice_dataset(ds, f"memory://{root}/in", f"memory://{root}/out",
                                     size=400, workers=workers)
    assert mem_summary == local_summary and mem_summary.tiles > 4
    assert cocokit.to_json(mem) == cocokit.to_json(local)
    written = {p.rsplit("/", 1)[1]: fs.cat_file(p) for p in fs.ls(f"{root}/out", detail=False)}
    assert written == {p.name: p.read_bytes() for p in (tmp_path / "local").iterdir()}


def test_memory_url_missing_image_is_named(memory_fs: Any) -> None:
    _, root = memory_fs
    b = DatasetBuilder()
    b.add_annotation(b.add_image("nope.jpg", width=20, height=20), b.add_category("c"),
                     bbox=[1, 1, 4, 4])
    for workers in (1, 2):
        with pytest.raises(BadImagesError) as e:
            slice_dataset(b.build(), f"memory://{root}/in", f"memory://{root}/out", size=8,
                          workers=workers)
        assert e.value.failures == [(f"memory://{root}/in/nope.jpg", "image file not found")]


def test_cli_writes_tiles_and_coco_file_to_a_url(real_data: Path, memory_fs: Any,
                                                 tmp_path: Path) -> None:
    from cocokit.cli import main

    fs, root = memory_fs
    src = real(real_data, *SAHI, "terrain1_coco.json")
    fs.pipe(f"{root}/in/terrain1.jpg", (src.parent / "terrain1.jpg").read_bytes())
    assert main(["slice", str(src), "-i", f"memory://{root}/in", "-o", f"memory://{root}/out",
                 "-q", "--workers", "1"]) == 0
    assert main(["slice", str(src), "-i", str(src.parent), "-o", str(tmp_path), "-q",
                 "--workers", "1"]) == 0
    assert fs.cat_file(f"{root}/out/terrain1_coco.json") == (
        tmp_path / "terrain1_coco.json").read_bytes()
    assert len(fs.ls(f"{root}/out")) == 21  # 20 tiles and the COCO file


def test_cli_subprocess(real_data: Path, tmp_path: Path) -> None:
    src = real(real_data, *SAHI, "terrain1_coco.json")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "slice", str(src), "--images", str(src.parent),
         "-o", str(tmp_path / "tiles"), "--coco-output", str(tmp_path / "sliced.json"),
         "--workers", "2", "--quality", "90"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sliced 1 images into 20 tiles" in proc.stderr
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "sliced.json"))
    assert len(coco.imgs) == 20 == len(list((tmp_path / "tiles").glob("*.jpg")))


def test_in_process_slicing_leaves_pillow_settings_alone(tmp_path: Path) -> None:
    Image.fromarray(gradient(40, 30), "RGB").save(tmp_path / "a.jpg")
    before = Image.core.get_blocks_max()
    slice_dataset(one_image_dataset("a.jpg", 40, 30), tmp_path, tmp_path / "out", size=16,
                  workers=1)
    assert Image.core.get_blocks_max() == before


def test_rerun_replaces_earlier_tiles_and_leaves_no_partial_files(tmp_path: Path) -> None:
    Image.fromarray(gradient(40, 30), "RGB").save(tmp_path / "a.png")
    ds = one_image_dataset("a.png", 40, 30)
    out_dir = tmp_path / "out"
    slice_dataset(ds, tmp_path, out_dir, size=20, format="jpg", quality=30, workers=1)
    sizes = {p.name: p.stat().st_size for p in out_dir.iterdir()}
    second, _ = slice_dataset(ds, tmp_path, out_dir, size=20, format="jpg", quality=100,
                              workers=1)
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted(r["file_name"] for r in second.images) == sorted(sizes)
    assert all((out_dir / n).stat().st_size > sizes[n] for n in names)  # rewritten


# -- streamed slicing (files bigger than memory) ---------------------------------------


@pytest.mark.parametrize("per_chunk", [1, 2, 5])
def test_slice_of_a_stream_writes_the_bytes_of_the_in_memory_path(
        real_data: Path, tmp_path: Path, per_chunk: int) -> None:
    from cocokit.io.stream import open_stream

    full = cocokit.load(real(real_data, "coco-mini", "annotations", "instances_val2017.json"))
    src = full.select_images(np.arange(5))
    cocokit.save(src, tmp_path / "in.json", image_ids="keep", annotation_ids="keep")
    folder = real(real_data, "coco-mini", "val2017")
    ds, expected = slice_dataset(cocokit.load(tmp_path / "in.json"), folder, tmp_path / "mem",
                                 size=256, overlap=0.1, keep_empty=False, workers=2)
    cocokit.save(ds, tmp_path / "mem.json", image_ids="keep", annotation_ids="keep")
    got = slice_dataset(open_stream(tmp_path / "in.json"), folder, tmp_path / "stream",
                        json_path=tmp_path / "stream.json", images_per_chunk=per_chunk,
                        size=256, overlap=0.1, keep_empty=False, workers=2)
    assert got == expected and got.tiles > 20
    assert (tmp_path / "stream.json").read_bytes() == (tmp_path / "mem.json").read_bytes()
    assert ({p.name: p.read_bytes() for p in (tmp_path / "stream").iterdir()}
            == {p.name: p.read_bytes() for p in (tmp_path / "mem").iterdir()})


def test_slice_of_a_stream_reports_bad_images_of_every_chunk(tmp_path: Path) -> None:
    from cocokit.io.stream import open_stream

    Image.fromarray(gradient(50, 30), "RGB").save(tmp_path / "ok.jpg")
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    b = DatasetBuilder()
    cat = b.add_category("thing")
    for name in ("gone.jpg", "ok.jpg", "junk.jpg"):
        b.add_annotation(b.add_image(name, width=50, height=30), cat, bbox=[1, 1, 9, 9])
    cocokit.save(b.build(), tmp_path / "in.json")
    out = tmp_path / "out"
    with pytest.raises(BadImagesError) as e:
        slice_dataset(open_stream(tmp_path / "in.json"), tmp_path, out, images_per_chunk=1,
                      size=32, workers=1)
    assert [Path(f).name for f, _ in e.value.failures] == ["gone.jpg", "junk.jpg"]
    assert not (out / "in.json").exists()
    summary = slice_dataset(open_stream(tmp_path / "in.json"), tmp_path, out,
                            images_per_chunk=1, size=32, workers=1, skip_bad_images=True)
    assert summary.images == 1 and len(summary.skipped) == 2
    doc = cocokit.load(out / "in.json")
    assert doc.images.id.tolist() == list(range(1, summary.tiles + 1))
    assert {r["source_file_name"] for r in doc.images} == {"ok.jpg"}


def test_slice_of_a_stream_refuses_colliding_tile_names_before_any_work(tmp_path: Path) -> None:
    from cocokit.io.stream import open_stream

    b = DatasetBuilder()
    b.add_image("a/x.jpg", width=20, height=20)
    b.add_image("b.jpg", width=20, height=20)
    b.add_image("a/x.png", width=20, height=20)  # the same tiles as a/x.jpg in jpg
    cocokit.save(b.build(), tmp_path / "in.json")
    with pytest.raises(InputError, match=r"images\[2\]\.file_name: 'a/x\.png' gives the same "
                       r"tile names as images\[0\]"):
        slice_dataset(open_stream(tmp_path / "in.json"), tmp_path, tmp_path / "out", size=8)
    assert not (tmp_path / "out").exists()


def test_slice_of_a_loaded_dataset_refuses_a_json_path(tmp_path: Path) -> None:
    # a loaded dataset's tiles are returned (to save); only a stream writes its COCO file
    b = DatasetBuilder()
    b.add_image("a.jpg", width=20, height=20)
    with pytest.raises(OptionError, match="json_path"):
        slice_dataset(b.build(), tmp_path, tmp_path / "out", json_path=tmp_path / "t.json",
                      size=8)  # type: ignore[call-overload]
    assert not (tmp_path / "out").exists()


def test_cli_stream_slices_to_the_same_file(real_data: Path, tmp_path: Path) -> None:
    from cocokit.cli import main

    src = real(real_data, *SAHI, "terrain2_coco.json")
    for mode in ("--stream", "--no-stream"):
        assert main(["slice", str(src), "-i", str(src.parent), "-o", str(tmp_path / mode),
                     "-q", "--workers", "1", "--size", "400", mode]) == 0
    a = (tmp_path / "--stream" / "terrain2_coco.json").read_bytes()
    assert a == (tmp_path / "--no-stream" / "terrain2_coco.json").read_bytes()


@pytest.mark.parametrize("before", ["missing", "empty", "earlier run"])
@pytest.mark.parametrize("coco_output", ["inside", "outside"])
def test_cli_failed_coco_write_leaves_the_output_as_it_was(
        real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], before: str, coco_output: str) -> None:
    """The COCO file is written before the staged tiles are moved: a disk full while
    writing it leaves no tile behind (and an earlier run's files as they were)."""
    import errno

    from cocokit.cli import main
    from cocokit.io import atomic

    src = real(real_data, *SAHI, "terrain2_coco.json")
    out = tmp_path / "tiles"
    args = ["slice", str(src), "-i", str(src.parent), "-o", str(out), "-q", "--workers", "1",
            "--size", "400", "--no-stream"]
    if coco_output == "outside":
        args += ["--coco-output", str(tmp_path / "tiles.json")]
    if before == "empty":
        out.mkdir()
    elif before == "earlier run":
        assert main([*args, "--size", "600"]) == 0
    state = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert (before == "earlier run") == any(p.suffix == ".jpg" for p in state)

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)  # tiles are written without fsync
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "no space left on the device" in err and "Traceback" not in err, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == state
    assert out.exists() == (before != "missing")
    assert not [p for p in tmp_path.iterdir() if "partial" in p.name]
    monkeypatch.undo()
    assert main(args) == 0  # and the same run with room on the disk writes it all
    target = tmp_path / "tiles.json" if coco_output == "outside" else out / src.name
    doc = json.loads(target.read_bytes())
    assert doc["images"] and all((out / i["file_name"]).is_file() for i in doc["images"])


@pytest.mark.parametrize("mode", ["--no-stream", "--stream"])
def test_cli_failed_tile_move_leaves_an_outside_coco_output_as_it_was(
        real_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], mode: str) -> None:
    """--coco-output outside the tiles folder and the staged tiles are one set: when
    moving the tiles into place fails, the COCO file keeps its old content."""
    import errno

    from cocokit.cli import main
    from cocokit.errors import OutputError
    from cocokit.io import staging

    src = real(real_data, *SAHI, "terrain2_coco.json")
    coco = tmp_path / "tiles.json"
    coco.write_bytes(b'{"old": 1}')
    args = ["slice", str(src), "-i", str(src.parent), "-o", str(tmp_path / "tiles"),
            "--workers", "1", "--size", "400", mode, "--coco-output", str(coco)]

    def fails(self: Any) -> None:  # a move that fails cleans up its staging folder
        self.discard()
        raise OutputError(str(tmp_path / "tiles"), f"cannot write: {errno.errorcode[28]}")

    monkeypatch.setattr(staging.Staging, "commit", fails)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "wrote" not in err, err  # nothing said written
    assert coco.read_bytes() == b'{"old": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles.json"]
