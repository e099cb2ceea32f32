"""Results as columns (cocokit.io.results): reading, the checks by JSON path, writing back,
and the commands that take a results file (validate --results, info, stats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit.cli import main
from cocokit.errors import InputError, JSONSyntaxError
from cocokit.io.results import Results, check_results, load_results, read_results, write_results

from .conftest import real_path

VAL = ("cocoapi-val2014-100", "instances_val2014_100.json")
BBOX = ("cocoapi-val2014-100", "instances_val2014_fakebbox100_results.json")
SEGM = ("cocoapi-val2014-100", "instances_val2014_fakesegm100_results.json")

GOOD = {"image_id": 1, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": 0.5}


def dataset() -> cocokit.Dataset:
    return cocokit.read_coco({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80}],
        "annotations": [],
        "categories": [{"id": 1, "name": "cat"}],
    })


def with_(**changes: Any) -> dict[str, Any]:
    rec = dict(GOOD)
    for k, v in changes.items():
        if v is ...:
            rec.pop(k)
        else:
            rec[k] = v
    return rec


# -- real files ------------------------------------------------------------------------


@pytest.mark.parametrize("name", [BBOX, SEGM])
def test_real_results_load_as_columns(name: tuple[str, str]) -> None:
    path = real_path(*name)
    raw = json.loads(path.read_text())
    res = load_results(path, cocokit.load(real_path(*VAL)))
    assert len(res) == len(raw)
    assert res.image_id.dtype == np.int64 and res.bbox.shape == (len(raw), 4)
    assert res.image_id.tolist() == [r["image_id"] for r in raw]
    assert res.score.tolist() == [r["score"] for r in raw]
    assert np.isfinite(res.bbox).all()


def test_segm_results_box_computed_as_loadres() -> None:
    """A result with only a segmentation gets pycocotools' toBbox, and is written back
    without it (as read)."""
    from pycocotools import mask

    path = real_path(*SEGM)
    raw = json.loads(path.read_text())
    res = load_results(path)
    assert res.computed.all()
    expected = mask.toBbox([dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())
                            for r in raw[:20]])
    np.testing.assert_array_equal(res.bbox[:20], expected)
    assert res.to_records() == raw


def test_round_trip_keeps_extra_keys(tmp_path: Path) -> None:
    recs = [with_(track_id=7, attributes={"occluded": True}),
            with_(segmentation=[[0, 0, 10, 0, 10, 10]], image_id=1)]
    res = load_results(recs)
    assert res.extra[0] == {"track_id": 7, "attributes": {"occluded": True}}
    out = tmp_path / "r.json"
    write_results(res, out)
    assert json.loads(out.read_text()) == recs


def test_results_files_gzipped_and_at_urls(tmp_path: Path, memory_fs: Any) -> None:
    """Results are read by the one annotation-file reader: .json.gz and fsspec URLs."""
    recs = [with_(track_id=7), with_(image_id=1, score=0.25)]
    gz = tmp_path / "r.json.gz"
    write_results(load_results(recs), gz)
    assert gz.read_bytes()[:2] == b"\x1f\x8b"
    assert load_results(gz).to_records() == recs
    fs, root = memory_fs
    fs.pipe(f"{root}/r.json", json.dumps(recs).encode())
    assert load_results(f"memory://{root}/r.json").to_records() == recs


def test_take_and_len() -> None:
    res = load_results([with_(score=0.1), with_(score=0.9), with_(score=0.5)])
    part = res.take(np.array([2, 0]))
    assert len(part) == 2 and part.score.tolist() == [0.5, 0.1]
    assert res.take(res.score > 0.4).score.tolist() == [0.9, 0.5]


def test_keypoint_results_box_from_keypoints() -> None:
    res = load_results([{"image_id": 1, "category_id": 1, "score": 0.9,
                         "keypoints": [10, 20, 2, 30, 5, 2, 15, 40, 1]}])
    assert res.bbox[0].tolist() == [10, 5, 20, 35]
    assert "bbox" not in res.to_records()[0]


def test_fast_read_of_many_results(tmp_path: Path) -> None:
    """360k detections decode in well under a second of CPU (typed msgspec decode,
    columns)."""
    import time

    rng = np.random.default_rng(0)
    n = 360_000
    boxes = np.round(rng.random((n, 4)) * 300, 2)
    recs = [{"image_id": int(i), "category_id": int(c), "bbox": b, "score": float(s)}
            for i, c, b, s in zip(rng.integers(1, 5000, n).tolist(),
                                  rng.integers(1, 91, n).tolist(), boxes.tolist(),
                                  np.round(rng.random(n), 3).tolist(), strict=True)]
    path = tmp_path / "big.json"
    path.write_bytes(msgspec.json.encode(recs))
    start = time.process_time()  # CPU time: the machine is shared, wall time is not ours
    res = load_results(path)
    took = time.process_time() - start
    assert len(res) == n and res.bbox.tolist()[:3] == boxes.tolist()[:3]
    assert took < 2.0, f"{took:.2f} s CPU"  # ~0.45 s on the 2-core dev machine


# -- malformed results: one clear error with its path ------------------------------------

MALFORMED: list[tuple[str, Any, str, str]] = [
    ("missing image_id", [with_(image_id=...)], "results[0].image_id", "missing-field"),
    ("missing category_id", [with_(category_id=...)], "results[0].category_id",
     "missing-field"),
    ("missing score", [with_(score=...)], "results[0].score", "missing-field"),
    ("no geometry", [with_(bbox=...)], "results[0]", "missing-geometry"),
    ("string image_id", [with_(image_id="1")], "results[0].image_id", "bad-type"),
    ("boolean category_id", [with_(category_id=True)], "results[0].category_id", "bad-type"),
    ("float image_id", [with_(image_id=1.5)], "results[0].image_id", "bad-type"),
    ("string score", [with_(score="high")], "results[0].score", "bad-type"),
    ("bbox of 3", [with_(bbox=[1, 2, 3])], "results[0].bbox", "bad-bbox"),
    ("bbox of strings", [with_(bbox=["1", 2, 3, 4])], "results[0].bbox", "bad-bbox"),
    ("bbox an object", [with_(bbox={"x": 1})], "results[0].bbox", "bad-bbox"),
    ("negative width", [with_(bbox=[0, 0, -1, 4])], "results[0].bbox", "negative-bbox-size"),
    ("negative height", [GOOD, with_(bbox=[0, 0, 1, -4])], "results[1].bbox",
     "negative-bbox-size"),
    ("infinite box", b'[{"image_id":1,"category_id":1,"bbox":[0,0,1e999,4],"score":0.5}]',
     "results[0].bbox", "non-finite"),
    ("score above 1", [with_(score=1.5)], "results[0].score", "score-out-of-range"),
    ("negative score", [GOOD, GOOD, with_(score=-0.1)], "results[2].score",
     "score-out-of-range"),
    ("record not an object", [GOOD, [1, 2, 3]], "results[1]", "record-not-object"),
    ("bad polygon", [with_(bbox=..., segmentation=[[1, 2, 3]])],
     "results[0].segmentation[0]", "bad-polygon"),
    ("bad rle", [with_(bbox=..., segmentation={"size": [10], "counts": "abc"})],
     "results[0].segmentation.size", "bad-rle"),
    ("segmentation a string", [with_(segmentation="mask")], "results[0].segmentation",
     "bad-segmentation"),
]


@pytest.mark.parametrize(("records", "path", "code"),
                         [pytest.param(r, p, c, id=i) for i, r, p, c in MALFORMED])
def test_malformed_results_name_the_path(records: Any, path: str, code: str) -> None:
    src = records if isinstance(records, bytes) else msgspec.json.encode(records)
    report = check_results(src)
    assert not report.ok
    assert report.errors[0].path == path and report.errors[0].code == code
    with pytest.raises(InputError) as e:
        load_results(src)
    assert e.value.path == path


@pytest.mark.parametrize("at", [1234, 21_234])  # the second past the first 20,000 texts
@pytest.mark.parametrize(("segmentation", "tail", "code"), [
    ([[1, 2, 3, 4, 5]], ".segmentation[0]", "bad-polygon"),
    ([[0, 0, 10, 0, 10, 10], [1, 2, "3", 4, 5, 6]], ".segmentation[1]", "bad-polygon"),
    ({"size": [10], "counts": "abc"}, ".segmentation.size", "bad-rle"),
    ("mask", ".segmentation", "bad-segmentation"),
])
def test_a_bad_segmentation_among_many_is_named(at: int, segmentation: Any, tail: str,
                                                 code: str) -> None:
    records = [with_(segmentation=[[0, 0, 10, 0, 10, float(i)]]) for i in range(25_000)]
    records[at] = with_(segmentation=segmentation)
    data = msgspec.json.encode(records)
    report = check_results(data)
    assert [(p.code, p.path) for p in report.problems] == [(code, f"results[{at}]{tail}")]
    with pytest.raises(InputError) as e:
        load_results(data)
    assert e.value.path == f"results[{at}]{tail}"
    assert [(p.code, p.path) for p in check_results(records).problems] == [
        (code, f"results[{at}]{tail}")]


@pytest.mark.parametrize(("changes", "path", "code"), [
    ({"image_id": 99}, "results[0].image_id", "dangling-image-id"),
    ({"category_id": 5}, "results[0].category_id", "dangling-category-id"),
])
def test_results_checked_against_the_dataset(changes: dict[str, Any], path: str,
                                             code: str) -> None:
    report = check_results([with_(**changes)], dataset())
    assert [(p.path, p.code) for p in report.errors] == [(path, code)]
    assert check_results([with_(**changes)]).ok  # without the dataset: nothing to say
    with pytest.raises(InputError, match=r"results\[0\]"):
        load_results([with_(**changes)], dataset())


def test_every_problem_is_reported_in_record_order() -> None:
    report = check_results([with_(score=2.0), with_(image_id="x"), with_(bbox=[0, 0, -1, 1])])
    assert [p.path for p in report.errors] == ["results[0].score", "results[1].image_id",
                                               "results[2].bbox"]


@pytest.mark.parametrize(("data", "error", "match"), [
    (b"", JSONSyntaxError, "line 1"),
    (b'[{"image_id": 1,', JSONSyntaxError, "input ended"),
    (b'{"images": []}', InputError, "COCO dataset"),
    (b'"results"', InputError, "JSON array"),
])
def test_documents_that_are_no_results_list(data: bytes, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        load_results(data)


def test_results_from_records_raises_with_path() -> None:
    with pytest.raises(InputError, match=r"results\[1\]\.score"):
        Results.from_records([GOOD, with_(score=None)])
    with pytest.raises(InputError, match=r"results\[0\]\.score"):
        Results.from_records([with_(score=3.0)])
    assert len(Results.from_records([GOOD])) == 1


def test_results_from_records_computes_missing_boxes() -> None:
    res = Results.from_records([with_(bbox=..., segmentation=[[10, 20, 30, 20, 30, 50]])],
                               source="mine")
    assert res.bbox[0].tolist() == [10, 20, 20, 30] and res.source == "mine"
    assert res.computed.tolist() == [True]


def test_missing_file() -> None:
    with pytest.raises(InputError, match="no such file"):
        load_results("/nonexistent/results.json")


def test_read_results_report_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_bytes(msgspec.json.encode([with_(score=3)]))
    res, report = read_results(path)
    assert report.source == str(path) and not report.ok
    assert res is not None  # well-formed records still make columns


# -- commands on a results file ----------------------------------------------------------


def write(path: Path, records: Any) -> Path:
    path.write_bytes(msgspec.json.encode(records))
    return path


def test_validate_results_against_ground_truth(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--results", str(real_path(*BBOX)), str(real_path(*VAL))]) == 0
    assert "valid: 0 error(s)" in capsys.readouterr().err


@pytest.mark.parametrize(("records", "rc", "text"), [
    ([GOOD], 0, "valid"),
    ([with_(image_id=2)], 1, "results[0].image_id"),
    ([with_(score=7)], 1, "score-out-of-range"),
])
def test_validate_results_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     records: Any, rc: int, text: str) -> None:
    gt = tmp_path / "gt.json"
    cocokit.save(dataset(), gt)
    assert main(["validate", "--results", str(write(tmp_path / "r.json", records)),
                 str(gt)]) == rc
    out = capsys.readouterr()
    assert text in out.out + out.err and "Traceback" not in out.err


def test_validate_a_results_file_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    path = write(tmp_path / "r.json", [GOOD, with_(bbox=[0, 0, -2, 2])])
    assert main(["validate", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"][0]["path"] == "results[1].bbox"


def test_validate_results_unreadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gt = tmp_path / "gt.json"
    cocokit.save(dataset(), gt)
    bad = tmp_path / "r.json"
    bad.write_text("[{")
    assert main(["validate", "--results", str(bad), str(gt)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


@pytest.mark.parametrize("command", ["info", "stats"])
def test_info_and_stats_of_a_results_file(command: str, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    path = real_path(*BBOX)
    raw = json.loads(path.read_text())
    assert main([command, str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "results" and out["detections"] == len(raw)
    counts: dict[int, int] = {}
    for r in raw:
        counts[r["category_id"]] = counts.get(r["category_id"], 0) + 1
    assert {c["id"]: c["detections"] for c in out["per_category"]} == counts
    assert sum(out["score_histogram"]) == len(raw)
    assert main([command, str(path)]) == 0
    assert "detections" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["info", "stats", "validate"])
def test_a_gzipped_or_remote_results_file_is_told_from_a_dataset(
        command: str, tmp_path: Path, memory_fs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = json.loads(real_path(*BBOX).read_text())
    gz = tmp_path / "r.json.gz"
    write_results(load_results(raw), gz)
    fs, root = memory_fs
    fs.pipe(f"{root}/r.json", json.dumps(raw).encode())
    for source in [str(gz), f"memory://{root}/r.json"]:
        assert main([command, source, "--json"]) == 0, capsys.readouterr().err
        out = json.loads(capsys.readouterr().out)
        if command == "validate":
            assert out["ok"] is True
        else:
            assert out["kind"] == "results" and out["detections"] == len(raw)


def test_stats_html_of_results_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", str(real_path(*BBOX)), "--html", str(tmp_path / "r.html")]) == 2
    assert "eval" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("records", "path"),
                         [pytest.param(r, p, id=i) for i, r, p, _ in MALFORMED])
def test_eval_of_malformed_results_is_one_error_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], records: Any, path: str) -> None:
    gt = tmp_path / "gt.json"
    cocokit.save(dataset(), gt)
    bad = tmp_path / "r.json"
    bad.write_bytes(records if isinstance(records, bytes) else msgspec.json.encode(records))
    assert main(["eval", str(gt), str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and path in err and "Traceback" not in err


def test_eval_as_a_real_process(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .conftest import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "cocokit", "eval", str(real_path(*VAL)),
                           str(real_path(*BBOX)), "--json"], capture_output=True, text=True,
                          env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # nothing the backend prints reaches stdout
    assert len(out["stats"]) == 12 and 0 < out["stats"][0] < 1
