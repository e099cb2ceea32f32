"""LabelMe: the real SAHI terrain files against the COCO files beside them, shapes and
keys in both directions, malformed files named with the place."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

import cocokit
from cocokit.errors import InputError
from cocokit.io import formats
from cocokit.io.formats import labelme
from tests.conftest import real_path


@pytest.mark.parametrize("name", ["terrain1", "terrain2", "terrain3"])
def test_sahi_terrain_matches_the_coco_beside_it(name: str) -> None:
    """SAHI's COCO files hold, per LabelMe polygon, its box with the corners floored
    (and that box again as the segmentation); ours hold the polygon exactly."""
    folder = real_path("sahi-testdata", "coco_utils")
    ds, losses = formats.read(folder / f"{name}.json")
    assert not losses.kinds().keys() - {"labelme-image-data-dropped"}
    coco = json.loads((folder / f"{name}_coco.json").read_text())
    source = json.loads((folder / f"{name}.json").read_text())
    assert ds.num_annotations == len(coco["annotations"]) == len(source["shapes"])
    assert [c["name"] for c in ds.categories] == [c["name"] for c in coco["categories"]]
    img = coco["images"][0]
    assert (ds.images[0]["width"], ds.images[0]["height"]) == (img["width"], img["height"])
    for ours, theirs, shape in zip(ds.annotations, coco["annotations"], source["shapes"]):
        # the polygon is the LabelMe points, exactly
        assert ours["segmentation"] == [[v for p in shape["points"] for v in p]]
        x, y, w, h = ours["bbox"]
        x0, y0 = math.floor(x), math.floor(y)
        x1, y1 = math.floor(x + w), math.floor(y + h)
        assert theirs["bbox"] == [x0, y0, x1 - x0, y1 - y0]
        assert theirs["segmentation"] == [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _doc(shapes: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    return {"version": "5.4.1", "flags": {"night": True}, "shapes": shapes,
            "imagePath": "a.jpg", "imageData": None, "imageHeight": 100,
            "imageWidth": 200, **top}


def _shape(kind: str, points: list[list[float]], label: str = "car", **kw: Any
           ) -> dict[str, Any]:
    return {"label": label, "points": points, "group_id": None, "shape_type": kind,
            "flags": {}, **kw}


TRIANGLE = [[10.5, 10.25], [50.0, 10.0], [30.0, 40.0]]


def _png(width: int, height: int) -> str:
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (width, height), 1).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def test_mask_shape_reads_as_rle(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_doc(
        [_shape("mask", [[10, 20], [14, 22]], mask=_png(5, 3))])))
    ds, losses = formats.read(tmp_path)
    assert not losses
    a = ds.annotations[0]
    assert a["bbox"] == [10.0, 20.0, 5.0, 3.0]
    from cocokit.geometry import encoded_rle, mask_api

    mask = mask_api().decode(encoded_rle(a["segmentation"]))
    assert mask.sum() == 15 and mask[20:23, 10:15].all()


def test_shapes_become_coco_and_come_back(tmp_path: Path) -> None:
    shapes = [
        _shape("polygon", TRIANGLE, flags={"occluded": True}, description="front"),
        _shape("rectangle", [[60, 50], [20, 10]], label="person"),
        _shape("polygon", [[100, 10], [120, 10], [110, 30]], group_id=4),
        _shape("polygon", [[130, 10], [150, 10], [140, 30]], group_id=4),
        _shape("point", [[5, 5]], label="nose"),
        _shape("polygon", [[1, 1], [9, 1], [5, 9]], iscrowd=1, score=0.5),
    ]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.json").write_text(json.dumps(_doc(shapes, extra_key=[1, 2])))
    ds, losses = formats.read(tmp_path / "in")
    assert losses.kinds() == {"labelme-shape-kept": 1}
    a = list(ds.annotations)
    assert len(a) == 4
    assert a[0]["segmentation"] == [[10.5, 10.25, 50.0, 10.0, 30.0, 40.0]]
    assert a[0]["bbox"] == [10.5, 10.0, 39.5, 30.0]
    assert (a[0]["labelme_flags"], a[0]["description"]) == ({"occluded": True}, "front")
    assert a[1]["bbox"] == [20.0, 10.0, 40.0, 40.0] and "segmentation" not in a[1]
    assert len(a[2]["segmentation"]) == 2 and a[2]["group_id"] == 4
    assert (a[3]["iscrowd"], a[3]["score"]) == (1, 0.5)
    image = ds.images[0]
    assert image["labelme_flags"] == {"night": True} and image["extra_key"] == [1, 2]
    assert image["labelme_shapes"][0]["shape_type"] == "point"
    # written back: the same shapes, and reading that gives the same dataset
    losses = formats.write(ds, tmp_path / "out", "labelme")
    assert not losses
    written = json.loads((tmp_path / "out" / "a.json").read_text())
    assert [s["shape_type"] for s in written["shapes"]] == [
        "polygon", "rectangle", "polygon", "polygon", "polygon", "point"]
    assert written["shapes"][4]["iscrowd"] == 1 and written["shapes"][4]["score"] == 0.5
    assert written["imagePath"] == "a.jpg" and written["flags"] == {"night": True}
    again, _ = formats.read(tmp_path / "out")
    assert list(again.annotations) == list(ds.annotations)
    assert list(again.images) == list(ds.images)


def test_multi_ring_polygon_gets_a_group(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    c = b.add_category("car")
    img = b.add_image("sub/x.png", width=100, height=100)
    rings = [[1.0, 1.0, 9.0, 1.0, 5.0, 9.0], [20.0, 20.0, 30.0, 20.0, 25.0, 30.0]]
    b.add_annotation(img, c, polygon=rings)
    formats.write(b.build(), tmp_path / "out", "labelme")
    doc = json.loads((tmp_path / "out" / "sub" / "x.json").read_text())
    assert [s["group_id"] for s in doc["shapes"]] == [1, 1]
    back, _ = formats.read(tmp_path / "out")
    assert back.annotations[0]["segmentation"] == rings
    assert back.images[0]["file_name"] == "sub/x.png"


@pytest.mark.parametrize(("shapes", "where", "what"), [
    ([{"points": TRIANGLE, "shape_type": "polygon"}], "shapes[0].label", "missing the label"),
    ([_shape("polygon", [[1, 2, 3]])], "shapes[0].points[0]", "expected [x, y]"),
    ([_shape("polygon", [[1, 2], [3, 4]])], "shapes[0].points", "at least 3 points"),
    ([_shape("polygon", [[300, 10], [350, 10], [320, 40]])], "shapes[0].points",
     "outside the 200x100 image"),
    ([_shape("rectangle", "nope")], "shapes[0].points", "missing points"),  # type: ignore[arg-type]
    ([_shape("mask", [[1, 1], [3, 3]], mask="bm90IGEgcG5n")], "shapes[0].mask",
     "not a base64 PNG mask"),
    ([_shape("mask", [[195, 1], [205, 3]], mask=_png(11, 3))], "shapes[0].points",
     "does not fit in the 200x100 image"),
])
def test_malformed_shapes_name_file_and_place(tmp_path: Path, shapes: list[Any], where: str,
                                              what: str) -> None:
    (tmp_path / "a.json").write_text(json.dumps(_doc(shapes)))
    with pytest.raises(InputError, match=what.replace("[", r"\[")) as e:
        labelme.read(str(tmp_path))
    assert e.value.file == str(tmp_path / "a.json") and e.value.path == where


def test_broken_json_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"shapes": [\n  {"label": }]}')
    with pytest.raises(InputError, match="malformed JSON") as e:
        labelme.read(str(tmp_path / "a.json"))
    assert e.value.path == "line 2, column 13"


def test_missing_size_without_the_image(tmp_path: Path) -> None:
    doc = _doc([_shape("polygon", TRIANGLE)])
    del doc["imageWidth"]
    (tmp_path / "a.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="-i/--images"):
        labelme.read(str(tmp_path))


def test_keys_named_like_labelme_or_coco_fields_round_trip(tmp_path: Path) -> None:
    """A COCO key that is a LabelMe key travels as ``coco_<key>``; a LabelMe key that is
    a COCO field comes in as ``labelme_<key>``: both come back as they were."""
    b = cocokit.DatasetBuilder()
    c = b.add_category("car")
    img = b.add_image("x.jpg", width=50, height=50, shapes="mine", imagePath="elsewhere")
    b.add_annotation(img, c, bbox=[1, 2, 3, 4], label="also mine", points=7)
    ds = b.build()
    formats.write(ds, tmp_path / "out", "labelme")
    doc = json.loads((tmp_path / "out" / "x.json").read_text())
    assert doc["imagePath"] == "x.jpg" and doc["coco_imagePath"] == "elsewhere"
    assert doc["shapes"][0]["label"] == "car" and doc["shapes"][0]["coco_label"] == "also mine"
    back, _ = formats.read(tmp_path / "out")
    assert back.images[0]["shapes"] == "mine" and back.images[0]["imagePath"] == "elsewhere"
    assert back.annotations[0]["label"] == "also mine" and back.annotations[0]["points"] == 7
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.json").write_text(json.dumps(_doc(
        [_shape("rectangle", [[1, 1], [5, 5]], bbox="tool box")], id="tool id")))
    ds, _ = formats.read(tmp_path / "in")
    assert ds.images[0]["labelme_id"] == "tool id"
    assert ds.annotations[0]["labelme_bbox"] == "tool box"
    formats.write(ds, tmp_path / "again", "labelme")
    doc = json.loads((tmp_path / "again" / "a.json").read_text())
    assert doc["id"] == "tool id" and doc["shapes"][0]["bbox"] == "tool box"
