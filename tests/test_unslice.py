"""cocokit.unslice_results and ``cocokit results unslice``: tile predictions back home."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from typer.testing import CliRunner

import cocokit
from cocokit.cli import app, main
from cocokit.dataset import lookup, object_array, plain
from cocokit.errors import InputError, OptionError
from cocokit.geometry import encoded_rle
from cocokit.io.results import Results, load_results, write_results
from cocokit.postprocess import overlap
from cocokit.slicing import slice_dataset
from cocokit.unslice import move_to_sources, tile_origins

from .conftest import real_path

REPO = Path(__file__).resolve().parents[1]
TILE = 256
runner = CliRunner()


def _xyxy(b: np.ndarray) -> np.ndarray:
    b = np.asarray(b, float).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)


@pytest.fixture(scope="module")
def sliced(tmp_path_factory: pytest.TempPathFactory) -> tuple[cocokit.Dataset, cocokit.Dataset]:
    """20 coco-mini images cut in 256-pixel tiles (overlap 0.2, every piece kept)."""
    ann = real_path("coco-mini", "annotations", "instances_val2017.json")
    src = cocokit.load(ann).select_images(np.arange(20))
    out = tmp_path_factory.mktemp("tiles")
    tiles, _ = slice_dataset(src, real_path("coco-mini", "val2017"), out, size=TILE,
                             overlap=0.2, workers=1, min_area_ratio=0.0)
    return src, tiles


def _gt_as_results(tiles: cocokit.Dataset, segmentation: bool = False) -> Results:
    """The tiles' ground truth as tile "predictions" with score 1 (crowds left out)."""
    a = tiles.annotations
    rows = np.flatnonzero(a.iscrowd == 0)
    seg = [a[int(r)]["segmentation"] if segmentation else None for r in rows]
    return Results(a.image_id[rows], a.category_id[rows], a.bbox[rows], np.ones(len(rows)),
                   object_array(seg), object_array([{} for _ in rows]), "tile_preds.json")


def _windows(tiles: cocokit.Dataset) -> dict[int, list[list[int]]]:
    out: dict[int, list[list[int]]] = {}
    for e in tiles.images.extra:
        out.setdefault(e["source_image_id"], []).append(e["source_window"])
    return out


def _objects(src: cocokit.Dataset, tiles: cocokit.Dataset) -> list[tuple[int, bool, bool]]:
    """(row, wholly inside some tile, no other object of its category touches it)."""
    a = src.annotations
    win = _windows(tiles)
    rows = np.flatnonzero(a.iscrowd == 0)
    out = []
    for r in rows.tolist():
        x, y, w, h = a.bbox[r]
        inside = any(x >= wx and y >= wy and x + w <= wx + ww and y + h <= wy + wh
                     for wx, wy, ww, wh in win[int(a.image_id[r])])
        same = rows[(a.image_id[rows] == a.image_id[r]) & (a.category_id[rows] ==
                                                              a.category_id[r]) & (rows != r)]
        alone = not len(same) or overlap(np.repeat(_xyxy(a.bbox[r]), len(same), 0),
                                         _xyxy(a.bbox[same]), "iou").max() == 0
        out.append((r, inside, alone))
    return out


def _best(out: Results, src: cocokit.Dataset, r: int) -> tuple[float, int]:
    """Best IoU of an output box with source object r, and how many touch it."""
    a = src.annotations
    mine = (out.image_id == a.image_id[r]) & (out.category_id == a.category_id[r])
    box = np.repeat(_xyxy(a.bbox[r]), int(mine.sum()), 0)
    iou = overlap(box, _xyxy(out.bbox[mine]), "iou")
    touching = int((overlap(box, _xyxy(out.bbox[mine]), "ios") > 0).sum())
    return (float(iou.max()) if len(iou) else 0.0), touching


@pytest.mark.parametrize(("merge", "metric", "threshold"), [
    ("greedy-nmm", "ios", 0.5),  # SAHI's defaults
    ("greedy-nmm", "ios", 0.1),
    ("nmm", "ios", 0.1),
    ("nmm", "iou", 0.5),
])
def test_objects_inside_a_tile_come_back(sliced: Any, merge: str, metric: str,
                                         threshold: float) -> None:
    src, tiles = sliced
    out = cocokit.unslice_results(_gt_as_results(tiles), tiles, merge=merge, match_metric=metric,
                          match_threshold=threshold)
    checked = [r for r, inside, alone in _objects(src, tiles) if inside and alone]
    assert len(checked) > 30
    for r in checked:
        assert _best(out, src, r)[0] >= 0.99, r


def test_without_merging_every_object_inside_a_tile_comes_back(sliced: Any) -> None:
    src, tiles = sliced
    out = cocokit.unslice_results(_gt_as_results(tiles), tiles, merge="none")
    assert len(out) == len(_gt_as_results(tiles))
    checked = [r for r, inside, _ in _objects(src, tiles) if inside]
    for r in checked:
        assert _best(out, src, r)[0] >= 0.99, r
    assert set(out.image_id.tolist()) <= set(src.images.id.tolist())


@pytest.mark.parametrize("merge", ["greedy-nmm", "nmm"])
def test_objects_cut_by_tile_borders_merge_into_one(sliced: Any, merge: str) -> None:
    src, tiles = sliced
    out = cocokit.unslice_results(_gt_as_results(tiles), tiles, merge=merge, match_metric="ios",
                          match_threshold=0.1)
    a = src.annotations
    cut = [r for r, inside, alone in _objects(src, tiles)
           if not inside and alone and a.bbox[r, 2] <= TILE and a.bbox[r, 3] <= TILE]
    assert len(cut) >= 8
    for r in cut:
        iou, touching = _best(out, src, r)
        assert touching == 1 and iou >= 0.99, (r, iou, touching)
    # and merging left fewer detections than the tiles had
    assert len(out) < len(_gt_as_results(tiles))


def test_polygons_move_by_the_window(sliced: Any) -> None:
    _, tiles = sliced
    res = _gt_as_results(tiles, segmentation=True)
    origins = tile_origins(tiles)
    moved, sizes = move_to_sources(res, origins)
    row = lookup(origins.tile_id, res.image_id)
    assert moved.image_id.tolist() == origins.source_id[row].tolist()
    shift = np.tile(origins.window[row, :2], 2).astype(float)
    shift[:, 2:] = 0
    assert np.allclose(moved.bbox, res.bbox + shift)
    assert (sizes == origins.size[row]).all()
    polygons = 0
    for i in range(len(res)):
        x, y = origins.window[row[i], :2]
        if isinstance(res.segmentation[i], list):
            polygons += 1
            want = [(np.asarray(r, float).reshape(-1, 2) + np.array([x, y])).ravel()
                    for r in res.segmentation[i]]
            got = moved.segmentation[i]
            assert len(got) == len(want)
            assert all(np.allclose(g, w) for g, w in zip(got, want, strict=True))
    assert polygons > 100


def test_crowd_rle_pasted_back_equals_the_source_mask(sliced: Any) -> None:
    src, tiles = sliced
    a = tiles.annotations
    crowd = np.flatnonzero(a.iscrowd == 1)
    if not len(crowd):
        pytest.skip("no crowd RLE among these images")
    res = Results(a.image_id[crowd], a.category_id[crowd], a.bbox[crowd],
                  np.ones(len(crowd)), object_array([a[int(r)]["segmentation"] for r in crowd]),
                  object_array([{} for _ in crowd]))
    out = cocokit.unslice_results(res, tiles, merge="none")
    sa = src.annotations
    for image_id in sorted(set(out.image_id.tolist())):
        img = src.images[src.image_row(image_id)]
        h, w = img["height"], img["width"]
        pasted = np.zeros((h, w), bool)
        for i in np.flatnonzero(out.image_id == image_id).tolist():
            assert out.segmentation[i]["size"] == [h, w]
            pasted |= mask_utils.decode(out.segmentation[i]).astype(bool)
        source = np.zeros((h, w), bool)
        for r in np.flatnonzero((sa.image_id == image_id) & (sa.iscrowd == 1)).tolist():
            source |= mask_utils.decode(encoded_rle(sa[r]["segmentation"])).astype(bool)
        # the tiles cover the image, so their pieces put back make the whole mask
        assert source.any() and (pasted == source).all()


def _tiles_dict(windows: list[list[int]], source: int = 5, size: tuple[int, int] = (100, 160),
                provenance: bool = True) -> dict[str, Any]:
    images = []
    for k, (x, y, w, h) in enumerate(windows):
        rec: dict[str, Any] = {"id": k + 1, "file_name": f"t{k}.png", "width": w, "height": h}
        if provenance:
            rec.update(source_image_id=source, source_window=[x, y, w, h],
                       source_width=size[1], source_height=size[0])
        images.append(rec)
    return {"images": images, "annotations": [], "categories": [{"id": 1, "name": "a"}]}


def _rle(mask: np.ndarray) -> dict[str, Any]:
    r = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(r["size"]), "counts": r["counts"].decode()}


def test_masks_of_merged_parts_are_united() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    full = np.zeros((100, 160), bool)
    full[20:60, 40:120] = True  # one object across both tiles
    left, right = full[:, 0:100], full[:, 60:160]
    res = Results.from_records([
        {"image_id": 1, "category_id": 1, "bbox": [40, 20, 60, 40], "score": 0.9,
         "segmentation": _rle(left)},
        {"image_id": 2, "category_id": 1, "bbox": [0, 20, 60, 40], "score": 0.8,
         "segmentation": _rle(right)},
    ])
    out = cocokit.unslice_results(res, tiles, match_threshold=0.1)
    assert len(out) == 1
    assert out.bbox[0].tolist() == [40, 20, 80, 40] and out.score[0] == 0.9
    assert out.image_id.tolist() == [5]
    assert (mask_utils.decode(out.segmentation[0]).astype(bool) == full).all()


def test_full_image_predictions_are_merged_in() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    res = Results.from_records([{"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20],
                                 "score": 0.6, "note": "tile"}])
    full = Results.from_records([
        {"image_id": 5, "category_id": 1, "bbox": [71, 11, 19, 19], "score": 0.7},
        {"image_id": 5, "category_id": 1, "bbox": [0, 80, 10, 10], "score": 0.5},
    ])
    out = cocokit.unslice_results(res, tiles, full=full)
    assert sorted(out.score.tolist()) == [0.5, 0.7]
    assert [70.0, 10.0, 20.0, 20.0] in out.bbox.tolist()
    alone = cocokit.unslice_results(res, tiles)
    assert alone.bbox.tolist() == [[70, 10, 20, 20]] and alone.extra[0] == {"note": "tile"}


def test_boxes_are_clipped_to_the_source_image_and_taken_from_masks() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    res = Results.from_records([
        {"image_id": 2, "category_id": 1, "bbox": [90, 90, 30, 30], "score": 0.6},
        {"image_id": 1, "category_id": 1, "score": 0.5,
         "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]},
    ])
    out = cocokit.unslice_results(res, tiles, merge="none")
    assert sorted(out.bbox.tolist()) == [[10, 10, 20, 10], [150, 90, 10, 10]]


def test_source_size_defaults_to_where_the_tiles_end() -> None:
    doc = _tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]])
    for rec in doc["images"]:
        del rec["source_width"], rec["source_height"]
    origins = tile_origins(cocokit.load(doc))
    assert origins.size.tolist() == [[100, 160], [100, 160]]


@pytest.mark.parametrize(("change", "where", "says"), [
    ("no-provenance", "images[0]", "no valid source_image_id"),
    ("bad-window", "images[1]", "no valid source_window"),
    ("not-a-tile", "results[1].image_id", "9 is not the id of a tile"),
    ("rle-too-big", "results[0].segmentation", "does not fit"),
])
def test_malformed_inputs_give_one_clear_error(change: str, where: str, says: str) -> None:
    doc = _tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]],
                      provenance=change != "no-provenance")
    if change == "bad-window":
        doc["images"][1]["source_window"] = [60, 0, "w", 100]
    records = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5},
               {"image_id": 9 if change == "not-a-tile" else 2, "category_id": 1,
                "bbox": [0, 0, 5, 5], "score": 0.5}]
    if change == "rle-too-big":
        records[0]["segmentation"] = _rle(np.ones((120, 10), bool))
    with pytest.raises(InputError) as e:
        cocokit.unslice_results(Results.from_records(records, source="r.json"),
                        cocokit.read_coco(doc, name="tiles.json"))
    assert e.value.path == where and says in str(e.value)


def test_bad_options_are_option_errors() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100]]))
    with pytest.raises(OptionError):
        cocokit.unslice_results(Results.from_records([]), tiles, merge="wbf")  # type: ignore[arg-type]


# -- the command ----------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    tiles = tmp_path / "tiles.json"
    tiles.write_text(json.dumps(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]])))
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([
        {"image_id": 1, "category_id": 1, "bbox": [70, 10, 20, 20], "score": 0.9},
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.8},
    ]))
    full = tmp_path / "full.json"
    full.write_text(json.dumps([{"image_id": 5, "category_id": 1, "bbox": [0, 0, 9, 9],
                                 "score": 0.3}]))
    return {"tiles": tiles, "preds": preds, "full": full, "out": tmp_path / "out.json"}


def test_cli_unslice(files: dict[str, Path]) -> None:
    r = runner.invoke(app, ["results", "unslice", str(files["preds"]), "--tiles",
                            str(files["tiles"]), "-o", str(files["out"]), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["detections"] == 1
    assert json.loads(files["out"].read_text()) == [
        {"image_id": 5, "category_id": 1, "bbox": [70.0, 10.0, 20.0, 20.0], "score": 0.9}]


@pytest.mark.parametrize(("flags", "count"), [
    (["--merge", "none"], 2),
    (["--full", "FULL"], 2),
    (["--match-metric", "iou", "--match-threshold", "0.9", "--merge", "nms"], 1),
    (["--class-agnostic", "--merge", "nmm"], 1),
])
def test_cli_flags(files: dict[str, Path], flags: list[str], count: int) -> None:
    flags = [str(files["full"]) if f == "FULL" else f for f in flags]
    rc = main(["results", "unslice", str(files["preds"]), "--tiles", str(files["tiles"]),
               "-o", str(files["out"]), "-q", *flags])
    assert rc == 0 and len(load_results(files["out"])) == count


@pytest.mark.parametrize(("case", "message"), [
    ("not-tiles", "is not the id of a tile"),
    ("no-provenance", "no valid source_image_id"),
    ("threshold", "--match-threshold"),
    ("merge", "'wbf' is not one of"),
    ("results-not-json", "malformed JSON"),
])
def test_cli_errors_are_one_line_and_write_nothing(
        files: dict[str, Path], case: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["results", "unslice", str(files["preds"]), "--tiles", str(files["tiles"]),
            "-o", str(files["out"])]
    if case == "not-tiles":
        files["preds"].write_text(json.dumps([{"image_id": 77, "category_id": 1,
                                               "bbox": [0, 0, 1, 1], "score": 1}]))
    elif case == "no-provenance":
        files["tiles"].write_text(json.dumps(_tiles_dict([[0, 0, 100, 100]],
                                                         provenance=False)))
    elif case == "threshold":
        args += ["--match-threshold", "1.5"]
    elif case == "merge":
        args += ["--merge", "wbf"]
    else:
        files["preds"].write_text("[{")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("error:")
    assert not files["out"].exists()


def test_cli_in_a_subprocess(files: dict[str, Path]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "results", "unslice", str(files["preds"]),
         "--tiles", str(files["tiles"]), "-o", str(files["out"])],
        capture_output=True, text=True, cwd=REPO, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stderr and len(load_results(files["out"])) == 1


def test_write_and_load_round_trip(tmp_path: Path) -> None:
    res = Results.from_records([{"image_id": 3, "category_id": 2, "bbox": [1, 2, 3, 4],
                                 "score": 0.25, "area": 12}])
    write_results(res, tmp_path / "r.json")
    assert load_results(tmp_path / "r.json").to_records() == res.to_records()


def test_empty_results_and_whole_image_detections_of_images_without_tiles() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100]]))
    assert len(cocokit.unslice_results(Results.from_records([]), tiles)) == 0
    square = [[0, 0, 10, 0, 10, 10, 0, 10]]
    full = Results.from_records([
        {"image_id": 77, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9,
         "segmentation": square},
        {"image_id": 77, "category_id": 1, "bbox": [1, 1, 10, 10], "score": 0.8,
         "segmentation": square},
    ])
    out = cocokit.unslice_results(Results.from_records([]), tiles, full=full)
    # merged; with no image size to draw the polygons in, the kept one's mask stays
    assert out.image_id.tolist() == [77] and out.bbox.tolist() == [[0, 0, 11, 11]]
    assert out.segmentation[0] == square


def test_an_area_key_follows_the_merge() -> None:
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    full = np.zeros((100, 160), bool)
    full[20:60, 40:120] = True
    res = Results.from_records([
        {"image_id": 1, "category_id": 1, "bbox": [40, 20, 60, 40], "score": 0.9,
         "segmentation": _rle(full[:, :100]), "area": 2400, "category_name": "a"},
        {"image_id": 2, "category_id": 1, "bbox": [0, 20, 60, 40], "score": 0.8,
         "segmentation": _rle(full[:, 60:]), "area": 2400},
        {"image_id": 1, "category_id": 1, "bbox": [0, 80, 10, 10], "score": 0.7, "area": 1},
        {"image_id": 1, "category_id": 1, "bbox": [5, 80, 10, 10], "score": 0.6},
        {"image_id": 2, "category_id": 1, "bbox": [30, 80, 10, 10], "score": 0.5, "area": 1},
    ])
    out = cocokit.unslice_results(res, tiles, match_threshold=0.1)
    # merged: the mask's pixels, the box's area; alone: as it was
    assert [e.get("area") for e in out.extra] == [3200.0, 150.0, 1]
    assert out.extra[0]["category_name"] == "a"


def test_sahi_style_results_without_masks_merge() -> None:
    # SAHI's results files carry "segmentation": [] and extra keys for box detections
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    res = Results.from_records([
        {"image_id": 1, "category_id": 1, "bbox": [70, 10, 30, 20], "score": 0.9,
         "segmentation": [], "iscrowd": 0, "category_name": "a"},
        {"image_id": 2, "category_id": 1, "bbox": [10, 10, 30, 20], "score": 0.8,
         "segmentation": [], "iscrowd": 0, "category_name": "a"},
    ])
    out = cocokit.unslice_results(res, tiles)
    assert out.bbox.tolist() == [[70, 10, 30, 20]] and out.segmentation[0] == []
    assert out.extra[0] == {"iscrowd": 0, "category_name": "a"}



@pytest.mark.parametrize("merge", ["greedy-nmm", "none"])
def test_a_flat_ring_is_one_ring(merge: str) -> None:
    """A polygon held as one flat ring (load_results refuses it; Results made in memory
    can hold it) is moved and merged as the same ring in a list (geometry.polygon_rings)."""
    tiles = cocokit.load(_tiles_dict([[0, 0, 100, 100], [60, 0, 100, 100]]))
    rings = [[40, 20, 100, 20, 100, 60, 40, 60],  # one object across both tiles
             [0, 20, 60, 20, 60, 60, 0, 60]]
    wrapped = Results.from_records([
        {"image_id": i + 1, "category_id": 1, "bbox": [ring[0], 20, 60, 40], "score": s,
         "segmentation": [ring]} for i, (ring, s) in enumerate(zip(rings, [0.9, 0.8],
                                                                       strict=True))])
    flat = wrapped.replace(segmentation=object_array(rings))
    out = [cocokit.unslice_results(r, tiles, merge=merge, match_threshold=0.1)  # type: ignore[arg-type]
           for r in (flat, wrapped)]
    assert len(out[0]) == len(out[1]) == (2 if merge == "none" else 1)
    assert out[0].bbox.tolist() == out[1].bbox.tolist()
    assert [plain(s) for s in out[0].segmentation] == [plain(s) for s in out[1].segmentation]
    if merge == "none":
        assert plain(out[0].segmentation[1]) == [[60, 20, 120, 20, 120, 60, 60, 60]]
