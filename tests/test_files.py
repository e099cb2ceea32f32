"""Annotation files as ``.json.gz`` and as fsspec URLs (``memory://``) through the one
reader and the one writer, and so through every command: export, filter, info,
validate, convert."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

import cocokit
from cocokit.cli import main
from cocokit.errors import InputError
from cocokit.io import files
from tests.conftest import real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")


@pytest.mark.parametrize("name", ["out.json.gz", "out.JSON.GZ"])
def test_gzip_chosen_by_suffix(tmp_path: Path, name: str) -> None:
    ds = cocokit.load(real_path(*MINI))
    cocokit.save(ds, tmp_path / name)
    data = (tmp_path / name).read_bytes()
    assert data[:2] == files.GZIP_MAGIC
    plain = tmp_path / "plain.json"
    cocokit.save(ds, plain)
    assert gzip.decompress(data) == plain.read_bytes()
    again = cocokit.load(tmp_path / name)
    assert list(again.annotations) == list(ds.annotations)
    # the same input gives the same bytes (no time stamp in the gzip header)
    cocokit.save(ds, tmp_path / "twice.json.gz")
    assert (tmp_path / "twice.json.gz").read_bytes() == data


def test_gzip_told_by_content_and_broken_gzip(tmp_path: Path) -> None:
    doc = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "a"}]}
    (tmp_path / "odd.json").write_bytes(gzip.compress(json.dumps(doc).encode()))
    assert len(cocokit.load(tmp_path / "odd.json").categories) == 1
    (tmp_path / "bad.json.gz").write_bytes(files.GZIP_MAGIC + b"garbage")
    with pytest.raises(InputError, match="broken gzip data") as e:
        cocokit.load(tmp_path / "bad.json.gz")
    assert e.value.file == str(tmp_path / "bad.json.gz")


def test_memory_url_read_and_write(memory_fs: tuple[Any, str]) -> None:
    fs, root = memory_fs
    ds = cocokit.load(real_path(*MINI))
    for name in ("a.json", "sub/b.json.gz"):
        url = f"memory://{root}/{name}"
        cocokit.save(ds, url)
        assert fs.isfile(f"{root}/{name}")
        back = cocokit.load(url)
        assert back.source == url
        assert list(back.images) == list(ds.images)
    with pytest.raises(InputError, match="no such file"):
        cocokit.load(f"memory://{root}/missing.json")
    assert cocokit.validate(f"memory://{root}/sub/b.json.gz").ok


def test_failed_url_write_leaves_nothing(memory_fs: tuple[Any, str]) -> None:
    fs, root = memory_fs

    def chunks() -> Any:
        yield b"{"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        files.write_chunks(f"memory://{root}/x.json", chunks())
    assert not fs.exists(f"{root}/x.json")


def test_commands_on_gz_and_memory(memory_fs: tuple[Any, str], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    fs, root = memory_fs
    src = real_path(*MINI)
    fs.pipe_file(f"{root}/in.json", src.read_bytes())
    url = f"memory://{root}/in.json"
    gz_url = f"memory://{root}/out.json.gz"
    assert main(["export", url, "-o", gz_url, "-q"]) == 0
    assert fs.cat_file(f"{root}/out.json.gz")[:2] == files.GZIP_MAGIC
    assert main(["info", gz_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["annotations"] == 624
    assert main(["validate", gz_url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    local_gz = tmp_path / "person.json.gz"
    assert main(["filter", gz_url, "-o", str(local_gz), "-c", "person", "-q"]) == 0
    assert main(["info", str(local_gz), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["categories"] == 1
    assert main(["validate", str(local_gz), "-q"]) == 0
    assert main(["convert", gz_url, "--to", "labelme", "-o", str(tmp_path / "lm"), "-q"]) == 0
    assert main(["convert", str(tmp_path / "lm"), "--to", "coco", "-o",
                 f"memory://{root}/back.json.gz", "-q"]) == 0
    assert cocokit.load(f"memory://{root}/back.json.gz").num_annotations == 624


def test_stream_refused_for_gz(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cocokit.save(cocokit.load(real_path(*MINI)), tmp_path / "a.json.gz")
    assert main(["export", str(tmp_path / "a.json.gz"), "-o", str(tmp_path / "b.json"),
                 "--stream"]) == 2
    assert "a local, uncompressed file" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()
