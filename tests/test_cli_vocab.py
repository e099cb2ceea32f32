"""One flag vocabulary on every command (README, "Command line"), checked on the installed
``cocokit`` run as a subprocess: the flags each command has, the -o file/folder rules,
the deprecated spellings (hidden, still working, with a note), the id policies and their
summary line, and the JSON that --json prints on stdout."""

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
KEYPOINTS = DATA / "coco_mini_person_keypoints_val2017.json"  # 79 images, 40 negatives
TERRAIN = ("sahi-testdata", "coco_utils", "terrain2_coco.json")  # 1 image, 5 polygons


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "cocokit", *map(str, args)], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def ok(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = run(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc


def doc(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def image_ids(path: Path) -> list[int]:
    return [im["id"] for im in doc(path)["images"]]


def annotation_ids(path: Path) -> list[int]:
    return [a["id"] for a in doc(path)["annotations"]]


def has_flag(help_text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text) is not None


# -- the flags of every command -----------------------------------------------------------

IDS = ["-o", "--output", "--image-ids", "--annotation-ids"]
VOCABULARY = [
    ("info", ["--json"], []),
    ("validate", ["--json"], []),
    ("stats", ["--json", "-o"], []),
    ("export", [*IDS, "--format", "-i", "--images", "--image-mode", "--drop-negatives",
                "--add-split"], ["--ignore-negative-samples", "--image-dir", "--split"]),
    ("import", [*IDS, "--format", "--drop-negatives"], []),
    ("merge", [*IDS, "-i", "--images", "--drop-negatives"], ["--image-root"]),
    ("filter", [*IDS, "--drop-negatives"], ["--drop-empty"]),
    ("sample", [*IDS, "--only-negatives", "--drop-negatives"], ["--negatives"]),
    ("split", [*IDS, "--drop-negatives"], []),
    ("categories", [*IDS, "--drop-negatives"], []),
    ("clip", [*IDS, "--drop-negatives"], []),
    ("slice", [*IDS, "-i", "--images", "--image-format", "--coco-output", "--drop-negatives"],
     ["--format", "--json", "--drop-empty", "--keep-empty"]),
    ("augment", [*IDS, "-i", "--images", "--image-format", "--drop-negatives"],
     ["--format", "--ignore-negative-samples"]),
    ("draw", ["-i", "--images", "-o", "--output", "--image-format"], ["--format"]),
    ("convert", [*IDS, "--to", "-i", "--images"], []),
    ("repair", IDS, []),
]


@pytest.mark.parametrize(("command", "shown", "hidden"), VOCABULARY,
                         ids=[v[0] for v in VOCABULARY])
def test_every_command_speaks_the_vocabulary(command: str, shown: list[str],
                                             hidden: list[str]) -> None:
    text = ok(command, "--help").stdout
    missing = [f for f in shown if not has_flag(text, f)]
    assert not missing, f"{command} --help lacks {missing}"
    visible = [f for f in hidden if has_flag(text, f)]
    assert not visible, f"{command} --help shows the old spellings {visible}"
    if has_flag(text, "--image-ids"):
        # one default for every command that writes COCO: keep
        assert "keep|auto" in text
        assert text.count("[default: keep]") >= 2, text


# -- -o/--output: a file or a folder, as the command says ------------------------------


def _output_cases(tmp: Path) -> list[tuple[list[str | Path], Path]]:
    """(arguments, the path that must not appear) for outputs of the wrong kind."""
    (tmp / "folder").mkdir()
    (tmp / "file.txt").write_text("x")
    imgs = tmp / "folder"
    return [
        (["export", TINY, "-o", f"{tmp / 'newdir'}/"], tmp / "newdir"),
        (["export", TINY, "-o", tmp / "folder"], tmp / "folder" / "never"),
        (["filter", TINY, "-o", f"{tmp / 'f'}{os.sep}", "-c", "person"], tmp / "f"),
        (["merge", TINY, KEYPOINTS, "-o", tmp / "folder"], tmp / "folder" / "never"),
        (["clip", TINY, "-o", f"{tmp / 'c'}/"], tmp / "c"),
        (["import", tmp, "--format", "yolo", "-o", f"{tmp / 'i'}/"], tmp / "i"),
        (["stats", TINY, "-o", f"{tmp / 'r'}/"], tmp / "r"),
        (["split", TINY, "-o", tmp / "x.json", "--ratio", "a=1"], tmp / "x.json"),
        (["split", TINY, "-o", tmp / "file.txt", "--ratio", "a=1"], tmp / "never"),
        (["export", TINY, "--format", "yolo", "-o", tmp / "file.txt"], tmp / "never"),
        (["draw", TINY, "-i", imgs, "-o", tmp / "file.txt"], tmp / "never"),
        (["slice", TINY, "-i", imgs, "-o", tmp / "file.txt"], tmp / "never"),
        (["slice", TINY, "-i", imgs, "-o", tmp / "t", "--coco-output", f"{tmp / 'j'}/"],
         tmp / "t"),
        (["augment", TINY, "-i", imgs, "-o", tmp / "file.txt", "-p", tmp / "none.yaml"],
         tmp / "never"),
    ]


@pytest.mark.parametrize("case", range(14))
def test_output_of_the_wrong_kind_is_refused(tmp_path: Path, case: int) -> None:
    args, absent = _output_cases(tmp_path)[case]
    proc = run(*args)
    assert proc.returncode == 2, (args, proc.stderr)
    assert "Traceback" not in proc.stderr
    option = "--coco-output" if "--coco-output" in args else "-o/--"
    assert option in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not absent.exists()
    assert (tmp_path / "file.txt").read_text() == "x"


def test_output_of_the_right_kind_is_written(tmp_path: Path) -> None:
    ok("export", TINY, "-o", tmp_path / "out.json", "-q")
    ok("split", TINY, "-o", f"{tmp_path / 'parts'}/", "--ratio", "a=0.5", "--ratio", "b=0.5",
       "-q")
    assert (tmp_path / "out.json").is_file()
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == ["a.json", "b.json"]


# -- old spellings: hidden, still working, with one note -------------------------------


def _alias_cases(tmp: Path) -> list[tuple[str, list[Any], list[Any], str]]:
    """(old flag, arguments with it, the same with the new flag, what to compare)."""
    return [
        ("--drop-empty", ["filter", KEYPOINTS, "-o", "{out}", "--drop-empty"],
         ["filter", KEYPOINTS, "-o", "{out}", "--drop-negatives"], "file"),
        ("--ignore-negative-samples",
         ["export", KEYPOINTS, "-o", "{out}", "--ignore-negative-samples"],
         ["export", KEYPOINTS, "-o", "{out}", "--drop-negatives"], "file"),
        ("--negatives", ["sample", KEYPOINTS, "-o", "{out}", "--count", "5", "--negatives"],
         ["sample", KEYPOINTS, "-o", "{out}", "--count", "5", "--only-negatives"], "file"),
        ("--image-root", ["merge", TINY, KEYPOINTS, "-o", "{out}", "--image-root", DATA,
                          "--image-root", DATA],
         ["merge", TINY, KEYPOINTS, "-o", "{out}", "-i", DATA, "-i", DATA], "file"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_deprecated_spelling_works_and_warns(tmp_path: Path, case: int) -> None:
    old_flag, old, new, _ = _alias_cases(tmp_path)[case]
    outs = []
    for k, args in enumerate((old, new)):
        out = tmp_path / f"out{k}.json"
        proc = ok(*[str(out) if a == "{out}" else a for a in args])
        notes = [ln for ln in proc.stderr.splitlines() if " is deprecated; use " in ln]
        if k == 0:
            assert len(notes) == 1 and notes[0].startswith(f"{old_flag} is deprecated; use "), \
                proc.stderr
        else:
            assert notes == []
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    assert len(doc(tmp_path / "out0.json")["images"]) > 0


def test_deprecated_export_yolo_spellings(tmp_path: Path) -> None:
    ann = real_path("tiny-coco-images", "annotations", "instances_train2017.json")
    imgs = real_path("tiny-coco-images", "images", "train2017")
    old = ok("export", ann, "--format", "yolo", "-o", tmp_path / "old", "--image-dir", imgs,
             "--images", "none")
    new = ok("export", ann, "--format", "yolo", "-o", tmp_path / "new", "-i", imgs,
             "--image-mode", "none")
    assert "--image-dir is deprecated; use -i/--images" in old.stderr
    assert "--images none is deprecated; use --image-mode none" in old.stderr
    assert " is deprecated" not in new.stderr

    def labels(root: Path) -> dict[str, bytes]:
        return {p.relative_to(root).as_posix(): p.read_bytes()
                for p in root.rglob("*.txt")}

    assert labels(tmp_path / "old") == labels(tmp_path / "new") != {}
    assert not list((tmp_path / "new").rglob("*.jpg"))  # --image-mode none: no images
    # and back: import makes new records, numbered 1..N under either policy
    for policy in ("keep", "auto"):
        out = tmp_path / f"back-{policy}.json"
        proc = ok("import", tmp_path / "new", "--format", "yolo", "-o", out, "--sizes", ann,
                  "--image-ids", policy)
        n = len(doc(ann)["images"])
        assert image_ids(out) == list(range(1, n + 1))
        assert annotation_ids(out) == list(range(1, len(annotation_ids(out)) + 1))
        assert "image and annotation ids numbered 1..N (new records)" in proc.stderr


def test_deprecated_slice_spellings(tmp_path: Path) -> None:
    src = real_path(*TERRAIN)
    common = ["slice", src, "-i", src.parent, "--size", "300", "--workers", "1"]
    old = ok(*common, "-o", tmp_path / "old", "--format", "png", "--drop-empty",
             "--json", tmp_path / "old.json")
    new = ok(*common, "-o", tmp_path / "new", "--image-format", "png", "--drop-negatives",
             "--coco-output", tmp_path / "new.json")
    for flag, new_flag in (("--format", "--image-format"), ("--drop-empty", "--drop-negatives"),
                           ("--json", "--coco-output")):
        assert f"{flag} is deprecated; use {new_flag}" in old.stderr
    assert " is deprecated" not in new.stderr
    a, b = doc(tmp_path / "old.json"), doc(tmp_path / "new.json")
    assert a == b and all(im["file_name"].endswith(".png") for im in a["images"])
    assert all(im["id"] in {an["image_id"] for an in a["annotations"]} for im in a["images"])
    # both spellings with different values: refused, not one silently winning
    both = run(*common, "-o", tmp_path / "both", "--format", "png", "--image-format", "same")
    assert both.returncode == 2 and "--image-format" in both.stderr


def test_deprecated_image_format_of_augment_and_draw(tmp_path: Path) -> None:
    src = real_path(*TERRAIN)
    (tmp_path / "flip.yaml").write_text("pipeline:\n  - hflip: {p: 1.0}\n")
    common = ["augment", src, "-i", src.parent, "-p", tmp_path / "flip.yaml", "--workers", "1"]
    old = ok(*common, "-o", tmp_path / "old", "--format", "jpg", "--ignore-negative-samples")
    new = ok(*common, "-o", tmp_path / "new", "--image-format", "jpg", "--drop-negatives")
    assert "--format is deprecated; use --image-format" in old.stderr
    assert "--ignore-negative-samples is deprecated; use --drop-negatives" in old.stderr
    assert " is deprecated" not in new.stderr
    a, b = (doc(tmp_path / d / "annotations.json") for d in ("old", "new"))
    assert a == b and a["images"][-1]["file_name"].endswith(".jpg")

    old = ok("draw", src, "-i", src.parent, "-o", tmp_path / "d-old", "--format", "jpg")
    ok("draw", src, "-i", src.parent, "-o", tmp_path / "d-new", "--image-format", "jpg")
    assert "--format is deprecated; use --image-format" in old.stderr
    assert sorted(p.name for p in (tmp_path / "d-old").iterdir()) == sorted(
        p.name for p in (tmp_path / "d-new").iterdir()) == ["terrain2.jpg"]


# -- --drop-negatives: images without annotations left out, on every command writing COCO ---

# (command, arguments); {out} the output file, {dir} a split folder (its one part.json).
# tiny has no negatives: merging it with a one-category map, or dropping the four
# categories of 547503, leaves images without annotations; KEYPOINTS has 40 of its own
NEGATIVES = [
    ("merge", ["merge", TINY, KEYPOINTS, "-o", "{out}", "--category", "dog=1"]),
    ("sample", ["sample", KEYPOINTS, "-o", "{out}", "--every", "2"]),
    ("split", ["split", KEYPOINTS, "-o", "{dir}", "--ratio", "part=1"]),
    ("categories", ["categories", TINY, "-o", "{out}", "--drop", "person", "--drop",
                    "wine glass", "--drop", "bottle", "--drop", "cup"]),
    ("clip", ["clip", KEYPOINTS, "-o", "{out}"]),
    ("export", ["export", KEYPOINTS, "-o", "{out}"]),
]


def _negatives(path: Path) -> tuple[int, int]:
    """(images, images without annotations) of a written COCO file."""
    d = doc(path)
    used = {a["image_id"] for a in d["annotations"]}
    return len(d["images"]), sum(im["id"] not in used for im in d["images"])


@pytest.mark.parametrize(("command", "args"), NEGATIVES, ids=[n[0] for n in NEGATIVES])
def test_drop_negatives(tmp_path: Path, command: str, args: list[Any]) -> None:
    counts = []
    for flag in ([], ["--drop-negatives"]):
        out = tmp_path / ("parts" if command == "split" else "out.json")
        proc = ok(*[str(out) if a in ("{out}", "{dir}") else a for a in args], *flag)
        written = out / "part.json" if command == "split" else out
        counts.append((*_negatives(written), len(doc(written)["annotations"])))
        if flag:
            dropped = counts[0][1]
            assert f"({dropped} images without annotations dropped)" in proc.stderr, \
                proc.stderr
    (images, negatives, anns), (kept, left, kept_anns) = counts
    assert negatives > 0, "the case must have images without annotations"
    assert (kept, left, kept_anns) == (images - negatives, 0, anns)


def test_drop_negatives_with_only_negatives_is_refused(tmp_path: Path) -> None:
    proc = run("sample", KEYPOINTS, "-o", tmp_path / "x.json", "--count", "5",
               "--only-negatives", "--drop-negatives")
    assert proc.returncode == 2 and "--drop-negatives" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()


# -- ids: keep by default everywhere, auto renumbers; the summary says which --------------

KEPT = ("image ids kept (--image-ids auto renumbers 1..N); "
        "annotation ids kept (--annotation-ids auto renumbers 1..N)")
RENUMBERED = ("image ids renumbered 1..N (--image-ids keep keeps them); "
              "annotation ids renumbered 1..N (--annotation-ids keep keeps them)")

WRITERS = [
    ("export", ["export", TINY, "-o", "{out}"]),
    ("filter", ["filter", TINY, "-o", "{out}", "-c", "person"]),
    ("sample", ["sample", TINY, "-o", "{out}", "--every", "2"]),
    ("split", ["split", TINY, "-o", "{dir}", "--ratio", "part=1"]),
    ("categories", ["categories", TINY, "-o", "{out}", "--sort", "name"]),
    ("clip", ["clip", TINY, "-o", "{out}"]),
    ("merge", ["merge", TINY, KEYPOINTS, "-o", "{out}"]),
]


# keep given explicitly is checked where the default changed (export) and on merge
POLICY_CASES = [(name, args, policy) for name, args in WRITERS
                for policy in ("default", "auto", *(("keep",) if name in ("export", "merge")
                                                    else ()))]


@pytest.mark.parametrize(("command", "args", "policy"), POLICY_CASES,
                         ids=[f"{c[0]}-{c[2]}" for c in POLICY_CASES])
def test_id_policies(tmp_path: Path, command: str, args: list[Any], policy: str) -> None:
    out = tmp_path / ("parts" if command == "split" else "out.json")
    argv = [str(out) if a in ("{out}", "{dir}") else a for a in args]
    if policy != "default":
        argv += ["--image-ids", policy, "--annotation-ids", policy]
    proc = ok(*argv)
    written = out / "part.json" if command == "split" else out
    images, anns = image_ids(written), annotation_ids(written)
    src_images, src_anns = set(image_ids(TINY)), set(annotation_ids(TINY))
    if command == "merge":
        src_images |= set(image_ids(KEYPOINTS))
        src_anns |= set(annotation_ids(KEYPOINTS))
    assert images and anns
    if policy == "auto":
        assert images == list(range(1, len(images) + 1))
        assert anns == list(range(1, len(anns) + 1))
        assert RENUMBERED in proc.stderr.splitlines(), proc.stderr
    else:
        assert set(images) <= src_images and set(anns) <= src_anns
        assert images != list(range(1, len(images) + 1))
        assert KEPT in proc.stderr.splitlines(), proc.stderr
    assert proc.stderr.count("ids kept") + proc.stderr.count("ids renumbered") == 2


def test_new_records_are_numbered(tmp_path: Path) -> None:
    src = real_path(*TERRAIN)
    for policy in ("keep", "auto"):
        proc = ok("slice", src, "-i", src.parent, "-o", tmp_path / policy, "--size", "300",
                  "--workers", "1", "--image-ids", policy, "--annotation-ids", policy)
        tiles = tmp_path / policy / src.name
        n = len(image_ids(tiles))
        assert image_ids(tiles) == list(range(1, n + 1)) and n > 1
        assert annotation_ids(tiles) == list(range(1, len(annotation_ids(tiles)) + 1))
        assert "image and annotation ids numbered 1..N (new records)" in proc.stderr
    assert (tmp_path / "keep" / src.name).read_bytes() == (tmp_path / "auto" / src.name
                                                          ).read_bytes()


def test_augment_keeps_the_originals_ids(tmp_path: Path) -> None:
    src = real_path(*TERRAIN)
    (tmp_path / "flip.yaml").write_text("pipeline:\n  - hflip: {p: 1.0}\n")
    proc = ok("augment", src, "-i", src.parent, "-o", tmp_path / "aug", "-p",
              tmp_path / "flip.yaml", "--workers", "1")
    out = tmp_path / "aug" / "annotations.json"
    original = image_ids(src)
    assert image_ids(out) == [*original, max(original) + 1]
    assert annotation_ids(out)[:len(annotation_ids(src))] == annotation_ids(src)
    assert ("image ids kept, new copies numbered after them (--image-ids auto renumbers 1..N)"
            in proc.stderr), proc.stderr


def test_repeated_ids_with_keep_name_the_way_out(tmp_path: Path) -> None:
    data = doc(TINY)
    data["annotations"][3]["id"] = data["annotations"][0]["id"]
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps(data))
    proc = run("export", bad, "-o", tmp_path / "out.json", "--no-stream")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "--annotation-ids auto" in proc.stderr and "annotations[3]" in proc.stderr
    assert not (tmp_path / "out.json").exists()
    ok("export", bad, "-o", tmp_path / "out.json", "--annotation-ids", "auto")
    assert annotation_ids(tmp_path / "out.json") == list(range(1, 137))
    assert image_ids(tmp_path / "out.json") == image_ids(TINY)


# -- a hint names an option of the command that printed it, and following it works ------

def _hint_input(tmp: Path, case: str) -> Path:
    """TINY with a repeated annotation id, or two more images with one id (that no
    annotation names, so only the id is wrong, and auto can renumber it)."""
    data = doc(TINY)
    if case == "annotation":
        data["annotations"][3]["id"] = data["annotations"][0]["id"]
    else:
        data["images"] += [{**data["images"][0], "id": 9, "file_name": f"{k}.jpg"}
                           for k in range(2)]
    path = tmp / f"{case}.json"
    path.write_text(json.dumps(data))
    return path


# (name, arguments, the input, the hint, what following it adds); {out} an output file,
# {dir} a folder, {nowhere} a folder without the images
HINTS = [
    ("convert --to coco", ["convert", "{in}", "--to", "coco", "-o", "{out}"], "annotation",
     "(CLI: --annotation-ids auto)", ["--annotation-ids", "auto"]),
    ("repair", ["repair", "{in}", "-o", "{out}"], "image", "(CLI: --image-ids auto)",
     ["--image-ids", "auto"]),
    ("export --format yolo", ["export", TINY, "--format", "yolo", "-o", "{dir}", "-i",
                              "{nowhere}"], None, "or --image-mode none",
     ["--image-mode", "none"]),
    ("export", ["export", "{in}", "-o", "{out}"], "annotation",
     "(CLI: --annotation-ids auto)", ["--annotation-ids", "auto"]),
    # convert has no --image-mode: no images is no -i (not followed here)
    ("convert --to yolo", ["convert", TINY, "--to", "yolo", "-o", "{dir}", "-i", "{nowhere}"],
     None, "(CLI: no -i/--images)", None),
]


@pytest.mark.parametrize(("name", "args", "case", "hint", "follow"), HINTS,
                         ids=[h[0] for h in HINTS])
def test_a_hint_names_an_option_of_its_command(tmp_path: Path, name: str, args: list[Any],
                                               case: str | None, hint: str,
                                               follow: list[str] | None) -> None:
    (tmp_path / "nowhere").mkdir()
    values = {"{in}": str(_hint_input(tmp_path, case)) if case else "",
              "{out}": str(tmp_path / "out.json"), "{dir}": str(tmp_path / "yolo"),
              "{nowhere}": str(tmp_path / "nowhere")}
    argv = [values.get(a, a) if isinstance(a, str) else a for a in args]
    proc = run(*argv, "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert hint in proc.stderr, proc.stderr
    text = ok(args[0], "--help").stdout
    named = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", proc.stderr))
    assert named and all(has_flag(text, f) for f in named), (named, proc.stderr)
    assert "images='none'" not in proc.stderr
    if follow is not None:
        ok(*argv, *follow)


def test_convert_refuses_id_policies_for_a_format_without_ids(tmp_path: Path) -> None:
    proc = run("convert", TINY, "--to", "voc", "-o", tmp_path / "voc", "--image-ids", "auto")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "error: --image-ids: expected --to coco (a voc target stores no COCO ids: they are "
        "numbered 1..N on reading), got 'auto'"]
    assert not (tmp_path / "voc").exists()


# -- a record a transform keeps is named where it was read, not where it would be written --

# (command, arguments, the place): the input {bad} is TINY with annotations[11] (on image
# row 5) given iscrowd 2, or images[5] given width 0; each command moves that record to
# another row of its output (or keeps its row: clip), or copies it (--repeat), and the
# refusal names the input's file and row, once
PLACES = [
    ("filter", ["filter", "{bad}", "-o", "{out}", "-d", "44"], "annotations[11].iscrowd"),
    ("filter -c", ["filter", "{bad}", "-o", "{out}", "-c", "person"], "annotations[11].iscrowd"),
    ("sample", ["sample", "{bad}", "-o", "{out}", "--every", "5"], "annotations[11].iscrowd"),
    ("sample image", ["sample", "{bad}", "-o", "{out}", "--every", "5"], "images[5].width"),
    ("repeat", ["sample", "{bad}", "-o", "{out}", "--repeat", "person=3"],
     "annotations[11].iscrowd"),
    ("split", ["split", "{bad}", "-o", "{dir}", "--ratio", "a=1", "--ratio", "b=1"],
     "annotations[11].iscrowd"),
    ("clip", ["clip", "{bad}", "-o", "{out}"], "annotations[11].iscrowd"),
    ("categories", ["categories", "{bad}", "-o", "{out}", "--drop", "44"],
     "annotations[11].iscrowd"),
    ("merge", ["merge", KEYPOINTS, "{bad}", "-o", "{out}", "--on-duplicate", "keep"],
     "annotations[11].iscrowd"),
]
_WHY = {"iscrowd": "iscrowd must be 0 or 1, found integer 2 [bad-iscrowd]",
        "width": "image width must be a positive integer, found 0 [bad-image-size]"}


@pytest.mark.parametrize(("name", "args", "where"), PLACES, ids=[p[0] for p in PLACES])
def test_a_bad_record_is_named_in_its_input(tmp_path: Path, name: str, args: list[Any],
                                             where: str) -> None:
    data = doc(TINY)
    if where.startswith("images"):
        data["images"][5]["width"] = 0
    else:
        data["annotations"][11]["iscrowd"] = 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    values = {"{bad}": str(bad), "{out}": str(out), "{dir}": str(tmp_path / "parts")}
    proc = run(*[values.get(a, a) if isinstance(a, str) else a for a in args], "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("error: refusing to export to "), proc.stderr
    assert lines[1:] == [f"  {bad}: {where}: {_WHY[where.rsplit('.', 1)[1]]}"], proc.stderr
    assert not out.exists()


# -- an annotation that names no image: every command refuses it, split too -------------

# (command, arguments, whether the line names the input file: a transform's records do)
DANGLING = [
    ("export", ["export", "{bad}", "-o", "{out}"], False),
    ("convert", ["convert", "{bad}", "--to", "coco", "-o", "{out}"], False),
    ("filter", ["filter", "{bad}", "-o", "{out}", "-d", "44"], True),
    ("sample", ["sample", "{bad}", "-o", "{out}", "--every", "1"], True),
    ("clip", ["clip", "{bad}", "-o", "{out}"], True),
    ("categories", ["categories", "{bad}", "-o", "{out}", "--sort", "name"], True),
    ("split", ["split", "{bad}", "-o", "{out}", "--ratio", "a=1", "--ratio", "b=1"], True),
    ("split stratified", ["split", "{bad}", "-o", "{out}", "--ratio", "a=1", "--stratify"],
     True),
]


@pytest.mark.parametrize(("name", "args", "named"), DANGLING, ids=[d[0] for d in DANGLING])
def test_an_annotation_naming_no_image_is_refused(tmp_path: Path, name: str,
                                                  args: list[str], named: bool) -> None:
    data = doc(TINY)
    data["annotations"][7]["image_id"] = 999999
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out"
    proc = run(*[{"{bad}": str(bad), "{out}": str(out)}.get(a, a) for a in args], "-q")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    where = f"{bad}: " if named else ""
    assert proc.stderr.splitlines() == [
        f"error: refusing to export to {out}: 1 problem(s); nothing was written",
        f"  {where}annotations[7].image_id: image id 999999 names no image "
        "[dangling-image-id]"]
    assert not out.exists()


# -- --json: machine-readable, on stdout, in the documented shape -------------------------

JSON_SHAPES = [
    ("info", {"source", "images", "annotations", "categories", "negative_images",
              "crowd_annotations", "per_category"}),
    ("validate", {"source", "ok", "errors", "warnings", "problems"}),
    ("stats", {"source", "images", "negatives", "annotations", "categories", "per_category",
               "area", "image_sizes"}),
]


@pytest.mark.parametrize(("command", "keys"), JSON_SHAPES, ids=[s[0] for s in JSON_SHAPES])
@pytest.mark.parametrize("path", [TINY, KEYPOINTS], ids=["tiny", "keypoints"])
def test_json_on_stdout(command: str, keys: set[str], path: Path) -> None:
    proc = ok(command, path, "--json")
    out = json.loads(proc.stdout)
    assert keys <= set(out), keys - set(out)
    assert out["source"] == str(path)
    if command != "validate":
        assert out["images"] == len(doc(path)["images"])
        assert out["annotations"] == len(doc(path)["annotations"])
    else:
        assert out["ok"] is True and out["errors"] == 0
