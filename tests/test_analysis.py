"""The error analysis of `cocokit eval --analyse`: each error type on a case made for it,
crowd regions ignored, the confusion matrix, the worst images, the HTML report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import cocokit
from cocokit.analysis import ERROR_TYPES, analyse_results
from cocokit.cli import main
from cocokit.errors import OptionError

from .conftest import real_path

VAL = ("cocoapi-val2014-100", "instances_val2014_100.json")
BBOX = ("cocoapi-val2014-100", "instances_val2014_fakebbox100_results.json")


def gt(extra: list[dict[str, Any]] | None = None) -> cocokit.Dataset:
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20], "area": 400,
         "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [50, 50, 20, 20], "area": 400,
         "iscrowd": 0},
        {"id": 3, "image_id": 1, "category_id": 1, "bbox": [80, 0, 10, 10], "area": 100,
         "iscrowd": 0},
    ] + (extra or [])
    return cocokit.read_coco({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100},
                   {"id": 2, "file_name": "b.jpg", "width": 100, "height": 100}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    })


def det(cat: int, box: list[float], score: float, image: int = 1) -> dict[str, Any]:
    return {"image_id": image, "category_id": cat, "bbox": box, "score": score}


#: one detection per outcome, by descending score (see the analysis module's order)
CASES = [
    ("tp", det(1, [0, 0, 20, 20], 0.9)),
    ("duplicate", det(1, [0, 0, 20, 20], 0.8)),          # the same object again
    ("classification", det(1, [50, 50, 20, 20], 0.7)),  # on the "b" object, called "a"
    ("localization", det(1, [0, 0, 20, 8], 0.6)),        # IoU 0.4 with its own "a"
    ("both", det(2, [0, 0, 20, 8], 0.5)),                # IoU 0.4 with an "a", called "b"
    ("background", det(2, [30, 30, 5, 5], 0.4)),         # on nothing
]


def test_each_error_type_on_its_case() -> None:
    res = cocokit.load_results([d for _, d in CASES])
    an = analyse_results(gt(), res)
    assert an.true_positives == 1
    assert an.errors == {"duplicate": 1, "localization": 1, "classification": 1, "both": 1,
                         "background": 1, "missed": 1}  # object 3 was never found


@pytest.mark.parametrize(("kind", "detection"), CASES[1:])
def test_one_case_alone(kind: str, detection: dict[str, Any]) -> None:
    """Each case with the true positive in front, so duplicates have something to repeat."""
    res = cocokit.load_results([CASES[0][1], detection])
    an = analyse_results(gt(), res)
    expected = dict.fromkeys(ERROR_TYPES, 0)
    expected[kind] = 1
    # object 2 is accounted for by a classification error; else it is missed too
    expected["missed"] = 1 if kind == "classification" else 2
    assert an.errors == expected


@pytest.mark.parametrize("iscrowd", [1, 2])
def test_crowd_regions_are_ignored(iscrowd: int) -> None:
    """Any iscrowd other than 0 is a crowd, as COCOeval reads it (2 was taken for an
    object: a background error here, and one more ground truth)."""
    crowd = {"id": 4, "image_id": 2, "category_id": 1, "bbox": [0, 0, 100, 100],
             "area": 10000, "iscrowd": iscrowd,
             "segmentation": {"size": [100, 100], "counts": [0, 10000]}}
    res = cocokit.load_results([det(1, [10, 10, 30, 30], 0.9, image=2)])
    an = analyse_results(gt([crowd]), res)
    assert sum(v for k, v in an.errors.items() if k != "missed") == 0
    assert an.true_positives == 0
    assert an.ground_truths == 3


def test_confusion_matrix() -> None:
    res = cocokit.load_results([d for _, d in CASES])
    an = analyse_results(gt(), res)
    m = an.confusion
    assert m.shape == (3, 3)
    assert m[0, 0] == 1          # "a" found as "a"
    assert m[1, 0] == 1          # "b" found as "a"
    assert m[0, 2] == 1          # the third object missed
    assert m[2].sum() == 4       # four detections on no (free) object
    assert m.sum() == len(CASES) + 1


def test_worst_images_first() -> None:
    res = cocokit.load_results([d for _, d in CASES])
    an = analyse_results(gt(), res)
    assert an.worst_images[0]["image_id"] == 1
    assert an.worst_images[0]["errors"] == 6
    assert an.worst_images[0]["false_positives"] == 5


def test_segm_analysis_runs_on_masks() -> None:
    ds = cocokit.load(real_path(*VAL))
    res = cocokit.load_results(real_path("cocoapi-val2014-100",
                                         "instances_val2014_fakesegm100_results.json"), ds)
    an = analyse_results(ds, res, iou_type="segm")
    fp = sum(v for k, v in an.errors.items() if k != "missed")
    assert an.true_positives + fp <= len(res)
    assert an.ground_truths == int((~ds.annotations.crowd).sum())


def test_keypoints_refused() -> None:
    with pytest.raises(OptionError, match="bbox or segm"):
        analyse_results(gt(), cocokit.load_results([CASES[0][1]]), iou_type="keypoints")


def test_tp_count_agrees_with_cocoeval_at_iou_50() -> None:
    """At IoU 0.5, all areas, 100 detections, the true positives are COCOeval's matches."""
    ds = cocokit.load(real_path(*VAL))
    res = cocokit.load_results(real_path(*BBOX), ds)
    ev = cocokit.evaluate(ds, res)
    an = analyse_results(ds, res, evaluation=ev)
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(real_path(*VAL)))
        pe = COCOeval(coco, coco.loadRes(str(real_path(*BBOX))), "bbox")
        pe.evaluate()
    matched = 0
    for e in pe.evalImgs:
        if e is None or e["aRng"] != [0, 1e10]:
            continue
        dt_m = np.asarray(e["dtMatches"])[0]
        dt_ig = np.asarray(e["dtIgnore"])[0].astype(bool)
        matched += int(((dt_m > 0) & ~dt_ig).sum())
    assert an.true_positives == matched


def test_cli_analyse_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    html = tmp_path / "report.html"
    assert main(["eval", str(real_path(*VAL)), str(real_path(*BBOX)), "--analyse", "--json",
                 "--html", str(html), "-q"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["analysis"]["errors"]) == set(ERROR_TYPES)
    text = html.read_text()
    for key in ("fig-errors", "fig-pr_sizes", "fig-pr_categories", "fig-confusion"):
        assert f'id="{key}"' in text
    assert "<script" not in text and "http" not in text.split("<body>")[1]


def test_cli_analyse_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", str(real_path(*VAL)), str(real_path(*BBOX)), "--analyse", "-q"]) == 0
    out = capsys.readouterr().out
    assert "error analysis" in out and "worst image" in out


def test_segm_leaves_out_a_ring_of_two_points() -> None:
    """Masks come from geometry.segmentation_rle, as areas do: a polygon ring of 4 numbers
    encloses nothing and is left out. Handed to pycocotools first in the list it was
    read as a box, and the analysis failed with a TypeError."""
    square = [0, 0, 20, 0, 20, 20, 0, 20]
    res = cocokit.load_results([{**det(1, [0, 0, 20, 20], 0.9), "segmentation": [square]}])
    found = []
    for rings in ([square], [[40, 40, 50, 50], square]):
        ds = cocokit.read_coco({
            "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 20],
                             "area": 400, "iscrowd": 0, "segmentation": rings}],
            "categories": [{"id": 1, "name": "a"}],
        })
        an = analyse_results(ds, res, iou_type="segm")
        found.append((an.true_positives, an.errors))
    assert found[0] == found[1] and found[0][0] == 1


def _cocoeval_matches(doc: dict[str, Any], results: list[dict[str, Any]]) -> int:
    """pycocotools' true positives at IoU 0.5, all areas."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = doc
        coco.createIndex()
        pe = COCOeval(coco, coco.loadRes(results), "bbox")
        pe.evaluate()
    return sum(int(((np.asarray(e["dtMatches"])[0] > 0)
                    & ~np.asarray(e["dtIgnore"])[0].astype(bool)).sum())
               for e in pe.evalImgs if e is not None and e["aRng"] == [0, 1e10])


def test_a_tie_goes_to_the_ground_truth_cocoeval_picks() -> None:
    """A detection overlapping two objects equally takes the last of them, as COCOeval's
    loop keeps it (the analysis took the first): so the next detection, on the second
    object only, is a duplicate and the first object is missed."""
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [2, 0, 10, 10], "area": 100,
             "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "a"}],
    }
    dets = [det(1, [1, 0, 10, 10], 0.9),  # IoU 90/110 with both
            det(1, [4, 0, 10, 10], 0.8)]  # IoU 0.82 with the second, 0.43 with the first
    an = analyse_results(cocokit.read_coco(doc), cocokit.load_results(dets))
    assert an.true_positives == _cocoeval_matches(doc, dets) == 1
    assert an.errors["duplicate"] == 1 and an.errors["missed"] == 1


def test_max_dets_are_per_image_and_category_as_in_cocoeval() -> None:
    """COCOeval keeps the 100 highest-scoring detections of each (image, category): 110
    detections of "a" on 110 objects, then 30 of "b" on 30, all on one image, are 100 + 30
    true positives (the analysis kept 100 per image: the "a" ones only)."""
    boxes = [[14.0 * (k % 14), 14.0 * (k // 14), 10.0, 10.0] for k in range(140)]
    cats = [1] * 110 + [2] * 30
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 200}],
        "annotations": [{"id": k + 1, "image_id": 1, "category_id": c, "bbox": b,
                         "area": 100.0, "iscrowd": 0}
                        for k, (b, c) in enumerate(zip(boxes, cats, strict=True))],
        "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
    }
    dets = [det(c, b, 1.0 - k / 1000) for k, (b, c) in enumerate(zip(boxes, cats, strict=True))]
    an = analyse_results(cocokit.read_coco(doc), cocokit.load_results(dets))
    assert an.true_positives == _cocoeval_matches(doc, dets) == 130
    assert an.errors["missed"] == 10
    assert sum(v for k, v in an.errors.items() if k != "missed") == 0
