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
    # the same image twice: its annotations are exact duplicates, kept once (issue 14:
    # before, every annotation of a shared image came out twice)
    assert len(out.images) == n_img and len(out.annotations) == n_ann
    assert (out.annotation_counts == a.annotation_counts).all()
    assert raw_records(out, "annotations") == raw_records(a, "annotations")
    assert report.dropped_images["same image as in an earlier input (annotations merged into it)"] \
        == n_img
    assert report.total_dropped_annotations == n_ann
    assert f"{n_ann} duplicate annotations dropped" in "\n".join(report.lines())


MINI_KP = ("coco-mini", "annotations", "person_keypoints_val2017.json")


@pytest.mark.parametrize("order", ["instances first", "keypoints first"])
def test_instances_and_person_keypoints_keep_every_category_key(order: str) -> None:
    """issue 14: merging coco-mini's instances and person-keypoints files dropped the
    person category's keypoints and skeleton; now every key of every input is kept."""
    inst, kp = cocokit.load(real_path(*MINI)), cocokit.load(real_path(*MINI_KP))
    inputs = [inst, kp] if order == "instances first" else [kp, inst]
    out, _ = merge(inputs, dedupe_images=True)
    check_integrity(out)
    person = out.categories.by_name("person")
    kp_person = kp.categories.by_name("person")
    assert person == {**inst.categories.by_name("person"), **kp_person}
    assert person["keypoints"] == kp_person["keypoints"] and len(person["keypoints"]) == 17
    assert person["skeleton"] == kp_person["skeleton"] and len(person["skeleton"]) == 19
    # every other category is the instances file's record, unchanged
    others = [c for c in out.categories if c["name"] != "person"]
    assert others == [c for c in inst.categories if c["name"] != "person"]
    # keypoint annotations are not duplicates of box/polygon ones: all of them are kept
    assert len(out.annotations) == len(inst.annotations) + len(kp.annotations)
    assert content(out) == content(inst) + content(kp)


def test_the_small_keypoints_and_tiny_coco_files_merge_with_keypoints() -> None:
    kp = cocokit.load(REPO / "tests" / "data" / "coco_mini_person_keypoints_val2017.json")
    tiny = cocokit.load(REPO / "tests" / "data" / "tiny_coco_val2017.json")
    out, _ = merge([tiny, kp], duplicates="keep")
    assert out.categories.by_name("person") == {**tiny.categories.by_name("person"),
                                                **kp.categories.by_name("person")}
    assert len(out.categories) == 80
    assert cocokit.to_dict(out, image_ids="keep")["categories"][0]["skeleton"] == \
        kp.categories.by_name("person")["skeleton"]


def load_doc(doc: dict[str, Any], path: Path, keep_source: bool = True) -> cocokit.Dataset:
    """``doc`` written to ``path`` and loaded (without a source if not ``keep_source``)."""
    path.write_text(json.dumps(doc))
    ds = cocokit.load(path)
    if keep_source:
        return ds
    return cocokit.Dataset(ds.images, ds.annotations, ds.categories, ds.extra, ds.key_order)


def _person_variant(key: str, value: Any, path: Path, keep_source: bool,
                    prefix: str = "") -> cocokit.Dataset:
    """The small person-keypoints file with the person category's ``key`` set to ``value``
    (None: removed), file names prefixed with ``prefix``."""
    doc = json.loads((REPO / "tests" / "data" /
                      "coco_mini_person_keypoints_val2017.json").read_text())
    if value is None:
        doc["categories"][0].pop(key, None)
    else:
        doc["categories"][0][key] = value
    for img in doc["images"]:
        img["file_name"] = prefix + img["file_name"]
    return load_doc(doc, path, keep_source)


SKELETON = json.loads((REPO / "tests" / "data" / "coco_mini_person_keypoints_val2017.json"
                       ).read_text())["categories"][0]["skeleton"]


@pytest.mark.parametrize(
    ("key", "a", "b", "conflict"),
    [
        ("skeleton", SKELETON, SKELETON[:-1], True),
        ("skeleton", SKELETON, None, False),              # absent in one: taken
        ("skeleton", None, SKELETON, False),
        ("supercategory", "person", "human", True),
        ("supercategory", "person", None, False),
        ("keypoints", ["a", "b"], ["a", "c"], True),
        ("color", [220, 20, 60], [220, 20, 61], True),    # an unknown key
        ("color", [220, 20, 60], [220.0, 20, 60], False),  # equal numbers
        ("color", None, [220, 20, 60], False),
        ("isthing", 1, 1, False),
    ],
)
@pytest.mark.parametrize("sources", [True, False])
def test_category_keys_union_and_conflicts(tmp_path: Path, key: str, a: Any, b: Any,
                                           conflict: bool, sources: bool) -> None:
    first = _person_variant(key, a, tmp_path / "a.json", sources)
    second = _person_variant(key, b, tmp_path / "b.json", sources, prefix="b/")
    if conflict:
        names = ("a.json", "b.json") if sources else ("input 1", "input 2")
        with pytest.raises(InputError) as e:
            merge([first, second])
        text = str(e.value)
        assert names[0] in text and names[1] in text
        assert f"categories[0].{key}" in text and "'person'" in text
        return
    out, _ = merge([first, second])
    person = out.categories.by_name("person")
    expected = a if a is not None else b
    if expected is None:
        assert key not in person
    else:
        assert person[key] == expected
    # the other keys are all there
    assert {"supercategory", "keypoints", "skeleton", "name", "id"} - {key} <= set(person)


def test_a_conflict_in_a_category_the_map_drops_is_no_error(tmp_path: Path) -> None:
    first = _person_variant("skeleton", SKELETON, tmp_path / "a.json", True)
    second = _person_variant("skeleton", [[1, 2]], tmp_path / "b.json", True, prefix="b/")
    out, report = merge([first, second], category_map={"car": 1})
    assert [c["name"] for c in out.categories] == ["car"] and len(out.annotations) == 0
    assert report.dropped_categories == ("person",)


def test_dedupe_images_keeps_exact_duplicate_annotations_once(tmp_path: Path) -> None:
    """A copy of the small keypoints file with one annotation changed and one added:
    only exact duplicates (all but the id) are dropped, and they are counted."""
    path = REPO / "tests" / "data" / "coco_mini_person_keypoints_val2017.json"
    a = cocokit.load(path)
    doc = json.loads(path.read_text())
    doc["annotations"][0]["bbox"][0] += 1.0                 # no longer a duplicate
    doc["annotations"][1]["keypoints"][2] = 1 - min(doc["annotations"][1]["keypoints"][2], 1)
    doc["annotations"][2]["extra_key"] = "x"              # another key: not a duplicate
    doc["annotations"][3]["iscrowd"] = 1 - doc["annotations"][3]["iscrowd"]
    for ann in doc["annotations"]:
        ann["id"] += 10**6                                 # ids differ: still duplicates
    doc["annotations"].append(dict(doc["annotations"][5], id=1))   # a duplicate in b itself
    b = load_doc(doc, tmp_path / "b.json")
    out, report = merge([a, b], dedupe_images=True)
    check_integrity(out)
    n = len(a.annotations)
    assert len(out.images) == len(a.images)
    assert len(out.annotations) == n + 4  # the four changed ones; the rest are kept once
    dropped = n - 4 + 1
    assert report.total_dropped_annotations == dropped
    assert f"{dropped} duplicate annotations dropped" in "\n".join(report.lines())
    assert raw_records(out, "annotations")[:n] == raw_records(a, "annotations")
    # without dedupe_images nothing is dropped
    out2, report2 = merge([a, b], duplicates="keep")
    assert len(out2.annotations) == 2 * n + 1 and report2.total_dropped_annotations == 0


def test_cli_merge_dedupe_images_counts_the_duplicates(tmp_path: Path) -> None:
    src = str(real_path(*MINI))
    out = tmp_path / "m.json"
    r = CliRunner().invoke(app, ["merge", src, src, "--dedupe-images", "-o", str(out)])
    assert r.exit_code == 0, r.output
    n = len(cocokit.load(real_path(*MINI)).annotations)
    assert f"{n} duplicate annotations dropped" in r.output
    assert len(json.loads(out.read_bytes())["annotations"]) == n
    help_text = CliRunner().invoke(app, ["merge", "--help"], env={"COLUMNS": "200"}).output
    assert "exact duplicate annotation" in help_text


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


def _filtered_bad_category(path: Path) -> tuple[list[cocokit.Dataset], str]:
    """filter -> merge: annotations[15] of the input names an undeclared category."""
    doc = json.loads(real_path(*MINI).read_text())
    doc["annotations"][15]["category_id"] = 99
    bad = path / "D.json"
    bad.write_text(json.dumps(doc))
    first_two = [doc["images"][0]["id"], doc["images"][1]["id"]]
    fc = cocokit.transforms.filter_dataset(cocokit.load(bad), exclude_images=first_two)[0]
    return [cocokit.load(real_path(*MINI)), fc], f"{bad}: annotations[15].category_id: "


def _upsampled_split_parts(path: Path) -> tuple[list[cocokit.Dataset], str]:
    """sample -> upsample -> split -> merge: a copy in one part shares its file name
    with its original in the other; both are named by their row in the file."""
    mini = cocokit.load(real_path(*MINI))
    up = cocokit.transforms.upsample(cocokit.transforms.sample(mini, every=2)[0],
                                     {"person": 3})[0]
    parts = cocokit.transforms.split(up, {"a": 0.5, "b": 0.5})[0]
    a, b = parts["a"], parts["b"]
    clash = next(str(n) for n in b.images.file_name if n in set(a.images.file_name.tolist()))
    row = json.loads(real_path(*MINI).read_text())["images"]
    row = next(i for i, im in enumerate(row) if im["file_name"] == clash)
    where = f"images[{row}]"
    src = str(real_path(*MINI))
    return [a, b], (f"{src}: {where}.file_name: file name '{clash}' is also used by "
                    f"{where} of {src} ")


@pytest.mark.parametrize("build", [_filtered_bad_category, _upsampled_split_parts])
def test_refusals_of_a_derived_input_name_the_row_in_its_file(tmp_path: Path, build: Any) -> None:
    inputs, expected = build(tmp_path)
    with pytest.raises(InputError) as err:
        merge(inputs)
    assert str(err.value).startswith(expected)


def test_edit_categories_names_the_row_in_the_file(tmp_path: Path) -> None:
    (_, fc), expected = _filtered_bad_category(tmp_path)
    with pytest.raises(InputError) as err:
        cocokit.transforms.edit_categories(fc, mapping={"person": 99})
    assert str(err.value).startswith(expected)


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


# -- ids that change: the notes per input, the id maps ----------------------------------

TACO = ("taco", "annotations.json")


def test_changed_ids_are_counted_per_input_with_their_cause() -> None:
    """TACO repeats annotation ids 309 and 4040 itself; coco-mini's ids 3253 and 3944 (and
    images 802, 139) are TACO's too. Each input's note counts its own, says why, and the
    new ids are the next free ones above the largest in use (COCO's crowd ids are big)."""
    taco, mini = cocokit.load(real_path(*TACO)), cocokit.load(real_path(*MINI))
    out, report = merge([taco, mini])
    check_integrity(out)
    top = int(max(taco.annotations.id.max(), mini.annotations.id.max()))
    top_img = int(max(taco.images.id.max(), mini.images.id.max()))
    notes = [n for n in report.notes if "id(s) changed" in n]
    assert notes == [
        f"{mini.source}: 2 image id(s) changed (2 already used by an earlier input): now ids "
        f"{top_img + 1}..{top_img + 2}, the next free above {top_img}, the largest in use",
        f"{taco.source}: 2 annotation id(s) changed (2 repeated within this input): now ids "
        f"{top + 1}..{top + 2}, the next free above {top}, the largest in use",
        f"{mini.source}: 2 annotation id(s) changed (2 already used by an earlier input): now "
        f"ids {top + 3}..{top + 4}, the next free above {top + 2}, the largest in use"]
    ids = out.annotations.id
    n = len(taco.annotations)
    changed = np.flatnonzero(ids != np.concatenate([taco.annotations.id, mini.annotations.id]))
    assert ids[changed].tolist() == list(range(top + 1, top + 5))
    assert taco.annotations.id[changed[:2]].tolist() == [309, 4040]  # their second copies
    assert mini.annotations.id[changed[2:] - n].tolist() == [3253, 3944]
    # the id maps: each input's ids to the merged ones, categories by name
    t_map, m_map = report.id_maps
    sure = ~np.isin(taco.annotations.id, [309, 4040])  # repeated: left out of its map
    assert t_map.annotations_old.tolist() == taco.annotations.id[sure].tolist()
    assert t_map.annotations_new.tolist() == ids[:n][sure].tolist()
    assert m_map.annotations_old.tolist() == mini.annotations.id.tolist()
    assert m_map.annotations_new.tolist() == ids[n:].tolist()
    assert dict(zip(m_map.images_old.tolist(), m_map.images_new.tolist(), strict=True))[139] \
        == top_img + 2
    names = dict(zip(out.categories.id.tolist(), out.categories.name.tolist(), strict=True))
    for cmap, ds in ((t_map, taco), (m_map, mini)):
        old = dict(zip(ds.categories.id.tolist(), ds.categories.name.tolist(), strict=True))
        assert {names[new] for new in cmap.categories_new.tolist()} == set(old.values())
        assert all(names[new] == old[o] for o, new in zip(
            cmap.categories_old.tolist(), cmap.categories_new.tolist(), strict=True))
    assert m_map.file_names == tuple(mini.images.file_name.tolist())


def test_cli_id_maps_carry_predictions_over(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """merge --id-map (one per input), composed with --image-ids auto: predictions made
    on coco-mini are carried onto the merged file by `results remap`."""
    taco, mini = real_path(*TACO), real_path(*MINI)
    out, maps = tmp_path / "m.json", [str(tmp_path / "t.json"), str(tmp_path / "v.json")]
    assert main(["merge", str(taco), str(mini), "-o", str(out), "--image-ids", "auto",
                 "--id-map", maps[0], "--id-map", maps[1]]) == 0
    err = capsys.readouterr().err
    assert f"wrote {maps[1]}: the old-to-new ids of {mini}" in err
    ds, merged, old = cocokit.load(mini), cocokit.load(out), json.loads(mini.read_text())
    files = {i["id"]: i["file_name"] for i in old["images"]}
    cats = {c["id"]: c["name"] for c in old["categories"]}
    preds = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
              "score": 0.5} for a in old["annotations"]]
    (tmp_path / "p.json").write_text(json.dumps(preds))
    assert main(["results", "remap", str(tmp_path / "p.json"), "--id-map", maps[1], "-o",
                 str(tmp_path / "p2.json"), "-q"]) == 0
    moved = json.loads((tmp_path / "p2.json").read_text())
    new_files = dict(zip(merged.images.id.tolist(), merged.images.file_name.tolist(),
                         strict=True))
    new_cats = dict(zip(merged.categories.id.tolist(), merged.categories.name.tolist(),
                        strict=True))
    assert len(moved) == len(preds) == len(ds.annotations)
    assert [(new_files[p["image_id"]], new_cats[p["category_id"]]) for p in moved] == \
        [(files[p["image_id"]], cats[p["category_id"]]) for p in preds]
    assert max(new_files) == len(merged.images)  # renumbered 1..N, and the map followed
    # one map per input, or none
    assert main(["merge", str(taco), str(mini), "-o", str(out), "--id-map", maps[0]]) == 2
    assert "one file per input (2)" in capsys.readouterr().err
    assert main(["merge", str(taco), str(mini), "-o", str(out), "--id-map", maps[0],
                 "--id-map", maps[0]]) == 2


def test_ids_repeated_within_an_input_are_left_out_of_its_id_map(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TACO repeats annotation ids 309 and 4040: which new id each old one became is
    unknowable, so its map leaves them out (a JSON object would keep one pair of each)
    and the note says so; every other id of TACO is mapped."""
    taco, mini = real_path(*TACO), real_path(*MINI)
    out, maps = tmp_path / "m.json", [str(tmp_path / "v.json"), str(tmp_path / "t.json")]
    assert main(["merge", str(mini), str(taco), "-o", str(out),
                 "--id-map", maps[0], "--id-map", maps[1]]) == 0
    err = capsys.readouterr().err
    assert (f"{taco}: 2 annotation id(s) repeated within this input (309, 4040) are left "
            "out of its id map") in err
    assert (f"{taco}: 4 annotation id(s) changed (2 repeated within this input, 2 already "
            "used by an earlier input)") in err
    written = json.loads(Path(maps[1]).read_text())["annotations"]
    ids = [a["id"] for a in json.loads(taco.read_text())["annotations"]]
    assert "309" not in written and "4040" not in written
    assert sorted(map(int, written)) == sorted(set(ids) - {309, 4040})
    # the same input twice: its repeated ids are both repeated and taken, counted once
    report = merge([cocokit.load(taco)] * 2, duplicates="keep").report
    assert any(n.startswith(f"{taco}: 4784 annotation id(s) changed (4780 already used by an "
                            "earlier input, 4 both repeated within this input and used by an "
                            "earlier one)") for n in report.notes)


def test_a_bad_record_is_named_in_its_input() -> None:
    """A record the export refuses is named by the input and row it was read from
    (``input N`` for one without a file name), not by its row in the merged result."""
    b = DatasetBuilder()
    b.add_category("cat", id=1)
    for k in range(3):
        b.add_image(f"b{k}.jpg", 10, 10, id=k + 1)
        b.add_annotation(k + 1, 1, bbox=[0, 0, 2, 2])
    first = b.build()
    second = cocokit.load(json.dumps({
        "images": [{"id": 1, "file_name": "x.jpg", "width": 10, "height": 10}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                         "iscrowd": 2}],
        "categories": [{"id": 1, "name": "cat"}]}).encode())
    out, _ = merge([first, second])
    with pytest.raises(cocokit.IntegrityError) as e:
        cocokit.to_json(out)
    assert e.value.problems == [
        "input 2: annotations[0].iscrowd: iscrowd must be 0 or 1, found integer 2 "
        "[bad-iscrowd]"]
