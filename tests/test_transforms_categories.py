"""categories: rename, merge, drop, add, remap (name -> id), sort, reindex 0 or 1."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cocokit
from cocokit import InputError, OptionError
from cocokit.cli import app, main
from cocokit.transforms import edit_categories

from .conftest import REPO, real_path

MINI = ("coco-mini", "annotations", "instances_val2017.json")
TACO = ("taco", "annotations.json")


@pytest.fixture
def mini() -> cocokit.Dataset:
    return cocokit.load(real_path(*MINI))


def names_of_annotations(ds: cocokit.Dataset) -> list[str]:
    """The category name of each annotation, in order (what must survive renumbering)."""
    return [ds.categories.name_of(int(c)) for c in ds.annotations.category_id]


def test_reindex_from_0_and_1_keeps_every_annotation_on_its_category(
        mini: cocokit.Dataset) -> None:
    before = names_of_annotations(mini)
    for start in (0, 1):
        out, report = edit_categories(mini, reindex=start)
        assert out.categories.id.tolist() == list(range(start, start + 80))
        assert out.categories.name.tolist() == mini.categories.name.tolist()
        assert names_of_annotations(out) == before
        cocokit.to_json(out, image_ids="keep", annotation_ids="keep")
    # COCO's ids have gaps (1..90): renumbering from 1 changes the ids after the first gap
    assert report.changed_annotations == int((mini.annotations.category_id > 11).sum())
    assert mini.categories.id.tolist()[-1] == 90  # the input is untouched


def test_taco_zero_based_to_one_based() -> None:
    ds = cocokit.load(real_path(*TACO))
    assert ds.categories.id.tolist() == list(range(60))
    out, report = edit_categories(ds, reindex=1)
    assert (out.annotations.category_id == ds.annotations.category_id + 1).all()
    assert report.changed_annotations == len(ds.annotations)


def test_rename_merge_drop_add(mini: cocokit.Dataset) -> None:
    counts = collections.Counter(names_of_annotations(mini))
    out, report = edit_categories(
        mini, rename={"person": "human", 2: "bike"},
        merge={"vehicle": ["car", "truck", "bus"], "dog": ["cat"]},
        drop=["toaster", "human"], add=["unicorn", {"name": "dragon", "id": 500}])
    got = collections.Counter(names_of_annotations(out))
    assert got["vehicle"] == counts["car"] + counts["truck"] + counts["bus"]
    assert got["dog"] == counts["dog"] + counts["cat"]
    assert got["bike"] == counts["bicycle"]
    assert "human" not in out.categories and "person" not in out.categories
    assert len(out.annotations) == len(mini.annotations) - counts["person"] - counts["toaster"]
    # a merge into a new name takes the first source's record and id
    assert out.categories.by_name("vehicle") == {**mini.categories.by_name("car"),
                                                 "name": "vehicle"}
    # a merge into an existing category keeps that category's record
    assert out.categories.by_name("dog") == mini.categories.by_name("dog")
    assert out.categories.by_name("unicorn")["id"] == 91  # one past the largest id
    assert out.categories.by_name("dragon")["id"] == 500
    assert report.added_categories == ("unicorn", "dragon")
    assert set(report.dropped_categories) == {"person", "toaster"}
    assert report.dropped_annotations == {"category dropped": counts["person"] + counts["toaster"]}
    cocokit.to_json(out, image_ids="keep", annotation_ids="keep")


def test_rename_swap_and_clash(mini: cocokit.Dataset) -> None:
    out, _ = edit_categories(mini, rename={"cat": "dog", "dog": "cat"})
    assert out.categories.id_of("cat") == mini.categories.id_of("dog")
    with pytest.raises(OptionError, match="merge"):
        edit_categories(mini, rename={"cat": "dog"})
    with pytest.raises(OptionError, match="'kitten'"):
        edit_categories(mini, rename={"kitten": "cat"})


def test_mapping_is_sahis_desired_name2id(mini: cocokit.Dataset) -> None:
    counts = collections.Counter(names_of_annotations(mini))
    out, report = edit_categories(mini, mapping={"dog": 0, "person": 1, "zebra": 2, "yeti": 3})
    assert [(c["id"], c["name"]) for c in out.categories] == [
        (0, "dog"), (1, "person"), (2, "zebra"), (3, "yeti")]
    assert collections.Counter(names_of_annotations(out)) == {
        "dog": counts["dog"], "person": counts["person"], "zebra": counts["zebra"]}
    assert report.added_categories == ("yeti",)
    assert report.dropped_annotations == {"category not in the mapping": len(
        mini.annotations) - counts["dog"] - counts["person"] - counts["zebra"]}
    with pytest.raises(OptionError, match="unique ids"):
        edit_categories(mini, mapping={"dog": 0, "cat": 0})


def test_sort(mini: cocokit.Dataset) -> None:
    out, _ = edit_categories(mini, sort="name", reindex=0)
    assert out.categories.name.tolist() == sorted(mini.categories.name.tolist())
    assert out.categories.id.tolist() == list(range(80))
    assert names_of_annotations(out) == names_of_annotations(mini)
    back, _ = edit_categories(out, sort="id")
    assert back.categories.id.tolist() == list(range(80))


def test_inputs_that_cannot_be_edited() -> None:
    doc = json.loads(real_path(*MINI).read_text())
    doc["categories"][3]["id"] = doc["categories"][2]["id"]
    with pytest.raises(InputError, match=r"categories\[3\].id"):
        edit_categories(cocokit.load(doc), reindex=1)
    doc = json.loads(real_path(*MINI).read_text())
    doc["annotations"][0]["category_id"] = 5000
    ds = cocokit.load(doc)
    out, report = edit_categories(ds, rename={"person": "human"})
    assert out.annotations.category_id[0] == 5000  # left as it was, and said so
    assert any("undeclared" in n for n in report.notes)
    with pytest.raises(InputError, match=r"undeclared|not declared"):
        edit_categories(ds, add=[{"name": "x", "id": 5000}])


def test_cli_in_process(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"vehicle": 1, "person": 2}))
    result = CliRunner().invoke(app, ["categories", str(real_path(*MINI)), "-o", str(out),
                                      "--merge", "car,truck,bus=vehicle", "--map", str(mapping)])
    assert result.exit_code == 0, result.output
    ds = cocokit.load(out)
    assert [(c["id"], c["name"]) for c in ds.categories] == [(1, "vehicle"), (2, "person")]
    listing = CliRunner().invoke(app, ["categories", str(out)])
    assert listing.exit_code == 0 and "vehicle" in listing.output
    assert main(["categories", str(real_path(*MINI)), "--reindex", "0"]) == 2  # needs -o


def test_cli_subprocess(tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "categories", str(real_path(*MINI)), "-o", str(out),
         "--rename", "person=human", "--drop", "toaster", "--add", "unicorn=0", "--sort",
         "name", "--reindex", "1"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ds = cocokit.load(out)
    names = sorted(n for n in cocokit.load(real_path(*MINI)).categories.name if n != "toaster")
    names = sorted([("human" if n == "person" else n) for n in names] + ["unicorn"])
    assert ds.categories.name.tolist() == names
    assert ds.categories.id.tolist() == list(range(1, len(names) + 1))
