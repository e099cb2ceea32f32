"""Slicing on a real local Ray cluster (no mocks): the same output as the local engine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import cocokit
from cocokit import InputError
from cocokit.engine import JobFailure, run_on_ray
from cocokit.errors import BadImagesError, OutputError
from cocokit.slicing import slice_dataset

from .conftest import local_files, real_path

ray = pytest.importorskip(
    "ray", reason="the Ray extra is not installed (pip install 'cocokit[ray]')"
)


def _fails_on_three(x: int, k: int) -> int:
    if x == 3:
        raise ValueError("three is bad")
    return x * k


def test_run_on_ray_keeps_order_and_reports_failures(ray_cluster: None) -> None:
    out = run_on_ray(_fails_on_three, list(range(7)), 10, retries=1)
    assert out[:3] == [0, 10, 20] and out[4:] == [40, 50, 60]
    assert isinstance(out[3], JobFailure) and "three is bad" in out[3].error


def _disk_full_on_three(x: int) -> int:
    if x == 3:
        raise OutputError(f"/out/{x}.jpg", "cannot write: no space left on the device")
    return x


def test_run_on_ray_stops_on_an_output_error(ray_cluster: None) -> None:
    with pytest.raises(OutputError, match=r"/out/3.jpg: cannot write: no space left"):
        run_on_ray(_disk_full_on_three, list(range(5)), retries=2)


@pytest.mark.parametrize("json_name", ["terrain1_coco.json", "terrain2_coco.json"])
def test_ray_slicing_is_byte_identical_to_local(ray_cluster: None, tmp_path: Path,
                                                json_name: str) -> None:
    src_json = real_path("sahi-testdata", "coco_utils", json_name)
    folder = src_json.parent
    ds = cocokit.load(src_json)
    outs = {}
    for engine in ("local", "ray"):
        tiles = tmp_path / engine
        tiled, summary = slice_dataset(ds, folder, tiles, size=512, overlap=0.2, workers=2,
                                       engine=engine)  # type: ignore[arg-type]
        cocokit.save(tiled, tmp_path / f"{engine}.json", image_ids="auto")
        outs[engine] = (summary, local_files(tiles), (tmp_path / f"{engine}.json").read_bytes())
    assert outs["ray"][0] == outs["local"][0]
    assert outs["ray"][1] == outs["local"][1]  # every tile image, byte for byte
    assert outs["ray"][2] == outs["local"][2]  # the COCO file
    assert outs["ray"][0].tiles > 4


def test_ray_names_an_unreadable_image(ray_cluster: None, tmp_path: Path) -> None:
    src_json = real_path("sahi-testdata", "coco_utils", "terrain_all_coco.json")
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("terrain1.jpg", "terrain2.png"):
        shutil.copy(src_json.parent / name, folder / name)
    ds = cocokit.load(src_json)
    assert sorted(ds.images.file_name.tolist()) == ["terrain1.jpg", "terrain2.png", "terrain3.png"]
    # terrain3.png is absent from the corpus: make it present but unreadable
    (folder / "terrain3.png").write_bytes(b"not an image at all")
    with pytest.raises(BadImagesError) as e:
        slice_dataset(ds, folder, tmp_path / "tiles", size=512, engine="ray")
    assert [Path(f).name for f, _ in e.value.failures] == ["terrain3.png"]
    assert "cannot read image" in e.value.failures[0][1]
    assert isinstance(e.value, InputError)
    tiled, summary = slice_dataset(ds, folder, tmp_path / "tiles2", size=512, engine="ray",
                                   skip_bad_images=True)
    assert [Path(p).name for p, _ in summary.skipped] == ["terrain3.png"]
    assert summary.images == 2 and len(tiled.images) == summary.tiles


def test_ray_cli_reports_a_bad_image_and_exits_1(ray_cluster: None, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from cocokit.cli import main

    src_json = real_path("sahi-testdata", "coco_utils", "terrain_all_coco.json")
    folder = tmp_path / "images"
    folder.mkdir()
    shutil.copy(src_json.parent / "terrain1.jpg", folder / "terrain1.jpg")
    (folder / "terrain2.png").write_bytes(b"\x89PNG broken")  # terrain3.png is missing
    args = ["slice", str(src_json), "-i", str(folder), "-o", str(tmp_path / "tiles"), "-q",
            "--engine", "ray", "--size", "512"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"failed {folder / 'terrain2.png'}: cannot read image" in err
    assert f"failed {folder / 'terrain3.png'}: image file not found" in err
    assert "2 image(s) could not be sliced" in err
    assert not (tmp_path / "tiles" / "terrain_all_coco.json").exists()
    assert main([*args, "--skip-bad-images"]) == 0
    doc = cocokit.load(tmp_path / "tiles" / "terrain_all_coco.json")
    assert {r["source_file_name"] for r in doc.images} == {"terrain1.jpg"}


def test_ray_slicing_through_memory_urls_is_byte_identical(ray_cluster: None,
                                                           tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    src_json = real_path("sahi-testdata", "coco_utils", "terrain2_coco.json")
    root = f"/ray-slice-{os.getpid()}"
    fs.pipe(f"{root}/in/terrain2.png", (src_json.parent / "terrain2.png").read_bytes())
    ds = cocokit.load(src_json)
    try:
        local, local_summary = slice_dataset(ds, src_json.parent, tmp_path / "local",
                                             size=400, workers=2, engine="local")
        # memory:// lives in this process: Ray workers get the bytes and hand tiles back
        mem, mem_summary = slice_dataset(ds, f"memory://{root}/in", f"memory://{root}/out",
                                         size=400, engine="ray")
        assert mem_summary == local_summary and mem_summary.tiles > 4
        assert cocokit.to_json(mem) == cocokit.to_json(local)
        got = {p.rsplit("/", 1)[1]: fs.cat_file(p) for p in fs.ls(f"{root}/out", detail=False)}
        assert got == local_files(tmp_path / "local")
    finally:
        fs.rm(root, recursive=True)


def test_ray_augmentation_is_byte_identical_to_local(ray_cluster: None, tmp_path: Path) -> None:
    from cocokit.augment import augment
    from cocokit.augment.pipeline import Pipeline

    src_json = real_path("coco-mini", "annotations", "person_keypoints_val2017.json")
    images = src_json.parents[1] / "val2017"
    full = cocokit.load(src_json)
    ds = full.select_images(np.flatnonzero(full.annotation_counts > 0)[:3])
    pipeline = Pipeline.from_dict([{"hflip": {}}, {"rotate": {"angle": [-20, 20]}},
                                   {"random_crop": {"width": 300, "height": 240}}])
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        _, summary = augment(ds, pipeline, images, out, copies=2, seed=7, workers=2,
                             engine=engine)  # type: ignore[arg-type]
        counts = (summary.images, summary.augmented_images, summary.annotations,
                  summary.dropped_by_reason)
        outs[engine] = (counts, local_files(out / "images"),
                        (out / "annotations.json").read_bytes())
    assert outs["ray"] == outs["local"]  # every image file and the COCO file, byte for byte
    assert outs["ray"][0][1] == 6
