"""cocokit.rawjson: polygon lists and keypoint arrays read from their JSON text into
columns, by simdjson where it is installed and by msgspec otherwise, with the same
result bit for bit, on real files and on texts that must be refused."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit import rawjson
from cocokit.geometry import parse_polygons

from .conftest import DATA, real_path

ENGINES = ["simdjson", "msgspec"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the compiled parser, then with the msgspec fallback."""
    if request.param == "simdjson":
        if not rawjson.simdjson_enabled():
            pytest.skip("pysimdjson is not installed (no wheel for this Python)")
    else:
        monkeypatch.setattr(rawjson, "_simdjson", None)
    yield request.param


def _expected(values: list[Any], depth: int) -> tuple[list[int], list[int], list[float]]:
    """The columns of decoded values, the plain Python way."""
    if depth == 1:
        return [1] * len(values), [len(v) for v in values], list(chain.from_iterable(values))
    rings = list(chain.from_iterable(values))
    return [len(v) for v in values], [len(r) for r in rings], list(chain.from_iterable(rings))


def _raw_column(path: Any, key: str, head: bytes) -> list[msgspec.Raw]:
    ds = cocokit.load(path)
    column = getattr(ds.annotations, key)
    return [v for v in column.tolist()
            if isinstance(v, msgspec.Raw) and bytes(v)[:1] == head]


REAL_POLYGONS = [
    ("cocoapi-val2014-100", "instances_val2014_100.json"),
    ("lvis-val100", "lvis_val_100.json"),
    ("taco", "annotations.json"),
]


@pytest.mark.parametrize("parts", REAL_POLYGONS, ids=lambda p: p[0])
def test_real_polygons_read_as_json_reads_them(parts: tuple[str, str], engine: str) -> None:
    raws = _raw_column(real_path(*parts), "segmentation", b"[")
    assert len(raws) > 100
    groups, count, numbers = rawjson.read_arrays(raws, 2)
    rings, lengths, flat = _expected([json.loads(bytes(r)) for r in raws], 2)
    assert groups.tolist() == rings
    assert count.tolist() == lengths
    assert numbers.dtype == np.float64
    assert numbers.tolist() == flat  # the nearest float64 of every number, as json says


def test_real_keypoints_read_as_json_reads_them(engine: str) -> None:
    raws = _raw_column(DATA / "coco_mini_person_keypoints_val2017.json", "keypoints", b"[")
    assert len(raws) > 10
    groups, count, numbers = rawjson.read_arrays(raws, 1)
    ones, lengths, flat = _expected([json.loads(bytes(r)) for r in raws], 1)
    assert groups.tolist() == ones
    assert count.tolist() == lengths
    assert numbers.tolist() == flat


def test_both_engines_give_the_same_bits(monkeypatch: pytest.MonkeyPatch) -> None:
    if not rawjson.simdjson_enabled():
        pytest.skip("pysimdjson is not installed (no wheel for this Python)")
    raws = _raw_column(real_path(*REAL_POLYGONS[1]), "segmentation", b"[")
    raws += [msgspec.Raw(b"[[0.1,0.30000000000000004,1.7976931348623157e308,-0.0,5e-324,2]]"),
             msgspec.Raw(b"[ [ 1 , 2 ,\n 3, 4, 5, 6 ] ]")]
    fast = rawjson.read_arrays(raws, 2)
    monkeypatch.setattr(rawjson, "_simdjson", None)
    slow = rawjson.read_arrays(raws, 2)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("text", [
    b'[[1, 2, "3", 4, 5, 6]]',  # a string
    b'[{"size": [1, 2], "counts": "ab"}]',  # an object
    b"[[1, 2, 3, 4, 5, 6], 7]",  # a number outside a ring
    b"[[1, 2, [3, 4], 5, 6]]",  # nested deeper
    b"[[1, 2, true, 4, 5, 6]]",
    b"[[1, 2, null, 4, 5, 6]]",
    b"[[1e400, 2, 3, 4, 5, 6]]",  # beyond float64
    b"[[" + b"9" * 400 + b", 2, 3, 4, 5, 6]]",  # beyond float64, without an exponent
    b'"[[1, 2, 3, 4, 5, 6]]"',
    b"[[1, 2, 3, 4, 5, 6]",  # cut
], ids=repr)
def test_what_is_not_a_polygon_list_is_refused(text: bytes, engine: str) -> None:
    with pytest.raises(ValueError):
        rawjson.read_arrays([msgspec.Raw(b"[[1, 2, 3, 4, 5, 6]]"), msgspec.Raw(text)], 2)


def test_a_number_of_hundreds_of_digits_is_its_nearest_float(engine: str) -> None:
    tiny = b"0." + b"0" * 350 + b"1"  # 1e-351: below the smallest float64, so 0.0
    long = b"1" + b"0" * 300 + b".5"  # 1e300, written out
    _, _, numbers = rawjson.read_arrays([msgspec.Raw(b"[[" + tiny + b", " + long
                                                     + b", 3, 4, 5, 6]]")], 2)
    assert numbers.tolist() == [0.0, float(long), 3, 4, 5, 6]


def test_an_integer_beyond_64_bits_is_its_nearest_float(engine: str) -> None:
    # simdjson refuses such a text, and msgspec reads it: msgspec decides, for both
    raws = [msgspec.Raw(b"[[123456789012345678901234567890, 2, 3, 4, 5, 6]]")]
    _, _, numbers = rawjson.read_arrays(raws, 2)
    assert numbers.tolist() == [1.2345678901234568e29, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("text", [b"[[1, 2, 3], 4]", b"[[1, 2, 3]]", b'["1", 2, 3]'], ids=repr)
def test_what_is_not_a_keypoint_array_is_refused(text: bytes, engine: str) -> None:
    with pytest.raises(ValueError):
        rawjson.read_arrays([msgspec.Raw(text)], 1)


def test_short_and_empty_rings_are_returned_as_they_are(engine: str) -> None:
    raws = [msgspec.Raw(t) for t in (b"[]", b"[[]]", b"[[7]]", b"[[1, 2, 3, 4, 5, 6], [8, 9]]")]
    groups, count, numbers = rawjson.read_arrays(raws, 2)
    assert groups.tolist() == [0, 1, 1, 2]
    assert count.tolist() == [0, 1, 6, 2]
    assert numbers.tolist() == [7, 1, 2, 3, 4, 5, 6, 8, 9]


def test_parse_polygons_of_a_real_file_reads_every_ring(engine: str) -> None:
    ds = cocokit.load(real_path(*REAL_POLYGONS[2]))  # TACO: polygons of many rings
    seg = ds.annotations.segmentation
    polys = parse_polygons(seg)
    assert len(polys) == len(seg)
    for i, value in enumerate(seg.tolist()):
        decoded = json.loads(bytes(value)) if value is not None else None
        want = decoded if isinstance(decoded, list) else []
        assert polys.to_coco(i) == [[float(x) for x in ring] for ring in want]


@pytest.mark.parametrize("parts", [
    ("sahi-testdata", "coco_evaluate", "dataset.json"),  # 249 area warnings
    ("cocoapi-val2014-100", "instances_val2014_100.json"),
], ids=lambda p: p[0])
def test_validate_says_the_same_with_either_engine(parts: tuple[str, ...], engine: str) -> None:
    path = real_path(*parts)
    validator = importlib.import_module("cocokit.validate").Validator
    columns = validator.feed_raw_annotations
    took: list[bool] = []

    def spy(self: Any, raws: Any, start: int = 0) -> bool:
        took.append(columns(self, raws, start))
        return took[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(validator, "feed_raw_annotations", spy)
        report = cocokit.validate(path)
    assert took and all(took), "the column path read every chunk"
    got = [(p.code, p.path, p.message) for p in report.problems]
    assert "area-mismatch" in {p.code for p in report.problems}  # the numbers were read
    with pytest.MonkeyPatch.context() as mp:  # the reference: the record way alone
        mp.setattr(validator, "feed_raw_annotations", lambda self, raws, start=0: False)
        reference = cocokit.validate(path)
    assert got == [(p.code, p.path, p.message) for p in reference.problems]
