"""Tests of cocokit.validate: one broken document per check, real files, the API."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cocokit.errors import InputError, ValidationFailed
from cocokit.validate import (
    BOX_TOLERANCE,
    CODES,
    SEVERITIES,
    Problem,
    Report,
    Validator,
    validate,
    validate_bytes,
    validate_document,
    validate_file,
)

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"


def _compressed_rle(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> dict[str, Any]:
    from pycocotools import mask as mask_utils

    m = np.zeros((h, w), np.uint8)
    m[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(m))
    return {"size": [h, w], "counts": rle["counts"].decode("ascii")}


def base() -> dict[str, Any]:
    """A small valid document that uses every kind of geometry; no problem at all."""
    return {
        "info": {"description": "test"},
        "images": [
            {"id": 1, "width": 100, "height": 80, "file_name": "a.jpg"},
            {"id": 2, "width": 50, "height": 40, "file_name": "b.jpg"},
        ],
        "annotations": [
            # 0: polygon (a 20 x 10 rectangle, area 200)
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 10],
             "area": 200.0, "iscrowd": 0,
             "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
            # 1: uncompressed RLE, 10 pixels down the first column of a 40 x 50 image
            {"id": 11, "image_id": 2, "category_id": 2, "bbox": [0, 0, 1, 10], "area": 10,
             "iscrowd": 1, "segmentation": {"size": [40, 50], "counts": [0, 10, 1990]}},
            # 2: box only
            {"id": 12, "image_id": 1, "category_id": 2, "bbox": [50.5, 40, 10, 10],
             "area": 100.0, "iscrowd": 0},
            # 3: two-ring polygon with keypoints (triangle 50 + square 4)
            {"id": 13, "image_id": 2, "category_id": 3, "bbox": [5, 5, 20, 20], "area": 54.0,
             "iscrowd": 0,
             "segmentation": [[5, 5, 15, 5, 15, 15], [20, 20, 22, 20, 22, 22, 20, 22]],
             "keypoints": [6, 6, 2, 0, 0, 0], "num_keypoints": 1},
            # 4: compressed RLE, a 5 x 6 block
            {"id": 14, "image_id": 1, "category_id": 1, "bbox": [60, 2, 6, 5], "area": 30,
             "iscrowd": 0, "segmentation": _compressed_rle(80, 100, 2, 7, 60, 66)},
        ],
        "categories": [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "dog"},
            {"id": 3, "name": "person", "keypoints": ["nose", "eye"], "skeleton": [[1, 2]]},
        ],
        "licenses": [],
    }


def triples(report: Report) -> list[tuple[str, str, str]]:
    return [(p.severity, p.code, p.path) for p in report.problems]


# --------------------------------------------------------------------------------------
# The valid document


def test_valid_document_has_no_problem() -> None:
    report = validate_document(base(), "base")
    assert report.problems == [], str(report)
    assert report.ok
    assert report.truncated == 0
    assert str(report) == ""
    report.raise_for_errors()  # no error: no raise


def test_valid_document_through_bytes_and_chunks() -> None:
    doc = base()
    data = msgspec.json.encode(doc)
    assert validate_bytes(data, "x.json").problems == []
    v = Validator("chunks")
    v.feed_top(list(doc))
    for i, rec in enumerate(doc["annotations"]):
        v.feed_annotations([rec], start=i)
    v.feed_categories(doc["categories"][:1])
    v.feed_categories(doc["categories"][1:], start=1)
    v.feed_images(doc["images"])
    assert v.finish().problems == []


# --------------------------------------------------------------------------------------
# One broken document per check


Mutation = Callable[[dict[str, Any]], object]


def _set(section: str, i: int, key: str, value: Any) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        doc[section][i][key] = value

    return f


def _del(section: str, i: int, key: str) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        del doc[section][i][key]

    return f


def _append(section: str, record: Any) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        doc[section].append(record)

    return f


def _top(key: str, value: Any = None, delete: bool = False) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        if delete:
            del doc[key]
        else:
            doc[key] = value

    return f


def _each(*mutations: Mutation) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        for m in mutations:
            m(doc)

    return f


def _rle(i: int, **changes: Any) -> Mutation:
    def f(doc: dict[str, Any]) -> None:
        seg = doc["annotations"][i]["segmentation"]
        for k, v in changes.items():
            if v is _DELETE:
                del seg[k]
            else:
                seg[k] = v

    return f


_DELETE = object()
NAN = math.nan
INF = math.inf
IMG = {"width": 10, "height": 10, "file_name": "new.jpg"}

E, W = "error", "warning"

# (case id, mutation, expected problems as (severity, code, path), in report order)
CASES: list[tuple[str, Mutation, list[tuple[str, str, str]]]] = [
    # the document
    ("missing-images", _top("images", delete=True), [(E, "missing-key", "")]),
    ("missing-annotations", _top("annotations", delete=True),
     [(E, "missing-key", "")]),  # no unused-category flood without annotations
    ("missing-categories", _top("categories", delete=True), [(E, "missing-key", "")]),
    ("images-not-array", _top("images", {"0": {}}), [(E, "section-not-array", "images")]),
    ("annotations-not-array", _top("annotations", "x"),
     [(E, "section-not-array", "annotations")]),
    ("categories-null", _top("categories", None), [(E, "section-not-array", "categories")]),
    # records
    ("image-not-object", _append("images", [1, 2]), [(E, "record-not-object", "images[2]")]),
    ("annotation-not-object", _append("annotations", None),
     [(E, "record-not-object", "annotations[5]")]),
    ("category-not-object", _append("categories", 7),
     [(E, "record-not-object", "categories[3]")]),
    # images
    ("image-id-missing", _append("images", dict(IMG)), [(E, "missing-field", "images[2].id")]),
    ("image-id-bool", _append("images", dict(IMG, id=True)), [(E, "bad-type", "images[2].id")]),
    ("image-id-string", _append("images", dict(IMG, id="3")), [(E, "bad-type", "images[2].id")]),
    ("image-id-float", _append("images", dict(IMG, id=3.0)), [(E, "bad-type", "images[2].id")]),
    ("image-id-huge", _append("images", dict(IMG, id=2**64)), [(E, "bad-type", "images[2].id")]),
    ("image-width-missing", _del("images", 0, "width"),
     [(E, "missing-field", "images[0].width")]),
    ("image-width-float", _set("images", 0, "width", 100.0),
     [(E, "bad-type", "images[0].width")]),
    ("image-height-string", _set("images", 1, "height", "40"),
     [(E, "bad-type", "images[1].height")]),
    ("image-height-zero", _set("images", 1, "height", 0),
     [(E, "bad-image-size", "images[1].height")]),
    ("image-width-negative", _set("images", 1, "width", -50),
     [(E, "bad-image-size", "images[1].width")]),
    ("file-name-missing", _del("images", 0, "file_name"),
     [(E, "missing-field", "images[0].file_name")]),
    ("file-name-int", _set("images", 0, "file_name", 7),
     [(E, "bad-type", "images[0].file_name")]),
    ("duplicate-image-id", _append("images", dict(IMG, id=1)),
     [(E, "duplicate-image-id", "images[2].id")]),
    # categories
    ("category-id-missing", _del("categories", 1, "id"),
     [(E, "dangling-category-id", "annotations[1].category_id"),
      (E, "dangling-category-id", "annotations[2].category_id"),
      (E, "missing-field", "categories[1].id")]),
    ("category-name-missing", _del("categories", 0, "name"),
     [(E, "missing-field", "categories[0].name")]),
    ("category-name-int", _set("categories", 0, "name", 1),
     [(E, "bad-type", "categories[0].name")]),
    ("duplicate-category-id", _append("categories", {"id": 2, "name": "dog2"}),
     [(E, "duplicate-category-id", "categories[3].id")]),
    # annotation ids and references
    ("annotation-id-missing", _del("annotations", 2, "id"),
     [(E, "missing-field", "annotations[2].id")]),
    ("annotation-id-bool", _set("annotations", 2, "id", False),
     [(E, "bad-type", "annotations[2].id")]),
    ("annotation-id-huge", _set("annotations", 2, "id", -(2**70)),
     [(E, "bad-type", "annotations[2].id")]),
    ("annotation-id-int64-min", _set("annotations", 2, "id", -(2**63)),
     [(E, "bad-type", "annotations[2].id")]),
    ("image-id-ref-string", _set("annotations", 2, "image_id", "1"),
     [(E, "bad-type", "annotations[2].image_id")]),
    ("image-id-ref-missing", _del("annotations", 2, "image_id"),
     [(E, "missing-field", "annotations[2].image_id")]),
    ("category-id-ref-null", _set("annotations", 2, "category_id", None),
     [(E, "bad-type", "annotations[2].category_id")]),
    ("duplicate-annotation-id", _set("annotations", 3, "id", 10),
     [(E, "duplicate-annotation-id", "annotations[3].id")]),
    ("dangling-image-id", _set("annotations", 2, "image_id", 99),
     [(E, "dangling-image-id", "annotations[2].image_id")]),
    ("dangling-category-id", _set("annotations", 3, "category_id", 42),
     [(E, "dangling-category-id", "annotations[3].category_id"),
      (W, "unused-category", "categories[2]")]),
    # geometry presence
    ("no-geometry", lambda d: [d["annotations"][2].pop("bbox")],
     [(E, "missing-geometry", "annotations[2]")]),
    ("empty-segmentation-no-bbox",
     lambda d: [d["annotations"][2].pop("bbox"), d["annotations"][2].update(segmentation=[])],
     [(E, "missing-geometry", "annotations[2]")]),
    # bbox
    ("bbox-3-values", _set("annotations", 0, "bbox", [1, 2, 3]),
     [(E, "bad-bbox", "annotations[0].bbox")]),
    ("bbox-string", _set("annotations", 0, "bbox", "1,2,3,4"),
     [(E, "bad-bbox", "annotations[0].bbox")]),
    ("bbox-string-value", _set("annotations", 0, "bbox", [10, "10", 20, 10]),
     [(E, "bad-bbox", "annotations[0].bbox")]),
    ("bbox-bool-value", _set("annotations", 2, "bbox", [50, 40, True, 10]),
     [(E, "bad-bbox", "annotations[2].bbox")]),
    ("bbox-null-value", _set("annotations", 2, "bbox", [50, 40, None, 10]),
     [(E, "bad-bbox", "annotations[2].bbox")]),
    ("bbox-nan", _set("annotations", 0, "bbox", [10, NAN, 20, 10]),
     [(E, "non-finite", "annotations[0].bbox")]),
    ("bbox-inf", _set("annotations", 0, "bbox", [10, 10, INF, 10]),
     [(E, "non-finite", "annotations[0].bbox")]),
    ("bbox-negative-width", _set("annotations", 0, "bbox", [30, 10, -20, 10]),
     [(E, "negative-bbox-size", "annotations[0].bbox")]),
    ("bbox-zero-height", _set("annotations", 0, "bbox", [10, 10, 20, 0]),
     [(W, "zero-area-bbox", "annotations[0].bbox")]),
    ("bbox-outside-right", _set("annotations", 0, "bbox", [90, 10, 20, 10]),
     [(W, "bbox-outside-image", "annotations[0].bbox")]),
    ("bbox-outside-negative-x", _set("annotations", 3, "bbox", [-1, 5, 20, 20]),
     [(W, "bbox-outside-image", "annotations[3].bbox")]),
    ("bbox-outside-bottom", _set("annotations", 2, "bbox", [50, 75, 10, 5.5]),
     [(W, "area-mismatch", "annotations[2].area"),  # 100 > 10 x 5.5
      (W, "bbox-outside-image", "annotations[2].bbox")]),
    # area
    ("area-string", _set("annotations", 0, "area", "200"),
     [(E, "bad-type", "annotations[0].area")]),
    ("area-nan", _set("annotations", 0, "area", NAN), [(E, "non-finite", "annotations[0].area")]),
    ("area-polygon-mismatch", _set("annotations", 0, "area", 300.0),
     [(W, "area-mismatch", "annotations[0].area")]),
    ("area-two-rings-mismatch", _set("annotations", 3, "area", 48.0),  # 54 - 11%
     [(W, "area-mismatch", "annotations[3].area")]),
    ("area-rle-mismatch", _set("annotations", 1, "area", 20),
     [(W, "area-mismatch", "annotations[1].area")]),
    ("area-compressed-rle-mismatch", _set("annotations", 4, "area", 3),
     [(W, "area-mismatch", "annotations[4].area")]),
    ("area-larger-than-box", _set("annotations", 2, "area", 1000.0),
     [(W, "area-mismatch", "annotations[2].area")]),
    # iscrowd
    ("iscrowd-2", _set("annotations", 0, "iscrowd", 2),
     [(E, "bad-iscrowd", "annotations[0].iscrowd")]),
    ("iscrowd-minus-1", _set("annotations", 1, "iscrowd", -1),
     [(E, "bad-iscrowd", "annotations[1].iscrowd")]),
    # file names
    ("file-name-empty", _set("images", 1, "file_name", ""),
     [(E, "bad-file-name", "images[1].file_name")]),
    ("file-name-nul", _set("images", 0, "file_name", "a\x00.jpg"),
     [(E, "bad-file-name", "images[0].file_name")]),
    ("file-name-delete-character", _set("images", 0, "file_name", "a\x7f.jpg"),
     [(E, "bad-file-name", "images[0].file_name")]),
    ("iscrowd-bool", _set("annotations", 0, "iscrowd", True),
     [(E, "bad-iscrowd", "annotations[0].iscrowd")]),
    # segmentation
    ("segmentation-string", _set("annotations", 0, "segmentation", "poly"),
     [(E, "bad-segmentation", "annotations[0].segmentation")]),
    ("segmentation-null", _set("annotations", 0, "segmentation", None),
     [(E, "bad-segmentation", "annotations[0].segmentation")]),
    ("polygon-not-array", _set("annotations", 3, "segmentation", [[5, 5, 15, 5, 15, 15], 3]),
     [(E, "bad-segmentation", "annotations[3].segmentation[1]")]),
    ("polygon-odd", _set("annotations", 0, "segmentation", [[10, 10, 30, 10, 30, 20, 10]]),
     [(E, "bad-polygon", "annotations[0].segmentation[0]")]),
    ("polygon-too-short", _set("annotations", 3, "segmentation",
                               [[5, 5, 15, 5, 15, 15], [20, 20, 22, 20]]),
     [(E, "bad-polygon", "annotations[3].segmentation[1]")]),
    ("polygon-string-coordinate",
     _set("annotations", 0, "segmentation", [[10, 10, 30, "10", 30, 20, 10, 20]]),
     [(E, "bad-polygon", "annotations[0].segmentation[0]")]),
    ("polygon-null-coordinate",
     _set("annotations", 0, "segmentation", [[10, 10, 30, None, 30, 20, 10, 20]]),
     [(E, "bad-polygon", "annotations[0].segmentation[0]")]),
    ("polygon-nan", _set("annotations", 0, "segmentation", [[10, 10, 30, 10, NAN, 20, 10, 20]]),
     [(E, "non-finite", "annotations[0].segmentation[0]")]),
    ("polygon-inf-second-ring",
     _set("annotations", 3, "segmentation", [[5, 5, 15, 5, 15, 15], [20, 20, 22, 20, 22, INF]]),
     [(E, "non-finite", "annotations[3].segmentation[1]")]),
    # RLE
    ("rle-size-missing", _rle(1, size=_DELETE), [(E, "bad-rle", "annotations[1].segmentation")]),
    ("rle-size-wrong", _rle(1, size=[40]), [(E, "bad-rle", "annotations[1].segmentation.size")]),
    ("rle-size-strings", _rle(1, size=["40", "50"]),
     [(E, "bad-rle", "annotations[1].segmentation.size")]),
    ("rle-counts-missing", _rle(1, counts=_DELETE),
     [(E, "bad-rle", "annotations[1].segmentation")]),
    ("rle-counts-negative", _rle(1, counts=[0, -10, 2010]),
     [(E, "bad-rle", "annotations[1].segmentation.counts")]),
    ("rle-counts-float", _rle(1, counts=[0, 10.0, 1990]),
     [(E, "bad-rle", "annotations[1].segmentation.counts")]),
    ("rle-counts-object", _rle(1, counts={"a": 1}),
     [(E, "bad-rle", "annotations[1].segmentation.counts")]),
    ("rle-counts-sum", _rle(1, counts=[0, 10, 1000]),
     [(E, "rle-counts-sum", "annotations[1].segmentation.counts")]),
    ("compressed-rle-counts-short",
     _set("annotations", 4, "segmentation", _compressed_rle(80, 90, 2, 7, 60, 66) | {
         "size": [80, 100]}),
     [(E, "rle-counts-sum", "annotations[4].segmentation.counts")]),
    ("compressed-rle-counts-long",
     _set("annotations", 4, "segmentation", _compressed_rle(90, 100, 2, 7, 60, 66) | {
         "size": [80, 100]}),
     [(E, "rle-counts-sum", "annotations[4].segmentation.counts")]),
    ("compressed-rle-counts-garbage",
     _set("annotations", 4, "segmentation", {"size": [80, 100], "counts": "hello world"}),
     [(E, "bad-rle", "annotations[4].segmentation.counts")]),
    ("rle-size-mismatch", _rle(1, size=[50, 40], counts=[0, 10, 1990]),
     [(E, "rle-size-mismatch", "annotations[1].segmentation.size")]),
    ("compressed-rle-size-mismatch", _set("annotations", 4, "image_id", 2),
     [(W, "bbox-outside-image", "annotations[4].bbox"),
      (E, "rle-size-mismatch", "annotations[4].segmentation.size")]),
    # keypoints
    ("keypoints-length", _set("annotations", 3, "keypoints", [6, 6, 2, 0, 0]),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-not-array", _set("annotations", 3, "keypoints", {"x": 1}),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-string", _set("annotations", 3, "keypoints", [6, 6, "2", 0, 0, 0]),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-fewer-than-names", _set("annotations", 3, "keypoints", [6, 6, 2]),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-more-than-names", _set("annotations", 3, "keypoints", [6, 6, 2] * 3),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-empty-with-names", _set("annotations", 3, "keypoints", []),
     [(E, "bad-keypoints", "annotations[3].keypoints")]),
    ("keypoints-nan", _set("annotations", 3, "keypoints", [6, NAN, 2, 0, 0, 0]),
     [(E, "non-finite", "annotations[3].keypoints")]),
    ("keypoints-category-without-names", _del("categories", 2, "keypoints"),
     []),
    ("keypoints-any-length-without-names",
     _each(_del("categories", 2, "keypoints"), _set("annotations", 3, "keypoints", [6, 6, 2])),
     []),
    ("keypoints-names-of-the-first-category-of-an-id",
     _append("categories", {"id": 3, "name": "again", "keypoints": ["a", "b", "c"]}),
     [(E, "duplicate-category-id", "categories[3].id")]),
    # warnings on images and categories
    ("duplicate-file-name", _set("images", 1, "file_name", "a.jpg"),
     [(W, "duplicate-file-name", "images[1].file_name")]),
    ("unused-category", _append("categories", {"id": 9, "name": "unused"}),
     [(W, "unused-category", "categories[3]")]),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [(m, e) for _, m, e in CASES], ids=[c[0] for c in CASES]
)
def test_broken_document(mutate: Mutation,
                         expected: list[tuple[str, str, str]]) -> None:
    doc = base()
    mutate(doc)
    report = validate_document(doc, "case")
    assert triples(report) == expected, str(report)
    assert report.ok == all(sev != "error" for sev, _, _ in expected)
    for p in report.problems:
        assert p.code in CODES
        assert p.severity == SEVERITIES[p.code]
        assert p.message and "\n" not in p.message


def test_top_level_not_an_object() -> None:
    doc: Any
    for doc in ([], None, "x", 3):
        report = validate_document(doc)
        assert triples(report) == [(E, "top-not-object", "")]


def test_every_code_is_kebab_case_and_documented() -> None:
    assert set(CODES) == set(SEVERITIES)
    for code, text in CODES.items():
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code), code
        assert text.strip() and "\n" not in text
    exercised = {code for _, _, expected in CASES for _, code, _ in expected}
    exercised |= {"top-not-object", "json-syntax"}
    exercised |= {code for _, code, _ in DOCUMENT_CASES}
    from .test_results import MALFORMED  # the codes of results lists (io/results.py)

    exercised |= {code for *_, code in MALFORMED}
    assert exercised == set(CODES)


# --------------------------------------------------------------------------------------
# Messages


def _only(report: Report) -> Problem:
    assert len(report.problems) == 1, str(report)
    return report.problems[0]


def test_duplicate_id_names_the_first_index() -> None:
    doc = base()
    doc["images"].append(dict(IMG, id=2, file_name="other.jpg"))
    doc["images"].append(dict(IMG, id=2))
    doc["images"].append(dict(IMG, id=5))
    report = validate_document(doc)
    assert [p.path for p in report.problems] == ["images[2].id", "images[3].id",
                                                 "images[4].file_name"]
    assert "images[1]" in report.problems[0].message
    assert "images[1]" in report.problems[1].message
    assert "images[3]" in report.problems[2].message  # the first "new.jpg"


def test_messages_show_the_offending_value() -> None:
    doc = base()
    doc["annotations"][0]["bbox"] = [1, 2, 3]
    msg = _only(validate_document(doc)).message
    assert "[1, 2, 3]" in msg and "4 numbers" in msg

    doc = base()
    doc["images"][0]["id"] = "x" * 500
    msg = validate_document(doc).problems[0].message
    assert "string" in msg and len(msg) < 200  # the value is shortened

    doc = base()
    doc["annotations"][2]["image_id"] = 99
    msg = _only(validate_document(doc)).message
    assert "99" in msg

    doc = base()
    doc["images"][0]["width"] = 100.0
    assert "100.0" in _only(validate_document(doc)).message


def test_area_mismatch_messages() -> None:
    doc = base()
    doc["annotations"][0]["area"] = 300.0
    msg = _only(validate_document(doc)).message
    assert "300.0" in msg and "200.0" in msg and "10%" in msg

    doc = base()
    doc["annotations"][1]["area"] = 20
    msg = _only(validate_document(doc)).message
    assert "RLE" in msg and "20" in msg and "10.0" in msg


def _mask_rle(m: np.ndarray, compressed: bool) -> dict[str, Any]:
    """The RLE of a mask: pycocotools' compressed string, or the run lengths as a list."""
    from pycocotools import mask as mask_utils

    h, w = m.shape
    if compressed:
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return {"size": [h, w], "counts": rle["counts"].decode("ascii")}
    flat = m.ravel(order="F").astype(np.int8)
    edges = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    runs = np.diff(edges).tolist()
    return {"size": [h, w], "counts": [0, *runs] if flat[0] else runs}


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_rle_area_is_the_pycocotools_area(compressed: bool, as_bytes: bool) -> None:
    from pycocotools import mask as mask_utils

    m = np.random.default_rng(7).random((40, 50)) < 0.3
    m[0, 0] = True  # the counts start with an empty run
    want = float(mask_utils.area(mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))))
    doc = base()
    doc["annotations"][1]["segmentation"] = _mask_rle(m, compressed)
    doc["annotations"][1]["area"] = 2 * want
    report = validate_bytes(json.dumps(doc).encode()) if as_bytes else validate_document(doc)
    problem = _only(report)
    assert (problem.code, problem.path) == ("area-mismatch", "annotations[1].area")
    assert f"the RLE mask area {want} " in problem.message


def test_area_within_tolerance_is_fine() -> None:
    doc = base()
    doc["annotations"][0]["area"] = 215.0  # 7.5% off
    assert validate_document(doc).problems == []
    doc["annotations"][3]["area"] = 54.9  # < 1 px off
    doc["annotations"][0]["area"] = 200.9
    assert validate_document(doc).problems == []
    doc = base()
    doc["annotations"][2]["area"] = 100.9  # box-only: up to 1% over w*h
    doc["annotations"][2]["bbox"] = [50, 40, 10, 10]
    assert validate_document(doc).problems == []
    doc["annotations"][2]["area"] = 3.0  # box-only: smaller than the box is fine
    assert validate_document(doc).problems == []


def test_box_tolerance() -> None:
    doc = base()
    doc["annotations"][0]["bbox"] = [80, 70, 20 + BOX_TOLERANCE / 2, 10]
    assert validate_document(doc).problems == []
    doc["annotations"][0]["bbox"] = [80, 70, 20 + BOX_TOLERANCE * 2, 10]
    p = _only(validate_document(doc))
    assert p.code == "bbox-outside-image"
    assert "100" in p.message and f"{BOX_TOLERANCE:g} px" in p.message


# --------------------------------------------------------------------------------------
# Report


def test_report_str_and_dict() -> None:
    doc = base()
    doc["annotations"][2]["image_id"] = 99
    doc["images"][1]["file_name"] = "a.jpg"
    report = validate_document(doc, "my.json")
    lines = str(report).splitlines()
    assert lines == [
        f"my.json: images[1].file_name: warning [duplicate-file-name] {report.problems[0].message}",
        f"my.json: annotations[2].image_id: error [dangling-image-id] "
        f"{report.problems[1].message}",
    ]
    d = report.to_dict()
    assert d["source"] == "my.json" and d["ok"] is False
    assert d["errors"] == 1 and d["warnings"] == 1 and d["truncated"] == 0
    assert d["problems"][1] == {"code": "dangling-image-id", "severity": "error",
                                "path": "annotations[2].image_id",
                                "message": report.problems[1].message}
    json.dumps(d)
    assert [p.code for p in report.errors] == ["dangling-image-id"]
    assert [p.code for p in report.warnings] == ["duplicate-file-name"]


def test_raise_for_errors() -> None:
    doc = base()
    doc["annotations"][2]["image_id"] = 99
    report = validate_document(doc)
    with pytest.raises(ValidationFailed) as info:
        report.raise_for_errors()
    assert info.value.report is report
    # warnings only: no raise
    doc = base()
    doc["images"][1]["file_name"] = "a.jpg"
    validate_document(doc).raise_for_errors()


def test_max_problems_truncates_and_counts() -> None:
    doc = base()
    for k in range(100):
        doc["annotations"].append({"id": 100 + k, "image_id": 99, "category_id": 1,
                                   "bbox": [0, 0, 1, 1]})
    full = validate_document(doc)
    assert len(full.errors) == 100 and full.truncated == 0
    capped = validate_document(doc, max_problems=10)
    assert len(capped.problems) == 10 and capped.truncated == 90
    assert capped.truncated_errors == 90
    assert not capped.ok
    assert "90 more problem(s)" in str(capped).splitlines()[-1]
    assert capped.to_dict()["errors"] == 100
    # errors that were not stored still make the report fail
    none = validate_document(doc, max_problems=0)
    assert none.problems == [] and none.truncated == 100 and not none.ok
    with pytest.raises(ValidationFailed):
        none.raise_for_errors()


# --------------------------------------------------------------------------------------
# Streaming: order and chunks


def _broken_references() -> dict[str, Any]:
    doc = base()
    doc["annotations"][0]["image_id"] = 7
    doc["annotations"][3]["category_id"] = 8
    doc["annotations"][2]["bbox"] = [95, 0, 10, 10]  # outside image 1
    doc["annotations"][1]["segmentation"]["size"] = [41, 50]
    doc["annotations"][1]["segmentation"]["counts"] = [0, 10, 2040]
    doc["images"].append(dict(IMG, id=2))
    return doc


def test_annotations_before_images_give_the_same_report() -> None:
    doc = _broken_references()
    expected = validate_document(doc, "x")
    assert {p.code for p in expected.problems} >= {
        "dangling-image-id", "dangling-category-id", "bbox-outside-image", "rle-size-mismatch",
        "duplicate-image-id"}
    v = Validator("x")
    v.feed_annotations(doc["annotations"])
    v.feed_images(doc["images"])
    v.feed_categories(doc["categories"])
    v.feed_top(list(doc))
    assert v.finish().problems == expected.problems


def test_chunks_use_global_indices() -> None:
    doc = _broken_references()
    expected = validate_document(doc, "x")
    v = Validator("x")
    anns = doc["annotations"]
    # chunks fed out of order
    v.feed_annotations(anns[3:], start=3)
    v.feed_images(doc["images"][2:], start=2)
    v.feed_annotations(anns[:3], start=0)
    v.feed_categories(doc["categories"])
    v.feed_images(doc["images"][:2], start=0)
    assert v.finish().problems == expected.problems


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8),
       st.permutations(["images", "annotations", "categories"]))
def test_any_chunking_gives_the_same_report(sizes: list[int], order: list[str]) -> None:
    doc = _broken_references()
    doc["annotations"] = doc["annotations"] * 3  # duplicate ids too
    expected = validate_document(doc, "x").problems
    v = Validator("x")
    for section in order:
        records = doc[section]
        pos, k = 0, 0
        feed = getattr(v, f"feed_{section}")
        while pos < len(records):
            n = sizes[k % len(sizes)]
            feed(records[pos : pos + n], start=pos)
            pos += n
            k += 1
    assert v.finish().problems == expected


def test_finish_twice_and_feed_after_finish() -> None:
    v = Validator("x")
    v.feed_images([])
    report = v.finish()
    assert v.finish() is report
    with pytest.raises(RuntimeError):
        v.feed_annotations([])


def test_references_only_checked_against_fed_sections() -> None:
    v = Validator("x")
    v.feed_annotations(base()["annotations"])
    assert v.finish().problems == []
    v = Validator("x")
    v.feed_annotations(base()["annotations"])
    v.feed_images([])
    report = v.finish()
    assert {p.code for p in report.problems} == {"dangling-image-id"}
    assert len(report.problems) == 5


def test_sections_reported_missing_are_not_checked_against() -> None:
    doc = base()
    v = Validator("x")
    v.feed_top(["images", "annotations"])  # no categories
    v.feed_categories([])  # a reader that feeds an empty list for it anyway
    v.feed_images(doc["images"])
    v.feed_annotations(doc["annotations"])
    assert triples(v.finish()) == [(E, "missing-key", "")]


def test_large_blocks() -> None:
    # more annotations than one internal block, problems on both sides of the border
    n = 70_000
    anns = [{"id": k, "image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0],
             "area": 12.0, "segmentation": [[1.0, 2.0, 4.0, 2.0, 4.0, 6.0, 1.0, 6.0]]}
            for k in range(n)]
    anns[5]["bbox"] = [1, 2, "3", 4]
    anns[40_000]["segmentation"] = [[1.0, 2.0, None, 2.0, 4.0, 6.0]]
    anns[65_000]["id"] = 3
    anns[69_999]["area"] = 100.0
    doc = {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "a"}],
           "annotations": anns, "categories": [{"id": 1, "name": "x"}]}
    report = validate_document(doc)
    assert triples(report) == [
        (E, "bad-bbox", "annotations[5].bbox"),
        (E, "bad-polygon", "annotations[40000].segmentation[0]"),
        (E, "duplicate-annotation-id", "annotations[65000].id"),
        (W, "area-mismatch", "annotations[69999].area"),
    ]
    assert "annotations[3]" in report.problems[2].message


# --------------------------------------------------------------------------------------
# Bytes and files


@pytest.mark.parametrize(
    ("data", "line", "column"),
    [
        (b'{\n  "images": [,]}', 2, 14),
        (b'{"images": []} x', 1, 16),
        (b'{\n"images": [],\n"annotations": [\n', 4, 1),
        (b"", 1, 1),
        ('{\n "a": "é", \n  b}'.encode(), 3, 3),
    ],
)
def test_malformed_json_gives_line_and_column(data: bytes, line: int, column: int) -> None:
    report = validate_bytes(data, "bad.json")
    p = _only(report)
    assert (p.severity, p.code, p.path) == (E, "json-syntax", "")
    assert f"line {line}, column {column}" in p.message, p.message
    assert not report.ok
    assert str(report).startswith("bad.json: : error [json-syntax] malformed JSON at line ")


DOCUMENT_CASES = [
    (b'{"images": [], "info": ' + b"[" * 3000 + b"]" * 3000 + b"}", "too-deep", "info"),
    (b'{"images": [], "annotations": [], "images": []}', "duplicate-key", "images"),
]


@pytest.mark.parametrize(("data", "code", "path"), DOCUMENT_CASES)
def test_document_level_problems(data: bytes, code: str, path: str) -> None:
    p = _only(validate_bytes(data, "doc.json"))
    assert (p.severity, p.code, p.path) == (E, code, path)
    assert "line 1, column " in p.message


def test_byte_order_mark_is_explained() -> None:
    p = _only(validate_bytes(b"\xef\xbb\xbf{}", "bom.json"))
    assert p.code == "json-syntax" and "byte order mark" in p.message


def test_numbers_beyond_float_range_are_non_finite() -> None:
    doc = base()
    text = msgspec.json.encode(doc).replace(b'"bbox":[10,10,20,10]', b'"bbox":[10,10,1e999,10]')
    report = validate_bytes(text, "big.json")
    assert triples(report) == [(E, "non-finite", "annotations[0].bbox")]


def test_validate_file(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    doc = base()
    doc["annotations"][2]["image_id"] = 99
    path.write_bytes(msgspec.json.encode(doc))
    report = validate_file(path)
    assert report.source == str(path)
    assert triples(report) == [(E, "dangling-image-id", "annotations[2].image_id")]
    assert str(report).startswith(f"{path}: annotations[2].image_id: error [dangling-image-id] ")


def test_unreadable_file_raises_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        validate_file(tmp_path / "nope.json")
    assert info.value.file == str(tmp_path / "nope.json")
    with pytest.raises(InputError):
        validate_file(tmp_path)  # a directory


def test_validate_dispatches(tmp_path: Path) -> None:
    doc = base()
    path = tmp_path / "doc.json"
    path.write_bytes(msgspec.json.encode(doc))
    assert validate(str(path)).source == str(path)
    assert validate(path).ok
    assert validate(msgspec.json.encode(doc)).ok
    assert validate(doc).ok
    assert validate(doc, "named").source == "named"


def test_validate_dataset() -> None:
    try:
        from cocokit.io.coco import read_coco
    except ImportError as e:  # pragma: no cover - the io module is written separately
        pytest.skip(f"cocokit.io.coco is not importable: {e}")
    ds = read_coco(msgspec.json.encode(base()))
    report = validate(ds)
    assert report.source == "<dataset>"
    assert report.ok, str(report)


# --------------------------------------------------------------------------------------
# Real files

# Real files with known errors: the error codes (and paths) they must give.
KNOWN_ERRORS = {
    # TACO really has two pairs of annotations sharing an id (309 and 4040).
    "taco/annotations.json": {"duplicate-annotation-id"},
}


def _real_coco_files() -> list[Path]:
    if not REAL.is_dir():
        return []
    out = []
    for path in sorted(REAL.rglob("*.json")):
        try:
            doc = msgspec.json.decode(path.read_bytes())
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if isinstance(doc, dict) and all(
            k in doc for k in ("images", "annotations", "categories")
        ):
            out.append(path)
    return out


REAL_FILES = _real_coco_files()


@pytest.mark.skipif(not REAL_FILES, reason=f"no real COCO files under {REAL}")
@pytest.mark.parametrize("path", REAL_FILES, ids=[str(p.relative_to(REAL)) for p in REAL_FILES]
                         if REAL_FILES else [])
def test_real_file_has_no_errors(path: Path) -> None:
    report = validate_file(path)
    name = path.relative_to(REAL).as_posix()
    codes = {p.code for p in report.errors}
    assert codes == KNOWN_ERRORS.get(name, set()), str(report)
    for p in report.problems:
        assert p.code in CODES


@pytest.mark.skipif(not (REAL / "taco" / "annotations.json").is_file(),
                    reason="taco/annotations.json is not in the shared data")
def test_taco_duplicate_annotation_ids() -> None:
    report = validate_file(REAL / "taco" / "annotations.json")
    assert [(p.path, p.code) for p in report.errors] == [
        ("annotations[309].id", "duplicate-annotation-id"),
        ("annotations[4040].id", "duplicate-annotation-id"),
    ]
    assert "annotations[308]" in report.errors[0].message


SAHI_DATASET = REAL / "sahi-testdata" / "coco_evaluate" / "dataset.json"


@pytest.mark.skipif(not SAHI_DATASET.is_file(), reason=f"{SAHI_DATASET} is absent")
def test_sahi_dataset_has_area_inconsistency_warnings() -> None:
    report = validate_file(SAHI_DATASET)
    assert report.ok
    area = [p for p in report.warnings if p.code == "area-mismatch"]
    doc = json.loads(SAHI_DATASET.read_text())
    assert len(area) == len(doc["annotations"])  # every area there is off
    assert area[0].path == "annotations[0].area"
    assert "1040400" in area[0].message and "57" in area[0].message


# --------------------------------------------------------------------------------------
# Robustness: any JSON value anywhere gives a report, never an exception

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=8) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=4),
    max_leaves=20,
)
_FIELDS = [
    ("images", ["id", "width", "height", "file_name"]),
    ("annotations", ["id", "image_id", "category_id", "bbox", "area", "iscrowd",
                     "segmentation", "keypoints"]),
    ("categories", ["id", "name"]),
]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_value_in_any_field_gives_a_report(data: st.DataObject) -> None:
    doc = base()
    for _ in range(data.draw(st.integers(1, 4))):
        section, keys = data.draw(st.sampled_from(_FIELDS))
        i = data.draw(st.integers(0, len(doc[section]) - 1))
        key = data.draw(st.sampled_from(keys))
        record = doc[section][i]
        if isinstance(record, dict):
            record[key] = data.draw(_json_values)
        if data.draw(st.booleans()):
            doc[section][i] = data.draw(_json_values)
    report = validate_document(doc, "fuzz")
    for p in report.problems:
        assert p.code in CODES and p.severity == SEVERITIES[p.code]
    str(report)
    json.dumps(report.to_dict())


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_any_segmentation_value_gives_a_report(data: st.DataObject) -> None:
    doc = base()
    seg = data.draw(st.one_of(
        st.lists(st.lists(st.one_of(st.floats(), st.integers(-5, 5), st.none(),
                                    st.text(max_size=2)), max_size=9), max_size=3),
        st.fixed_dictionaries({"size": _json_values, "counts": _json_values}),
        st.fixed_dictionaries({"size": st.lists(st.integers(-2, 5), max_size=3),
                               "counts": st.one_of(st.lists(st.integers(-1, 30), max_size=6),
                                                   st.text(max_size=6))}),
    ))
    doc["annotations"][data.draw(st.integers(0, 4))]["segmentation"] = seg
    report = validate_document(doc, "fuzz")
    for p in report.problems:
        assert p.code in CODES


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.integers(0, 400).map(
    lambda n: msgspec.json.encode(base())[:n]))
def test_any_bytes_give_a_report(data: bytes) -> None:
    report = validate_bytes(data, "bytes")
    for p in report.problems:
        assert p.code in CODES
        if p.code == "json-syntax":
            assert re.search(r"line \d+, column \d+", p.message)


@st.composite
def _id_soup(draw: st.DrawFn) -> dict[str, Any]:
    """Records with few distinct ids and file names (many duplicates), some ids invalid."""
    ident = st.one_of(st.integers(1, 6), st.just(None), st.just("x"))
    images = [{"id": draw(ident), "width": 10, "height": 10,
               "file_name": draw(st.sampled_from(["a", "b", "c", "d"]))}
              for _ in range(draw(st.integers(0, 12)))]
    annotations = [{"id": draw(ident), "image_id": draw(ident), "category_id": draw(ident),
                    "bbox": [1, 1, 2, 2]} for _ in range(draw(st.integers(0, 12)))]
    categories = [{"id": draw(ident), "name": "c"} for _ in range(draw(st.integers(0, 5)))]
    return {"images": images, "annotations": annotations, "categories": categories}


@settings(max_examples=150, deadline=None)
@given(_id_soup(), st.integers(1, 5), st.randoms(use_true_random=False))
def test_chunks_in_any_order_find_the_same_duplicates(doc: dict[str, Any], size: int,
                                                      rnd: Any) -> None:
    expected = validate_document(doc, "x").problems
    in_order = Validator("x")
    shuffled = Validator("x")
    for section in ("annotations", "images", "categories"):
        records = doc[section]
        chunks = [(pos, records[pos : pos + size]) for pos in range(0, len(records), size)]
        chunks = chunks or [(0, [])]  # an empty section is fed as one empty chunk
        for pos, chunk in chunks:
            getattr(in_order, f"feed_{section}")(chunk, start=pos)
        rnd.shuffle(chunks)
        for pos, chunk in chunks:
            getattr(shuffled, f"feed_{section}")(chunk, start=pos)
    assert in_order.finish().problems == expected
    got = shuffled.finish().problems
    # out of order, a repeated file name may name another earlier image; all else is equal
    assert [(p.code, p.path) for p in got] == [(p.code, p.path) for p in expected]
    assert ([p for p in got if p.code != "duplicate-file-name"]
            == [p for p in expected if p.code != "duplicate-file-name"])


# --------------------------------------------------------------------------------------
# The reader's columns and the record path give the same report


def _record_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Feed every chunk of annotations as Python records (the reader's columns off)."""
    monkeypatch.setattr(Validator, "feed_raw_annotations", lambda self, raws, start=0: False)


@pytest.mark.skipif(not REAL_FILES, reason=f"no real COCO files under {REAL}")
@pytest.mark.parametrize("path", REAL_FILES, ids=[str(p.relative_to(REAL)) for p in REAL_FILES]
                         if REAL_FILES else [])
def test_real_file_same_report_through_the_reader_and_as_records(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    columns = validate_file(path, stream=False, chunk=777)
    assert columns.problems or columns.ok
    _record_path_only(monkeypatch)
    assert validate_file(path, stream=False, chunk=777).to_dict() == columns.to_dict()


def _json_safe(doc: Any) -> bool:
    return msgspec.json.decode(msgspec.json.encode(doc)) == doc


@pytest.mark.parametrize(
    "mutate", [m for _, m, _ in CASES], ids=[c[0] for c in CASES]
)
def test_broken_document_same_report_through_the_reader_and_as_records(
    mutate: Mutation, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = base()
    mutate(doc)
    if not _json_safe(doc):  # NaN and infinities have no JSON text
        pytest.skip("the document has no JSON text")
    data = msgspec.json.encode(doc)
    columns = validate_bytes(data, "case")
    assert columns.to_dict() == validate_document(doc, "case").to_dict()
    _record_path_only(monkeypatch)
    assert validate_bytes(data, "case").to_dict() == columns.to_dict()


@pytest.mark.parametrize(("mutate", "columns"), [
    (lambda d: None, True),
    (_set("annotations", 0, "area", 5000.0), True),  # a warning: still in columns
    (_set("annotations", 0, "segmentation", [[10, 10, 30, "10", 30, 20]]), False),
    (_set("annotations", 0, "iscrowd", 2), False),
    (_set("annotations", 3, "keypoints", [6, 6, 2, 0]), False),
], ids=["valid", "warning", "string-coordinate", "iscrowd-2", "keypoints-length"])
def test_the_reader_reads_clean_chunks_into_columns(mutate: Mutation, columns: bool) -> None:
    doc = base()
    mutate(doc)
    raws = msgspec.json.decode(msgspec.json.encode(doc["annotations"]),
                               type=list[msgspec.Raw])
    v = Validator("chunk")
    assert v.feed_raw_annotations(raws) is columns
    if not columns:  # nothing was fed: the records go the other way
        v.feed_annotations(msgspec.json.decode(msgspec.json.encode(doc["annotations"])))
    v.feed_images(doc["images"])
    v.feed_categories(doc["categories"])
    expected = validate_document(doc, "chunk")
    assert v.finish().to_dict() == expected.to_dict()
    assert expected.problems or columns
