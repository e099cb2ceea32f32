"""Options with a multiplying effect (issue 18, item 3): checked against what the run
would write before any work, refused over the documented limits unless --yes; and
nonsensical values refused as usage errors naming the flag."""

from __future__ import annotations

import importlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cocokit
from cocokit.augment import HorizontalFlip, Pipeline, Resize
from cocokit.cli import _options, main
from cocokit.slicing import tile_counts, tile_grid
from tests.test_yaml_limits import _run_cli

DATA = Path(__file__).resolve().parent / "data"
F = str(DATA / "tiny_coco_val2017.json")  # 6 images of about 640 x 480
IMAGES = ("tiny-coco-images", "images", "val2017")
# 1-pixel tiles: one per pixel of the 6 images
SIZES = [(im["width"], im["height"]) for im in json.loads(Path(F).read_text())["images"]]
PIXELS = sum(w * h for w, h in SIZES)
TILES_256 = sum(len(tile_grid(w, h, 256, 0.2)) for w, h in SIZES)


@pytest.fixture
def images(real_data: Path) -> Path:
    folder = real_data.joinpath(*IMAGES)
    if not folder.is_dir():
        pytest.skip(f"real images not available: {folder}")
    return folder


def _pipeline(tmp_path: Path, text: str = "pipeline: [hflip]\n") -> str:
    path = tmp_path / "aug.yaml"
    path.write_text(text)
    return str(path)


def _refused(args: list[str], capsys: pytest.CaptureFixture[str], match: str) -> str:
    """The CLI exits 2 with one error line matching ``match``."""
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert re.search(match, lines[0]), lines[0]
    assert "Traceback" not in err
    return lines[0]


# -- refused up front, nothing written ----------------------------------------------------

# (arguments after the command; {p} a pipeline of one flip, {o} the output; a regex)
RUNAWAY: list[tuple[list[str], str]] = [
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "1000000000"],
     r"--copies: expected at most 1,000,000 images and 1\.0 TB per run \(this one would "
     r"write at least 1,000,000,000 images"),
    # refused before the dataset is read: the file need not even be there
    (["augment", "{o}-missing.json", "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies",
      "1000000000"], r"--copies: .*at least 1,000,000,000 images"),
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "500000"],
     r"--copies: .*would write 3,000,006 images, about [\d.]+ GB"),  # 6 x 500,000 + 6
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "200000",
      "--no-originals"], r"--copies: .*1,200,000 images"),
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--workers", "100000"],
     r"--workers: expected at most \d+ \(4 per core"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--size", "1"],
     rf"--size/--overlap: expected at most 1,000,000 images .* would write {PIXELS:,} tiles"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--size", "4x2", "--overlap", "0.9"],
     r"--size/--overlap: .*tiles.*got '4x2 / 0\.9x0\.9'"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--workers", "100000"], r"--workers: expected at most"),
    (["sample", F, "-o", "{o}.json", "--repeat", "person=1000000000"],
     r"--repeat: expected at most 1,000,000 images .*5,000,000,001 images"),
]

NONSENSE: list[tuple[list[str], str]] = [
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "0"],
     r"--copies: expected an integer >= 1, got 0"),
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "-3"],
     r"--copies: expected an integer >= 1"),
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--workers", "0"],
     r"--workers: expected an integer >= 1"),
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--seed", "-1"],
     r"--seed: expected an integer >= 0"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--size", "0"], r"--size: expected a positive"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--size", "512x-1"], r"--size: expected"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--overlap", "1"], r"--overlap: expected .*\[0, 1\)"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--overlap", "-0.1"], r"--overlap: expected"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--overlap", "0.2x1.5"], r"--overlap: expected"),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--workers", "0"], r"--workers: expected"),
    (["draw", F, "-i", "{i}", "-o", "{o}", "--sample", "0"], r"--sample: expected a positive"),
    (["draw", F, "-i", "{i}", "-o", "{o}", "--sample", "2", "--seed", "-1"],
     r"--seed: expected an integer >= 0"),
    (["sample", F, "-o", "{o}.json", "--count", "2", "--seed", "-1"], r"--seed: expected"),
    (["split", F, "-o", "{o}", "--ratio", "a=0.5", "--ratio", "b=0.5", "--seed", "-1"],
     r"--seed: expected"),
    (["sample", F, "-o", "{o}.json", "--repeat", "person=0"], r"--repeat"),
    # each space of --indent is written on every line (1e8 ended in a MemoryError)
    (["export", F, "-o", "{o}.json", "--indent", "100000000"],
     r"--indent: expected a number of spaces from 0 to 16"),
    (["export", F, "-o", "{o}.json", "--indent", "-1"], r"--indent: expected"),
    (["categories", F, "-o", "{o}.json", "--reindex", "100000000000000000000000"],
     r"--reindex: expected a whole number from 0 to 2\*\*53"),
]


@pytest.mark.parametrize(("args", "match"), RUNAWAY + NONSENSE)
def test_refused_before_any_work(tmp_path: Path, images: Path,
                                 capsys: pytest.CaptureFixture[str], args: list[str],
                                 match: str) -> None:
    out = tmp_path / "out"
    filled = [a.format(i=images, o=out, p=_pipeline(tmp_path)) for a in args]
    _refused(filled, capsys, match)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug.yaml"]  # nothing written


def test_pipeline_canvas_over_the_limit(tmp_path: Path, images: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    pipe = _pipeline(tmp_path, "pipeline: [{scale: {factor: 1000}}]\n")
    args = ["augment", F, "-i", str(images), "-o", str(tmp_path / "o"), "-p", pipe]
    _refused(args, capsys, r"--pipeline: expected copies of at most 178,956,970 pixels "
             r"\(this pipeline draws a canvas of [\d,]+ pixels")
    assert not (tmp_path / "o").exists()


def test_copies_of_a_billion_refused_in_a_subprocess(tmp_path: Path, images: Path) -> None:
    """The issue's case: refused at once (it used to grow by ~10 MB/s until killed)."""
    out = tmp_path / "out"
    stats, stderr = _run_cli(["augment", F, "-i", str(images), "-o", str(out), "-p",
                              _pipeline(tmp_path), "--copies", "1000000000"], tmp_path)
    assert stats["rc"] == 2 and stderr.count("\n") == 1 and "--copies" in stderr
    assert stats["seconds"] < 5 and stats["maxrss_mb"] < 150
    assert not out.exists()


# -- under the limit, or with --yes, the run goes ahead -----------------------------------


@pytest.mark.parametrize(("args", "written"), [
    # 6 images x 2 copies + 6 originals = 18 images
    (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}", "--copies", "2", "-q"], 18),
    (["slice", F, "-i", "{i}", "-o", "{o}", "--size", "256", "-q"], TILES_256),
    (["draw", F, "-i", "{i}", "-o", "{o}", "-q"], None),
    (["sample", F, "-o", "{o}", "--repeat", "person=3", "-q"], 16),
])
def test_yes_lets_a_large_run_go(tmp_path: Path, images: Path,
                                 monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str], args: list[str],
                                 written: int | None) -> None:
    # the limit lowered under what the run writes (6 drawings; 12 or more images)
    monkeypatch.setattr(_options, "MAX_OUTPUT_IMAGES", 5 if args[0] == "draw" else 10)
    out = tmp_path / ("out.json" if args[0] == "sample" else "out")
    filled = [a.format(i=images, o=out, p=_pipeline(tmp_path)) for a in args]
    _refused(filled, capsys, r"expected at most (10|5) images")
    assert not out.exists()
    assert main([*filled, "--yes"]) == 0, capsys.readouterr().err
    if args[0] == "draw":
        assert len(list(out.rglob("*.jpg"))) == 6
        return
    coco = out if args[0] == "sample" else next(
        p for p in out.rglob("*.json"))
    assert len(json.loads(coco.read_text())["images"]) == written


def test_runs_under_the_limit_need_no_yes(tmp_path: Path, images: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["augment", F, "-i", str(images), "-o", str(out), "-p", _pipeline(tmp_path),
                 "--copies", "1", "-q"]) == 0, capsys.readouterr().err
    assert len(json.loads((out / "annotations.json").read_text())["images"]) == 12


# -- --workers: capped per core for the local engine only ---------------------------------


@pytest.mark.parametrize(("workers", "yes", "engine", "refused"), [
    (None, False, "local", None),
    (8, False, "local", None),
    (9, False, "local", r"at most 8 \(4 per core"),
    (9, True, "local", None),
    (0, True, "local", r"an integer >= 1"),
    (64, False, "ray", None),  # a cluster's size is not this machine's
    (10**6, False, "ray", None),
    (0, False, "ray", r"an integer >= 1"),
    (-2, True, "ray", r"an integer >= 1"),
])
def test_check_workers(monkeypatch: pytest.MonkeyPatch, workers: int | None, yes: bool,
                       engine: str, refused: str | None) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the cap: 4 per core, 8
    if refused is None:
        _options.check_workers(workers, yes, engine)
        return
    with pytest.raises(cocokit.errors.OptionError, match=rf"^--workers: expected {refused}"):
        _options.check_workers(workers, yes, engine)


class _Reached(Exception):
    """Raised by the stand-in of a command's work: the options were all accepted."""


#: each command's arguments, and the function (module, name) that does its work
WORKERS_COMMANDS: dict[str, tuple[list[str], str, str]] = {
    "augment": (["augment", F, "-i", "{i}", "-o", "{o}", "-p", "{p}"],
                "cocokit.augment.apply", "augment"),
    "slice": (["slice", F, "-i", "{i}", "-o", "{o}"], "cocokit.slicing", "slice_dataset"),
    "check": (["check", F, "-i", "{i}"], "cocokit.quality.check", "check_dataset"),
}


@pytest.mark.parametrize("command", sorted(WORKERS_COMMANDS))
@pytest.mark.parametrize(("options", "refused"), [
    (["--workers", "9"], r"--workers: expected at most 8 \(4 per core"),
    (["--workers", "9", "--engine", "local"], r"--workers: expected at most 8"),
    (["--workers", "9", "--yes"], None),
    (["--workers", "8"], None),
    (["--workers", "64", "--engine", "ray"], None),  # not refused for a cluster
    (["--workers", "0", "--engine", "ray"], r"--workers: expected an integer >= 1"),
    (["--workers", "0", "--yes"], r"--workers: expected an integer >= 1"),
])
def test_workers_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str], command: str,
                        options: list[str], refused: str | None) -> None:
    """The same --workers rule on each command that takes it; the work itself is a
    stand-in, so no worker process or Ray cluster starts."""
    args, module, name = WORKERS_COMMANDS[command]
    monkeypatch.setattr(os, "cpu_count", lambda: 2)  # the cap: 4 per core, 8
    calls: list[dict[str, object]] = []

    def work(*_: object, **kwargs: object) -> None:
        calls.append(kwargs)
        raise _Reached

    monkeypatch.setattr(importlib.import_module(module), name, work)
    filled = [a.format(i=tmp_path, o=tmp_path / "out", p=_pipeline(tmp_path))
              for a in [*args, *options, "-q"]]
    if refused is not None:
        _refused(filled, capsys, refused)
        assert calls == []
        return
    with pytest.raises(_Reached):
        main(filled)
    engine = "ray" if "ray" in options else "local"
    assert [(c["workers"], c["engine"]) for c in calls] == [(int(options[1]), engine)]


@pytest.mark.parametrize("command", sorted(WORKERS_COMMANDS))
def test_a_wrong_engine_is_refused_at_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str],
                                              command: str) -> None:
    """--engine is the one choice of local and ray on each command that takes it: a
    wrong one is a usage error naming --engine, the same on all three, before any work."""
    args, module, name = WORKERS_COMMANDS[command]
    calls: list[object] = []
    monkeypatch.setattr(importlib.import_module(module), name,
                        lambda *a, **k: calls.append(k))
    filled = [a.format(i=tmp_path, o=tmp_path / "out", p=_pipeline(tmp_path))
              for a in [*args, "--engine", "foo", "-q"]]
    assert main(filled) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    assert re.fullmatch(r"error: Invalid value for '--engine': 'foo' is not one of "
                        r"'local', 'ray'\.", errors[0]), err
    assert len(err.splitlines()) <= 2 and "Traceback" not in err  # at most a help hint
    assert calls == [] and not (tmp_path / "out").exists()


# -- the estimates ------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 2000), st.integers(1, 2000),
       st.floats(0, 0.95), st.floats(0, 0.95), st.booleans())
def test_tile_counts_match_the_grid(w: int, h: int, tw: int, th: int, ox: float, oy: float,
                                    auto: bool) -> None:
    from cocokit.slicing import auto_slice_params

    size, over = auto_slice_params(w, h) if auto else ((tw, th), (ox, oy))
    grid = tile_grid(w, h, size, over)
    tiles, pixels = tile_counts([w], [h], (tw, th), (ox, oy), auto=auto)
    assert tiles.tolist() == [len(grid)]
    assert pixels.tolist() == [int((grid[:, 2] * grid[:, 3]).sum())]


def test_tile_counts_on_real_sizes(real_data: Path) -> None:
    ds = cocokit.load(DATA / "tiny_coco_val2017.json")
    tiles, _ = tile_counts(ds.images.width, ds.images.height, 256, 0.2)
    assert tiles.tolist() == [len(tile_grid(w, h, 256, 0.2)) for w, h in zip(
        ds.images.width.tolist(), ds.images.height.tolist())]


@pytest.mark.parametrize(("ops", "expected"), [
    ([HorizontalFlip()], lambda w, h: float((w * h).sum())),
    ([Resize(100, 50)], lambda w, h: 5000.0 * len(w)),
    ([Resize(width=64, height=None)], lambda w, h: float(
        (64 * np.maximum(1, np.round(h * 64 / w))).sum())),
])
def test_estimate_pixels(ops: list, expected) -> None:  # type: ignore[no-untyped-def]
    w = np.array([640, 100, 3000], np.int64)
    h = np.array([480, 300, 2000], np.int64)
    total, largest = Pipeline(ops).estimate_pixels(w, h)
    if ops[0].name == "resize" and ops[0].height is None:
        assert total == pytest.approx(expected(w, h), rel=0.3)  # a mean ratio, not exact
    else:
        assert total == pytest.approx(expected(w, h))
    assert largest > 0


@pytest.mark.parametrize(("pixels", "suffix", "expected"), [
    (1000, "jpg", 750),
    (1000, ".JPEG", 750),
    (1000, "png", 3000),
    ([1000, 1000], ["jpg", "tif"], 3750),
])
def test_estimated_bytes(pixels, suffix, expected: int) -> None:  # type: ignore[no-untyped-def]
    assert _options.estimated_bytes(pixels, suffix) == expected


def test_the_documented_limits() -> None:
    doc = (Path(__file__).resolve().parents[1] / "docs" / "limits.md").read_text()
    assert f"{_options.MAX_OUTPUT_IMAGES:,}" in doc and "1 TB" in doc
    assert _options.MAX_OUTPUT_BYTES == 10**12
    assert f"{_options.MAX_WORKERS_PER_CORE} per core" in doc
