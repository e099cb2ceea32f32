"""Id maps (--id-map) and `cocokit results remap`: results carried over to a renumbered
dataset give exactly the original evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

import cocokit
from cocokit.cli import main
from cocokit.errors import InputError, OptionError
from cocokit.io.idmap import IdMap, read_id_map, write_id_map
from cocokit.remap import category_pairs, id_map_between, remap_results

from .conftest import DATA, real_path

VAL = ("cocoapi-val2014-100", "instances_val2014_100.json")
FAKE = {"bbox": ("cocoapi-val2014-100", "instances_val2014_fakebbox100_results.json"),
        "segm": ("cocoapi-val2014-100", "instances_val2014_fakesegm100_results.json")}
TINY = DATA / "tiny_coco_val2017.json"


def sorted_by_id(tmp_path: Path) -> Path:
    """The val2014 subset with its images in id order. COCOeval breaks score ties in
    image-id order, so renumbering that keeps the order keeps every digit (see
    docs/predictions.md); the real file lists its images out of id order."""
    ds = cocokit.load(real_path(*VAL))
    order = np.argsort(ds.images.id, kind="stable")
    out = tmp_path / "gt.json"
    cocokit.save(ds.replace(images=ds.images.take(order)), out)
    return out


def stats(capsys: pytest.CaptureFixture[str], *args: str | Path) -> list[float]:
    assert main(["eval", *map(str, args), "--json", "-q"]) == 0
    out: list[float] = json.loads(capsys.readouterr().out)["stats"]
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
@pytest.mark.parametrize("how", ["id-map", "from-to"])
def test_remapped_results_give_the_original_stats(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], iou_type: str, how: str) -> None:
    gt = sorted_by_id(tmp_path)
    fake = real_path(*FAKE[iou_type])
    before = stats(capsys, gt, fake, "--iou-type", iou_type)
    new, ids = tmp_path / "new.json", tmp_path / "ids.json"
    assert main(["export", str(gt), "-o", str(new), "--image-ids", "auto",
                 "--annotation-ids", "auto", "--id-map", str(ids), "-q"]) == 0
    assert json.loads(new.read_text())["images"][0]["id"] == 1
    out = tmp_path / "remapped.json"
    source = ["--id-map", str(ids)] if how == "id-map" else ["--from", str(gt), "--to", str(new)]
    assert main(["results", "remap", str(fake), *source, "-o", str(out), "-q"]) == 0
    # without remapping, the old ids do not match the new file
    assert main(["eval", str(new), str(fake), "--iou-type", iou_type, "-q"]) == 2
    assert "image_id" in capsys.readouterr().err
    assert stats(capsys, new, out, "--iou-type", iou_type) == before


def test_id_map_shape(tmp_path: Path) -> None:
    ds = cocokit.load(TINY)
    summary = cocokit.write_coco(ds, tmp_path / "o.json", image_ids="auto",
                                 annotation_ids="auto")
    assert summary.id_map is not None
    m = summary.id_map.to_dict()
    assert list(m["images"].values()) == list(range(1, len(ds.images) + 1))
    assert list(m["images"]) == [str(i) for i in ds.images.id.tolist()]
    assert list(m["annotations"]) == [str(i) for i in ds.annotations.id.tolist()]
    assert m["file_names"]["1"] == ds.images.file_name[0]
    assert m["categories"] == {}
    write_id_map(summary.id_map, tmp_path / "m.json")
    back = read_id_map(tmp_path / "m.json")
    assert back.images_old.tolist() == ds.images.id.tolist()


@pytest.mark.parametrize("ids", ["auto", "keep"])
def test_streamed_export_writes_the_same_map(tmp_path: Path, ids: Literal["auto", "keep"]) -> None:
    from cocokit.io.stream import open_stream

    ds = cocokit.load(TINY)
    a = cocokit.write_coco(ds, tmp_path / "a.json", image_ids=ids, annotation_ids=ids)
    b = cocokit.write_coco(open_stream(TINY), tmp_path / "b.json", image_ids=ids,
                           annotation_ids=ids)
    assert a.id_map is not None and b.id_map is not None
    assert a.id_map.to_dict()["images"] == b.id_map.to_dict()["images"]
    assert a.id_map.to_dict()["annotations"] == b.id_map.to_dict()["annotations"]


def test_filter_map_lists_only_what_was_kept(tmp_path: Path) -> None:
    ids = tmp_path / "ids.json"
    assert main(["filter", str(TINY), "-o", str(tmp_path / "f.json"), "--keep-category",
                 "person", "--drop-negatives", "--image-ids", "auto", "--id-map", str(ids),
                 "-q"]) == 0
    m = json.loads(ids.read_text())
    out = json.loads((tmp_path / "f.json").read_text())
    assert sorted(m["images"].values()) == [im["id"] for im in out["images"]]
    assert len(m["annotations"]) == len(out["annotations"])


def test_categories_reindex_map(tmp_path: Path) -> None:
    ids = tmp_path / "ids.json"
    assert main(["categories", str(TINY), "-o", str(tmp_path / "c.json"), "--reindex", "0",
                 "--id-map", str(ids), "-q"]) == 0
    m = json.loads(ids.read_text())
    ds = cocokit.load(TINY)
    assert m["categories"] == {str(c): k for k, c in enumerate(ds.categories.id.tolist())}


def test_category_pairs_of_a_merge() -> None:
    from cocokit.transforms import edit_categories

    ds = cocokit.load(TINY)
    used = [int(c) for c in np.unique(ds.annotations.category_id)[:2]]
    names = dict(zip(ds.categories.id.tolist(), ds.categories.name, strict=True))
    out, _ = edit_categories(ds, merge={"thing": [names[used[0]], names[used[1]]]})
    old, new = category_pairs(ds, out)
    pairs = dict(zip(old.tolist(), new.tolist(), strict=True))
    assert pairs[used[0]] == pairs[used[1]]
    assert len(set(old.tolist())) == len(old)  # one new id for each old one


def test_remap_drops_or_refuses_results_not_in_the_map() -> None:
    res = cocokit.load_results([
        {"image_id": 10, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5},
        {"image_id": 20, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.6},
    ])
    m = IdMap(np.array([10]), np.array([1]))
    out = remap_results(res, m)
    assert out.image_id.tolist() == [1] and out.score.tolist() == [0.5]
    with pytest.raises(InputError, match=r"results\[1\]\.image_id"):
        remap_results(res, m, missing="error")
    cats = m.with_categories(np.array([1]), np.array([0]))
    assert remap_results(res, cats).category_id.tolist() == [0]


def test_id_map_between_refuses_ambiguous_file_names() -> None:
    doc = json.loads(TINY.read_text())
    doc["images"][1]["file_name"] = doc["images"][0]["file_name"]
    ds = cocokit.read_coco(doc)
    with pytest.raises(InputError, match="file_name"):
        id_map_between(ds, cocokit.load(TINY))


def test_remap_options(tmp_path: Path) -> None:
    res = cocokit.load_results([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1],
                                 "score": 0.5}])
    with pytest.raises(OptionError):
        remap_results(res)
    with pytest.raises(OptionError):
        remap_results(res, IdMap(), source=cocokit.load(TINY))


@pytest.mark.parametrize(("content", "text"), [
    ("[1, 2]", "JSON object"),
    ('{"info": 1}', "at least one"),
    ('{"images": {"a": 1}}', "images.a"),
    ('{"images": {"1": "x"}}', "integer"),
    ("{", "malformed"),
])
def test_bad_id_map_files(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str,
                          text: str) -> None:
    m = tmp_path / "m.json"
    m.write_text(content)
    rc = main(["results", "remap", str(real_path(*FAKE["bbox"])), "--id-map", str(m), "-o",
               str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and text in err and "Traceback" not in err
    assert not (tmp_path / "o.json").exists()


@pytest.mark.parametrize("args", [
    [],
    ["--from", "a.json"],
    ["--id-map", "m.json", "--from", "a.json", "--to", "b.json"],
])
def test_remap_usage(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    rc = main(["results", "remap", str(real_path(*FAKE["bbox"])), *args, "-o",
               str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "--id-map" in err and "Traceback" not in err


def test_id_map_refused_for_yolo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["export", str(TINY), "--format", "yolo", "-o", str(tmp_path / "y"),
               "--id-map", str(tmp_path / "m.json"), "--image-mode", "none"])
    assert rc == 2 and "--id-map" in capsys.readouterr().err


def test_results_group_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["results", "--help"]) == 0
    assert "remap" in capsys.readouterr().out
