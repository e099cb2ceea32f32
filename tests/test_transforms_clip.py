"""clip: boxes and polygons cut to the image, areas updated, empty annotations dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
import shapely
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder
from cocokit.cli import app
from cocokit.transforms import clip

from .conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")


def one_image(*annotations: dict[str, Any], width: int = 100, height: int = 50
              ) -> cocokit.Dataset:
    b = DatasetBuilder()
    c = b.add_category("x")
    img = b.add_image("a.jpg", width=width, height=height)
    for a in annotations:
        b.add_annotation(img, c, **a)
    return cocokit.load(cocokit.to_json(b.build()))  # as read from a file: raw JSON segmentations


@pytest.mark.parametrize(("ann", "expected"), [
    # half of a square sticks out on the right: the left half stays, area halves
    ({"polygon": [[90, 10, 110, 10, 110, 20, 90, 20]], "bbox": [90, 10, 20, 10], "area": 200},
     {"segmentation": [[90, 10, 90, 20, 100, 20, 100, 10]], "bbox": [90, 10, 10, 10],
      "area": 100}),
    # one ring inside (kept as it is), one crossing: area = 100 + 50 of 350
    ({"polygon": [[10, 10, 20, 10, 20, 20, 10, 20], [95, 30, 120, 30, 120, 40, 95, 40]],
      "bbox": [10, 10, 110, 30], "area": 350},
     {"segmentation": [[10, 10, 20, 10, 20, 20, 10, 20], [95, 30, 95, 40, 100, 40, 100, 30]],
      "bbox": [10, 10, 90, 30], "area": 150}),
    # a U cut below its bridge by the bottom edge (y = 50): one ring, legs shortened
    ({"polygon": [[0, 0, 30, 0, 30, 30, 20, 30, 20, 10, 10, 10, 10, 60, 0, 60]],
      "bbox": [0, 0, 30, 60], "area": 1000},
     {"segmentation": [[0, 0, 0, 50, 10, 50, 10, 10, 20, 10, 20, 30, 30, 30, 30, 0]],
      "bbox": [0, 0, 30, 50], "area": 900}),
    # a box only: w * h of what is left
    ({"bbox": [-10, -10, 20, 20], "area": 400}, {"bbox": [0, 0, 10, 10], "area": 100}),
    # inside: untouched
    ({"bbox": [5.25, 5, 10, 10], "area": 77.5}, {"bbox": [5.25, 5, 10, 10], "area": 77.5}),
])
def test_exact_cases(ann: dict[str, Any], expected: dict[str, Any]) -> None:
    out, _ = clip(one_image(ann))
    rec = out.annotations[0]
    for key, value in expected.items():
        assert rec[key] == value, key


def test_u_shape_cut_into_two_pieces_stays_one_annotation() -> None:
    # a U whose bridge (y -10..0) lies above the image: its two legs (y 0..20) remain
    u = [0, -10, 30, -10, 30, 20, 20, 20, 20, 0, 10, 0, 10, 20, 0, 20]
    out, report = clip(one_image({"polygon": [u], "bbox": [0, -10, 30, 30], "area": 700}))
    rec = out.annotations[0]
    assert len(out.annotations) == 1 and len(rec["segmentation"]) == 2
    pieces = [shapely.Polygon(np.reshape(r, (-1, 2))) for r in rec["segmentation"]]
    assert sorted(p.bounds for p in pieces) == [(0, 0, 10, 20), (20, 0, 30, 20)]
    assert [p.area for p in pieces] == [200, 200]
    assert rec["bbox"] == [0, 0, 30, 20] and rec["area"] == 400
    assert report.changed_annotations == 1


def test_outside_is_dropped_and_degenerate_on_request() -> None:
    ds = one_image(
        {"polygon": [[200, 10, 210, 10, 210, 20]], "bbox": [200, 10, 10, 10], "area": 50},
        {"bbox": [-30, 5, 20, 20], "area": 400},
        {"bbox": [10, 10, 0, 5], "area": 0},  # already degenerate, inside
        {"bbox": [95, 10, 10, 10], "area": 100},
        # a ring collapsed to a line across the left edge: no area, nothing left
        {"polygon": [[-5, 5, 15, 5, 15, 5, -5, 5]], "bbox": [-5, 5, 20, 0], "area": 0})
    out, report = clip(ds)
    assert out.annotations.id.tolist() == [3, 4]
    assert report.dropped_annotations["nothing left inside the image"] == 3
    out, report = clip(ds, drop_degenerate=True)
    assert out.annotations.id.tolist() == [4]
    assert report.dropped_annotations["degenerate: zero width, height or area"] == 1


def test_crowd_rle_is_kept_and_its_box_clipped() -> None:
    rle = mask_utils.encode(np.asfortranarray(np.ones((50, 100), np.uint8)))
    ds = one_image({"rle": {"size": [50, 100], "counts": rle["counts"]},
                    "bbox": [0, 0, 120, 50], "area": 5000})
    out, _ = clip(ds)
    rec = out.annotations[0]
    assert rec["bbox"] == [0, 0, 100, 50] and rec["area"] == 5000
    assert rec["segmentation"] == ds.annotations[0]["segmentation"]


def test_real_polygons_moved_over_the_edge() -> None:
    """coco-mini with every third annotation moved to straddle its image's right edge."""
    doc = json.loads(real_path(*MINI).read_text())
    images = {i["id"]: i for i in doc["images"]}
    moved = set()
    for a in doc["annotations"]:
        if a["iscrowd"] or a["id"] % 3:
            continue
        dx = images[a["image_id"]]["width"] - (a["bbox"][0] + a["bbox"][2] / 2)
        a["bbox"][0] += dx
        a["segmentation"] = [[v + dx if k % 2 == 0 else v for k, v in enumerate(r)]
                             for r in a["segmentation"]]
        moved.add(a["id"])
    ds = cocokit.load(doc)
    before = cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")
    out, report = clip(ds)
    assert cocokit.to_json(ds, image_ids="keep", annotation_ids="keep") == before
    assert report.changed_annotations == len(moved) > 150

    by_id = {a["id"]: a for a in doc["annotations"]}
    raw_out = msgspec.json.decode(cocokit.to_json(out, image_ids="keep", annotation_ids="keep"))
    raw_in = {a["id"]: a for a in msgspec.json.decode(before)["annotations"]}
    errors = []
    for a in raw_out["annotations"]:
        img = images[a["image_id"]]
        w, h = img["width"], img["height"]
        if a["id"] not in moved:
            assert a == raw_in[a["id"]]  # untouched records come out as they went in
            continue
        x, y, bw, bh = a["bbox"]
        assert 0 <= x and 0 <= y and x + bw <= w + 1e-9 and y + bh <= h + 1e-9
        xy = np.concatenate([np.reshape(r, (-1, 2)) for r in a["segmentation"]])
        assert (xy >= 0).all() and (xy[:, 0] <= w).all() and (xy[:, 1] <= h).all()
        # geometry: the clipped parts cover what the parts covered inside the image
        src = by_id[a["id"]]["segmentation"]
        union_in = shapely.union_all([shapely.make_valid(shapely.Polygon(np.reshape(r, (-1, 2))))
                                      for r in src if len(r) >= 6])
        expect = shapely.intersection(union_in, shapely.box(0, 0, w, h))
        got = shapely.union_all([shapely.make_valid(shapely.Polygon(np.reshape(r, (-1, 2))))
                                 for r in a["segmentation"]])
        assert shapely.symmetric_difference(got, expect).area <= 1e-6 * max(expect.area, 1)
        # area: the record's area scaled by the share left, close to pycocotools' count
        rle = mask_utils.merge(mask_utils.frPyObjects(a["segmentation"], h, w))
        errors.append(abs(a["area"] - float(mask_utils.area(rle))) / max(a["area"], 1.0))
    assert np.mean(errors) < 0.03 and np.percentile(errors, 95) < 0.08


def test_nothing_to_clip_returns_the_same_records() -> None:
    ds = cocokit.load(real_path(*MINI))
    out, report = clip(ds)
    assert cocokit.to_json(out, image_ids="keep", annotation_ids="keep") == cocokit.to_json(
        ds, image_ids="keep", annotation_ids="keep")
    assert report.changed_annotations == 0 and report.total_dropped_annotations == 0


def test_cli_in_process(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    cocokit.save(one_image({"bbox": [90, 10, 20, 10], "area": 200},
                           {"bbox": [10, 10, 0, 0], "area": 0}),
                 src, image_ids="keep", annotation_ids="keep")
    out = tmp_path / "out.json"
    result = CliRunner().invoke(app, ["clip", str(src), "-o", str(out), "--drop-degenerate"])
    assert result.exit_code == 0, result.output
    assert [a["bbox"] for a in cocokit.load(out).annotations] == [[90, 10, 10, 10]]


def test_cli_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "clipped.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "clip", str(real_path(*MINI)), "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "clip: 79 -> 79 images" in proc.stderr
    assert msgspec.json.decode(out.read_bytes()) == msgspec.json.decode(
        cocokit.to_json(cocokit.load(real_path(*MINI)), image_ids="keep", annotation_ids="keep"))
