"""cocokit.evaluate and `cocokit eval`: the backend's own COCOeval numbers, to the last
digit, from loaded data; the options; clear errors."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cocokit
from cocokit.cli import main
from cocokit.errors import InputError, MissingDependency, OptionError
from cocokit.evaluation import evaluate, parse_area_range, parse_max_dets

from .conftest import DATA, real_path

VAL = ("cocoapi-val2014-100", "instances_val2014_100.json")
FAKE = {"bbox": ("cocoapi-val2014-100", "instances_val2014_fakebbox100_results.json"),
        "segm": ("cocoapi-val2014-100", "instances_val2014_fakesegm100_results.json")}
KEYPOINTS = DATA / "coco_mini_person_keypoints_val2017.json"

BACKENDS = ["pycocotools", "faster-coco-eval", "hotcoco"]
MODULES = {"pycocotools": "pycocotools", "faster-coco-eval": "faster_coco_eval",
           "hotcoco": "hotcoco"}


def need(backend: str) -> None:
    if importlib.util.find_spec(MODULES[backend]) is None:
        pytest.skip(f"{backend} is not installed (pip install {backend})")


def own_run(backend: str, gt: Path, res: Path | list[dict[str, Any]], iou_type: str
            ) -> list[float]:
    """The backend's own COCOeval run, from the files, as its users write it."""
    with contextlib.redirect_stdout(io.StringIO()):
        if backend == "pycocotools":
            from pycocotools.coco import COCO
            from pycocotools.cocoeval import COCOeval as Eval
        elif backend == "faster-coco-eval":
            from faster_coco_eval import COCO
            from faster_coco_eval import COCOeval_faster as Eval
        else:
            from hotcoco import COCO
            from hotcoco import COCOeval as Eval
        coco = COCO(str(gt))
        dt = coco.loadRes(str(res) if isinstance(res, Path) else res)
        ev = Eval(coco, dt, iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_stats_equal_the_backends_own_run(backend: str, iou_type: str) -> None:
    need(backend)
    gt, res = real_path(*VAL), real_path(*FAKE[iou_type])
    ev = evaluate(gt, res, iou_type=iou_type, backend=backend)  # type: ignore[arg-type]
    assert ev.stats == own_run(backend, gt, res, iou_type)
    assert len(ev.stats) == 12


def fake_keypoints() -> list[dict[str, Any]]:
    doc = json.loads(KEYPOINTS.read_text())
    rng = np.random.default_rng(1)
    out = []
    for a in doc["annotations"]:
        if not a.get("num_keypoints"):
            continue
        kp = np.asarray(a["keypoints"], np.float64).reshape(-1, 3)
        kp[:, :2] += rng.normal(0, 3, (len(kp), 2))
        kp[:, 2] = 1
        out.append({"image_id": a["image_id"], "category_id": a["category_id"],
                    "keypoints": np.round(kp, 2).ravel().tolist(),
                    "score": round(float(rng.random()), 3)})
    return out


@pytest.mark.parametrize("backend", ["pycocotools", "hotcoco"])
def test_keypoint_stats_equal_the_backends_own_run(backend: str, tmp_path: Path) -> None:
    need(backend)
    recs = fake_keypoints()
    path = tmp_path / "kp.json"
    path.write_text(json.dumps(recs))
    ev = evaluate(KEYPOINTS, path, iou_type="keypoints", backend=backend)  # type: ignore[arg-type]
    assert len(ev.stats) == 10
    assert "area_range_metrics" not in ev.to_dict()  # COCOeval's keypoint ranges, as they are
    assert ev.stats == own_run(backend, KEYPOINTS, path, "keypoints")


def test_evaluate_takes_loaded_data() -> None:
    ds = cocokit.load(real_path(*VAL))
    res = cocokit.load_results(real_path(*FAKE["bbox"]), ds)
    from_paths = evaluate(real_path(*VAL), real_path(*FAKE["bbox"]))
    assert evaluate(ds, res).stats == from_paths.stats
    assert evaluate(ds, res.to_records()).stats == from_paths.stats


def test_per_category_ap_matches_precision() -> None:
    ev = evaluate(real_path(*VAL), real_path(*FAKE["bbox"]), per_category=True)
    assert ev.per_category is not None and len(ev.per_category) == 80
    valid = [c["AP"] for c in ev.per_category if c["AP"] > -1]
    # COCOeval's AP is the mean over the categories (and thresholds) that have ground truth
    assert np.mean(valid) == pytest.approx(ev.stats[0], abs=1e-12)
    assert {"id", "name", "AP", "AP50", "AP75", "AR"} <= set(ev.per_category[0])


def test_max_dets_and_area_ranges_reach_cocoeval() -> None:
    gt, res = real_path(*VAL), real_path(*FAKE["bbox"])
    ev = evaluate(gt, res, max_dets=[1, 5, 10], area_ranges={"tiny": (0, 256.0),
                                                             "small": (0, 30.0**2)})
    with contextlib.redirect_stdout(io.StringIO()):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        coco = COCO(str(gt))
        pe = COCOeval(coco, coco.loadRes(str(res)), "bbox")
        pe.params.maxDets = [1, 5, 10]
        pe.params.areaRng = [[0, 1e10], [0, 900.0], [1024, 9216], [9216, 1e10], [0, 256.0]]
        pe.params.areaRngLbl = ["all", "small", "medium", "large", "tiny"]
        pe.evaluate()
        pe.accumulate()
        pe.summarize()
    assert ev.stats == [float(s) for s in pe.stats]
    tiny = ev.to_dict()["area_range_metrics"]["tiny"]
    p = pe.eval["precision"][:, :, :, 4, -1]
    assert tiny["AP"] == float(np.mean(p[p > -1]))
    assert "small" in ev.to_dict()["area_range_metrics"]  # replaced: reported too


@pytest.mark.parametrize(("text", "iou_type", "expected"), [
    (None, "bbox", (1, 10, 100)),
    ("1,10,50", "bbox", (1, 10, 50)),
    (None, "keypoints", (20,)),
])
def test_parse_max_dets(text: str | None, iou_type: str, expected: tuple[int, ...]) -> None:
    assert parse_max_dets(text, iou_type) == expected


@pytest.mark.parametrize(("text", "iou_type"), [
    ("1,10", "bbox"), ("10,1,100", "bbox"), ("a,b,c", "bbox"), ("0,1,2", "segm"),
    ("1,10,100", "keypoints"),
])
def test_parse_max_dets_refuses(text: str, iou_type: str) -> None:
    with pytest.raises(OptionError, match="--max-dets"):
        parse_max_dets(text, iou_type)


@pytest.mark.parametrize(("text", "expected"), [
    ("tiny=0:256", ("tiny", (0.0, 256.0))),
    ("huge=10000:", ("huge", (10000.0, 1e10))),
])
def test_parse_area_range(text: str, expected: tuple[str, tuple[float, float]]) -> None:
    assert parse_area_range(text) == expected


@pytest.mark.parametrize("text", ["tiny", "tiny=0-5", "=0:5", "x=5:1", "x=a:b"])
def test_parse_area_range_refuses(text: str) -> None:
    with pytest.raises(OptionError, match="--area-range"):
        parse_area_range(text)


def test_unknown_image_is_a_clear_error() -> None:
    ds = cocokit.load(real_path(*VAL))
    bad = [{"image_id": 999999, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}]
    with pytest.raises(InputError, match=r"results\[0\]\.image_id"):
        evaluate(ds, bad)


def test_segm_of_box_results_refused() -> None:
    with pytest.raises(InputError, match="segmentation"):
        evaluate(real_path(*VAL), real_path(*FAKE["bbox"]), iou_type="segm")


def test_missing_backend_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_hotcoco(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("hotcoco"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_hotcoco)
    with pytest.raises(MissingDependency, match=r"cocokit\[eval\]"):
        evaluate(real_path(*VAL), real_path(*FAKE["bbox"]), backend="hotcoco")


# -- the command --------------------------------------------------------------------------


def test_eval_json(capsys: pytest.CaptureFixture[str]) -> None:
    gt, res = real_path(*VAL), real_path(*FAKE["bbox"])
    assert main(["eval", str(gt), str(res), "--json", "--per-category"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"] == own_run("pycocotools", gt, res, "bbox")
    assert len(out["per_category"]) == 80 and len(out["stat_names"]) == 12


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_eval_command_per_backend(capsys: pytest.CaptureFixture[str], backend: str,
                                  iou_type: str) -> None:
    """The command gives the native backends the checked files themselves."""
    need(backend)
    gt, res = real_path(*VAL), real_path(*FAKE[iou_type])
    assert main(["eval", str(gt), str(res), "--iou-type", iou_type, "--backend", backend,
                 "--json", "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stats"] == own_run(backend, gt, res, iou_type)
    assert out["backend"] == backend


def test_eval_text_is_pycocotools_summary(capsys: pytest.CaptureFixture[str]) -> None:
    gt, res = real_path(*VAL), real_path(*FAKE["segm"])
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        coco = COCO(str(gt))
        pe = COCOeval(coco, coco.loadRes(str(res)), "segm")
        pe.evaluate()
        pe.accumulate()
        pe.summarize()
    expected = [line for line in printed.getvalue().splitlines() if "Average" in line]
    assert main(["eval", str(gt), str(res), "--iou-type", "segm", "-q"]) == 0
    assert capsys.readouterr().out.splitlines()[:12] == expected


@pytest.mark.parametrize(("args", "text"), [
    (["--max-dets", "1,2"], "--max-dets"),
    (["--area-range", "nope"], "--area-range"),
    (["--html", "x.html"], "--analyse"),
    (["--backend", "detectron"], "detectron"),
    (["--iou-type", "segm"], "segmentation"),
])
def test_eval_usage_mistakes(capsys: pytest.CaptureFixture[str], args: list[str],
                             text: str) -> None:
    rc = main(["eval", str(real_path(*VAL)), str(real_path(*FAKE["bbox"])), *args])
    err = capsys.readouterr().err
    assert rc == 2 and text in err and "Traceback" not in err


def test_eval_refuses_malformed_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    bad = tmp_path / "r.json"
    bad.write_text('[{"image_id": 42, "category_id": 18, "bbox": [1, 2, 3], "score": 0.5}]')
    assert main(["eval", str(real_path(*VAL)), str(bad)]) == 2
    err = capsys.readouterr().err
    assert "results[0].bbox" in err and err.count("\n") == 1


def test_eval_of_no_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "r.json"
    empty.write_text("[]")
    assert main(["eval", str(real_path(*VAL)), str(empty)]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["evaluate", "Evaluation", "load_results", "Results",
                                  "remap_results", "read_id_map", "write_results"])
def test_public_names(name: str) -> None:
    import cocokit.evaluation

    assert getattr(cocokit, name) is not None and name in cocokit.__all__
    assert callable(getattr(cocokit, name))
