"""cocokit.compat.sahi: the same results as SAHI where SAHI is right, the data where it is not.

Tests that compare with SAHI itself take the ``sahi_coco`` / ``sahi_slicing`` fixtures,
which skip when ``sahi`` is not installed (the ``test`` extra installs it; it is never a
runtime dependency). The others check cocokit's behaviour on the data alone: the
deliberate differences listed in docs/sahi-migration.md.
"""

from __future__ import annotations

import copy
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cocokit
from cocokit.compat import sahi as ck
from cocokit.errors import CocoKitError, InputError, OptionError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
TERRAIN_FILES = [
    "terrain1_coco.json", "terrain2_coco.json", "terrain3_coco.json", "combined_coco.json",
    "modified_terrain1_coco.json", "modified_terrain2_coco.json", "terrain_all_coco.json",
    "visdrone2019-det-train-first50image.json",
]


# -- fixtures ----------------------------------------------------------------------------


@pytest.fixture
def sahi_coco() -> Any:
    """``sahi.utils.coco``, or skip (the test extra installs sahi)."""
    return pytest.importorskip("sahi.utils.coco", reason="sahi is not installed "
                               "(pip install 'cocokit[test]' installs it for these comparisons)")


@pytest.fixture
def sahi_slicing() -> Any:
    """``sahi.slicing``, or skip."""
    return pytest.importorskip("sahi.slicing", reason="sahi is not installed "
                               "(pip install 'cocokit[test]' installs it for these comparisons)")


@pytest.fixture
def coco_utils(real_data: Path) -> Path:
    """SAHI's own test data (terrain images and COCO files)."""
    p = real_data / "sahi-testdata" / "coco_utils"
    if not p.is_dir():
        pytest.skip(f"SAHI test data not available: {p}")
    return p


def _real(real_data: Path, *parts: str) -> Path:
    p = real_data.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"real data not available: {p}")
    return p


def _load_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _names(coco: Any) -> list[str]:
    return [im.file_name for im in coco.images]


def _ann_keys(doc: dict[str, Any]) -> list[tuple[int, int, int]]:
    return [(a["id"], a["image_id"], a["category_id"]) for a in doc["annotations"]]


def _by_image(doc: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Annotation records per image file name, in order, without their ids."""
    fname = {im["id"]: im["file_name"] for im in doc["images"]}
    out: dict[str, list[dict[str, Any]]] = {im["file_name"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        rec = {k: v for k, v in a.items() if k not in ("id", "image_id")}
        out[fname[a["image_id"]]].append(rec)
    return out


def _rectilinear_dataset(seed: int, image_dir: Path | None = None) -> dict[str, Any]:
    """A generated COCO dict: rectangles and L-shaped polygons with integer corners (so
    every clipped area is a whole number and SAHI's int areas are exact), plain boxes,
    boxes crossing the border, a negative image. With ``image_dir`` the images are
    written as PNG files."""
    rng = np.random.default_rng(seed)
    cats = [{"id": 3, "name": "a", "supercategory": "x"}, {"id": 7, "name": "b"},
            {"id": 9, "name": "unused"}]
    images, anns = [], []
    for i in range(6):
        w, h = int(rng.integers(300, 900)), int(rng.integers(250, 700))
        images.append({"id": 10 + i, "file_name": f"gen_{i}.png", "width": w, "height": h})
        if image_dir is not None:
            from PIL import Image

            pix = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pix).save(image_dir / f"gen_{i}.png")
        if i == 3:
            continue  # a negative image
        for _ in range(int(rng.integers(3, 12))):
            x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
            bw = int(rng.integers(20, min(300, w - x0)))
            bh = int(rng.integers(20, min(300, h - y0)))
            kind = int(rng.integers(0, 3))
            cat = [3, 7][int(rng.integers(0, 2))]
            rec: dict[str, Any] = {"id": len(anns) + 1, "image_id": 10 + i, "category_id": cat,
                                   "iscrowd": 0}
            rec["area"] = bw * bh
            if kind == 0:  # rectangle polygon
                rec["segmentation"] = [[x0, y0, x0 + bw, y0, x0 + bw, y0 + bh, x0, y0 + bh]]
            elif kind == 1:  # an L: the rectangle without its top-right quarter
                mx, my = x0 + bw // 2, y0 + bh // 2
                rec["segmentation"] = [[x0, y0, mx, y0, mx, my, x0 + bw, my, x0 + bw, y0 + bh,
                                        x0, y0 + bh]]
                rec["area"] -= (x0 + bw - mx) * (my - y0)
            else:  # a box only
                rec["segmentation"] = []
            rec["bbox"] = [x0, y0, bw, bh]
            anns.append(rec)
    return {"images": images, "annotations": anns, "categories": cats}


# -- loading and the Coco object ---------------------------------------------------------


@pytest.mark.parametrize("name", TERRAIN_FILES)
def test_load_matches_sahi(sahi_coco: Any, coco_utils: Path, name: str) -> None:
    path = str(coco_utils / name)
    ours = ck.Coco.from_coco_dict_or_path(path)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path)
    assert ours.category_mapping == theirs.category_mapping
    assert ours.json_categories == theirs.json_categories
    assert len(ours.images) == len(theirs.images)
    for a, b in zip(ours.images, theirs.images, strict=True):
        assert (a.id, a.file_name, a.height, a.width) == (b.id, b.file_name, b.height, b.width)
        assert len(a.annotations) == len(b.annotations)
        for x, y in zip(a.annotations, b.annotations, strict=True):
            assert (x.category_id, x.category_name, x.iscrowd) == (y.category_id,
                                                                   y.category_name, y.iscrowd)
            assert x.bbox == pytest.approx(y.bbox)
            assert int(x.area) == y.area  # SAHI truncates areas to int
            if y.segmentation:  # SAHI truncates coordinates to int
                assert [[int(v) for v in r] for r in x.segmentation] == y.segmentation


@pytest.mark.parametrize("name", TERRAIN_FILES)
def test_json_and_stats_match_sahi(sahi_coco: Any, coco_utils: Path, name: str) -> None:
    path = str(coco_utils / name)
    ours = ck.Coco.from_coco_dict_or_path(path)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path)
    a, b = ours.json, theirs.json
    assert a["images"] == b["images"]
    assert a["categories"] == b["categories"]
    assert _ann_keys(a) == _ann_keys(b)
    assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
    assert [x["iscrowd"] for x in a["annotations"]] == [x["iscrowd"] for x in b["annotations"]]
    sa, sb = ours.stats, theirs.stats
    assert set(sa) == set(sb)
    for key, value in sb.items():
        if key == "num_images_per_category":
            # SAHI's Counter arithmetic drops categories no image has; cocokit lists them as 0
            assert {k: v for k, v in sa[key].items() if v} == value
            assert set(sa[key]) == {c["name"] for c in ours.json_categories}
        elif "area" in key and isinstance(value, dict):
            assert {k: int(v) if np.isfinite(v) else v for k, v in sa[key].items()} == value
        elif "area" in key:
            assert sa[key] == pytest.approx(value, abs=1)
        else:
            assert sa[key] == value


def test_generated_dataset_matches_sahi(sahi_coco: Any) -> None:
    doc = _rectilinear_dataset(5)
    ours = ck.Coco.from_coco_dict_or_path(doc)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(copy.deepcopy(doc))
    a, b = ours.json, theirs.json
    assert a["images"] == b["images"]
    assert _ann_keys(a) == _ann_keys(b)
    assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
    for key, value in theirs.stats.items():
        if key != "num_images_per_category":
            assert ours.stats[key] == value, key
    neg_a = ck.Coco.from_coco_dict_or_path(doc, ignore_negative_samples=True).json
    neg_b = sahi_coco.Coco.from_coco_dict_or_path(copy.deepcopy(doc),
                                                  ignore_negative_samples=True).json
    assert neg_a["images"] == neg_b["images"] and len(neg_a["images"]) == 5
    assert _ann_keys(neg_a) == _ann_keys(neg_b)


def test_loading_builds_no_objects_until_asked(real_data: Path) -> None:
    path = _real(real_data, "taco", "annotations.json")
    coco = ck.Coco.from_coco_dict_or_path(str(path))
    store = coco.images._store
    assert store is not None and len(coco.images) == 1500
    doc, stats = coco.json, coco.stats
    assert len(doc["annotations"]) == 4784 == stats["num_annotations"]
    assert store.cache == {}  # json and stats ran on columns
    img = coco.images[7]
    assert coco.images[7] is img and list(store.cache) == [7]
    assert len(coco.images[10:20]) == 10 and list(store.cache) == [7]


def test_changes_to_objects_reach_the_export(real_data: Path) -> None:
    path = _real(real_data, "tiny-coco-images", "annotations", "instances_val2017.json")
    coco = ck.Coco.from_coco_dict_or_path(str(path))
    before = coco.json
    img = coco.images[2]
    img.file_name = "renamed.jpg"
    img.annotations[0].category_id = 1
    img.add_annotation(ck.CocoAnnotation(bbox=[1.5, 2.5, 3.25, 4.0], category_id=3,
                                         category_name="car"))
    del coco.images[0]
    coco.add_image(ck.CocoImage("new.jpg", height=10, width=20))
    after = coco.json
    assert [im["file_name"] for im in after["images"]] == (
        [before["images"][1]["file_name"], "renamed.jpg"]
        + [im["file_name"] for im in before["images"][3:]] + ["new.jpg"])
    recs = _by_image(after)["renamed.jpg"]
    old = _by_image(before)[before["images"][2]["file_name"]]
    assert len(recs) == len(old) + 1
    assert recs[0]["category_id"] == 1
    assert {k: v for k, v in recs[0].items() if k != "category_id"} == {
        k: v for k, v in old[0].items() if k != "category_id"}
    assert recs[1:-1] == old[1:]
    assert recs[-1]["bbox"] == [1.5, 2.5, 3.25, 4.0] and recs[-1]["area"] == 13.0
    assert _by_image(after)["new.jpg"] == []
    # the other images are unchanged, record for record
    for name in [im["file_name"] for im in before["images"][3:]]:
        assert _by_image(after)[name] == _by_image(before)[name]


@pytest.mark.parametrize("rel", [
    ("tiny-coco-images", "annotations", "instances_train2017.json"),
    ("coco-mini", "annotations", "person_keypoints_val2017.json"),
    ("lvis-val100", "lvis_val_100.json"),
    ("taco", "annotations.json"),
])
def test_export_is_lossless(real_data: Path, rel: tuple[str, ...]) -> None:
    """RLE, iscrowd, float coordinates, keypoints, unknown keys, info and licenses survive."""
    path = _real(real_data, *rel)
    src = _load_json(path)
    doc = ck.Coco.from_coco_dict_or_path(str(path)).json
    assert _by_image(doc) == _by_image(src)
    assert [{k: v for k, v in im.items() if k != "id"} for im in doc["images"]] == [
        {k: v for k, v in im.items() if k != "id"} for im in src["images"]]
    for key in src:
        if key not in ("images", "annotations", "categories"):
            assert doc[key] == src[key]
    for mine, theirs in zip(doc["categories"], src["categories"], strict=True):
        # supercategory defaults to the name (as in SAHI) where the file has none
        assert mine == {"supercategory": theirs["name"], **theirs}


def test_crowd_rle_is_kept(real_data: Path) -> None:
    path = _real(real_data, "tiny-coco-images", "annotations", "instances_train2017.json")
    src = _load_json(path)
    crowd = [a for a in src["annotations"] if a["iscrowd"] == 1]
    assert len(crowd) == 4
    coco = ck.Coco.from_coco_dict_or_path(str(path))
    out = [a for a in coco.json["annotations"] if a.get("iscrowd") == 1]
    assert sorted(json.dumps(a["segmentation"]) for a in out) == sorted(
        json.dumps(a["segmentation"]) for a in crowd)
    objs = [a for im in coco.images for a in im.annotations if a.iscrowd == 1]
    assert len(objs) == 4 and all(isinstance(a.segmentation, dict) for a in objs)
    from pycocotools import mask as mask_utils

    for a in objs:  # the area of an RLE annotation is its pixel count
        rle = mask_utils.frPyObjects(a.segmentation, *a.segmentation["size"])
        assert a.area == float(mask_utils.area(rle))


def test_caller_dict_is_not_changed(coco_utils: Path) -> None:
    doc = _load_json(coco_utils / "combined_coco.json")
    frozen = copy.deepcopy(doc)
    coco = ck.Coco.from_coco_dict_or_path(doc, remapping_dict={1: 10, 2: 20, 3: 30})
    assert doc == frozen
    assert coco.category_mapping == {10: "human", 20: "car", 30: "big_vehicle"}
    assert {a.category_id for im in coco.images for a in im.annotations} == {10, 20}
    ck.update_categories({"car": 1}, doc)
    ck.merge(doc, doc)
    ck.merge_from_list([doc, doc])
    ck.get_imageid2annotationlist_mapping(doc)
    assert doc == frozen


def test_remapping_matches_sahi(sahi_coco: Any, coco_utils: Path) -> None:
    remap = {1: 2, 2: 1, 3: 0}
    ours = ck.Coco.from_coco_dict_or_path(str(coco_utils / "combined_coco.json"),
                                          remapping_dict=remap)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(str(coco_utils / "combined_coco.json"),
                                                   remapping_dict=remap)
    assert ours.category_mapping == theirs.category_mapping
    assert _ann_keys(ours.json) == _ann_keys(theirs.json)


def test_undeclared_category_is_a_clear_error(coco_utils: Path) -> None:
    doc = _load_json(coco_utils / "terrain2_coco.json")
    doc["annotations"][3]["category_id"] = 42
    with pytest.raises(InputError, match=r"annotations\[3\]\.category_id"):
        ck.Coco.from_coco_dict_or_path(doc)


def test_errors_are_cocokit_errors_and_sahis_types() -> None:
    with pytest.raises(ValueError) as e1:
        ck.Coco(image_id_setting="sometimes")  # type: ignore[arg-type]
    assert isinstance(e1.value, CocoKitError)
    with pytest.raises(ValueError) as e2:
        ck.CocoAnnotation(category_id=1)
    assert isinstance(e2.value, OptionError)
    with pytest.raises(TypeError) as e3:
        ck.CocoAnnotation(category_id=1, segmentation=[])
    assert isinstance(e3.value, CocoKitError)
    with pytest.raises(TypeError):
        ck.CocoImage("a.jpg", 1, 1).add_annotation({"bbox": [0, 0, 1, 1]})  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ck.Coco.from_coco_dict_or_path(42)  # type: ignore[arg-type]
    ann = ck.CocoAnnotation(bbox=[0, 0, 1, 1], category_id=1)
    with pytest.raises(TypeError):
        ann.category_id = "one"  # type: ignore[assignment]
    ann.category_id = np.int64(4)  # numpy integers are integers
    assert ann.category_id == 4
    coco = ck.Coco(image_id_setting="manual")
    with pytest.raises(ValueError, match="manual"):
        coco.add_image(ck.CocoImage("a.jpg", 10, 10))


def test_manual_image_ids(sahi_coco: Any) -> None:
    def build(mod: Any) -> Any:
        coco = mod.Coco(image_id_setting="manual")
        coco.add_category(mod.CocoCategory(id=0, name="thing"))
        for iid in (42, 7):
            im = mod.CocoImage(f"{iid}.jpg", height=100, width=200, id=iid)
            im.add_annotation(mod.CocoAnnotation(bbox=[1, 2, 30, 40], category_id=0,
                                                 category_name="thing"))
            coco.add_image(im)
        return coco

    a, b = build(ck).json, build(sahi_coco).json
    assert [im["id"] for im in a["images"]] == [im["id"] for im in b["images"]] == [42, 7]
    assert _ann_keys(a) == _ann_keys(b) == [(1, 42, 0), (2, 7, 0)]


# -- annotation objects ------------------------------------------------------------------


def test_annotation_objects_match_sahi(sahi_coco: Any) -> None:
    seg = [[10, 10, 60, 10, 60, 40, 10, 40], [100, 100, 120, 100, 110, 130]]
    for cls_ck, cls_s in ((ck.CocoAnnotation, sahi_coco.CocoAnnotation),):
        a = cls_ck.from_coco_segmentation(seg, category_id=2, category_name="x")
        b = cls_s.from_coco_segmentation(seg, category_id=2, category_name="x")
        assert a.bbox == b.bbox and a.area == b.area and a.segmentation == b.segmentation
        a = cls_ck.from_coco_bbox([5, 6, 7, 8], 1, "y")
        b = cls_s.from_coco_bbox([5, 6, 7, 8], 1, "y")
        assert a.bbox == b.bbox and a.area == b.area and a.segmentation == b.segmentation == []
        assert a.json == b.json
    rec = {"id": 9, "image_id": 3, "category_id": 1, "bbox": [0, 0, 4, 4], "segmentation": [],
           "area": 16, "iscrowd": 0}
    assert ck.CocoAnnotation.from_coco_annotation_dict(rec, "z").json == \
        sahi_coco.CocoAnnotation.from_coco_annotation_dict(rec, "z").json
    p = ck.CocoPrediction.from_coco_bbox([1, 2, 3, 4], 5, "car", 0.75, image_id=8)
    q = sahi_coco.CocoPrediction.from_coco_bbox([1, 2, 3, 4], 5, "car", 0.75, image_id=8)
    assert p.json == q.json


@pytest.mark.parametrize("flat", [[10, 10, 60, 10, 60, 40], (10.0, 10, 60, 10, 60, 40),
                                  np.array([10, 10, 60, 10, 60, 40], np.int64)])
def test_a_flat_ring_is_one_ring(flat: Any) -> None:
    """A polygon given as one flat ring is that ring in a list, its numbers floats."""
    a = ck.CocoAnnotation.from_coco_segmentation(flat, 1, "x")
    b = ck.CocoAnnotation.from_coco_segmentation([[10, 10, 60, 10, 60, 40]], 1, "x")
    assert a.segmentation == b.segmentation == [[10.0, 10.0, 60.0, 10.0, 60.0, 40.0]]
    assert all(type(v) is float for v in a.segmentation[0])
    assert a.bbox == b.bbox and a.area == b.area


def test_sliced_annotation_matches_sahi_and_keeps_floats(sahi_coco: Any) -> None:
    seg = [[10, 10, 60, 10, 60, 40, 10, 40]]
    a = ck.CocoAnnotation.from_coco_segmentation(seg, 1, "x").get_sliced_coco_annotation(
        [30, 0, 100, 100])
    b = sahi_coco.CocoAnnotation.from_coco_segmentation(seg, 1, "x").get_sliced_coco_annotation(
        [30, 0, 100, 100])
    assert a.bbox == b.bbox == [0.0, 10.0, 30.0, 30.0]
    assert a.area == b.area == 900
    # a float polygon keeps its fraction (SAHI: int)
    f = ck.CocoAnnotation.from_coco_segmentation([[10.5, 10.25, 60.75, 10.25, 60.75, 40.5]], 1,
                                                 "x")
    inside = f.get_sliced_coco_annotation([10, 10, 100, 100])
    assert inside.segmentation == [[0.5, 0.25, 50.75, 0.25, 50.75, 30.5]]
    # a box stays a box (SAHI makes it a rectangle polygon)
    box = ck.CocoAnnotation.from_coco_bbox([10, 10, 50, 30], 1, "x").get_sliced_coco_annotation(
        [30, 0, 100, 100])
    assert box.segmentation == [] and box.bbox == [0.0, 10.0, 30.0, 30.0] and box.area == 900
    # nothing inside: an empty annotation, as in SAHI
    gone = ck.CocoAnnotation.from_coco_bbox([10, 10, 5, 5], 1, "x").get_sliced_coco_annotation(
        [50, 50, 100, 100])
    assert gone.bbox == [] and gone.area == 0


def test_create_coco_dict_matches_sahi(sahi_coco: Any) -> None:
    def images(mod: Any) -> list[Any]:
        out = []
        for k in range(3):
            im = mod.CocoImage(f"{k}.png", height=50, width=80)
            for j in range(k):
                im.add_annotation(mod.CocoAnnotation(
                    segmentation=[[j, j, j + 10, j, j + 10, j + 20, j, j + 20]], category_id=j,
                    category_name=str(j)))
            out.append(im)
        return out

    cats = [{"id": 0, "name": "0", "supercategory": "0"}, {"id": 1, "name": "1",
                                                           "supercategory": "1"}]
    for ignore in (False, True):
        a = ck.create_coco_dict(images(ck), cats, ignore_negative_samples=ignore)
        b = sahi_coco.create_coco_dict(images(sahi_coco), cats, ignore_negative_samples=ignore)
        assert a["images"] == b["images"] and a["categories"] == b["categories"]
        assert [{k: x[k] for k in ("id", "image_id", "bbox", "category_id", "iscrowd", "area")}
                for x in a["annotations"]] == [
            {k: x[k] for k in ("id", "image_id", "bbox", "category_id", "iscrowd", "area")}
            for x in b["annotations"]]


def test_prediction_array_matches_sahi(sahi_coco: Any) -> None:
    def build(mod: Any) -> Any:
        coco = mod.Coco()
        coco.add_category(mod.CocoCategory(id=1, name="car"))
        for k in range(3):
            im = mod.CocoImage(f"{k}.jpg", height=100, width=100)
            for j in range(k):
                im.add_prediction(mod.CocoPrediction(bbox=[j, j, 10, 10], category_id=1,
                                                     category_name="car", score=0.5 + j / 10))
            coco.add_image(im)
        return coco

    assert build(ck).prediction_array == build(sahi_coco).prediction_array
    a, b = build(ck), build(sahi_coco)
    a.ignore_negative_samples = b.ignore_negative_samples = True
    assert a.prediction_array == b.prediction_array and len(a.prediction_array) == 3


# -- whole-dataset operations ------------------------------------------------------------


def test_split_matches_sahi_and_leaves_the_global_rng_alone(sahi_coco: Any,
                                                             coco_utils: Path) -> None:
    path = str(coco_utils / "visdrone2019-det-train-first50image.json")
    ours = ck.Coco.from_coco_dict_or_path(path)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path)
    for rate, seed in ((0.9, 0), (0.7, 3), (0.5, 11)):
        state, np_state = random.getstate(), np.random.get_state()
        a = ours.split_coco_as_train_val(rate, seed)
        assert random.getstate() == state
        assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), np_state,
                                                         strict=True))
        b = theirs.split_coco_as_train_val(rate, seed)
        assert _names(a["train_coco"]) == _names(b["train_coco"])
        assert _names(a["val_coco"]) == _names(b["val_coco"])
        assert _ann_keys(a["val_coco"].json) == _ann_keys(b["val_coco"].json)


def test_split_results_are_independent(coco_utils: Path) -> None:
    coco = ck.Coco.from_coco_dict_or_path(str(coco_utils / "combined_coco.json"))
    first = coco.images[0]
    parts = coco.split_coco_as_train_val(0.5, 0)
    for part in parts.values():
        for im in part.images:
            im.annotations.clear()
            im.file_name = "changed"
    assert coco.images[0] is first and first.file_name == "terrain1.jpg"
    assert len(coco.json["annotations"]) == 12


@pytest.mark.parametrize("ratio", [1, 2, 3, 7])
@pytest.mark.parametrize("category_id", [None, 1, -1])
def test_subsample_and_upsample_match_sahi(sahi_coco: Any, coco_utils: Path, ratio: int,
                                           category_id: int | None) -> None:
    path = str(coco_utils / "visdrone2019-det-train-first50image.json")
    ours = ck.Coco.from_coco_dict_or_path(path)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path)
    a, b = ours.get_subsampled_coco(ratio, category_id), theirs.get_subsampled_coco(ratio,
                                                                                   category_id)
    assert _names(a) == _names(b)
    assert _ann_keys(a.json) == _ann_keys(b.json)
    a, b = ours.get_upsampled_coco(ratio, category_id), theirs.get_upsampled_coco(ratio,
                                                                                 category_id)
    assert _names(a) == _names(b)
    assert _ann_keys(a.json) == _ann_keys(b.json)


def test_subsample_by_category_zero(coco_utils: Path) -> None:
    """Category id 0 is a category (SAHI's ``if category_id:`` treats it as None)."""
    path = coco_utils / "visdrone2019-det-train-first50image.json"
    doc = _load_json(path)
    with_zero = {a["image_id"] for a in doc["annotations"] if a["category_id"] == 0}
    names = [im["file_name"] for im in doc["images"]]
    holds = [im["id"] in with_zero for im in doc["images"]]
    expected = [n for n, h in zip(names, holds, strict=True) if not h]
    expected += [n for n, h in zip(names, holds, strict=True) if h][::3]
    sub = ck.Coco.from_coco_dict_or_path(str(path)).get_subsampled_coco(3, category_id=0)
    assert _names(sub) == expected
    assert len(expected) != len(names[::3])


@pytest.mark.parametrize("bounds", [(0, float("inf")), (50, 5000), (100, 1e9)])
def test_area_filter_matches_sahi(sahi_coco: Any, coco_utils: Path,
                                  bounds: tuple[float, float]) -> None:
    path = str(coco_utils / "visdrone2019-det-train-first50image.json")
    ours = ck.Coco.from_coco_dict_or_path(path)
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path)
    assert _names(ours.get_area_filtered_coco(*bounds)) == _names(
        theirs.get_area_filtered_coco(*bounds))
    per_cat = {"vehicle": {"min": 30, "max": 3000}}
    assert _names(ours.get_area_filtered_coco(intervals_per_category=per_cat)) == _names(
        theirs.get_area_filtered_coco(intervals_per_category=per_cat))


def test_update_categories_matches_sahi(sahi_coco: Any, coco_utils: Path) -> None:
    desired = {"car": 3, "human": 7, "new": 9}
    path = str(coco_utils / "combined_coco.json")
    ours = ck.Coco.from_coco_dict_or_path(path, image_dir=str(coco_utils))
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path, image_dir=str(coco_utils))
    ours.update_categories(desired, update_image_filenames=True)
    theirs.update_categories(desired, update_image_filenames=True)
    a, b = ours.json, theirs.json
    assert a["categories"] == b["categories"]
    assert a["images"] == b["images"]
    assert _ann_keys(a) == _ann_keys(b)
    doc = _load_json(coco_utils / "combined_coco.json")
    a = ck.update_categories(desired, doc)
    b = sahi_coco.update_categories(desired, copy.deepcopy(doc))
    assert a["categories"] == b["categories"] and a["images"] == b["images"]
    assert a["annotations"] == b["annotations"]


def test_update_categories_keeps_category_keys(real_data: Path) -> None:
    path = _real(real_data, "coco-mini", "annotations", "person_keypoints_val2017.json")
    src = _load_json(path)
    out = ck.update_categories({"person": 0}, src)
    assert out["categories"][0]["keypoints"] == src["categories"][0]["keypoints"]
    assert out["categories"][0]["skeleton"] == src["categories"][0]["skeleton"]
    assert {a["category_id"] for a in out["annotations"]} == {0}
    assert out["info"] == src["info"] and out["licenses"] == src["licenses"]


def test_dict_merge_matches_sahi(sahi_coco: Any, coco_utils: Path) -> None:
    t1 = _load_json(coco_utils / "terrain1_coco.json")
    t2 = _load_json(coco_utils / "terrain2_coco.json")
    desired = {"human": 1, "car": 2, "big_vehicle": 3}
    a = ck.merge(t1, t2, desired)
    b = sahi_coco.merge(copy.deepcopy(t1), copy.deepcopy(t2), desired)
    assert a == b
    a = ck.merge_from_list([t1, t2, t1], verbose=0)
    b = sahi_coco.merge_from_list([copy.deepcopy(t1), copy.deepcopy(t2), copy.deepcopy(t1)],
                                  verbose=0)
    assert a == b
    assert len(a["images"]) == 3 and [c["name"] for c in a["categories"]] == ["human", "car"]
    assert [c["id"] for c in a["categories"]] == [0, 1]


def test_dict_merge_keeps_categories_only_the_second_has(sahi_coco: Any,
                                                         coco_utils: Path) -> None:
    t1 = _load_json(coco_utils / "terrain1_coco.json")  # human only
    t2 = _load_json(coco_utils / "terrain2_coco.json")  # car only
    b = sahi_coco.merge(copy.deepcopy(t1), copy.deepcopy(t2))
    assert len(b["annotations"]) == 7  # SAHI drops the five cars
    a = ck.merge(t1, t2)
    assert len(a["annotations"]) == 12
    assert a["categories"] == [t1["categories"][0], {**t2["categories"][0], "id": 2}]
    cars = [x for x in a["annotations"] if x["category_id"] == 2]
    assert [x["bbox"] for x in cars] == [x["bbox"] for x in t2["annotations"]]
    assert a["images"] == b["images"]


def test_merge_from_file(tmp_path: Path, coco_utils: Path) -> None:
    out = tmp_path / "sub" / "merged.json"
    ck.merge_from_file(str(coco_utils / "terrain1_coco.json"),
                       str(coco_utils / "terrain2_coco.json"), str(out))
    doc = _load_json(out)
    assert doc == ck.merge(_load_json(coco_utils / "terrain1_coco.json"),
                           _load_json(coco_utils / "terrain2_coco.json"))
    ck.update_categories_from_file({"car": 1}, str(out), str(out))
    assert {a["category_id"] for a in _load_json(out)["annotations"]} == {1}


def test_coco_merge_matches_sahi(sahi_coco: Any, coco_utils: Path) -> None:
    def pair(mod: Any) -> tuple[Any, Any]:
        return (mod.Coco.from_coco_dict_or_path(str(coco_utils / "terrain1_coco.json"),
                                                image_dir=str(coco_utils)),
                mod.Coco.from_coco_dict_or_path(str(coco_utils / "terrain2_coco.json"),
                                                image_dir=str(coco_utils)))

    a1, a2 = pair(ck)
    b1, b2 = pair(sahi_coco)
    a1.merge(a2, verbose=0)
    b1.merge(b2, verbose=0)
    a, b = a1.json, b1.json
    assert a["images"] == b["images"] and a["categories"] == b["categories"]
    assert _ann_keys(a) == _ann_keys(b)
    assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
    assert _names(a2) == ["terrain2.png"] and a2.category_mapping == {1: "car"}  # unchanged


def test_clip_to_image_matches_sahi_and_keeps_polygons(sahi_coco: Any, coco_utils: Path) -> None:
    doc = _load_json(coco_utils / "terrain2_coco.json")
    doc["annotations"][0]["bbox"] = [-20.5, 600, 100, 200]
    doc["annotations"][0]["segmentation"] = [[-20.5, 600, 79.5, 600, 79.5, 800, -20.5, 800]]
    doc["annotations"][1]["bbox"] = [2000, 10, 10, 10]
    doc["annotations"][1]["segmentation"] = []
    ours = ck.Coco.from_coco_dict_or_path(doc, clip_bboxes_to_img_dims=True).json
    theirs = sahi_coco.Coco.from_coco_dict_or_path(copy.deepcopy(doc),
                                                   clip_bboxes_to_img_dims=True).json
    assert _ann_keys(ours) == _ann_keys(theirs) and len(ours["annotations"]) == 4
    assert [[int(v) for v in x["bbox"]] for x in ours["annotations"]] == [
        x["bbox"] for x in theirs["annotations"]]
    first = ours["annotations"][0]
    assert first["bbox"] == [0.0, 600.0, 79.5, 82.0]  # SAHI: [0, 600, 79, 82]
    assert first["segmentation"] == [[0.0, 600.0, 0.0, 682.0, 79.5, 682.0, 79.5, 600.0]]
    assert theirs["annotations"][0]["segmentation"] == []  # SAHI drops it
    assert ours["annotations"][1] == {**doc["annotations"][2], "id": 2}


# -- slicing -----------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(h=st.integers(0, 2500), w=st.integers(1, 2500), sh=st.integers(100, 1200),
       sw=st.integers(100, 1200), oh=st.floats(0, 0.6), ow=st.floats(0, 0.6))
def test_slice_windows_match_sahi(h: int, w: int, sh: int, sw: int, oh: float,
                                  ow: float) -> None:
    slicing = pytest.importorskip("sahi.slicing", reason="sahi is not installed")
    assert ck.get_slice_bboxes(h, w, sh, sw, True, oh, ow) == slicing.get_slice_bboxes(
        h, w, sh, sw, True, oh, ow)


def test_auto_slice_params_match_sahi(sahi_slicing: Any) -> None:
    sizes = [1, 2, 100, 511, 512, 513, 640, 724, 1000, 1024, 1365, 1500, 2048, 2986, 4096, 5000,
             6000, 8192, 12000]
    for h in sizes:
        for w in sizes:
            assert ck.get_auto_slice_params(h, w) == sahi_slicing.get_auto_slice_params(h, w)
            assert ck.get_slice_bboxes(h, w) == sahi_slicing.get_slice_bboxes(h, w)


def test_slice_window_errors() -> None:
    with pytest.raises(ValueError, match="Overlap ratio"):
        ck.get_slice_bboxes(100, 100, 10, 10, True, 1.0, 0.2)
    with pytest.raises(ValueError):
        ck.get_slice_bboxes(100, 100, None, None, False)


def test_annotation_inside_slice(sahi_slicing: Any) -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        box = rng.integers(-20, 120, 4).astype(float).tolist()
        sl = sorted(rng.integers(0, 100, 2).tolist())
        window = [sl[0], sl[0] // 2, sl[1], sl[1] + 5]
        assert ck.annotation_inside_slice({"bbox": box}, window) == \
            sahi_slicing.annotation_inside_slice({"bbox": box}, window)


def _compare_slice_outputs(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in a["images"]] == [
        (i["id"], i["file_name"], i["width"], i["height"]) for i in b["images"]]
    assert _ann_keys(a) == _ann_keys(b)
    for x, y in zip(a["annotations"], b["annotations"], strict=True):
        assert x["bbox"] == pytest.approx(y["bbox"])


@pytest.mark.parametrize("name", ["terrain1_coco.json", "terrain2_coco.json",
                                  "combined_coco.json"])
@pytest.mark.parametrize("params", [(512, 512, 0.2, 0.2, 0.1), (256, 300, 0.1, 0.3, 0.1),
                                    (1024, 1024, 0.0, 0.0, 0.5)])
def test_slice_coco_matches_sahi(sahi_slicing: Any, coco_utils: Path, tmp_path: Path,
                                 name: str, params: tuple[int, int, float, float, float]) -> None:
    sh, sw, oh, ow, mar = params
    kw = {"slice_height": sh, "slice_width": sw, "overlap_height_ratio": oh,
          "overlap_width_ratio": ow, "min_area_ratio": mar}
    a, pa = ck.slice_coco(str(coco_utils / name), str(coco_utils), "out",
                          output_dir=str(tmp_path / "ck"), **kw)
    b, pb = sahi_slicing.slice_coco(str(coco_utils / name), str(coco_utils), "out",
                                    output_dir=str(tmp_path / "sahi"), **kw)
    _compare_slice_outputs(a, b)
    assert Path(pa).name == Path(pb).name == "out_coco.json"
    assert _load_json(Path(pa)) == a
    assert sorted(os.listdir(tmp_path / "ck")) == sorted(os.listdir(tmp_path / "sahi"))
    from PIL import Image

    for im in a["images"][:6]:
        mine = Image.open(tmp_path / "ck" / im["file_name"])
        theirs = Image.open(tmp_path / "sahi" / im["file_name"])
        assert np.array_equal(np.asarray(mine.convert("RGB")), np.asarray(theirs.convert("RGB")))
    src_mode = Image.open(coco_utils / _load_json(coco_utils / name)["images"][0]["file_name"]).mode
    assert Image.open(tmp_path / "ck" / a["images"][0]["file_name"]).mode == (
        src_mode if src_mode in ("P", "L", "RGBA") else "RGB")


@pytest.mark.parametrize("params", [(256, 256, 0.2, 0.2, 0.1), (200, 330, 0.0, 0.25, 0.3)])
def test_slice_coco_matches_sahi_on_generated_data(sahi_slicing: Any, tmp_path: Path,
                                                   params: tuple[int, int, float, float, float]
                                                   ) -> None:
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    doc = _rectilinear_dataset(7, img_dir)
    src = tmp_path / "gen.json"
    src.write_text(json.dumps(doc))
    sh, sw, oh, ow, mar = params
    kw = {"slice_height": sh, "slice_width": sw, "overlap_height_ratio": oh,
          "overlap_width_ratio": ow, "min_area_ratio": mar}
    for ignore in (False, True):
        a, _ = ck.slice_coco(str(src), str(img_dir), "", ignore_negative_samples=ignore, **kw)
        b, _ = sahi_slicing.slice_coco(str(src), str(img_dir), "",
                                       ignore_negative_samples=ignore, **kw)
        _compare_slice_outputs(a, b)
        for x, y in zip(a["annotations"], b["annotations"], strict=True):
            assert x["area"] == pytest.approx(y["area"])
            if not y["segmentation"] or not y["segmentation"][0]:
                continue
            if x["segmentation"]:  # the pieces cover the same area
                from pycocotools import mask as mask_utils

                h, w = 2000, 2000
                ra = mask_utils.merge(mask_utils.frPyObjects(x["segmentation"], h, w))
                rb = mask_utils.merge(mask_utils.frPyObjects(
                    [r for r in y["segmentation"] if len(r) >= 6], h, w))
                assert mask_utils.area(ra) == mask_utils.area(rb)
            else:  # a box-only annotation stays box-only (SAHI: rectangle polygon)
                assert x["segmentation"] == []


def test_slice_coco_keeps_crowd_rle_and_its_pixels(real_data: Path, tmp_path: Path) -> None:
    """Non-overlapping tiles: the crowd masks' cropped pixel counts add up to the whole."""
    root = _real(real_data, "tiny-coco-images")
    path = root / "annotations" / "instances_val2017.json"
    src = _load_json(path)
    crowd = [a for a in src["annotations"] if a["iscrowd"] == 1]
    assert len(crowd) == 1
    out, _ = ck.slice_coco(str(path), str(root / "images" / "val2017"), "x",
                           slice_height=256, slice_width=256, overlap_height_ratio=0,
                           overlap_width_ratio=0, min_area_ratio=0.0)
    pieces = [a for a in out["annotations"] if a["iscrowd"] == 1]
    assert pieces and all(isinstance(a["segmentation"], dict) for a in pieces)
    assert sum(a["area"] for a in pieces) == pytest.approx(crowd[0]["area"], abs=1)
    tiles = {im["id"]: im for im in out["images"]}
    for a in pieces:
        tile = tiles[a["image_id"]]
        assert a["segmentation"]["size"] == [tile["height"], tile["width"]]
        assert tile["source_image_id"] == crowd[0]["image_id"]


def test_slice_coco_moves_keypoints(real_data: Path) -> None:
    root = _real(real_data, "coco-mini")
    path = root / "annotations" / "person_keypoints_val2017.json"
    src = _load_json(path)
    by_id = {a["id"]: a for a in src["annotations"]}
    out, _ = ck.slice_coco(str(path), str(root / "val2017"), "x", slice_height=400,
                           slice_width=400, min_area_ratio=0.9)
    tiles = {im["id"]: im for im in out["images"]}
    checked = 0
    for a in out["annotations"]:
        if a.get("iscrowd") or "keypoints" not in a:
            continue
        tile = tiles[a["image_id"]]
        x0, y0, tw, th = tile["source_window"]
        # the source annotation: same image, box moved by the window
        cands = [s for s in by_id.values() if s["image_id"] == tile["source_image_id"]
                 and s["bbox"][0] - x0 == pytest.approx(a["bbox"][0])
                 and s["bbox"][1] - y0 == pytest.approx(a["bbox"][1])]
        if len(cands) != 1:
            continue
        kp = np.asarray(cands[0]["keypoints"], float).reshape(-1, 3)
        mine = np.asarray(a["keypoints"], float).reshape(-1, 3)
        inside = ((kp[:, 2] > 0) & (kp[:, 0] >= x0) & (kp[:, 0] <= x0 + tw)
                  & (kp[:, 1] >= y0) & (kp[:, 1] <= y0 + th))
        assert np.allclose(mine[inside, 0], kp[inside, 0] - x0)
        assert np.allclose(mine[inside, 1], kp[inside, 1] - y0)
        assert np.array_equal(mine[inside, 2], kp[inside, 2])
        assert not mine[~inside].any()  # outside the tile: (0, 0, 0), "not labeled"
        assert a["num_keypoints"] == int(inside.sum())
        checked += 1
    assert checked >= 5


def test_slice_coco_without_output_dir_writes_nothing(coco_utils: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    doc, path = ck.slice_coco(str(coco_utils / "terrain_all_coco.json"), str(coco_utils), "x")
    assert path == "" and os.listdir(tmp_path) == []
    # terrain3.png is absent: its record's size is used
    assert any(im["file_name"].startswith("terrain3_0_") for im in doc["images"])


def test_slice_image_matches_sahi(sahi_coco: Any, sahi_slicing: Any, real_data: Path,
                                  coco_utils: Path, tmp_path: Path) -> None:
    ours = ck.Coco.from_coco_dict_or_path(str(coco_utils / "terrain2_coco.json"))
    theirs = sahi_coco.Coco.from_coco_dict_or_path(str(coco_utils / "terrain2_coco.json"))
    image = str(coco_utils / "terrain2.png")
    ra = ck.slice_image(image, ours.images[0].annotations, "t", str(tmp_path / "a"), 256, 256)
    rb = sahi_slicing.slice_image(image, theirs.images[0].annotations, "t",
                                  str(tmp_path / "b"), 256, 256)
    assert ra.filenames == rb.filenames and ra.starting_pixels == rb.starting_pixels
    assert all(np.array_equal(x, y) for x, y in zip(ra.images, rb.images, strict=True))
    for ca, cb in zip(ra.coco_images, rb.coco_images, strict=True):
        assert (ca.height, ca.width) == (cb.height, cb.width)
        assert [a.bbox for a in ca.annotations] == [b.bbox for b in cb.annotations]
    assert sorted(os.listdir(tmp_path / "a")) == sorted(os.listdir(tmp_path / "b"))
    item = ra[3]
    assert isinstance(item, dict) and item["filename"] == rb[3]["filename"]
    assert len(ra[1:4]) == 3
    a = ck.create_coco_dict(ra.coco_images, ours.json_categories)
    b = sahi_coco.create_coco_dict(rb.coco_images, theirs.json_categories)
    assert _ann_keys(a) == _ann_keys(b)
    vehicles = _real(real_data, "sahi-testdata", "small-vehicles1.jpeg")
    ra, rb = ck.slice_image(str(vehicles)), sahi_slicing.slice_image(str(vehicles))
    assert ra.starting_pixels == rb.starting_pixels and len(ra) == len(rb) > 1
    assert all(np.array_equal(x, y) for x, y in zip(ra.images, rb.images, strict=True))


# -- YOLO --------------------------------------------------------------------------------


def _labels(folder: Path) -> dict[str, list[list[str]]]:
    return {p.name: [ln.split() for ln in p.read_text().splitlines()]
            for p in sorted(folder.glob("*.txt"))}


@pytest.mark.parametrize("api", ["method", "function"])
def test_yolo_export_matches_sahi_but_for_class_indices(sahi_coco: Any, coco_utils: Path,
                                                        tmp_path: Path, api: str) -> None:
    path = str(coco_utils / "combined_coco.json")
    ours = ck.Coco.from_coco_dict_or_path(path, image_dir=str(coco_utils))
    theirs = sahi_coco.Coco.from_coco_dict_or_path(path, image_dir=str(coco_utils))
    if api == "method":
        ours.export_as_yolo(str(tmp_path / "ck"), train_split_rate=0.5)
        theirs.export_as_yolo(str(tmp_path / "sahi"), train_split_rate=0.5)
    else:
        assert ck.export_coco_as_yolo(str(tmp_path / "ck"), ours, train_split_rate=0.5) == str(
            tmp_path / "ck" / "data.yml")
        sahi_coco.export_coco_as_yolo(str(tmp_path / "sahi"), theirs, train_split_rate=0.5)
    import yaml

    data = yaml.safe_load((tmp_path / "ck" / "data.yml").read_text())
    data_s = yaml.safe_load((tmp_path / "sahi" / "data.yml").read_text())
    assert data["names"] == data_s["names"] == ["human", "car", "big_vehicle"]
    assert data["nc"] == data_s["nc"] == 3
    names = {c["id"]: c["name"] for c in _load_json(Path(path))["categories"]}
    for split in ("train", "val"):
        assert Path(data[split]) == tmp_path / "ck" / split
        assert sorted(os.listdir(tmp_path / "ck" / split)) == sorted(
            os.listdir(tmp_path / "sahi" / split))
        mine, sahis = _labels(tmp_path / "ck" / split), _labels(tmp_path / "sahi" / split)
        assert mine.keys() == sahis.keys()
        for f in mine:
            assert [r[1:] for r in mine[f]] == [r[1:] for r in sahis[f]]  # same numbers
            # SAHI writes the COCO id; cocokit the index of the category's name in names
            assert [data["names"][int(r[0])] for r in mine[f]] == [
                names[int(r[0])] for r in sahis[f]]


def test_yolo_class_indices_match_data_yml(real_data: Path, tmp_path: Path) -> None:
    root = _real(real_data, "tiny-coco-images")
    path = root / "annotations" / "instances_train2017.json"
    src = _load_json(path)
    coco = ck.Coco.from_coco_dict_or_path(str(path), image_dir=str(root / "images" / "train2017"))
    yml = ck.export_coco_as_yolo(str(tmp_path / "y"), coco, train_split_rate=0.5,
                                 disable_symlink=True)
    from cocokit.io.yolo import load_data_yaml

    data = load_data_yaml(yml)
    assert data["nc"] == 80 and data["names"] == [c["name"] for c in src["categories"]]
    cat_name = {c["id"]: c["name"] for c in src["categories"]}
    files = {im["file_name"]: im for im in src["images"]}
    by_image: dict[int, list[dict[str, Any]]] = {}
    for a in src["annotations"]:
        by_image.setdefault(a["image_id"], []).append(a)
    seen = 0
    for split in ("train", "val"):
        for label in (tmp_path / "y" / split).glob("*.txt"):
            im = files[label.stem + ".jpg"]
            objs = [a for a in by_image.get(im["id"], []) if not a["iscrowd"]]
            rows = [r.split() for r in label.read_text().splitlines()]
            assert [data["names"][int(r[0])] for r in rows] == [cat_name[a["category_id"]]
                                                                 for a in objs]
            for r, a in zip(rows, objs, strict=True):
                x, y, w, h = a["bbox"]
                cx, cy = float(r[1]) * im["width"], float(r[2]) * im["height"]
                assert cx == pytest.approx(x + w / 2) and cy == pytest.approx(y + h / 2)
            assert (tmp_path / "y" / split / (label.stem + ".jpg")).is_file()
            seen += 1
    assert seen == 32


def test_yolo_export_names_duplicates_like_sahi(coco_utils: Path, tmp_path: Path) -> None:
    coco = ck.Coco.from_coco_dict_or_path(str(coco_utils / "terrain2_coco.json"),
                                          image_dir=str(coco_utils))
    coco.get_upsampled_coco(3).export_as_yolo(str(tmp_path))
    assert sorted(os.listdir(tmp_path / "train")) == [
        "terrain2.png", "terrain2.txt", "terrain2_2.png", "terrain2_2.txt", "terrain2_3.png",
        "terrain2_3.txt"]
    texts = {(tmp_path / "train" / f).read_text() for f in os.listdir(tmp_path / "train")
             if f.endswith(".txt")}
    assert len(texts) == 1 and len(texts.pop().splitlines()) == 5


def test_yolo_export_refuses_missing_images(coco_utils: Path, tmp_path: Path) -> None:
    coco = ck.Coco.from_coco_dict_or_path(str(coco_utils / "terrain_all_coco.json"),
                                          image_dir=str(coco_utils))
    with pytest.raises(InputError, match=r"terrain3\.png"):
        coco.export_as_yolo(str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_yolo_export_via_yml(coco_utils: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yml"
    cfg.write_text(f"train_json_path: {coco_utils / 'terrain1_coco.json'}\n"
                   f"train_image_dir: {coco_utils}\n"
                   f"val_json_path: {coco_utils / 'terrain2_coco.json'}\n"
                   f"val_image_dir: {coco_utils}\n")
    with pytest.raises(InputError, match="not one of the train categories"):
        ck.export_coco_as_yolo_via_yml(str(cfg), str(tmp_path / "y"))
    cfg.write_text(f"train_json_path: {coco_utils / 'combined_coco.json'}\n"
                   f"train_image_dir: {coco_utils}\n"
                   f"val_json_path: {coco_utils / 'modified_terrain2_coco.json'}\n"
                   f"val_image_dir: {coco_utils}\n")
    yml = ck.export_coco_as_yolo_via_yml(str(cfg), str(tmp_path / "y"))
    assert yml == str(tmp_path / "y" / "data.yml")
    rows = (tmp_path / "y" / "val" / "terrain2.txt").read_text().splitlines()
    assert len(rows) == 5 and {r.split()[0] for r in rows} == {"1"}  # car is index 1


# -- dict and file tools -----------------------------------------------------------------


def test_count_images_with_category_matches_sahi(sahi_coco: Any, coco_utils: Path) -> None:
    path = str(coco_utils / "visdrone2019-det-train-first50image.json")
    a, b = ck.count_images_with_category(path), sahi_coco.count_images_with_category(path)
    assert a.counts == b.counts and a.total_images == b.total_images == 48
    assert a.frequencies() == b.frequencies()
    assert (a + a).counts == (b + b).counts


def test_remove_invalid_results_matches_sahi(sahi_coco: Any, real_data: Path) -> None:
    folder = _real(real_data, "sahi-testdata", "coco_evaluate")
    results = _load_json(folder / "result.json")
    results[3]["bbox"] = [-1, 2, 3, 4]
    results[5]["bbox"] = [1, 2, 3]
    results[8]["bbox"] = [1, 20000, 3, 4]
    frozen = copy.deepcopy(results)
    dataset = str(folder / "dataset.json")
    for ds in (None, dataset, _load_json(Path(dataset))):
        a = ck.remove_invalid_coco_results(results, ds)
        b = sahi_coco.remove_invalid_coco_results(copy.deepcopy(results), ds)
        assert a == b
    assert len(ck.remove_invalid_coco_results(results, dataset)) == len(results) - 3
    assert results == frozen
    assert ck.remove_invalid_coco_results(str(folder / "result.json")) == \
        sahi_coco.remove_invalid_coco_results(str(folder / "result.json"))


def test_add_bbox_and_area_matches_sahi(sahi_coco: Any, coco_utils: Path,
                                        tmp_path: Path) -> None:
    src = str(coco_utils / "terrain_all_coco.json")
    a = ck.add_bbox_and_area_to_coco(src, str(tmp_path / "a.json"))
    b = sahi_coco.add_bbox_and_area_to_coco(src, str(tmp_path / "b.json"))
    assert [x["bbox"] for x in a["annotations"]] == [x["bbox"] for x in b["annotations"]]
    assert [x["area"] for x in a["annotations"]] == pytest.approx(
        [x["area"] for x in b["annotations"]])
    assert _load_json(tmp_path / "a.json") == a


def test_add_bbox_and_area_handles_rle(real_data: Path, tmp_path: Path) -> None:
    path = _real(real_data, "tiny-coco-images", "annotations", "instances_val2017.json")
    src = _load_json(path)
    out = ck.add_bbox_and_area_to_coco(str(path), str(tmp_path / "o.json"))
    for a, b in zip(out["annotations"], src["annotations"], strict=True):
        if b["iscrowd"]:  # pixel count and box of the mask, as in the official file
            assert a["area"] == pytest.approx(b["area"]) and a["bbox"] == pytest.approx(b["bbox"])
            assert a["segmentation"] == b["segmentation"]


def test_dataset_interop(coco_utils: Path) -> None:
    ds = cocokit.load(coco_utils / "combined_coco.json")
    coco = ck.Coco.from_coco_dict_or_path(ds)
    assert len(coco.images) == 2
    out = coco.to_dataset()
    assert len(out.annotations) == 12 and out.images.id.tolist() == [1, 2]
