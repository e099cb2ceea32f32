"""Streaming read and write: the same results as the in-memory path, in bounded memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit import IntegrityError, JSONSyntaxError
from cocokit.io.coco import write_coco
from cocokit.io.stream import open_stream
from cocokit.validate import validate_file

from .conftest import DATA, REAL, REPO
from .test_io_coco import REAL_FILES, needs_real

POLICIES = [("keep", "keep", False), ("auto", "auto", False), ("auto", "keep", True)]


def _ids_unique(doc: dict, section: str) -> bool:
    ids = [r["id"] for r in doc[section]]
    return len(set(ids)) == len(ids)


@needs_real
@pytest.mark.parametrize("chunk", [2048, 1 << 25])
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_stream_matches_memory_byte_for_byte(path: Path, chunk: int, tmp_path: Path) -> None:
    doc = msgspec.json.decode(path.read_bytes())
    ds = cocokit.load(path)
    stream = open_stream(path, chunk_bytes=chunk)
    assert (stream.num_images, stream.num_annotations) == (len(ds.images), len(ds.annotations))
    anns = cocokit.Annotations.concat([t for _, t in stream.annotation_tables()])
    np.testing.assert_array_equal(anns.id, ds.annotations.id)
    np.testing.assert_array_equal(anns.bbox, ds.annotations.bbox)
    assert [bytes(s) for s in anns.segmentation[:50] if s is not None] == [
        bytes(s) for s in ds.annotations.segmentation[:50] if s is not None
    ]
    out = tmp_path / "out.json"
    for image_ids, annotation_ids, negatives in POLICIES:
        if annotation_ids == "keep" and not _ids_unique(doc, "annotations"):
            continue
        write_coco(
            stream,
            out,
            image_ids=image_ids,
            annotation_ids=annotation_ids,
            ignore_negative_samples=negatives,
        )
        expected = cocokit.to_json(
            ds, image_ids=image_ids, annotation_ids=annotation_ids,
            ignore_negative_samples=negatives,
        )
        assert out.read_bytes() == expected


def test_unusual_key_order_and_whitespace(tmp_path: Path) -> None:
    doc = msgspec.json.decode((DATA / "tiny_coco_val2017.json").read_bytes())
    odd = {
        "annotations": doc["annotations"],
        "categories": doc["categories"],
        "info": doc["info"],
        "images": doc["images"],
        "licenses": doc["licenses"],
    }
    src = tmp_path / "odd.json"
    src.write_text(json.dumps(odd, indent=3))
    stream = open_stream(src, chunk_bytes=3000)
    assert stream.key_order == ["annotations", "categories", "info", "images", "licenses"]
    assert len(stream.runs["annotations"]) > 5  # really read in many runs
    out = tmp_path / "out.json"
    write_coco(stream, out, image_ids="keep", annotation_ids="keep")
    assert out.read_bytes() == cocokit.to_json(
        cocokit.load(src), image_ids="keep", annotation_ids="keep")
    assert msgspec.json.decode(out.read_bytes()) == odd
    assert list(msgspec.json.decode(out.read_bytes())) == list(odd)


def test_stream_refuses_broken_references_and_writes_nothing(tmp_path: Path) -> None:
    doc = msgspec.json.decode((DATA / "tiny_coco_val2017.json").read_bytes())
    doc["annotations"][100]["image_id"] = 5
    src = tmp_path / "bad.json"
    src.write_bytes(msgspec.json.encode(doc))
    out = tmp_path / "out.json"
    out.write_text("precious")
    with pytest.raises(
        IntegrityError, match=r"annotations\[100\]\.image_id: image id 5 names no image"
    ):
        write_coco(open_stream(src, chunk_bytes=4096), out)
    assert out.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.json", "out.json"]


def test_stream_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(
        b'{"images": [],\n "annotations": [{"id": 1},\n {"id": 2,, "x": 1}],\n "categories": []}'
    )
    with pytest.raises(JSONSyntaxError) as e:
        open_stream(src, chunk_bytes=16)
    assert e.value.line == 3
    report = validate_file(src, stream=True)
    assert [p.code for p in report.errors] == ["json-syntax"]
    assert "line 3" in report.errors[0].message


@needs_real
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_validate_stream_equals_validate_file(path: Path) -> None:
    streamed = validate_file(path, stream=True, chunk_bytes=4096, chunk=1000)
    assert str(streamed) == str(validate_file(path, stream=False))


# -- bounded memory: a file several times larger than the cap --------------------------

RECORD = (
    b'{"id":%d,"image_id":%d,"category_id":%d,"segmentation":[[10.5,20.25,30.75,20.25,'
    b"30.75,40.5,10.5,40.5,12.25,33.5,14.75,30.5,18.5,27.25,21.25,25.5,24.75,23.25]],"
    b'"area":372.375,"bbox":[10.5,20.25,20.25,20.25],"iscrowd":0}'
)


def make_big_file(path: Path, n_images: int, per_image: int, scattered: bool = False) -> None:
    """``n_images`` images with ``per_image`` polygon annotations each. ``scattered``:
    the annotations come first and their images are spread over the whole file (every
    run of annotations names images of every chunk); else images first, annotations
    grouped by image."""
    total = n_images * per_image

    def image_of(k: int) -> int:
        return (k * 7919) % n_images + 1 if scattered else k // per_image + 1

    def annotations() -> None:
        f.write(b'"annotations":[')
        step = 100_000
        for s in range(0, total, step):
            if s:
                f.write(b",")
            f.write(b",".join(RECORD % (k + 1, image_of(k), k % 3 + 1)
                              for k in range(s, min(s + step, total))))
        f.write(b"],")

    def images() -> None:
        f.write(b'"images":[')
        f.write(b",".join(b'{"id":%d,"file_name":"%012d.jpg","width":640,"height":480}' % (i, i)
                          for i in range(1, n_images + 1)))
        f.write(b"],")

    with open(path, "wb") as f:
        f.write(b'{"info":{"description":"bounded-memory test"},')
        for part in ((annotations, images) if scattered else (images, annotations)):
            part()
        f.write(b'"categories":[{"id":1,"name":"a"},{"id":2,"name":"b"},{"id":3,"name":"c"}]}')


CAP_MB = 150


def run_capped(args: list[str]) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (CAP_MB << 20, CAP_MB << 20))

    env = dict(
        os.environ, PYTHONPATH=str(REPO / "src"), OPENBLAS_NUM_THREADS="1", COCOKIT_QUIET="1"
    )
    return subprocess.run(
        [sys.executable, *args],
        preexec_fn=cap,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.json"
    make_big_file(path, n_images=100_000, per_image=20)  # ~ 3x the cap
    return path


def test_streaming_export_under_a_memory_cap(big_file: Path, tmp_path: Path) -> None:
    size_mb = big_file.stat().st_size / 2**20
    assert size_mb > 2.8 * CAP_MB
    out = tmp_path / "out.json"
    code = (
        "import sys; from cocokit.io.coco import write_coco\n"
        "from cocokit.io.stream import open_stream\n"
        "s = open_stream(sys.argv[1], chunk_bytes=4 << 20)\n"
        "write_coco(s, sys.argv[2], image_ids='keep', annotation_ids='keep')\n"
        "print(s.num_annotations)\n"
    )
    r = run_capped(["-c", code, str(big_file), str(out)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == [str(100_000 * 20)]
    # the in-memory path cannot do this under the same cap: the cap is real
    r2 = run_capped(["-c", "import sys, cocokit; cocokit.load(sys.argv[1])", str(big_file)])
    assert r2.returncode != 0 and "MemoryError" in r2.stderr
    # and the streamed output is what the in-memory path writes
    expected = cocokit.to_json(cocokit.load(big_file), image_ids="keep", annotation_ids="keep")
    assert out.read_bytes() == expected


def test_streaming_validate_under_a_memory_cap(big_file: Path) -> None:
    code = (
        "import sys; from cocokit.validate import validate_file\n"
        "r = validate_file(sys.argv[1], stream=True, chunk_bytes=1 << 20, max_problems=10_000)\n"
        "print(len(r.errors))\n"
    )
    r = run_capped(["-c", code, str(big_file)])
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["0"]


def test_cli_stream_switch_same_output(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cocokit.cli import app

    src = DATA / "tiny_coco_val2017.json"
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    runner = CliRunner()
    for out, flag in ((a, "--stream"), (b, "--no-stream")):
        res = runner.invoke(app, ["export", str(src), "-o", str(out), flag, "-q"])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    res_s = runner.invoke(app, ["info", str(src), "--json", "--stream"])
    res_m = runner.invoke(app, ["info", str(src), "--json", "--no-stream"])
    assert res_s.exit_code == 0 and res_s.output == res_m.output
    assert json.loads(res_s.output)["annotations"] == 136


@pytest.mark.parametrize(
    "args",
    [
        ["-d", "person", "--min-area", "500", "--drop-negatives"],
        ["-c", "cat", "-c", "dog", "-c", "2", "--crowd", "drop"],
        [
            "--min-width",
            "20",
            "--min-height",
            "10",
            "--max-area",
            "1e5",
            "--annotation-ids",
            "auto",
        ],
    ],
)
def test_streaming_filter_equals_in_memory_filter(args: list[str], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cocokit.cli import app

    src = REAL / "coco-mini" / "annotations" / "instances_val2017.json"
    if not src.exists():
        pytest.skip(f"real data not available: {src}")
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    runner = CliRunner()
    for out, flag in ((a, "--stream"), (b, "--no-stream")):
        res = runner.invoke(app, ["filter", str(src), "-o", str(out), *args, flag, "-q"])
        assert res.exit_code == 0, res.output
    assert a.read_bytes() == b.read_bytes()
    assert len(msgspec.json.decode(a.read_bytes())["annotations"]) < 624  # something was cut


def test_streamed_filter_names_a_refused_record_as_in_memory(tmp_path: Path) -> None:
    """filter's result names a refused record by its file and row, streamed or not."""
    from typer.testing import CliRunner

    from cocokit.cli import app

    src = REAL / "coco-mini" / "annotations" / "instances_val2017.json"
    if not src.exists():
        pytest.skip(f"real data not available: {src}")
    doc = json.loads(src.read_text())
    doc["annotations"][15]["bbox"] = [1, 1, -3, 4]
    name = next(c["name"] for c in doc["categories"]
                if c["id"] == doc["annotations"][15]["category_id"])
    bad = tmp_path / "B.json"
    bad.write_text(json.dumps(doc))
    said = []
    for flag in ("--stream", "--no-stream"):
        out = tmp_path / f"f{flag}.json"
        res = CliRunner().invoke(app, ["filter", str(bad), "-o", str(out), "-c", name, flag, "-q"])
        assert isinstance(res.exception, IntegrityError) and not out.exists()
        said.append([ln for ln in str(res.exception).splitlines() if ".bbox:" in ln])
    assert said[0] == said[1] == [
        f"  {bad}: annotations[15].bbox: bbox width and height must be >= 0, found width -3.0 "
        "and height 4.0 in [1.0, 1.0, -3.0, 4.0] [negative-bbox-size]"]


def test_streaming_filter_refuses_image_tests(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cocokit.cli import app

    res = CliRunner().invoke(
        app,
        [
            "filter",
            str(DATA / "tiny_coco_val2017.json"),
            "-o",
            str(tmp_path / "o.json"),
            "--image-glob",
            "*.jpg",
            "--stream",
        ],
    )
    assert res.exit_code != 0
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize(
    "text",
    [
        b"{}",
        b"{}  \n",
        b'{ "images" : [ ] }\n',
        b'{"categories":[{"id":1,"name":"a"}],"annotations":[],"images":[]}',
        b'{"images":[{"id":1,"file_name":"a","width":2,"height":2}],"annotations":'
        b'[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,1,1]}],'
        b'"categories":[{"id":1,"name":"a"}]}',
    ],
)
def test_small_and_empty_documents_stream_like_memory(text: bytes, tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_bytes(text)
    out = tmp_path / "out.json"
    write_coco(open_stream(src, chunk_bytes=16), out)
    assert out.read_bytes() == cocokit.to_json(cocokit.load(src))


def test_no_public_stream_twin_is_left() -> None:
    # one function per operation: it takes a loaded Dataset or a CocoStream (which
    # open_stream, the one opener of a file read in runs, gives)
    import importlib
    import pkgutil

    names = []
    for mod in pkgutil.walk_packages(cocokit.__path__, "cocokit."):
        if ".compat" in mod.name or "._" in mod.name:
            continue
        public = getattr(importlib.import_module(mod.name), "__all__", [])
        names += [f"{mod.name}.{n}" for n in public
                  if (n.endswith("_stream") and n != "open_stream") or n == "slice_file"]
    assert names == []
    assert len(list(pkgutil.walk_packages(cocokit.__path__, "cocokit."))) > 20


def test_write_coco_of_a_stream_refuses_indent(tmp_path: Path) -> None:
    from cocokit import OptionError

    with pytest.raises(OptionError, match="indent"):
        write_coco(open_stream(DATA / "tiny_coco_val2017.json"), tmp_path / "o.json", indent=2)
    assert not (tmp_path / "o.json").exists()
