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
                                  "Label-Studio", "VOC"])
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
