"""Faults of the output are failures of the run: a full disk (a 2 MB tmpfs), a read-only
file system or a folder without write permission ends export, slice, augment and YOLO
export with one line naming the output and the cause (exit 2), leaves the output as it
was and never counts as a bad input image (``--skip-bad-images`` does not hide it).
Special files and ``-`` as an output are refused. Real ``cocokit`` processes."""

from __future__ import annotations

import errno
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cocokit.cli import main
from cocokit.errors import OutputError
from cocokit.io.atomic import output_fault

from ._faults import PIPELINE_YAML, noise_images, run, tree

TINY = Path(__file__).parent / "data" / "tiny_coco_val2017.json"


def _mount(folder: Path, *options: str) -> str | None:
    """Mount a tmpfs on ``folder``; None when done, else why it could not be."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "mounting a tmpfs needs root on Linux"
    folder.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs",
                          str(folder)], capture_output=True, text=True)
    if res.returncode != 0:
        return f"mount -t tmpfs failed: {res.stderr.strip() or res.returncode}"
    return None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB file system (tmpfs), unmounted afterwards; skipped where it cannot be
    mounted (not root, no mount permission)."""
    disk = tmp_path / "disk"
    why = _mount(disk, "size=2m")
    if why is not None:
        pytest.skip(why)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 noise JPEGs (about 20 MB: more than the small disk holds) and imgs.json."""
    folder = tmp_path_factory.mktemp("photos") / "imgs"
    noise_images(folder, 20)
    return folder


def _one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def _commands(photos: Path, disk: Path, pipeline: Path) -> dict[str, list[str]]:
    coco = str(photos.with_suffix(".json"))
    return {
        "export": ["export", str(TINY), "-o", str(disk / "out.json")],
        "slice": ["slice", coco, "-i", str(photos), "-o", str(disk / "tiles"), "--size", "256",
                  "--workers", "1"],
        "slice-2-workers-skip": ["slice", coco, "-i", str(photos), "-o", str(disk / "tiles"),
                                 "--size", "256", "--workers", "2", "--skip-bad-images"],
        "augment": ["augment", coco, "-i", str(photos), "-o", str(disk / "aug"), "-p",
                    str(pipeline), "--copies", "2", "--workers", "1"],
        "augment-2-workers-skip": ["augment", coco, "-i", str(photos), "-o", str(disk / "aug"),
                                   "-p", str(pipeline), "--copies", "2", "--workers", "2",
                                   "--skip-bad-images"],
        "yolo-copy": ["export", coco, "--format", "yolo", "-i", str(photos), "-o",
                      str(disk / "yolo"), "--image-mode", "copy"],
    }


@pytest.mark.parametrize("command", ["export", "slice", "slice-2-workers-skip", "augment",
                                     "augment-2-workers-skip", "yolo-copy"])
def test_a_full_disk_fails_the_run_and_writes_nothing(
        small_disk: Path, photos: Path, tmp_path: Path, command: str) -> None:
    pipeline = tmp_path / "aug.yaml"
    pipeline.write_text(PIPELINE_YAML)
    args = _commands(photos, small_disk, pipeline)[command]
    if command == "export":  # a COCO file bigger than the disk
        big = tmp_path / "big.json"
        from ._faults import big_coco
        big_coco(big, 1500)
        args[1] = str(big)
    line = _one_error_line(run(*args, "-q"))
    assert "no space left" in line and str(small_disk) in line
    assert "image(s) could not be" not in line  # never a bad input image
    assert list(small_disk.iterdir()) == []  # nothing written, no COCO file at all


def test_a_full_disk_under_the_tiles_writes_no_coco_file_elsewhere(
        small_disk: Path, photos: Path, tmp_path: Path) -> None:
    coco_out = tmp_path / "tiles.json"
    res = run("slice", str(photos.with_suffix(".json")), "-i", str(photos), "-o",
              str(small_disk / "tiles"), "--size", "256", "--skip-bad-images",
              "--coco-output", str(coco_out), "-q")
    assert "no space left" in _one_error_line(res)
    assert not coco_out.exists() and list(small_disk.iterdir()) == []


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs holding an old output (out.json, tiles/a.jpg)."""
    disk = tmp_path / "ro"
    why = _mount(disk, "size=2m")
    if why is not None:
        pytest.skip(why)
    try:
        (disk / "out.json").write_text('{"old": true}')
        (disk / "tiles").mkdir()
        (disk / "tiles" / "a.jpg").write_bytes(b"old tile")
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("command", ["export", "slice", "augment", "yolo-copy"])
def test_a_read_only_output_fails_the_run_and_keeps_the_old_output(
        read_only_disk: Path, photos: Path, tmp_path: Path, command: str) -> None:
    pipeline = tmp_path / "aug.yaml"
    pipeline.write_text(PIPELINE_YAML)
    before = tree(read_only_disk)
    args = _commands(photos, read_only_disk, pipeline)[command]
    line = _one_error_line(run(*args, "-q"))
    assert "read-only file system" in line and str(read_only_disk) in line
    assert tree(read_only_disk) == before


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="root writes whatever the permissions say")
def test_an_output_folder_without_write_permission_fails_the_run(
        photos: Path, tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        res = run("export", str(TINY), "-o", str(locked / "out.json"), "-q")
        assert "permission denied" in _one_error_line(res)
    finally:
        locked.chmod(0o755)


# -- which errors are the output's ------------------------------------------------------


@pytest.mark.parametrize(("err", "output", "expected"), [
    (OSError(errno.ENOSPC, "full"), "/out", True),
    (OSError(errno.EDQUOT, "quota", "/in/a.jpg"), "/out", True),  # only writing does that
    (OSError(errno.EROFS, "ro"), "/out", True),
    (OSError(errno.EIO, "io"), "/out", True),  # no file named: the write's
    (OSError(errno.EIO, "io", "/out/a.jpg"), "/out", True),
    (OSError(errno.EIO, "io", "/in/a.jpg"), "/out", False),  # reading the input failed
    (OSError(errno.EACCES, "denied", "/in/a.jpg", None, "/out/a.jpg"), "/out", True),
    (OSError(errno.EACCES, "denied", "/in/a.jpg"), "/out", False),
    (OSError(errno.ENOENT, "missing", "/out/a.jpg"), "/out", False),
    (OutputError("/x", "cannot write"), "/out", True),
])
def test_output_faults_are_told_from_input_faults(err: OSError, output: str,
                                                  expected: bool) -> None:
    assert output_fault(err, output) is expected


# -- special files and "-" --------------------------------------------------------------


def _special(kind: str, path: Path) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        if os.geteuid() != 0:
            pytest.skip("making a device node needs root")
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 3))  # what /dev/null is
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
    else:
        (path.parent / "target.json").write_text("{}")
        path.symlink_to("target.json")


COMMANDS_WRITING_ONE_FILE = [
    ["export", "{f}"],
    ["filter", "{f}", "--keep-category", "person"],
    ["sample", "{f}", "--count", "2"],
    ["clip", "{f}"],
    ["categories", "{f}", "--rename", "person=human"],
    ["merge", "{f}", "{f}", "--on-duplicate", "keep"],
    ["stats", "{f}"],  # -o: the HTML report
]


@pytest.mark.skipif(os.name != "posix", reason="FIFOs, device nodes and sockets")
@pytest.mark.parametrize("kind", ["fifo", "device", "socket", "symlink"])
@pytest.mark.parametrize("command", COMMANDS_WRITING_ONE_FILE, ids=lambda c: c[0])
def test_an_existing_special_file_is_refused_not_replaced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str,
        command: list[str]) -> None:
    out = tmp_path / "out.json"
    _special(kind, out)
    mode = os.lstat(out).st_mode
    args = [a.replace("{f}", str(TINY)) for a in command]
    assert main([*args, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "refusing to replace it" in err[0], err
    assert os.lstat(out).st_mode == mode  # still the special file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out.json"] + (["target.json"] if kind == "symlink" else []))


@pytest.mark.parametrize("command", [
    *COMMANDS_WRITING_ONE_FILE,
    ["split", "{f}", "--ratio", "train=0.5", "--ratio", "val=0.5"],
    ["slice", "{f}", "-i", "{d}"],
])
def test_a_dash_output_is_refused_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        command: list[str]) -> None:
    args = [a.replace("{f}", str(TINY)).replace("{d}", str(tmp_path)) for a in command]
    monkeypatch.chdir(tmp_path)
    assert main([*args, "-o", "-", "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "'-' is not standard output here" in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_dot_slash_dash_is_a_file_called_dash(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", str(TINY), "-o", "./-", "-q"]) == 0
    assert (tmp_path / "-").is_file()


# -- a COCO file and its id map or report are written as one set -------------------------

#: a file no one can create (root included): /proc takes no new files (ENOENT)
NO_SUCH_FILE = "/proc/cocokit-side.json"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("command", [
    ["export", "{f}", "--image-ids", "auto", "--id-map", "{x}"],
    ["filter", "{f}", "--min-area", "10", "--id-map", "{x}"],
    ["filter", "{f}", "--min-area", "10", "--stream", "--id-map", "{x}"],
    ["clip", "{f}", "--id-map", "{x}"],
    ["categories", "{f}", "--rename", "person=human", "--id-map", "{x}"],
    ["repair", "{f}", "--report", "{x}"],
    ["merge", "{f}", "{f}", "--dedupe-images", "--id-map", "{t}", "--id-map", "{x}"],
], ids=["export", "filter", "filter-stream", "clip", "categories", "repair", "merge"])
def test_an_unwritable_id_map_or_report_keeps_the_old_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    out = tmp_path / "out.json"
    out.write_bytes(b'{"old": 1}')
    side = tmp_path / "first-map.json"  # merge: a first id map that could be written
    args = [a.replace("{f}", str(TINY)).replace("{x}", NO_SUCH_FILE).replace("{t}", str(side))
            for a in command]
    assert main([*args, "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {NO_SUCH_FILE}: "), err
    assert out.read_bytes() == b'{"old": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary file left


# -- an output folder that cannot be made ------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and /sys are Linux's")
@pytest.mark.parametrize("root", ["/proc", "/sys/kernel"])  # ENOENT; EPERM (EACCES if not root)
@pytest.mark.parametrize("command", [
    ["split", "{f}", "--ratio", "a=1"],
    ["draw", "{f}", "-i", "{d}", "--sample", "1"],
    ["slice", "{f}", "-i", "{d}", "--size", "256"],
], ids=lambda c: c[0])
def test_an_output_folder_that_cannot_be_made_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], root: str,
        command: list[str]) -> None:
    if not os.path.isdir(root):
        pytest.skip(f"{root} is not mounted here")
    out = f"{root}/cocokit-out"
    args = [a.replace("{f}", str(TINY)).replace("{d}", str(tmp_path)) for a in command]
    assert main([*args, "-o", out, "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: "), err
    assert not os.path.exists(out)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("command", COMMANDS_WRITING_ONE_FILE, ids=lambda c: c[0])
def test_a_folder_that_takes_no_file_is_worded_from_the_os(
        capsys: pytest.CaptureFixture[str], command: list[str]) -> None:
    # /proc exists but creating a file in it fails with ENOENT: not "no such folder"
    args = [a.replace("{f}", str(TINY)) for a in command]
    assert main([*args, "-o", "/proc/cocokit-out.json", "-q"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: /proc/cocokit-out.json: cannot create a file in /proc: no such file or "
        "directory"]


@pytest.mark.parametrize("command", [
    ["export", "{f}", "--image-ids", "auto"],
    ["filter", "{f}", "--min-area", "10"],
    ["clip", "{f}"],
    ["categories", "{f}", "--rename", "person=human"],
    ["merge", "{f}", "{g}", "--dedupe-images", "--id-map", "{m}"],
], ids=["export", "filter", "clip", "categories", "merge"])
@pytest.mark.parametrize("names", ["the input", "the output"])
def test_an_id_map_that_names_an_input_or_the_output_is_refused_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str],
        names: str) -> None:
    src, other, out = tmp_path / "in.json", tmp_path / "other.json", tmp_path / "out.json"
    src.write_bytes(TINY.read_bytes())
    other.write_bytes(TINY.read_bytes())
    out.write_bytes(b'{"old": 1}')
    target = src if names == "the input" else out
    args = [a.replace("{f}", str(src)).replace("{g}", str(other))
            .replace("{m}", str(tmp_path / "m.json")) for a in command]
    assert main([*args, "--id-map", str(target), "-o", str(out), "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: --id-map: "), err
    assert "other than the input(s) and -o/--output" in err[0]
    assert src.read_bytes() == TINY.read_bytes() and out.read_bytes() == b'{"old": 1}'
