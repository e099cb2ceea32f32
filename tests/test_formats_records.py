"""What the format readers and writers share (cocokit.io.formats.records): the one XML
parser, label file names, number text and the common losses."""

from __future__ import annotations

import numpy as np
import pytest

import cocokit
from cocokit.errors import InputError, IntegrityError
from cocokit.io.formats.records import (
    common_losses,
    export_rows,
    label_paths,
    number_text,
    parse_xml,
)


def test_parse_xml_knows_lines_and_text() -> None:
    root = parse_xml(b'<a x="1">\n  <b>one</b>\n  <b>two</b>\n  <c/>\n</a>\n', "f.xml")
    assert (root.tag, root.attrib, root.line, len(root)) == ("a", {"x": "1"}, 1, 3)
    assert [(b.text, b.line) for b in root.findall("b")] == [("one", 2), ("two", 3)]
    assert root.findtext("b") == "one" and root.findtext("z", "none") == "none"
    assert root.find("c") is not None and root.find("z") is None


@pytest.mark.parametrize(("data", "where", "what"), [
    (b"<a>\n<b></a>", "line 2, column 6", "broken XML: mismatched tag"),
    (b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY e "x">]>\n<a>&e;</a>', "line 2",
     "DOCTYPE or entity declaration"),
    (b'<!DOCTYPE a SYSTEM "file:///etc/passwd">\n<a/>', "line 1", "refused"),
    (b"", "line 1, column 1", "broken XML: no element found"),
])
def test_parse_xml_refuses_with_the_place(data: bytes, where: str, what: str) -> None:
    with pytest.raises(InputError, match=what) as e:
        parse_xml(data, "f.xml")
    assert e.value.file == "f.xml" and e.value.path == where


@pytest.mark.parametrize(("names", "rels"), [
    (["a.jpg", "sub/b.png"], ["a.txt", "sub/b.txt"]),
    (["/abs/c.jpg", "../up/d.jpg", "e"], ["abs/c.txt", "up/d.txt", "e.txt"]),
    (["win\\f.jpg"], ["win/f.txt"]),
])
def test_label_paths(names: list[str], rels: list[str]) -> None:
    assert label_paths(names, ".txt", "labelTxt", "out") == rels


def test_label_paths_refuse_two_images_on_one_file() -> None:
    with pytest.raises(IntegrityError, match=r"images\[1\].file_name 'a.png' and "
                       r"images\[0\].file_name 'a.jpg' both need labelTxt/a\.txt"):
        label_paths(["a.jpg", "a.png"], ".txt", "labelTxt", "out")


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1"), (-0.0, "0"), (0.1, "0.1"), (1e20, "1e+20"), (12.0, "12"),
    (2.0**53, "9007199254740992.0"), (1 / 3, "0.3333333333333333"), (np.float32(0.5), "0.5"),
])
def test_number_text(value: float, text: str) -> None:
    assert number_text(value) == text
    assert float(text) == float(value)


def _dataset() -> cocokit.Dataset:
    b = cocokit.DatasetBuilder()
    car = b.add_category("car", id=3, supercategory="vehicle")
    img = b.add_image("a.jpg", 100, 80, id=7, license=1)
    b.add_annotation(img, car, bbox=[0, 0, 10, 10], id=5, iscrowd=1, area=100,
                     note="x")
    b.add_annotation(img, car, bbox=[20, 20, 10, 5], id=6, area=50)
    return b.build().replace(extra={"info": {"year": 2024}})


def test_common_losses_switches() -> None:
    ds = _dataset()
    rows = export_rows(ds, "out")
    every = common_losses(rows, category_keys=(), top_level=True).kinds()
    assert every["area-recomputed"] == 2  # areas not stored: every one counted
    assert every["crowd-flag-dropped"] == 1
    assert every["image-key-dropped:license"] == 1
    assert every["annotation-key-dropped:note"] == 1
    assert every["category-key-dropped:supercategory"] == 1
    assert every["image-ids-renumbered"] == 1 and every["annotation-ids-renumbered"] == 2
    assert every["top-key-dropped:info"] == 1
    # carried: keys named (or all: None), crowd, categories (the default), ids
    none = common_losses(rows, area=False, crowd=False, image_keys=None,
                         annotation_keys=("note",), image_ids=False,
                         annotation_ids=False).kinds()
    assert none == {}
    # computed areas: only those that change are counted
    computed = np.array([100.0, 51.0])
    assert common_losses(rows, area=computed, crowd=False, image_keys=None,
                         annotation_keys=None, image_ids=False,
                         annotation_ids=False).kinds() == {"area-recomputed": 1}
