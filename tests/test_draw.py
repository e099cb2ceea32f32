"""Drawing annotated images (cocokit.draw) and the ``draw`` command."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder, InputError, OptionError
from cocokit.cli import app, main
from cocokit.cli.stats import ImageFormat, output_name
from cocokit.dataset import object_array
from cocokit.draw import SHOW_ALL, category_colors, draw, parse_show, resolve_image
from cocokit.io.results import Results

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def mini(real_data: Path) -> tuple[Path, Path]:
    """coco-mini instances (with crowd RLE) and its image folder."""
    return (real_data / "coco-mini" / "annotations" / "instances_val2017.json",
            real_data / "coco-mini" / "val2017")


def _coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _painted(img: Image.Image) -> np.ndarray:
    """Where a drawing on a black canvas is not black."""
    return np.asarray(img).max(axis=2) > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max(1, (a | b).sum()))


def _some_images(ds: cocokit.Dataset) -> list[int]:
    """Image rows with crowd RLE, plus a few with many polygons."""
    crowd = np.flatnonzero(ds.annotations.iscrowd == 1)
    crowd_rows = sorted({int(ds.image_index[r]) for r in crowd})
    busy = np.argsort(-ds.annotation_counts, kind="stable")[:3].tolist()
    return crowd_rows + [r for r in busy if r not in crowd_rows]


def test_masks_drawn_where_pycocotools_rasterizes(mini: tuple[Path, Path]) -> None:
    path, _ = mini
    ds = cocokit.load(path)
    coco = _coco(path)
    rows = _some_images(ds)
    assert len(rows) >= 5
    alpha = 0.5
    colors = category_colors(ds)
    for row in rows:
        image_id = int(ds.images.id[row])
        drawn = np.asarray(draw(ds, row, show=["masks"], alpha=alpha))  # black canvas
        painted = drawn.max(axis=2) > 0
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        union = np.zeros(painted.shape, bool)
        for ann in anns:
            union |= coco.annToMask(ann).astype(bool)
        assert _iou(painted, union) > 0.999, image_id
        np.testing.assert_array_equal(painted, union)  # rasterized by pycocotools too
        # where exactly one mask lies, the pixel is that category's color at alpha (or in
        # full on the mask outline)
        count = np.zeros(painted.shape, np.int32)
        for ann in anns:
            count += coco.annToMask(ann)
        for ann in anns:
            m = coco.annToMask(ann).astype(bool) & (count == 1)
            if not m.any():
                continue
            color = np.asarray(colors[ann["category_id"]])
            px = drawn[m].astype(int)
            fill = np.rint(color * alpha).astype(int)
            is_fill = (np.abs(px - fill) <= 1).all(axis=1)
            is_edge = (px == color).all(axis=1)
            assert (is_fill | is_edge).all(), (image_id, ann["id"])
            assert is_fill.sum() > is_edge.sum() or m.sum() < 400


def test_masks_blend_over_real_pixels_and_leave_the_rest(mini: tuple[Path, Path]) -> None:
    path, images = mini
    ds = cocokit.load(path)
    coco = _coco(path)
    row = _some_images(ds)[0]
    src = np.asarray(Image.open(images / ds.images.file_name[row]).convert("RGB"))
    out = np.asarray(draw(ds, row, images, show="masks"))
    assert out.shape == src.shape
    union = np.zeros(src.shape[:2], bool)
    for ann in coco.loadAnns(coco.getAnnIds(imgIds=[int(ds.images.id[row])])):
        union |= coco.annToMask(ann).astype(bool)
    np.testing.assert_array_equal(out[~union], src[~union])
    assert (out[union] != src[union]).any(axis=1).mean() > 0.9


def test_every_layer_draws_something_and_boxes_sit_on_bbox(real_data: Path) -> None:
    path = real_data / "coco-mini" / "annotations" / "person_keypoints_val2017.json"
    images = real_data / "coco-mini" / "val2017"
    ds = cocokit.load(path)
    row = ds.image_row(349860)
    base = np.asarray(draw(ds, row, images, show=[]))
    for layer in SHOW_ALL:
        out = np.asarray(draw(ds, row, images, show=[layer]))
        assert (out != base).any(), layer
    # a single box on black: painted pixels span exactly the box
    b = DatasetBuilder()
    cat = b.add_category("thing")
    img = b.add_image("x.png", 100, 80)
    b.add_annotation(img, cat, bbox=[10, 20, 30, 40])
    one = b.build()
    painted = _painted(draw(one, 0, show="boxes", line_width=1))
    ys, xs = np.nonzero(painted)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 39, 20, 59)
    assert not painted[30:50, 15:35].any()  # an outline, not a fill


def test_keypoints_and_skeleton(real_data: Path) -> None:
    path = real_data / "coco-mini" / "annotations" / "person_keypoints_val2017.json"
    ds = cocokit.load(path)
    skeleton = ds.categories.by_name("person")["skeleton"]
    row = ds.image_row(349860)
    drawn = _painted(draw(ds, row, show="keypoints", line_width=2))
    checked = 0
    for r in ds.annotation_rows(row).tolist():
        kp = ds.annotations.keypoints_array(r)
        for x, y, v in kp:
            if v > 0:
                assert drawn[round(y), round(x)]
        for a, b in skeleton:
            pa, pb = kp[a - 1], kp[b - 1]
            if pa[2] > 0 and pb[2] > 0:
                mx, my = np.rint((pa[:2] + pb[:2]) / 2).astype(int)
                assert drawn[my - 1: my + 2, mx - 1: mx + 2].any()
                checked += 1
    assert checked >= 10
    assert drawn.mean() < 0.05  # points and lines, not a fill


def test_polygon_crop_equals_full_size_rasterization_outside_image() -> None:
    b = DatasetBuilder()
    cat = b.add_category("edge")
    img = b.add_image("x.png", 60, 40)
    polygons: list[list[list[float]]] = [
        [[-10.0, -5.0, 30.5, 2.2, 70.0, 50.0, 5.0, 45.0]],  # reaches past every edge
        [[50.2, 10.1, 59.9, 10.1, 59.9, 39.9], [1, 1, 4, 1, 4, 4]],  # two rings
    ]
    for p in polygons:
        b.add_annotation(img, cat, polygon=p)
    ds = b.build()
    for r, rings in enumerate(polygons):
        expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(rings, 40, 60)))
        only = ds.select_annotations([r])
        painted = _painted(draw(only, 0, show="masks", alpha=1.0))
        np.testing.assert_array_equal(painted, expected.astype(bool))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.floats(-20, 120), st.floats(-20, 90)), min_size=3, max_size=9))
def test_random_polygons_match_pycocotools(points: list[tuple[float, float]]) -> None:
    b = DatasetBuilder()
    cat = b.add_category("p")
    img = b.add_image("x.png", 100, 70)
    ring = [v for xy in points for v in xy]
    b.add_annotation(img, cat, polygon=ring)
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([ring], 70, 100)))
    painted = _painted(draw(b.build(), 0, show="masks", alpha=1.0))
    np.testing.assert_array_equal(painted, expected.astype(bool))


def test_selecting_the_image(mini: tuple[Path, Path]) -> None:
    ds = cocokit.load(mini[0])
    row = 7
    image_id = int(ds.images.id[row])
    name = str(ds.images.file_name[row])
    assert resolve_image(ds, row) == resolve_image(ds, image_id=image_id) == row
    assert resolve_image(ds, name) == resolve_image(ds, f"some/where/{name}") == row
    assert resolve_image(ds, -1) == len(ds.images) - 1
    a = np.asarray(draw(ds, image_id=image_id, show="boxes"))
    np.testing.assert_array_equal(a, np.asarray(draw(ds, name, show="boxes")))
    for kwargs, option in [({"image": 10_000}, "image"), ({"image": "nope.jpg"}, "file_name"),
                           ({"image_id": -3}, "image_id"), ({}, "image"),
                           ({"image": 1, "image_id": image_id}, "image")]:
        with pytest.raises(OptionError) as e:
            resolve_image(ds, **kwargs)  # type: ignore[arg-type]
        assert e.value.option == option


def test_bad_inputs_raise_cocokit_errors(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, _ = mini
    ds = cocokit.load(path)
    with pytest.raises(OptionError, match="show"):
        draw(ds, 0, show="masks,outlines")
    with pytest.raises(OptionError, match="alpha"):
        draw(ds, 0, alpha=2)
    with pytest.raises(InputError, match="image file not found") as e:
        draw(ds, 0, tmp_path)
    assert e.value.path == "images[0].file_name"
    with pytest.raises(InputError, match="annotations would not line up"):
        draw(ds, 0, background=Image.new("RGB", (10, 10)))
    # an RLE whose size disagrees with the image
    b = DatasetBuilder()
    cat = b.add_category("c")
    img = b.add_image("x.png", 20, 10)
    b.add_annotation(img, cat, rle={"size": [5, 5], "counts": [0, 25]})
    with pytest.raises(InputError, match=r"annotations\[0\].segmentation.size"):
        draw(b.build(), 0)
    assert parse_show("boxes, masks") == ("masks", "boxes")


def test_palette_and_gray_images_come_out_rgb(real_data: Path) -> None:
    folder = real_data / "sahi-testdata" / "coco_utils"
    ds = cocokit.load(folder / "terrain2_coco.json")
    assert Image.open(folder / "terrain2.png").mode == "P"
    out = draw(ds, 0, folder)
    assert out.mode == "RGB" and out.size == (1024, 682)
    gray = Image.open(folder / "terrain2_gray.png")
    before = np.asarray(gray).copy()
    out2 = draw(ds, 0, background=gray, show="masks")
    np.testing.assert_array_equal(np.asarray(gray), before)  # input untouched
    assert out2.mode == "RGB"
    assert (np.asarray(out2)[..., 0] != np.asarray(out2)[..., 2]).any()  # colored masks


@pytest.mark.parametrize(("name", "fmt", "expected"), [
    ("a.jpg", ImageFormat.auto, "a.jpg"),
    ("batch_1/000006.JPG", ImageFormat.auto, "batch_1/000006.JPG"),
    ("scan.tif", ImageFormat.auto, "scan.png"),
    ("a.jpg", ImageFormat.png, "a.png"),
    ("/data/x/a.png", ImageFormat.jpg, "data/x/a.jpg"),
    ("C:\\imgs\\a.png", ImageFormat.auto, "imgs/a.png"),
])
def test_output_names_stay_inside_the_folder(name: str, fmt: ImageFormat, expected: str) -> None:
    assert str(output_name(name, fmt)) == expected


@pytest.mark.parametrize("name", ["../escape.jpg", "a/../../b.jpg", ""])
def test_output_names_leaving_the_folder_are_refused(name: str) -> None:
    with pytest.raises(InputError):
        output_name(name, ImageFormat.auto)


# -- the command ---------------------------------------------------------------------


def test_cli_sample_writes_images_of_the_right_size(mini: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    path, images = mini
    out = tmp_path / "drawn"
    args = ["draw", str(path), "--images", str(images), "-o", str(out), "--sample", "4",
            "--seed", "3", "--image-format", "png", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted(out.iterdir())
    assert len(files) == 4 and all(f.suffix == ".png" for f in files)
    ds = cocokit.load(path)
    for f in files:
        row = resolve_image(ds, f.with_suffix(".jpg").name)
        with Image.open(f) as im:
            assert im.size == (ds.images.width[row], ds.images.height[row])
    # the same seed picks the same images
    out2 = tmp_path / "again"
    assert runner.invoke(app, [*args[:5], str(out2), *args[6:]]).exit_code == 0
    assert sorted(p.name for p in out2.iterdir()) == [f.name for f in files]


def test_cli_image_id_and_file_name(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, images = mini
    ds = cocokit.load(path)
    result = runner.invoke(app, ["draw", str(path), "--images", str(images), "-o",
                                 str(tmp_path / "o"), "--image-id", str(int(ds.images.id[2])),
                                 "--image-id", str(int(ds.images.id[5])), "--show", "masks",
                                 "-q"])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == sorted([str(ds.images.file_name[2]), str(ds.images.file_name[5])])
    drawn = np.asarray(Image.open(tmp_path / "o" / str(ds.images.file_name[2])).convert("RGB"))
    expected = np.asarray(draw(ds, 2, images, show="masks"))
    def psnr(a: np.ndarray, b: np.ndarray) -> float:
        return float(10 * np.log10(255**2 / ((a.astype(float) - b) ** 2).mean()))

    # the same picture up to JPEG (quality 92), and closer to it than to the bare image
    plain = np.asarray(draw(ds, 2, images, show=[]))
    assert psnr(drawn, expected) > 25
    assert psnr(drawn, expected) > psnr(drawn, plain) + 3


def test_cli_missing_images_listed_with_exit_1(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, images = mini
    ds = cocokit.load(path)
    folder = tmp_path / "some"
    folder.mkdir()
    keep = str(ds.images.file_name[0])
    (folder / keep).write_bytes((images / keep).read_bytes())
    result = runner.invoke(app, ["draw", str(path), "--images", str(folder), "-o",
                                 str(tmp_path / "o"), "--file-name", keep, "--file-name",
                                 str(ds.images.file_name[1]), "-q"])
    assert result.exit_code == 1
    assert "image file not found" in result.output and "1 of 2 image(s)" in result.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == [keep]


def test_cli_option_errors_exit_2(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, images = mini
    base = ["draw", str(path), "--images", str(images)]
    assert main([*base, "-o", str(tmp_path / "o"), "--sample", "2", "--image-id", "139"]) == 2
    assert main([*base, "-o", str(images)]) == 2  # would overwrite the source images
    assert main([*base, "-o", str(tmp_path / "o"), "--show", "everything"]) == 2
    assert main([*base, "-o", str(tmp_path / "o"), "--image-id", "1"]) == 2  # no such id
    assert main([*base, "-o", str(tmp_path / "no" / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_cli_subprocess(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, images = mini
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "cocokit", "draw", str(path), "--images", str(images), "-o",
         str(tmp_path / "o"), "--file-name", "000000000139.jpg", "--image-format", "png"],
        capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "wrote 1 drawn image" in proc.stderr
    with Image.open(tmp_path / "o" / "000000000139.png") as im:
        assert im.size == (640, 426) and im.mode == "RGB"


# -- predictions ------------------------------------------------------------------------


def test_matching_is_cocoevals(real_data: Path) -> None:
    """match_detections marks the detections and ground truth COCOeval matches, at
    three IoU thresholds, on the cocoapi val2014 subset and its fake bbox results."""
    from pycocotools.cocoeval import COCOeval

    from cocokit.draw import match_detections
    from cocokit.io.results import load_results

    folder = real_data / "cocoapi-val2014-100"
    gt_path = folder / "instances_val2014_100.json"
    res_path = folder / "instances_val2014_fakebbox100_results.json"
    if not res_path.is_file():
        pytest.skip(f"real data not available: {res_path}")
    gt = _coco(gt_path)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes(str(res_path))
        ev = COCOeval(gt, dt, "bbox")
        ev.params.maxDets = [100000]
        ev.params.areaRng = [[0, 1e10]]
        ev.params.areaRngLbl = ["all"]
        ev.evaluate()
    ds = cocokit.load(gt_path)
    res = load_results(res_path)
    compared = 0
    for e in ev.evalImgs:
        if e is None:
            continue
        d_rows = [dt.anns[i] for i in e["dtIds"]]  # by score, as COCOeval sorts them
        g_rows = [gt.anns[i] for i in e["gtIds"]]
        for t_index, t in enumerate(ev.params.iouThrs[[0, 5, 9]]):
            det_ok, gt_ok = match_detections(
                np.array([d["bbox"] for d in d_rows]).reshape(-1, 4),
                np.array([d["category_id"] for d in d_rows]),
                np.array([g["bbox"] for g in g_rows]).reshape(-1, 4),
                np.array([g["category_id"] for g in g_rows]),
                np.array([g["iscrowd"] for g in g_rows]), float(t))
            k = [0, 5, 9][t_index]
            assert det_ok.tolist() == (e["dtMatches"][k] > 0).tolist()
            order = {g: i for i, g in enumerate(e["gtIds"])}  # COCOeval moved ignored last
            want_gt = np.zeros(len(g_rows), bool)
            for gid, m in zip(e["gtIds"], e["gtMatches"][k], strict=True):
                want_gt[order[gid]] = m > 0
            assert gt_ok.tolist() == want_gt.tolist()
            compared += len(d_rows)
    assert compared > 1000 and len(res) > 100 and len(ds.images) == 100


def _one_image() -> cocokit.Dataset:
    b = DatasetBuilder()
    b.add_category("cat", 1)
    b.add_category("dog", 2)
    img = b.add_image("a.png", 200, 120)
    b.add_annotation(img, 1, bbox=[10, 10, 40, 30])   # found
    b.add_annotation(img, 2, bbox=[120, 60, 50, 40])  # missed
    return b.build()


def _preds() -> Results:
    return Results.from_records([
        {"image_id": 1, "category_id": 1, "bbox": [11, 10, 40, 30], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [100, 5, 20, 20], "score": 0.6},  # FP
        {"image_id": 1, "category_id": 2, "bbox": [5, 80, 20, 20], "score": 0.1},  # low
        {"image_id": 2, "category_id": 1, "bbox": [0, 0, 20, 20], "score": 0.9},  # other
    ])


def test_predictions_are_dashed_boxes_in_the_category_color() -> None:
    from cocokit.draw import ERROR_COLOR

    ds = _one_image()
    colors = category_colors(ds)
    plain_gt = np.asarray(draw(ds, 0, show="boxes"))
    drawn = np.asarray(draw(ds, 0, show="boxes", results=_preds(), score=0.3,
                            line_width=1))
    added = (drawn != plain_gt).any(axis=2)
    # the FP box at x 100..119 (no --iou: in its category's color), dashed: gaps on its edge
    top = drawn[5, 100:120]
    assert (top == colors[1]).all(axis=1).sum() >= 4
    assert (top == 0).all(axis=1).sum() >= 4
    # the detection under the score threshold, and the other image's, are not drawn
    assert not added[80:100, 5:25].any()
    assert not (drawn == ERROR_COLOR).all(axis=2).any()


def test_iou_marks_false_positives_and_misses_in_red() -> None:
    from cocokit.draw import ERROR_COLOR

    ds = _one_image()
    drawn = np.asarray(draw(ds, 0, show="boxes", results=_preds(), score=0.3, iou=0.5,
                            line_width=1))
    red = (drawn == ERROR_COLOR).all(axis=2)
    assert red[5, 100:120].any()          # the FP box
    assert red[60, 120:170].all()         # the missed dog: solid, red (2 lines wide)
    assert not red[10, 10:50].any()       # the found cat keeps its color
    labelled = np.asarray(draw(ds, 0, show="boxes,labels", results=_preds(), iou=0.5))
    assert (labelled == ERROR_COLOR).all(axis=2).sum() > red.sum()  # FP and missed tags


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"score": 1.5}, "score"), ({"iou": 0.0}, "iou"), ({"iou": 2.0}, "iou")])
def test_prediction_option_errors(kwargs: dict[str, float], option: str) -> None:
    with pytest.raises(OptionError) as e:
        draw(_one_image(), 0, results=_preds(), **kwargs)  # type: ignore[arg-type]
    assert e.value.option == option


def test_cli_draws_results(mini: tuple[Path, Path], tmp_path: Path) -> None:
    path, images = mini
    ds = cocokit.load(path)
    row = int(np.argmax(ds.annotation_counts))
    a = ds.annotations
    preds = [{"image_id": int(a.image_id[r]), "category_id": int(a.category_id[r]),
              "bbox": a.bbox[r].tolist(), "score": 0.8} for r in ds.annotation_rows(row)[::2]]
    results = tmp_path / "preds.json"
    results.write_text(json.dumps(preds))
    name = str(ds.images.file_name[row])
    base = ["draw", str(path), "-i", str(images), "--file-name", name, "-q"]
    assert main([*base, "-o", str(tmp_path / "plain")]) == 0
    assert main([*base, "-o", str(tmp_path / "o"), "--results", str(results), "--score",
                 "0.5", "--iou", "0.5"]) == 0
    stem = Path(name).stem
    with Image.open(next((tmp_path / "o").glob(stem + ".*"))) as got, \
            Image.open(next((tmp_path / "plain").glob(stem + ".*"))) as plain:
        assert (np.asarray(got) != np.asarray(plain)).any()


@pytest.mark.parametrize("extra", [
    ["--score", "0.3"],                       # without --results
    ["--results", "RESULTS", "--iou", "0"],
    ["--results", "RESULTS", "--score", "2"],
    ["--results", "MISSING"],
])
def test_cli_results_errors_exit_2(mini: tuple[Path, Path], tmp_path: Path,
                                   extra: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    path, images = mini
    results = tmp_path / "preds.json"
    results.write_text("[]")
    extra = [str(results) if e == "RESULTS" else str(tmp_path / "nope.json")
             if e == "MISSING" else e for e in extra]
    rc = main(["draw", str(path), "-i", str(images), "-o", str(tmp_path / "o"),
               "--image-id", "139", *extra])
    assert rc == 2 and not (tmp_path / "o").exists()
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err


@pytest.mark.parametrize("iscrowd", [1, 2])
def test_iou_colours_agree_with_the_error_analysis_around_a_crowd(iscrowd: int) -> None:
    """draw's FP and missed marks are the error analysis' false positives and missed
    objects (one matcher, analysis.coco_matches): two detections inside a crowd are
    neither (COCOeval ignores them), and an ``ignore`` key does not hide a missed object
    (pycocotools sets ignore from iscrowd alone; draw used to leave it unmarked). An
    iscrowd of 2 is a crowd too, as COCOeval reads it (draw and the analysis took it for
    an object: the reader keeps it as read, -2 in the column)."""
    from cocokit.analysis import analyse_results
    from cocokit.draw import ERROR_COLOR

    gt_boxes = [[5, 5, 20, 20], [50, 50, 45, 45], [5, 60, 20, 20]]
    crowd = mask_utils.frPyObjects([[50, 50, 95, 50, 95, 95, 50, 95]], 100, 100)[0]
    ds = cocokit.read_coco({
        "images": [{"id": 1, "file_name": "a.png", "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": gt_boxes[0], "area": 400,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": gt_boxes[1], "area": 2025,
             "iscrowd": iscrowd, "segmentation": {"size": [100, 100],
                                                  "counts": crowd["counts"].decode("ascii")}},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": gt_boxes[2], "area": 400,
             "iscrowd": 0, "ignore": 1},
        ],
        "categories": [{"id": 1, "name": "a"}],
    })
    det_boxes = [[5, 5, 20, 20], [55, 55, 10, 10], [70, 70, 10, 10], [40, 5, 8, 8]]
    res = Results.from_records([{"image_id": 1, "category_id": 1, "bbox": b, "score": s}
                                for b, s in zip(det_boxes, [0.9, 0.8, 0.7, 0.6], strict=True)])
    drawn = np.asarray(draw(ds, 0, show="boxes", results=res, iou=0.5, line_width=1))
    red = (drawn == ERROR_COLOR).all(axis=2)
    missed = [k for k, (x, y, w, _) in enumerate(gt_boxes) if red[y, x: x + w].all()]
    false_pos = [k for k, (x, y, w, _) in enumerate(det_boxes) if red[y, x: x + w].any()]
    assert missed == [2] and false_pos == [3]
    an = analyse_results(ds, res)
    assert an.errors["missed"] == len(missed)
    assert sum(v for k, v in an.errors.items() if k != "missed") == len(false_pos)
    assert an.true_positives == len(det_boxes) - len(false_pos) - 2  # two on the crowd


def test_a_flat_ring_prediction_draws_as_one_ring() -> None:
    """A polygon held as one flat ring (Results made in memory can hold it) draws as the
    same ring in a list (geometry.polygon_rings); an RLE mask draws as its polygon does."""
    ds = cocokit.read_coco({
        "images": [{"id": 1, "file_name": "a.png", "width": 60, "height": 40}],
        "annotations": [], "categories": [{"id": 1, "name": "a"}]})
    ring = [5, 5, 40, 8, 30, 30, 8, 25]
    wrapped = Results.from_records([{"image_id": 1, "category_id": 1, "bbox": [5, 5, 35, 25],
                                     "score": 0.9, "segmentation": [ring]}])
    rle = mask_utils.merge(mask_utils.frPyObjects([ring], 40, 60))
    drawn = [np.asarray(draw(ds, 0, show="masks", results=r)) for r in (
        wrapped,
        wrapped.replace(segmentation=object_array([ring])),
        wrapped.replace(segmentation=object_array([{"size": [40, 60],
                                                    "counts": rle["counts"].decode()}])))]
    assert drawn[0].any()
    assert (drawn[0] == drawn[1]).all() and (drawn[0] == drawn[2]).all()
