"""CVAT for images 1.1 XML: round trips on real COCO files, every CVAT shape and its
keys read and written back, the loss report, hotcoco as an independent reader and
writer, and malformed files (with file and line)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import cocokit
from cocokit.errors import InputError
from cocokit.io.formats import cvat
from tests.conftest import import_datumaro, real_path

CASES = {
    "coco-mini": "coco-mini/annotations/instances_val2017.json",
    "coco-mini-pose": "coco-mini/annotations/person_keypoints_val2017.json",
    "tiny-train": "tiny-coco-images/annotations/instances_train2017.json",
    "taco": "taco/annotations.json",
}

SAMPLE = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>7</id>
      <name>street</name>
      <labels>
        <label>
          <name>car</name>
          <color>#fa3253</color>
          <attributes>
            <attribute>
              <name>parked</name>
              <mutable>False</mutable>
              <input_type>checkbox</input_type>
              <default_value>false</default_value>
              <values>false
true</values>
            </attribute>
            <attribute>
              <name>doors</name>
              <mutable>False</mutable>
              <input_type>number</input_type>
              <default_value>4</default_value>
              <values>2
5
1</values>
            </attribute>
            <attribute>
              <name>model</name>
              <mutable>False</mutable>
              <input_type>select</input_type>
              <default_value>sedan</default_value>
              <values>sedan
van</values>
            </attribute>
          </attributes>
        </label>
        <label>
          <name>lane</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>sunny</name>
          <attributes>
          </attributes>
        </label>
      </labels>
    </task>
  </meta>
  <image id="0" name="a.jpg" width="100" height="80" subset="train">
    <box label="car" source="manual" occluded="1" xtl="10.5" ytl="20.25" xbr="40" ybr="60"
         z_order="2" group_id="3">
      <attribute name="parked">true</attribute>
      <attribute name="doors">5</attribute>
      <attribute name="model">van</attribute>
    </box>
    <polygon label="car" source="auto" occluded="0" points="1,2;30.5,2;30.5,40.75;1,40" z_order="0">
    </polygon>
    <polyline label="lane" source="manual" occluded="0" points="0,79;50,40;99,0" z_order="0">
    </polyline>
    <points label="car" source="manual" occluded="0" points="5,5;6,7" z_order="0">
    </points>
    <mask label="car" source="manual" occluded="0" rle="3, 2, 1, 4, 2" left="60" top="10"
          width="3" height="4" z_order="1">
    </mask>
    <box label="car" source="manual" occluded="0" xtl="50" ytl="50" xbr="70" ybr="60"
         rotation="90" z_order="0">
    </box>
    <ellipse label="car" source="manual" occluded="0" cx="50" cy="50" rx="5" ry="3" z_order="0">
    </ellipse>
    <tag label="sunny" source="manual">
    </tag>
  </image>
  <image id="1" name="b/c.png" width="64" height="48">
  </image>
</annotations>
"""


def _write(tmp_path: Path, text: str, name: str = "annotations.xml") -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


# -- COCO -> CVAT -> COCO on real files --------------------------------------------------


def _expected_shapes(ds: cocokit.Dataset) -> list[tuple[str, int, Any]]:
    """What each annotation should come back as, in image order: (kind, source row,
    geometry), worked out from the COCO records alone."""
    out: list[tuple[str, int, Any]] = []
    for r in np.argsort(ds.image_index, kind="stable").tolist():
        rec = ds.annotations.record(r)
        seg = rec.get("segmentation")
        if isinstance(seg, list) and seg:
            out += [("polygon", r, ring) for ring in seg if len(ring) >= 6]
        elif isinstance(seg, dict):
            out.append(("mask", r, seg))
        else:
            out.append(("box", r, rec["bbox"]))
        kp = np.asarray(rec.get("keypoints") or [], float).reshape(-1, 3)
        if (kp[:, 2] > 0).any():
            out.append(("points", r, kp[kp[:, 2] > 0, :2]))
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(real_data: Path, tmp_path: Path, case: str) -> None:
    ds = cocokit.load(real_data / CASES[case])
    before = cocokit.to_json(ds, annotation_ids="auto")
    losses = cvat.write(ds, str(tmp_path / "a.xml"))
    assert cocokit.to_json(ds, annotation_ids="auto") == before
    back, read_losses = cvat.read(str(tmp_path / "a.xml"))
    assert back.images.id.tolist() == ds.images.id.tolist()
    assert back.images.file_name.tolist() == ds.images.file_name.tolist()
    assert back.images.height.tolist() == ds.images.height.tolist()
    assert back.categories.name.tolist() == ds.categories.name.tolist()
    assert back.categories.id.tolist() == list(range(1, len(ds.categories) + 1))
    expected = _expected_shapes(ds)
    assert len(back.annotations) == len(expected)
    name_of = dict(zip(ds.categories.id.tolist(), ds.categories.name.tolist(), strict=True))
    bbox_moved = area_changed = 0
    shapes_of = np.bincount([r for kind, r, _ in expected if kind != "points"],
                            minlength=len(ds.annotations))
    for j, (kind, r, geometry) in enumerate(expected):
        got = back.annotations.record(j)
        src_area = float(ds.annotations.area[r])
        if kind != "points" and shapes_of[r] == 1 and np.isfinite(src_area):
            area_changed += int(abs(got["area"] - src_area) > 1e-6 * max(1.0, src_area))
        assert back.categories.name_of(got["category_id"]) == name_of[
            int(ds.annotations.category_id[r])]
        assert got["iscrowd"] == int(ds.annotations.iscrowd[r] == 1)
        if kind == "polygon":  # exact, and the box is its bounds
            assert got["segmentation"] == [geometry]
            xs, ys = geometry[0::2], geometry[1::2]
            bounds = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
            assert got["bbox"] == bounds
            src = ds.annotations.bbox[r]
            bbox_moved += int(len(ds.annotations.record(r)["segmentation"]) == 1 and
                              np.abs(np.array(bounds) - src).max() > 1e-6 * max(
                                  1.0, float(np.abs(src).max())))
        elif kind == "mask":  # the same pixels
            h, w = geometry["size"]
            want = mask_utils.decode(mask_utils.frPyObjects(geometry, h, w))
            have = mask_utils.decode({"size": got["segmentation"]["size"],
                                      "counts": got["segmentation"]["counts"].encode()})
            assert (want == have).all()
        elif kind == "box":
            np.testing.assert_allclose(got["bbox"], geometry, rtol=1e-6, atol=1e-9)
        else:
            kp = np.asarray(got["keypoints"], float).reshape(-1, 3)
            assert kp[:, :2].tolist() == geometry.tolist() and (kp[:, 2] == 2).all()
    anns = ds.annotations
    kps = [np.asarray(k or [], float).reshape(-1, 3) for k in
           (cocokit.dataset.plain(v) for v in anns.keypoints)]
    rings = [len(s) if isinstance(s, list) else 0 for s in
             (anns.record(r).get("segmentation") for r in range(len(anns)))]
    want = {
        "multi-polygon-split": sum(n > 1 for n in rings),
        "keypoints-as-points": sum(bool((k[:, 2] > 0).any()) for k in kps),
        "keypoints-dropped": sum(len(k) > 0 and not (k[:, 2] > 0).any() for k in kps),
        "category-ids": (0 if ds.categories.id.tolist() == list(range(1, len(ds.categories) + 1))
                         else len(ds.categories)),
    }
    got_losses = {x.kind: x.count for x in losses}
    assert {k: got_losses.get(k, 0) for k in want} == want
    assert got_losses.get("bbox-from-polygon", 0) >= bbox_moved
    assert got_losses.get("area-recomputed", 0) == area_changed
    assert {x.kind: x.count for x in read_losses} == (
        {"points-as-keypoints": want["keypoints-as-points"]}
        if want["keypoints-as-points"] else {})


# -- CVAT -> COCO -> CVAT ---------------------------------------------------------------


def test_every_shape_read(tmp_path: Path) -> None:
    ds, losses = cvat.read(_write(tmp_path, SAMPLE))
    assert [c["name"] for c in ds.categories] == ["car", "lane", "sunny"]
    assert ds.categories[0]["color"] == "#fa3253"
    assert [s["input_type"] for s in ds.categories[0]["cvat_attributes"]] == [
        "checkbox", "number", "select"]
    img = ds.images[0]
    assert img["id"] == 0 and img["subset"] == "train"
    assert img["cvat_tags"] == [{"label": "sunny"}]
    box, poly, line, pts, mask, rotated = list(ds.annotations)
    assert box["bbox"] == [10.5, 20.25, 29.5, 39.75] and "segmentation" not in box
    assert box["attributes"] == {"parked": True, "doors": 5, "model": "van"}
    assert box["cvat"] == {"occluded": 1, "z_order": 2, "group_id": 3, "source": "manual"}
    assert poly["segmentation"] == [[1, 2, 30.5, 2, 30.5, 40.75, 1, 40]]
    assert poly["bbox"] == [1, 2, 29.5, 38.75]
    assert line["bbox"] == [0, 0, 99, 79] and line["cvat"]["points"] == [0, 79, 50, 40, 99, 0]
    assert pts["keypoints"] == [5, 5, 2, 6, 7, 2] and pts["num_keypoints"] == 2
    # rle 3,2,1,4,2 over a 3x4 box at (60, 10): row-major 000 11 0 1111 00
    m = mask_utils.decode({"size": mask["segmentation"]["size"],
                           "counts": mask["segmentation"]["counts"].encode()})
    assert m[10:14, 60:63].tolist() == [[0, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0]]
    assert int(m.sum()) == 6 and mask["area"] == 6 and mask["bbox"] == [60, 11, 3, 3]
    assert rotated["cvat"]["rotation"] == 90
    np.testing.assert_allclose(rotated["bbox"], [55, 45, 10, 20], atol=1e-9)
    assert {x.kind: x.count for x in losses} == {
        "polyline-as-box": 1, "points-as-keypoints": 1, "rotated-box-as-polygon": 1,
        "ellipse-not-read": 1}


def test_written_back_reads_the_same(tmp_path: Path) -> None:
    ds, _ = cvat.read(_write(tmp_path, SAMPLE))
    losses = cvat.write(ds, str(tmp_path / "out.xml"))
    again, _ = cvat.read(str(tmp_path / "out.xml"))
    assert again.document() == ds.document()
    # the points (a keypoint annotation) went back as points; CVAT kept every key
    assert [x.kind for x in losses] == []
    text = (tmp_path / "out.xml").read_text()
    assert '<attribute name="parked">true</attribute>' in text
    assert 'occluded="1"' in text and 'group_id="3"' in text and 'subset="train"' in text
    # the mask is stored in its tight box (the first row of the given box was empty)
    assert '<mask label="car"' in text and 'rle="0, 2, 1, 4, 2" left="60" top="11"' in text


def test_crowd_is_a_declared_checkbox(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    cat = b.add_category("person")
    img = b.add_image("a.jpg", 20, 10)
    b.add_annotation(img, cat, rle={"size": [10, 20], "counts": [30, 5, 165]})
    b.add_annotation(img, cat, bbox=[1, 1, 3, 3])
    ds = b.build()
    cvat.write(ds, str(tmp_path / "a.xml"))
    text = (tmp_path / "a.xml").read_text()
    assert "<name>is_crowd</name>" in text and "<input_type>checkbox</input_type>" in text
    back, _ = cvat.read(str(tmp_path / "a.xml"))
    assert back.annotations.iscrowd.tolist() == [1, 0]
    assert "attributes" not in back.annotations[0]


# -- hotcoco, an independent reader and writer -------------------------------------------


def test_hotcoco_reads_ours(real_data: Path, tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco (the test extra) is not "
                                  "installed")
    ds = cocokit.load(real_data / CASES["tiny-train"])
    cvat.write(ds, str(tmp_path / "a.xml"))
    ours, _ = cvat.read(str(tmp_path / "a.xml"))
    masks = ours.annotations.segmentation_kind >= 2  # hotcoco skips <mask>, and says so
    with pytest.warns(UserWarning, match=f"skipped {int(masks.sum())} unsupported shape"):
        theirs = hotcoco.COCO.from_cvat(str(tmp_path / "a.xml")).dataset
    assert len(theirs["images"]) == len(ours.images)
    assert len(theirs["annotations"]) == int((~masks).sum())
    np.testing.assert_allclose(np.array([a["bbox"] for a in theirs["annotations"]]),
                               ours.annotations.bbox[~masks], rtol=1e-6, atol=1e-9)


def test_we_read_hotcocos(real_data: Path, tmp_path: Path) -> None:
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco (the test extra) is not "
                                  "installed")
    path = real_data / CASES["tiny-train"]
    stats = hotcoco.COCO(str(path)).to_cvat(str(tmp_path / "h.xml"))
    back, losses = cvat.read(str(tmp_path / "h.xml"))
    assert not losses
    assert stats["boxes"] + stats["polygons"] == len(back.annotations)
    ours_ds = cocokit.load(path)
    cvat.write(ours_ds, str(tmp_path / "o.xml"))
    ours, _ = cvat.read(str(tmp_path / "o.xml"))
    # hotcoco writes 2 decimals: corners within 0.005 px, sizes within 0.01 px; it
    # writes a crowd mask as its COCO box, cocokit as a <mask> (boxed by its pixels)
    assert back.categories.name.tolist() == ours.categories.name.tolist()
    assert back.images.file_name.tolist() == ours.images.file_name.tolist()
    assert back.annotations.category_id.tolist() == ours.annotations.category_id.tolist()
    masks = ours.annotations.segmentation_kind >= 2
    assert int(masks.sum()) == int((ours_ds.annotations.iscrowd == 1).sum()) > 0
    np.testing.assert_allclose(back.annotations.bbox[~masks], ours.annotations.bbox[~masks],
                               rtol=0, atol=0.0101)


# -- malformed files ---------------------------------------------------------------------


def _doc(body: str, labels: str = "<label><name>car</name></label>") -> str:
    return (f'<?xml version="1.0"?>\n<annotations>\n<version>1.1</version>\n'
            f"<meta><task><labels>{labels}</labels></task></meta>\n{body}\n</annotations>\n")


IMG = '<image id="0" name="a.jpg" width="100" height="80">\n{}\n</image>'


@pytest.mark.parametrize(("text", "match"), [
    (_doc(IMG.format('<box label="car" xtl="1" ytl="2" xbr="3">')),
     r"line 7, column 3: broken XML: mismatched tag"),
    ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">]>\n<annotations/>',
     r"line 2: a DOCTYPE or entity declaration; refused"),
    (_doc('<image id="0" name="a.jpg" height="80"></image>'),
     r"line 5: <image>: missing attribute 'width'"),
    (_doc(IMG.format('<box label="car" xtl="one" ytl="2" xbr="3" ybr="4"/>')),
     r"line 6: <box>: xtl='one' is not a number"),
    (_doc(IMG.format('<box label="car" xtl="1" ytl="2" xbr="3"/>')),
     r"line 6: <box>: missing attribute 'ybr'"),
    (_doc(IMG.format('<box label="bus" xtl="1" ytl="2" xbr="3" ybr="4"/>')),
     r"line 6: <box>: label 'bus' is not declared in <meta><labels>"),
    (_doc(IMG.format('<box xtl="1" ytl="2" xbr="3" ybr="4"/>')),
     r"line 6: <box>: missing attribute 'label'"),
    (_doc(IMG.format('<box label="car" xtl="200" ytl="2" xbr="300" ybr="4"/>')),
     r"line 6: <box>: the shape lies outside the 100x80 image"),
    (_doc(IMG.format('<box label="car" xtl="5" ytl="2" xbr="3" ybr="4"/>')),
     r"xbr < xtl"),
    (_doc(IMG.format('<polygon label="car" points="1,2;3;5,6"/>')),
     r"line 6: <polygon>: points: expected 'x,y;x,y;...', got '3'"),
    (_doc(IMG.format('<polygon label="car" points="1,2;3,4"/>')),
     r"a polygon needs 3 points, got 2"),
    (_doc(IMG.format('<mask label="car" rle="1, 2" left="0" top="0" width="2" '
                     'height="2"/>')), r"rle: the counts sum to 3, expected width\*height = 4"),
    (_doc(IMG.format('<mask label="car" rle="4" left="99" top="0" width="2" height="2"/>')),
     r"the mask box 99,0 2x2 is not inside the 100x80 image"),
    ('<?xml version="1.0"?>\n<dataset/>', r"line 2: expected the root element <annotations>"),
])
def test_malformed(tmp_path: Path, text: str, match: str) -> None:
    file = _write(tmp_path, text)
    with pytest.raises(InputError, match=match) as e:
        cvat.read(file)
    assert str(e.value).startswith(file + ": ")


def test_detect(tmp_path: Path) -> None:
    file = _write(tmp_path, SAMPLE)
    assert cvat.detect(file) and cvat.detect(str(tmp_path))
    other = tmp_path / "voc.xml"
    other.write_text("<annotation><filename>a.jpg</filename></annotation>")
    assert not cvat.detect(str(other)) and not cvat.detect(str(tmp_path / "none.xml"))


# -- Datumaro, a second independent reader and writer (the interop extra) ----------------


def _shapes_by_image(items: list[tuple[str, str, list[float]]],
                     ) -> dict[str, list[tuple[str, list[float]]]]:
    """(image stem, label, xywh) -> per image stem, sorted by label and box."""
    out: dict[str, list[tuple[str, list[float]]]] = {}
    for stem, label, box in items:
        out.setdefault(stem, []).append((label, [float(v) for v in box]))
    return {k: sorted(v, key=lambda t: (t[0], *np.round(t[1], 2))) for k, v in out.items()}


def _assert_same_shapes(got: dict[str, list[tuple[str, list[float]]]],
                        want: dict[str, list[tuple[str, list[float]]]]) -> None:
    assert got.keys() == want.keys()
    for stem, shapes in want.items():
        assert [s[0] for s in got[stem]] == [s[0] for s in shapes]
        # Datumaro keeps coordinates as float32: 1e-4 px at these sizes
        np.testing.assert_allclose([s[1] for s in got[stem]], [s[1] for s in shapes],
                                   atol=1e-4)


def test_datumaro_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    dm = import_datumaro()
    src = cocokit.load(real_path("tiny-coco-images", "annotations", "instances_val2017.json"))
    ours = tmp_path / "ours"
    ours.mkdir()
    # Datumaro looks for the images beside annotations.xml
    (ours / "images").symlink_to(real_path("tiny-coco-images", "images", "val2017"))
    cvat.write(src, str(ours / "annotations.xml"))
    mine, _ = cvat.read(str(ours / "annotations.xml"))

    def shapes_of(ds: cocokit.Dataset) -> dict[str, list[tuple[str, list[float]]]]:
        return _shapes_by_image([
            (Path(ds.images.file_name[i]).stem,
             ds.categories.name_of(int(ds.annotations.category_id[r])),
             ds.annotations.bbox[r].tolist())
            for r, i in enumerate(ds.image_index.tolist())])

    theirs = dm.Dataset.import_from(str(ours), "cvat")
    labels = [c.name for c in theirs.categories()[dm.AnnotationType.label]]
    assert len(theirs) == src.num_images
    # the same shapes (one per CVAT element) with the same labels and boxes
    _assert_same_shapes(_shapes_by_image([(item.id, labels[a.label], a.get_bbox())
                                          for item in theirs for a in item.annotations]),
                        shapes_of(mine))
    # and theirs, written by Datumaro, read by cocokit
    theirs.export(str(tmp_path / "dm"), "cvat", save_media=False)
    back, _ = cvat.read(str(tmp_path / "dm"))
    assert back.num_images == src.num_images
    _assert_same_shapes(shapes_of(back), shapes_of(mine))
