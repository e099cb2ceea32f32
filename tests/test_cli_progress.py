"""Progress as the installed ``cocokit`` draws it: a byte bar (bytes read, rate, time
left) while reading and validating on a terminal; nothing with -q, COCOKIT_QUIET or off
a terminal. FORCE_COLOR makes rich treat the pipe as a terminal (a fake terminal)."""

from __future__ import annotations

import json
import os
import re
import tracemalloc
from pathlib import Path

import pytest

from cocokit.cli._app import read_file

from .test_cli_usage import F, run

TERMINAL = {"FORCE_COLOR": "1", "COLUMNS": "120"}
BAR = re.compile(r"reading tiny_coco_val2017\.json.*67\.8/67\.8 kB")


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
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", res.stderr)
    assert BAR.search(plain), plain  # bytes done / total with their unit
    assert re.search(after, plain), plain


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
