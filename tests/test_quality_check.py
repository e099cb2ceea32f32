"""``check``: image files, exact and near-duplicate images, leakage, label checks, the
hash cache and the command line (cocokit.quality.check, cocokit.quality.images)."""

from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from cocokit.cli import main
from cocokit.errors import OutputError
from cocokit.io.coco import read_coco
from cocokit.quality.check import CODES, Thresholds, check_dataset, label_findings
from cocokit.quality.images import HashCache, inspect_image, scan_images

from .conftest import real_path
from .test_cli_usage import run


def _coco(images: list[dict[str, Any]], anns: list[dict[str, Any]] | None = None,
          cats: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"images": images, "annotations": anns or [],
            "categories": cats or [{"id": 1, "name": "thing"}]}


def _write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _jpeg(img: Image.Image, quality: int = 90, exif: Any = None) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality, **({"exif": exif} if exif else {}))
    return buf.getvalue()


@pytest.fixture(scope="module")
def mini_set(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """coco-mini's 79 images plus a renamed copy, a half-size JPEG q60 copy, a 3 %
    cropped copy, and a second split holding one of the originals under a new name."""
    src = real_path("coco-mini", "val2017")
    root = tmp_path_factory.mktemp("mini")
    train = root / "train"
    val = root / "val"
    train.mkdir()
    val.mkdir()
    names = sorted(p.name for p in src.glob("*.jpg"))
    images: list[dict[str, Any]] = []
    for k, name in enumerate(names):
        shutil.copyfile(src / name, train / name)
        w, h = Image.open(src / name).size
        images.append({"id": k + 1, "file_name": name, "width": w, "height": h})
    a, b, c, d = names[3], names[10], names[20], names[30]
    shutil.copyfile(src / a, train / "copy_of_a.jpg")
    with Image.open(src / b) as im:
        w, h = im.size
        small = im.resize((w // 2, h // 2))
        (train / "small_b.jpg").write_bytes(_jpeg(small, 60))
        sw, sh = small.size
    with Image.open(src / c) as im:
        w, h = im.size
        crop = im.crop((int(w * 0.03), int(h * 0.03), int(w * 0.97), int(h * 0.97)))
        (train / "crop_c.jpg").write_bytes(_jpeg(crop, 90))
        cw, ch = crop.size
    n = len(images)
    images += [
        {"id": n + 1, "file_name": "copy_of_a.jpg", "width": images[3]["width"],
         "height": images[3]["height"]},
        {"id": n + 2, "file_name": "small_b.jpg", "width": sw, "height": sh},
        {"id": n + 3, "file_name": "crop_c.jpg", "width": cw, "height": ch},
    ]
    shutil.copyfile(src / d, val / "val_d.jpg")
    w, h = Image.open(src / d).size
    other = Image.new("RGB", (64, 48), (200, 30, 30))
    (val / "other.jpg").write_bytes(_jpeg(other))
    train_json = _write(root / "train.json", _coco(images))
    val_json = _write(root / "val.json", _coco([
        {"id": 1, "file_name": "val_d.jpg", "width": w, "height": h},
        {"id": 2, "file_name": "other.jpg", "width": 64, "height": 48}]))
    return {"root": root, "train": train, "val": val, "train_json": train_json,
            "val_json": val_json, "a": a, "b": b, "c": c, "d": d, "n": len(names)}


def _pairs(report: Any, code: str) -> set[frozenset[str]]:
    return {frozenset(f.files) for f in report.findings if f.code == code}


@pytest.fixture(scope="module")
def mini_report(mini_set: dict[str, Any]) -> Any:
    ds = read_coco(mini_set["train_json"])
    other = read_coco(mini_set["val_json"])
    return check_dataset(ds, mini_set["train"], against=[("val.json", other, mini_set["val"])],
                         cache=False, workers=2)


@pytest.mark.parametrize(("code", "pair"), [
    ("duplicate-image", ("copy_of_a.jpg", "a")),
    ("near-duplicate-image", ("small_b.jpg", "b")),
    ("near-duplicate-image", ("crop_c.jpg", "c")),
    ("leaked-image", ("d", "val_d.jpg")),
])
def test_copies_are_found_with_both_names(mini_set: dict[str, Any], mini_report: Any,
                                          code: str, pair: tuple[str, str]) -> None:
    names = frozenset(mini_set.get(p, p) for p in pair)
    assert names in _pairs(mini_report, code)


def test_no_false_pair_among_distinct_images(mini_report: Any) -> None:
    # exactly the planted pairs: none among the 79 distinct coco-mini photos
    assert len(_pairs(mini_report, "duplicate-image")) == 1
    assert len(_pairs(mini_report, "near-duplicate-image")) == 2
    assert len(_pairs(mini_report, "leaked-image")) == 1
    assert not [f for f in mini_report.findings if f.code in (
        "missing-image", "unreadable-image", "image-size-mismatch")]


def test_the_cache_makes_a_second_run_read_nothing(mini_set: dict[str, Any],
                                                   tmp_path: Path) -> None:
    ds = read_coco(mini_set["train_json"])
    cache = tmp_path / "hashes.npz"
    first = check_dataset(ds, mini_set["train"], cache=cache)
    second = check_dataset(ds, mini_set["train"], cache=cache)
    assert (first.images_hashed, first.images_cached) == (len(ds.images), 0)
    assert (second.images_hashed, second.images_cached) == (0, len(ds.images))
    assert [f.to_dict() for f in first.findings] == [f.to_dict() for f in second.findings]


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    img = tmp_path / "a.jpg"
    img.write_bytes(_jpeg(Image.new("RGB", (40, 30), (10, 20, 30))))
    cache = HashCache(tmp_path / "c.npz")
    assert scan_images(["a.jpg"], tmp_path, cache=cache).hashed == 1
    cache.save()
    again = HashCache(tmp_path / "c.npz")
    assert scan_images(["a.jpg"], tmp_path, cache=again).cached == 1
    img.write_bytes(_jpeg(Image.new("RGB", (41, 30), (10, 20, 30))))  # another size
    scan = scan_images(["a.jpg"], tmp_path, cache=again)
    assert (scan.hashed, int(scan.width[0])) == (1, 41)


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "c.npz").write_bytes(b"not a cache")
    (tmp_path / "a.jpg").write_bytes(_jpeg(Image.new("RGB", (8, 8))))
    assert scan_images(["a.jpg"], tmp_path, cache=HashCache(tmp_path / "c.npz")).hashed == 1


def _bad_set(tmp_path: Path) -> tuple[Path, Path]:
    good = _jpeg(Image.new("RGB", (60, 40), (90, 120, 30)))
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "img" / "text.jpg").write_bytes(b"this is not an image\n")
    (tmp_path / "img" / "wrong.jpg").write_bytes(good)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 60x40, shown 40x60
    (tmp_path / "img" / "turned.jpg").write_bytes(
        _jpeg(Image.new("RGB", (60, 40), (1, 2, 3)), exif=exif))
    doc = _coco([
        {"id": 1, "file_name": "truncated.jpg", "width": 60, "height": 40},
        {"id": 2, "file_name": "text.jpg", "width": 60, "height": 40},
        {"id": 3, "file_name": "gone.jpg", "width": 60, "height": 40},
        {"id": 4, "file_name": "wrong.jpg", "width": 61, "height": 40},
        {"id": 5, "file_name": "turned.jpg", "width": 40, "height": 60},
    ])
    return _write(tmp_path / "bad.json", doc), tmp_path / "img"


@pytest.mark.parametrize(("code", "path", "says"), [
    ("unreadable-image", "images[0]", "truncated.jpg: cannot decode"),
    ("unreadable-image", "images[1]", "text.jpg: not an image"),
    ("missing-image", "images[2]", "gone.jpg: image file not found"),
    ("image-size-mismatch", "images[3]", "wrong.jpg is 60x40"),
])
def test_bad_images_are_named(tmp_path: Path, code: str, path: str, says: str) -> None:
    file, img = _bad_set(tmp_path)
    report = check_dataset(read_coco(file), img, cache=False)
    found = [f for f in report.findings if f.path == path]
    assert [f.code for f in found] == [code]
    assert says in found[0].message


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    file, img = _bad_set(tmp_path)
    report = check_dataset(read_coco(file), img, cache=False)
    assert not [f for f in report.findings if f.path == "images[4]"]


def test_bad_images_on_the_command_line(tmp_path: Path) -> None:
    file, img = _bad_set(tmp_path)
    done = run("check", str(file), "-i", str(img), "--no-cache", "--json")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    out = json.loads(done.stdout)
    assert out["counts"]["unreadable-image"] == 2 and out["counts"]["missing-image"] == 1
    assert {tuple(f["files"]) for f in out["findings"] if f["code"] == "unreadable-image"} == {
        ("truncated.jpg",), ("text.jpg",)}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
@pytest.mark.parametrize("with_images", [True, False])
def test_a_cache_that_cannot_be_written_is_one_line_before_any_work(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        with_images: bool) -> None:
    import cocokit.quality.check

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the images were read")

    monkeypatch.setattr(cocokit.quality.check, "scan_images", no_work)
    file, img = _bad_set(tmp_path)
    images = ["-i", str(img)] if with_images else []
    assert main(["check", str(file), *images, "--cache", "/proc/cocokit.npz", "-q"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: /proc/cocokit.npz: "), err
    with pytest.raises(OutputError, match=r"/proc/cocokit\.npz"):  # the library too
        check_dataset(read_coco(file), img, cache="/proc/cocokit.npz")


@pytest.mark.parametrize(("required", "saved"), [(True, None), (False, False)])
def test_a_named_cache_that_cannot_be_saved_is_an_error(tmp_path: Path, required: bool,
                                                         saved: bool | None) -> None:
    (tmp_path / "a.jpg").write_bytes(_jpeg(Image.new("RGB", (8, 8))))
    (tmp_path / "file").write_bytes(b"not a folder")
    cache = HashCache(tmp_path / "file" / "c.npz", required=required)
    scan_images(["a.jpg"], tmp_path, cache=cache)
    if required:
        with pytest.raises(OutputError, match=r"c\.npz"):
            cache.save()
    else:
        assert cache.save() is saved  # a default cache is only a slower next run


def test_inspect_image_reads_the_size_from_the_header() -> None:
    data = _jpeg(Image.new("RGB", (123, 45), (5, 5, 5)))
    w, h, digest, phash = inspect_image(data, "x.jpg")
    assert (w, h, len(digest)) == (123, 45, 16)
    assert isinstance(phash, int) and 0 <= phash < 2**64


# -- labels -------------------------------------------------------------------------------

_IMG = [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 100}]
_CATS = [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]


def _ann(i: int, bbox: list[float], cat: int = 1, **kw: Any) -> dict[str, Any]:
    return {"id": i, "image_id": 1, "category_id": cat, "bbox": bbox, "area": 1.0,
            "iscrowd": 0, **kw}


@pytest.mark.parametrize(("anns", "code", "path"), [
    ([_ann(1, [10, 10, 20, 20]), _ann(2, [10, 10, 20, 20.2])], "duplicate-annotation",
     "annotations[1]"),
    ([_ann(1, [10, 10, 1.5, 20])], "small-box", "annotations[0].bbox"),
    ([_ann(1, [10, 10, 2.0, 50])], "extreme-aspect-ratio", "annotations[0].bbox"),
    ([_ann(1, [10, 10, 20, 20], iscrowd=1, segmentation=[[10, 10, 30, 10, 30, 30]])],
     "crowd-without-rle", "annotations[0].iscrowd"),
])
def test_label_checks(anns: list[dict[str, Any]], code: str, path: str) -> None:
    ds = read_coco(_coco(_IMG, anns, _CATS))
    found = [f for f in label_findings(ds, Thresholds(min_examples=0)) if f.code == code]
    assert [f.path for f in found] == [path]


@pytest.mark.parametrize("anns", [
    [_ann(1, [10, 10, 20, 20]), _ann(2, [10, 10, 20, 20], cat=2)],  # another category
    [_ann(1, [10, 10, 20, 20]), _ann(2, [11, 11, 20, 20])],  # IoU 0.82
    [_ann(1, [10, 10, 2.0, 40])],  # ratio 20: at the limit
    [_ann(1, [10, 10, 2.0, 2.0])],  # 2 px: at the limit
])
def test_label_checks_leave_the_good_alone(anns: list[dict[str, Any]]) -> None:
    ds = read_coco(_coco(_IMG, anns, _CATS))
    assert label_findings(ds, Thresholds(min_examples=0)) == []


def test_rare_categories_counted_with_unused_ones() -> None:
    ds = read_coco(_coco(_IMG, [_ann(1, [0, 0, 5, 5]), _ann(2, [50, 50, 5, 5])], _CATS))
    found = {f.path: f.value for f in label_findings(ds, Thresholds(min_examples=2))
             if f.code == "rare-category"}
    assert found == {"categories[1]": 0.0}


def test_leak_by_file_name_without_images() -> None:
    a = read_coco(_coco([*_IMG, {"id": 2, "file_name": "b.jpg", "width": 9, "height": 9}]))
    b = read_coco(_coco([{"id": 7, "file_name": "b.jpg", "width": 9, "height": 9}]))
    report = check_dataset(a, against=[("val.json", b, None)])
    leaks = [f for f in report.findings if f.code == "leaked-image"]
    assert [(f.path, f.other) for f in leaks] == [("images[1]", "val.json: images[0]")]


# -- command line -------------------------------------------------------------------------


def test_json_keys_are_stable(mini_set: dict[str, Any], capsys: pytest.CaptureFixture[str],
                              tmp_path: Path) -> None:
    rc = main(["check", str(mini_set["train_json"]), "-i", str(mini_set["train"]),
               "--against", str(mini_set["val_json"]), "--against-images",
               str(mini_set["val"]), "--json", "--cache", str(tmp_path / "c.npz")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1
    assert list(out) == ["source", "images", "against", "thresholds", "ok", "counts",
                         "images_hashed", "images_cached", "findings"]
    assert list(out["counts"]) == list(CODES)
    assert set(out["findings"][0]) == {"code", "path", "message", "files", "other", "value"}


def test_html_report(mini_set: dict[str, Any], tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.html"
    rc = main(["check", str(mini_set["train_json"]), "-i", str(mini_set["train"]), "-q",
               "--html", str(out), "--cache", str(tmp_path / "c.npz")])
    text = out.read_text()
    assert rc == 1
    assert "Quality check" in text and "copy_of_a.jpg" in text and "data:image/png" in text


def test_quiet_prints_only_the_findings(mini_set: dict[str, Any], tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["check", str(mini_set["train_json"]), "-i", str(mini_set["train"]), "-q",
               "--cache", str(tmp_path / "c.npz")])
    out, err = capsys.readouterr()
    assert rc == 1 and err == ""
    assert "images[79]: [duplicate-image] copy_of_a.jpg has the same bytes as" in out


def test_a_clean_dataset_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = _write(tmp_path / "ok.json", _coco(_IMG, [_ann(1, [10, 10, 20, 20])]))
    assert main(["check", str(f), "--min-examples", "0"]) == 0


@pytest.mark.parametrize(("args", "says"), [
    (["--iou", "0"], "--iou: expected a number in (0, 1]"),
    (["--hash-distance", "40"], "--hash-distance: expected a number of bits in 0..32"),
    (["-i", "{tmp}/nowhere"], "-i/--images: expected an existing folder of images"),
    (["--against-images", "{tmp}"], "--against-images: expected"),
    (["--cache", "{tmp}/c.npz", "--no-cache", "-i", "{tmp}"], "--cache or --no-cache"),
    (["--workers", "0"], "--workers: expected an integer >= 1"),
])
def test_usage_mistakes(tmp_path: Path, args: list[str], says: str) -> None:
    f = _write(tmp_path / "ok.json", _coco(_IMG))
    done = run("check", str(f), *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0]
    assert not done.stdout


def test_a_missing_annotation_file(tmp_path: Path) -> None:
    done = run("check", str(tmp_path / "none.json"))
    assert done.returncode == 2 and done.stderr.startswith("error:")
    assert "none.json" in done.stderr and "Traceback" not in done.stderr


def test_scan_runs_in_the_pool_and_here_alike(mini_set: dict[str, Any]) -> None:
    names = [p.name for p in sorted(mini_set["train"].glob("*.jpg"))][:40]
    one = scan_images(names, mini_set["train"], workers=1)
    two = scan_images(names, mini_set["train"], workers=2)
    assert np.array_equal(one.phash, two.phash) and np.array_equal(one.digest, two.digest)


@pytest.mark.parametrize(("command", "flags"), [
    ("check", ["-i", "--images", "--against", "--against-images", "--json", "--html", "--iou",
               "--min-size", "--max-aspect", "--min-examples", "--hash-distance", "--cache",
               "--no-cache", "--workers", "--engine", "--address", "-q", "Example:"]),
    ("repair", ["-o", "--output", "--fix", "--report", "-q", "Example:"]),
    ("diff", ["--json", "--iou", "-q", "Example:"]),
])
def test_the_quality_commands_speak_the_vocabulary(command: str, flags: list[str]) -> None:
    done = run(command, "--help", COLUMNS="200")
    assert done.returncode == 0
    missing = [f for f in flags if f not in done.stdout]
    assert not missing, f"{command} --help lacks {missing}"
