"""filter: categories, areas, box sizes, crowd, images; annotations or whole images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

import cocokit
from cocokit import OptionError
from cocokit.cli import app
from cocokit.transforms import filter_dataset

from .conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")


@pytest.fixture
def mini() -> tuple[cocokit.Dataset, dict[str, Any]]:
    """coco-mini val as a dataset and as plain JSON (the expectation is computed from it)."""
    path = real_path(*MINI)
    return cocokit.load(path), json.loads(path.read_text())


def raw_by_id(ds: cocokit.Dataset, section: str) -> dict[int, bytes]:
    doc = msgspec.json.decode(cocokit.to_json(ds, image_ids="keep", annotation_ids="keep"),
                              type=dict[str, msgspec.Raw])
    recs = msgspec.json.decode(doc[section], type=list[msgspec.Raw])
    return {msgspec.json.decode(r)["id"]: bytes(r) for r in recs}


def assert_untouched(before: cocokit.Dataset, after: cocokit.Dataset) -> None:
    """Every record of ``after`` is byte for byte the record with its id in ``before``."""
    for section in ("images", "annotations"):
        old, new = raw_by_id(before, section), raw_by_id(after, section)
        assert set(new) <= set(old)
        assert all(new[i] == old[i] for i in new)


def ids(doc: dict[str, Any], pred: Any, section: str = "annotations") -> set[int]:
    return {r["id"] for r in doc[section] if pred(r)}


def test_drop_category(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    before = cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")
    out, report = filter_dataset(ds, drop_categories=["person"])
    person = next(c["id"] for c in doc["categories"] if c["name"] == "person")
    assert set(out.annotations.id.tolist()) == ids(doc, lambda a: a["category_id"] != person)
    assert "person" not in out.categories and len(out.categories) == 79
    assert len(out.images) == len(doc["images"])  # the unit is the annotation
    assert report.dropped_annotations == {"category not kept": len(ids(
        doc, lambda a: a["category_id"] == person))}
    assert report.dropped_categories == ("person",)
    assert_untouched(ds, out)
    assert cocokit.to_json(ds, image_ids="keep", annotation_ids="keep") == before


def test_keep_categories_by_id_and_name(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    out, _ = filter_dataset(ds, categories=[1, "dog"])
    assert [c["name"] for c in out.categories] == ["person", "dog"]
    dog = next(c["id"] for c in doc["categories"] if c["name"] == "dog")
    assert set(out.annotations.id.tolist()) == ids(doc, lambda a: a["category_id"] in (1, dog))


@pytest.mark.parametrize(("lo", "hi"), [(32**2, 96**2), (None, 500.0), (10_000.0, None)])
def test_area_range(mini: tuple[cocokit.Dataset, dict[str, Any]], lo: float | None,
                    hi: float | None) -> None:
    ds, doc = mini
    out, report = filter_dataset(ds, area=(lo, hi))
    expect = ids(doc, lambda a: (lo is None or a["area"] >= lo) and (hi is None or a["area"] <= hi))
    assert set(out.annotations.id.tolist()) == expect
    assert report.total_dropped_annotations == len(doc["annotations"]) - len(expect)
    assert_untouched(ds, out)


def test_category_area_replaces_the_global_range(
        mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    out, _ = filter_dataset(ds, area=(5000, None), category_area={"person": (None, 1000)})
    expect = ids(doc, lambda a: a["area"] <= 1000 if a["category_id"] == 1 else a["area"] >= 5000)
    assert set(out.annotations.id.tolist()) == expect


def test_box_minimum(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    out, report = filter_dataset(ds, min_width=20, min_height=30)
    expect = ids(doc, lambda a: a["bbox"][2] >= 20 and a["bbox"][3] >= 30)
    assert set(out.annotations.id.tolist()) == expect
    assert report.dropped_annotations["box smaller than the minimum"] == len(
        doc["annotations"]) - len(expect)


@pytest.mark.parametrize("crowd", ["drop", "only"])
def test_crowd(mini: tuple[cocokit.Dataset, dict[str, Any]], crowd: str) -> None:
    ds, doc = mini
    out, _ = filter_dataset(ds, crowd=crowd)  # type: ignore[arg-type]
    want = 1 if crowd == "only" else 0
    expect = ids(doc, lambda a: a["iscrowd"] == want)
    assert set(out.annotations.id.tolist()) == expect
    assert len(expect) == (5 if crowd == "only" else 619)


def test_whole_images_as_the_unit(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    """SAHI's get_area_filtered_coco drops whole images; here that is asked for explicitly."""
    ds, doc = mini
    out, report = filter_dataset(ds, area=(100, None), unit="images")
    bad_images = {a["image_id"] for a in doc["annotations"] if a["area"] < 100}
    assert set(out.images.id.tolist()) == {i["id"] for i in doc["images"]} - bad_images
    assert set(out.annotations.id.tolist()) == ids(doc, lambda a: a["image_id"] not in bad_images)
    assert report.dropped_images == {"holds an annotation that fails the filter": len(bad_images)}
    assert_untouched(ds, out)


def test_drop_empty(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    out, report = filter_dataset(ds, categories=["dog"], drop_empty=True)
    dog = next(c["id"] for c in doc["categories"] if c["name"] == "dog")
    dog_images = {a["image_id"] for a in doc["annotations"] if a["category_id"] == dog}
    assert set(out.images.id.tolist()) == dog_images
    kept, _ = filter_dataset(ds, categories=["dog"])
    assert len(kept.images) == len(doc["images"])
    assert report.total_dropped_images == len(doc["images"]) - len(dog_images)


def test_images_by_glob_id_and_list(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, doc = mini
    out, _ = filter_dataset(ds, image_globs="*9.jpg")
    expect = {i["id"] for i in doc["images"] if i["file_name"].endswith("9.jpg")}
    assert set(out.images.id.tolist()) == expect and expect
    assert set(out.annotations.id.tolist()) == ids(doc, lambda a: a["image_id"] in expect)
    first = doc["images"][:3]
    out, report = filter_dataset(ds, images=[first[0]["id"], first[1]["file_name"], 424242])
    assert out.images.id.tolist() == [first[0]["id"], first[1]["id"]]
    assert any("424242" in n for n in report.notes)
    out, _ = filter_dataset(ds, exclude_images=[first[2]["id"]], exclude_globs=["*0.jpg"])
    assert first[2]["id"] not in out.images.id.tolist()
    assert not any(n.endswith("0.jpg") for n in out.images.file_name)


def test_reasons_add_up(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, _ = mini
    _, report = filter_dataset(ds, drop_categories=["person"], crowd="drop", area=(200, None),
                                 min_width=10, image_globs="*[0-7].jpg")
    assert report.annotations_in - report.annotations_out == report.total_dropped_annotations
    assert report.images_in - report.images_out == report.total_dropped_images
    assert next(iter(report.dropped_annotations)) == "their image was dropped"


def test_unknown_category_is_an_option_error(mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, _ = mini
    with pytest.raises(OptionError, match=r"drop_categories.*'persn'"):
        filter_dataset(ds, drop_categories=["persn"])
    with pytest.raises(OptionError, match="crowd"):
        filter_dataset(ds, crowd="maybe")  # type: ignore[arg-type]


def test_missing_area_and_box_are_computed() -> None:
    """Records without area or bbox are measured from their segmentation."""
    b = cocokit.DatasetBuilder()
    c = b.add_category("x")
    img = b.add_image("a.jpg", 100, 100)
    b.add_annotation(img, c, polygon=[[0, 0, 10, 0, 10, 10, 0, 10]])  # 10 x 10, no area
    b.add_annotation(img, c, polygon=[[0, 0, 40, 0, 40, 40, 0, 40]])
    ds = b.build()
    assert np.isnan(ds.annotations.bbox).all() and np.isnan(ds.annotations.area).all()
    out, _ = filter_dataset(ds, area=(500, None))
    assert out.annotations.id.tolist() == [2]
    out, _ = filter_dataset(ds, min_width=20)
    assert out.annotations.id.tolist() == [2]


def test_cli_in_process(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    keep = tmp_path / "keep.txt"
    doc = json.loads(real_path(*MINI).read_text())
    keep.write_text(f"# two images\n{doc['images'][0]['id']}\n{doc['images'][1]['file_name']}\n")
    result = CliRunner().invoke(app, ["filter", str(real_path(*MINI)), "-o", str(out),
                                      "--image-list", str(keep), "-d", "1", "--crowd", "drop"])
    assert result.exit_code == 0, result.output
    ds = cocokit.load(out)
    assert ds.images.id.tolist() == [doc["images"][0]["id"], doc["images"][1]["id"]]
    assert not (ds.annotations.category_id == 1).any()


def test_cli_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "f.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "filter", str(real_path(*MINI)), "-o", str(out),
         "--drop-category", "person", "--min-area", "1024", "--drop-images"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(real_path(*MINI).read_text())
    bad = {a["image_id"] for a in doc["annotations"] if a["category_id"] == 1 or a["area"] < 1024}
    ds = cocokit.load(out)
    assert set(ds.images.id.tolist()) == {i["id"] for i in doc["images"]} - bad


# -- one filter for a loaded dataset and a file of any size ------------------------------

STREAM_FILTERS: list[dict[str, Any]] = [
    dict(drop_categories=["person"]),
    dict(categories=["person", "car"], area=(32.0, None)),
    dict(area=(None, 1024.0), drop_empty=True),
    dict(min_width=20.0, min_height=10.0, crowd="drop"),
    dict(crowd="only", drop_empty=True),
    dict(category_area={"person": (1000.0, None)}),
]


@pytest.mark.parametrize("chunk_bytes", [1 << 12, 1 << 25])
@pytest.mark.parametrize("tests", STREAM_FILTERS, ids=lambda t: ",".join(t))
def test_filter_of_a_stream_writes_the_bytes_of_the_loaded_filter(
        tests: dict[str, Any], chunk_bytes: int, tmp_path: Path) -> None:
    from cocokit.io.coco import FilteredStream, write_coco
    from cocokit.io.stream import open_stream

    path = real_path(*MINI)
    lazy = filter_dataset(open_stream(path, chunk_bytes), **tests)
    assert isinstance(lazy, FilteredStream) and lazy.source == str(path)
    got = write_coco(lazy, tmp_path / "stream.json", image_ids="keep", annotation_ids="keep")
    out, _ = filter_dataset(cocokit.load(path), **tests)
    want = write_coco(out, tmp_path / "mem.json", image_ids="keep", annotation_ids="keep")
    assert (tmp_path / "stream.json").read_bytes() == (tmp_path / "mem.json").read_bytes()
    assert (got.images, got.annotations, got.categories) == (
        want.images, want.annotations, want.categories)
    assert got.annotations < len(cocokit.load(path).annotations)  # the filter did something


@pytest.mark.parametrize(("option", "value"), [
    ("images", [1]), ("exclude_images", ["x.jpg"]), ("image_globs", "*.jpg"),
    ("exclude_globs", ["a*"]), ("unit", "images"),
])
def test_filter_of_a_stream_refuses_the_image_tests(option: str, value: Any) -> None:
    from cocokit.io.stream import open_stream

    stream = open_stream(real_path(*MINI))
    with pytest.raises(OptionError, match=rf"{option}.*streamed file.*whole dataset"):
        filter_dataset(stream, **{option: value})


def test_filter_of_a_stream_checks_its_options_before_anything_is_read() -> None:
    from cocokit.io.stream import open_stream

    stream = open_stream(real_path(*MINI))
    with pytest.raises(OptionError, match="crowd"):
        filter_dataset(stream, crowd="sometimes")  # type: ignore[arg-type]
    with pytest.raises(OptionError, match="min_width"):
        filter_dataset(stream, min_width=float("nan"))


@pytest.mark.parametrize(("pattern", "refused"), [
    ("[", True), ("*[0-9.jpg", True), ("[!", True), ("a[]", True), ("[]", True),
    ("[[]*", False), ("[]]*", False), ("[!]]*", False), ("*[0-9]*.jpg", False),
    ("a]b*", False), ("*", False),
])
def test_an_unclosed_set_in_a_glob_is_refused(mini: tuple[cocokit.Dataset, dict[str, Any]],
                                              pattern: str, refused: bool) -> None:
    ds, _ = mini
    for option in ("image_globs", "exclude_globs"):
        if refused:
            with pytest.raises(OptionError) as e:
                filter_dataset(ds, **{option: pattern})
            assert e.value.option == option and e.value.value == pattern
        else:
            filter_dataset(ds, **{option: pattern})


def test_a_glob_that_matches_nothing_is_noted(
        mini: tuple[cocokit.Dataset, dict[str, Any]]) -> None:
    ds, _ = mini
    out, report = filter_dataset(ds, image_globs=["nothing*", "0*"],
                                 exclude_globs=["*.png", "*1.jpg"])
    assert report.notes == ("--image-glob 'nothing*' matches no image",
                            "--exclude-glob '*.png' matches no image")
    assert 0 < len(out.images) < len(ds.images)
