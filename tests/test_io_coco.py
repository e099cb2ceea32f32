"""Reading and writing COCO JSON: lossless round trips and the export contract."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit import DatasetBuilder, InputError, IntegrityError, JSONSyntaxError, OptionError
from cocokit.io.coco import write_coco
from cocokit.io.jsontext import read_top
from cocokit.io.stream import open_stream

from .conftest import DATA, REAL, real_path


def real_coco_files() -> list[Path]:
    """Every COCO document (a dict with images) in the real corpus."""
    if not REAL.is_dir():
        return []
    out = []
    for p in sorted(REAL.rglob("*.json")):
        doc = msgspec.json.decode(p.read_bytes())
        if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
            out.append(p)
    return out


REAL_FILES = real_coco_files()
needs_real = pytest.mark.skipif(not REAL_FILES, reason=f"real data not available at {REAL}")


def ids_unique(doc: dict[str, Any], section: str) -> bool:
    ids = [r["id"] for r in doc[section]]
    return len(ids) == len(set(ids))


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_round_trip_keep_ids_is_lossless(path: Path, tmp_path: Path) -> None:
    doc = msgspec.json.decode(path.read_bytes())
    ds = cocokit.load(path)
    out = tmp_path / "out.json"
    ann_policy = "keep" if ids_unique(doc, "annotations") else "auto"
    cocokit.save(ds, out, image_ids="keep", annotation_ids=ann_policy)
    back = msgspec.json.decode(out.read_bytes())
    if ann_policy == "auto":
        # TACO repeats two annotation ids: keep must refuse, auto renumbers and keeps the rest
        with pytest.raises(IntegrityError, match="duplicate annotation id"):
            cocokit.save(ds, tmp_path / "refused.json", image_ids="keep", annotation_ids="keep")
        assert not (tmp_path / "refused.json").exists()
        for a in doc["annotations"]:
            a.pop("id")
        for a in back["annotations"]:
            a.pop("id")
    assert back == doc


def number_types(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Per annotation, the Python type json gives each bbox value and the area (or None)."""
    return [(tuple(map(type, a.get("bbox") or [])), type(a.get("area")))
            for a in doc["annotations"]]


@needs_real
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "stream"])
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_round_trip_writes_integers_as_integers(path: Path, streamed: bool,
                                                tmp_path: Path) -> None:
    """bbox and area come out as the JSON text had them: an integer as an integer
    (MS-COCO crowd annotations, VisDrone, SAHI), a float as a float."""
    with open(path) as f:
        doc = json.load(f)
    out = tmp_path / "out.json"
    ann_policy = "keep" if ids_unique(doc, "annotations") else "auto"  # TACO: auto
    source = open_stream(path) if streamed else cocokit.load(path)
    write_coco(source, out, image_ids="keep", annotation_ids=ann_policy)
    with open(out) as f:
        back = json.load(f)
    assert number_types(back) == number_types(doc)


def test_integers_are_written_as_read_while_whole() -> None:
    """The rule: a bbox value or area read as a JSON integer is written as one while it
    is a whole number; a float as read (``10.0`` included) stays a float."""
    ann = b'{"id":%d,"image_id":1,"category_id":1,"area":%s,"bbox":%s,"iscrowd":0}'
    rows = [(b"1200", b"[10,20,30,42]"), (b"1200.0", b"[10.0,20.5,30,40.0]"),
            (b"6.1875", b"[1.5,2.25,3.0,4.125]")]
    text = (b'{"images":[{"id":1,"file_name":"a.jpg","width":100,"height":80}],'
            b'"annotations":[' + b",".join(ann % (i, a, b) for i, (a, b) in enumerate(rows, 1))
            + b'],"categories":[{"id":1,"name":"c"}]}')
    ds = cocokit.load(text)
    assert cocokit.to_json(ds) == text
    assert ds.annotations[0]["bbox"] == [10, 20, 30, 42]
    assert type(ds.annotations[0]["area"]) is int
    assert type(ds.annotations[1]["area"]) is float
    # a step that changes the values: whole ones stay integers, fractional ones are floats
    a = ds.annotations
    half = cocokit.to_dict(ds.replace(annotations=a.replace(
        bbox=a.bbox * np.array([0.5, 0.5, 0.5, 0.25]), area=a.area * 0.125)))
    assert number_types(half) == [
        ((int, int, int, float), int),  # [5, 10, 15, 10.5]: the last is no longer whole
        ((float, float, int, float), float),
        ((float, float, float, float), float),
    ]
    assert half["annotations"][0]["bbox"] == [5, 10, 15, 10.5]


@pytest.mark.parametrize("mix", ["ints", "fractions", "whole floats", "mixed", "one int"])
def test_number_types_round_trip_whatever_the_mix(mix: str, tmp_path: Path) -> None:
    """Files of every mix of integer, whole float and fractional values (the reader's
    paths: all whole, mostly whole, a few whole) round-trip byte for byte, in memory and
    streamed in small runs."""
    rng = np.random.default_rng(len(mix))
    kinds = {"ints": [0], "fractions": [2], "whole floats": [1], "mixed": [0, 1, 2],
             "one int": [2]}[mix]

    def number(kind: int) -> bytes:
        v = int(rng.integers(1, 400))
        return [b"%d" % v, repr(float(v)).encode(), repr(v + 0.125).encode()][kind]

    anns = []
    for i in range(1, 301):
        values = [number(int(rng.choice(kinds))) for _ in range(5)]
        if mix == "one int" and i == 150:
            values = [b"7", b"8", b"9", b"10", b"90"]
        anns.append(b'{"id":%d,"image_id":1,"category_id":1,"area":%s,"bbox":[%s],"iscrowd":0}'
                    % (i, values[4], b",".join(values[:4])))
    text = (b'{"images":[{"id":1,"file_name":"a.jpg","width":1000,"height":1000}],'
            b'"annotations":[' + b",".join(anns) + b'],"categories":[{"id":1,"name":"c"}]}')
    assert cocokit.to_json(cocokit.load(text)) == text
    src, out = tmp_path / "in.json", tmp_path / "out.json"
    src.write_bytes(text)
    write_coco(open_stream(src, chunk_bytes=2000), out)
    assert out.read_bytes() == text


def test_only_integers_float64_holds_exactly_are_written_as_integers() -> None:
    big = 2**53 + 1  # reads as the float 2**53: written as a float, not as another integer
    text = (b'{"images":[{"id":1,"file_name":"a.jpg","width":100,"height":80}],'
            b'"annotations":[{"id":1,"image_id":1,"category_id":1,"area":%d,'
            b'"bbox":[0,-0,2,3]}],"categories":[{"id":1,"name":"c"}]}' % big)
    a = cocokit.to_dict(cocokit.load(text))["annotations"][0]
    assert a["area"] == float(2**53) and type(a["area"]) is float
    assert a["bbox"] == [0, 0, 2, 3] and {type(v) for v in a["bbox"]} == {int}


def test_taco_has_duplicate_annotation_ids_refused_by_keep(tmp_path: Path) -> None:
    ds = cocokit.load(real_path("taco", "annotations.json"))
    with pytest.raises(IntegrityError) as e:
        cocokit.save(ds, tmp_path / "x.json", image_ids="auto", annotation_ids="keep")
    assert "annotations[309].id: duplicate annotation id 309 (first at annotations[308])" in str(
        e.value
    )
    assert len(e.value.problems) == 2


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_auto_ids_renumber_and_keep_references(path: Path) -> None:
    doc = msgspec.json.decode(path.read_bytes())
    out = cocokit.to_dict(cocokit.load(path), image_ids="auto", annotation_ids="auto")
    assert [im["id"] for im in out["images"]] == list(range(1, len(doc["images"]) + 1))
    assert [a["id"] for a in out["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    assert out["categories"] == doc["categories"]
    old_file = {im["id"]: im["file_name"] for im in doc["images"]}
    new_file = {im["id"]: im["file_name"] for im in out["images"]}
    for a, b in zip(doc["annotations"], out["annotations"]):
        assert new_file[b["image_id"]] == old_file[a["image_id"]]
        assert b["category_id"] == a["category_id"]
        assert b.get("segmentation") == a.get("segmentation")


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_pycocotools_loads_every_export(path: Path, tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    out = tmp_path / "out.json"
    cocokit.save(cocokit.load(path), out, image_ids="auto", annotation_ids="auto")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(out))
    doc = msgspec.json.decode(path.read_bytes())
    assert len(coco.getImgIds()) == len(doc["images"])
    assert len(coco.getAnnIds()) == len(doc["annotations"])


def _eval_stats(gt_path: Path, res_path: Path, iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(res_path))
        ev = COCOeval(gt, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)


@pytest.mark.parametrize(
    "iou_type,results",
    [
        ("bbox", "instances_val2014_fakebbox100_results.json"),
        ("segm", "instances_val2014_fakesegm100_results.json"),
    ],
)
def test_cocoeval_same_stats_after_reexport(iou_type: str, results: str, tmp_path: Path) -> None:
    gt = real_path("cocoapi-val2014-100", "instances_val2014_100.json")
    res = real_path("cocoapi-val2014-100", results)
    out = tmp_path / "gt.json"
    cocokit.save(cocokit.load(gt), out, image_ids="keep", annotation_ids="keep")
    before = _eval_stats(gt, res, iou_type)
    after = _eval_stats(out, res, iou_type)
    assert before[0] > 0  # the fake results do score: the comparison is not vacuous
    np.testing.assert_array_equal(before, after)


# -- the export contract on small hand-made data ----------------------------------------


def small() -> cocokit.Dataset:
    b = DatasetBuilder()
    b.set("info", {"description": "t"})
    cat = b.add_category("cat", id=7, supercategory="animal", color=[1, 2, 3])
    b.add_category("dog", id=3)
    i1 = b.add_image("a.jpg", 100, 80, id=40, license=2)
    b.add_image("empty.jpg", 50, 50, id=10)
    i3 = b.add_image("b.jpg", 100, 80, id=20)
    b.add_annotation(i1, cat, bbox=[1.5, 2.25, 10, 20], id=100)
    b.add_annotation(i3, "dog", polygon=[[10, 10, 30, 10, 30, 40, 10, 40]], id=5)
    b.add_annotation(i1, "dog", bbox=np.array([0.2, 0.1, 3, 4]), id=6, score=np.float32(0.5))
    return b.build()


def test_auto_ids_follow_images_and_categories_pass_through() -> None:
    out = cocokit.to_dict(small(), image_ids="auto", annotation_ids="auto")
    assert [im["id"] for im in out["images"]] == [1, 2, 3]
    assert [im["file_name"] for im in out["images"]] == ["a.jpg", "empty.jpg", "b.jpg"]
    assert [a["id"] for a in out["annotations"]] == [1, 2, 3]
    assert [a["image_id"] for a in out["annotations"]] == [1, 3, 1]
    assert out["categories"] == [
        {"id": 7, "name": "cat", "supercategory": "animal", "color": [1, 2, 3]},
        {"id": 3, "name": "dog"},
    ]
    assert list(out) == ["info", "images", "annotations", "categories"]


def test_keep_ids() -> None:
    out = cocokit.to_dict(small(), image_ids="keep", annotation_ids="keep")
    assert [im["id"] for im in out["images"]] == [40, 10, 20]
    assert [a["id"] for a in out["annotations"]] == [100, 5, 6]
    assert [a["image_id"] for a in out["annotations"]] == [40, 20, 40]


def _write_whole(ds: cocokit.Dataset, out: Path) -> None:
    cocokit.save(ds, out)


def _write_json(ds: cocokit.Dataset, out: Path) -> None:
    out.write_bytes(cocokit.to_json(ds))


def _write_dict(ds: cocokit.Dataset, out: Path) -> None:
    out.write_text(json.dumps(cocokit.to_dict(ds)))


def _write_streamed(ds: cocokit.Dataset, out: Path) -> None:
    from cocokit.io.stream import open_stream

    src = out.with_name("src.json")
    cocokit.save(ds, src, image_ids="keep", annotation_ids="keep")
    cocokit.save(open_stream(src), out)


def _write_parts(ds: cocokit.Dataset, out: Path) -> None:
    from cocokit.io.parts import PartWriter

    with PartWriter(out, categories=ds.categories, extra=ds.extra,
                    key_order=ds.key_order) as w:
        for row in range(len(ds.images)):
            w.add(ds.select_images([row]))


WRITERS = [_write_whole, _write_json, _write_dict, _write_streamed, _write_parts]


@pytest.mark.parametrize("write", WRITERS, ids=lambda f: f.__name__[len("_write_"):])
def test_every_writer_keeps_ids_by_default(tmp_path: Path, write: Any) -> None:
    from cocokit.io.coco import DEFAULT_IDS

    assert DEFAULT_IDS == "keep"
    ds = small()
    write(ds, tmp_path / "out.json")
    out = json.loads((tmp_path / "out.json").read_text())
    assert [im["id"] for im in out["images"]] == [40, 10, 20]
    assert sorted(a["id"] for a in out["annotations"]) == [5, 6, 100]
    by_id = {a["id"]: a["image_id"] for a in out["annotations"]}
    assert by_id == {100: 40, 5: 20, 6: 40}


REPEATS = {  # image id 7 twice (no annotation refers to it), annotation id 3 twice
    "images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
               {"id": 7, "file_name": "b.jpg", "width": 10, "height": 10},
               {"id": 7, "file_name": "c.jpg", "width": 10, "height": 10}],
    "annotations": [{"id": 3, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2]},
                    {"id": 3, "image_id": 1, "category_id": 1, "bbox": [2, 2, 2, 2]}],
    "categories": [{"id": 1, "name": "c"}],
}


REPEATED_IMAGE = ("images[2].id: duplicate image id 7 (first at images[1]); ids must be "
                  "unique: image_ids='auto' (CLI: --image-ids auto) renumbers them 1..N")
REPEATED_ANNOTATION = ("annotations[1].id: duplicate annotation id 3 (first at "
                       "annotations[0]); ids must be unique: annotation_ids='auto' (CLI: "
                       "--annotation-ids auto) renumbers them 1..N")
# what each writer has seen when it refuses: the streamed one checks the images before
# reading an annotation, the part writer refuses the first part (a.jpg and its two)
REFUSALS = [
    (_write_whole, [REPEATED_ANNOTATION, REPEATED_IMAGE]),
    (_write_json, [REPEATED_ANNOTATION, REPEATED_IMAGE]),
    (_write_dict, [REPEATED_ANNOTATION, REPEATED_IMAGE]),
    (_write_streamed, [REPEATED_IMAGE]),
    (_write_parts, [REPEATED_ANNOTATION]),
]


@pytest.mark.parametrize(("write", "problems"), REFUSALS,
                         ids=[f.__name__[len("_write_"):] for f, _ in REFUSALS])
def test_every_writer_names_the_way_out_of_a_repeated_id(tmp_path: Path, write: Any,
                                                         problems: list[str]) -> None:
    out = tmp_path / "out.json"
    with pytest.raises(IntegrityError) as e:
        if write is _write_streamed:
            from cocokit.io.stream import open_stream

            (tmp_path / "src.json").write_text(json.dumps(REPEATS))
            cocokit.save(open_stream(tmp_path / "src.json"), out)
        else:
            write(cocokit.load(REPEATS), out)
    assert sorted(e.value.problems) == problems
    assert not out.exists()


def test_ignore_negative_samples() -> None:
    ds = small()
    kept = cocokit.to_dict(ds, image_ids="auto", annotation_ids="auto")
    dropped = cocokit.to_dict(ds, ignore_negative_samples=True, image_ids="auto",
                              annotation_ids="auto")
    assert len(kept["images"]) == 3
    assert [im["file_name"] for im in dropped["images"]] == ["a.jpg", "b.jpg"]
    assert [a["image_id"] for a in dropped["annotations"]] == [1, 2, 1]


def test_numpy_values_are_plain_json_numbers() -> None:
    text = cocokit.to_json(small())
    doc = json.loads(text)
    assert doc["annotations"][2]["score"] == 0.5
    assert doc["annotations"][2]["bbox"] == [0.2, 0.1, 3.0, 4.0]
    assert b"float32" not in text


def test_missing_bbox_and_area_computed_like_pycocotools() -> None:
    from pycocotools import mask as mask_utils

    out = cocokit.to_dict(small())
    poly = out["annotations"][1]
    assert poly["bbox"] == [10.0, 10.0, 20.0, 30.0]
    rle = mask_utils.merge(mask_utils.frPyObjects(poly["segmentation"], 80, 100))
    assert poly["area"] == float(mask_utils.area(rle))
    assert out["annotations"][0]["area"] == 200.0  # box only: w * h


def test_floats_are_not_rounded() -> None:
    b = DatasetBuilder()
    c = b.add_category("x")
    i = b.add_image("a.jpg", 10, 10)
    b.add_annotation(
        i,
        c,
        bbox=[0.1 + 0.2, 1e-7, 2.0000000000000004, 3.3333333333333335],
        area=1234.5678901234567,
    )
    a = cocokit.to_dict(b.build())["annotations"][0]
    assert a["bbox"] == [0.1 + 0.2, 1e-7, 2.0000000000000004, 3.3333333333333335]
    assert a["area"] == 1234.5678901234567


def test_dangling_references_refused_and_nothing_written(tmp_path: Path) -> None:
    doc = cocokit.to_dict(small(), image_ids="keep", annotation_ids="keep")
    doc["annotations"][0]["image_id"] = 999
    doc["annotations"][1]["category_id"] = 55
    ds = cocokit.load(doc)
    out = tmp_path / "out.json"
    with pytest.raises(IntegrityError) as e:
        cocokit.save(ds, out)
    msg = str(e.value)
    assert "annotations[0].image_id: image id 999 names no image" in msg
    assert "annotations[1].category_id: category id 55 is not in categories" in msg
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_integrity_error_lists_first_20_and_count() -> None:
    doc = cocokit.to_dict(small(), image_ids="keep", annotation_ids="keep")
    doc["annotations"] = [dict(doc["annotations"][0], id=i, image_id=1000 + i) for i in range(25)]
    with pytest.raises(IntegrityError) as e:
        cocokit.to_json(cocokit.load(doc))
    assert len(e.value.problems) == 25
    assert "... and 5 more" in str(e.value)
    assert "image id 1019" in str(e.value) and "image id 1020" not in str(e.value)


def test_keep_image_ids_refuses_duplicates_naming_them() -> None:
    doc = cocokit.to_dict(small(), image_ids="keep", annotation_ids="keep")
    doc["images"][1]["id"] = 40
    ds = cocokit.load(doc)
    with pytest.raises(
        IntegrityError, match=r"images\[1\]\.id: duplicate image id 40 \(first at images\[0\]\)"
    ):
        cocokit.to_json(ds, image_ids="keep")


def test_bad_policy_is_an_option_error() -> None:
    with pytest.raises(OptionError, match="image_ids"):
        cocokit.to_json(small(), image_ids="manual")  # type: ignore[arg-type]


def test_failed_write_leaves_existing_file_untouched(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("precious")
    doc = cocokit.to_dict(small())
    doc["annotations"][0]["image_id"] = 999
    with pytest.raises(IntegrityError):
        cocokit.save(cocokit.load(doc), out)
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_error_during_write_removes_temp_file(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    out.write_text("precious")
    b = DatasetBuilder()
    c = b.add_category("x")
    i = b.add_image("a.jpg", 10, 10)
    b.add_annotation(i, c, bbox=[1, 1, 2, 2], weird=object())
    with pytest.raises(TypeError):
        b.build()
    # a value that cannot be encoded only shows up while writing
    ds = small()
    extra = ds.annotations.extra.copy()
    extra[0] = {"weird": object()}
    bad = ds.replace(annotations=ds.annotations.replace(extra=extra))
    with pytest.raises(TypeError, match="cannot write a value of type object"):
        cocokit.save(bad, out)
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_writing_over_the_input_is_safe(tmp_path: Path) -> None:
    src = tmp_path / "data.json"
    src.write_bytes((DATA / "tiny_coco_val2017.json").read_bytes())
    before = msgspec.json.decode(src.read_bytes())
    cocokit.save(cocokit.load(src), src, image_ids="keep", annotation_ids="keep")
    assert msgspec.json.decode(src.read_bytes()) == before


def test_indent_output_parses_equal(tmp_path: Path) -> None:
    ds = cocokit.load(DATA / "tiny_coco_val2017.json")
    out = tmp_path / "pretty.json"
    cocokit.save(ds, out, indent=2, image_ids="keep", annotation_ids="keep")
    text = out.read_text()
    assert text.startswith("{\n  ")
    assert json.loads(text) == json.loads((DATA / "tiny_coco_val2017.json").read_text())


def test_output_folder_must_exist(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        cocokit.save(small(), tmp_path / "nope" / "out.json")


# -- reading: errors name the file and the place ---------------------------------------


@pytest.mark.parametrize(
    "text,path,message",
    [
        (
            b'{"images": [{"id": 1, "file_name": "a", "width": "640", "height": 1}]}',
            "images[0].width",
            "Expected `int`, got `str`",
        ),
        (
            b'{"images": [{"id": 1, "file_name": "a", "height": 1}]}',
            "images[0]",
            "missing required key `width`",
        ),
        (
            b'{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1, '
            b'"bbox": [1, 2, 3]}]}',
            "annotations[0].bbox",
            "expected 4 numbers",
        ),
        (
            b'{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}, '
            b'{"id": 2, "image_id": 1, "category_id": 1, "bbox": [1, "x", 3, 4]}]}',
            "annotations[1].bbox[1]",
            "Expected `float`, got `str`",
        ),
        (
            b'{"images": [], "categories": [{"id": 1}]}',
            "categories[0]",
            "missing required key `name`",
        ),
        (b'{"images": {}}', "images", "expected an array"),
    ],
)
def test_bad_input_names_the_place(text: bytes, path: str, message: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(text)
    with pytest.raises(InputError) as e:
        cocokit.load(f)
    assert e.value.file == str(f)
    assert e.value.path == path
    assert message in e.value.message


def test_malformed_json_gives_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_bytes(b'{\n  "images": [\n    {"id": 1,,}\n  ]\n}')
    with pytest.raises(JSONSyntaxError) as e:
        cocokit.load(f)
    assert (e.value.line, e.value.column) == (3, 14)  # the second comma
    assert str(e.value).startswith(f"{f}: line 3, column 14: malformed JSON")


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        cocokit.load(tmp_path / "nope.json")


def test_top_level_must_be_an_object() -> None:
    with pytest.raises(InputError, match="top level"):
        cocokit.load(b"[1, 2]")


def test_unknown_keys_everywhere_survive(tmp_path: Path) -> None:
    doc = {
        "zzz": {"nested": [1, 2.5, None]},
        "info": {"year": 2024},
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 4, "height": 3, "flag": True, "tags": ["x"]}
        ],
        "annotations": [
            {
                "id": 9,
                "image_id": 1,
                "category_id": 2,
                "bbox": [0, 0, 1, 1],
                "area": 1,
                "attrs": {"a": 1},
            },
            {
                "id": 10,
                "image_id": 1,
                "category_id": 2,
                "bbox": [0, 0, 1, 1],
                "area": 1,
                "score": 0.25,
                "keypoints": [1, 2, 2],
                "num_keypoints": 1,
            },
        ],
        "categories": [{"id": 2, "name": "c", "keypoints": ["nose"], "skeleton": []}],
        "licenses": [],
    }
    ds = cocokit.load(doc)
    out = cocokit.to_dict(ds, image_ids="keep", annotation_ids="keep")
    assert out == doc
    assert list(out) == list(doc)
    assert ds.annotations[0]["attrs"] == {"a": 1}
    assert ds.images[0]["tags"] == ["x"]


def test_compressed_and_uncompressed_rle_pass_through() -> None:
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 3}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 1,
                "segmentation": {"size": [3, 4], "counts": [2, 5, 5]},
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": {"size": [3, 4], "counts": "129"},
            },
        ],
        "categories": [{"id": 1, "name": "c"}],
    }
    ds = cocokit.load(doc)
    assert ds.annotations.segmentation_kind.tolist() == [2, 3]
    out = cocokit.to_dict(ds, image_ids="keep", annotation_ids="keep")
    for a in out["annotations"]:
        a.pop("area"), a.pop("bbox")
    assert out == doc
    computed = cocokit.to_dict(ds)["annotations"]
    assert computed[0]["area"] == 5.0  # pixels of the mask, as pycocotools counts them


def test_lvis_annotations_without_iscrowd_stay_without() -> None:
    ds = cocokit.load(real_path("lvis-val100", "lvis_val_100.json"))
    assert (ds.annotations.iscrowd == -1).all()
    assert "iscrowd" not in cocokit.to_dict(ds)["annotations"][0]


# -- the top level read in one pass ----------------------------------------------------

_TOP_TEXTS = [
    b'{"images": [], "annotations": [ ], "categories": [\n]}',
    b'{ "info" : {"a": [1, 2]} , "annotations" : [ {"id": 1} ,\n {"id": 2}\t] ,'
    b' "images": [{"id": 1}], "licenses": [], "categories": [{"id": 1, "name": "a"}] }',
    b'{"categories": [{"id": 1, "name": "[]"}], "images": [{"id": 1, "file_name": "]"}]}',
    b'{"annotations": [], "type": "instances"}',  # another key: the general way
]


@pytest.mark.parametrize("text", _TOP_TEXTS, ids=range(len(_TOP_TEXTS)))
def test_the_top_level_pass_gives_what_the_general_reading_gives(text: bytes) -> None:
    top, keys, records = read_top(text, "t.json")
    general = msgspec.json.decode(text, type=dict[str, msgspec.Raw])
    assert keys == list(general)
    # the same text; an empty array may be given without its inner whitespace
    def text_of(v: msgspec.Raw) -> bytes:
        return b"[]" if msgspec.json.decode(v) == [] else bytes(v)

    assert {k: text_of(v) for k, v in top.items()} == {k: text_of(v) for k, v in general.items()}
    for key, value in general.items():  # byte for byte but the empty arrays
        assert text_of(value) == b"[]" or bytes(top[key]) == bytes(value)
    assert bool(records) == (set(keys) <= {"info", "licenses", "images", "annotations",
                                           "categories"})
    for key, raws in records.items():
        assert [bytes(r) for r in raws] == [
            bytes(r) for r in msgspec.json.decode(general[key], type=list[msgspec.Raw])]


def test_a_key_given_twice_is_refused_when_the_pass_splits_the_arrays() -> None:
    text = b'{"annotations": [{"id": 1}], "images": [], "annotations": [{"id": 2}]}'
    with pytest.raises(JSONSyntaxError) as e:
        read_top(text, "t.json")
    assert "annotations" in str(e.value)


@pytest.mark.parametrize("parts", [("taco", "annotations.json"),
                                   ("lvis-val100", "lvis_val_100.json"),
                                   ("cocoapi-val2014-100", "instances_val2014_100.json")],
                         ids=str)
def test_a_real_file_reads_the_same_split_in_one_pass_or_not(parts: tuple[str, str]) -> None:
    data = real_path(*parts).read_bytes()
    top, keys, records = read_top(data, str(parts))
    # TACO has keys of its own (scene_annotations, ...): read the general way
    assert bool(records) == (parts[0] != "taco")
    general = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
    assert keys == list(general)
    for key in keys:
        assert bytes(top[key]) == bytes(general[key])
    for key, raws in records.items():
        assert [bytes(r) for r in raws] == [
            bytes(r) for r in msgspec.json.decode(general[key], type=list[msgspec.Raw])]
