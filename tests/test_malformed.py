"""Malformed inputs: one table, each row a small file.

For every row: validate gives the expected code at the expected path, the same report
read whole, streamed, and streamed in tiny runs decoded one record at a time (chunk
boundaries everywhere); ``cocokit export`` (in memory and streamed) exits 2 with one
clear line on stderr, writes nothing, and leaves an existing output untouched. Rows
whose only problem is a warning export normally (exit 0) and the output is valid.

Record-level errors that the loader reads fine are refused by the export contract
(:mod:`cocokit.contract`) before a byte is written. Rows of EXPORT_WRITES codes
(warnings) export, and what they write validates without errors.
"""

from __future__ import annotations

import codecs
import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cocokit import cli
from cocokit.io.coco import write_coco
from cocokit.io.jsontext import MAX_DEPTH
from cocokit.io.stream import open_stream
from cocokit.problems import CODES, RESULTS_CODES, SEVERITIES
from cocokit.validate import validate_file

from .conftest import REAL

HUGE = "123456789012345678901234567890"
DEEP = MAX_DEPTH * 6  # 3,000 levels


def base() -> dict[str, Any]:
    """A small valid document: a polygon, an RLE and a keypoints annotation."""
    return {
        "info": {"description": "malformed-input table", "year": 2026},
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
            {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10], "area": 200,
             "iscrowd": 0, "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            {"id": 2, "image_id": 2, "category_id": 2, "bbox": [0, 0, 2, 2], "area": 4,
             "iscrowd": 1, "segmentation": {"size": [50, 50], "counts": [0, 2, 48, 2, 2448]}},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100,
             "iscrowd": 0, "keypoints": [6, 6, 2, 7, 7, 1], "num_keypoints": 2},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


def text(doc: Any) -> bytes:
    return msgspec.json.encode(doc)


BASE = text(base())


def edit(fn: Callable[[dict[str, Any]], Any]) -> bytes:
    doc = base()
    fn(doc)
    return text(doc)


def sub(old: bytes, new: bytes, count: int = 1) -> bytes:
    assert BASE.count(old) >= count, old
    return BASE.replace(old, new, count)


def put(section: str, i: int, key: str, value: Any) -> bytes:
    return edit(lambda d: d[section][i].__setitem__(key, value))


def drop(section: str, i: int, key: str) -> bytes:
    return edit(lambda d: d[section][i].pop(key))


def raw_value(section: str, i: int, key: str, raw: bytes) -> bytes:
    """The document with ``section[i].key`` set to raw JSON text (not JSON-encodable)."""
    marker = "@@RAW@@"
    return put(section, i, key, marker).replace(b'"' + marker.encode() + b'"', raw)


def top(key: str, value: Any) -> bytes:
    return edit(lambda d: d.__setitem__(key, value))


def without(key: str) -> bytes:
    return edit(lambda d: d.pop(key))


def deep(open_: bytes = b"[", close: bytes = b"]", n: int = DEEP) -> bytes:
    if open_ == b"{":
        return b'{"a":' * n + b"1" + b"}" * n
    return open_ * n + close * n


def encoded(codec: str, bom: bytes = b"") -> bytes:
    return bom + BASE.decode().encode(codec)


# (id, file text, expected code, expected path, whether the report has only that problem)
Row = tuple[str, bytes, str, str, bool]
ROWS: list[Row] = [
    # -- the document: syntax -------------------------------------------------------
    ("empty-file", b"", "json-syntax", "", True),
    ("whitespace-only", b" \n\t\r\n  ", "json-syntax", "", True),
    ("truncated-half", BASE[: len(BASE) // 2], "json-syntax", "", True),
    ("truncated-after-brace", b"{", "json-syntax", "", True),
    ("truncated-in-key", b'{"ima', "json-syntax", "", True),
    ("truncated-after-colon", b'{"images": ', "json-syntax", "", True),
    ("truncated-last-brace", BASE[:-1], "json-syntax", "", True),
    ("trailing-characters", BASE + b" x", "json-syntax", "", True),
    ("trailing-bracket", BASE + b"]", "json-syntax", "", True),
    ("two-documents", BASE + BASE, "json-syntax", "", True),
    ("two-documents-lines", BASE + b"\n" + BASE + b"\n", "json-syntax", "", True),
    ("nan-literal", sub(b'"area":200', b'"area":NaN'), "json-syntax", "", True),
    ("infinity-literal", sub(b"[10,10,20,10]", b"[10,10,Infinity,10]"), "json-syntax", "",
     True),
    ("minus-infinity-in-info", sub(b'"year":2026', b'"year":-Infinity'), "json-syntax", "",
     True),
    ("comment", b"// COCO\n" + BASE, "json-syntax", "", True),
    ("single-quotes", sub(b'"cat"', b"'cat'"), "json-syntax", "", True),
    ("trailing-comma-array", sub(b"[10,10,20,10]", b"[10,10,20,10,]"), "json-syntax", "",
     True),
    ("trailing-comma-object", sub(b'"name":"dog"}', b'"name":"dog",}'), "json-syntax", "",
     True),
    ("missing-colon", sub(b'"info":', b'"info" '), "json-syntax", "", True),
    ("unquoted-key", sub(b'"info":', b"info:"), "json-syntax", "", True),
    ("missing-comma-top", sub(b'},"images"', b'} "images"'), "json-syntax", "", True),
    ("control-character", sub(b'"a.jpg"', b'"a\n.jpg"'), "json-syntax", "", True),
    ("invalid-escape", sub(b'"a.jpg"', b'"a\\q.jpg"'), "json-syntax", "", True),
    ("unclosed-string", sub(b'"dog"}]}', b'"dog}]}'), "json-syntax", "", True),
    # -- the document: encodings -------------------------------------------------------
    ("utf8-bom", codecs.BOM_UTF8 + BASE, "json-syntax", "", True),
    ("utf16-le-bom", encoded("utf-16-le", codecs.BOM_UTF16_LE), "json-syntax", "", True),
    ("utf16-be-bom", encoded("utf-16-be", codecs.BOM_UTF16_BE), "json-syntax", "", True),
    ("utf16-le", encoded("utf-16-le"), "json-syntax", "", True),
    ("utf16-be", encoded("utf-16-be"), "json-syntax", "", True),
    ("utf32-le-bom", encoded("utf-32-le", codecs.BOM_UTF32_LE), "json-syntax", "", True),
    ("utf32-be-bom", encoded("utf-32-be", codecs.BOM_UTF32_BE), "json-syntax", "", True),
    ("utf32-le", encoded("utf-32-le"), "json-syntax", "", True),
    ("utf32-be", encoded("utf-32-be"), "json-syntax", "", True),
    ("latin1-file-name", sub(b'"a.jpg"', '"á.jpg"'.encode("latin-1")), "json-syntax", "",
     True),
    ("invalid-utf8-category", sub(b'"cat"', b'"c\xffat"'), "json-syntax", "", True),
    ("invalid-utf8-info", sub(b'"malformed', b'"\xc3\x28malformed'), "json-syntax", "",
     True),
    ("invalid-utf8-key", sub(b'"year"', b'"ye\xfear"'), "json-syntax", "", True),
    ("cut-utf8-sequence", sub(b'"dog"', b'"dog\xe2\x82"'), "json-syntax", "", True),
    ("utf8-surrogate-bytes", sub(b'"dog"', b'"\xed\xa0\x80"'), "json-syntax", "", True),
    # -- the document: nesting, duplicate keys, the top level ------------------------
    ("deep-arrays-in-info", top("info", "@").replace(b'"@"', deep()), "too-deep", "info",
     True),
    ("deep-objects-in-info", top("info", "@").replace(b'"@"', deep(b"{")), "too-deep",
     "info", True),
    ("deep-in-annotation-extra", raw_value("annotations", 1, "extra", deep()), "too-deep",
     "annotations[1]", True),
    ("deep-in-segmentation", raw_value("annotations", 0, "segmentation", deep()),
     "too-deep", "annotations[0]", True),
    ("deep-in-category", raw_value("categories", 1, "extra", deep(b"{")), "too-deep",
     "categories[1]", True),
    ("deep-in-image", raw_value("images", 1, "extra", deep()), "too-deep", "images[1]",
     True),
    ("duplicate-key-images", BASE[:-1] + b',"images":[]}', "duplicate-key", "images", True),
    ("duplicate-key-annotations", BASE[:-1] + b',"annotations":[]}', "duplicate-key",
     "annotations", True),
    ("duplicate-key-info", BASE[:-1] + b',"info":{}}', "duplicate-key", "info", True),
    ("top-array", b"[" + BASE + b"]", "top-not-object", "", True),
    ("top-string", b'"images"', "top-not-object", "", True),
    ("top-number", b"42", "top-not-object", "", True),
    ("top-null", b"null", "top-not-object", "", True),
    ("top-true", b"true", "top-not-object", "", True),
    ("missing-images", without("images"), "missing-key", "", False),
    ("missing-annotations", without("annotations"), "missing-key", "", False),
    ("missing-categories", without("categories"), "missing-key", "", False),
    ("images-object", top("images", {"id": 1}), "section-not-array", "images", False),
    ("annotations-null", top("annotations", None), "section-not-array", "annotations",
     False),
    ("categories-string", top("categories", "cat"), "section-not-array", "categories",
     False),
    ("info-out-of-range", sub(b'"year":2026', b'"year":1e999'), "non-finite", "info", True),
    # -- records ------------------------------------------------------------------------
    ("image-not-object", edit(lambda d: d["images"].__setitem__(0, 5)), "record-not-object",
     "images[0]", False),
    ("annotation-not-object", edit(lambda d: d["annotations"].__setitem__(1, [])),
     "record-not-object", "annotations[1]", False),
    ("category-not-object", edit(lambda d: d["categories"].__setitem__(0, "cat")),
     "record-not-object", "categories[0]", False),
    ("image-no-id", drop("images", 0, "id"), "missing-field", "images[0].id", False),
    ("image-no-width", drop("images", 1, "width"), "missing-field", "images[1].width", False),
    ("image-no-file-name", drop("images", 0, "file_name"), "missing-field",
     "images[0].file_name", True),
    ("annotation-no-id", drop("annotations", 2, "id"), "missing-field", "annotations[2].id",
     True),
    ("annotation-no-image-id", drop("annotations", 0, "image_id"), "missing-field",
     "annotations[0].image_id", True),
    ("annotation-no-category-id", drop("annotations", 1, "category_id"), "missing-field",
     "annotations[1].category_id", False),
    ("category-no-name", drop("categories", 1, "name"), "missing-field", "categories[1].name",
     True),
    ("category-no-id", drop("categories", 0, "id"), "missing-field", "categories[0].id",
     False),
    ("no-geometry", edit(lambda d: [d["annotations"][0].pop(k) for k in ("bbox",
                                                                          "segmentation")]),
     "missing-geometry", "annotations[0]", False),
    ("image-id-string", put("images", 0, "id", "1"), "bad-type", "images[0].id", False),
    ("image-id-bool", put("images", 1, "id", True), "bad-type", "images[1].id", False),
    ("annotation-id-float", put("annotations", 0, "id", 1.5), "bad-type", "annotations[0].id",
     True),
    ("category-id-null", put("categories", 1, "id", None), "bad-type", "categories[1].id",
     False),
    ("file-name-number", put("images", 0, "file_name", 5), "bad-type", "images[0].file_name",
     True),
    ("width-string", put("images", 0, "width", "100"), "bad-type", "images[0].width", False),
    ("category-name-number", put("categories", 0, "name", 3), "bad-type", "categories[0].name",
     True),
    ("area-string", put("annotations", 2, "area", "big"), "bad-type", "annotations[2].area",
     True),
    ("image-id-huge", raw_value("images", 0, "id", HUGE.encode()), "bad-type", "images[0].id",
     False),
    ("annotation-id-huge", raw_value("annotations", 1, "id", HUGE.encode()), "bad-type",
     "annotations[1].id", True),
    ("image-id-ref-huge", raw_value("annotations", 2, "image_id", b"-" + HUGE.encode()),
     "bad-type", "annotations[2].image_id", True),
    ("category-id-huge", raw_value("categories", 1, "id", HUGE.encode()), "bad-type",
     "categories[1].id", False),
    ("height-huge", raw_value("images", 1, "height", HUGE.encode()), "bad-type",
     "images[1].height", False),
    ("area-5000-digits", raw_value("annotations", 0, "area", b"9" * 5000), "non-finite",
     "annotations[0].area", False),
    ("width-zero", put("images", 0, "width", 0), "bad-image-size", "images[0].width", False),
    ("height-negative", put("images", 1, "height", -5), "bad-image-size", "images[1].height",
     False),
    ("bbox-three-numbers", put("annotations", 0, "bbox", [1, 2, 3]), "bad-bbox",
     "annotations[0].bbox", True),
    ("bbox-string", put("annotations", 2, "bbox", "1,2,3,4"), "bad-bbox",
     "annotations[2].bbox", True),
    ("bbox-with-null", put("annotations", 2, "bbox", [1, None, 3, 4]), "bad-bbox",
     "annotations[2].bbox", True),
    ("bbox-negative-width", put("annotations", 0, "bbox", [10, 10, -20, 10]),
     "negative-bbox-size", "annotations[0].bbox", False),
    ("bbox-out-of-range", raw_value("annotations", 2, "bbox", b"[5,5,1e999,10]"),
     "non-finite", "annotations[2].bbox", False),
    ("area-out-of-range", raw_value("annotations", 2, "area", b"1e999"), "non-finite",
     "annotations[2].area", False),
    ("polygon-out-of-range", raw_value("annotations", 0, "segmentation",
                                       b"[[10,10,30,10,30,20,1e999,20]]"),
     "non-finite", "annotations[0].segmentation[0]", False),
    ("keypoints-out-of-range", raw_value("annotations", 2, "keypoints", b"[6,6,2,-1e999,7,1]"),
     "non-finite", "annotations[2].keypoints", False),
    ("iscrowd-two", put("annotations", 0, "iscrowd", 2), "bad-iscrowd",
     "annotations[0].iscrowd", False),
    ("segmentation-string", put("annotations", 0, "segmentation", "mask.png"),
     "bad-segmentation", "annotations[0].segmentation", False),
    ("segmentation-number", put("annotations", 0, "segmentation", 5), "bad-segmentation",
     "annotations[0].segmentation", False),
    ("polygon-odd", put("annotations", 0, "segmentation", [[10, 10, 30, 10, 30, 20, 10]]),
     "bad-polygon", "annotations[0].segmentation[0]", False),
    ("polygon-too-short", put("annotations", 0, "segmentation", [[10, 10, 30, 10]]),
     "bad-polygon", "annotations[0].segmentation[0]", False),
    ("polygon-string-coordinate",
     put("annotations", 0, "segmentation", [[10, 10, "30", 10, 30, 20, 10, 20]]),
     "bad-polygon", "annotations[0].segmentation[0]", False),
    ("rle-no-size", put("annotations", 1, "segmentation", {"counts": [0, 2500]}), "bad-rle",
     "annotations[1].segmentation", False),
    ("rle-negative-count", put("annotations", 1, "segmentation",
                               {"size": [50, 50], "counts": [0, -2, 2502]}),
     "bad-rle", "annotations[1].segmentation.counts", False),
    ("rle-counts-number", put("annotations", 1, "segmentation", {"size": [50, 50], "counts": 5}),
     "bad-rle", "annotations[1].segmentation.counts", False),
    ("rle-counts-sum", put("annotations", 1, "segmentation",
                           {"size": [50, 50], "counts": [0, 2, 48, 2, 2000]}),
     "rle-counts-sum", "annotations[1].segmentation.counts", False),
    ("rle-size-mismatch", put("annotations", 1, "segmentation",
                              {"size": [40, 62], "counts": [0, 2, 38, 2, 2438]}),
     "rle-size-mismatch", "annotations[1].segmentation.size", False),
    ("rle-compressed-too-short", put("annotations", 1, "segmentation",
                                     {"size": [50, 50], "counts": "02`10Pm1"}),
     "rle-counts-sum", "annotations[1].segmentation.counts", True),
    ("rle-compressed-too-long", put("annotations", 1, "segmentation",
                                    {"size": [50, 50], "counts": "02`10P[28"}),
     "rle-counts-sum", "annotations[1].segmentation.counts", True),
    ("rle-compressed-cut-short", put("annotations", 1, "segmentation",
                                     {"size": [50, 50], "counts": "02`10P[2P"}),
     "bad-rle", "annotations[1].segmentation.counts", True),
    ("rle-compressed-bad-character", put("annotations", 1, "segmentation",
                                         {"size": [50, 50], "counts": "02`10P[2~"}),
     "bad-rle", "annotations[1].segmentation.counts", True),
    ("rle-counts-sum-too-long", put("annotations", 1, "segmentation",
                                    {"size": [50, 50], "counts": [0, 2, 48, 2, 2448, 10]}),
     "rle-counts-sum", "annotations[1].segmentation.counts", True),
    ("iscrowd-minus-one", put("annotations", 0, "iscrowd", -1), "bad-iscrowd",
     "annotations[0].iscrowd", True),
    ("iscrowd-large", put("annotations", 2, "iscrowd", 7), "bad-iscrowd",
     "annotations[2].iscrowd", True),
    ("file-name-empty", put("images", 0, "file_name", ""), "bad-file-name",
     "images[0].file_name", True),
    ("file-name-nul", put("images", 1, "file_name", "b\x00.jpg"), "bad-file-name",
     "images[1].file_name", True),
    ("file-name-escape-character", put("images", 0, "file_name", "a\x1b[1m.jpg"),
     "bad-file-name", "images[0].file_name", True),
    ("keypoints-fewer-than-names", edit(lambda d: d["categories"][0].update(
        keypoints=["nose", "left_eye", "right_eye"])), "bad-keypoints",
     "annotations[2].keypoints", True),
    ("keypoints-more-than-names", edit(lambda d: d["categories"][0].update(
        keypoints=["nose"])), "bad-keypoints", "annotations[2].keypoints", True),
    ("keypoints-not-triplets", put("annotations", 2, "keypoints", [6, 6, 2, 7]),
     "bad-keypoints", "annotations[2].keypoints", False),
    ("keypoints-string", put("annotations", 2, "keypoints", [6, 6, 2, 7, "7", 1]),
     "bad-keypoints", "annotations[2].keypoints", False),
    ("duplicate-image-id", put("images", 1, "id", 1), "duplicate-image-id", "images[1].id",
     False),
    ("duplicate-annotation-id", put("annotations", 2, "id", 1), "duplicate-annotation-id",
     "annotations[2].id", True),
    ("duplicate-category-id", put("categories", 1, "id", 1), "duplicate-category-id",
     "categories[1].id", False),
    ("dangling-image-id", put("annotations", 2, "image_id", 7), "dangling-image-id",
     "annotations[2].image_id", True),
    ("dangling-category-id", put("annotations", 0, "category_id", 9), "dangling-category-id",
     "annotations[0].category_id", True),
    # -- warnings (export still writes) ----------------------------------------------
    ("bbox-outside-image", put("annotations", 2, "bbox", [95, 5, 10, 10]),
     "bbox-outside-image", "annotations[2].bbox", True),
    ("zero-area-bbox", edit(lambda d: d["annotations"][2].update(bbox=[5, 5, 0, 10], area=0)),
     "zero-area-bbox", "annotations[2].bbox", True),
    ("area-mismatch", put("annotations", 0, "area", 900), "area-mismatch",
     "annotations[0].area", True),
    ("duplicate-file-name", put("images", 1, "file_name", "a.jpg"), "duplicate-file-name",
     "images[1].file_name", True),
    ("unused-category", edit(lambda d: d["categories"].append({"id": 3, "name": "cow"})),
     "unused-category", "categories[2]", True),
]

#: Rows that export anyway, because what is WRITTEN is valid: warnings; repeated
#: annotation ids with --annotation-ids auto (TACO repeats two ids and must export);
#: a document without "annotations", which loads as having none (the loader's
#: documented leniency) and is written with an empty "annotations" array.
#: Every other row is refused by the reader or by the export contract.
EXPORT_WRITES = {code for code, sev in SEVERITIES.items() if sev == "warning"}
EXPORT_WRITES_ROWS = {"missing-annotations"}
#: Rows refused with the default --annotation-ids keep, written with auto.
EXPORT_WITH_AUTO_IDS = {"duplicate-annotation-id"}


def _params() -> list[Any]:
    return [pytest.param(*row, id=row[0]) for row in ROWS]


def _write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "in.json"
    path.write_bytes(data)
    return path


def test_the_table_covers_every_code_and_is_big_enough() -> None:
    assert len(ROWS) >= 80
    assert len({r[0] for r in ROWS}) == len(ROWS)
    # every code a COCO document can have (a results list's own are in tests/test_results.py)
    assert {r[2] for r in ROWS} == set(CODES) - RESULTS_CODES


def test_the_base_document_is_valid(tmp_path: Path) -> None:
    report = validate_file(_write(tmp_path, BASE))
    assert report.problems == [], str(report)


@pytest.mark.parametrize(("name", "data", "code", "path", "alone"), _params())
def test_validate_names_the_code_and_place(
    name: str, data: bytes, code: str, path: str, alone: bool, tmp_path: Path
) -> None:
    src = _write(tmp_path, data)
    report = validate_file(src, stream=False)
    found = [(p.code, p.path) for p in report.problems]
    assert (code, path) in found, str(report)
    if alone:
        assert len(report.problems) == 1, str(report)
    assert report.ok == (SEVERITIES[code] == "warning")
    for p in report.problems:
        assert p.message and "\n" not in p.message
    # the same report whatever the path and the chunk size
    expected = report.to_dict()
    assert validate_file(src, stream=True).to_dict() == expected
    assert validate_file(src, stream=False, chunk=1).to_dict() == expected
    assert validate_file(src, stream=True, chunk=1, chunk_bytes=16).to_dict() == expected


def _export_params() -> list[Any]:
    return [pytest.param(row[0], row[1], row[2], id=row[0]) for row in ROWS]


@pytest.mark.parametrize(("name", "data", "code"), _export_params())
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_export_refuses_with_one_line(
    name: str, data: bytes, code: str, stream: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src = _write(tmp_path, data)
    out = tmp_path / "out.json"
    rc = cli.main(["export", str(src), "-o", str(out), stream, "-q"])
    err = capsys.readouterr().err
    if code in EXPORT_WRITES or name in EXPORT_WRITES_ROWS:
        assert rc == 0, err
        # what was written is valid: no command writes what validate calls invalid
        written = validate_file(out)
        assert written.ok, str(written)
        return
    if code in EXPORT_WITH_AUTO_IDS:
        auto = tmp_path / "auto.json"
        rc_auto = cli.main(["export", str(src), "-o", str(auto), stream, "-q",
                            "--annotation-ids", "auto"])
        assert rc_auto == 0, capsys.readouterr().err
        assert validate_file(auto).ok
        auto.unlink()
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.rstrip().splitlines()
    # one line naming the file; an integrity refusal lists its problems below, indented
    assert lines and lines[0].startswith("error: "), err
    assert str(src) in lines[0] or str(out) in lines[0], err
    assert all(line.startswith("  ") for line in lines[1:]), err
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]
    # an existing output is left as it was
    out.write_text("precious")
    rc = cli.main(["export", str(src), "-o", str(out), stream, "-q"])
    assert rc == 2
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json", "out.json"]


# -- the real corpus: both paths agree ----------------------------------------------


def _real_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    return sorted(p for p in REAL.rglob("*.json") if _is_coco(p))


def _is_coco(path: Path) -> bool:
    try:
        top = msgspec.json.decode(path.read_bytes(), type=dict[str, msgspec.Raw])
    except (msgspec.DecodeError, OSError):
        return False
    return all(k in top for k in ("images", "annotations", "categories"))


REAL_FILES = _real_files()
needs_real = pytest.mark.skipif(
    not REAL_FILES, reason=f"real data not available: {REAL} (../shared/data/real)"
)


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_real_files_validate_and_export_the_same_in_memory_and_streamed(
    path: Path, tmp_path: Path
) -> None:
    whole = validate_file(path, stream=False)
    assert validate_file(path, stream=True).to_dict() == whole.to_dict()
    assert validate_file(path, stream=True, chunk=997, chunk_bytes=1 << 16).to_dict() == (
        whole.to_dict()
    )
    from cocokit.io.coco import read_coco

    a, b = tmp_path / "memory.json", tmp_path / "stream.json"
    try:
        write_coco(read_coco(path), a)
    except Exception as e:  # refused by the contract (e.g. repeated ids with keep)
        with pytest.raises(type(e)):
            write_coco(open_stream(path, chunk_bytes=1 << 16), b)
        return
    write_coco(open_stream(path, chunk_bytes=1 << 16), b)
    assert a.read_bytes() == b.read_bytes()


#: Rows whose one invalid record ``--skip-invalid`` leaves out: (row, record named).
SKIPPED = {
    "iscrowd-minus-one": "annotations[0]",
    "iscrowd-large": "annotations[2]",
    "iscrowd-two": "annotations[0]",
    "file-name-nul": "images[1]",
    "keypoints-fewer-than-names": "annotations[2]",
    "rle-compressed-too-short": "annotations[1]",
    "rle-compressed-cut-short": "annotations[1]",
}


@pytest.mark.parametrize("name", sorted(SKIPPED))
@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_skip_invalid_drops_the_record_and_names_it(
    name: str, stream: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = next(row[1] for row in ROWS if row[0] == name)
    src, out = _write(tmp_path, data), tmp_path / "out.json"
    rc = cli.main(["export", str(src), "-o", str(out), stream, "--skip-invalid"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    record = SKIPPED[name]
    assert f"{record}: " in captured.err, captured.err
    written = json.loads(out.read_bytes())
    section, index = record.rstrip("]").split("[")
    before = json.loads(data)
    ids = {r["id"] for r in written[section]}
    assert before[section][int(index)]["id"] not in ids
    # nothing rewritten: every record written is as it was read
    kept = [r for r in before["annotations"] if r["id"] in {a["id"] for a in
                                                             written["annotations"]}]
    assert written["annotations"] == kept
    assert validate_file(out).ok


def test_rows_are_copies() -> None:
    # the base document is rebuilt for every row: no row sees another's edit
    assert base() == copy.deepcopy(base())
    assert text(base()) == BASE


@pytest.mark.parametrize(
    "data",
    [
        sub(b'"area":200', b'"area":150,"area":200'),  # a known field given twice
        sub(b'"file_name":"b.jpg"', b'"file_name":"x.jpg","file_name":"b.jpg"'),
        sub(b'"year":2026', b'"year":1,"year":2026'),  # inside info
        sub(b'"name":"dog"', b'"note":1,"name":"dog","note":2'),  # an extra key
    ],
    ids=["annotation-area", "image-file-name", "info-year", "category-extra"],
)
def test_duplicate_keys_inside_records_keep_the_last_value(data: bytes, tmp_path: Path) -> None:
    # documented choice (cocokit.io.jsontext): as Python's json module, hence pycocotools
    src = _write(tmp_path, data)
    report = validate_file(src, stream=False)
    assert report.problems == [], str(report)
    assert validate_file(src, stream=True, chunk=1, chunk_bytes=16).to_dict() == (
        report.to_dict()
    )
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    assert cli.main(["export", str(src), "-o", str(a), "--no-stream", "-q"]) == 0
    assert cli.main(["export", str(src), "-o", str(b), "--stream", "-q"]) == 0
    assert a.read_bytes() == b.read_bytes()
    expected = json.loads(data)
    got = json.loads(a.read_bytes())
    assert got["annotations"][0]["area"] == expected["annotations"][0]["area"]
    assert got["images"][1]["file_name"] == expected["images"][1]["file_name"]
    assert got["info"] == expected["info"]
    assert got["categories"] == expected["categories"]
