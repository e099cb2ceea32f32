"""The one YAML reader (cocokit.io.yamlfile) under hostile files (issue 18, item 3):
alias bombs wherever a value can sit in a data.yaml or a pipeline, deep nesting, big
files, duplicate keys — refused in under a second and 100 MB, with the file and line,
in one short line; exit 2 from the CLI with nothing written."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cocokit.augment.pipeline import Pipeline
from cocokit.errors import InputError
from cocokit.io import yamlfile
from cocokit.io.yamlfile import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    check_nesting,
    parse_yaml,
    read_yaml,
)
from cocokit.io.yolo import load_data_yaml, read_yolo

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"

SECOND = 1.0
MB = 1 << 20


def bomb_lines(levels: int = 9, width: int = 9) -> list[str]:
    """The classic 'billion laughs': anchor a..i, each level nine aliases of the last."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    lines = [f"{names[0]}: &{names[0]} [" + ",".join(['"lol"'] * width) + "]"]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * width) + "]")
    return lines


def inline_bomb(levels: int = 9, width: int = 9) -> str:
    """The same bomb as one flow value, to put wherever a value can sit: a list whose
    last item stands for width**levels strings."""
    names = "abcdefghijklmnopqrstuvwxyz"[:levels]
    items = [f"&{names[0]} [" + ",".join(['"lol"'] * width) + "]"]
    for prev, name in itertools.pairwise(names):
        items.append(f"&{name} [" + ",".join([f"*{prev}"] * width) + "]")
    return "[" + ", ".join(items) + "]"


def refused_quickly(call: Callable[[], Any], match: str) -> InputError:
    """``call`` raises InputError matching ``match`` in under a CPU second, allocating under
    100 MB (traced Python allocations), with a message of one short line."""
    tracemalloc.start()
    t = time.process_time()  # CPU time: other processes on the machine do not count
    try:
        with pytest.raises(InputError, match=match) as e:
            call()
    finally:
        seconds = time.process_time() - t
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < SECOND, f"took {seconds:.2f} s"
    assert peak < 100 * MB, f"peaked at {peak / MB:.0f} MB"
    message = str(e.value)
    assert "\n" not in message and len(message) < 600, message
    return e.value


# -- the reader ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "line", "match"), [
    ("\n".join([*bomb_lines(), "names: *i"]), 2, r"alias \*a refused"),
    (f"x: {inline_bomb()}\n", 1, r"alias \*a refused"),
    ("base: &b {a: 1}\nother:\n  <<: *b\n", 3, r"alias \*b refused"),  # merge keys too
    ("a: &x 1\nb: *x\n", 2, r"alias \*x refused"),  # even one: aliases are not allowed
    ("a: 1\nb: 2\na: 3\n", 3, r"duplicate key \"a\" \(first on line 1\)"),
    ("x: {a: 1, b: 2, a: 3}\n", 1, r"duplicate key \"a\" \(first on line 1\)"),
    ("x: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n", 1, "nested more than 32"),
    ("x:\n" + "".join("  " * k + "- \n" for k in range(1, 40)), None, "nested more than 32"),
    ("x: 1" + "0" * 5000 + "\n", 1, "cannot read the value"),
    ("a: [1, 2\n", None, "malformed YAML"),
    ("a: !!python/object:os.system x\n", 1, "malformed YAML: could not determine a "
                                            "constructor"),
])
def test_reader_refuses(text: str, line: int | None, match: str) -> None:
    e = refused_quickly(lambda: parse_yaml(text, "data.yaml"), match)
    assert e.file == "data.yaml"
    if line is not None:
        assert e.path is not None and e.path.startswith(f"line {line}")
    assert str(e).startswith(f"data.yaml: line {line}" if line else "data.yaml: ")


@pytest.mark.parametrize(("text", "expected"), [
    ("a: &anchor [1, 2]\nb: 3\n", {"a": [1, 2], "b": 3}),  # an anchor alone is harmless
    ("names:\n  0: person\n  1: 'hot dog'\n", {"names": {0: "person", 1: "hot dog"}}),
    ('{"a": [1, 2.5, null, true]}', {"a": [1, 2.5, None, True]}),
    ("- 1\n- {a: b}\n", [1, {"a": "b"}]),
    ("[" * MAX_DEPTH + "]" * MAX_DEPTH, json.loads("[" * MAX_DEPTH + "]" * MAX_DEPTH)),
])
def test_reader_reads_plain_documents(text: str, expected: Any) -> None:
    assert parse_yaml(text, "f.yaml") == expected


def test_size_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# padding\n" * (MAX_BYTES // 10 + 1))
    assert big.stat().st_size > MAX_BYTES
    e = refused_quickly(lambda: read_yaml(big, "data.yaml"), "larger than the limit of 4194304")
    assert e.file == str(big)
    just = tmp_path / "just.yaml"
    just.write_bytes(b"a: 1\n" + b"#" * (MAX_BYTES - 6) + b"\n")
    assert just.stat().st_size == MAX_BYTES
    assert read_yaml(just) == {"a": 1}


@pytest.mark.parametrize("text", [
    "x: [" + "[]," * (MAX_NODES + 1) + "]\n",  # 750 kB of empty lists
    "x:\n" + "- 1\n" * (MAX_NODES + 1),
    "".join(f"k{i}: {i}\n" for i in range(MAX_NODES // 2 + 1)),
])
def test_values_limit(text: str) -> None:
    """A file under the size limit but of very many small values (1.4 million in 4 MiB
    took a gigabyte and half a minute) stops at MAX_NODES."""
    assert len(text) <= MAX_BYTES
    with pytest.raises(InputError, match="more than 250,000 values"):
        parse_yaml(text, "f.yaml")


def test_values_just_under_the_limit() -> None:
    text = "x: [" + "1," * (MAX_NODES - 3) + "]\n"  # mapping, key, list: 3 more values
    assert len(parse_yaml(text)["x"]) == MAX_NODES - 3


def test_check_nesting_matches_the_parser() -> None:
    ok: Any = 1
    for _ in range(MAX_DEPTH):
        ok = [ok]
    check_nesting(ok)
    with pytest.raises(InputError, match="nested more than 32"):
        check_nesting([ok])
    with pytest.raises(InputError, match="nested more than 32"):
        parse_yaml(json.dumps([ok]))
    assert parse_yaml(json.dumps(ok)) == ok


def test_the_c_parser_is_used_when_there() -> None:
    yaml = pytest.importorskip("yaml")
    if not yaml.__with_libyaml__:
        pytest.skip("PyYAML is built without libyaml here")
    from yaml.cyaml import CParser

    assert issubclass(yamlfile._Loader, CParser)


# -- data.yaml ----------------------------------------------------------------------------


def _dataset(root: Path, yaml_text: str) -> Path:
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(root / "images" / "train" / "a.jpg")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (root / "data.yaml").write_text(yaml_text)
    return root


# every place a value can sit in a data.yaml: names, a split, path, a cocokit key, a key
# Ultralytics does not know, a class name
DATA_YAML_PLACES = {
    "names": "train: images/train\nnames: BOMB\n",
    "names-entry": "train: images/train\nnames:\n  0: BOMB\n",
    "train": "train: BOMB\nnames: [a]\n",
    "path": "path: BOMB\ntrain: images/train\nnames: [a]\n",
    "coco_categories": "train: images/train\nnames: [a]\ncoco_categories: BOMB\n",
    "other-key": "train: images/train\nnames: [a]\nroboflow:\n  url: BOMB\n",
}


@pytest.mark.parametrize("place", list(DATA_YAML_PLACES))
def test_data_yaml_bombs_are_refused(tmp_path: Path, place: str) -> None:
    root = _dataset(tmp_path, DATA_YAML_PLACES[place].replace("BOMB", inline_bomb()))
    e = refused_quickly(lambda: read_yolo(root), r"alias \*a refused")
    assert e.file == str(root / "data.yaml") and e.path is not None


def test_the_issue_data_yaml_bomb(tmp_path: Path) -> None:
    """The 336-byte data.yaml of the issue: nine levels of nine aliases as names."""
    text = "\n".join([*bomb_lines(), "train: images/train", "names: *i"]) + "\n"
    assert len(text) < 400
    root = _dataset(tmp_path, text)
    e = refused_quickly(lambda: load_data_yaml(root / "data.yaml"), r"line 2: YAML alias")
    assert e.path == "line 2"


# -- pipelines ----------------------------------------------------------------------------


# every place a value can sit in a pipeline file
PIPELINE_PLACES = {
    "pipeline": "pipeline: BOMB\n",
    "entry": "pipeline:\n  - BOMB\n",
    "rotate.angle": "pipeline:\n  - rotate: {angle: BOMB, p: 0.5}\n",
    "op-name": "pipeline:\n  - {op: BOMB}\n",
    "color_jitter.brightness": "pipeline:\n  - op: color_jitter\n    brightness: BOMB\n",
    "albumentations.params": ("pipeline:\n  - {op: albumentations, transform: CLAHE, "
                              "params: {clip_limit: BOMB}}\n"),
    "albumentations.transform": "pipeline:\n  - {op: albumentations, transform: BOMB}\n",
    "keypoint_flip_map": "keypoint_flip_map: BOMB\npipeline: [hflip]\n",
    "keypoint_flip_map-pair": "keypoint_flip_map:\n  - BOMB\npipeline: [hflip]\n",
    "fill": "fill: BOMB\npipeline: [hflip]\n",
    "min_area": "min_area: BOMB\npipeline: [hflip]\n",
    "top-level-list": "BOMB\n",
}


@pytest.mark.parametrize("place", list(PIPELINE_PLACES))
def test_pipeline_bombs_are_refused(tmp_path: Path, place: str) -> None:
    path = tmp_path / "aug.yaml"
    path.write_text(PIPELINE_PLACES[place].replace("BOMB", inline_bomb()))
    e = refused_quickly(lambda: Pipeline.from_file(path), r"alias \*a refused")
    assert e.file == str(path) and e.path is not None and e.path.startswith("line ")


def test_the_issue_pipeline_bomb(tmp_path: Path) -> None:
    """A ~300-byte pipeline whose bomb is the list of operations."""
    path = tmp_path / "aug.yaml"
    path.write_text("\n".join([*bomb_lines(), "pipeline: *i"]) + "\n")
    refused_quickly(lambda: Pipeline.from_file(path), r"line 2: YAML alias \*a")


@pytest.mark.parametrize(("name", "content", "match"), [
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested more than 32"),
    ("deep2.json", b'{"pipeline": ' + b"[" * 40 + b"]" * 40 + b"}", "nested more than 32"),
    ("big.json", b'{"pipeline": ["hflip"], "x": "' + b"a" * MAX_BYTES + b'"}',
     "larger than the limit"),
    ("big.yaml", b"pipeline: [hflip]\n" + b"#" * MAX_BYTES, "larger than the limit"),
    ("long.yaml", b"pipeline:\n  - rotate: {angle: '" + b"x" * 100_000 + b"'}\n",
     r"rotate: expected .{0,200}, got 'xxxx.{0,200}\.\.\.$"),
    ("key.yaml", b"pipeline: [hflip]\n" + b"k" * 1000 + b": 1\n", "unknown key"),
])
def test_pipeline_files_over_the_limits(tmp_path: Path, name: str, content: bytes,
                                        match: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    e = refused_quickly(lambda: Pipeline.from_file(path), match)
    assert e.file == str(path)


# -- the command line: exit 2, one line, nothing written, in bounded time and memory -------

_RUN = """
import json, resource, sys, time
from cocokit.cli import main
import cocokit.augment.pipeline, cocokit.io.yolo  # imported before the clock starts
t = time.process_time()  # CPU time: other processes on the machine do not count
rc = main(sys.argv[1:])
seconds = time.process_time() - t
try:  # the peak of this program (ru_maxrss would count the forked parent before exec)
    with open("/proc/self/status") as f:
        peak_kb = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
except OSError:
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"rc": rc, "seconds": seconds, "maxrss_mb": peak_kb / 1024}))
"""


def _run_cli(args: list[str], cwd: Path) -> tuple[dict[str, Any], str]:
    r = subprocess.run([sys.executable, "-c", _RUN, *args], cwd=cwd, capture_output=True,
                       text=True, timeout=120)
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


def test_cli_import_refuses_the_bomb(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "ds", "\n".join(
        [*bomb_lines(), "train: images/train", "names: *i"]) + "\n")
    out = tmp_path / "out.json"
    stats, stderr = _run_cli(["import", str(root), "--format", "yolo", "-o", str(out)],
                             tmp_path)
    assert stats["rc"] == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "line 2" in lines[0]
    assert "alias" in lines[0] and "Traceback" not in stderr
    assert stats["seconds"] < SECOND and stats["maxrss_mb"] < 100
    assert not out.exists()


def test_cli_augment_refuses_the_bomb(tmp_path: Path) -> None:
    pipe = tmp_path / "aug.yaml"
    pipe.write_text("pipeline:\n  - rotate:\n      angle: " + inline_bomb() + "\n")
    (tmp_path / "imgs").mkdir()
    out = tmp_path / "out"
    stats, stderr = _run_cli(["augment", str(DATA / "tiny_coco_val2017.json"), "-i",
                              str(tmp_path / "imgs"), "-o", str(out), "--pipeline", str(pipe)],
                             tmp_path)
    assert stats["rc"] == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {pipe}: line 3")
    assert stats["seconds"] < SECOND and stats["maxrss_mb"] < 100
    assert not out.exists()
