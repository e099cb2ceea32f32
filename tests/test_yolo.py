"""YOLO export/import: the Ultralytics format's documented rules, round trips on real
COCO files, multi-part polygons, negatives, crowd, sizes, atomicity and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder
from cocokit.cli import app
from cocokit.dataset import plain
from cocokit.errors import InputError, IntegrityError, OptionError
from cocokit.io import yolo
from cocokit.io.formats import yolo as formats_yolo
from cocokit.io.yolo import (
    SIZES_FILE,
    image_size,
    join_rings,
    labels_only_note,
    load_data_yaml,
    read_yolo,
    split_rings,
    write_yolo,
)

REPO = Path(__file__).resolve().parents[1]

# (COCO file, its image folder) under ../shared/data/real
CASES = {
    "coco-mini": ("coco-mini/annotations/instances_val2017.json", "coco-mini/val2017"),
    "tiny-train": ("tiny-coco-images/annotations/instances_train2017.json",
                   "tiny-coco-images/images/train2017"),
    "tiny-val": ("tiny-coco-images/annotations/instances_val2017.json",
                 "tiny-coco-images/images/val2017"),
}


def _overlap(rings: list) -> float:
    """Area shared by two parts of a multi-part polygon."""
    polys = [shapely.Polygon(np.asarray(r, float).reshape(-1, 2)) for r in rings]
    return sum(polys[i].intersection(polys[j]).area
               for i in range(len(polys)) for j in range(i + 1, len(polys)))


def _case(real_data: Path, name: str) -> tuple[cocokit.Dataset, Path]:
    ann, imgs = CASES[name]
    return cocokit.load(real_data / ann), real_data / imgs


# -- the format's rules, checked independently of the writer -----------------------------


def _ultralytics_label_path(image: str) -> str:
    """Ultralytics' img2label_paths: last /images/ -> /labels/, suffix -> .txt."""
    sa, sb = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return sb.join(image.rsplit(sa, 1)).rsplit(".", 1)[0] + ".txt"


def _check_rules(root: Path, task: str) -> tuple[dict, dict[str, list[list[float]]]]:
    """Check an export against the documented Ultralytics rules; returns data.yaml and
    the parsed rows of each image (by path relative to its split folder)."""
    data = load_data_yaml(root / "data.yaml")
    assert "train" in data and "val" in data  # both required by Ultralytics
    names = data["names"]
    assert isinstance(names, dict) and sorted(names) == list(range(len(names)))
    assert data["nc"] == len(names)
    assert Path(data["path"]) == root.resolve()
    rows_by_image: dict[str, list[list[float]]] = {}
    role_values = [data[k] for k in ("train", "val", "test") if data.get(k)]
    for split in sorted({v for val in role_values for v in ([val] if isinstance(val, str)
                                                            else val)}):
        img_root = Path(data["path"]) / split
        images = sorted(p for p in img_root.rglob("*") if p.is_file() or p.is_symlink())
        assert images, f"no images under {img_root}"
        for img in images:
            label = Path(_ultralytics_label_path(str(img)))
            assert label.is_file(), f"no label file (negatives need an empty one): {label}"
            text = label.read_text()
            assert text == "" or text.endswith("\n")
            rows = [[float(v) for v in line.split()] for line in text.splitlines()]
            for r in rows:
                assert r[0] == int(r[0]) and 0 <= r[0] < len(names)
                coords = np.array(r[1:])
                if task == "pose":  # the visibility flags are not coordinates
                    coords = np.delete(coords, np.arange(6, len(coords), 3))
                assert coords.min() >= 0.0 and coords.max() <= 1.0
                if task == "detect":
                    assert len(r) == 5 and r[3] > 0 and r[4] > 0
                elif task == "pose":  # the box, then kpt_shape K x 3 (x, y, visibility)
                    k, ndim = data["kpt_shape"]
                    assert len(r) == 5 + k * ndim and r[3] > 0 and r[4] > 0
                    assert set(r[7::3]) <= {0, 1, 2}
                elif task == "obb":  # 4 corners
                    assert len(r) == 9
                else:  # one polygon of >= 3 points per row, every row of the file
                    assert len(r) >= 7 and len(r) % 2 == 1
            rows_by_image[img.relative_to(img_root).as_posix()] = rows
    return data, rows_by_image


@pytest.mark.parametrize("task", ["detect", "segment"])
@pytest.mark.parametrize("case", ["coco-mini", "tiny-train"])
def test_export_follows_ultralytics_rules(real_data: Path, tmp_path: Path, case: str,
                                          task: str) -> None:
    ds, img_dir = _case(real_data, case)
    before = cocokit.to_json(ds)
    summary = write_yolo(ds, tmp_path / "y", task=task, image_dir=img_dir)  # type: ignore[arg-type]
    assert cocokit.to_json(ds) == before  # the input is not touched
    _, rows = _check_rules(tmp_path / "y", task)
    anns = ds.annotations
    crowd = anns.iscrowd == 1
    assert summary.splits["train"].skipped_crowd == int(crowd.sum()) > 0
    assert summary.rows == int((~crowd).sum())
    assert sum(len(r) for r in rows.values()) == summary.rows
    # images are symlinks to the source files
    for f in ds.images.file_name.tolist():
        link = tmp_path / "y" / "images" / "train" / f
        assert link.is_symlink() and link.resolve() == (img_dir / f).resolve()


@pytest.mark.parametrize("task", ["detect", "segment"])
def test_class_index_is_category_order_not_coco_id(real_data: Path, tmp_path: Path,
                                                   task: str) -> None:
    """The SAHI trap: COCO ids run 1..90 with gaps; indices must be 0..79 matching names."""
    ds, img_dir = _case(real_data, "coco-mini")
    write_yolo(ds, tmp_path / "y", task=task, image_dir=img_dir)  # type: ignore[arg-type]
    data, rows = _check_rules(tmp_path / "y", task)
    names = data["names"]
    assert [names[i] for i in range(len(names))] == ds.categories.name.tolist()
    anns = ds.annotations
    off = 0
    for i, f in enumerate(ds.images.file_name.tolist()):
        r = ds.annotation_rows(i)
        r = r[anns.iscrowd[r] != 1]
        expected = Counter(ds.categories.name_of(c) for c in anns.category_id[r].tolist())
        got = Counter(names[int(row[0])] for row in rows[f])
        assert got == expected, f
        off += int(np.count_nonzero(anns.category_id[r] - 1 != ds.category_index[r]))
    assert off > 0  # ids and indices differ for this file: the mapping was exercised
    table = ds.categories.id_of("dining table")
    assert table == 67 and names[60] == "dining table"


# -- round trips -------------------------------------------------------------------------


def _pairs(ds: cocokit.Dataset, back: cocokit.Dataset) -> list[tuple[int, int]]:
    """(row in ds, row in back) of each non-crowd annotation, matched by image and order."""
    by_name = {f: i for i, f in enumerate(back.images.file_name.tolist())}
    out = []
    for i, f in enumerate(ds.images.file_name.tolist()):
        rows = [r for r in ds.annotation_rows(i).tolist() if ds.annotations.iscrowd[r] != 1]
        brows = back.annotation_rows(by_name[f]).tolist()
        assert len(rows) == len(brows), f
        out += list(zip(rows, brows, strict=True))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_boxes(real_data: Path, tmp_path: Path, case: str) -> None:
    ds, img_dir = _case(real_data, case)
    write_yolo(ds, tmp_path / "y", image_dir=img_dir)
    back = read_yolo(tmp_path / "y")
    assert sorted(back.images.file_name.tolist()) == sorted(ds.images.file_name.tolist())
    by_name = {f: i for i, f in enumerate(ds.images.file_name.tolist())}
    rows = [by_name[f] for f in back.images.file_name.tolist()]
    # sizes read from the JPEG headers equal the COCO records
    assert back.images.width.tolist() == ds.images.width[rows].tolist()
    assert back.images.height.tolist() == ds.images.height[rows].tolist()
    assert list(back.categories) == list(ds.categories)  # ids, names, supercategories
    pairs = np.array(_pairs(ds, back))
    a, b = ds.annotations, back.annotations
    assert (a.category_id[pairs[:, 0]] == b.category_id[pairs[:, 1]]).all()
    np.testing.assert_allclose(b.bbox[pairs[:, 1]], a.bbox[pairs[:, 0]], rtol=1e-6, atol=1e-9)
    assert (b.iscrowd == 0).all() and np.isnan(b.area).sum() == 0
    cocokit.to_json(back)  # exports under the contract


def _same_ring(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to the starting vertex, within float precision."""
    if a.shape != b.shape:
        return False
    for k in np.flatnonzero((np.abs(a - b[0]) < 1e-9).all(axis=1)):
        if np.allclose(np.roll(a, -k, axis=0), b, rtol=1e-12, atol=1e-10):
            return True
    return False


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_polygons(real_data: Path, tmp_path: Path, case: str) -> None:
    ds, img_dir = _case(real_data, case)
    summary = write_yolo(ds, tmp_path / "y", task="segment", image_dir=img_dir)
    assert summary.splits["train"].box_as_polygon == 0
    back = read_yolo(tmp_path / "y")
    a, b = ds.annotations, back.annotations
    multi = 0
    for ra, rb in _pairs(ds, back):
        orig = [np.array(r, float).reshape(-1, 2) for r in plain(a.segmentation[ra])]
        got = [np.array(r, float).reshape(-1, 2) for r in plain(b.segmentation[rb])]
        assert len(orig) == len(got), ra
        assert all(_same_ring(o, g) for o, g in zip(orig, got, strict=True)), ra
        multi += len(orig) > 1
    assert multi > 0  # multi-part polygons were joined on export and split on import


def test_keep_joined_import_gives_one_ring_with_same_mask(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "coco-mini")
    write_yolo(ds, tmp_path / "y", task="segment", image_dir=img_dir)
    parts = read_yolo(tmp_path / "y")
    joined = read_yolo(tmp_path / "y", split_polygons=False)
    checked = 0
    for r in range(len(parts.annotations)):
        rings = plain(parts.annotations.segmentation[r])
        one = plain(joined.annotations.segmentation[r])
        assert len(one) == 1
        if len(rings) < 2 or _overlap(rings) > 0:  # overlaps: the even-odd fill of one ring
            continue                                  # leaves them empty
        i = parts.image_index[r]
        h, w = int(parts.images.height[i]), int(parts.images.width[i])
        union = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, h, w)))
        single = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(one, h, w)))
        assert (union == single).all()
        checked += 1
    assert checked > 20


# -- multi-part polygons -----------------------------------------------------------------


def test_join_rings_masks_and_inverse_on_real_polygons(real_data: Path) -> None:
    ds, _ = _case(real_data, "coco-mini")
    a = ds.annotations
    multi = np.flatnonzero(a.polygons.ring_count > 1)
    assert len(multi) > 20
    for r in multi.tolist():
        rings = [np.array(x, float).reshape(-1, 2) for x in plain(a.segmentation[r])]
        joined = join_rings(rings)
        # every vertex kept once, plus: first and last ring closed (+2), each middle ring
        # walked in two parts sharing its exit vertex and closed at its entry (+2)
        assert len(joined) == sum(map(len, rings)) + 2 * (len(rings) - 1)
        assert {tuple(p) for p in joined.tolist()} == {tuple(p) for r in rings for p in r.tolist()}
        i = ds.image_index[r]
        h, w = int(ds.images.height[i]), int(ds.images.width[i])
        union = mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(
            [x.ravel().tolist() for x in rings], h, w)))
        single = mask_utils.area(mask_utils.frPyObjects([joined.ravel().tolist()], h, w))[0]
        if _overlap(rings) == 0:
            assert single == union
        else:  # even-odd fill: the overlap is lost, nothing else
            assert union - 2 * _overlap(rings) - 2 <= single < union
        parts = split_rings(joined)
        assert parts is not None and len(parts) == len(rings)
        assert all(_same_ring(o, p) for o, p in zip(rings, parts, strict=True))


def _square(x: float, y: float, s: float = 10.0) -> np.ndarray:
    return np.array([[x, y], [x + s, y], [x + s, y + s], [x, y + s]], float)


def test_join_links_closest_vertices_without_mirroring() -> None:
    # middle ring entered from the left at vertex 3 and left to the right at vertex 1:
    # Ultralytics mirrors such a ring without renumbering; here links stay at the closest
    left, right = _square(0, 0), _square(40, 0)
    middle = np.array([[25, 0], [30, 0], [30, 10], [20, 10], [20, 0]], float)
    joined = join_rings([left, middle, right])
    pts = list(map(tuple, joined.tolist()))
    edges = set(zip(pts, pts[1:] + pts[:1], strict=True))
    # each bridge is walked both ways between the closest vertices of the two rings
    for p, q in [((10.0, 0.0), (20.0, 0.0)), ((30.0, 0.0), (40.0, 0.0))]:
        assert (p, q) in edges and (q, p) in edges
    assert len(joined) == 4 + 5 + 4 + 2 + 2  # closed first and last ring, middle split in two
    parts = split_rings(joined)
    assert parts is not None
    assert all(_same_ring(o, p) for o, p in zip([left, middle, right], parts, strict=True))


def test_touching_rings_get_a_bridge_of_nonzero_length() -> None:
    a, b = _square(0, 0), _square(10, 10)  # they share the corner (10, 10)
    joined = join_rings([a, b])
    pts = joined.tolist()
    assert all(p != q for p, q in zip(pts, pts[1:] + pts[:1], strict=True))
    parts = split_rings(joined)
    assert parts is not None and len(parts) == 2
    assert _same_ring(a, parts[0]) and _same_ring(b, parts[1])


@st.composite
def _ring_sets(draw: st.DrawFn) -> list[np.ndarray]:
    """2..6 rings of 3..12 distinct points, each inside its own cell of a grid, in any
    order of cells (so links run in every direction)."""
    n = draw(st.integers(2, 6))
    cells = draw(st.permutations(list(range(9))))[:n]
    rings = []
    for c in cells:
        k = draw(st.integers(3, 12))
        pts = draw(st.lists(st.tuples(st.integers(0, 999), st.integers(0, 999)), min_size=k,
                            max_size=k, unique=True))
        x0, y0 = (c % 3) * 1000.0, (c // 3) * 1000.0
        rings.append(np.array([(x0 + x / 10, y0 + y / 10) for x, y in pts]))
    return rings


@settings(max_examples=150, deadline=None)
@given(_ring_sets())
def test_split_rings_inverts_join_rings(rings: list[np.ndarray]) -> None:
    joined = join_rings(rings)
    assert len(joined) == sum(map(len, rings)) + 2 * (len(rings) - 1)
    parts = split_rings(joined)
    assert parts is not None and len(parts) == len(rings)
    for ring, part in zip(rings, parts, strict=True):
        assert _same_ring(ring, part)


def test_split_rings_leaves_simple_polygons_alone() -> None:
    assert split_rings(_square(0, 0)) is None
    # a closing vertex repeated is not a join either
    assert split_rings(np.vstack([_square(0, 0), [[0.0, 0.0]]])) is None
    assert len(join_rings([_square(3, 4)])) == 4


# -- negatives, crowd, clipping, precision -----------------------------------------------


def test_negatives_get_empty_label_files(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "tiny-train")
    negatives = {f for f, n in zip(ds.images.file_name.tolist(), ds.annotation_counts.tolist(),
                                   strict=True) if n == 0}
    assert negatives == {"000000226111.jpg", "000000058636.jpg"}
    summary = write_yolo(ds, tmp_path / "y", image_dir=img_dir)
    assert summary.splits["train"].negatives == 2
    for f in negatives:
        label = tmp_path / "y" / "labels" / "train" / f.replace(".jpg", ".txt")
        assert label.is_file() and label.read_bytes() == b""
    back = read_yolo(tmp_path / "y")
    counts = dict(zip(back.images.file_name.tolist(), back.annotation_counts.tolist(),
                      strict=True))
    assert all(counts[f] == 0 for f in negatives) and len(back.images) == len(ds.images)


def test_image_with_only_crowd_annotations_is_a_negative(tmp_path: Path) -> None:
    b = DatasetBuilder()
    b.add_category("person")
    img = b.add_image("a.jpg", width=100, height=50)
    b.add_annotation(img, "person", rle={"size": [50, 100], "counts": [10, 20, 4970]}, iscrowd=1)
    ds = b.build()
    s = write_yolo(ds, tmp_path / "skip", images="none")
    assert s.splits["train"].negatives == 1 and s.splits["train"].skipped_crowd == 1
    assert (tmp_path / "skip" / "labels" / "train" / "a.txt").read_bytes() == b""
    s = write_yolo(ds, tmp_path / "keep", images="none", crowd="keep", task="segment")
    assert s.splits["train"].rows == 1 and s.splits["train"].box_as_polygon == 1
    row = (tmp_path / "keep" / "labels" / "train" / "a.txt").read_text().split()
    assert row[0] == "0" and len(row) == 9  # the RLE's box as a 4-corner polygon


def test_crowd_keep_writes_every_annotation(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "coco-mini")
    s = write_yolo(ds, tmp_path / "y", image_dir=img_dir, crowd="keep", images="none")
    assert s.rows == len(ds.annotations) and s.splits["train"].skipped_crowd == 0


def test_clip_and_degenerate_boxes(tmp_path: Path) -> None:
    b = DatasetBuilder()
    b.add_category("thing")
    img = b.add_image("a.png", width=200, height=100)
    b.add_annotation(img, "thing", bbox=[-10, 10, 50, 20])     # crosses the left edge
    b.add_annotation(img, "thing", bbox=[10, 10, 0, 20])       # no width: skipped
    b.add_annotation(img, "thing", bbox=[250, 10, 10, 10])     # outside: nothing left
    b.add_annotation(img, "thing", polygon=[190, 90, 210, 90, 210, 110, 190, 110])
    ds = b.build()
    s = write_yolo(ds, tmp_path / "d", images="none").splits["train"]
    assert (s.rows, s.skipped_empty, s.clipped) == (2, 2, 2)
    rows = [list(map(float, ln.split())) for ln in
            (tmp_path / "d" / "labels" / "train" / "a.txt").read_text().splitlines()]
    assert rows[0] == [0, 20 / 200, 20 / 100, 40 / 200, 20 / 100]
    assert rows[1] == [0, 195 / 200, 95 / 100, 10 / 200, 10 / 100]
    s = write_yolo(ds, tmp_path / "s", images="none", task="segment").splits["train"]
    assert (s.rows, s.skipped_empty, s.box_as_polygon, s.clipped) == (2, 2, 1, 2)
    s = write_yolo(ds, tmp_path / "n", images="none", clip=False).splits["train"]
    assert (s.rows, s.clipped) == (3, 0)
    rows = [list(map(float, ln.split())) for ln in
            (tmp_path / "n" / "labels" / "train" / "a.txt").read_text().splitlines()]
    assert rows[0] == [0, 15 / 200, 20 / 100, 50 / 200, 20 / 100]
    assert rows[1] == [0, 255 / 200, 15 / 100, 10 / 200, 10 / 100]


def test_precision_option(real_data: Path, tmp_path: Path) -> None:
    ds, _ = _case(real_data, "tiny-val")
    write_yolo(ds, tmp_path / "y", images="none", precision=6)
    values = [v for f in (tmp_path / "y" / "labels" / "train").glob("*.txt")
              for ln in f.read_text().splitlines() for v in ln.split()[1:]]
    assert values and all(len(v.replace(".", "").lstrip("0")) <= 6 or "e" in v for v in values)
    back = read_yolo(tmp_path / "y", sizes=ds)
    pairs = np.array(_pairs(ds, back))
    np.testing.assert_allclose(back.annotations.bbox[pairs[:, 1]],
                               ds.annotations.bbox[pairs[:, 0]], rtol=0, atol=1e-2)


# -- image sizes -------------------------------------------------------------------------


def _jpeg(path: Path, size: tuple[int, int], orientation: int | None) -> None:
    im = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    if orientation is not None:
        exif[274] = orientation
    im.save(path, "JPEG", exif=exif.tobytes())


@pytest.mark.parametrize(("orientation", "expected"),
                         [(None, (40, 20)), (1, (40, 20)), (3, (40, 20)), (6, (20, 40)),
                          (8, (20, 40)), (5, (20, 40)), (7, (20, 40))])
def test_image_size_applies_exif_quarter_turns(tmp_path: Path, orientation: int | None,
                                               expected: tuple[int, int]) -> None:
    _jpeg(tmp_path / "a.jpg", (40, 20), orientation)
    assert image_size(tmp_path / "a.jpg") == expected


def test_image_size_png_and_errors(tmp_path: Path) -> None:
    Image.new("L", (33, 12)).save(tmp_path / "g.png")
    assert image_size(tmp_path / "g.png") == (33, 12)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(InputError, match=r"bad\.jpg"):
        image_size(tmp_path / "bad.jpg")
    with pytest.raises(InputError, match="not found"):
        image_size(tmp_path / "missing.jpg")


def test_real_image_sizes_and_modes(real_data: Path) -> None:
    utils = real_data / "sahi-testdata" / "coco_utils"
    assert image_size(utils / "terrain2.png") == (1024, 682)       # palette PNG
    assert image_size(utils / "terrain2_gray.png") == (1024, 682)  # grayscale
    assert image_size(utils / "terrain1.jpg") == (2048, 1365)


def test_export_refuses_sizes_that_disagree_with_the_file(tmp_path: Path) -> None:
    _jpeg(tmp_path / "r.jpg", (40, 20), 6)  # shows as 20 x 40
    b = DatasetBuilder()
    b.add_category("x")
    b.add_annotation(b.add_image("r.jpg", width=40, height=20), "x", bbox=[1, 1, 5, 5])
    ds = b.build()
    with pytest.raises(InputError, match="20x40"):
        write_yolo(ds, tmp_path / "y", image_dir=tmp_path)
    assert not (tmp_path / "y").exists()
    s = write_yolo(ds, tmp_path / "y", image_dir=tmp_path, check_sizes=False, images="copy")
    assert s.splits["train"].image_files == 1
    assert not (tmp_path / "y" / "images" / "train" / "r.jpg").is_symlink()
    back = read_yolo(tmp_path / "y")
    assert (back.images.width[0], back.images.height[0]) == (20, 40)


def test_images_none_and_sizes_table(real_data: Path, tmp_path: Path) -> None:
    ds, _ = _case(real_data, "tiny-val")
    s = write_yolo(ds, tmp_path / "y", images="none", task="segment")
    assert not (tmp_path / "y" / "images").exists()
    assert labels_only_note("train") in s.notes
    # the export's own sizes table reads the labels back without images or --sizes
    table = tmp_path / "y" / "labels" / "train" / SIZES_FILE
    assert json.loads(table.read_text()) == {f: [w, h] for f, w, h in zip(
        ds.images.file_name.tolist(), ds.images.width.tolist(), ds.images.height.tolist(),
        strict=True)}
    own = read_yolo(tmp_path / "y")
    assert sorted(own.images.file_name.tolist()) == sorted(ds.images.file_name.tolist())
    table.unlink()
    with pytest.raises(InputError, match="sizes table"):
        read_yolo(tmp_path / "y")
    ann_file = real_data / CASES["tiny-val"][0]
    for sizes in (ann_file, ds, {f: [w, h] for f, w, h in zip(
            ds.images.file_name.tolist(), ds.images.width.tolist(), ds.images.height.tolist(),
            strict=True)}):
        back = read_yolo(tmp_path / "y", sizes=sizes)  # type: ignore[arg-type]
        assert sorted(back.images.file_name.tolist()) == sorted(ds.images.file_name.tolist())
        pairs = np.array(_pairs(ds, back))
        np.testing.assert_allclose(back.annotations.bbox[pairs[:, 1]],
                                   ds.annotations.bbox[pairs[:, 0]], rtol=1e-6, atol=1e-9)


# -- several splits, existing folders, atomicity -----------------------------------------


def test_split_mapping_and_split_by_split_export(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "coco-mini")
    order = np.random.default_rng(7).permutation(len(ds.images))
    parts = {"train": ds.select_images(np.sort(order[:60])),
             "val": ds.select_images(np.sort(order[60:]))}
    s = write_yolo(parts, tmp_path / "a", image_dir=img_dir)
    assert not s.val_is_train and s.splits["val"].images == 19
    data, _ = _check_rules(tmp_path / "a", "detect")
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    val = read_yolo(tmp_path / "a", split="val")
    assert sorted(val.images.file_name.tolist()) == sorted(parts["val"].images.file_name.tolist())
    both = read_yolo(tmp_path / "a")
    assert len(both.images) == 79
    assert all(f.startswith(("images/train/", "images/val/")) for f in both.images.file_name)

    # one split at a time into the same folder: data.yaml gains each split
    s1 = write_yolo(parts["train"], tmp_path / "b", image_dir=img_dir)
    assert s1.val_is_train
    assert load_data_yaml(tmp_path / "b" / "data.yaml")["val"] == "images/train"
    assert len(read_yolo(tmp_path / "b").images) == 60  # val names the same folder
    s2 = write_yolo(parts["val"], tmp_path / "b", split_name="val", image_dir=img_dir)
    assert not s2.val_is_train
    assert (tmp_path / "a" / "data.yaml").read_text().replace(str(tmp_path / "a"), "X") == \
        (tmp_path / "b" / "data.yaml").read_text().replace(str(tmp_path / "b"), "X")


def test_splits_must_share_categories(real_data: Path, tmp_path: Path) -> None:
    a, _ = _case(real_data, "coco-mini")
    b = cocokit.load(real_data / "sahi-testdata" / "coco_utils" / "terrain1_coco.json")
    with pytest.raises(InputError, match="other categories"):
        write_yolo({"train": a, "val": b}, tmp_path / "y", images="none")
    write_yolo(b, tmp_path / "y", images="none")
    with pytest.raises(InputError, match="other class names"):
        write_yolo(a, tmp_path / "y", images="none", split_name="val")


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}


def test_failed_export_changes_nothing(real_data: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ds, img_dir = _case(real_data, "tiny-val")
    out = tmp_path / "y"
    write_yolo(ds, out, image_dir=img_dir)
    (out / "labels" / "train.cache").write_bytes(b"stale")
    before = _snapshot(out)
    # a missing image is found before anything is written
    with pytest.raises(InputError, match="not found"):
        write_yolo(ds, out, image_dir=tmp_path)
    assert _snapshot(out) == before
    # a failure in the middle of writing leaves the old split and no temporary folders
    real = yolo._polygon_lines

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(yolo, "_polygon_lines", boom)
    with pytest.raises(RuntimeError):
        write_yolo(ds, out, image_dir=img_dir, task="segment")
    assert _snapshot(out) == before
    assert not [p for p in out.rglob(".*")]
    monkeypatch.setattr(yolo, "_polygon_lines", real)
    write_yolo(ds, out, image_dir=img_dir, task="segment")
    assert not (out / "labels" / "train.cache").exists()  # Ultralytics' stale cache removed
    assert not [p for p in out.rglob(".*")]
    assert _snapshot(out) != before


def test_existing_image_files_are_never_replaced(real_data: Path, tmp_path: Path) -> None:
    """Re-export into a dataset whose images live in images/<split>: labels only."""
    ds, img_dir = _case(real_data, "tiny-val")
    out = tmp_path / "y"
    write_yolo(ds, out, image_dir=img_dir, images="copy")
    back = read_yolo(out)  # file_name relative to images/train
    before = _snapshot(out / "images")
    with pytest.raises(InputError, match="already holds image files"):
        write_yolo(back, out, image_dir=out / "images" / "train", images="link")
    with pytest.raises(InputError, match="already holds image files"):
        write_yolo(back, out, image_dir=img_dir, images="copy")
    assert _snapshot(out / "images") == before
    s = write_yolo(back, out, images="none", task="segment")
    assert s.splits["train"].images == 6 and _snapshot(out / "images") == before
    _check_rules(out, "segment")


def test_integrity_problems_write_nothing(tmp_path: Path) -> None:
    b = DatasetBuilder()
    b.add_category("x")
    b.add_image("a.jpg", width=10, height=10)
    b.add_image("a.png", width=10, height=10)
    with pytest.raises(IntegrityError, match=r"both need labels/train/a\.txt"):
        write_yolo(b.build(), tmp_path / "y", images="none")
    b2 = DatasetBuilder()
    b2.add_category("x")
    b2.add_annotation(b2.add_image("a.jpg", width=10, height=10) + 5, "x", bbox=[0, 0, 1, 1])
    with pytest.raises(IntegrityError, match="names no image"):
        write_yolo(b2.build(), tmp_path / "y", images="none")
    assert not (tmp_path / "y").exists()


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"task": "pose"}, "task"), ({"images": "move"}, "images"), ({"crowd": "drop"}, "crowd"),
    ({"precision": 0}, "precision"), ({"split_name": "names"}, "split_name"),
    ({"split_name": "a/b"}, "split_name"),
])
def test_bad_options(tmp_path: Path, kwargs: dict, option: str) -> None:
    b = DatasetBuilder()
    b.add_category("x")
    b.add_image("a.jpg", width=10, height=10)
    with pytest.raises(OptionError) as e:
        write_yolo(b.build(), tmp_path / "y", **{"images": "none", **kwargs})
    assert e.value.option == option


def test_file_names_with_folders(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "batch_1").mkdir(parents=True)
    Image.new("RGB", (20, 10)).save(src / "batch_1" / "0001.jpg")
    b = DatasetBuilder()
    b.add_category("x")
    b.add_annotation(b.add_image("batch_1/0001.jpg", width=20, height=10), "x", bbox=[2, 2, 4, 4])
    write_yolo(b.build(), tmp_path / "y", image_dir=src)
    _, rows = _check_rules(tmp_path / "y", "detect")
    assert list(rows) == ["batch_1/0001.jpg"] and len(rows["batch_1/0001.jpg"]) == 1
    back = read_yolo(tmp_path / "y")
    assert back.images.file_name.tolist() == ["batch_1/0001.jpg"]


# -- reading YOLO datasets made elsewhere --------------------------------------------------


ULTRA_YAML = """\
# Ultralytics-style data.yaml (comments, list names, a path that does not exist here)
path: ../datasets/mini  # dataset root dir
train: images/train # train images (relative to 'path')
val: val.txt
test: # test images (optional)

# Classes
names: [cat, 'hot dog', "traffic light"]
"""


def _make_foreign(root: Path) -> None:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    (root / "images" / "val").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    Image.new("RGB", (100, 50)).save(root / "images" / "train" / "a.png")
    Image.new("RGB", (10, 20)).save(root / "images" / "train" / "b.jpg")
    Image.new("RGB", (30, 30)).save(root / "images" / "val" / "c.jpg")
    (root / "labels" / "train" / "a.txt").write_text(
        "2 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.3 0.1 0.3 0.3\n")
    (root / "labels" / "val" / "c.txt").write_text("0 0.5 0.5 1 1\n")
    (root / "val.txt").write_text("./images/val/c.jpg\n")
    (root / "data.yaml").write_text(ULTRA_YAML)


def test_read_foreign_dataset(tmp_path: Path) -> None:
    _make_foreign(tmp_path)
    ds = read_yolo(tmp_path)
    assert [c["name"] for c in ds.categories] == ["cat", "hot dog", "traffic light"]
    assert ds.categories.id.tolist() == [1, 2, 3]
    assert ds.images.file_name.tolist() == ["images/train/a.png", "images/train/b.jpg",
                                            "images/val/c.jpg"]
    assert ds.images.width.tolist() == [100, 10, 30]
    a = ds.annotations
    assert a.category_id.tolist() == [3, 2, 1]
    np.testing.assert_allclose(a.bbox[0], [40, 15, 20, 20])
    assert plain(a.segmentation[1]) == [[10.0, 5.0, 30.0, 5.0, 30.0, 15.0]]
    np.testing.assert_allclose(a.bbox[1], [10, 5, 20, 10])
    assert a.area[1] > 0 and a.area[0] == 400
    assert ds.annotation_counts.tolist() == [2, 0, 1]
    train = read_yolo(tmp_path / "data.yaml", split="train")
    assert train.images.file_name.tolist() == ["a.png", "b.jpg"]
    with pytest.raises(OptionError):
        read_yolo(tmp_path, split="test")  # empty in the YAML


ROBOFLOW_YAML = """\
train: ../train/images
val: ../valid/images
test: ../test/images

nc: 2
names: ['car', 'truck']

roboflow:
  workspace: someone
  project: vehicles
  version: 3
  license: CC BY 4.0
  url: https://example.org/someone/vehicles/dataset/3
download: |
  from pathlib import Path  # a script: Ultralytics runs it when images are missing
  print("x")
"""


def test_read_roboflow_style_dataset(tmp_path: Path) -> None:
    """Split folders <split>/images with labels in <split>/labels, paths written '../'."""
    for split, n in (("train", 2), ("valid", 1)):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "labels").mkdir(parents=True)
        for k in range(n):
            Image.new("RGB", (64, 32)).save(tmp_path / split / "images" / f"{split}{k}.jpg")
            (tmp_path / split / "labels" / f"{split}{k}.txt").write_text(f"{k} 0.5 0.5 0.5 0.5\n")
    (tmp_path / "data.yaml").write_text(ROBOFLOW_YAML)
    data = load_data_yaml(tmp_path / "data.yaml")
    assert data["roboflow"]["url"].startswith("https://") and data["download"].startswith("from")
    ds = read_yolo(tmp_path)  # test/images exists nowhere: only train and valid are read
    assert ds.images.file_name.tolist() == ["train/images/train0.jpg", "train/images/train1.jpg",
                                            "valid/images/valid0.jpg"]
    assert ds.annotations.category_id.tolist() == [1, 2, 1]
    np.testing.assert_allclose(ds.annotations.bbox, [[16, 8, 32, 16]] * 3)
    val = read_yolo(tmp_path, split="val")
    assert val.images.file_name.tolist() == ["valid0.jpg"]


@pytest.mark.parametrize(("line", "match"), [
    ("3 0.5 0.5 0.2 0.2", "class 3 is not an index"),
    ("0 0.5 0.5 0.2", "got 4 numbers"),
    ("0 0.5 0.5 0.2 0.2 0.1 0.1 0.3", "got 8 numbers"),
    ("0 0.5 x 0.2 0.2", "expected numbers"),
    ("0 0.5 nan 0.2 0.2", "non-finite"),
    # no silent change (issue 18): refused with the value, never clamped or dropped
    ("-1 0.5 0.5 0.2 0.2", "class -1 is not an index"),
    ("1.5 0.5 0.5 0.2 0.2", r"class 1\.5 is not an index"),
    ("0 0.5 0.5 -0.2 0.2", "negative box size: w -0.2"),
    ("0 0.5 0.5 0.2 -0.001", "negative box size: h -0.001"),
    ("0 1.2 0.5 0.2 0.2", r"coordinate cx 1\.2 is outside \[0, 1\]"),
    ("0 0.5 -0.02 0.2 0.2", r"coordinate cy -0\.02 is outside"),
    ("0 0.5 0.5 0.2 1.0101", r"coordinate h 1\.0101 is outside"),
    ("0 0.1 0.1 0.3 0.1 0.3 1.5", r"coordinate y3 1\.5 is outside"),
    ("0 0.1 0.1 0.3 0.1 -7 0.3", r"coordinate x3 -7 is outside"),
    ("0 0.1 0.1 0.3 0.1 0.3 0.3 0.5", "got 8 numbers"),  # a polygon with an odd count
    ("0 0.1 0.1 0.3 0.1 0.3", "got 6 numbers"),
    ("0 0.5 0.5 0.2 2" + "0" * 300, r"coordinate h 20{20,}\.\.\. is outside"),
])
def test_bad_label_rows(tmp_path: Path, line: str, match: str) -> None:
    _make_foreign(tmp_path)
    (tmp_path / "labels" / "train" / "b.txt").write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(InputError, match=match) as e:
        read_yolo(tmp_path)
    assert e.value.file is not None and e.value.file.endswith("b.txt")
    assert e.value.path == "line 2"
    assert len(str(e.value)) < 400


@pytest.mark.parametrize("row", [
    "0 1.01 -0.01 0.2 0.2",  # at the tolerance: kept as written
    "0 0.5 0.5 0 0",  # zero size is not negative
    "0 -0.005 0.5 1.004 0.2",
    "0 -0.01 0 1.01 0 1.01 1.01",
])
def test_label_values_within_tolerance_are_kept_as_written(tmp_path: Path, row: str) -> None:
    _make_foreign(tmp_path)
    (tmp_path / "labels" / "train" / "b.txt").write_text(row + "\n")
    ds = read_yolo(tmp_path / "data.yaml", split="train")
    vals = [float(v) for v in row.split()[1:]]
    k = int(np.flatnonzero(ds.images.file_name == "b.jpg")[0])
    a = ds.annotations
    row_of_b = int(np.flatnonzero(a.image_id == ds.images.id[k])[0])
    if len(vals) == 4:  # b.jpg is 10 x 20
        cx, cy, w, h = vals
        np.testing.assert_allclose(a.bbox[row_of_b], [(cx - w / 2) * 10, (cy - h / 2) * 20,
                                                       w * 10, h * 20])
    else:
        seg = plain(a.segmentation[row_of_b])
        np.testing.assert_allclose(seg[0], np.array(vals) * np.tile([10, 20], len(vals) // 2))


@pytest.mark.parametrize(("yaml_text", "match"), [
    ("train: images/train\nnc: 2\nnames: [a, b, c]\n", "nc is 2 but names lists 3"),
    ("train: images/train\nnc: two\n", "expected the number of classes"),
    ("train: images/train\nnc: true\n", "expected the number of classes"),
    ("train: images/train\nnc: -1\n", "expected the number of classes"),
    ("train: images/train\nnc: 1000000000000\n", "classes without names refused"),
    ("train: images/train\nnames: {0: a, 0.5: b}\n", "integer class indices"),
    ("train: images/train\nnames: {0: a, '0': b}\n", "given twice"),
    ("train: images/train\nnames: [a]\nnames: [b]\n", "line 3: duplicate key"),
    ("- a\n- b\n", "expected a mapping of keys, found array"),
    ("train: [images/train\n", "malformed YAML"),
    # paths the file system cannot take: one line naming the key, not an OSError
    ("train: " + "a" * 5000 + "\nnames: [a]\n", r"train: expected a path .* found string \"a{20}"),
    ("path: " + "a" * 300 + "\ntrain: images/train\nnames: [a]\n", "path: expected a path"),
    ("train: [images/train, " + "b/" * 3000 + "]\nnames: [a]\n", "train: expected a path"),
])
def test_bad_data_yaml(tmp_path: Path, yaml_text: str, match: str) -> None:
    _make_foreign(tmp_path)
    (tmp_path / "data.yaml").write_text(yaml_text)
    with pytest.raises(InputError, match=match) as e:
        read_yolo(tmp_path)
    assert e.value.file == str(tmp_path / "data.yaml")
    assert len(str(e.value)) < 400 + len(str(tmp_path))


def test_export_refuses_a_data_yaml_it_could_not_read_back(tmp_path: Path) -> None:
    """Categories too large for a data.yaml (over the YAML reader's limits): refused
    before anything is written, so every data.yaml cocokit writes reads back."""
    b = DatasetBuilder()
    b.add_category("many", keypoints=[f"k{i}" for i in range(300_000)], skeleton=[])
    b.add_image("a.jpg", width=10, height=10)
    with pytest.raises(IntegrityError, match=r"data\.yaml: line \d+: more than 250,000 values"):
        write_yolo(b.build(), tmp_path / "y", images="none")
    assert not (tmp_path / "y").exists()


def test_bad_line_of_an_image_list(tmp_path: Path) -> None:
    _make_foreign(tmp_path)
    (tmp_path / "val.txt").write_text("./images/val/c.jpg\n" + "x" * 300 + ".jpg\n")
    with pytest.raises(InputError, match="expected a path") as e:
        read_yolo(tmp_path)
    assert e.value.file == str(tmp_path / "val.txt") and e.value.path == "line 2"


def test_cli_import_refuses_a_bad_label(tmp_path: Path) -> None:
    """Exit 2, one line naming the label file, the line and the value; nothing written."""
    _make_foreign(tmp_path / "ds")
    (tmp_path / "ds" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n"
                                                                "1 1.5 0.5 0.2 0.2\n")
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "cocokit", "import", str(tmp_path / "ds"),
                        "--format", "yolo", "-o", str(out)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"error: {tmp_path / 'ds' / 'labels' / 'train' / 'a.txt'}: "
                                "line 2: coordinate cx 1.5 is outside [0, 1] (by more than "
                                "0.01); labels hold coordinates divided by the image size")
    assert not out.exists()


def test_missing_yaml_and_names(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no data\.yaml"):
        read_yolo(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(InputError, match="names"):
        read_yolo(tmp_path)
    (tmp_path / "data.yaml").write_text("train: images/train\nnames:\n  0: a\n  2: b\n")
    with pytest.raises(InputError, match=r"0\.\.1"):
        read_yolo(tmp_path)


def test_data_yaml_written_reads_back(tmp_path: Path) -> None:
    """The YAML cocokit writes (odd names included) reads back identically."""
    b = DatasetBuilder()
    odd = ["person", "yes", "1", "a: b", "hash # x", "quote \"q\"", " pad", "é", "null"]
    for n in odd:
        b.add_category(n, supercategory="s")
    b.add_image("a.jpg", width=10, height=10)
    ds = b.build()
    write_yolo(ds, tmp_path / "y", images="none")
    data = load_data_yaml(tmp_path / "y" / "data.yaml")
    assert data["names"] == dict(enumerate(odd))
    assert data["coco_categories"][3] == {"id": 4, "name": "a: b", "supercategory": "s"}
    assert [c["name"] for c in read_yolo(tmp_path / "y", sizes=ds).categories] == odd


# -- command line ------------------------------------------------------------------------


def test_cli_import_in_process(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "tiny-val")
    write_yolo(ds, tmp_path / "y", task="segment", image_dir=img_dir)
    runner = CliRunner()
    res = runner.invoke(app, ["import", str(tmp_path / "y"), "--format", "yolo", "-o",
                              str(tmp_path / "out.json"), "-q"])
    assert res.exit_code == 0, res.output
    back = cocokit.load(tmp_path / "out.json")
    assert len(back.images) == 6 and len(back.annotations) == 135
    res = runner.invoke(app, ["import", str(tmp_path / "y"), "--format", "voc", "-o",
                              str(tmp_path / "o2.json")])
    assert res.exit_code != 0
    res = runner.invoke(app, ["import", "--help"])
    assert res.exit_code == 0 and "Example:" in res.output


def test_export_yolo_command_inputs(real_data: Path, tmp_path: Path) -> None:
    from cocokit.cli.yolo import export_yolo_command

    splits = tmp_path / "splits"
    splits.mkdir()
    ds, img_dir = _case(real_data, "coco-mini")
    cocokit.save(ds.select_images(np.arange(0, 50)), splits / "train.json")
    cocokit.save(ds.select_images(np.arange(50, 79)), splits / "val.json")
    s = export_yolo_command(splits, tmp_path / "y", image_dir=img_dir, quiet=True)
    assert sorted(s.splits) == ["train", "val"] and s.images == 79
    s = export_yolo_command(None, tmp_path / "z", splits=[f"test={splits / 'val.json'}"],
                            images="none", quiet=True)
    assert list(s.splits) == ["test"] and s.val_is_train is False
    with pytest.raises(OptionError):
        export_yolo_command(None, tmp_path / "w", splits=["nofile"], quiet=True)


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run([sys.executable, "-m", "cocokit", *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=300)


def test_cli_subprocess_export_and_import(real_data: Path, tmp_path: Path) -> None:
    ann, imgs = CASES["tiny-train"]
    r = _run("export", str(real_data / ann), "--format", "yolo", "-o", str(tmp_path / "y"),
             "-i", str(real_data / imgs), "--task", "segment")
    assert r.returncode == 0, r.stderr
    assert "train: 32 images" in r.stderr
    _check_rules(tmp_path / "y", "segment")
    r = _run("import", str(tmp_path / "y"), "--format", "yolo", "-o", str(tmp_path / "o.json"))
    assert r.returncode == 0, r.stderr
    back = cocokit.load(tmp_path / "o.json")
    assert len(back.images) == 32 and len(back.annotations) == 284
    r = _run("import", str(tmp_path / "nowhere"), "--format", "yolo", "-o",
             str(tmp_path / "o.json"))
    assert r.returncode == 2 and r.stderr.strip().startswith("error:")
    assert "Traceback" not in r.stderr and "nowhere" in r.stderr


def test_summary_json_serializable(real_data: Path, tmp_path: Path) -> None:
    ds, img_dir = _case(real_data, "tiny-val")
    s = write_yolo(ds, tmp_path / "y", image_dir=img_dir)
    import dataclasses

    assert json.loads(json.dumps(dataclasses.asdict(s)))["splits"]["train"]["images"] == 6


# -- data.yaml has train and val whatever the split names (issue 14) ----------------------


def _split_parts(real_data: Path, names: list[str]) -> tuple[dict[str, cocokit.Dataset], Path]:
    """coco-mini cut into len(names) consecutive parts, one per split name."""
    ds, img_dir = _case(real_data, "coco-mini")
    cuts = np.array_split(np.arange(len(ds.images)), len(names))
    return {n: ds.select_images(rows) for n, rows in zip(names, cuts, strict=True)}, img_dir


@pytest.mark.parametrize(
    ("names", "train", "val", "test", "notes"),
    [
        (["train", "val"], "images/train", "images/val", None, []),
        (["train2017", "val2017"], "images/train2017", "images/val2017", None, []),
        (["val2017"], "images/val2017", "images/val2017", None, ["no train split: train "
                                                                 "points at val"]),
        (["train2017"], "images/train2017", "images/train2017", None,
         ["no val split: val points at train"]),
        (["train", "valid"], "images/train", "images/valid", None, []),
        (["Train_A", "validation", "test-dev"], "images/Train_A", "images/validation",
         "images/test-dev", []),
        (["train2017", "test2017"], "images/train2017", "images/train2017", "images/test2017",
         ["no val split: val points at train"]),
        (["test"], "images/test", "images/test", "images/test",
         ["no train split: train points at test", "no val split: val points at test"]),
        (["fold1", "fold2"], "images/fold1", "images/fold1", None,
         ["no train split: train points at fold1", "no val split: val points at fold1"]),
        (["train_a", "train_b", "val"], ["images/train_a", "images/train_b"], "images/val",
         None, []),
    ],
)
def test_data_yaml_always_has_train_and_val(real_data: Path, tmp_path: Path,
                                            names: list[str], train: Any, val: Any, test: Any,
                                            notes: list[str]) -> None:
    parts, img_dir = _split_parts(real_data, names)
    s = write_yolo(parts, tmp_path / "y", image_dir=img_dir)
    data, _ = _check_rules(tmp_path / "y", "detect")  # train and val are there
    assert (data["train"], data["val"], data.get("test")) == (train, val, test)
    for n in names:  # every split keeps its own key too
        assert data[n] == f"images/{n}"
        assert (tmp_path / "y" / data[n]).is_dir()
    assert [n.split(" (")[0] for n in s.notes] == notes
    assert s.val_is_train == ("no val split: val points at train" in notes)
    text = (tmp_path / "y" / "data.yaml").read_text()
    assert all(f"# {n}" in text for n in s.notes)
    # reading the folder back gives every image once, under its split's folder
    back = read_yolo(tmp_path / "y")
    assert len(back.images) == 79 == len(set(back.images.file_name.tolist()))
    if len(names) > 1:
        assert {f.split("/")[1] for f in back.images.file_name} == set(names)
    one = read_yolo(tmp_path / "y", split=names[-1])
    assert len(one.images) == len(parts[names[-1]].images)


def test_split_by_split_export_with_coco_names_gives_the_one_shot_yaml(
        real_data: Path, tmp_path: Path) -> None:
    """val2017 first (train aliases it), then train2017: the aliases are worked out anew."""
    parts, img_dir = _split_parts(real_data, ["train2017", "val2017"])
    write_yolo(parts, tmp_path / "a", image_dir=img_dir)
    s1 = write_yolo(parts["val2017"], tmp_path / "b", split_name="val2017", image_dir=img_dir)
    assert load_data_yaml(tmp_path / "b" / "data.yaml")["train"] == "images/val2017"
    assert s1.notes
    s2 = write_yolo(parts["train2017"], tmp_path / "b", split_name="train2017",
                    image_dir=img_dir)
    assert s2.notes == ()
    data = load_data_yaml(tmp_path / "b" / "data.yaml")
    assert (data["train"], data["val"]) == ("images/train2017", "images/val2017")
    a = load_data_yaml(tmp_path / "a" / "data.yaml")
    assert a.keys() == data.keys()
    for key in ("train", "val", "train2017", "val2017", "names", "nc", "coco_categories"):
        assert a[key] == data[key]


def _check_det_dataset() -> Any:
    """Ultralytics' check_det_dataset, or skip with the reason (it needs torch)."""
    try:
        from ultralytics.data.utils import check_det_dataset
    except ImportError as e:
        pytest.skip(f"ultralytics' check_det_dataset is not importable here: {e}")
    return check_det_dataset


@pytest.mark.parametrize("names", [["val2017"], ["train2017", "val2017"], ["train"],
                                   ["test"], ["fold1", "fold2"], ["train_a", "train_b", "val"]])
def test_ultralytics_accepts_the_data_yaml(real_data: Path, tmp_path: Path,
                                          names: list[str]) -> None:
    check_det_dataset = _check_det_dataset()
    parts, img_dir = _split_parts(real_data, names)
    write_yolo(parts, tmp_path / "y", image_dir=img_dir, images="copy")
    data = check_det_dataset(str(tmp_path / "y" / "data.yaml"))
    assert data["nc"] == 80 and len(data["names"]) == 80
    for key in ("train", "val"):
        paths = data[key] if isinstance(data[key], list) else [data[key]]
        assert all(Path(p).is_dir() for p in paths)


def test_cli_export_prints_the_alias_note(real_data: Path, tmp_path: Path) -> None:
    ds, _ = _case(real_data, "coco-mini")
    (tmp_path / "splits").mkdir()
    cocokit.save(ds, tmp_path / "splits" / "val2017.json")  # a folder of split files: split val2017
    r = _run("export", str(tmp_path / "splits"), "--format", "yolo", "-o",
             str(tmp_path / "y"), "--images", "none")
    assert r.returncode == 0, r.stderr
    assert "no train split: train points at val" in r.stderr
    data = load_data_yaml(tmp_path / "y" / "data.yaml")
    assert data["train"] == data["val"] == "images/val2017"


@pytest.mark.parametrize("mistake", ["none", "no-equals", "unknown-split", "not-yolo"])
def test_cli_each_split_its_own_image_folder(real_data: Path, tmp_path: Path,
                                             mistake: str) -> None:
    """tiny-coco-images keeps train and val images apart: -i is train's folder and
    --split-images val=DIR val's; every image is linked from its own folder."""
    from cocokit.cli import main

    (train, train_dir), (val, val_dir) = (
        (real_data / CASES[c][0], real_data / CASES[c][1]) for c in ("tiny-train", "tiny-val"))
    out = tmp_path / "y"
    extra = {"none": ["--split-images", f"val={val_dir}"],
             "no-equals": ["--split-images", str(val_dir)],
             "unknown-split": ["--split-images", f"test={val_dir}"],
             "not-yolo": ["--split-images", f"val={val_dir}"]}[mistake]
    fmt = ["--format", "coco"] if mistake == "not-yolo" else ["--format", "yolo"]
    out_arg = str(tmp_path / "o.json") if mistake == "not-yolo" else str(out)
    rc = main(["export", str(train), *fmt, "-i", str(train_dir), "--add-split",
               f"val={val}", *extra, "-o", out_arg, "-q"])
    if mistake != "none":
        assert rc == 2
        assert not out.exists() and not (tmp_path / "o.json").exists()
        return
    assert rc == 0
    for split, folder in (("train", train_dir), ("val", val_dir)):
        links = sorted((out / "images" / split).iterdir())
        assert links and all(p.resolve().parent == folder.resolve() for p in links)
    # -i alone for both splits: val's images are not in train's folder
    assert main(["export", str(train), "--format", "yolo", "-i", str(train_dir),
                 "--add-split", f"val={val}", "-o", str(tmp_path / "z"), "-q"]) != 0


# -- pose and OBB (issue 16) -------------------------------------------------------------


def _pose_dataset() -> cocokit.Dataset:
    b = DatasetBuilder()
    cat = b.add_category("person", keypoints=["left_eye", "right_eye", "nose"],
                         skeleton=[[1, 2]])
    b.add_category("car")
    img = b.add_image("a.jpg", 200, 100)
    b.add_annotation(img, cat, bbox=[20, 10, 40, 50], keypoints=[30, 20, 2, 50, 20, 1, 0, 0, 0])
    b.add_annotation(img, "car", bbox=[100, 50, 20, 10])
    return b.build()


def test_pose_rows_and_data_yaml_follow_ultralytics(tmp_path: Path) -> None:
    """Ultralytics pose: 'cls cx cy w h' then K (x y v) normalized; kpt_shape, flip_idx."""
    s = write_yolo(_pose_dataset(), tmp_path / "y", task="pose", images="none")
    rows = (tmp_path / "y" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert rows == ["0 0.2 0.35 0.2 0.5 0.15 0.2 2 0.25 0.2 1 0.0 0.0 0",
                    "1 0.55 0.55 0.1 0.1 0.0 0.0 0 0.0 0.0 0 0.0 0.0 0"]
    data = load_data_yaml(tmp_path / "y" / "data.yaml")
    assert data["kpt_shape"] == [3, 3] and data["flip_idx"] == [1, 0, 2]
    assert data["kpt_names"] == {0: ["left_eye", "right_eye", "nose"]}
    assert s.splits["train"].keypoints_padded == 1  # the car has no keypoints
    assert any("keypoint names kept in data.yaml" in n for n in s.notes)
    losses = {x.kind: x.count for x in formats_yolo.export_losses(s, _pose_dataset())}
    assert losses["keypoints-padded"] == 1 and losses["keypoint-names-in-yaml"] == 1


def test_obb_rows_follow_ultralytics(tmp_path: Path) -> None:
    """Ultralytics OBB: 'cls x1 y1 x2 y2 x3 y3 x4 y4' normalized."""
    b = DatasetBuilder()
    b.add_category("ship", id=5)
    img = b.add_image("a.jpg", 200, 100)
    b.add_annotation(img, 5, polygon=[10, 10, 50, 10, 50, 30, 10, 30])  # 4 points: as is
    b.add_annotation(img, 5, bbox=[100, 50, 20, 10])  # a box: its corners
    # a diamond (inside the image: the reader refuses coordinates outside [0, 1])
    b.add_annotation(img, 5, polygon=[0, 50, 40, 90, 80, 50, 40, 10, 40, 50])
    s = write_yolo(b.build(), tmp_path / "y", task="obb", images="none", clip=False)
    rows = (tmp_path / "y" / "labels" / "train" / "a.txt").read_text().splitlines()
    assert rows[:2] == ["0 0.05 0.1 0.25 0.1 0.25 0.3 0.05 0.3",
                        "0 0.5 0.5 0.6 0.5 0.6 0.6 0.5 0.6"]
    corners = np.array(rows[2].split()[1:], float).reshape(4, 2) * [200, 100]
    assert sorted(map(tuple, corners.round(9).tolist())) == [(0, 50), (40, 10), (40, 90),
                                                             (80, 50)]
    t = s.splits["train"]
    assert (t.rotated_from_polygon, t.box_as_polygon) == (1, 1)
    back = read_yolo(tmp_path / "y", sizes={"a.jpg": [200, 100]}, task="obb")
    assert back.annotations.record(0)["segmentation"] == [[10, 10, 50, 10, 50, 30, 10, 30]]


def _read_order(ds: cocokit.Dataset) -> np.ndarray:
    """The non-crowd annotation rows in the order read_yolo gives them back: images by
    path, rows in file order."""
    keep = np.flatnonzero(ds.annotations.iscrowd != 1)
    names = ds.images.file_name[ds.image_index[keep]].astype(str)
    return keep[np.lexsort((np.arange(len(keep)), names))]


@pytest.mark.parametrize(("case", "task"), [("coco-mini-pose", "pose"), ("tiny-train", "obb"),
                                            ("coco-mini", "obb")])
def test_pose_and_obb_exports_follow_ultralytics_rules(real_data: Path, tmp_path: Path,
                                                       case: str, task: str) -> None:
    if case == "coco-mini-pose":
        ds = cocokit.load(real_data / "coco-mini/annotations/person_keypoints_val2017.json")
        img_dir = real_data / "coco-mini/val2017"
    else:
        ds, img_dir = _case(real_data, case)
    summary = write_yolo(ds, tmp_path / "y", task=task, image_dir=img_dir)  # type: ignore[arg-type]
    data, rows = _check_rules(tmp_path / "y", task)
    assert sum(len(r) for r in rows.values()) == summary.rows
    assert summary.rows == int((ds.annotations.iscrowd != 1).sum())
    if task == "pose":
        assert data["kpt_shape"] == [17, 3]
        assert data["flip_idx"] == [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_pose_round_trip(real_data: Path, tmp_path: Path) -> None:
    ds = cocokit.load(real_data / "coco-mini/annotations/person_keypoints_val2017.json")
    write_yolo(ds, tmp_path / "y", task="pose", images="none")
    back = read_yolo(tmp_path / "y", sizes=ds)  # pose found from kpt_shape
    assert list(back.categories) == list(ds.categories)  # names, keypoints, skeleton
    order = _read_order(ds)
    assert len(back.annotations) == len(order)
    np.testing.assert_allclose(back.annotations.bbox, ds.annotations.bbox[order], rtol=1e-6,
                               atol=1e-9)
    want = np.array([plain(ds.annotations.keypoints[r]) for r in order], float)
    got = np.array([plain(k) for k in back.annotations.keypoints], float)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    assert back.annotations.num_keypoints.tolist() == ds.annotations.num_keypoints[order].tolist()


@pytest.mark.parametrize("case", ["tiny-train", "coco-mini", "taco"])
def test_obb_round_trip(real_data: Path, tmp_path: Path, case: str) -> None:
    ds = (cocokit.load(real_data / "taco/annotations.json") if case == "taco"
          else _case(real_data, case)[0])
    # clipped (the default): a rotated rectangle around an object at the border reaches
    # out of the image, and Ultralytics (like cocokit's reader) refuses such corners
    s = write_yolo(ds, tmp_path / "y", task="obb", images="none")
    back = read_yolo(tmp_path / "y", sizes=ds, task="obb")
    order = _read_order(ds)
    assert len(back.annotations) == len(order)
    n_rot = n_border = 0
    for j, r in enumerate(order.tolist()):
        got = np.asarray(back.annotations.record(j)["segmentation"][0]).reshape(4, 2)
        seg = ds.annotations.record(r).get("segmentation")
        pts = np.concatenate([np.reshape(x, (-1, 2)) for x in seg])
        w, h = back.images.width[back.image_index[j]], back.images.height[back.image_index[j]]
        on_border = bool(np.isclose(got, 0).any() or np.isclose(got[:, 0], w).any()
                         or np.isclose(got[:, 1], h).any())
        if len(seg) == 1 and len(pts) == 4 and not on_border:
            np.testing.assert_allclose(got, pts, rtol=1e-6, atol=1e-9)
        elif len(seg) == 1 and len(pts) == 4:
            n_border += 1
            inside = np.clip(pts, 0, [w, h])  # the corners as the clip moved them
            np.testing.assert_allclose(got, inside, rtol=1e-6, atol=1e-6)
        else:  # the rectangle covers every point (but where the clip moved a corner)
            n_rot += 1
            if not on_border:
                rect = shapely.Polygon(got).buffer(1e-6 * np.abs(got).max())
                assert rect.covers(shapely.MultiPoint(pts))
    assert all(c.min() >= 0 for c in [np.asarray(back.annotations.record(j)["segmentation"])
                                       for j in range(len(order))])
    assert s.splits["train"].rotated_from_polygon == n_rot
    assert back.categories.name.tolist() == ds.categories.name.tolist()


@pytest.mark.parametrize(("task", "line", "match"), [
    ("pose", "0 0.5 0.5 0.1 0.1 0.2 0.2 2", r"a.txt: line 1: expected 'cls cx cy w h' and 3 "
     r"keypoints of 3 values \(kpt_shape \[3, 3\]\): 14 numbers, got 8"),
    ("obb", "0 0.1 0.1 0.2 0.1 0.2 0.2", r"line 1: expected 'cls x1 y1 x2 y2 x3 y3 x4 y4' \(9 "
     r"numbers\), got 7"),
    ("detect", "0 0.1 0.1 0.2 0.1 0.2 0.2", r"expected 'cls cx cy w h' \(5 numbers\), got 7"),
    ("segment", "0 0.1 0.1 0.2 0.2", r"expected 'cls x1 y1 x2 y2 x3 y3 ...'"),
])
def test_rows_of_the_wrong_length_for_the_task(tmp_path: Path, task: str, line: str,
                                               match: str) -> None:
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text(line + "\n")
    extra = "kpt_shape: [3, 3]\n" if task == "pose" else ""
    (tmp_path / "data.yaml").write_text(f"train: images/train\nnames: [a]\n{extra}")
    with pytest.raises(InputError, match=match):
        read_yolo(tmp_path, sizes={"a.jpg": [10, 10]},
                  task="auto" if task == "pose" else task)  # type: ignore[arg-type]


def test_foreign_pose_dataset_with_two_values_per_keypoint(tmp_path: Path) -> None:
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.4 0.5 0.25 0 0\n")
    (tmp_path / "data.yaml").write_text(
        "train: images/train\nnames: {0: hand}\nkpt_shape: [2, 2]\nflip_idx: [0, 1]\n"
        "kpt_names: {0: [thumb, wrist]}\n")
    ds = read_yolo(tmp_path, sizes={"a.jpg": [100, 40]})
    assert ds.categories[0] == {"id": 1, "name": "hand", "keypoints": ["thumb", "wrist"],
                                "flip_idx": [0, 1]}
    assert ds.annotations[0]["keypoints"] == [50, 10, 2, 0, 0, 0]
    assert ds.annotations[0]["num_keypoints"] == 1
    (tmp_path / "data.yaml").write_text("train: images/train\nnames: [a]\nkpt_shape: [2]\n")
    with pytest.raises(InputError, match=r"kpt_shape: expected \[K, 2\] or \[K, 3\]"):
        read_yolo(tmp_path, sizes={"a.jpg": [100, 40]})


def test_pose_needs_keypoints(real_data: Path, tmp_path: Path) -> None:
    ds, _ = _case(real_data, "tiny-val")
    with pytest.raises(OptionError, match="a dataset with keypoints"):
        write_yolo(ds, tmp_path / "y", task="pose", images="none")
    assert not (tmp_path / "y").exists()


def test_export_losses_of_a_detect_export(real_data: Path, tmp_path: Path) -> None:
    ds, _ = _case(real_data, "tiny-val")
    s = write_yolo(ds, tmp_path / "y", images="none")
    losses = {x.kind: x.count for x in formats_yolo.export_losses(s, ds)}
    crowd = ds.annotations.iscrowd == 1
    assert losses["crowd-skipped"] == int(crowd.sum())
    assert losses["segmentation-as-box"] == int(
        (ds.annotations.segmentation_kind[~crowd] > 0).sum())


def test_cli_pose_export_and_import(real_data: Path, tmp_path: Path) -> None:
    ann = real_data / "coco-mini/annotations/person_keypoints_val2017.json"
    runner = CliRunner()
    res = runner.invoke(app, ["export", str(ann), "--format", "yolo", "--task", "pose",
                              "--image-mode", "none", "-o", str(tmp_path / "y")])
    assert res.exit_code == 0, res.output
    assert "task pose" in res.output and "keypoint names kept in data.yaml" in res.output
    res = runner.invoke(app, ["import", str(tmp_path / "y"), "--format", "yolo", "--sizes",
                              str(ann), "-o", str(tmp_path / "back.json"), "-q"])
    assert res.exit_code == 0, res.output
    back = cocokit.load(tmp_path / "back.json")
    assert sum(k is not None for k in back.annotations.keypoints) == len(back.annotations) == 117
    from cocokit.cli import main

    assert main(["import", str(tmp_path / "y"), "--format", "yolo", "--task", "bad", "-o",
                 str(tmp_path / "b2.json")]) == 2
    assert not (tmp_path / "b2.json").exists()
