"""Pascal VOC: conventions (1-based corners), VOC fields as COCO keys and back,
malformed files named with the place, and Datumaro as an independent reader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cocokit
from cocokit.errors import InputError
from cocokit.io import formats
from cocokit.io.formats import voc
from tests.conftest import import_datumaro, real_path

GOOD = b"""<annotation>
  <folder>VOC2007</folder>
  <filename>000001.jpg</filename>
  <source><database>The VOC2007 Database</database><image>flickr</image></source>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <segmented>0</segmented>
  <object>
    <name>dog</name><pose>Left</pose><truncated>1</truncated><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>
    <part><name>head</name></part><part><name>paw</name></part>
  </object>
  <object>
    <name>person</name><pose>Unspecified</pose><truncated>0</truncated><difficult>1</difficult>
    <bndbox><xmin>1</xmin><ymin>1.5</ymin><xmax>352</xmax><ymax>500</ymax></bndbox>
    <attributes><attribute><name>color</name><value>red</value></attribute></attributes>
  </object>
</annotation>
"""


def _folder(tmp_path: Path, xml: bytes, name: str = "000001.xml") -> Path:
    (tmp_path / "Annotations").mkdir(parents=True, exist_ok=True)
    (tmp_path / "Annotations" / name).write_bytes(xml)
    return tmp_path


def test_reads_one_based_corners_and_voc_fields(tmp_path: Path) -> None:
    ds, losses = formats.read(_folder(tmp_path, GOOD))
    assert not losses
    assert ds.images[0] == {
        "id": 1, "file_name": "000001.jpg", "width": 353, "height": 500, "depth": 3,
        "voc_folder": "VOC2007",
        "voc_source": {"database": "The VOC2007 Database", "image": "flickr"}}
    a, b = ds.annotations[0], ds.annotations[1]
    assert a["bbox"] == [47.0, 239.0, 148.0, 132.0]  # xmin 48 is x 47 (1-based pixels)
    assert (a["truncated"], a["voc_pose"]) == (1, "Left")
    assert a["voc_part"] == [{"name": "head"}, {"name": "paw"}]  # tool data kept
    assert "voc_difficult" not in a
    assert b["bbox"] == [0.0, 0.5, 352.0, 499.5]
    assert (b["voc_difficult"], b["attributes"]) == (1, {"color": "red"})
    assert [c["name"] for c in ds.categories] == ["dog", "person"]


def test_writes_back_what_it_read(tmp_path: Path) -> None:
    ds, _ = formats.read(_folder(tmp_path / "in", GOOD))
    losses = formats.write(ds, tmp_path / "out", "voc")
    assert not losses
    again, _ = formats.read(tmp_path / "out")
    assert list(again.annotations) == list(ds.annotations)
    assert list(again.images) == list(ds.images)
    text = (tmp_path / "out" / "Annotations" / "000001.xml").read_text()
    assert "<xmin>48</xmin>" in text and "<ymin>1.5</ymin>" in text
    assert "<folder>VOC2007</folder>" in text and "<name>paw</name>" in text
    assert (tmp_path / "out" / "ImageSets" / "Main" / "default.txt").read_text() == "000001\n"


def test_detects_folder_and_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, GOOD)
    assert formats.detect(str(folder)) == "voc"
    assert formats.detect(str(folder / "Annotations" / "000001.xml")) == "voc"
    ds, _ = formats.read(folder / "Annotations" / "000001.xml")
    assert ds.num_annotations == 2


@pytest.mark.parametrize(("xml", "where", "what"), [
    (b"<annotation><filename>a.jpg</filename", "line 1", "malformed XML"),
    (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><annotation/>', None, "DOCTYPE"),
    (b"<annotation><size><width>10</width><height>10</height></size></annotation>",
     "annotation.filename", "missing <filename>"),
    (GOOD.replace(b"<xmax>195</xmax>", b""), "annotation.object[0].bndbox.xmax",
     "missing <xmax>"),
    (GOOD.replace(b"<xmax>195</xmax>", b"<xmax>abc</xmax>"),
     "annotation.object[0].bndbox.xmax", "expected a number"),
    (GOOD.replace(b"<xmin>48</xmin>", b"<xmin>400</xmin>").replace(b"<xmax>195</xmax>",
                                                                   b"<xmax>420</xmax>"),
     "annotation.object[0].bndbox", "outside the 353x500 image"),
    (GOOD.replace(b"<name>dog</name>", b""), "annotation.object[0].name", "missing the class"),
    (GOOD.replace(b"<width>353</width>", b""), "annotation.size", "-i/--images"),
    (b"<root/>", "root", "expected a Pascal VOC <annotation>"),
])
def test_malformed_files_name_file_and_place(tmp_path: Path, xml: bytes, where: str | None,
                                              what: str) -> None:
    folder = _folder(tmp_path, xml)
    with pytest.raises(InputError, match=what) as e:
        voc.read(str(folder))
    assert e.value.file is not None and e.value.file.endswith("000001.xml")
    if where:
        assert e.value.path is not None and e.value.path.startswith(where)


def test_missing_size_read_from_the_image(tmp_path: Path) -> None:
    from PIL import Image

    images = tmp_path / "img"
    images.mkdir()
    Image.new("RGB", (353, 500)).save(images / "000001.jpg")
    folder = _folder(tmp_path / "voc", GOOD.replace(b"<width>353</width>", b""))
    ds, _ = voc.read(str(folder), images=str(images))
    assert (ds.images[0]["width"], ds.images[0]["height"]) == (353, 500)


def test_duplicate_annotation_file_refused(tmp_path: Path) -> None:
    b = cocokit.DatasetBuilder()
    c = b.add_category("a")
    for name in ("x.jpg", "x.png"):
        b.add_annotation(b.add_image(name, width=10, height=10), c, bbox=[1, 1, 2, 2])
    with pytest.raises(cocokit.OptionError, match=r"x\.xml"):
        formats.write(b.build(), tmp_path / "out", "voc")
    assert not (tmp_path / "out").exists()


def test_datumaro_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    dm = import_datumaro()
    src = cocokit.load(real_path("tiny-coco-images", "annotations", "instances_val2017.json"))
    ours = tmp_path / "ours"
    formats.write(src, ours, "voc")
    theirs = dm.Dataset.import_from(str(ours), "voc_detection")
    labels = [c.name for c in theirs.categories()[dm.AnnotationType.label]]
    names = {c["id"]: c["name"] for c in src.categories}
    expected: dict[str, list[tuple[str, list[float]]]] = {}
    for r, i in enumerate(src.image_index.tolist()):
        stem = Path(src.images.file_name[i]).stem
        expected.setdefault(stem, []).append(
            (names[int(src.annotations.category_id[r])], src.annotations.bbox[r].tolist()))
    assert len(theirs) == src.num_images
    total = 0
    for item in theirs:
        got = [(labels[a.label], a.get_bbox()) for a in item.annotations]
        want = expected.get(item.id, [])
        assert [g[0] for g in got] == [w[0] for w in want]
        # Datumaro takes xmin as the 0-based left edge: one pixel right of COCO x
        # (and keeps float32 coordinates: 5e-5 px at these sizes)
        for (_, (x, y, w, h)), (_, (x0, y0, w0, h0)) in zip(got, want):
            np.testing.assert_allclose([x, y, x + w, y + h],
                                       [x0 + 1, y0 + 1, x0 + w0, y0 + h0], atol=1e-4)
        total += len(got)
    assert total == src.num_annotations
    # and theirs, written by Datumaro, read by cocokit
    theirs.export(str(tmp_path / "dm"), "voc_detection", save_media=False)
    back, _ = formats.read(tmp_path / "dm", "voc")
    assert back.num_annotations == src.num_annotations
    assert back.num_images == src.num_images
    names_back = {c["id"]: c["name"] for c in back.categories}
    got_back: dict[str, list[tuple[str, list[float]]]] = {}
    for r, i in enumerate(back.image_index.tolist()):
        got_back.setdefault(Path(back.images.file_name[i]).stem, []).append(
            (names_back[int(back.annotations.category_id[r])],
             back.annotations.bbox[r].tolist()))
    assert got_back.keys() == {k for k, v in expected.items() if v}
    for stem, want in expected.items():
        got = got_back.get(stem, [])
        assert [g[0] for g in got] == [w[0] for w in want]
        # Datumaro keeps coordinates as float32: 5e-5 px at these sizes
        np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], atol=1e-4)


def test_hotcoco_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    """hotcoco takes VOC corners as 1-based, as cocokit does: the same boxes both ways
    (hotcoco writes its corners rounded to whole pixels)."""
    hotcoco = pytest.importorskip("hotcoco", reason="hotcoco not installed (the test extra: "
                                  "cocokit[test])")
    file = real_path("tiny-coco-images", "annotations", "instances_val2017.json")
    src = cocokit.load(file)
    formats.write(src, tmp_path / "ours", "voc")
    theirs = hotcoco.COCO.from_voc(str(tmp_path / "ours")).dataset
    names = {c["id"]: c["name"] for c in theirs["categories"]}
    by_image = {im["id"]: Path(im["file_name"]).name for im in theirs["images"]}
    got = sorted((by_image[a["image_id"]], names[a["category_id"]], *a["bbox"])
                 for a in theirs["annotations"])
    src_names = {c["id"]: c["name"] for c in src.categories}
    want = sorted((Path(src.images.file_name[i]).name,
                   src_names[int(src.annotations.category_id[r])],
                   *src.annotations.bbox[r].tolist())
                  for r, i in enumerate(src.image_index.tolist()))
    assert [g[:2] for g in got] == [w[:2] for w in want]
    np.testing.assert_allclose([g[2:] for g in got], [w[2:] for w in want], rtol=1e-6)
    # theirs, written by hotcoco (corners rounded), read by cocokit
    hotcoco.COCO(str(file)).to_voc(str(tmp_path / "hc"))
    back, _ = formats.read(tmp_path / "hc", "voc")
    assert (back.num_images, back.num_annotations) == (src.num_images, src.num_annotations)
    back_names = {c["id"]: c["name"] for c in back.categories}
    got = sorted((Path(back.images.file_name[i]).name,
                  back_names[int(back.annotations.category_id[r])],
                  *back.annotations.bbox[r].tolist())
                 for r, i in enumerate(back.image_index.tolist()))
    assert [g[:2] for g in got] == [w[:2] for w in want]
    corners = [[x, y, x + w, y + h] for x, y, w, h in (g[2:] for g in got)]
    expected = [[x, y, x + w, y + h] for x, y, w, h in (g[2:] for g in want)]
    np.testing.assert_allclose(corners, expected, atol=1.0)


@pytest.mark.parametrize(("old", "new", "tag"), [
    (b"<xmax>195</xmax>", b"<xmax>abc</xmax>", b"<xmax>"),  # the element itself
    (b"<name>dog</name>", b"", b"<object>"),  # a missing child: its parent
])
def test_malformed_places_carry_the_line(tmp_path: Path, old: bytes, new: bytes,
                                         tag: bytes) -> None:
    """The one XML parser (expat) knows each element's line; VOC errors name it."""
    xml = GOOD.replace(old, new)
    line = next(n for n, text in enumerate(xml.splitlines(), 1) if tag in text)
    with pytest.raises(InputError) as e:
        formats.read(_folder(tmp_path, xml))
    assert e.value.path is not None and e.value.path.endswith(f"(line {line})")
