"""Statistics of a streamed file (``compute_stats``, ``cocokit stats --stream``).

Equal to the in-memory statistics on every real file, whatever the run size, and on a
hand-made file with every case the joins must get right.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

import cocokit
from cocokit.cli import app, main
from cocokit.io.stream import open_stream
from cocokit.stats import compute_stats

from .conftest import REAL
from .test_io_coco import REAL_FILES, needs_real
from .test_stream import CAP_MB, run_capped

runner = CliRunner()

#: Small enough that every real file is read in many runs.
SMALL_CHUNK = 2048


def _real_id(p: Path) -> str:
    return str(p.relative_to(REAL))


@needs_real
@pytest.mark.parametrize("chunk", [SMALL_CHUNK, 1 << 25])
@pytest.mark.parametrize("path", REAL_FILES, ids=_real_id)
def test_stream_stats_equal_memory_stats(path: Path, chunk: int) -> None:
    stream = open_stream(path, chunk_bytes=chunk)
    if chunk == SMALL_CHUNK and path.stat().st_size > 20 * SMALL_CHUNK:
        assert len(stream.runs["annotations"]) > 1  # really read in several runs
    got = compute_stats(stream)
    expected = compute_stats(cocokit.load(path))
    assert got == expected
    assert got.to_dict() == expected.to_dict()


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=_real_id)
def test_cli_stream_json_equals_no_stream(path: Path) -> None:
    out = {}
    for flag in ("--stream", "--no-stream"):
        res = runner.invoke(app, ["stats", str(path), "--json", flag])
        assert res.exit_code == 0, res.output
        out[flag] = res.stdout
    assert out["--stream"] == out["--no-stream"]
    assert json.loads(out["--stream"]) == cocokit.compute_stats(cocokit.load(path)).to_dict()


# -- a hand-made file: every join the statistics make, in many runs ------------------

SQUARE = [[10.0, 10.0, 50.0, 10.0, 50.0, 50.0, 10.0, 50.0]]  # 40 x 40: mask area 1600


def _edge_document() -> dict:
    """Annotations before images; dangling, undeclared, area-less, NaN-free edge cases."""
    images = [
        {"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
        {"id": 2, "file_name": "b.jpg", "width": 100, "height": 80},
        {"id": 3, "file_name": "no-annotations.jpg", "width": 640, "height": 480},
        {"id": 2, "file_name": "dup-id.jpg", "width": 10, "height": 10},  # repeated id
        {"id": 5, "file_name": "e.jpg", "width": 33, "height": 44, "license": 1},
    ]
    anns = [
        # on image 1: boxes with areas on the COCOeval bounds
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 32, 32], "area": 1024.0,
         "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 96, 96], "area": 9216.0},
        # no area and no bbox, only a polygon: its mask area is computed
        {"id": 3, "image_id": 2, "category_id": 1, "segmentation": SQUARE, "iscrowd": 0},
        # no area: the box w * h
        {"id": 4, "image_id": 2, "category_id": 2, "bbox": [1, 2, 3, 4]},
        # a crowd with an RLE and no area
        {"id": 5, "image_id": 5, "category_id": 1, "iscrowd": 1,
         "segmentation": {"size": [44, 33], "counts": [0, 10, 1442]}},
        # image 99 names no image (dangling), and no area: nothing to compute it on
        {"id": 6, "image_id": 99, "category_id": 1, "segmentation": SQUARE},
        {"id": 7, "image_id": 99, "category_id": 2, "bbox": [0, 0, 5, 5], "area": 25.0},
        # undeclared categories
        {"id": 8, "image_id": 1, "category_id": 42, "bbox": [0, 0, 2, 2], "area": 4.0},
        {"id": 9, "image_id": 5, "category_id": 7, "bbox": [0, 0, 3, 3], "area": 9.0},
        {"id": 10, "image_id": 2, "category_id": 42, "bbox": [0, 0, 4, 4], "area": 16.0},
        # neither area, bbox nor segmentation: no area at all
        {"id": 11, "image_id": 1, "category_id": 2},
    ]
    # many more, so that a small chunk cuts the array into many runs
    for k in range(200):
        anns.append({"id": 100 + k, "image_id": [1, 2, 5, 77][k % 4], "category_id": k % 3 + 1,
                     "bbox": [0, 0, k % 50 + 1, k % 30 + 1], "area": float(k * 61 % 12000),
                     "iscrowd": int(k % 17 == 0)})
    cats = [{"id": 2, "name": "b"}, {"id": 1, "name": "a"}, {"id": 3, "name": "unused"},
            {"id": 4, "name": "never"}]
    return {"annotations": anns, "info": {"note": "annotations first"}, "images": images,
            "categories": cats}


@pytest.fixture
def edge_file(tmp_path: Path) -> Path:
    path = tmp_path / "edge.json"
    path.write_bytes(msgspec.json.encode(_edge_document()))
    return path


@pytest.mark.parametrize("chunk", [16, 700, 1 << 20])
def test_edge_file_stream_equals_memory(edge_file: Path, chunk: int) -> None:
    stream = open_stream(edge_file, chunk_bytes=chunk)
    if chunk < 1000:
        assert len(stream.runs["annotations"]) > 5
    got = compute_stats(stream)
    expected = compute_stats(cocokit.load(edge_file))
    assert got == expected
    assert got.to_dict() == expected.to_dict()
    # and the edge cases are really there
    assert (got.images, got.annotations) == (5, 211)
    assert got.dangling == 2 + 50  # image 99, and image 77 in the filler
    assert got.undeclared == 3
    # image 3 has none, and neither has the second image with id 2 (joins use the first)
    assert got.negatives == 2
    # the polygon (1600), the box (12), the RLE (10); not the dangling polygon (no image
    # size to rasterize it at) nor the record with no geometry at all
    assert got.areas_computed == 3
    assert got.area.count == 211 - 2
    assert [c.id for c in got.per_category] == [2, 1, 3, 4, 7, 42]
    assert [c.declared for c in got.per_category] == [True] * 4 + [False] * 2
    assert got.category(42).images == 2 and got.category(4).annotations == 0


def test_edge_file_computed_areas(tmp_path: Path) -> None:
    """Areas missing from the file are computed per run as in memory (mask, else box)."""
    doc = _edge_document()
    doc["annotations"] = [a for a in doc["annotations"] if a["id"] in (3, 4, 5)]
    src = tmp_path / "three.json"
    src.write_bytes(msgspec.json.encode(doc))
    s = compute_stats(open_stream(src, chunk_bytes=16))
    assert s == compute_stats(cocokit.load(src))
    a, b = s.category("a"), s.category("b")
    assert (a.area_min, a.area_max, b.area_min) == (10.0, 1600.0, 12.0)
    assert s.areas_computed == 3 and (s.small, s.medium) == (1, 1)  # not the crowd


def test_empty_and_tiny_documents(tmp_path: Path) -> None:
    for text in (
        b"{}",
        b'{"images": [], "annotations": [], "categories": []}',
        b'{"categories":[{"id":1,"name":"a"}],"annotations":[],'
        b'"images":[{"id":1,"file_name":"a","width":2,"height":2}]}',
        b'{"annotations":[{"id":1,"image_id":3,"category_id":9}],"images":[]}',
    ):
        src = tmp_path / "in.json"
        src.write_bytes(text)
        assert compute_stats(open_stream(src, chunk_bytes=16)) == compute_stats(
            cocokit.load(src)
        )


def test_cli_stream_and_html(
    edge_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res_s = runner.invoke(app, ["stats", str(edge_file), "--json", "--stream"])
    res_m = runner.invoke(app, ["stats", str(edge_file), "--json", "--no-stream"])
    assert res_s.exit_code == 0 and res_s.stdout == res_m.stdout
    # the tables too
    res_s = runner.invoke(app, ["stats", str(edge_file), "--stream"], env={"COLUMNS": "120"})
    res_m = runner.invoke(app, ["stats", str(edge_file), "--no-stream"], env={"COLUMNS": "120"})
    assert res_s.exit_code == 0 and res_s.stdout == res_m.stdout
    # the report needs the file in memory: one clear line, nothing written
    report = tmp_path / "r.html"
    capsys.readouterr()
    assert main(["stats", str(edge_file), "--stream", "--html", str(report)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "add --no-stream" in err
    assert not report.exists()


# -- bounded memory ------------------------------------------------------------------


def make_fat_file(path: Path, n_images: int, per_image: int) -> None:
    """A file of few, large annotations (a 100-vertex polygon each; every 97th without
    ``area``, so its mask area is computed): many bytes, few rows of statistics."""
    ring = ",".join(f"{100 + 50 * np.cos(t):.3f},{100 + 50 * np.sin(t):.3f}"
                    for t in np.linspace(0, 2 * np.pi, 100, endpoint=False)).encode()
    head = b'{"id":%d,"image_id":%d,"category_id":%d,"iscrowd":%d,"bbox":[50,50,100,100],'
    with open(path, "wb") as f:
        f.write(b'{"images":[')
        f.write(b",".join(b'{"id":%d,"file_name":"%d.jpg","width":%d,"height":480}'
                          % (i, i, 320 * (i % 3 + 1)) for i in range(1, n_images + 1)))
        f.write(b'],"annotations":[')
        for k in range(n_images * per_image):
            area = b"" if k % 97 == 0 else b'"area":%d.5,' % (k % 20000)
            f.write(b"," if k else b"")
            f.write(head % (k + 1, k // per_image + 1, k % 5 + 1, k % 50 == 0) + area
                    + b'"segmentation":[[' + ring + b"]]}")
        f.write(b'],"categories":[%s]}' % b",".join(
            b'{"id":%d,"name":"c%d"}' % (c, c) for c in range(1, 7)))


def test_streaming_stats_under_a_memory_cap(tmp_path: Path) -> None:
    """A file 3x the cap: the streamed statistics fit and equal the in-memory ones."""
    big = tmp_path / "fat.json"
    make_fat_file(big, n_images=60_000, per_image=5)
    assert big.stat().st_size > 2.8 * (CAP_MB << 20)
    code = (
        "import sys, json; from cocokit.io.stream import open_stream\n"
        "from cocokit.stats import compute_stats\n"
        "s = compute_stats(open_stream(sys.argv[1], chunk_bytes=4 << 20))\n"
        "print(json.dumps(s.to_dict()))\n"
    )
    r = run_capped(["-c", code, str(big)])
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert (got["images"], got["annotations"], got["negatives"]) == (60_000, 300_000, 0)
    assert got["areas_computed"] == len(range(0, 300_000, 97))
    # the in-memory path cannot do this under the same cap: the cap is real
    r2 = run_capped(["-c", "import sys, cocokit; cocokit.load(sys.argv[1])", str(big)])
    assert r2.returncode != 0 and "MemoryError" in r2.stderr
    assert got == compute_stats(cocokit.load(big)).to_dict()
