"""Files that are not COCO datasets are refused with what they look like and what to run
instead, by every reader (in memory and streamed) and by validate, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cocokit
from cocokit.errors import InputError
from cocokit.io.sniff import NOT_JSON_FOLDER, describe, describe_path, format_of

from .conftest import real_path
from .test_cli_usage import F, run

VOC_XML = """<annotation>
  <folder>VOC2007</folder><filename>000001.jpg</filename>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <object><name>dog</name><difficult>0</difficult>
    <bndbox><xmin>48</xmin><ymin>240</ymin><xmax>195</xmax><ymax>371</ymax></bndbox>
  </object>
</annotation>
"""

LABEL_STUDIO = [
    {
        "id": 1,
        "annotations": [{"id": 1, "result": [{"type": "rectanglelabels", "value": {
            "x": 10, "y": 20, "width": 30, "height": 40, "rectanglelabels": ["cat"]}}]}],
        "data": {"image": "/data/upload/1/cat.jpg"},
        "meta": {},
    }
]


def _labelme() -> Path:
    return real_path("sahi-testdata", "coco_utils", "terrain1.json")


def _results() -> Path:
    return real_path("sahi-testdata", "coco_evaluate", "result.json")


def _label_studio(tmp: Path) -> Path:
    p = tmp / "project-1-at-2024.json"
    p.write_text(json.dumps(LABEL_STUDIO))
    return p


def _yolo(tmp: Path) -> Path:
    d = tmp / "coco8"
    (d / "labels" / "train").mkdir(parents=True)
    (d / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (d / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/train\nnames:\n"
                                 "  0: person\n")
    return d


def _voc_xml(tmp: Path) -> Path:
    p = tmp / "000001.xml"
    p.write_text(VOC_XML)
    return p


def _voc_folder(tmp: Path) -> Path:
    d = tmp / "VOC2007"
    (d / "Annotations").mkdir(parents=True)
    (d / "Annotations" / "000001.xml").write_text(VOC_XML)
    return d


CVAT_XML = ('<?xml version="1.0" encoding="utf-8"?>\n<annotations>\n<version>1.1</version>\n'
            '<image id="0" name="a.jpg" width="10" height="10"/>\n</annotations>\n')


def _cvat_xml(tmp: Path) -> Path:
    p = tmp / "annotations.xml"
    p.write_text(CVAT_XML)
    return p


def _cvat_folder(tmp: Path) -> Path:
    d = tmp / "task_1"
    d.mkdir()
    (d / "annotations.xml").write_text(CVAT_XML)
    return d


def _dota_folder(tmp: Path) -> Path:
    d = tmp / "DOTA"
    (d / "labelTxt").mkdir(parents=True)
    (d / "labelTxt" / "P0000.txt").write_text("imagesource:GoogleEarth\n"
                                              "1 1 5 1 5 5 1 5 plane 0\n")
    return d


def _other_object(tmp: Path) -> Path:
    p = tmp / "config.json"
    p.write_text(json.dumps({"model": "yolov8n", "epochs": 10}))
    return p


# (make the input, what the message says it is, what it says to run)
KINDS = [
    ("labelme", lambda t: _labelme(), "LabelMe", "cocokit convert"),
    ("results", lambda t: _results(), "COCO results list", "COCOeval"),
    ("label-studio", _label_studio, "Label Studio export", "cocokit convert"),
    ("yolo-folder", _yolo, "YOLO dataset folder", "cocokit import"),
    ("voc-xml", _voc_xml, "Pascal VOC", "cocokit convert"),
    ("voc-folder", _voc_folder, "Pascal VOC", "cocokit convert"),
    ("cvat-xml", _cvat_xml, "CVAT for images XML", "cocokit convert"),
    ("cvat-folder", _cvat_folder, "CVAT for images XML", "cocokit convert"),
    ("dota-folder", _dota_folder, "DOTA dataset folder", "cocokit convert"),
    ("other-object", _other_object, 'none of "images", "annotations"', '"model", "epochs"'),
]
IDS = [k[0] for k in KINDS]
#: the commands that take a results list as well as a dataset
READS_RESULTS = ("info", "stats", "validate")
JSON_KINDS = [k for k in KINDS if k[0] not in ("yolo-folder", "voc-xml", "voc-folder",
                                                "cvat-xml", "cvat-folder", "dota-folder")]


@pytest.mark.parametrize(("name", "make", "looks", "todo"), KINDS, ids=IDS)
@pytest.mark.parametrize(
    "command",
    [
        ["info"],
        ["stats"],
        ["export", "-o", "{out}"],
        ["validate"],
    ],
    ids=["info", "stats", "export", "validate"],
)
def test_cli_refuses_what_is_not_coco(
    command: list[str], name: str, make: object, looks: str, todo: str, tmp_path: Path
) -> None:
    if name == "results" and command[0] in READS_RESULTS:
        pytest.skip("info, stats and validate read a results file (tests/test_results.py)")
    src = make(tmp_path)  # type: ignore[operator]
    out = tmp_path / "out.json"
    args = [command[0], str(src), *(a.format(out=out) for a in command[1:])]
    res = run(*args)
    text = res.stdout + res.stderr
    assert "Traceback" not in text
    assert looks in text and todo in text, text
    assert not out.exists()
    # refused as unreadable (exit 2) by every command; validate's report keeps the
    # missing keys of a non-COCO object, with what it looks like
    assert res.returncode == 2, text
    if command == ["validate"] and name in ("labelme", "other-object"):
        assert res.stdout.count("[missing-key]") == 3, res.stdout
    if res.returncode == 2 and command != ["validate"]:
        assert len(res.stderr.splitlines()) == 1, res.stderr


@pytest.mark.parametrize(("name", "make", "looks", "todo"), JSON_KINDS, ids=[k[0] for k in
                                                                             JSON_KINDS])
@pytest.mark.parametrize("command", ["info", "stats", "validate"])
def test_streamed_readers_refuse_it_too(
    command: str, name: str, make: object, looks: str, todo: str, tmp_path: Path
) -> None:
    if name == "results" and command in READS_RESULTS:
        pytest.skip("info, stats and validate read a results file (tests/test_results.py)")
    src = make(tmp_path)  # type: ignore[operator]
    res = run(command, str(src), "--stream")
    assert looks in res.stdout + res.stderr and todo in res.stdout + res.stderr
    assert res.returncode == 2 and "Traceback" not in res.stderr


@pytest.mark.parametrize("stream", ["--stream", "--no-stream"])
@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({}, 1),  # an empty object is an (invalid) COCO document: problems found
        ({"images": []}, 1),  # a partial COCO document
        ({"info": {}}, 2),  # none of the three keys: not COCO
        ({"shapes": [], "imagePath": "a.jpg"}, 2),  # LabelMe
    ],
)
def test_validate_exit_code_of_objects(document: dict[str, object], code: int, stream: str,
                                       tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(document))
    res = run("validate", str(path), stream, "--json")
    assert res.returncode == code, res.stdout + res.stderr
    report = json.loads(res.stdout)  # the report is printed either way
    assert not report["ok"]
    assert {p["code"] for p in report["problems"]} == {"missing-key"}


@pytest.mark.parametrize(("name", "make", "looks", "todo"), KINDS, ids=IDS)
def test_library_readers_raise_input_error(
    name: str, make: object, looks: str, todo: str, tmp_path: Path
) -> None:
    src = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InputError) as e:
        cocokit.load(src)
    assert looks in str(e.value) and todo in str(e.value) and str(src) in str(e.value)
    said = describe(src)
    assert said is not None and looks in said


@pytest.mark.parametrize(
    "text",
    [
        b"{}",  # an empty dataset, as before
        b'{"images": []}',  # a partial COCO document
        b'{"categories": [{"id": 1, "name": "a"}], "info": {}}',
    ],
)
def test_coco_documents_are_not_described(text: bytes, tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_bytes(text)
    assert describe(p) is None
    cocokit.load(p)
    res = run("info", str(p))
    assert res.returncode == 0, res.stderr


def test_a_real_coco_file_is_not_described() -> None:
    assert describe(Path(F)) is None


@pytest.mark.parametrize(
    ("top", "expected"),
    [
        ([{"image_id": 1, "category_id": 1, "segmentation": {"counts": "a", "size": [1, 1]},
           "score": 0.5}], "segmentation and score"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}],
         "bbox and score"),
        ([], "array (empty)"),
        ([1, 2, 3], "array of 3 item(s)"),
        ({"shapes": [], "imagePath": "a.jpg", "version": "5"}, "LabelMe"),
        ({"images": []}, None),
        ({}, None),
    ],
)
def test_describe_parsed_documents(top: object, expected: str | None) -> None:
    said = describe(top)
    if expected is None:
        assert said is None
    else:
        assert said is not None and expected in said, said


def _nested_voc(tmp: Path) -> Path:
    d = tmp / "nested"
    (d / "Annotations" / "2007").mkdir(parents=True)
    (d / "Annotations" / "2007" / "000001.xml").write_text(VOC_XML)
    return d


def _label_studio_folder_with_xml(tmp: Path) -> Path:
    d = tmp / "ls"
    d.mkdir()
    (d / "tasks.json").write_text(json.dumps([{"data": {"image": "a.jpg"}, "annotations": []}]))
    (d / "notes.xml").write_text(VOC_XML)
    return d


# (make a folder, the format format_of finds, what describe_path says it is)
FOLDERS = [
    (_yolo, "yolo", "a YOLO dataset folder (data.yaml)"),
    (_voc_folder, "voc", "Pascal VOC XML (Annotations/*.xml)"),
    (_nested_voc, "voc", "Pascal VOC XML (Annotations/*.xml)"),
    (_cvat_folder, "cvat", "CVAT for images XML (an XML file whose root is <annotations>)"),
    (_dota_folder, "dota", "a DOTA dataset folder (labelTxt/"),
    (_label_studio_folder_with_xml, "labelstudio", NOT_JSON_FOLDER),
]


@pytest.mark.parametrize(("make", "fmt", "says"), FOLDERS, ids=[f[1] for f in FOLDERS])
def test_a_folder_is_described_as_the_format_it_is_read_as(
    make: object, fmt: str, says: str, tmp_path: Path
) -> None:
    d = make(tmp_path)  # type: ignore[operator]
    assert format_of(d) == fmt
    said = describe_path(d)
    assert said is not None and said.startswith(says), said


def test_a_big_results_list_is_described_from_its_head_when_streamed(tmp_path: Path) -> None:
    rec = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}
    p = tmp_path / "detections.json"
    p.write_text(json.dumps([rec] * 20_000))
    # export takes only datasets (info, stats and validate read a results list)
    res = run("export", str(p), "--stream", "-o", str(tmp_path / "out.json"))
    assert res.returncode == 2 and "COCO results list" in res.stderr, res.stderr
