"""A COCO file written from parts (cocokit.io.parts.PartWriter): the same bytes as one export."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import cocokit
from cocokit import DatasetBuilder, IntegrityError
from cocokit.io.coco import write_coco
from cocokit.io.parts import PartWriter

from .conftest import real_path

REAL = [
    ("coco-mini", "annotations", "instances_val2017.json"),
    ("coco-mini", "annotations", "person_keypoints_val2017.json"),
    ("cocoapi-val2014-100", "instances_val2014_100.json"),
    ("lvis-val100", "lvis_val_100.json"),
]


def parts_of(ds: cocokit.Dataset, sizes: list[int]) -> list[cocokit.Dataset]:
    bounds = np.cumsum([0, *sizes])
    assert bounds[-1] == len(ds.images)
    return [ds.select_images(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]


def write_parts(path: Path, ds: cocokit.Dataset, sizes: list[int], **policy: object) -> None:
    with PartWriter(path, categories=ds.categories, extra=ds.extra, key_order=ds.key_order,
                    **policy) as w:  # type: ignore[arg-type]
        for part in parts_of(ds, sizes):
            w.add(part)


@pytest.mark.parametrize("parts", REAL, ids=lambda p: p[-1])
@pytest.mark.parametrize("policy", [
    {"image_ids": "auto", "annotation_ids": "auto"},
    {"image_ids": "keep", "annotation_ids": "keep"},
    {"ignore_negative_samples": True, "image_ids": "auto", "annotation_ids": "auto"}])
def test_parts_give_the_bytes_of_one_export(tmp_path: Path, parts: tuple[str, ...],
                                            policy: dict[str, object]) -> None:
    src = real_path(*parts)
    ds = cocokit.load(src)
    # parts hold their images' annotations: order the table by image, as parts are
    ds = ds.replace(annotations=ds.annotations.take(np.argsort(ds.image_index, kind="stable")))
    n = len(ds.images)
    write_coco(ds, tmp_path / "whole.json", **policy)  # type: ignore[arg-type]
    rng = np.random.default_rng(n)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(5, n - 1), replace=False))
    sizes = np.diff(np.r_[0, cuts, n]).tolist()
    write_parts(tmp_path / "parts.json", ds, [0, *sizes], **policy)  # an empty part too
    assert (tmp_path / "parts.json").read_bytes() == (tmp_path / "whole.json").read_bytes()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no spill left


def test_keep_refuses_a_duplicate_across_parts_and_writes_nothing(tmp_path: Path) -> None:
    parts = []
    for name in ("a.jpg", "b.jpg"):  # two parts, each with an image of id 7
        b = DatasetBuilder()
        b.add_annotation(b.add_image(name, width=10, height=10, id=7), b.add_category("c"),
                         bbox=[1, 1, 2, 2])
        parts.append(b.build())
    cats = parts[0].categories

    def write(**policy: str) -> None:
        with PartWriter(tmp_path / "out.json", categories=cats, **policy) as w:  # type: ignore[arg-type]
            for part in parts:
                w.add(part)

    with pytest.raises(IntegrityError, match=r"images\[1\]\.id: duplicate image id 7"):
        write(image_ids="keep", annotation_ids="auto")
    assert list(tmp_path.iterdir()) == []
    write(image_ids="auto", annotation_ids="auto")  # auto renumbers: fine
    out = cocokit.load(tmp_path / "out.json")
    assert out.images.file_name.tolist() == ["a.jpg", "b.jpg"]
    assert out.images.id.tolist() == [1, 2] and out.annotations.image_id.tolist() == [1, 2]
    assert out.annotations.id.tolist() == [1, 2]


def test_an_error_while_adding_leaves_nothing(tmp_path: Path) -> None:
    ds = cocokit.load(real_path("coco-mini", "annotations", "instances_val2017.json"))
    with pytest.raises(RuntimeError), PartWriter(tmp_path / "out.json",
                                                 categories=ds.categories) as w:
        w.add(ds.select_images([0, 1]))
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_spill_folders_of_a_killed_run_are_removed_and_no_other(tmp_path: Path) -> None:
    import os
    import subprocess

    from cocokit.errors import LeftoversRemoved

    p = subprocess.Popen(["true"])
    p.wait()
    dead, live = f".out.json.parts-{p.pid}-abcd_123", ".out.json.parts-1-abcd_123"
    for name in (dead, live):
        (tmp_path / name).mkdir()
        (tmp_path / name / "images").write_bytes(b"spilled")
    ds = cocokit.load(Path(__file__).parent / "data" / "tiny_coco_val2017.json")
    with pytest.warns(LeftoversRemoved, match=dead):
        write_parts(tmp_path / "out.json", ds, [2, 4])
    assert sorted(n for n in os.listdir(tmp_path) if n.startswith(".")) == [live]
