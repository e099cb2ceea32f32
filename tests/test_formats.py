"""The registry (formats by name, detection, read/write) and the loss report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cocokit
from cocokit.io import formats
from cocokit.io.formats.losses import Loss, Losses
from tests.conftest import real_path


def test_losses_sum_by_kind_and_ignore_zero() -> None:
    losses = Losses()
    assert not losses
    losses.add("polygon-as-box", 4000, "polygons written as boxes")
    losses.add("nothing", 0, "things that did not happen")
    losses.add("crowd-rle-as-polygon", 37, "crowd RLE masks written as polygons")
    losses.add("polygon-as-box", 210, "other words are not used")
    assert losses.lines() == ["4,210 polygons written as boxes",
                              "37 crowd RLE masks written as polygons"]
    assert losses.to_json()[0] == {"kind": "polygon-as-box", "count": 4210,
                                   "message": "polygons written as boxes"}
    assert list(losses) == [Loss("polygon-as-box", 4210, "polygons written as boxes"),
                            Loss("crowd-rle-as-polygon", 37,
                                 "crowd RLE masks written as polygons")]
    more = Losses()
    more.add("crowd-rle-as-polygon", 3, "crowd RLE masks written as polygons")
    losses.extend(more)
    assert losses.kinds() == {"polygon-as-box": 4210, "crowd-rle-as-polygon": 40}


@pytest.mark.parametrize("name", ["coco", "yolo", "voc", "labelme", "labelstudio",
                                  "Label-Studio", "VOC", "cvat", "dota", "CVAT"])
def test_every_format_has_the_interface(name: str) -> None:
    module = formats.format_module(name)
    assert module.NAME == name.lower().replace("-", "")
    assert callable(module.detect) and callable(module.read) and callable(module.write)


def test_unknown_format() -> None:
    with pytest.raises(cocokit.OptionError, match="one of coco, yolo, cvat, dota, voc"):
        formats.format_module("pascal")


@pytest.mark.parametrize(("parts", "fmt"), [
    (("coco-mini", "annotations", "instances_val2017.json"), "coco"),
    (("sahi-testdata", "coco_utils", "terrain1.json"), "labelme"),
    (("sahi-testdata", "coco_utils", "terrain1_coco.json"), "coco"),
])
def test_detects_real_files(parts: tuple[str, ...], fmt: str) -> None:
    assert formats.detect(str(real_path(*parts))) == fmt


def test_package_read_write_through_yolo(tmp_path: Path) -> None:
    folder = real_path("sahi-testdata", "coco_utils")
    ds = cocokit.load(folder / "terrain2_coco.json")
    losses = cocokit.write(ds, tmp_path / "yolo", format="yolo", images=str(folder))
    assert formats.detect(str(tmp_path / "yolo")) == "yolo"
    assert losses.kinds()["area-recomputed"] == 5
    back, read_losses = cocokit.read(tmp_path / "yolo")
    assert not read_losses
    assert back.num_annotations == 5
    assert [c["name"] for c in back.categories] == ["car"]
    np.testing.assert_allclose(back.annotations.bbox, ds.annotations.bbox, rtol=1e-6)


# -- detection of what cocokit wrote: CVAT before VOC, DOTA, not YOLO OBB rows -------------


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """coco-mini written as CVAT (a file, and a folder holding annotations.xml), DOTA,
    VOC and YOLO OBB; a DOTA label folder without index.json."""
    root = tmp_path_factory.mktemp("written")
    ds = cocokit.load(real_path("coco-mini", "annotations", "instances_val2017.json"))
    formats.write(ds, root / "a.xml", "cvat")
    (root / "cvat-folder").mkdir()
    formats.write(ds, root / "cvat-folder" / "annotations.xml", "cvat")
    formats.write(ds, root / "dota", "dota")
    formats.write(ds, root / "voc", "voc")
    formats.write(ds, root / "obb", "yolo", task="obb")
    (root / "bare").mkdir()
    for f in sorted((root / "dota" / "labelTxt").glob("*.txt"))[:3]:
        (root / "bare" / f.name).write_bytes(f.read_bytes())
    return root


@pytest.mark.parametrize(("rel", "fmt"), [
    ("a.xml", "cvat"),
    ("cvat-folder", "cvat"),  # a folder of *.xml, but its root is <annotations>: not VOC
    ("dota", "dota"),
    ("dota/labelTxt", "dota"),
    ("bare", "dota"),  # label files alone: 8 numbers and a name
    ("voc", "voc"),
    ("obb", "yolo"),
])
def test_detects_written_formats(written: Path, rel: str, fmt: str) -> None:
    assert formats.detect(str(written / rel)) == fmt


def test_yolo_obb_rows_are_not_dota(written: Path) -> None:
    # 9 numbers a row: the class is a number, not a DOTA category name
    with pytest.raises(cocokit.InputError, match="cannot tell its format"):
        formats.detect(str(written / "obb" / "labels" / "train"))


@pytest.mark.parametrize(("fmt", "out"), [("cvat", "s.xml"), ("dota", "s-dota")])
def test_strict_refuses_before_writing(written: Path, fmt: str, out: str) -> None:
    ds = cocokit.load(real_path("coco-mini", "annotations", "instances_val2017.json"))
    with pytest.raises(formats.LossyConversion, match="refusing a lossy conversion") as e:
        formats.write(ds, written / out, fmt, strict=True)
    assert e.value.losses and not (written / out).exists()
