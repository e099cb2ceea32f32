"""The dataset model: columns, look-ups, joins, the builder and immutability."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cocokit
from cocokit import DatasetBuilder
from cocokit.dataset import equal_pairs, images_per_category
from cocokit.geometry import Polygons, parse_polygons, polygon_bboxes

from .conftest import DATA, real_path

KEYPOINTS = DATA / "coco_mini_person_keypoints_val2017.json"
TINY = DATA / "tiny_coco_val2017.json"


def test_pleasant_api_on_real_file() -> None:
    doc = msgspec.json.decode(TINY.read_bytes())
    ds = cocokit.load(TINY)
    assert len(ds) == len(doc["images"]) == 6
    assert ds.images[0] == doc["images"][0]
    assert ds.images[-1] == doc["images"][-1]
    assert ds.annotations[5] == doc["annotations"][5]
    assert ds.categories.by_name("person") == doc["categories"][0]
    assert ds.categories.by_id(90)["name"] == "toothbrush"
    assert ds.categories.id_of("dog") == 18
    assert "dog" in ds.categories and 18 in ds.categories and 1000 not in ds.categories
    for item in ds:
        expected = [a for a in doc["annotations"] if a["image_id"] == item.image["id"]]
        assert item.annotations == expected
    assert ds.image_row(doc["images"][3]["id"]) == 3
    with pytest.raises(KeyError):
        ds.image_row(-5)
    with pytest.raises(IndexError):
        ds.images[6]


def test_columns_match_records() -> None:
    doc = msgspec.json.decode(TINY.read_bytes())
    ds = cocokit.load(TINY)
    anns = ds.annotations
    assert anns.id.tolist() == [a["id"] for a in doc["annotations"]]
    np.testing.assert_array_equal(anns.bbox, [a["bbox"] for a in doc["annotations"]])
    assert anns.area.tolist() == [a["area"] for a in doc["annotations"]]
    assert anns.iscrowd.tolist() == [a["iscrowd"] for a in doc["annotations"]]
    assert ds.images.file_name.tolist() == [im["file_name"] for im in doc["images"]]
    counts = {im["id"]: 0 for im in doc["images"]}
    for a in doc["annotations"]:
        counts[a["image_id"]] += 1
    assert ds.annotation_counts.tolist() == list(counts.values())


def test_columns_are_read_only() -> None:
    ds = cocokit.load(TINY)
    with pytest.raises(ValueError):
        ds.annotations.bbox[0, 0] = 5
    with pytest.raises(ValueError):
        ds.images.id[0] = 5


def test_keypoints_kept_and_readable() -> None:
    doc = msgspec.json.decode(KEYPOINTS.read_bytes())
    ds = cocokit.load(KEYPOINTS)
    first = doc["annotations"][0]
    kp = ds.annotations.keypoints_array(0)
    assert kp.shape == (17, 3)
    np.testing.assert_array_equal(kp.ravel(), first["keypoints"])
    assert ds.annotations.num_keypoints[0] == first["num_keypoints"]
    assert ds.categories[0]["skeleton"] == doc["categories"][0]["skeleton"]
    assert int(np.count_nonzero(ds.annotation_counts == 0)) == 40


def test_polygons_flat_layout_matches_json() -> None:
    path = real_path("coco-mini", "annotations", "instances_val2017.json")
    doc = msgspec.json.decode(path.read_bytes())
    ds = cocokit.load(path)
    polys = ds.annotations.polygons
    assert len(polys) == len(doc["annotations"])
    for i, a in enumerate(doc["annotations"]):
        if isinstance(a["segmentation"], list):
            assert polys.to_coco(i) == a["segmentation"]
        else:
            assert polys.ring_count[i] == 0
    # bounds of the polygons against the stored boxes (COCO boxes are the polygon bounds)
    rows = np.flatnonzero(ds.annotations.segmentation_kind == 1)
    boxes = polygon_bboxes(parse_polygons(ds.annotations.segmentation, rows))
    np.testing.assert_allclose(boxes, ds.annotations.bbox[rows], atol=0.02)


def test_parse_polygons_subset_keeps_order() -> None:
    ds = cocokit.load(TINY)
    rows = np.array([3, 0, 2])
    sub = parse_polygons(ds.annotations.segmentation, rows)
    full = ds.annotations.polygons
    for k, r in enumerate(rows):
        assert sub.to_coco(k) == full.to_coco(int(r))


def test_polygons_from_rings() -> None:
    p = Polygons.from_rings(
        [[np.array([[0, 0], [2, 0], [2, 2]])], [], [[1, 1, 3, 1, 3, 3], [5, 5, 6, 5, 6, 6]]]
    )
    assert p.ring_count.tolist() == [1, 0, 2]
    assert p.to_coco(2) == [[1.0, 1.0, 3.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 5.0, 6.0, 6.0]]
    np.testing.assert_array_equal(polygon_bboxes(p)[[0, 2]], [[0, 0, 2, 2], [1, 1, 5, 5]])
    assert np.isnan(polygon_bboxes(p)[1]).all()


def test_builder_accepts_numpy_and_python_numbers() -> None:
    b = DatasetBuilder()
    cid = b.add_category("thing", supercategory="x")
    iid = b.add_image("a.jpg", np.int64(640), np.int32(480), id=np.int64(12))
    b.add_annotation(iid, cid, polygon=np.array([[1.5, 2.5], [10, 2.5], [10, 9]]))
    b.add_annotation(iid, "thing", bbox=(np.float32(1), 2, 3.5, np.float64(4)))
    # a 20x10 square at (30, 10), as pycocotools compresses it (its counts sum to 480 * 640)
    counts = "ZR>:f>0000000000000000000000000000000000000fad8"
    b.add_annotation(iid, cid, rle={"size": np.array([480, 640]), "counts": counts.encode()})
    b.add_annotation(iid, cid, bbox=[0, 0, 5, 5], keypoints=np.array([1, 2, 2, 0, 0, 0]))
    ds = b.build()
    assert ds.images.id.tolist() == [12]
    recs = list(ds.annotations)
    assert recs[0]["segmentation"] == [[1.5, 2.5, 10.0, 2.5, 10.0, 9.0]]
    assert recs[1]["bbox"] == [1.0, 2.0, 3.5, 4.0]
    assert recs[2]["segmentation"] == {"size": [480, 640], "counts": counts}
    assert recs[2]["iscrowd"] == 1
    assert recs[3]["num_keypoints"] == 1
    out = cocokit.to_dict(ds, image_ids="auto", annotation_ids="auto")
    assert [a["image_id"] for a in out["annotations"]] == [1, 1, 1, 1]
    with pytest.raises(KeyError):
        b.add_annotation(iid, "nope", bbox=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="4 numbers"):
        b.add_annotation(iid, cid, bbox=[0, 0, 1])


def test_builder_extends_a_dataset_without_touching_it() -> None:
    ds = cocokit.load(TINY)
    b = DatasetBuilder(ds)
    iid = b.add_image("new.jpg", 10, 10)
    b.add_annotation(iid, "person", bbox=[1, 1, 2, 2])
    bigger = b.build()
    assert len(bigger) == len(ds) + 1
    assert len(bigger.annotations) == len(ds.annotations) + 1
    assert len(cocokit.load(TINY).annotations) == len(ds.annotations)
    assert iid == int(ds.images.id.max()) + 1


def test_select_images_keeps_their_annotations() -> None:
    ds = cocokit.load(TINY)
    sub = ds.select_images([4, 1])
    assert sub.images.id.tolist() == [ds.images.id[4], ds.images.id[1]]
    assert set(sub.annotations.image_id.tolist()) == {ds.images.id[4], ds.images.id[1]}
    assert len(sub.annotations) == ds.annotation_counts[[4, 1]].sum()
    assert len(ds) == 6  # the input is unchanged


# -- property: whatever the dataset, the export keeps integrity and references ---------

records = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.integers(0, 2),
        st.floats(0, 100, allow_nan=False),
        st.floats(0.5, 50, allow_nan=False),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(
    image_ids=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=6, unique=True),
    anns=records,
    drop_negatives=st.booleans(),
)
def test_export_keeps_integrity(
    image_ids: list[int], anns: list[tuple[int, int, float, float]], drop_negatives: bool
) -> None:
    b = DatasetBuilder()
    cats = [b.add_category(f"c{k}", id=10 + k) for k in range(3)]
    for k, iid in enumerate(image_ids):
        b.add_image(f"{k}.jpg", 100, 100, id=iid)
    expected = []
    for img, cat, x, w in anns:
        img_id = image_ids[img % len(image_ids)]
        b.add_annotation(img_id, cats[cat], bbox=[x, x / 2, w, w])
        expected.append((f"{image_ids.index(img_id)}.jpg", cats[cat], x))
    ds = b.build()
    for policy in ("auto", "keep"):
        out = cocokit.to_dict(ds, image_ids=policy,
            annotation_ids=policy,  # type: ignore[arg-type]
            ignore_negative_samples=drop_negatives,
        )
        img_ids = [im["id"] for im in out["images"]]
        ann_ids = [a["id"] for a in out["annotations"]]
        assert len(set(img_ids)) == len(img_ids)
        assert len(set(ann_ids)) == len(ann_ids)
        if policy == "auto":
            assert img_ids == list(range(1, len(img_ids) + 1))
            assert ann_ids == list(range(1, len(ann_ids) + 1))
        names = {im["id"]: im["file_name"] for im in out["images"]}
        got = [(names[a["image_id"]], a["category_id"], a["bbox"][0]) for a in out["annotations"]]
        assert got == expected
        with_anns = {e[0] for e in expected}
        kept = {im["file_name"] for im in out["images"]}
        assert kept == (
            with_anns if drop_negatives else {f"{k}.jpg" for k in range(len(image_ids))}
        )


def test_repr_and_len(tmp_path: Path) -> None:
    ds = cocokit.load(TINY)
    assert "6 images, 136 annotations, 80 categories" in repr(ds)


def test_import_stays_light() -> None:
    """`import cocokit` loads no shapely, Pillow or OpenCV (they load on first use)."""
    import subprocess
    import sys

    from .conftest import REPO

    code = ("import sys, cocokit; heavy = [m for m in ('shapely', 'PIL', 'cv2', 'matplotlib') "
            "if m in sys.modules]; print(heavy); cocokit.draw; print('PIL' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
                         check=True).stdout.split("\n")
    assert out[0] == "[]"
    assert out[1] == "True"


@pytest.mark.parametrize(("a", "b", "pairs"), [
    ([3, 1, 3, 2, 3, 1], None, [(1, 5), (0, 2), (0, 4)]),  # (first, later), by value
    ([5, 5], None, [(0, 1)]),
    ([], None, []),
    ([1, 2, 1], [2, 1, 1, 7], [(0, 1), (0, 2), (1, 0), (2, 1), (2, 2)]),
    ([9], [1, 2], []),
    ([], [1], []),
])
def test_equal_pairs(a: list[int], b: list[int] | None, pairs: list[tuple[int, int]]) -> None:
    i, j = equal_pairs(np.array(a, np.int64), None if b is None else np.array(b, np.int64))
    assert list(zip(i.tolist(), j.tolist(), strict=True)) == pairs


def test_equal_pairs_of_digests() -> None:
    d = np.array([b"x" * 16, b"y" * 16, b"x" * 16], "S16")
    i, j = equal_pairs(d)
    assert (i.tolist(), j.tolist()) == ([0], [2])


def test_images_per_category_in_one_run_or_many() -> None:
    rng = np.random.default_rng(0)
    cat, img = rng.integers(0, 5, 500), rng.integers(0, 40, 500)
    expected = [len(set(img[cat == c].tolist())) for c in range(6)]
    kept = cat.copy(), img.copy()
    one = images_per_category([(cat, img)], 6, 40)
    runs = [(cat[s : s + 37], img[s : s + 37]) for s in range(0, 500, 37)]  # > 8: merged
    assert one.tolist() == images_per_category(runs, 6, 40).tolist() == expected
    assert images_per_category([], 3, 0).tolist() == [0, 0, 0]
    assert np.array_equal(cat, kept[0]) and np.array_equal(img, kept[1])  # not sorted in place

