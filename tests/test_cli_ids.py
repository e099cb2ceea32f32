"""Ids and category id 0 on every command that writes COCO, run as a subprocess.

* An output with category id 0 (Datumaro and some trainers read 0 as background) gets
  one ``warning:`` line on stderr, whatever the command and however it writes (in
  memory, streamed, several files, tiles, augmented copies, an import).
* Ids that repeat cannot be kept (the default): one problem line per repeat, naming the
  way out in the library's words and the CLI's, with no second copy of the hint.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import DATA, REPO, real_path

TINY = DATA / "tiny_coco_val2017.json"  # 6 images with COCO ids, 136 annotations
KEYPOINTS = DATA / "coco_mini_person_keypoints_val2017.json"
TERRAIN = ("sahi-testdata", "coco_utils", "terrain2_coco.json")  # 1 image, 5 polygons
ZERO = re.compile(r"warning: categories\[\d+\]\.id: category id 0 \(")


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "cocokit", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    proc = run(*args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def zero_warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ZERO.match(line)]


def with_category_zero(src: Path, dest: Path) -> Path:
    """``src`` with its first category's id made 0 (its annotations follow)."""
    doc: dict[str, Any] = json.loads(src.read_text(encoding="utf-8"))
    old = doc["categories"][0]["id"]
    assert all(c["id"] != 0 for c in doc["categories"])
    doc["categories"][0]["id"] = 0
    for a in doc["annotations"]:
        if a["category_id"] == old:
            a["category_id"] = 0
    dest.write_text(json.dumps(doc), encoding="utf-8")
    return dest


# -- category id 0: one warning line, every command -----------------------------------

# {in}: TINY with person as category 0; {out}: an output file; {dir}: an output folder
ZERO_CASES = [
    ("export", ["export", "{in}", "-o", "{out}", "--no-stream"]),
    ("export-stream", ["export", "{in}", "-o", "{out}", "--stream"]),
    ("filter", ["filter", "{in}", "-o", "{out}", "--min-area", "1", "--no-stream"]),
    ("filter-stream", ["filter", "{in}", "-o", "{out}", "--min-area", "1", "--stream"]),
    ("sample", ["sample", "{in}", "-o", "{out}", "--every", "2"]),
    ("split", ["split", "{in}", "-o", "{dir}", "--ratio", "a=0.5", "--ratio", "b=0.5"]),
    ("categories", ["categories", "{in}", "-o", "{out}", "--sort", "name"]),
    ("categories-reindex-0", ["categories", TINY, "-o", "{out}", "--reindex", "0"]),
    ("clip", ["clip", "{in}", "-o", "{out}"]),
    ("merge", ["merge", "{in}", KEYPOINTS, "-o", "{out}"]),
]


@pytest.mark.parametrize(("name", "args"), ZERO_CASES, ids=[c[0] for c in ZERO_CASES])
def test_category_zero_warns_once(tmp_path: Path, name: str, args: list[Any]) -> None:
    src = with_category_zero(TINY, tmp_path / "in.json")
    out, folder = tmp_path / "out.json", tmp_path / "parts"
    subs = {"{in}": src, "{out}": out, "{dir}": folder}
    proc = ok(*[subs.get(a, a) if isinstance(a, str) else a for a in args])
    assert len(zero_warnings(proc.stderr)) == 1, proc.stderr
    assert "(person) is read as the background class" in zero_warnings(proc.stderr)[0]
    written = sorted(folder.glob("*.json")) if name == "split" else [out]
    assert len(written) == (2 if name == "split" else 1)
    for path in written:  # the id is written as it is: a warning, not a change
        doc = json.loads(path.read_text(encoding="utf-8"))
        person = [c for c in doc["categories"] if c["name"] == "person"]
        assert person and person[0]["id"] == 0


def test_no_category_zero_no_warning(tmp_path: Path) -> None:
    proc = ok("export", TINY, "-o", tmp_path / "out.json")
    assert zero_warnings(proc.stderr) == [] and "warning:" not in proc.stderr
    proc = ok("categories", TINY, "-o", tmp_path / "one.json", "--reindex", "1")
    assert "warning:" not in proc.stderr


def test_import_warns_on_category_zero(tmp_path: Path) -> None:
    src = with_category_zero(TINY, tmp_path / "in.json")
    ok("export", src, "--format", "yolo", "-o", tmp_path / "yolo", "--image-mode", "none")
    proc = ok("import", tmp_path / "yolo", "--format", "yolo", "-o", tmp_path / "back.json",
              "--sizes", src)
    assert len(zero_warnings(proc.stderr)) == 1, proc.stderr
    doc = json.loads((tmp_path / "back.json").read_text(encoding="utf-8"))
    assert doc["categories"][0]["id"] == 0


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_slice_warns_on_category_zero(tmp_path: Path, stream: str) -> None:
    terrain = real_path(*TERRAIN)
    src = with_category_zero(terrain, tmp_path / terrain.name)
    proc = ok("slice", src, "-i", terrain.parent, "-o", tmp_path / "tiles", "--size", "300",
              "--workers", "1", stream)
    assert len(zero_warnings(proc.stderr)) == 1, proc.stderr
    doc = json.loads((tmp_path / "tiles" / src.name).read_text(encoding="utf-8"))
    assert doc["categories"][0]["id"] == 0 and len(doc["images"]) > 1


def test_augment_warns_on_category_zero(tmp_path: Path) -> None:
    terrain = real_path(*TERRAIN)
    src = with_category_zero(terrain, tmp_path / terrain.name)
    (tmp_path / "flip.yaml").write_text("pipeline:\n  - hflip: {p: 1.0}\n")
    proc = ok("augment", src, "-i", terrain.parent, "-o", tmp_path / "aug", "-p",
              tmp_path / "flip.yaml", "--workers", "1")
    assert len(zero_warnings(proc.stderr)) == 1, proc.stderr


# -- repeated ids under keep: the way out, said once -----------------------------------

HINT = ("ids must be unique: annotation_ids='auto' (CLI: --annotation-ids auto) "
        "renumbers them 1..N")


@pytest.mark.parametrize("stream", ["--no-stream", "--stream"])
def test_repeated_ids_name_the_way_out_once(tmp_path: Path, stream: str) -> None:
    doc = json.loads(TINY.read_text(encoding="utf-8"))
    doc["annotations"][3]["id"] = doc["annotations"][0]["id"]
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    proc = run("export", bad, "-o", tmp_path / "out.json", stream)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    first = doc["annotations"][0]["id"]
    line = (f"annotations[3].id: duplicate annotation id {first} (first at annotations[0]); "
            + HINT)
    assert [ln.strip() for ln in proc.stderr.splitlines() if "duplicate" in ln] == [line], \
        proc.stderr
    assert not (tmp_path / "out.json").exists()


def test_repeated_image_ids_in_augment_name_the_way_out(tmp_path: Path) -> None:
    terrain = real_path(*TERRAIN)
    doc = json.loads(terrain.read_text(encoding="utf-8"))
    doc["images"].append(dict(doc["images"][0]))  # the same image twice, id and all
    src = tmp_path / terrain.name
    src.write_text(json.dumps(doc), encoding="utf-8")
    (tmp_path / "flip.yaml").write_text("pipeline:\n  - hflip: {p: 1.0}\n")
    proc = run("augment", src, "-i", terrain.parent, "-o", tmp_path / "aug", "-p",
               tmp_path / "flip.yaml", "--workers", "1")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert [ln.strip() for ln in proc.stderr.splitlines() if "duplicate" in ln] == [
        "images[1].id: duplicate image id 1 (first at images[0]); ids must be unique: "
        "image_ids='auto' (CLI: --image-ids auto) renumbers them 1..N"], proc.stderr
    assert not (tmp_path / "aug").exists() or not any((tmp_path / "aug").iterdir())
