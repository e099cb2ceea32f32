"""DOTA labels: round trips on real COCO files, the loss report, hotcoco as an
independent reader and writer, header lines, and malformed label files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely
from PIL import Image

import cocokit
from cocokit.errors import InputError, IntegrityError
from cocokit.io.formats import dota

CASES = {
    "coco-mini": "coco-mini/annotations/instances_val2017.json",
    "coco-mini-pose": "coco-mini/annotations/person_keypoints_val2017.json",
    "tiny-train": "tiny-coco-images/annotations/instances_train2017.json",
    "taco": "taco/annotations.json",
}

# The first objects of DOTA v1.0 train/labelTxt/P0000.txt (as quoted in public code)
P0000 = """imagesource:GoogleEarth
gsd:0.146343590398
2753 2408 2861 2385 2888 2468 2805 2502 plane 0
3445 3391 3484 3409 3478 3422 3437 3402 large-vehicle 0
3185 4158 3195 4161 3175 4204 3164 4199 large-vehicle 0
630 1674 628 1666 640 1654 644 1666 small-vehicle 0
"""


def _source_order(ds: cocokit.Dataset) -> np.ndarray:
    """Annotation rows in the order a per-image format gives them back."""
    return np.argsort(ds.image_index, kind="stable")


def _points(ds: cocokit.Dataset, r: int) -> np.ndarray:
    seg = ds.annotations.record(int(r)).get("segmentation")
    if not isinstance(seg, list):
        return np.zeros((0, 2))
    return np.concatenate([np.asarray(ring, float).reshape(-1, 2) for ring in seg])


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(real_data: Path, tmp_path: Path, case: str) -> None:
    ds = cocokit.load(real_data / CASES[case])
    before = cocokit.to_json(ds, annotation_ids="auto")
    losses = dota.write(ds, str(tmp_path / "d"))
    assert cocokit.to_json(ds, annotation_ids="auto") == before  # the input is untouched
    back, read_losses = dota.read(str(tmp_path / "d"))
    assert not read_losses
    # images, ids, sizes and categories (names and ids) come back through index.json
    assert back.images.id.tolist() == ds.images.id.tolist()
    assert back.images.width.tolist() == ds.images.width.tolist()
    assert list(back.categories) == list(ds.categories)
    order = _source_order(ds)
    assert len(back.annotations) == len(order)
    anns = ds.annotations
    kinds = anns.segmentation_kind[order]
    assert back.annotations.category_id.tolist() == anns.category_id[order].tolist()
    n_poly4 = n_rect = n_box = 0
    for j, r in enumerate(order.tolist()):
        got = _points(back, j)
        assert got.shape == (4, 2)
        src = _points(ds, r)
        rec = ds.annotations.record(r)
        if kinds[j] == 1 and len(rec["segmentation"]) == 1 and len(src) == 4:
            n_poly4 += 1  # a quadrilateral: exactly as it was
            assert got.tolist() == src.tolist()
        elif kinds[j] == 1:
            n_rect += 1  # the rotated rectangle covers every point, and is a rectangle
            rect = shapely.Polygon(got)
            assert rect.buffer(1e-6 * max(1.0, np.abs(got).max())).covers(
                shapely.MultiPoint(src))
            assert abs(rect.area - rect.minimum_rotated_rectangle.area) <= 1e-6 * rect.area
        else:  # a box (or the box of a mask): its corners, the box within 1e-6
            n_box += 1
            np.testing.assert_allclose(back.annotations.bbox[j], rec["bbox"], rtol=1e-6,
                                       atol=1e-9)
    assert n_poly4 + n_rect + n_box == len(order)
    expected = {
        "polygon-as-rotated-box": n_rect,
        "rle-as-box": int((kinds >= 2).sum()),
        "box-as-polygon": int((kinds == 0).sum()),
        "crowd-as-difficult": int((anns.iscrowd == 1).sum()),
        "keypoints-dropped": sum(k is not None for k in anns.keypoints),
        "category-name-spaces": sum(" " in str(n) for n in ds.categories.name.tolist()),
    }
    got_losses = {x.kind: x.count for x in losses}
    assert {k: got_losses.get(k, 0) for k in expected} == expected
    src_area = anns.area[order]
    changed = np.isfinite(src_area) & (np.abs(back.annotations.area - src_area)
                                       > 1e-6 * np.maximum(1.0, np.abs(src_area)))
    assert got_losses.get("area-recomputed", 0) == int(changed.sum())
    difficult = [a.get("difficult") for a in back.annotations]
    assert difficult == [int(c == 1) for c in anns.iscrowd[order].tolist()]


def test_header_lines_and_a_real_label_file(tmp_path: Path) -> None:
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt" / "P0000.txt").write_text(P0000)
    Image.new("L", (5502, 4500)).save(tmp_path / "images" / "P0000.png")
    assert dota.detect(str(tmp_path)) and dota.detect(str(tmp_path / "labelTxt"))
    ds, _ = dota.read(str(tmp_path))
    img = ds.images[0]
    assert (img["file_name"], img["width"], img["height"]) == ("P0000.png", 5502, 4500)
    assert img["imagesource"] == "GoogleEarth" and img["gsd"] == 0.146343590398
    assert [c["name"] for c in ds.categories] == ["large-vehicle", "plane", "small-vehicle"]
    first = ds.annotations[0]
    assert first["segmentation"] == [[2753, 2408, 2861, 2385, 2888, 2468, 2805, 2502]]
    assert first["bbox"] == [2753, 2385, 135, 117]
    assert first["difficult"] == 0
    # written back: the same rows, the header kept
    dota.write(ds, str(tmp_path / "out"))
    lines = (tmp_path / "out" / "labelTxt" / "P0000.txt").read_text().splitlines()
    assert lines[:2] == ["imagesource:GoogleEarth", "gsd:0.146343590398"]
    assert lines[2:] == P0000.splitlines()[2:]


def test_category_names_with_spaces_come_back(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    cat = b.add_category("traffic light", id=7)
    img = b.add_image("a.jpg", 100, 80)
    b.add_annotation(img, cat, bbox=[10, 10, 20, 30])
    ds = b.build()
    losses = dota.write(ds, str(tmp_path / "d"))
    text = (tmp_path / "d" / "labelTxt" / "a.txt").read_text()
    assert text == "10 10 30 10 30 40 10 40 traffic_light 0\n"
    assert [x.kind for x in losses] == ["box-as-polygon", "category-name-spaces"]
    back, _ = dota.read(str(tmp_path / "d"))
    assert list(back.categories) == [{"id": 7, "name": "traffic light"}]


def test_hotcoco_reads_ours(real_data: Path, tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco (the test extra) is not "
                                  "installed")
    ds = cocokit.load(real_data / CASES["tiny-train"])
    dota.write(ds, str(tmp_path / "d"))
    ours, _ = dota.read(str(tmp_path / "d"))
    theirs = hotcoco.COCO.from_dota(
        str(tmp_path / "d" / "labelTxt"),
        images_dir=str(real_data / "tiny-coco-images/images/train2017")).dataset
    assert len(theirs["images"]) == len(ours.images)
    assert len(theirs["annotations"]) == len(ours.annotations)
    # both read the files in image order, rows in file order
    stems = {i["id"]: i["file_name"] for i in theirs["images"]}
    theirs_sorted = sorted(theirs["annotations"], key=lambda a: (stems[a["image_id"]], a["id"]))
    names = [Path(str(f)).stem for f in ours.images.file_name.tolist()]
    ours_rows = sorted(range(len(ours.annotations)),
                       key=lambda r: (names[int(ours.image_index[r])], r))
    # hotcoco boxes the rotated rectangle it fits to the 4 points: where they are a
    # rectangle (every row cocokit made from a box or a longer polygon), the same box
    rect = np.array([_is_rectangle(_points(ours, r)) for r in ours_rows])
    assert rect.sum() > 0.8 * len(rect)
    np.testing.assert_allclose(np.array([a["bbox"] for a in theirs_sorted])[rect],
                               ours.annotations.bbox[ours_rows][rect], rtol=1e-6, atol=1e-9)


def _is_rectangle(pts: np.ndarray) -> bool:
    poly = shapely.Polygon(pts)
    return bool(abs(poly.area - poly.minimum_rotated_rectangle.area) <= 1e-9 * poly.area)


def test_we_read_hotcocos(real_data: Path, tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco (the test extra) is not "
                                  "installed")
    images = real_data / "tiny-coco-images/images/train2017"
    ds = cocokit.load(real_data / CASES["tiny-train"])
    dota.write(ds, str(tmp_path / "d"))
    h = hotcoco.COCO.from_dota(str(tmp_path / "d" / "labelTxt"), images_dir=str(images))
    stats = h.to_dota(str(tmp_path / "h" / "labelTxt"))
    back, _ = dota.read(str(tmp_path / "h"), images=str(images))
    assert stats["annotations"] == len(back.annotations) == len(ds.annotations)
    ours, _ = dota.read(str(tmp_path / "d"))
    # hotcoco writes one decimal (corners within 0.05 px, so sizes within 0.1 px) of the
    # rotated rectangle it fitted: where ours was a rectangle, the same box
    key = {f: k for k, f in enumerate(ours.images.file_name.tolist())}
    rows_back = sorted(range(len(back.annotations)),
                       key=lambda r: (key[back.images.file_name[back.image_index[r]]], r))
    rect = np.array([_is_rectangle(_points(ours, r)) for r in range(len(ours.annotations))])
    np.testing.assert_allclose(back.annotations.bbox[rows_back][rect],
                               ours.annotations.bbox[rect], rtol=0, atol=0.1001)


@pytest.mark.parametrize(("line", "match"), [
    ("1 2 3 4 5 6 7 8", "line 1: expected 'x1 y1 x2 y2 x3 y3 x4 y4 category "
     "difficult', got 8 values"),
    ("1 2 3 4 5 6 7 plane 0", "line 1: expected 8 numbers"),
    ("1 2 3 4 5 6 7 8 9 plane 0", "got 11 values"),
    ("1 2 3 4 5 6 7 x plane 0", r"line 1: expected 8 numbers"),
    ("1 2 3 4 5 6 7 nan plane 0", "not a finite number"),
    ("1 2 3 4 5 6 7 8 plane 2", "difficult must be 0 or 1"),
    ("200 200 210 200 210 210 200 210 plane 0", "the box lies outside the 100x80 image"),
])
def test_malformed_rows(tmp_path: Path, line: str, match: str) -> None:
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "images").mkdir()
    (tmp_path / "labelTxt" / "a.txt").write_text(line + "\n")
    Image.new("L", (100, 80)).save(tmp_path / "images" / "a.png")
    with pytest.raises(InputError, match=match) as e:
        dota.read(str(tmp_path))
    assert str(tmp_path / "labelTxt" / "a.txt") in str(e.value)


def test_missing_images_and_unknown_category(tmp_path: Path) -> None:
    (tmp_path / "labelTxt").mkdir()
    (tmp_path / "labelTxt" / "a.txt").write_text("1 2 3 4 5 6 7 8 plane 0\n")
    with pytest.raises(InputError, match="no image for this label file"):
        dota.read(str(tmp_path))
    b = cocokit.DatasetBuilder()
    b.add_category("car")
    b.add_image("a.jpg", 100, 80)
    dota.write(b.build(), str(tmp_path / "w"))
    (tmp_path / "w" / "labelTxt" / "a.txt").write_text("1 2 3 4 5 6 7 8 plane 0\n")
    with pytest.raises(InputError, match=r"a.txt: line 1: category 'plane' is not in "
                       r"index.json"):
        dota.read(str(tmp_path / "w"))


def test_failed_write_writes_nothing(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    b.add_category("car")
    b.add_image("a.jpg", 100, 80)
    b.add_image("a.png", 100, 80)  # both need labelTxt/a.txt
    with pytest.raises(IntegrityError, match=r"both need labelTxt/a\.txt"):
        dota.write(b.build(), str(tmp_path / "d"))
    assert not (tmp_path / "d").exists()
    assert not dota.detect(str(tmp_path)) and not dota.detect(str(tmp_path / "nothing"))
    yolo_obb = tmp_path / "labels"
    yolo_obb.mkdir()
    (yolo_obb / "a.txt").write_text("0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2\n")
    assert not dota.detect(str(yolo_obb))
    (yolo_obb / "a.txt").write_text("1 1 2 1 2 2 1 2 ship 0\n")
    assert dota.detect(str(yolo_obb))
