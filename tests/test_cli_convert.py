"""``cocokit convert``: detection, the loss report in words and in --json, --strict,
usage mistakes (one error line, exit 2, nothing written); once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import cocokit
from cocokit.cli import main
from tests.conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")


def test_convert_reports_losses_in_words_and_json(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = real_path(*MINI)
    assert main(["convert", str(src), "--to", "voc", "-o", str(tmp_path / "voc")]) == 0
    err = capsys.readouterr().err
    assert "619 polygons written as boxes" in err
    assert "5 RLE masks written as boxes" in err
    assert main(["convert", str(tmp_path / "voc"), "--to", "coco", "-o",
                 str(tmp_path / "back.json"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer == {"source": str(tmp_path / "voc"), "target": str(tmp_path / "back.json"),
                      "from": "voc", "to": "coco", "images": 79, "annotations": 624,
                      "losses": []}
    assert main(["convert", str(src), "--to", "labelstudio", "-o", str(tmp_path / "ls"),
                 "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    kinds = {loss["kind"]: loss for loss in answer["losses"]}
    assert kinds["crowd-flag-dropped"] == {
        "kind": "crowd-flag-dropped", "count": 5,
        "message": "crowd flags dropped (written as ordinary objects)"}


@pytest.mark.parametrize("args, message", [
    (["--to", "cvat2"], "--to: expected one of coco, yolo, cvat, dota, voc, labelme, labelstudio"),
    (["--to", "voc", "--from", "pascal"], "--from: expected one of"),
    (["--to", "voc", "--strict"], "refusing a lossy conversion"),
    (["--to", "coco"], "a file path (this names a folder)"),
])
def test_usage_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                        message: str) -> None:
    src = real_path(*MINI)
    out = tmp_path / "out"
    if args == ["--to", "coco"]:
        out.mkdir()
    assert main(["convert", str(src), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_unknown_input_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["convert", str(tmp_path / "notes.txt"), "--to", "voc", "-o",
                 str(tmp_path / "out")]) == 2
    assert "cannot tell its format" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_labelme_to_coco_as_a_subprocess(tmp_path: Path) -> None:
    src = real_path("sahi-testdata", "coco_utils", "terrain2.json")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "cocokit", "convert", str(src), "--to", "coco",
                           "-o", str(tmp_path / "t.json")], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "(coco, from labelme): 1 images, 5 annotations" in proc.stderr
    doc = json.loads((tmp_path / "t.json").read_text())
    assert len(doc["annotations"]) == 5 and doc["categories"][0]["name"] == "car"


# -- CVAT and DOTA through the CLI ---------------------------------------------------------

KEYPOINTS = ("coco-mini", "annotations", "person_keypoints_val2017.json")


def _boxes_dataset() -> cocokit.Dataset:
    """Boxes only, ids 1..N, categories 1..K, no extra keys: nothing CVAT or DOTA lose
    but what their shapes say."""
    b = cocokit.DatasetBuilder()
    car = b.add_category("car", id=1)
    img = b.add_image("a.jpg", 100, 80)
    b.add_annotation(img, car, polygon=[10, 10, 40, 10, 40, 30, 10, 30])
    return b.build()


@pytest.mark.parametrize("fmt, out", [("cvat", "a.xml"), ("dota", "d")])
def test_convert_to_and_from_cvat_and_dota(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           fmt: str, out: str) -> None:
    src = real_path(*MINI)
    ds = cocokit.load(src)
    assert main(["convert", str(src), "--to", fmt, "-o", str(tmp_path / out), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert (answer["from"], answer["to"], answer["images"]) == ("coco", fmt, 79)
    assert "task" not in answer
    kinds = {loss["kind"]: loss["count"] for loss in answer["losses"]}
    assert kinds["image-key-dropped:coco_url"] == 79 if fmt == "cvat" else (
        "image-key-dropped:coco_url" not in kinds)  # DOTA keeps image records in index.json
    # back, the format detected from the input (no --from)
    assert main(["convert", str(tmp_path / out), "--to", "coco", "-o",
                 str(tmp_path / "back.json"), "--json"]) == 0
    back_answer = json.loads(capsys.readouterr().out)
    assert back_answer["from"] == fmt
    back = cocokit.load(tmp_path / "back.json")
    assert back.images.file_name.tolist() == ds.images.file_name.tolist()
    assert sorted(back.categories.name.tolist()) == sorted(ds.categories.name.tolist())
    # boxes of box-only annotations come back within 1e-6 (CVAT <box>; DOTA's 4 corners)
    name_of = dict(zip(ds.categories.id.tolist(), ds.categories.name.tolist(), strict=True))
    got = {(back.images.file_name[back.image_index[r]], back.categories.name_of(
        int(back.annotations.category_id[r])), tuple(np.round(back.annotations.bbox[r], 3)))
        for r in range(len(back.annotations))}
    boxes = np.flatnonzero(ds.annotations.segmentation_kind == 0)
    for r in boxes.tolist():
        key = (ds.images.file_name[ds.image_index[r]], name_of[int(ds.annotations.category_id[r])],
               tuple(np.round(ds.annotations.bbox[r], 3)))
        assert key in got


@pytest.mark.parametrize("fmt, out", [("cvat", "a.xml"), ("dota", "d")])
def test_strict_refuses_lossy_cvat_and_dota(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            fmt: str, out: str) -> None:
    assert main(["convert", str(real_path(*MINI)), "--to", fmt, "-o", str(tmp_path / out),
                 "--strict"]) == 2
    err = capsys.readouterr().err
    assert "refusing a lossy conversion" in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / out).exists()


@pytest.mark.parametrize("fmt, out", [("cvat", "a.xml"), ("dota", "d")])
def test_strict_lets_a_lossless_cvat_and_dota_through(tmp_path: Path, fmt: str,
                                                      out: str) -> None:
    from cocokit.io import formats

    src = tmp_path / "src.json"
    cocokit.save(_boxes_dataset(), src)
    assert main(["convert", str(src), "--to", fmt, "-o", str(tmp_path / out), "-q"]) == 0
    # what cocokit wrote in the format goes back into it with nothing lost
    again_path = tmp_path / f"again-{out}"
    assert main(["convert", str(tmp_path / out), "--to", fmt, "-o", str(again_path),
                 "--strict", "-q"]) == 0
    first, _ = formats.read(tmp_path / out, fmt)
    again, _ = formats.read(again_path, fmt)
    assert again.document() == first.document()


# -- --task through convert ------------------------------------------------------------------


def _rows(folder: Path) -> list[list[str]]:
    return [line.split() for f in sorted((folder / "labels" / "train").glob("*.txt"))
            for line in f.read_text().splitlines()]


def test_convert_to_yolo_pose(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = real_path(*KEYPOINTS)
    ds = cocokit.load(src)
    # pose is the default for categories with keypoints and annotations carrying them
    images = real_path("coco-mini", "val2017")
    for args in ([], ["--task", "pose"]):
        out = tmp_path / f"y{len(args)}"
        assert main(["convert", str(src), "--to", "yolo", "-o", str(out), "--json",
                     "-i", str(images), *args]) == 0
        answer = json.loads(capsys.readouterr().out)
        assert answer["task"] == "pose"
        kinds = {loss["kind"]: loss["count"] for loss in answer["losses"]}
        assert kinds["keypoint-names-in-yaml"] == 1 and "keypoints-dropped" not in kinds
        assert kinds["crowd-skipped"] == int((ds.annotations.iscrowd == 1).sum())
        assert {len(r) for r in _rows(out)} == {5 + 17 * 3}
    assert main(["convert", str(tmp_path / "y0"), "--to", "coco", "-o",
                 str(tmp_path / "back.json"), "-q"]) == 0
    back = cocokit.load(tmp_path / "back.json")
    assert sum(k is not None for k in back.annotations.keypoints) == len(back.annotations) \
        == int((ds.annotations.iscrowd != 1).sum())


def test_convert_to_yolo_obb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = real_path(*MINI)
    ds = cocokit.load(src)
    assert main(["convert", str(src), "--to", "yolo", "--task", "obb", "-o",
                 str(tmp_path / "o"), "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["task"] == "obb"
    rows = _rows(tmp_path / "o")
    assert {len(r) for r in rows} == {9}
    crowd = ds.annotations.iscrowd == 1
    kinds = {loss["kind"]: loss["count"] for loss in answer["losses"]}
    assert len(rows) + kinds.get("no-geometry", 0) == int((~crowd).sum())
    polys = [ds.annotations.record(r)["segmentation"] for r in np.flatnonzero(
        ~crowd & (ds.annotations.segmentation_kind == 1)).tolist()]
    assert kinds["polygon-as-rotated-box"] == sum(
        not (len(p) == 1 and len(p[0]) == 8) for p in polys)
    assert "keypoint-names-in-yaml" not in kinds


@pytest.mark.parametrize("parts, task", [
    (MINI, "segment"),
    (KEYPOINTS, "pose"),
    (("sahi-testdata", "coco_utils", "terrain2_coco.json"), "segment"),
])
def test_default_task(parts: tuple[str, ...], task: str) -> None:
    from cocokit.io.formats.yolo import default_task

    assert default_task(cocokit.load(real_path(*parts))) == task


def test_default_task_of_boxes_is_detect() -> None:
    from cocokit.io.formats.yolo import default_task

    b = cocokit.DatasetBuilder()
    b.add_annotation(b.add_image("a.jpg", 10, 10), b.add_category("car"), bbox=[1, 1, 2, 2])
    assert default_task(b.build()) == "detect"


@pytest.mark.parametrize("args, message", [
    (["--to", "voc", "--task", "pose"], "--task: expected no --task with --to voc"),
    (["--to", "yolo", "--task", "keypoints"], "--task: expected one of detect, segment, pose, obb"),
    (["--to", "yolo", "--task", "pose"], "task: expected a dataset with keypoints"),
    (["--to", "yolo", "--task", "obb", "--strict"], "refusing a lossy conversion"),
    (["--to", "cvat"], "a file path (this names a folder)"),
])
def test_task_and_target_mistakes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  args: list[str], message: str) -> None:
    out = tmp_path / "out"
    if args == ["--to", "cvat"]:
        out.mkdir()
    assert main(["convert", str(real_path(*MINI)), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_library_refuses_a_task_for_another_format(tmp_path: Path) -> None:
    from cocokit.io import formats

    with pytest.raises(cocokit.OptionError, match="a format with tasks"):
        formats.write(_boxes_dataset(), tmp_path / "v", "voc", task="detect")
    assert not (tmp_path / "v").exists()


def _by_file(ds: cocokit.Dataset) -> dict[str, list[tuple[list[float], list[float]]]]:
    """file_name -> the (bbox, keypoints) of its non-crowd annotations, in order."""
    out: dict[str, list[tuple[list[float], list[float]]]] = {
        str(f): [] for f in ds.images.file_name.tolist()}
    for r in np.flatnonzero(ds.annotations.iscrowd != 1).tolist():
        rec = ds.annotations.record(r)
        name = str(ds.images.file_name[ds.image_index[r]])
        out[name].append((list(rec["bbox"]), list(rec.get("keypoints") or [])))
    return out


@pytest.mark.parametrize("with_images", [False, True])
def test_convert_to_yolo_round_trips_through_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], with_images: bool) -> None:
    """The help example: convert writes what import needs to read the labels back (the
    images with -i; without, a one-line note and labels/train/image_sizes.json), and the
    boxes and keypoints come back within YOLO's normalisation precision."""
    src = real_path(*KEYPOINTS)
    out = tmp_path / "yolo"
    images = ["-i", str(real_path("coco-mini", "val2017"))] if with_images else []
    assert main(["convert", str(src), "--to", "yolo", "--task", "pose", "-o", str(out),
                 *images]) == 0
    err = capsys.readouterr().err
    sizes = out / "labels" / "train" / "image_sizes.json"
    notes = [line for line in err.splitlines() if line.startswith("no images written")]
    assert len(notes) == (0 if with_images else 1)
    assert sizes.is_file() != with_images
    assert (out / "images" / "train").is_dir() == with_images
    assert main(["import", str(out), "-f", "yolo", "-o", str(tmp_path / "back.json"),
                 "-q"]) == 0
    before, back = _by_file(cocokit.load(src)), _by_file(cocokit.load(tmp_path / "back.json"))
    assert before.keys() == back.keys() and len(before) == 79
    for name, objects in before.items():
        assert len(back[name]) == len(objects), name
        for (box, kpts), (box2, kpts2) in zip(objects, back[name], strict=True):
            np.testing.assert_allclose(box2, box, rtol=0, atol=1e-9)
            if kpts:
                np.testing.assert_allclose(kpts2, kpts, rtol=0, atol=1e-9)
    # export without images writes the same table, and its note names it
    assert main(["export", str(src), "--format", "yolo", "--task", "pose", "-o",
                 str(tmp_path / "e"), "--image-mode", "none"]) == 0
    assert "labels/train/image_sizes.json" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "e"), "-f", "yolo", "-o", str(tmp_path / "e.json"),
                 "-q"]) == 0
    assert _by_file(cocokit.load(tmp_path / "e.json")) == back
