"""Augmentation on a real local Ray cluster (no mocks): images read from and written to
``memory://`` (which Ray workers cannot see: the bytes travel with the jobs) and local
paths give the same files as the local engine, byte for byte; bad images are named."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

import cocokit
from cocokit.augment import Pipeline, augment
from cocokit.errors import BadImagesError

from .conftest import local_files, memory_files, real_path
from .test_augment_run import nested

TINY = ("tiny-coco-images", "annotations", "instances_val2017.json")
TINY_IMAGES = ("tiny-coco-images", "images", "val2017")
PIPELINE = Pipeline.from_dict({
    "min_visibility": 0.1,
    "pipeline": [{"hflip": {"p": 0.5}}, {"rotate": {"angle": [-25, 25]}},
                 {"random_crop": {"width": 360, "height": 300}}, "color_jitter",
                 {"noise": {"std": [2, 6]}}],
})
PIPELINE_YAML = """\
pipeline:
  - hflip: {p: 0.5}
  - {op: random_crop, width: 300, height: 300}
"""


def test_ray_through_memory_urls_is_byte_identical_to_local(
        ray_cluster: None, real_data: Path, tmp_path: Path,
        memory_fs: tuple[Any, str]) -> None:
    fs, memory_root = memory_fs
    ds = nested(real_data, tmp_path / "in", fs, memory_root)
    local, local_summary = augment(ds, PIPELINE, tmp_path / "in", tmp_path / "local",
                                   copies=2, seed=11, workers=2, engine="local")
    # Ray workers cannot see memory://: the driver reads the sources into the jobs and
    # writes the files the workers hand back
    mem, mem_summary = augment(ds, PIPELINE, f"memory://{memory_root}/in",
                               f"memory://{memory_root}/out", copies=2, seed=11,
                               engine="ray")
    assert cocokit.to_json(mem) == cocokit.to_json(local)
    for field in ("images", "augmented_images", "annotations", "dropped_by_reason",
                  "skipped_negative_images", "skipped"):
        assert getattr(mem_summary, field) == getattr(local_summary, field)
    got = memory_files(fs, f"{memory_root}/out")
    assert got == local_files(tmp_path / "local")  # every image and annotations.json
    assert len(got) == 1 + 3 * 6 and any(k.startswith("images/sub/") for k in got)
    # a memory:// source with a local output on Ray: the same bytes again
    augment(ds, PIPELINE, f"memory://{memory_root}/in", tmp_path / "ray_local", copies=2,
            seed=11, engine="ray")
    assert local_files(tmp_path / "ray_local") == local_files(tmp_path / "local")


def test_ray_names_bad_images_or_skips_them(ray_cluster: None, real_data: Path,
                                            tmp_path: Path,
                                            memory_fs: tuple[Any, str]) -> None:
    fs, memory_root = memory_fs
    ds = nested(real_data, tmp_path / "in", fs, memory_root)
    gone, junk = str(ds.images.file_name[1]), str(ds.images.file_name[4])
    src, out = f"memory://{memory_root}/in", f"memory://{memory_root}/out"
    fs.rm(f"{memory_root}/in/{gone}")
    fs.pipe_file(f"{memory_root}/in/{junk}", b"not a jpeg at all")
    with pytest.raises(BadImagesError) as info:
        augment(ds, PIPELINE, src, out, engine="ray")
    assert [f for f, _ in info.value.failures] == [f"{src}/{gone}", f"{src}/{junk}"]
    assert info.value.failures[0][1] == "image file not found"
    assert info.value.failures[1][1].startswith("cannot read the image")
    assert not fs.find(f"{memory_root}/out")  # no file is left of the failed run
    result, summary = augment(ds, PIPELINE, src, out, engine="ray", skip_bad_images=True)
    assert summary.skipped == tuple(info.value.failures)
    assert len(result.images) == 2 * 4
    assert set(memory_files(fs, f"{memory_root}/out")) == {
        f"images/{n}" for n in result.images.file_name} | {"annotations.json"}


def test_ray_cli_reports_an_unreadable_image_and_exits_1(
        ray_cluster: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("yaml")
    from cocokit.cli import main

    ann = real_path(*TINY)
    ds = cocokit.load(ann)
    folder = tmp_path / "images"
    shutil.copytree(real_path(*TINY_IMAGES), folder)
    bad = str(ds.images.file_name[2])
    (folder / bad).write_bytes(b"\xff\xd8\xff broken jpeg")
    (tmp_path / "aug.yaml").write_text(PIPELINE_YAML)
    out_dir = tmp_path / "out"
    args = ["augment", str(ann), "-i", str(folder), "-o", str(out_dir), "-p",
            str(tmp_path / "aug.yaml"), "-q", "--engine", "ray"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"failed {folder / bad}: cannot read the image" in err
    assert "1 image(s) could not be augmented" in err
    assert not out_dir.exists()  # no annotations.json, no images/
    assert main([*args, "--skip-bad-images"]) == 0
    assert f"skipped {folder / bad}" in capsys.readouterr().err
    doc = cocokit.load(out_dir / "annotations.json")
    assert len(doc.images) == 2 * 5
    assert not any(str(f).startswith(Path(bad).stem) for f in doc.images.file_name)
