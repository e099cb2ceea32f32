"""sample and upsample: every Nth, seeded random draws, pools, repeated images."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

import cocokit
from cocokit import OptionError
from cocokit.cli import app
from cocokit.transforms import sample, upsample

from .conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")
KEYPOINTS = ("coco-mini", "annotations", "person_keypoints_val2017.json")


@pytest.fixture
def mini() -> cocokit.Dataset:
    return cocokit.load(real_path(*MINI))


def annotations_follow(src: cocokit.Dataset, out: cocokit.Dataset) -> None:
    """Each output image has exactly the annotations it had in the input."""
    expect = {int(i): int(n) for i, n in zip(src.images.id, src.annotation_counts, strict=True)}
    got = {int(i): int(n) for i, n in zip(out.images.id, out.annotation_counts, strict=True)}
    assert all(got[i] == expect[i] for i in got)
    assert len(out.annotations) == sum(got.values())


def test_every_nth(mini: cocokit.Dataset) -> None:
    out, report = sample(mini, every=3, offset=1)
    assert out.images.id.tolist() == mini.images.id[1::3].tolist()
    annotations_follow(mini, out)
    assert report.dropped_images == {"not sampled": len(mini.images) - len(out.images)}


def test_random_fraction_is_seeded_and_leaves_global_state(mini: cocokit.Dataset) -> None:
    np_state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    a, _ = sample(mini, fraction=0.25, seed=7)
    b, _ = sample(mini, fraction=0.25, seed=7)
    c, _ = sample(mini, fraction=0.25, seed=8)
    assert (np.random.get_state()[1] == np_state).all() and random.getstate() == py_state
    assert a.images.id.tolist() == b.images.id.tolist() != c.images.id.tolist()
    assert len(a.images) == round(0.25 * len(mini.images))
    # the order of the input is kept
    pos = {int(i): k for k, i in enumerate(mini.images.id)}
    assert [pos[int(i)] for i in a.images.id] == sorted(pos[int(i)] for i in a.images.id)
    annotations_follow(mini, a)


def test_count_and_pool_of_a_category(mini: cocokit.Dataset) -> None:
    out, _ = sample(mini, count=5, containing=["person", "dog"], seed=0)
    dog, person = mini.categories.id_of("dog"), mini.categories.id_of("person")
    assert len(out.images) == 5
    for i in range(len(out.images)):
        assert {dog, person} & set(out.annotations.category_id[out.annotation_rows(i)].tolist())
    out, report = sample(mini, count=1000, containing=["dog"])
    dog_images = set(mini.annotations.image_id[mini.annotations.category_id == dog].tolist())
    assert set(out.images.id.tolist()) == dog_images
    assert any("kept all" in n for n in report.notes)


def test_negatives_and_keep_rest() -> None:
    """coco-mini keypoints: 40 of the 79 images hold no person."""
    ds = cocokit.load(real_path(*KEYPOINTS))
    negatives = ds.annotation_counts == 0
    assert int(negatives.sum()) == 40
    out, _ = sample(ds, fraction=0.5, negatives=True, keep_rest=True, seed=3)
    assert len(out.images) == int((~negatives).sum()) + 20
    assert len(out.annotations) == len(ds.annotations)  # every positive image stayed
    out, _ = sample(ds, fraction=0.5, negatives=True, seed=3)
    assert len(out.images) == 20 and len(out.annotations) == 0


@pytest.mark.parametrize("kwargs", [{}, {"every": 2, "fraction": 0.5}, {"every": 0},
                                    {"fraction": 1.5}, {"count": -1}])
def test_bad_options(mini: cocokit.Dataset, kwargs: dict[str, Any]) -> None:
    with pytest.raises(OptionError):
        sample(mini, **kwargs)


def test_upsample(mini: cocokit.Dataset) -> None:
    before = cocokit.to_json(mini, image_ids="keep", annotation_ids="keep")
    out, report = upsample(mini, {"dog": 3, "cat": 2})
    dog, cat = mini.categories.id_of("dog"), mini.categories.id_of("cat")
    anns = mini.annotations
    dog_imgs = set(anns.image_id[anns.category_id == dog].tolist())
    cat_imgs = set(anns.image_id[anns.category_id == cat].tolist()) - dog_imgs
    n = len(mini.images)
    assert len(out.images) == n + 2 * len(dog_imgs) + len(cat_imgs)
    assert len(np.unique(out.images.id)) == len(out.images)
    assert len(np.unique(out.annotations.id)) == len(out.annotations)
    cocokit.to_json(out, image_ids="keep", annotation_ids="keep")  # integrity holds
    copies = [out.images[i] for i in range(n, len(out.images))]
    sources = [c["source_image_id"] for c in copies]
    assert sorted(sources) == sorted(list(dog_imgs) * 2 + list(cat_imgs))
    assert min(c["id"] for c in copies) > int(mini.images.id.max())
    # a copy's annotations are its source's, but for ids
    for i in range(n, len(out.images)):
        src_row = mini.image_row(out.images[i]["source_image_id"])

        def strip(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return [{k: v for k, v in r.items() if k not in ("id", "image_id")} for r in recs]

        assert strip(out.annotations_of(i)) == strip(mini.annotations_of(src_row))
        assert {k: v for k, v in out.images[i].items() if k not in ("id", "source_image_id")} \
            == {k: v for k, v in mini.images[src_row].items() if k != "id"}
    assert "source_image_id" not in mini.images[0]
    assert cocokit.to_json(mini, image_ids="keep", annotation_ids="keep") == before
    assert report.images_out == len(out.images)
    # copies of copies point at the first source
    again, _ = upsample(out, {"dog": 2})
    assert set(again.images[len(out.images)]) >= {"source_image_id"}
    assert {again.images[i]["source_image_id"] for i in range(len(out.images),
                                                               len(again.images))} <= dog_imgs


def test_cli_in_process(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    result = CliRunner().invoke(app, ["sample", str(real_path(*MINI)), "-o", str(out),
                                      "--every", "10", "--repeat", "person=2", "--mark", "src"])
    assert result.exit_code == 0, result.output
    ds = cocokit.load(out)
    doc = json.loads(real_path(*MINI).read_text())
    picked = [i["id"] for i in doc["images"][::10]]
    assert ds.images.id.tolist()[: len(picked)] == picked
    with_person = {a["image_id"] for a in doc["annotations"] if a["category_id"] == 1}
    assert len(ds.images) == len(picked) + len(with_person & set(picked))
    assert all("src" in ds.images[i] for i in range(len(picked), len(ds.images)))


def test_cli_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    cmd = [sys.executable, "-m", "cocokit", "sample", str(real_path(*MINI)), "-o", str(out),
           "--fraction", "0.5", "--seed", "11"]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    first = out.read_bytes()
    expect, _ = sample(cocokit.load(real_path(*MINI)), fraction=0.5, seed=11)
    assert cocokit.load(out).images.id.tolist() == expect.images.id.tolist()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert out.read_bytes() == first  # the same seed gives the same file
    assert msgspec.json.decode(first)["info"] == json.loads(real_path(*MINI).read_text())["info"]
