"""merge: categories by name, unique ids, licences, file names; library and CLI."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder, InputError, OptionError
from cocokit.cli import app, main
from cocokit.transforms import merge

from .conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")
TINY = ("tiny-coco-images", "annotations", "instances_val2017.json")
TERRAIN = ("sahi-testdata", "coco_utils")


def raw_records(ds: cocokit.Dataset, section: str) -> list[bytes]:
    """The exported JSON text of each record of a section, ids kept."""
    doc = msgspec.json.decode(cocokit.to_json(ds, image_ids="keep", annotation_ids="keep"),
                              type=dict[str, msgspec.Raw])
    return [bytes(r) for r in msgspec.json.decode(doc[section], type=list[msgspec.Raw])]


def content(ds: cocokit.Dataset) -> collections.Counter[tuple[Any, ...]]:
    """Annotations as (file name, category name, bbox, segmentation) with no ids at all."""
    files = dict(zip(ds.images.id.tolist(), ds.images.file_name.tolist(), strict=True))
    names = dict(zip(ds.categories.id.tolist(), ds.categories.name.tolist(), strict=True))
    out: collections.Counter[tuple[Any, ...]] = collections.Counter()
    for a in ds.annotations:
        out[(files[a["image_id"]], names[a["category_id"]], tuple(a.get("bbox", ())),
             json.dumps(a.get("segmentation")))] += 1
    return out


def check_integrity(ds: cocokit.Dataset) -> None:
    assert len(np.unique(ds.images.id)) == len(ds.images)
    assert len(np.unique(ds.annotations.id)) == len(ds.annotations)
    assert (ds.image_index >= 0).all()
    assert (ds.category_index >= 0).all()
    cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")  # the export check passes


def load_terrain(name: str) -> cocokit.Dataset:
    return cocokit.load(real_path(*TERRAIN, name))


# -- real files ----------------------------------------------------------------------


def test_coco_mini_and_tiny_coco_identical_categories() -> None:
    a, b = cocokit.load(real_path(*MINI)), cocokit.load(real_path(*TINY))
    before = (cocokit.to_json(a, image_ids="keep", annotation_ids="keep"),
              cocokit.to_json(b, image_ids="keep", annotation_ids="keep"))
    out, report = merge([a, b])
    check_integrity(out)
    # identical category lists: the result is that list, records and order unchanged
    assert list(out.categories) == list(a.categories) == list(b.categories)
    assert len(out.images) == len(a.images) + len(b.images) == 85
    assert len(out.annotations) == len(a.annotations) + len(b.annotations) == 760
    assert content(out) == content(a) + content(b)
    # the licence lists are equal: merged into one, no image's licence changes
    assert out.extra["licenses"] == a.extra["licenses"]
    assert out.extra["info"] == a.extra["info"]
    # no ids collide: records come out byte for byte as they went in
    assert raw_records(out, "annotations") == raw_records(a, "annotations") + raw_records(
        b, "annotations")
    assert raw_records(out, "images") == raw_records(a, "images") + raw_records(b, "images")
    assert report.images_out == 85 and report.total_dropped_annotations == 0
    assert (cocokit.to_json(a, image_ids="keep", annotation_ids="keep"),
            cocokit.to_json(b, image_ids="keep", annotation_ids="keep")) == before


def test_modified_terrains_give_sahis_combined_file() -> None:
    """SAHI ships the expected merge of its two modified terrain files."""
    out, _ = merge([load_terrain("modified_terrain1_coco.json"),
                    load_terrain("modified_terrain2_coco.json")])
    expected = json.loads(real_path(*TERRAIN, "combined_coco.json").read_text())
    assert cocokit.to_dict(out, image_ids="keep", annotation_ids="keep") == expected


def test_terrains_whose_category_ids_differ() -> None:
    """terrain1 has human with id 1, terrain2 car with id 1: car needs a new id."""
    t1, t2 = load_terrain("terrain1_coco.json"), load_terrain("terrain2_coco.json")
    out, report = merge([t1, t2])
    check_integrity(out)
    assert [(c["id"], c["name"]) for c in out.categories] == [(1, "human"), (2, "car")]
    by_cat = collections.Counter(out.categories.name_of(c) for c in out.annotations.category_id)
    assert by_cat == {"human": len(t1.annotations), "car": len(t2.annotations)}
    assert content(out) == content(t1) + content(t2)
    # terrain2's image and annotation ids collided and were moved above every input id
    assert out.images.id.tolist() == [1, 2]
    assert sorted(out.annotations.id.tolist()) == list(range(1, 8)) + list(range(8, 13))
    assert any("'car' gets id 2" in n for n in report.notes)


def test_category_map_drops_and_adds() -> None:
    t1, t2 = load_terrain("terrain1_coco.json"), load_terrain("terrain2_coco.json")
    out, report = merge([t1, t2], category_map={"car": 0, "bicycle": 7})
    check_integrity(out)
    assert [(c["id"], c["name"]) for c in out.categories] == [(0, "car"), (7, "bicycle")]
    assert (out.annotations.category_id == 0).all()
    assert len(out.annotations) == len(t2.annotations)
    assert report.dropped_annotations["category not in the category map"] == len(t1.annotations)
    assert report.dropped_categories == ("human",)
    assert report.added_categories == ("bicycle",)
    # the record of a mapped category keeps its other keys
    assert out.categories.by_name("car")["supercategory"] == "car"


# -- ids, file names, licences -------------------------------------------------------


def test_same_file_names_are_an_error_by_default() -> None:
    a = cocokit.load(real_path(*MINI))
    with pytest.raises(InputError, match=r"images\[0\].file_name.*also used by images\[0\]"):
        merge([a, a])


def test_duplicates_prefix_keep_and_dedupe() -> None:
    a = cocokit.load(real_path(*MINI))
    n_img, n_ann = len(a.images), len(a.annotations)

    out, report = merge([a, a], duplicates="prefix", prefixes=["one", "two"])
    check_integrity(out)
    assert out.images.file_name[:n_img].tolist() == [f"one/{n}" for n in a.images.file_name]
    assert out.images.file_name[n_img:].tolist() == [f"two/{n}" for n in a.images.file_name]

    out, report = merge([a, a], duplicates="prefix")  # default prefix: only the later ones
    check_integrity(out)
    assert out.images.file_name[:n_img].tolist() == a.images.file_name.tolist()
    stem = Path(a.source or "").stem
    assert all(n.startswith(f"{stem}_2/") for n in out.images.file_name[n_img:])
    # every id of the second copy collided and got a fresh one above all input ids
    assert out.images.id[n_img:].min() > a.images.id.max()
    assert out.annotations.id[n_ann:].min() > a.annotations.id.max()

    out, _ = merge([a, a], duplicates="keep", renumber=True)
    check_integrity(out)
    assert out.images.id.tolist() == list(range(1, 2 * n_img + 1))
    assert out.annotations.id.tolist() == list(range(1, 2 * n_ann + 1))

    out, report = merge([a, a], dedupe_images=True)
    check_integrity(out)
    assert len(out.images) == n_img and len(out.annotations) == 2 * n_ann
    assert (out.annotation_counts == 2 * a.annotation_counts).all()
    assert report.dropped_images["same image as in an earlier input (annotations merged into it)"] \
        == n_img


def test_dedupe_needs_the_same_size() -> None:
    b = DatasetBuilder()
    c = b.add_category("x")
    b.add_annotation(b.add_image("a.jpg", 10, 10), c, bbox=[1, 1, 2, 2])
    one = b.build()
    b2 = DatasetBuilder()
    c2 = b2.add_category("x")
    b2.add_annotation(b2.add_image("a.jpg", 20, 10), c2, bbox=[1, 1, 2, 2])
    with pytest.raises(InputError, match="also used by"):
        merge([one, b2.build()], dedupe_images=True)


def test_image_roots_make_names_relative_to_the_common_root(tmp_path: Path) -> None:
    t1, t2 = load_terrain("terrain1_coco.json"), load_terrain("terrain2_coco.json")
    out, _ = merge([t1, t2], image_roots=[tmp_path / "data" / "a", tmp_path / "data" / "b" / "c"])
    assert out.images.file_name.tolist() == ["a/terrain1.jpg", "b/c/terrain2.png"]


def test_licences_are_merged_and_remapped() -> None:
    def make(licenses: list[dict[str, Any]], file: str, lic: int) -> cocokit.Dataset:
        b = DatasetBuilder()
        b.set("licenses", licenses)
        c = b.add_category("x")
        b.add_annotation(b.add_image(file, 10, 10, license=lic), c, bbox=[1, 1, 2, 2])
        return b.build()

    a = make([{"id": 1, "name": "CC", "url": "u1"}, {"id": 2, "name": "MIT", "url": "u2"}],
             "a.jpg", 2)
    b = make([{"id": 1, "name": "MIT", "url": "u2"}, {"id": 2, "name": "GPL", "url": "u3"}],
             "b.jpg", 2)
    out, _ = merge([a, b])
    assert out.extra["licenses"] == [{"id": 1, "name": "CC", "url": "u1"},
                                     {"id": 2, "name": "MIT", "url": "u2"},
                                     {"id": 3, "name": "GPL", "url": "u3"}]
    # b's image had licence 2 (GPL), which is now 3; a's keeps 2 (MIT)
    assert [img["license"] for img in out.images] == [2, 3]
    assert [img["license"] for img in b.images] == [2]  # the input is untouched


def test_inputs_with_broken_references_are_refused() -> None:
    doc = json.loads(real_path(*TERRAIN, "terrain1_coco.json").read_text())
    doc["annotations"][3]["image_id"] = 99
    with pytest.raises(InputError, match=r"annotations\[3\].image_id.*99"):
        merge([cocokit.load(doc), load_terrain("terrain2_coco.json")])
    with pytest.raises(OptionError):
        merge([])
    with pytest.raises(OptionError, match="one value per input"):
        merge([load_terrain("terrain2_coco.json")] * 2, prefixes=["a"])


# -- CLI -----------------------------------------------------------------------------


def test_cli_in_process(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"human": 1}))
    result = CliRunner().invoke(app, [
        "merge", str(real_path(*TERRAIN, "terrain1_coco.json")),
        str(real_path(*TERRAIN, "terrain2_coco.json")), "-o", str(out),
        "--category-map", str(mapping), "--category", "car=5"])
    assert result.exit_code == 0, result.output
    ds = cocokit.load(out)
    assert [(c["id"], c["name"]) for c in ds.categories] == [(1, "human"), (5, "car")]
    assert len(ds.annotations) == 12
    # one input is not a merge; a duplicate file name is an error (exit 2, one line)
    assert main(["merge", str(real_path(*MINI)), "-o", str(out)]) == 2
    assert main(["merge", str(real_path(*MINI)), str(real_path(*MINI)), "-o", str(out)]) == 2
    assert cocokit.load(out).images.file_name.tolist() == ds.images.file_name.tolist()


def test_cli_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "merged.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "merge", str(real_path(*MINI)),
         str(real_path(*TINY)), "-o", str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "merge: 85 -> 85 images" in proc.stderr
    ds = cocokit.load(out)
    assert (len(ds.images), len(ds.annotations), len(ds.categories)) == (85, 760, 80)
