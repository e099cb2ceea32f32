"""``diff`` (cocokit.quality.diff): what changed between two versions of a dataset."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cocokit.cli import main
from cocokit.errors import OptionError
from cocokit.io.coco import read_coco
from cocokit.quality.diff import diff_datasets
from cocokit.quality.pairs import box_iou

from .conftest import real_path
from .test_cli_usage import run


def _doc() -> dict[str, Any]:
    return {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 80},
                   {"id": 2, "file_name": "b.jpg", "width": 50, "height": 50}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10.0, 10.0, 20.0, 20.0],
             "area": 400.0, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50.0, 10.0, 20.0, 20.0],
             "area": 400.0, "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 2, "bbox": [5.0, 5.0, 10.0, 10.0],
             "area": 100.0, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"}],
    }


def _edit(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(_doc())
    change(doc)
    return doc


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def go(doc: dict[str, Any]) -> None:
        target = doc
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return go


# (what, the change, the kind that sees it, a field of its one entry)
CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, dict[str, Any]]] = [
    ("image added", lambda d: d["images"].append(
        {"id": 3, "file_name": "c.jpg", "width": 9, "height": 9}), "images_added",
     {"file_name": "c.jpg", "b": "images[2]"}),
    ("image removed", lambda d: (d["images"].pop(1), d["annotations"].pop(2)),
     "images_removed", {"file_name": "b.jpg"}),
    ("image resized", _set(["images", 0, "width"], 101), "images_changed",
     {"file_name": "a.jpg", "keys": ["width"]}),
    ("image extra key", _set(["images", 1, "license"], 4), "images_changed",
     {"keys": ["license"]}),
    ("annotation moved", _set(["annotations", 1, "bbox"], [52.0, 10.0, 20.0, 20.0]),
     "annotations_moved", {"a": "annotations[1]", "b": "annotations[1]",
                           "old_bbox": [50.0, 10.0, 20.0, 20.0]}),
    ("annotation area", _set(["annotations", 0, "area"], 390.0), "annotations_changed",
     {"a": "annotations[0]", "keys": ["area"]}),
    ("annotation id", _set(["annotations", 2, "id"], 30), "annotations_changed",
     {"keys": ["id"]}),
    ("annotation removed", lambda d: d["annotations"].pop(0), "annotations_removed",
     {"a": "annotations[0]", "category_id": 1}),
    ("annotation added", lambda d: d["annotations"].append(
        {"id": 9, "image_id": 2, "category_id": 1, "bbox": [1.0, 1.0, 4.0, 4.0],
         "area": 16.0, "iscrowd": 0}), "annotations_added",
     {"b": "annotations[3]", "file_name": "b.jpg"}),
    ("category renamed", _set(["categories", 1, "name"], "wolf"), "categories_renamed",
     {"id": 2, "old": "dog", "new": "wolf"}),
    ("category added", lambda d: d["categories"].append({"id": 3, "name": "cow"}),
     "categories_added", {"id": 3, "name": "cow"}),
    ("category removed", lambda d: (d["categories"].pop(1), d["annotations"].pop(2)),
     "categories_removed", {"id": 2}),
    ("category supercategory", _set(["categories", 0, "supercategory"], "animal"),
     "categories_changed", {"id": 1, "keys": ["supercategory"]}),
]


@pytest.mark.parametrize(("what", "change", "kind", "entry"), CASES, ids=[c[0] for c in CASES])
def test_each_kind(what: str, change: Callable[[dict[str, Any]], None], kind: str,
                   entry: dict[str, Any]) -> None:
    d = diff_datasets(read_coco(_doc()), read_coco(_edit(change)))
    counts = d.counts()
    seen = {k: v for k, v in counts.items() if v}
    extra = {"images_removed": {"annotations_removed"},
             "categories_removed": {"annotations_removed"}}.get(kind, set())
    assert set(seen) == {kind} | extra and seen[kind] == 1
    got = getattr(d, kind)[0]
    assert {k: got[k] for k in entry} == entry


def _far(doc: dict[str, Any], new_id: int) -> None:
    doc["annotations"][1]["bbox"] = [70.0, 50.0, 20.0, 20.0]
    doc["annotations"][1]["id"] = new_id


def test_a_box_moved_far_under_another_id_is_removed_and_added() -> None:
    b = _edit(lambda d: _far(d, 20))
    d = diff_datasets(read_coco(_doc()), read_coco(b))
    assert (len(d.annotations_moved), len(d.annotations_removed), len(d.annotations_added)) == (
        0, 1, 1)
    loose = diff_datasets(read_coco(_doc()), read_coco(b), iou=0.0001)
    assert len(loose.annotations_moved) == 0  # no overlap at all: still not a move


def test_a_box_moved_far_under_its_id_is_a_move() -> None:
    d = diff_datasets(read_coco(_doc()), read_coco(_edit(lambda d: _far(d, 2))))
    assert [(m["a"], m["iou"], m["keys"]) for m in d.annotations_moved] == [
        ("annotations[1]", 0.0, ["bbox"])]
    assert not d.annotations_removed and not d.annotations_added


def _boxes_doc(rows: list[tuple[int, int, list[float]]], first_id: int = 100
               ) -> dict[str, Any]:
    return {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 99, "height": 99}
                       for i in (1, 2)],
            "annotations": [{"id": first_id + k, "image_id": i, "category_id": c, "bbox": box,
                             "area": 1.0, "iscrowd": 0} for k, (i, c, box) in enumerate(rows)],
            "categories": [{"id": -1, "name": "m"}, {"id": 1, "name": "p"}]}


def _greedy_moves(a: list[tuple[int, int, list[float]]], b: list[tuple[int, int, list[float]]],
                  iou: float) -> list[tuple[int, int]]:
    """Every pair of one (image, category) at ``iou`` or more, best first, then by row."""
    cand = []
    for i, (ia, ca, ba) in enumerate(a):
        for j, (ib, cb, bb) in enumerate(b):
            v = float(box_iou(np.array(ba), np.array(bb))[0])
            if (ia, ca) == (ib, cb) and v >= iou:
                cand.append((-v, i, j))
    used_a: set[int] = set()
    used_b: set[int] = set()
    moves = []
    for _, i, j in sorted(cand):
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            moves.append((i, j))
    return sorted(moves)


@pytest.mark.parametrize("seed", range(6))
def test_boxes_matched_by_iou_are_the_greedy_best_of_every_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = [(int(rng.integers(1, 3)), int(rng.choice([-1, 1])),
          (rng.integers(0, 8, 4) * 2.0 + [0, 0, 1, 1]).tolist()) for _ in range(60)]
    # every box moved (no exact match), under other ids, by whole steps: ties of IoU
    b = [(i, c, [x + float(rng.choice([-1, 1])), y + float(rng.integers(-1, 2)), w, h])
         for i, c, (x, y, w, h) in a[:50]]
    for iou in (0.5, 0.25, 1.0):
        d = diff_datasets(read_coco(_boxes_doc(a)), read_coco(_boxes_doc(b, 1000)), iou=iou)
        got = sorted((int(m["a"][12:-1]), int(m["b"][12:-1])) for m in d.annotations_moved)
        assert got == _greedy_moves(a, b, iou)


def test_groups_of_a_negative_category_id_stay_apart() -> None:
    a = _boxes_doc([(1, 1, [0.0, 0.0, 4.0, 4.0])])
    b = _boxes_doc([(2, -1, [0.0, 0.0, 4.0, 5.0])])
    d = diff_datasets(read_coco(a), read_coco(b))
    assert (len(d.annotations_moved), len(d.annotations_removed), len(d.annotations_added)) == (
        0, 1, 1)


@pytest.mark.parametrize("iou", [0.0, -0.5, 1.5, float("nan")])
def test_iou_out_of_range(iou: float) -> None:
    with pytest.raises(OptionError, match="iou: expected a number in"):
        diff_datasets(read_coco(_doc()), read_coco(_doc()), iou=iou)


def test_renamed_file_is_an_image_removed_and_added() -> None:
    b = _edit(_set(["images", 1, "file_name"], "b2.jpg"))
    counts = diff_datasets(read_coco(_doc()), read_coco(b)).counts()
    assert counts["images_added"] == counts["images_removed"] == 1
    assert counts["annotations_added"] == counts["annotations_removed"] == 1


def test_the_same_file_has_no_difference() -> None:
    src = real_path("coco-mini", "annotations", "instances_val2017.json")
    assert diff_datasets(read_coco(src), read_coco(src)).same


def test_reordered_records_are_the_same() -> None:
    b = copy.deepcopy(_doc())
    b["annotations"].reverse()
    b["images"].reverse()
    assert diff_datasets(read_coco(_doc()), read_coco(b)).same


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_doc()))
    b.write_text(json.dumps(_edit(_set(["annotations", 0, "area"], 1.0))))
    assert main(["diff", str(a), str(a), "-q"]) == 0
    capsys.readouterr()
    assert main(["diff", str(a), str(b), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["a", "b", "same", "counts", "images", "annotations", "categories"]
    assert out["counts"]["annotations_changed"] == 1
    assert list(out["annotations"]) == ["added", "removed", "moved", "changed"]


@pytest.mark.parametrize(("args", "says"), [
    (["--iou", "0"], "--iou: expected a number in (0, 1]"),
    (["--iou", "x"], "--iou"),
])
def test_usage_mistakes(tmp_path: Path, args: list[str], says: str) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_doc()))
    done = run("diff", str(a), str(a), *args)
    assert done.returncode == 2 and says in done.stderr
    assert done.stderr.startswith("error:") and "Traceback" not in done.stderr


def test_a_file_that_is_not_coco(tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text(json.dumps(_doc()))
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    done = run("diff", str(a), str(bad))
    assert done.returncode == 2 and done.stderr.startswith("error:") and "bad.json" in done.stderr
