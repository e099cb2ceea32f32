"""Staged output folders (cocokit.io.staging): a failed slice or augment leaves the output
folder as it was, and nothing is created when nothing is written (issue 14)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import cocokit
from cocokit.augment import HorizontalFlip, augment
from cocokit.errors import (
    BadImagesError,
    Interrupted,
    LeftoversRemoved,
    OptionError,
    OutputError,
)
from cocokit.io.staging import Staging, staged
from cocokit.io.stream import open_stream
from cocokit.slicing import slice_dataset

from .conftest import memory_files, real_path

SAHI = ("sahi-testdata", "coco_utils")


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones included) with its content hash."""
    out: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- the mechanism ----------------------------------------------------------------------


def test_new_folder_is_renamed_into_place(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"  # parents missing too
    with staged(target) as stage:
        assert stage.local and Path(stage.path).name.startswith(".out.partial-")
        assert Path(stage.path).parent == tmp_path  # the nearest folder that exists
        assert not target.exists() and not (tmp_path / "a").exists()  # nothing yet
        (Path(stage.path) / "sub").mkdir()
        (Path(stage.path) / "sub" / "x.txt").write_text("x")
    assert snapshot(target) == {"sub": "dir",
                                "sub/x.txt": hashlib.sha256(b"x").hexdigest()}
    assert hidden(tmp_path) == []


def test_existing_folder_gets_files_merged_in(tmp_path: Path) -> None:
    target = tmp_path / "out"
    (target / "sub").mkdir(parents=True)
    (target / "keep.txt").write_text("old")
    (target / "sub" / "same.txt").write_text("old")
    with staged(target) as stage:
        assert Path(stage.path).parent == tmp_path  # beside the output
        (Path(stage.path) / "sub").mkdir()
        (Path(stage.path) / "sub" / "same.txt").write_text("new")
        (Path(stage.path) / "new.txt").write_text("new")
    assert (target / "keep.txt").read_text() == "old"
    assert (target / "sub" / "same.txt").read_text() == "new"
    assert (target / "new.txt").read_text() == "new"
    assert hidden(tmp_path) == [] and hidden(target) == []


def test_replace_swaps_a_folder_as_a_whole(tmp_path: Path) -> None:
    target = tmp_path / "out"
    (target / "images").mkdir(parents=True)
    (target / "images" / "old.jpg").write_bytes(b"old")
    (target / "annotations.json").write_text("{}")
    with staged(target, replace=("images",)) as stage:
        (Path(stage.path) / "images").mkdir()
        (Path(stage.path) / "images" / "new.jpg").write_bytes(b"new")
        (Path(stage.path) / "annotations.json").write_text('{"new": 1}')
    assert sorted(p.name for p in (target / "images").iterdir()) == ["new.jpg"]
    assert (target / "annotations.json").read_text() == '{"new": 1}'
    assert hidden(tmp_path) == [] and hidden(target) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
@pytest.mark.parametrize("exists", [False, True])
def test_failure_leaves_the_folder_as_it_was(tmp_path: Path, error: BaseException,
                                             exists: bool) -> None:
    target = tmp_path / "out"
    if exists:
        target.mkdir()
        (target / "old.txt").write_text("old")
    before = snapshot(tmp_path)
    with pytest.raises(type(error)), staged(target) as stage:
        (Path(stage.path) / "old.txt").write_text("half")
        (Path(stage.path) / "new.txt").write_text("new")
        raise error
    assert snapshot(tmp_path) == before
    assert target.exists() == exists


def test_nothing_written_creates_nothing(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with staged(target) as stage:
        (Path(stage.path) / "empty-sub-folder").mkdir()  # folders alone are not output
    assert not target.exists() and hidden(tmp_path) == []


def test_a_file_is_not_an_output_folder(tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(OptionError, match="a folder"):
        Staging(tmp_path / "out")
    assert hidden(tmp_path) == []


def test_a_url_is_written_directly_and_what_was_recorded_removed(memory_fs: Any) -> None:
    fs, root = memory_fs
    fs.pipe_file(f"{root}/out/old.txt", b"old")
    url = f"memory://{root}/out"
    with pytest.raises(RuntimeError), staged(url) as stage:
        assert not stage.local and stage.path == url
        fs.pipe_file(f"{root}/out/new.txt", b"new")
        stage.record([f"{url}/new.txt", f"{url}/never-written.txt"])
        raise RuntimeError("boom")
    assert memory_files(fs, f"{root}/out") == {"old.txt": b"old"}
    with staged(url) as stage:
        fs.pipe_file(f"{root}/out/new.txt", b"new")
        stage.record([f"{url}/new.txt"])
    assert memory_files(fs, f"{root}/out") == {"new.txt": b"new", "old.txt": b"old"}


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_the_staging_folder_names_its_run(tmp_path: Path) -> None:
    with staged(tmp_path / "out") as stage:
        assert Path(stage.path).name.startswith(f".out.partial-{os.getpid()}-")


@pytest.mark.parametrize(("name", "removed"), [
    (".out.partial-{dead}-0123abcd", True),  # a killed run's
    (".out.partial-{me}-0123abcd", False),  # this run's
    (".out.partial-1-0123abcd", False),  # a live run's
    (".out.partial-0123abcd", False),  # an older cocokit's: no pid to judge by
    (".other.partial-{dead}-0123abcd", False),  # another output's
    ("out.partial-{dead}-0123abcd", False),  # not hidden
])
def test_a_run_removes_only_the_staging_folders_of_dead_runs_of_its_output(
        tmp_path: Path, name: str, removed: bool) -> None:
    name = name.format(dead=_dead_pid(), me=os.getpid())
    (tmp_path / name).mkdir()
    (tmp_path / name / "tile.jpg").write_bytes(b"x")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with staged(tmp_path / "out") as stage:
            (Path(stage.path) / "a.txt").write_text("a")
    assert (tmp_path / name).exists() is not removed
    notes = [str(w.message) for w in seen if issubclass(w.category, LeftoversRemoved)]
    assert notes == ([f"removed 1 leftover staging folder(s) of an interrupted run in "
                      f"{tmp_path}: {name}"] if removed else [])
    assert (tmp_path / "out" / "a.txt").read_text() == "a"


def test_leftovers_inside_an_existing_output_are_removed_too(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / f".partial-{_dead_pid()}-0123abcd").mkdir(parents=True)
    (out / ".partial-1-0123abcd").mkdir()
    with pytest.warns(LeftoversRemoved), staged(out):
        pass
    assert hidden(out) == [".partial-1-0123abcd"]


def test_an_output_error_names_the_file_where_it_would_go(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as info, staged(tmp_path / "out") as stage:
        raise OutputError(str(Path(stage.path) / "sub" / "a.jpg"), "cannot write: no space")
    assert info.value.file == str(tmp_path / "out" / "sub" / "a.jpg")
    assert hidden(tmp_path) == [] and not (tmp_path / "out").exists()


def test_an_interrupt_names_the_output_left_untouched(tmp_path: Path) -> None:
    with pytest.raises(Interrupted) as info, staged(tmp_path / "out") as stage:
        (Path(stage.path) / "a.txt").write_text("a")
        raise Interrupted(signal.SIGTERM)
    assert info.value.untouched == [str(tmp_path / "out")]
    assert hidden(tmp_path) == [] and not (tmp_path / "out").exists()


# -- slice and augment: one mechanism -----------------------------------------------------


def with_missing_image(real_data_json: Path, tmp_path: Path) -> Path:
    """A real COCO file (SAHI's terrain2) plus, last, an image that is not there."""
    doc = json.loads(real_data_json.read_bytes())
    img = dict(doc["images"][0], id=10**6, file_name="gone.png")
    doc["images"].append(img)
    doc["annotations"].append(dict(doc["annotations"][0], id=10**6, image_id=10**6))
    out = tmp_path / "with_missing.json"
    out.write_text(json.dumps(doc))
    return out


def run_slice(src: Path, images: Path, out: Path) -> None:
    slice_dataset(cocokit.load(src), images, out, size=256, workers=1)


def run_slice_stream(src: Path, images: Path, out: Path) -> None:
    slice_dataset(open_stream(src), images, out, images_per_chunk=1, size=256, workers=1)


def run_slice_pool(src: Path, images: Path, out: Path) -> None:
    slice_dataset(cocokit.load(src), images, out, size=256, workers=2)


def run_augment(src: Path, images: Path, out: Path) -> None:
    augment(cocokit.load(src), [HorizontalFlip()], images, out, overwrite=True, workers=1)


RUNS: list[Callable[[Path, Path, Path], None]] = [run_slice, run_slice_stream, run_slice_pool,
                                                  run_augment]


@pytest.mark.parametrize("run", RUNS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("exists", [False, True])
def test_failed_run_leaves_the_output_folder_as_it_was(tmp_path: Path, run: Any,
                                                       exists: bool) -> None:
    images = real_path(*SAHI)
    src = with_missing_image(real_path(*SAHI, "terrain2_coco.json"), tmp_path)
    work = tmp_path / "work"
    out = work / "out"
    work.mkdir()
    if exists:  # an earlier run's output, which a failed run must not touch
        (out / "images").mkdir(parents=True)
        (out / "images" / "earlier.png").write_bytes(b"earlier")
        (out / "annotations.json").write_text("{}")
        (out / "terrain2_0_0_256_256.jpg").write_bytes(b"earlier tile")
    before = snapshot(work)
    with pytest.raises(BadImagesError, match=r"gone\.png"):
        run(src, images, out)
    assert snapshot(work) == before  # no tile, no staging folder, nothing created


@pytest.mark.parametrize("run", [run_slice, run_slice_stream, run_augment],
                         ids=lambda f: f.__name__)
def test_interrupted_run_leaves_the_output_folder_as_it_was(
        tmp_path: Path, run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while writing: the staging folder goes, the output folder stays as it was."""
    import cocokit.augment.apply as apply_mod
    import cocokit.slicing as slicing_mod

    images = real_path(*SAHI)
    src = real_path(*SAHI, "terrain2_coco.json")
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier.txt").write_text("earlier")
    before = snapshot(tmp_path)

    def interrupted(*_: Any, **__: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(slicing_mod, "_assemble", interrupted)  # after the tiles are written
    monkeypatch.setattr(apply_mod, "_assemble", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(src, images, out)
    assert snapshot(tmp_path) == before


def test_slice_with_every_image_missing_creates_nothing(tmp_path: Path) -> None:
    src = cocokit.load(real_path(*SAHI, "terrain2_coco.json"))
    out = tmp_path / "tiles"
    tiled, summary = slice_dataset(src, tmp_path, out, size=256, workers=1,
                                   skip_bad_images=True)
    assert summary.tiles == len(tiled.images) == 0
    assert len(summary.skipped) == len(src.images)
    assert not out.exists() and hidden(tmp_path) == []


def test_successful_slice_adds_tiles_beside_earlier_files(tmp_path: Path) -> None:
    src = cocokit.load(real_path(*SAHI, "terrain2_coco.json"))
    out = tmp_path / "tiles"
    out.mkdir()
    (out / "earlier.txt").write_text("earlier")
    tiled, summary = slice_dataset(src, real_path(*SAHI), out, size=256, workers=1)
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == {"earlier.txt", *tiled.images.file_name.tolist()}
    assert summary.tiles == len(tiled.images) > 1
    assert hidden(tmp_path) == [] and hidden(out) == []


def test_slice_of_a_stream_stages_its_coco_file_with_the_tiles(tmp_path: Path) -> None:
    src = real_path(*SAHI, "terrain2_coco.json")
    out = tmp_path / "tiles"
    summary = slice_dataset(open_stream(src), real_path(*SAHI), out, images_per_chunk=1,
                            size=256, workers=1)
    doc = json.loads((out / "terrain2_coco.json").read_bytes())
    assert len(doc["images"]) == summary.tiles
    assert all((out / i["file_name"]).is_file() for i in doc["images"])
    assert hidden(tmp_path) == []


def test_failed_slice_to_a_url_removes_its_tiles(tmp_path: Path, memory_fs: Any) -> None:
    fs, root = memory_fs
    fs.pipe_file(f"{root}/tiles/earlier.txt", b"earlier")
    src = with_missing_image(real_path(*SAHI, "terrain2_coco.json"), tmp_path)
    with pytest.raises(BadImagesError, match=r"gone\.png"):
        slice_dataset(cocokit.load(src), real_path(*SAHI), f"memory://{root}/tiles", size=256,
                      workers=1)
    assert memory_files(fs, f"{root}/tiles") == {"earlier.txt": b"earlier"}


def test_cli_slice_failure_leaves_no_tiles(tmp_path: Path) -> None:
    from cocokit.cli import main

    src = with_missing_image(real_path(*SAHI, "terrain2_coco.json"), tmp_path)
    out = tmp_path / "out"
    args = ["slice", str(src), "--images", str(real_path(*SAHI)), "-o", str(out), "-q",
            "--workers", "1", "--size", "256"]
    assert main(args) == 1
    assert not out.exists() and hidden(tmp_path) == []
    assert os.listdir(tmp_path) == ["with_missing.json"]


def test_a_new_output_folder_gets_the_usual_permissions(tmp_path: Path) -> None:
    """The staging folder becomes the output folder: not owner-only like a temp folder."""
    usual = tmp_path / "usual"
    usual.mkdir()
    with staged(tmp_path / "out") as stage:
        (Path(stage.path) / "x.txt").write_text("x")
    assert (tmp_path / "out").stat().st_mode & 0o777 == usual.stat().st_mode & 0o777
