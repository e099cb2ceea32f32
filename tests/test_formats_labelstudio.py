"""Label Studio: percentages, rotated rectangles, multi-part polygons, results kept
unconverted, ids, malformed exports named with the place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cocokit
from cocokit.errors import InputError
from cocokit.io import formats
from cocokit.io.formats import labelstudio


def _result(kind: str, value: dict[str, Any], rid: str = "r1", **kw: Any) -> dict[str, Any]:
    return {"id": rid, "type": kind, "from_name": "label", "to_name": "image",
            "original_width": 200, "original_height": 100, "value": value, **kw}


def _task(results: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {"id": 7, "data": {"image": "/data/upload/1/a.jpg"},
            "annotations": [{"id": 1, "result": results}], **kw}


def _read(tmp_path: Path, tasks: list[Any]) -> tuple[cocokit.Dataset, Any]:
    file = tmp_path / "export.json"
    file.write_text(json.dumps(tasks))
    assert formats.detect(str(file)) == "labelstudio"
    return formats.read(file)


def test_percentages_become_pixels(tmp_path: Path) -> None:
    ds, losses = _read(tmp_path, [_task([
        _result("rectanglelabels", {"x": 10, "y": 20, "width": 50, "height": 25,
                                    "rotation": 0, "rectanglelabels": ["car"]}, "5"),
        _result("polygonlabels", {"points": [[0, 0], [50, 0], [50, 50]],
                                  "polygonlabels": ["tree"]}, "6"),
    ])])
    assert not losses
    assert ds.images[0] == {"id": 7, "file_name": "/data/upload/1/a.jpg", "width": 200,
                            "height": 100}
    a, b = ds.annotations[0], ds.annotations[1]
    assert (a["id"], a["bbox"], a["image_id"]) == (5, [20.0, 20.0, 100.0, 25.0], 7)
    assert b["segmentation"] == [[0.0, 0.0, 100.0, 0.0, 100.0, 50.0]]
    assert [c["name"] for c in ds.categories] == ["car", "tree"]


def test_rotated_rectangle_and_other_results(tmp_path: Path) -> None:
    brush = _result("keypointlabels", {"x": 1, "y": 2, "width": 0.5,
                                       "keypointlabels": ["nose"]}, "9")
    ds, losses = _read(tmp_path, [_task([
        _result("rectanglelabels", {"x": 10, "y": 10, "width": 10, "height": 20,
                                    "rotation": 90, "rectanglelabels": ["car"]}),
        brush], predictions=[{"result": []}])])
    assert losses.kinds() == {"rotated-rectangle-as-polygon": 1, "labelstudio-result-kept": 1}
    ring = ds.annotations[0]["segmentation"][0]
    assert ring == pytest.approx([20, 10, 20, 30, 0, 30, 0, 10], abs=1e-9)
    assert ds.images[0]["labelstudio_results"] == [brush]
    # written back with the brush result and the predictions in place
    formats.write(ds, tmp_path / "out", "labelstudio")
    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    assert brush in tasks[0]["annotations"][0]["result"]
    assert tasks[0]["predictions"] == [{"result": []}]


def test_round_trip_keeps_ids_and_multi_part_polygons(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    c = b.add_category("car", id=3)
    img = b.add_image("x.jpg", width=640, height=480, id=42, license=2)
    rings = [[1.5, 1.0, 9.0, 1.0, 5.0, 9.0], [20.0, 20.0, 30.0, 20.0, 25.0, 30.0]]
    b.add_annotation(img, c, polygon=rings, id=17)
    b.add_annotation(img, c, bbox=[0.1, 0.2, 10.3, 20.7], id=18)
    ds = b.build()
    losses = formats.write(ds, tmp_path / "out", "labelstudio", images="/data/local")
    assert "annotation-ids-renumbered" not in losses.kinds()
    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    assert tasks[0]["data"]["image"] == "/data/local/x.jpg"
    assert tasks[0]["data"]["license"] == 2
    assert tasks[0]["annotations"][0]["result"][1]["parentID"] == "17"
    back, read_losses = formats.read(tmp_path / "out", images="/data/local")
    assert not read_losses
    assert back.images[0] == {"id": 42, "file_name": "x.jpg", "width": 640, "height": 480,
                              "license": 2}
    got = list(back.annotations)
    assert [a["id"] for a in got] == [17, 18] and got[0]["category_id"] == 3
    assert got[0]["segmentation"] == [pytest.approx(r, rel=1e-12) for r in rings]
    assert got[1]["bbox"] == pytest.approx([0.1, 0.2, 10.3, 20.7], rel=1e-12)


def test_brush_rle_follows_the_bit_layout() -> None:
    """One white pixel: 4 RGBA values; header 32 bits (4), 5 bits (word size 8 less 1),
    4 x 4 bits (run field sizes 3, 4, 8, 16 less 1); one record: repeat flag 1, size
    index 00, count less 1 in 3 bits (011), value 255; padded with zeros to whole bytes."""
    bits = ("00000000" "00000000" "00000000" "00000100" "00111" "0010" "0011" "0111" "1111"
            "1" "00" "011" "11111111" "00000")
    expected = [int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)]
    assert labelstudio.brush_encode(np.ones((1, 1), bool)) == expected
    assert labelstudio.brush_decode(expected, 1, 1, "f", "w").tolist() == [[True]]


def test_brush_decodes_literal_records() -> None:
    """A record with the repeat flag 0 gives its values one by one."""
    bits = ("00000000" "00000000" "00000000" "00000100" "00111" "0010" "0011" "0111" "1111"
            "0" "00" "011" "00000000" "00000000" "00000000" "11111111")
    data = [int(bits[i:i + 8], 2) for i in range(0, len(bits) - len(bits) % 8, 8)]
    data.append(int(bits[len(bits) - len(bits) % 8:].ljust(8, "0"), 2))
    assert labelstudio.brush_decode(data, 1, 1, "f", "w").tolist() == [[True]]


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (480, 640)])
def test_brush_round_trip(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    for mask in (rng.random(shape) > 0.5, np.zeros(shape, bool), np.ones(shape, bool)):
        rle = labelstudio.brush_encode(mask)
        np.testing.assert_array_equal(labelstudio.brush_decode(rle, *shape, "f", "w"), mask)


def test_rle_written_as_brush(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    c = b.add_category("car")
    img = b.add_image("x.jpg", width=4, height=4)
    b.add_annotation(img, c, rle={"size": [4, 4], "counts": [0, 4, 12]}, iscrowd=1)
    losses = formats.write(b.build(), tmp_path / "out", "labelstudio")
    assert losses.kinds()["rle-recompressed"] == 1
    assert losses.kinds()["crowd-flag-dropped"] == 1
    tasks = json.loads((tmp_path / "out" / "tasks.json").read_text())
    result = tasks[0]["annotations"][0]["result"][0]
    assert result["type"] == "brushlabels" and result["value"]["format"] == "rle"
    back, _ = formats.read(tmp_path / "out")
    seg = back.annotations[0]["segmentation"]
    from cocokit.geometry import encoded_rle, mask_api

    mask = mask_api().decode(encoded_rle(seg))
    assert mask[:, 0].tolist() == [1, 1, 1, 1] and mask[:, 1:].sum() == 0
    assert back.annotations[0]["bbox"] == [0.0, 0.0, 1.0, 4.0]


@pytest.mark.parametrize(("tasks", "where", "what"), [
    ([{"id": 1, "annotations": []}], "[0].data", "expected a task with a data object"),
    ([{"id": 1, "data": {}, "annotations": []}], "[0].data.image", "missing the image"),
    ([{"id": 1, "data": {"image": "a.jpg"}, "annotations": []}], "[0]",
     "image size unknown"),
    ([_task([_result("rectanglelabels", {"x": "a", "y": 1, "width": 1, "height": 1,
                                         "rectanglelabels": ["c"]})])],
     "[0].annotations[0].result[0].value.x", "expected a number"),
    ([_task([_result("rectanglelabels", {"x": 120, "y": 1, "width": 5, "height": 5,
                                         "rectanglelabels": ["c"]})])],
     "[0].annotations[0].result[0].value", "outside the 200x100 image"),
    ([_task([_result("polygonlabels", {"points": [[1, 1]], "polygonlabels": ["c"]})])],
     "[0].annotations[0].result[0].value.points", "at least 3 points"),
    ([_task([_result("brushlabels", {"format": "rle", "rle": [1, 2, 3],
                                     "brushlabels": ["c"]})])],
     "[0].annotations[0].result[0].value.rle", "the brush RLE ends early"),
    ([_task([_result("brushlabels", {"format": "rle", "rle": [0, 0, 0, 8, 0, 0, 0, 0],
                                     "brushlabels": ["c"]})])],
     "[0].annotations[0].result[0].value.rle", "holds 8 values, expected 100x200x4"),
    ([_task([_result("polygonlabels", {"points": [[1, 1], [2, 2], [3, 3]],
                                       "polygonlabels": []})])],
     "[0].annotations[0].result[0].value.polygonlabels", "expected a list with a label"),
])
def test_malformed_exports_name_the_place(tmp_path: Path, tasks: list[Any], where: str,
                                          what: str) -> None:
    file = tmp_path / "export.json"
    file.write_text(json.dumps(tasks))
    with pytest.raises(InputError, match=what) as e:
        labelstudio.read(str(file))
    assert (e.value.file, e.value.path) == (str(file), where)


def test_not_a_list(tmp_path: Path) -> None:
    file = tmp_path / "export.json"
    file.write_text("{}")
    with pytest.raises(InputError, match="expected a list of tasks"):
        labelstudio.read(str(file))
