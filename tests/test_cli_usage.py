"""Usage mistakes as a user makes them, run through the installed ``cocokit`` script.

Every mistake must end in one ``error:`` line (plus at most a line saying where the
help is), exit code 2 and no traceback, whatever typer version is installed (typer
0.26+ raises its own vendored exceptions; older ones raise click's).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cocokit.cli import flag_message, main
from cocokit.errors import OptionError

DATA = Path(__file__).resolve().parent / "data"
F = str(DATA / "tiny_coco_val2017.json")


def cocokit_command() -> list[str]:
    """The console script beside this Python, else ``python -m cocokit``."""
    script = Path(sys.executable).parent / ("cocokit.exe" if os.name == "nt" else "cocokit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cocokit"]


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COCOKIT_QUIET")}
    environ.update(env)
    return subprocess.run(
        [*cocokit_command(), *args], capture_output=True, text=True, timeout=120,
        env=environ, cwd=cwd,
    )


# click < 8.2 says "No such option: --bogus", later ones "No such option '--bogus'."
BOGUS = r"No such option:? '?--bogus"

# (arguments, a regex the message matches); {f} is a real COCO file, {out} an output path
MISTAKES: list[tuple[list[str], str]] = [
    # mistyped commands: the nearest command is named
    (["infoo", "{f}"], "Did you mean 'info'"),
    (["valdate", "{f}"], "Did you mean 'validate'"),
    (["exprot", "{f}", "-o", "{out}"], "Did you mean 'export'"),
    (["statz", "{f}"], "Did you mean 'stats'"),
    (["sampel", "{f}"], "Did you mean 'sample'"),
    (["help"], "No such command 'help'"),
    # unknown options, on every command
    (["--bogus"], BOGUS),
    (["info", "--bogus", "{f}"], BOGUS),
    (["validate", "{f}", "--bogus"], BOGUS),
    (["export", "{f}", "--bogus", "-o", "{out}"], BOGUS),
    (["stats", "{f}", "--bogus"], BOGUS),
    (["draw", "{f}", "--bogus"], BOGUS),
    (["merge", "{f}", "{f}", "--bogus"], BOGUS),
    (["filter", "{f}", "--bogus"], BOGUS),
    (["sample", "{f}", "--bogus"], BOGUS),
    (["split", "{f}", "--bogus"], BOGUS),
    (["categories", "{f}", "--bogus"], BOGUS),
    (["clip", "{f}", "--bogus"], BOGUS),
    (["slice", "{f}", "--bogus"], BOGUS),
    (["augment", "{f}", "--bogus"], BOGUS),
    (["import", "{f}", "--bogus"], BOGUS),
    # a near miss of a real option is named
    (["info", "{f}", "--jsn"], "Did you mean '?--json"),
    (["validate", "{f}", "--strct"], "Did you mean '?--strict"),
    # missing arguments and options
    (["info"], "Missing argument"),
    (["validate"], "Missing argument"),
    (["stats"], "Missing argument"),
    (["import"], "Missing argument"),
    (["export", "{f}"], "--output"),
    # values that are not numbers: the flag and the value as typed
    (["filter", "{f}", "--min-area", "abc", "-o", "{out}"], "'--min-area'"),
    (["filter", "{f}", "--min-area=abc", "-o", "{out}"], "'abc'"),
    (["sample", "{f}", "--every", "two", "-o", "{out}"], "'two'"),
    (["categories", "{f}", "--reindex", "one", "-o", "{out}"], "--reindex"),
    (["export", "{f}", "-o", "{out}", "--indent", "x"], "--indent"),
    # a value that is not one of the choices
    (["export", "{f}", "--format", "yml", "-o", "{out}"], "'yml' is not one of"),
    # an extra argument
    (["info", "{f}", "{f}"], "unexpected extra argument"),
    # files that are not there, or not files
    (["info", "no-such-file.json"], "no such file"),
    (["validate", "no-such-file.json"], "no-such-file.json"),
    (["stats", "no-such-file.json"], "no such file"),
    (["export", "no-such-file.json", "-o", "{out}"], "no such file"),
    (["info", "{dir}"], "{dir}"),
]


@pytest.mark.parametrize(("args", "expected"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_usage_mistake_is_one_line_and_exit_2(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    values = {"f": F, "out": str(tmp_path / "out.json"), "dir": str(tmp_path)}
    res = run(*[a.format(**values) for a in args], cwd=tmp_path)
    lines = res.stderr.splitlines()
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 2, res.stderr
    assert 1 <= len(lines) <= 3, res.stderr
    assert lines[0].startswith("error: "), res.stderr
    pattern = expected.format(**{k: re.escape(v) for k, v in values.items()})
    assert re.search(pattern, res.stderr), res.stderr
    assert not (tmp_path / "out.json").exists()


def test_at_least_25_mistakes_across_the_commands() -> None:
    assert len(MISTAKES) >= 25
    commands = {a[0] for a, _ in MISTAKES if not a[0].startswith("-")}
    assert {"info", "validate", "export", "stats", "draw", "merge", "filter", "sample",
            "split", "categories", "clip", "slice", "augment", "import"} <= commands


def test_version_prints_the_installed_version() -> None:
    from importlib.metadata import version

    res = run("--version")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"cocokit {version('cocokit')}"
    assert res.stderr == ""


def test_cocokit_alone_prints_the_help_and_exits_0() -> None:
    res = run()
    assert res.returncode == 0, res.stderr
    assert "Usage:" in res.stdout and "validate" in res.stdout and "export" in res.stdout
    assert "Traceback" not in res.stderr


def test_a_correct_command_still_works() -> None:
    res = run("info", F, "--json")
    assert res.returncode == 0, res.stderr
    assert '"images": 6' in res.stdout


def test_off_a_terminal_messages_are_not_wrapped_or_coloured(tmp_path: Path) -> None:
    long_dir = tmp_path / ("a-very-long-folder-name-" * 5)
    long_dir.mkdir()
    missing = long_dir / "missing-file-with-a-long-name.json"
    res = run("info", str(missing))
    assert res.returncode == 2
    assert res.stderr == f"error: {missing}: no such file\n"
    assert "\x1b[" not in res.stderr
    # the summary line of validate (rich markup) is one line off a terminal, too
    res = run("validate", F)
    assert "\x1b[" not in res.stdout + res.stderr
    assert all(len(line) < 1000 for line in res.stderr.splitlines())
    assert res.stderr.count("\n") == 1, res.stderr


def test_keyboard_interrupt_prints_interrupted_and_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import cocokit.summary

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cocokit.summary, "summarize", interrupted)
    assert main(["info", F, "-q"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted"


@pytest.mark.parametrize(
    ("error", "args", "message"),
    [
        (OptionError("every/fraction/count", None, "exactly one of them"), ["sample", F],
         "--every/--fraction/--count: expected exactly one of them"),
        (OptionError("min_area", -1.0, "a finite number"), ["filter", F],
         "--min-area: expected a finite number, got -1.0"),
        (OptionError("--output", "x", "a folder"), [], "--output: expected a folder, got 'x'"),
    ],
)
def test_library_option_names_are_shown_as_flags(
    error: OptionError, args: list[str], message: str
) -> None:
    assert flag_message(error, args) == message


# (arguments, the one error line); {f} the tiny COCO file, {out} an output path, {dup} a
# copy of it whose last category repeats the id 3 and {fdir} a folder for split. Each
# names the option as typed (-d, not --drop-categories), an argument as it is (INPUTS)
# and plain values (3, not np.int64(3)).
NAMED: list[tuple[list[str], str]] = [
    (["filter", "{f}", "-o", "{out}", "-d", "nonexist"], "error: -d: expected a category "
     "name of the dataset (person, bicycle, car, motorcycle, airplane, bus, train, truck, "
     "...), got 'nonexist'"),
    (["filter", "{f}", "-o", "{out}", "--drop-category", "nonexist"], "error: "
     "--drop-category: expected a category name of the dataset (person, bicycle, car, "
     "motorcycle, airplane, bus, train, truck, ...), got 'nonexist'"),
    (["filter", "{f}", "-o", "{out}", "-c", "nonexist"], "error: -c: expected a category "
     "name of the dataset (person, bicycle, car, motorcycle, airplane, bus, train, truck, "
     "...), got 'nonexist'"),
    (["filter", "{f}", "-o", "{out}", "--keep-category=nonexist"], "error: --keep-category: "
     "expected a category name of the dataset (person, bicycle, car, motorcycle, airplane, "
     "bus, train, truck, ...), got 'nonexist'"),
    (["split", "{f}", "-o", "{fdir}", "--ratio", "a/b=1"],
     "error: --ratio: expected split names usable as file names, got 'a/b'"),
    (["merge", "{f}", "-o", "{out}"],
     "error: INPUTS: expected at least two files to merge, got ['{f}']"),
    (["categories", "{dup}", "-o", "{out}", "--sort", "name"], "error: {dup}: "
     "categories[80].id: duplicate category id 3 (first at categories[2]); annotations would "
     "be ambiguous"),
    (["merge", "{f}", "{dup}", "-o", "{out}"], "error: {dup}: categories[80].id: duplicate "
     "category id 3 (first at categories[2])"),
    (["categories", "{f}", "-o", "{out}", "--rename", "person=car"], "error: --rename: "
     "expected a new name that no other category has ('car' would name two; --merge "
     "combines categories), got 'car'"),
    (["sample", "{f}", "-o", "{out}", "--count", "2", "--only-negatives", "--with-category",
      "person"], "error: --with-category: expected --with-category or --only-negatives, not "
     "both (an image without annotations holds no category), got ['person']"),
    (["sample", "{f}", "-o", "{out}", "--repeat", "nonexist=2"], "error: --repeat: expected "
     "a category name of the dataset (person, bicycle, car, motorcycle, airplane, bus, "
     "train, truck, ...), got 'nonexist'"),
]


# (arguments, the one error line): values no one can mean, refused before anything is
# read or written ({f} the tiny COCO file, {out} an output path)
NONSENSE: list[tuple[list[str], str]] = [
    (["filter", "{f}", "-o", "{out}", "--min-area", "-5"],
     "error: --min-area: expected a finite number >= 0, got -5.0"),
    (["filter", "{f}", "-o", "{out}", "--min-area", "nan"],
     "error: --min-area: expected a finite number >= 0, got nan"),
    (["filter", "{f}", "-o", "{out}", "--min-area", "inf"],
     "error: --min-area: expected a finite number >= 0, got inf"),
    (["filter", "{f}", "-o", "{out}", "--max-area", "-1"],
     "error: --max-area: expected a number >= 0, got -1.0"),
    (["filter", "{f}", "-o", "{out}", "--min-area", "100", "--max-area", "10"],
     "error: --max-area: expected a number >= --min-area (100), got 10.0"),
    (["filter", "{f}", "-o", "{out}", "--min-width", "-1"],
     "error: --min-width: expected a finite number >= 0, got -1.0"),
    (["filter", "{f}", "-o", "{out}", "--min-height", "-0.5"],
     "error: --min-height: expected a finite number >= 0, got -0.5"),
    (["filter", "{f}", "-o", "{out}", "--category-area", "person=5:1"],
     "error: --category-area: expected NAME=MIN:MAX with 0 <= MIN <= MAX, got 'person=5:1'"),
    (["filter", "{f}", "-o", "{out}", "--category-area", "person=-5:"],
     "error: --category-area: expected NAME=MIN:MAX with 0 <= MIN <= MAX, got 'person=-5:'"),
    (["filter", "{f}", "-o", "{out}", "--image-glob", "["], "error: --image-glob: expected "
     "a shell pattern ('[' opens a set of characters that ']' closes; [[] matches a '[' "
     "itself), got '['"),
    (["filter", "{f}", "-o", "{out}", "--exclude-glob", "*[0-9.jpg"], "error: "
     "--exclude-glob: expected a shell pattern ('[' opens a set of characters that ']' "
     "closes; [[] matches a '[' itself), got '*[0-9.jpg'"),
]


@pytest.mark.parametrize(("args", "line"), NAMED + NONSENSE,
                         ids=[" ".join(a) for a, _ in NAMED + NONSENSE])
def test_one_error_line_names_the_option_as_typed(args: list[str], line: str,
                                                  tmp_path: Path) -> None:
    """NAMED: messages name the option (and value) as typed; NONSENSE: values no one can
    mean are refused before anything is read or written. One line, exit 2, no output."""
    import json

    data = json.loads(Path(F).read_text(encoding="utf-8"))
    data["categories"].append({"id": 3, "name": "again"})
    dup = tmp_path / "dup.json"
    dup.write_text(json.dumps(data), encoding="utf-8")
    values = {"f": F, "out": str(tmp_path / "out.json"), "dup": str(dup),
              "fdir": str(tmp_path / "parts")}
    res = run(*[a.format(**values) for a in args], cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [line.format(**values)]
    assert not (tmp_path / "out.json").exists()


# (arguments, the note line): values that may be meant, done, and said in one line
NOTED: list[tuple[list[str], str]] = [
    (["filter", "{f}", "-o", "{out}", "--image-glob", "x*", "--image-glob", "0*"],
     "  --image-glob 'x*' matches no image"),
    (["filter", "{f}", "-o", "{out}", "--exclude-glob", "*.png"],
     "  --exclude-glob '*.png' matches no image"),
    (["filter", "{f}", "-o", "{out}", "--image-glob", "[[]*"],
     "  --image-glob '[[]*' matches no image"),
    (["split", "{f}", "-o", "{fdir}", "--ratio", "train=0.8", "--ratio", "val=0.1"],
     "the ratios sum to 0.9, not 1: used as weights (train 0.889, val 0.111)"),
    (["split", "{f}", "-o", "{fdir}", "--ratio", "a=1", "--ratio", "b=1"],
     "the ratios sum to 2, not 1: used as weights (a 0.500, b 0.500)"),
]


@pytest.mark.parametrize(("args", "line"), NOTED, ids=[" ".join(a) for a, _ in NOTED])
def test_a_value_that_may_be_a_slip_is_said(args: list[str], line: str,
                                            tmp_path: Path) -> None:
    values = {"f": F, "out": str(tmp_path / "out.json"), "fdir": str(tmp_path / "parts")}
    res = run(*[a.format(**values) for a in args], cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines().count(line) == 1, res.stderr


def test_help_paragraphs_are_left_to_the_terminal_to_wrap() -> None:
    """typer's rich help keeps every newline: each paragraph of every command's help is
    one line (reflowed from the docstring), so an 80- or 200-column terminal wraps it."""
    from typer.main import get_command

    from cocokit.cli import app

    def helps(cmd: Any, name: str) -> Iterator[tuple[str, str]]:
        subs = getattr(cmd, "commands", None)
        if subs:
            for n, sub in subs.items():
                yield from helps(sub, f"{name} {n}")
        else:
            yield name, cmd.help or ""

    found = list(helps(get_command(app), "cocokit"))
    assert len(found) > 20
    for name, text in found:
        paragraphs = text.split("\n\n")
        assert len(paragraphs) >= 2 and any(p.startswith("Example: ") for p in paragraphs), name
        assert all("\n" not in p and p == p.strip() for p in paragraphs), name
