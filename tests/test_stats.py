"""Statistics (cocokit.stats) and the ``stats`` command, checked against pycocotools."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from typer.testing import CliRunner

import cocokit
from cocokit import DatasetBuilder
from cocokit.cli import app, main
from cocokit.stats import AREA_RANGES, DatasetStats, compute_stats

REPO = Path(__file__).resolve().parents[1]

# files with their images' annotations, all official COCO records
COCOEVAL_FILES = [
    ("coco-mini", "annotations", "instances_val2017.json"),
    ("coco-mini", "annotations", "person_keypoints_val2017.json"),
    ("tiny-coco-images", "annotations", "instances_train2017.json"),
    ("tiny-coco-images", "annotations", "instances_val2017.json"),
    ("cocoapi-val2014-100", "instances_val2014_100.json"),
]
# every real COCO file, for the counts pycocotools' index gives
INDEX_FILES = [
    *COCOEVAL_FILES,
    ("coco-mini", "annotations", "instances_train2017.json"),
    ("lvis-val100", "lvis_val_100.json"),
    ("taco", "annotations.json"),
    ("sahi-testdata", "coco_utils", "visdrone2019-det-train-first50image.json"),
    ("sahi-testdata", "coco_evaluate", "dataset.json"),
]


def _quiet_coco(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def _ids(parts: tuple[str, ...]) -> str:
    return "/".join(parts[:1] + parts[-1:])


@pytest.mark.parametrize("parts", INDEX_FILES, ids=_ids)
def test_counts_equal_pycocotools_index(real_data: Path, parts: tuple[str, ...]) -> None:
    path = real_data.joinpath(*parts)
    coco = _quiet_coco(path)
    s = cocokit.compute_stats(cocokit.load(path))

    assert s.images == len(coco.imgs)
    records = coco.dataset["annotations"]  # coco.anns drops repeated ids (TACO has two)
    assert s.annotations == len(records)
    assert s.categories == len(coco.cats)
    per_image = [len(coco.imgToAnns.get(i, [])) for i in coco.imgs]
    assert s.negatives == sum(1 for n in per_image if n == 0)
    assert s.annotations_per_image.min == min(per_image)
    assert s.annotations_per_image.max == max(per_image)
    assert s.annotations_per_image.mean == pytest.approx(sum(per_image) / len(per_image))
    assert s.annotations_per_image.median == statistics.median(per_image)
    widths = [im["width"] for im in coco.imgs.values()]
    heights = [im["height"] for im in coco.imgs.values()]
    assert (s.image_width.min, s.image_width.max) == (min(widths), max(widths))
    assert s.image_height.median == statistics.median(heights)
    sizes = Counter(zip(widths, heights, strict=True))
    assert s.distinct_image_sizes == len(sizes)
    assert s.image_sizes[0].images == sizes.most_common(1)[0][1]
    assert {(z.width, z.height): z.images for z in s.image_sizes}.items() <= sizes.items()
    assert s.crowd == sum(1 for a in records if a.get("iscrowd", 0))

    by_id = {c.id: c for c in s.per_category}
    assert list(by_id) == [c["id"] for c in coco.dataset["categories"]]
    for cid in coco.cats:
        c = by_id[cid]
        anns = [a for a in records if a["category_id"] == cid]
        assert c.name == coco.cats[cid]["name"]
        assert c.annotations == len(anns)
        assert c.images == len(coco.getImgIds(catIds=[cid]))
        assert c.crowd == sum(1 for a in anns if a.get("iscrowd", 0))
        if anns:
            areas = [a["area"] for a in anns]
            assert c.area_min == min(areas)
            assert c.area_max == max(areas)
            assert c.area_median == pytest.approx(statistics.median(areas), rel=1e-12)
        else:
            assert c.area_min is c.area_median is c.area_max is None
    assert s.categories_used == len({a["category_id"] for a in records} & set(coco.cats))


def _cocoeval_counts(path: Path) -> tuple[dict[str, int], dict[tuple[int, str], int]]:
    """Ground truths COCOeval evaluates (gtIgnore == 0) per area range: total, per category."""
    gt = _quiet_coco(path)
    first = next(iter(gt.imgs))
    with contextlib.redirect_stdout(io.StringIO()):
        dt = gt.loadRes([{"image_id": first, "category_id": next(iter(gt.cats)),
                          "bbox": [0, 0, 1, 1], "score": 1.0}])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
    labels = dict(zip(map(tuple, ev.params.areaRng), ev.params.areaRngLbl, strict=True))
    total: dict[str, int] = defaultdict(int)
    per_cat: dict[tuple[int, str], int] = defaultdict(int)
    for e in ev.evalImgs:
        if e is None:
            continue
        label = labels[tuple(e["aRng"])]
        n = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
        total[label] += n
        per_cat[(e["category_id"], label)] += n
    return total, per_cat


@pytest.mark.parametrize("parts", COCOEVAL_FILES, ids=_ids)
def test_size_buckets_equal_what_cocoeval_evaluates(real_data: Path,
                                                    parts: tuple[str, ...]) -> None:
    path = real_data.joinpath(*parts)
    total, per_cat = _cocoeval_counts(path)
    s = cocokit.compute_stats(cocokit.load(path))
    assert (s.small, s.medium, s.large) == (total["small"], total["medium"], total["large"])
    assert s.small + s.medium + s.large > 0
    for c in s.per_category:
        assert (c.small, c.medium, c.large) == (
            per_cat[(c.id, "small")], per_cat[(c.id, "medium")], per_cat[(c.id, "large")]
        ), c.name


def _boundary_dataset() -> cocokit.Dataset:
    b = DatasetBuilder()
    a = b.add_category("a")
    c = b.add_category("c")
    img = b.add_image("x.jpg", 400, 300)
    b.add_image("empty.jpg", 640, 480)
    # areas exactly on COCOeval's bounds, and one over 1e5**2
    for area in (0.0, 1024.0, 1024.5, 9216.0, 9215.0, 2e10):
        b.add_annotation(img, a, bbox=[0, 0, 10, 10], area=area)
    b.add_annotation(img, c, bbox=[0, 0, 10, 10], area=50.0, iscrowd=1)
    # no area field: a 20x10 polygon (200 pixels, as pycocotools counts) and a 3x5 box
    b.add_annotation(img, c, polygon=[10, 10, 30, 10, 30, 20, 10, 20])
    b.add_annotation(img, c, bbox=[5, 5, 3, 5])
    return b.build()


def test_boundaries_and_crowds_follow_cocoeval() -> None:
    ds = _boundary_dataset()
    s = cocokit.compute_stats(ds)
    a, c = s.category("a"), s.category("c")
    # 0 and 1024 are small; 1024, 1024.5, 9215, 9216 medium; 9216 large; 2e10 nothing
    assert (a.small, a.medium, a.large) == (2, 4, 1)
    assert (c.small, c.medium, c.large) == (2, 0, 0)  # the crowd is not counted
    assert (c.crowd, c.annotations, c.images) == (1, 3, 1)
    assert s.areas_computed == 2
    assert (c.area_min, c.area_median, c.area_max) == (15.0, 50.0, 200.0)
    assert s.negatives == 1
    # and pycocotools agrees on the same document
    doc = cocokit.to_dict(ds)
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = doc
        gt.createIndex()
        dt = gt.loadRes([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
    counted: Counter[tuple[int, float, float]] = Counter()
    for e in ev.evalImgs:
        if e is not None:
            key = (e["category_id"], *e["aRng"])
            counted[key] += int((np.asarray(e["gtIgnore"]) == 0).sum())
    for cat in (a, c):
        assert [cat.small, cat.medium, cat.large] == [
            counted[(cat.id, lo, hi)] for lo, hi in AREA_RANGES.values()
        ]


def test_dangling_and_undeclared_annotations() -> None:
    b = DatasetBuilder()
    cat = b.add_category("a")
    img = b.add_image("x.jpg", 100, 100)
    b.add_annotation(img, cat, bbox=[0, 0, 5, 5], area=25.0)
    b.add_annotation(99, cat, bbox=[0, 0, 5, 5], area=25.0)  # no image 99
    b.add_annotation(img, 7, bbox=[0, 0, 20, 20], area=400.0)  # category 7 undeclared
    b.add_annotation(img, 7, bbox=[0, 0, 50, 50], area=2500.0)
    s = cocokit.compute_stats(b.build())
    assert (s.dangling, s.undeclared, s.annotations) == (1, 2, 4)
    a = s.category("a")
    assert (a.annotations, a.images, a.small) == (2, 1, 1)  # the dangling one is not evaluated
    extra = s.category(7)
    assert (extra.declared, extra.name, extra.annotations, extra.images) == (False, None, 2, 1)
    assert (extra.area_min, extra.area_max, extra.small, extra.medium) == (400.0, 2500.0, 0, 0)
    assert (s.small, s.medium, s.large) == (1, 0, 0)
    assert s.categories == 1 and s.categories_used == 1


def test_empty_dataset() -> None:
    s = cocokit.compute_stats(DatasetBuilder().build())
    assert (s.images, s.annotations, s.negatives, s.small) == (0, 0, 0, 0)
    assert s.annotations_per_image.min is None and s.image_sizes == ()
    assert json.loads(json.dumps(s.to_dict()))["area"]["count"] == 0


def _naive(ds: cocokit.Dataset) -> dict[int, dict[str, Any]]:
    """Per-category statistics by a plain loop over records, for comparison."""
    image_ids = {int(i) for i in ds.images.id}
    out: dict[int, dict[str, Any]] = {}
    for rec in ds.annotations:
        d = out.setdefault(rec["category_id"], {"anns": 0, "imgs": set(), "areas": [], "crowd": 0,
                                                "sizes": [0, 0, 0]})
        d["anns"] += 1
        d["areas"].append(rec["area"])
        crowd = rec.get("iscrowd", 0) > 0
        d["crowd"] += crowd
        if rec["image_id"] in image_ids:
            d["imgs"].add(rec["image_id"])
            if not crowd and rec["category_id"] in ds.categories:
                for k, (lo, hi) in enumerate(AREA_RANGES.values()):
                    d["sizes"][k] += lo <= rec["area"] <= hi
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_vectorized_equals_naive_loop(data: st.DataObject) -> None:
    declared = data.draw(st.lists(st.integers(0, 50), min_size=1, max_size=6, unique=True))
    n_imgs = data.draw(st.integers(0, 6))
    b = DatasetBuilder()
    for k, cid in enumerate(declared):
        b.add_category(f"c{k}", id=cid)
    for _ in range(n_imgs):
        b.add_image("i.jpg", data.draw(st.integers(1, 5)) * 100, data.draw(st.integers(1, 5)) * 100)
    cat_ids = [*declared, 77]  # 77: an undeclared id
    areas = st.sampled_from([0.0, 1.0, 1024.0, 5000.0, 9216.0, 1e4, 3e5]) | st.floats(0, 1e6)
    for _ in range(data.draw(st.integers(0, 30))):
        b.add_annotation(data.draw(st.integers(1, n_imgs + 1)), data.draw(st.sampled_from(cat_ids)),
                         bbox=[0, 0, 1, 1], area=data.draw(areas),
                         iscrowd=data.draw(st.sampled_from([0, 0, 1])))
    ds = b.build()
    s = compute_stats(ds)
    expected = _naive(ds)
    for c in s.per_category:
        e = expected.get(c.id)
        if e is None:
            assert c.annotations == 0 and c.declared
            continue
        assert (c.annotations, c.images, c.crowd) == (e["anns"], len(e["imgs"]), e["crowd"])
        assert [c.small, c.medium, c.large] == e["sizes"]
        assert c.area_min == min(e["areas"]) and c.area_max == max(e["areas"])
        assert c.area_median == pytest.approx(statistics.median(e["areas"]))
    assert sum(c.annotations for c in s.per_category) == len(ds.annotations)


def test_to_dict_is_plain_json_and_input_untouched(real_data: Path) -> None:
    path = real_data / "tiny-coco-images" / "annotations" / "instances_train2017.json"
    ds = cocokit.load(path)
    before = cocokit.to_json(ds, image_ids="keep", annotation_ids="keep")
    s = cocokit.compute_stats(ds)
    assert isinstance(s, DatasetStats)
    d = s.to_dict()
    assert msgspec.json.decode(msgspec.json.encode(d)) == d
    assert json.loads(json.dumps(d, allow_nan=False)) == d
    assert d["per_category"][0]["name"] == "person"
    assert d["image_sizes"][0] == {"width": 640, "height": 480, "images": 8}
    assert cocokit.to_json(ds, image_ids="keep", annotation_ids="keep") == before


# -- the command ---------------------------------------------------------------------

runner = CliRunner()


def test_cli_json_equals_library(real_data: Path) -> None:
    path = real_data / "coco-mini" / "annotations" / "instances_val2017.json"
    result = runner.invoke(app, ["stats", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == cocokit.compute_stats(cocokit.load(path)).to_dict()


def test_cli_table_names_categories_and_counts(real_data: Path) -> None:
    path = real_data / "tiny-coco-images" / "annotations" / "instances_val2017.json"
    result = runner.invoke(app, ["stats", str(path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    s = cocokit.compute_stats(cocokit.load(path))
    out = result.stdout
    assert "small / medium / large" in out and f"{s.small} / {s.medium} / {s.large}" in out
    person = s.category("person")
    line = next(ln for ln in out.splitlines() if " person " in ln)
    assert line.split()[:5] == ["1", "person", str(person.images), str(person.annotations),
                                str(person.crowd)]


def test_cli_errors_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [}')
    assert main(["stats", str(bad)]) == 2
    assert main(["stats", str(tmp_path / "missing.json")]) == 2
    ok = tmp_path / "ok.json"
    cocokit.save(_boundary_dataset(), ok)
    assert main(["stats", str(ok), "--html", str(tmp_path / "no" / "r.html")]) == 2


TINY = REPO / "tests" / "data" / "tiny_coco_val2017.json"


@pytest.mark.parametrize("name", ["a.json", "sub/a.json.gz"])
@pytest.mark.parametrize("options", [["--json"], []], ids=["json", "table"])
def test_cli_reads_a_url(memory_fs: tuple[Any, str], name: str, options: list[str]) -> None:
    """FILE is a path or a URL, as for info and validate: the same statistics."""
    fs, root = memory_fs
    data = TINY.read_bytes()
    fs.pipe(f"{root}/{name}", gzip.compress(data) if name.endswith(".gz") else data)
    url = f"memory://{root}/{name}"
    remote = runner.invoke(app, ["stats", url, *options], env={"COLUMNS": "200"})
    local = runner.invoke(app, ["stats", str(TINY), *options], env={"COLUMNS": "200"})
    assert remote.exit_code == 0, remote.output
    if options:
        got, expected = json.loads(remote.stdout), json.loads(local.stdout)
        assert got.pop("source") == url and expected.pop("source") == str(TINY)
        assert got == expected
    else:
        assert remote.stdout.replace(url, "FILE") == local.stdout.replace(str(TINY), "FILE")


@pytest.mark.parametrize(("argument", "message"), [
    ("missing.json", "missing.json: no such file"),
    ("./missing.json", "missing.json: no such file"),  # a local path, named as a path
    ("missing.json.gz", "missing.json.gz: no such file"),
    ("{url}/missing.json", "{url}/missing.json: no such file"),
])
def test_cli_missing_file_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      memory_fs: tuple[Any, str],
                                      capsys: pytest.CaptureFixture[str], argument: str,
                                      message: str) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"memory://{memory_fs[1]}"
    assert main(["stats", argument.format(url=url)]) == 2
    assert capsys.readouterr().err.splitlines() == [f"error: {message.format(url=url)}"]


def test_cli_subprocess_json(real_data: Path) -> None:
    path = real_data / "coco-mini" / "annotations" / "person_keypoints_val2017.json"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run([sys.executable, "-m", "cocokit", "stats", str(path), "--json"],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert (d["images"], d["negatives"], d["annotations"]) == (79, 40, 118)
    assert d["per_category"][0]["name"] == "person"


# -- one reading of crowd and of a missing area, shared with the export ------------------

_MINI_FILE = ("coco-mini", "annotations", "instances_val2017.json")



def test_every_command_reads_crowd_as_cocoeval_does(tmp_path: Path) -> None:
    """iscrowd 2 (kept as read; validate calls it invalid) is a crowd for COCOeval, and so
    for stats, info's summary, filter --crowd and the YOLO export, as for analysis."""
    from cocokit.io.yolo import write_yolo
    from cocokit.summary import summarize
    from cocokit.transforms.filter import filter_dataset

    from .conftest import real_path

    doc = json.loads(real_path(*_MINI_FILE).read_text())
    for a in doc["annotations"][:4]:
        a["iscrowd"] = 2
    real_crowds = sum(a["iscrowd"] == 1 for a in doc["annotations"])
    ds = cocokit.load(json.dumps(doc).encode())
    expected = real_crowds + 4
    assert int(ds.annotations.crowd.sum()) == expected
    assert compute_stats(ds).crowd == expected
    assert summarize(ds).crowd_annotations == expected
    kept, _ = filter_dataset(ds, crowd="drop")
    assert len(kept.annotations) == len(ds.annotations) - expected
    only, _ = filter_dataset(ds, crowd="only")
    assert len(only.annotations) == expected
    fine = cocokit.load(json.dumps({**doc, "annotations": [
        {**a, "iscrowd": int(a["iscrowd"] != 0)} for a in doc["annotations"]]}).encode())
    summary = write_yolo({"val": fine}, tmp_path / "y", images="none")
    assert summary.splits["val"].skipped_crowd == expected



def test_a_missing_area_is_filled_as_the_export_writes_it(tmp_path: Path) -> None:
    """stats and filter measure an annotation without ``area`` as the export fills it (a
    polygon's shoelace area, what validate checks), not by rasterizing it."""
    from cocokit.transforms.filter import filter_dataset

    from .conftest import real_path

    doc = json.loads(real_path(*_MINI_FILE).read_text())
    polys = [a for a in doc["annotations"]
             if isinstance(a["segmentation"], list) and a["area"] < 200][:5]
    assert len(polys) == 5
    for a in polys:
        del a["area"]
    ds = cocokit.load(json.dumps(doc).encode())
    out = tmp_path / "out.json"
    cocokit.save(ds, out)
    written = {a["id"]: a["area"] for a in json.loads(out.read_text())["annotations"]}
    from cocokit.stats import annotation_areas

    areas, computed = annotation_areas(ds)
    assert computed == 5
    rows = {int(i): r for r, i in enumerate(ds.annotations.id.tolist())}
    for a in polys:
        assert areas[rows[a["id"]]] == pytest.approx(written[a["id"]], rel=1e-12)
        lo = written[a["id"]]
        kept, _ = filter_dataset(ds, area=(lo, lo))
        assert a["id"] in kept.annotations.id.tolist()
