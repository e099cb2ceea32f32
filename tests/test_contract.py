"""The export contract's error checks: what validate calls an error is never written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from cocokit import IntegrityError, load
from cocokit.contract import check_annotations
from cocokit.io.coco import to_dict, to_json, write_coco
from cocokit.io.parts import PartWriter
from cocokit.io.stream import open_stream
from cocokit.io.yolo import write_yolo
from cocokit.validate import validate_file

from .conftest import real_path

HUGE = int("1" + "0" * 400)  # an integer no float holds


def _doc(**changes: Any) -> dict[str, Any]:
    """Two images and three annotations, valid; ``changes`` patch records by path."""
    doc: dict[str, Any] = {
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 10, "height": 10},
            {"id": 2, "file_name": "b.jpg", "width": 20, "height": 10},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4,
             "iscrowd": 0, "segmentation": [[0, 0, 2, 0, 2, 2]]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 3, 3], "area": 9,
             "iscrowd": 0, "segmentation": [[1, 1, 4, 1, 4, 4]]},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25,
             "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "thing"}],
    }
    for key, value in changes.items():
        section, row, field = key.split("__")
        doc[section][int(row)][field] = value
    return doc


# (patch, code, path): every one loads, validate calls it an error, export refuses it
CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"images__0__width": -5}, "bad-image-size", "images[0].width"),
    ({"images__1__height": 0}, "bad-image-size", "images[1].height"),
    ({"annotations__1__bbox": [0, 0, -1, 2]}, "negative-bbox-size", "annotations[1].bbox"),
    ({"annotations__2__bbox": [0, 0, 3, -0.5]}, "negative-bbox-size", "annotations[2].bbox"),
    ({"annotations__0__segmentation": [[0, 0, 2, 0, 2]]}, "bad-polygon",
     "annotations[0].segmentation[0]"),
    ({"annotations__0__segmentation": [[0, 0, 2, 0]]}, "bad-polygon",
     "annotations[0].segmentation[0]"),
    ({"annotations__1__segmentation": [[1, 1, 4, 1, 4, 4], [1, 2]]}, "bad-polygon",
     "annotations[1].segmentation[1]"),
    ({"annotations__0__segmentation": [[0, 0, "x", 0, 2, 2]]}, "bad-polygon",
     "annotations[0].segmentation[0]"),
    ({"annotations__0__segmentation": [[0, 0, None, 0, 2, 2]]}, "bad-polygon",
     "annotations[0].segmentation[0]"),
    ({"annotations__0__segmentation": [[[0, 0, 2, 0, 2, 2]]]}, "bad-polygon",
     "annotations[0].segmentation[0]"),
    ({"annotations__0__segmentation": [0, 0, 2, 0, 2, 2]}, "bad-segmentation",
     "annotations[0].segmentation[0]"),
    ({"annotations__0__segmentation": "abc"}, "bad-segmentation", "annotations[0].segmentation"),
    ({"annotations__0__segmentation": 7}, "bad-segmentation", "annotations[0].segmentation"),
    ({"annotations__0__segmentation": None}, "bad-segmentation",
     "annotations[0].segmentation"),
    ({"annotations__0__segmentation": True}, "bad-segmentation",
     "annotations[0].segmentation"),
    ({"annotations__0__segmentation": [[0, 0, 2, 0, 2, HUGE]]}, "non-finite",
     "annotations[0].segmentation[0]"),
    ({"annotations__1__segmentation": {"size": [5, 5], "counts": [25]}}, "rle-size-mismatch",
     "annotations[1].segmentation.size"),
    ({"annotations__0__segmentation": {"size": [10, 10], "counts": [1, 2]}},
     "rle-counts-sum", "annotations[0].segmentation.counts"),
    ({"annotations__0__segmentation": {"counts": [100]}}, "bad-rle",
     "annotations[0].segmentation"),
    ({"annotations__0__segmentation": {"size": [10, 10], "counts": [50, -1, 51]}}, "bad-rle",
     "annotations[0].segmentation.counts"),
    ({"annotations__0__segmentation": {"size": [10], "counts": "abc"}}, "bad-rle",
     "annotations[0].segmentation.size"),
    ({"annotations__0__segmentation": {"size": [10, 10], "counts": 5}}, "bad-rle",
     "annotations[0].segmentation.counts"),
    ({"annotations__2__keypoints": [1, 2]}, "bad-keypoints", "annotations[2].keypoints"),
    ({"annotations__2__keypoints": [1, 2, "v"]}, "bad-keypoints", "annotations[2].keypoints"),
    ({"annotations__2__keypoints": "x"}, "bad-keypoints", "annotations[2].keypoints"),
    ({"annotations__2__keypoints": [[1, 2, 2]]}, "bad-keypoints", "annotations[2].keypoints"),
    ({"annotations__2__keypoints": [1, HUGE, 2]}, "non-finite", "annotations[2].keypoints"),
    ({"annotations__1__iscrowd": 2}, "bad-iscrowd", "annotations[1].iscrowd"),
    ({"annotations__1__iscrowd": -3}, "bad-iscrowd", "annotations[1].iscrowd"),
    ({"annotations__2__iscrowd": -1}, "bad-iscrowd", "annotations[2].iscrowd"),
    ({"images__0__file_name": ""}, "bad-file-name", "images[0].file_name"),
    ({"images__1__file_name": "b\x00.jpg"}, "bad-file-name", "images[1].file_name"),
    ({"annotations__0__segmentation": {"size": [10, 10], "counts": "X1d0"}},
     "rle-counts-sum", "annotations[0].segmentation.counts"),
    ({"annotations__0__segmentation": {"size": [10, 10], "counts": "X1d0X1X"}},
     "bad-rle", "annotations[0].segmentation.counts"),
    ({"categories__0__keypoints": ["nose", "tail"], "annotations__2__keypoints": [1, 2, 2]},
     "bad-keypoints", "annotations[2].keypoints"),
]


@pytest.mark.parametrize("value", [-1, 2, 7])
def test_an_odd_iscrowd_is_kept_as_read_and_refused(value: int, tmp_path: Path) -> None:
    """Never dropped nor rewritten: the record keeps it, the export names it."""
    ds = load(_doc(annotations__1__iscrowd=value))
    assert ds.annotations[1]["iscrowd"] == value
    assert ds.annotations[0]["iscrowd"] == 0
    with pytest.raises(IntegrityError) as e:
        write_coco(ds, tmp_path / "out.json")
    assert f"annotations[1].iscrowd: iscrowd must be 0 or 1, found integer {value}" in str(
        e.value)
    written = to_dict(ds, invalid="skip")
    assert [a["id"] for a in written["annotations"]] == [1, 3]
    assert all(a["iscrowd"] == 0 for a in written["annotations"])


def _case_id(case: tuple[dict[str, Any], str, str]) -> str:
    return f"{case[1]}@{case[2]}"


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_bytes(msgspec.json.encode(doc))
    return path


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "stream"])
def test_invalid_record_is_refused(tmp_path: Path, case: tuple[dict[str, Any], str, str],
                                   streamed: bool) -> None:
    patch, code, where = case
    src = _write(tmp_path / "in.json", _doc(**patch))
    # the validator calls it an error, with this code and path
    report = validate_file(src)
    assert (code, where) in {(p.code, p.path) for p in report.errors}
    out = tmp_path / "out.json"
    with pytest.raises(IntegrityError) as e:
        if streamed:
            write_coco(open_stream(src), out)
        else:
            write_coco(load(src), out)
    assert f"{where}: " in str(e.value) and f"[{code}]" in str(e.value)
    assert any(p.startswith(f"{where}: ") and p.endswith(f"[{code}]") for p in e.value.problems)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.json*"))  # no temporary file left


@pytest.mark.parametrize("case", CASES[::3], ids=[_case_id(c) for c in CASES[::3]])
def test_existing_output_untouched(tmp_path: Path, case: tuple[dict[str, Any], str, str]
                                   ) -> None:
    ds = load(_write(tmp_path / "in.json", _doc(**case[0])))
    out = tmp_path / "out.json"
    out.write_bytes(b"old")
    with pytest.raises(IntegrityError):
        write_coco(ds, out)
    with pytest.raises(IntegrityError):
        to_json(ds)
    with pytest.raises(IntegrityError):
        to_dict(ds)
    assert out.read_bytes() == b"old"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "stream"])
def test_skip_drops_exactly_the_invalid(tmp_path: Path, case: tuple[dict[str, Any], str, str],
                                        streamed: bool) -> None:
    patch, code, where = case
    src = _write(tmp_path / "in.json", _doc(**patch))
    out = tmp_path / "out.json"
    if streamed:
        summary = write_coco(open_stream(src), out, invalid="skip",
                                    image_ids="keep", annotation_ids="keep")
    else:
        summary = write_coco(load(src), out, invalid="skip", image_ids="keep",
                             annotation_ids="keep")
    record = where.split("]")[0] + "]"
    doc = _doc()
    section, row = record.rstrip("]").split("[")
    dropped_id = doc[section][int(row)]["id"]
    written = json.loads(out.read_bytes())
    if section == "images":
        lost = [a["id"] for a in doc["annotations"] if a["image_id"] == dropped_id]
        assert [i["id"] for i in written["images"]] == [
            i["id"] for i in doc["images"] if i["id"] != dropped_id]
        assert [a["id"] for a in written["annotations"]] == [
            a["id"] for a in doc["annotations"] if a["id"] not in lost]
        lost_rows = [k for k, a in enumerate(doc["annotations"]) if a["id"] in lost]
        assert summary.skipped == (f"{record}: {code}", *(
            f"annotations[{k}]: its image {record} was skipped" for k in lost_rows))
    else:
        assert [a["id"] for a in written["annotations"]] == [
            a["id"] for a in doc["annotations"] if a["id"] != dropped_id]
        assert len(written["images"]) == 2
        assert summary.skipped == (f"{record}: {code}",)
    assert summary.annotations == len(written["annotations"])
    # what was written is valid
    assert validate_file(out).ok


def test_valid_variants_pass(tmp_path: Path) -> None:
    """Text the byte check cannot decide (whitespace, exponents, empty lists) is decoded
    and passes when valid."""
    text = (b'{"images":[{"id":1,"file_name":"a.jpg","width":10,"height":10}],'
            b'"annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,2,2],'
            b'"segmentation":[ [0, 0,  2,0,2,2] ,[1e0,2E-1,3,4,5,6]],"keypoints":[ ]},'
            b'{"id":2,"image_id":1,"category_id":1,"bbox":[0,0,2,2],"segmentation":[],'
            b'"keypoints":[1,2,2, 3 ,4,0]},'
            b'{"id":3,"image_id":1,"category_id":1,"iscrowd":1,'
            b'"segmentation":{"size":[10,10],"counts":[40,20,40]}},'
            b'{"id":4,"image_id":1,"category_id":1,"iscrowd":1,'
            b'"segmentation":{"counts":"X1d0X1","size":[10,10]}}],'
            b'"categories":[{"id":1,"name":"a"}]}')
    src = tmp_path / "in.json"
    src.write_bytes(text)
    assert validate_file(src).ok
    out = tmp_path / "out.json"
    summary = write_coco(load(src), out)
    assert summary.annotations == 4 and summary.skipped == ()


def _memory_cases() -> list[tuple[str, Any, str, str]]:
    inf = float("inf")
    return [
        ("bbox", [0, 0, inf, 2], "non-finite", "annotations[1].bbox"),
        ("bbox", [0, float("nan"), 2, 2], "non-finite", "annotations[1].bbox"),
        ("area", inf, "non-finite", "annotations[1].area"),
        ("segmentation", [[0, 0, 2, 0, 2, float("nan")]], "non-finite",
         "annotations[1].segmentation[0]"),
        ("segmentation", [[0, 0, 2, 0, 2]], "bad-polygon", "annotations[1].segmentation[0]"),
        ("segmentation", [np.array([0.0, 0, 2, 0])], "bad-polygon",
         "annotations[1].segmentation[0]"),
        ("segmentation", {"size": [4, 4], "counts": [16]}, "rle-size-mismatch",
         "annotations[1].segmentation.size"),
        ("segmentation", "abc", "bad-segmentation", "annotations[1].segmentation"),
        ("keypoints", [1.0, 2.0], "bad-keypoints", "annotations[1].keypoints"),
        ("keypoints", [1.0, 2.0, inf], "non-finite", "annotations[1].keypoints"),
    ]


@pytest.mark.parametrize(("column", "value", "code", "where"), _memory_cases())
def test_geometry_made_in_memory(tmp_path: Path, column: str, value: Any, code: str,
                                 where: str) -> None:
    ds = load(_write(tmp_path / "in.json", _doc()))
    anns = ds.annotations
    col = getattr(anns, column).copy()
    if col.dtype == object:
        col[1] = value
    else:
        col[1] = value
    ds = ds.replace(annotations=anns.replace(**{column: col}))
    with pytest.raises(IntegrityError) as e:
        to_json(ds)
    assert any(p.startswith(f"{where}: ") and p.endswith(f"[{code}]") for p in e.value.problems)
    summary = write_coco(ds, tmp_path / "out.json", invalid="skip")
    assert summary.skipped == (f"annotations[1]: {code}",)
    assert summary.annotations == 2


def test_ignore_negative_samples_images_not_checked(tmp_path: Path) -> None:
    doc = _doc(images__0__width=-1)
    doc["annotations"] = [a for a in doc["annotations"] if a["image_id"] != 1]
    ds = load(_write(tmp_path / "in.json", doc))
    with pytest.raises(IntegrityError, match=r"images\[0\]\.width"):
        to_json(ds)
    out = json.loads(to_json(ds, ignore_negative_samples=True))
    assert [i["file_name"] for i in out["images"]] == ["b.jpg"]


def test_skip_leaves_negative_image_out_with_ignore_negative_samples(tmp_path: Path) -> None:
    ds = load(_write(tmp_path / "in.json", _doc(annotations__0__bbox=[0, 0, -2, 2])))
    s = write_coco(ds, tmp_path / "o.json", invalid="skip", ignore_negative_samples=True)
    assert s.skipped == ("annotations[0]: negative-bbox-size",)
    assert (s.images, s.annotations, s.dropped_negative_images) == (1, 2, 1)
    s2 = write_coco(open_stream(tmp_path / "in.json"), tmp_path / "o2.json",
                           invalid="skip", ignore_negative_samples=True)
    assert s2 == dataclass_replace(s, path=str(tmp_path / "o2.json"))
    assert (tmp_path / "o.json").read_bytes() == (tmp_path / "o2.json").read_bytes()


def dataclass_replace(obj: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(obj, **changes)


def test_bad_invalid_option(tmp_path: Path) -> None:
    from cocokit import OptionError

    ds = load(_write(tmp_path / "in.json", _doc()))
    with pytest.raises(OptionError, match="invalid"):
        to_json(ds, invalid="drop")  # type: ignore[arg-type]


def test_parts_writer_checks_each_part(tmp_path: Path) -> None:
    good = load(_write(tmp_path / "a.json", _doc()))
    bad = load(_write(tmp_path / "b.json", _doc(annotations__2__iscrowd=7)))
    out = tmp_path / "out.json"
    with pytest.raises(IntegrityError, match=r"annotations\[5\]\.iscrowd"):
        with PartWriter(out, categories=good.categories, image_ids="auto",
                        annotation_ids="auto") as w:
            w.add(good)
            w.add(bad)  # rows named as in the parts concatenated
    assert not out.exists()
    with PartWriter(out, categories=good.categories, invalid="skip", image_ids="auto",
                    annotation_ids="auto") as w:
        w.add(good)
        w.add(bad)
    written = json.loads(out.read_bytes())
    assert len(written["annotations"]) == 5


def test_parts_writer_summary_names_skipped(tmp_path: Path) -> None:
    good = load(_write(tmp_path / "a.json", _doc()))
    bad = load(_write(tmp_path / "b.json", _doc(images__1__width=0)))
    w = PartWriter(tmp_path / "out.json", categories=good.categories, invalid="skip",
                   image_ids="auto", annotation_ids="auto")
    w.add(good)
    w.add(bad)
    s = w.close()
    assert s.skipped == ("images[3]: bad-image-size",
                         "annotations[4]: its image images[3] was skipped",
                         "annotations[5]: its image images[3] was skipped")
    assert (s.images, s.annotations) == (3, 4)


def test_yolo_export_uses_the_contract(tmp_path: Path) -> None:
    ds = load(_write(tmp_path / "in.json", _doc(annotations__1__bbox=[0, 0, -3, 3])))
    with pytest.raises(IntegrityError, match=r"annotations\[1\]\.bbox.*negative-bbox-size"):
        write_yolo(ds, tmp_path / "y", images="none")
    assert not (tmp_path / "y" / "data.yaml").exists()
    s = write_yolo(ds, tmp_path / "y", images="none", invalid="skip")
    assert s.skipped == ("train: annotations[1]: negative-bbox-size",)
    assert s.rows == 2


def test_check_annotations_rows_and_start() -> None:
    ds = load(msgspec.json.encode(_doc(annotations__1__iscrowd=4)))
    found = check_annotations(ds.annotations, np.full(3, 10), np.full(3, 10), np.array([1, 2]),
                              start=100)
    assert [(p.code, p.path) for p in found.problems] == [("bad-iscrowd",
                                                            "annotations[101].iscrowd")]
    assert found.bad.tolist() == [0]


# -- real data ---------------------------------------------------------------------------


def test_taco_exports_with_auto_ids_and_refuses_keep(tmp_path: Path) -> None:
    src = real_path("taco", "annotations.json")
    ds = load(src)
    ids = ds.annotations.id
    assert len(np.unique(ids)) < len(ids)  # TACO repeats annotation ids
    out = tmp_path / "taco.json"
    summary = write_coco(ds, out, image_ids="auto", annotation_ids="auto")
    assert summary.annotations == len(ds.annotations) and summary.skipped == ()
    assert validate_file(out).ok
    with pytest.raises(IntegrityError, match="duplicate annotation id"):
        write_coco(ds, tmp_path / "keep.json", image_ids="auto", annotation_ids="keep")
    assert not (tmp_path / "keep.json").exists()
    with pytest.raises(IntegrityError, match="duplicate annotation id"):
        write_coco(open_stream(src), tmp_path / "keep.json", image_ids="auto",
                   annotation_ids="keep")
    assert not (tmp_path / "keep.json").exists()
    s2 = write_coco(open_stream(src), tmp_path / "taco2.json", image_ids="auto",
                    annotation_ids="auto")
    assert (tmp_path / "taco2.json").read_bytes() == out.read_bytes()
    assert s2.annotations == summary.annotations


@pytest.mark.parametrize("name", ["coco-mini", "lvis-val100", "cocoapi-val2014-100"])
def test_real_files_pass_the_checks(tmp_path: Path, name: str) -> None:
    folder = real_path(name)
    files = sorted(folder.rglob("*.json"))
    if not files:
        pytest.skip(f"no JSON file under {folder}")
    for f in files[:3]:
        try:
            ds = load(f)
        except Exception:  # not a COCO file (a results file, ...)
            continue
        if not validate_file(f).ok:
            continue
        summary = write_coco(ds, tmp_path / "out.json", image_ids="keep", annotation_ids="keep")
        assert summary.skipped == ()
        assert summary.annotations == len(ds.annotations)


# -- category id 0 -----------------------------------------------------------------------


def test_category_zero_warns(tmp_path: Path) -> None:
    doc = _doc()
    doc["categories"] = [{"id": 0, "name": "thing"}]
    for a in doc["annotations"]:
        a["category_id"] = 0
    ds = load(_write(tmp_path / "in.json", doc))
    s = write_coco(ds, tmp_path / "out.json")
    assert len(s.warnings) == 1 and s.warnings[0].startswith("categories[0].id: category id 0")
    s2 = write_coco(open_stream(tmp_path / "in.json"), tmp_path / "out2.json")
    assert s2.warnings == s.warnings
    assert write_coco(load(_write(tmp_path / "b.json", _doc())), tmp_path / "o.json").warnings \
        == ()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cocokit", *args], capture_output=True,
                          text=True, check=False)


def test_cli_export_refuses_and_skips(tmp_path: Path) -> None:
    src = _write(tmp_path / "in.json", _doc(annotations__0__segmentation=[[0, 0, 2]]))
    out = tmp_path / "out.json"
    r = _cli("export", str(src), "-o", str(out))
    assert r.returncode == 2
    assert "annotations[0].segmentation[0]" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    r = _cli("export", str(src), "-o", str(out), "--skip-invalid")
    assert r.returncode == 0, r.stderr
    assert "skipped 1 invalid record" in r.stderr
    assert "annotations[0]: bad-polygon" in r.stderr
    assert len(json.loads(out.read_bytes())["annotations"]) == 2


def test_cli_save_prints_category_zero_warning(tmp_path: Path) -> None:
    doc = _doc()
    doc["categories"] = [{"id": 0, "name": "thing"}]
    for a in doc["annotations"]:
        a["category_id"] = 0
    src = _write(tmp_path / "in.json", doc)
    r = _cli("export", str(src), "-o", str(tmp_path / "out.json"))
    assert r.returncode == 0, r.stderr
    assert "warning: categories[0].id: category id 0" in r.stderr


@pytest.mark.parametrize(("patch", "code", "where"), [
    ({"annotations__1__image_id": 99}, "dangling-image-id", "annotations[1].image_id"),
    ({"annotations__2__category_id": 42}, "dangling-category-id", "annotations[2].category_id"),
])
@pytest.mark.parametrize("streamed", [False, True], ids=["memory", "stream"])
def test_dangling_references_refused_or_skipped(tmp_path: Path, patch: dict[str, Any],
                                                code: str, where: str, streamed: bool) -> None:
    src = _write(tmp_path / "in.json", _doc(**patch))
    assert (code, where) in {(p.code, p.path) for p in validate_file(src).errors}
    out = tmp_path / "out.json"

    def export(**kw: Any) -> Any:
        if streamed:
            return write_coco(open_stream(src), out, **kw)
        return write_coco(load(src), out, **kw)

    with pytest.raises(IntegrityError, match=rf"{re.escape(where)}: .*\[{code}\]"):
        export()
    assert not out.exists()
    summary = export(invalid="skip")
    record = where.split(".")[0]
    assert summary.skipped == (f"{record}: {code}",)
    assert summary.annotations == 2 and validate_file(out).ok


def _ring_text(rng: np.random.Generator, n: int) -> list[float | int]:
    return [int(v) if rng.random() < 0.3 else round(float(v), 2)
            for v in rng.uniform(-50, 700, n)]


@pytest.mark.parametrize("seed", range(5))
def test_the_byte_count_agrees_with_the_decoded_polygons(seed: int) -> None:
    """Polygons checked on their raw text (numbers counted by the brackets and commas
    left once the numbers are taken out) and the same polygons as Python lists give the
    same problems."""
    rng = np.random.default_rng(seed)
    segs = [[_ring_text(rng, int(rng.integers(0, 12))) for _ in range(int(rng.integers(0, 4)))]
            for _ in range(400)]
    doc = _doc()
    doc["annotations"] = [
        {"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "segmentation": s,
         "keypoints": _ring_text(rng, int(rng.integers(0, 8)))}
        for i, s in enumerate(segs)]
    ds = load(doc)
    anns = ds.annotations
    h = np.full(len(anns), 10)
    raw = check_annotations(anns, h, h)
    as_lists = anns.replace(
        segmentation=np.array([*segs, None], object)[:-1],
        keypoints=np.array([*(a["keypoints"] for a in doc["annotations"]), None],
                           object)[:-1])
    decoded = check_annotations(as_lists, h, h)
    assert raw.problems and [(p.code, p.path) for p in raw.problems] == [
        (p.code, p.path) for p in decoded.problems]
