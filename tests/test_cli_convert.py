"""``cocokit convert``: detection, the loss report in words and in --json, --strict,
usage mistakes (one error line, exit 2, nothing written); once as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
