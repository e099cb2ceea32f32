"""Progress as the installed ``cocokit`` draws it: on a terminal, a bar of bytes (done /
total as sizes, rate, time left) while a file is read or indexed, then a bar of records
(done / total as counts, records per second, time left) while it is decoded, validated
or written; nothing with -q, COCOKIT_QUIET or off a terminal. FORCE_COLOR makes rich
treat the pipe as a terminal (a fake terminal)."""

from __future__ import annotations

import json
import os
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from cocokit.cli._app import read_file

from .conftest import real_path
from .test_cli_usage import F, run

TERMINAL = {"FORCE_COLOR": "1", "COLUMNS": "120"}
BAR = re.compile(r"reading tiny_coco_val2017\.json.*67\.8/67\.8 kB")


# tiny: 6 images and 136 annotations (142 records decoded or written), 80 categories
# (222 records validated); a bar ends with done/total, the rate (? until rich has two
# samples, as when a small file is read in one block) and the time left
RECORDS = r"{step} tiny_coco_val2017\.json.* {n}/{n} +(?:[\d,]+|\?)/s +\d+:\d\d:\d\d"
BYTES = (r"{step} tiny_coco_val2017\.json.* 67\.8/67\.8 kB +(?:[\d.]+ [kMG]?B/s|\?) "
         r"+\d+:\d\d:\d\d")


def _plain(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", text)


@pytest.mark.parametrize(
    ("args", "after"),
    [
        (["info", F], r"decoding tiny_coco_val2017\.json"),
        (["validate", F], r"validating tiny_coco_val2017\.json"),
        (["stats", F], r"decoding tiny_coco_val2017\.json"),
    ],
)
def test_a_terminal_shows_a_byte_bar_while_reading(args: list[str], after: str) -> None:
    res = run(*args, **TERMINAL)
    assert res.returncode == 0, res.stderr
    plain = _plain(res.stderr)
    assert BAR.search(plain), plain  # bytes done / total with their unit
    assert re.search(after, plain), plain


# (arguments, the bars in the order drawn: (step, unit, records)); {out} an output file
BARS = [
    (["info", F], [("reading", "bytes", 0), ("decoding", "records", 142)]),
    (["validate", F], [("reading", "bytes", 0), ("validating", "records", 222)]),
    (["validate", F, "--stream"], [("indexing", "bytes", 0), ("validating", "records", 222)]),
    (["export", F, "-o", "{out}"],
     [("reading", "bytes", 0), ("decoding", "records", 142), ("writing out", "records", 142)]),
    (["export", F, "-o", "{out}", "--stream"],
     [("indexing", "bytes", 0), ("writing out", "records", 142)]),
    (["filter", F, "-o", "{out}", "--stream", "-c", "person"],
     [("indexing", "bytes", 0), ("writing out", "records", 142)]),
    (["stats", F, "--stream"], [("indexing", "bytes", 0)]),
]


@pytest.mark.parametrize(("args", "bars"), BARS, ids=[" ".join(b[0][:1] + b[0][2:]).replace(
    "{out}", "o") for b in BARS])
def test_bars_of_bytes_and_records(args: list[str], bars: list[tuple[str, str, int]],
                                   tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    res = run(*[str(out) if a == "{out}" else a for a in args], **TERMINAL)
    assert res.returncode == 0, res.stderr
    plain = _plain(res.stderr)
    at = []
    for step, unit, n in bars:
        if step.startswith("writing "):
            pattern = RECORDS.replace("{step} tiny_coco_val2017", "writing out").format(
                step=step, n=n)
        else:
            pattern = (BYTES if unit == "bytes" else RECORDS).format(step=step, n=n)
        found = re.search(pattern, plain)
        assert found, (pattern, plain)
        at.append(found.start())
    assert at == sorted(at), plain  # in the order of the work
    if ["--stream"] == args[-1:] or "--stream" in args:
        assert "reading tiny" not in plain and "decoding" not in plain


@pytest.mark.parametrize(
    "args",
    [
        ["validate", F, "--stream", "-q"],
        ["export", F, "-o", "{out}", "--stream", "-q"],
        ["export", F, "-o", "{out}", "-q"],
        ["filter", F, "-o", "{out}", "--stream", "-c", "person", "-q"],
        ["stats", F, "--stream", "--json"],
    ],
)
def test_quiet_streamed_and_written_draw_nothing(args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    for env in (TERMINAL, {}):
        res = run(*[str(out) if a == "{out}" else a for a in args], **env)
        assert res.returncode == 0, res.stderr
        assert res.stderr == "", res.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["info", F, "-q"], TERMINAL),
        (["info", F, "--quiet"], TERMINAL),
        (["info", F], {**TERMINAL, "COCOKIT_QUIET": "1"}),
        (["info", F], {}),  # off a terminal
        (["stats", F, "-q"], TERMINAL),
        (["validate", F, "-q"], TERMINAL),
        (["validate", F, "--json"], TERMINAL),
        (["validate", F, "--stream", "--json"], {}),  # off a terminal
        (["info", F, "--stream"], {}),
    ],
)
def test_quiet_or_off_a_terminal_draws_nothing(args: list[str], env: dict[str, str]) -> None:
    res = run(*args, **env)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert "reading" not in res.stdout and "\x1b[?25l" not in res.stdout


def test_off_a_terminal_only_the_summary_is_printed() -> None:
    res = run("validate", F)
    assert res.returncode == 0
    assert res.stderr == f"{F}: valid: 0 error(s), 64 warning(s)\n"
    res = run("info", F, "--json")
    assert json.loads(res.stdout)["images"] == 6 and res.stderr == ""


def test_read_file_is_the_file_in_one_buffer(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    size = (40 << 20) + 12345  # more than one block
    path.write_bytes(os.urandom(size))
    tracemalloc.start()
    try:
        data = read_file(path, quiet=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(data) is bytes and data == path.read_bytes()
    assert peak < size * 1.1, f"a second copy of the file was made: peak {peak} for {size}"


@pytest.mark.parametrize("size", [0, 1, 4096])
def test_read_file_small_and_empty(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f.json"
    path.write_bytes(b"x" * size)
    assert read_file(path) == b"x" * size


def _calls() -> tuple[list[tuple[int, int]], Callable[[int, int], None]]:
    calls: list[tuple[int, int]] = []
    return calls, lambda done, total: calls.append((done, total))


def _grows(calls: list[tuple[int, int]], total: int) -> None:
    assert calls and calls[-1] == (total, total), calls
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert {t for _, t in calls} == {total}


@pytest.mark.parametrize("chunk", [1, 7, 50_000])
def test_library_progress_counts_records(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from cocokit.io import coco
    from cocokit.io.coco import read_coco
    from cocokit.validate import validate_bytes, validate_file

    monkeypatch.setattr(coco, "_CHUNK", chunk)  # runs of this many records
    calls, update = _calls()
    ds = read_coco(Path(F), progress=update)
    _grows(calls, len(ds.images) + len(ds.annotations))
    assert len(calls) == -(-6 // chunk) + -(-136 // chunk)  # one call per run
    for stream in (False, True):
        calls, update = _calls()
        scans, scanned = _calls()
        report = validate_file(F, stream=stream, chunk=chunk, progress=update,
                               scanned=scanned, chunk_bytes=4096)
        _grows(calls, 6 + 136 + 80)
        assert report.ok
        if stream:  # the bytes scanned while indexing, in blocks
            _grows(scans, Path(F).stat().st_size)
            assert len(scans) > 1
        else:
            assert scans == []
    calls, update = _calls()
    validate_bytes(Path(F).read_bytes(), F, progress=update)
    _grows(calls, 222)


@pytest.mark.parametrize(("mode", "first"), [("--stream", "indexing"), ("--no-stream", "reading")])
def test_slice_shows_bytes_then_images(mode: str, first: str, tmp_path: Path) -> None:
    src = real_path("sahi-testdata", "coco_utils", "terrain2_coco.json")
    size = f"{src.stat().st_size / 1000:.1f}"
    res = run("slice", str(src), "-i", str(src.parent), "-o", str(tmp_path / "t"), "--size",
              "400", "--workers", "1", mode, **TERMINAL)
    assert res.returncode == 0, res.stderr
    plain = _plain(res.stderr)
    scan = re.search(rf"{first} terrain2_coco\.json.* {size}/{size} kB", plain)
    sliced = re.search(r"slicing .* 1/1 +(?:[\d,]+|\?)/s +\d+:\d\d:\d\d", plain)
    assert scan and sliced and scan.start() < sliced.start(), plain
    assert "6 tiles" in plain
