"""Images with their annotations from a stream: ``CocoStream.datasets`` and ``items``.

The chunks and items must be what the in-memory path gives (``cocokit.load`` and
iterating the dataset) on every real file and on hand-made files with the annotations
before the images, shuffled across images, orphans, duplicate image ids, images without
annotations and unknown keys; whether the annotations are spilled (out of order) or cut
straight from the runs (already grouped); with temporary files removed however the
iteration ends; and in bounded memory on a file several times larger than the cap.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

import cocokit
from cocokit import InputError, OptionError
from cocokit.dataset import Annotations, Dataset, Images
from cocokit.io.stream import CocoStream, open_stream

from .conftest import REAL
from .test_io_coco import REAL_FILES, needs_real
from .test_stream import CAP_MB, make_big_file, run_capped

# -- helpers -------------------------------------------------------------------------


def _value(v: Any) -> Any:
    return bytes(v) if isinstance(v, msgspec.Raw) else v


def assert_tables_equal(a: Images | Annotations, b: Images | Annotations) -> None:
    assert len(a) == len(b)
    for name, col in a.columns().items():
        other = getattr(b, name)
        if col.dtype == object:
            assert [_value(v) for v in col] == [_value(v) for v in other], name
        else:
            np.testing.assert_array_equal(col, other, err_msg=name)


def items_of(source: Any, **options: Any) -> list[tuple[int, dict, list[dict]]]:
    it = source.items(**options) if isinstance(source, CocoStream) else iter(source)
    return [(x.index, x.image, x.annotations) for x in it]


def assert_chunks_match(path: Path, stream: CocoStream, chunks: list[Dataset], n: int) -> None:
    """Chunk k: images rows [k*n, (k+1)*n) of the loaded dataset and exactly their
    annotations in file order; the same categories, extras and key order."""
    ds = cocokit.load(path)
    assert [len(c) for c in chunks] == [
        min(n, len(ds.images) - s) for s in range(0, len(ds.images), n)
    ]
    assert_tables_equal(Images.concat([c.images for c in chunks]), ds.images)
    idx = ds.image_index
    chunk_of = np.where(idx >= 0, idx // n, -1)
    rows = np.flatnonzero(idx >= 0)
    rows = rows[np.argsort(chunk_of[rows], kind="stable")]  # by chunk, then file order
    got = Annotations.concat([c.annotations for c in chunks])
    assert_tables_equal(got, ds.annotations.take(rows))
    counts = np.bincount(chunk_of[rows], minlength=len(chunks))
    assert [len(c.annotations) for c in chunks] == counts.tolist()
    for c in chunks:
        assert c.categories.records == ds.categories.records
        assert c.extra == ds.extra
        assert c.key_order == ds.key_order
        assert c.source == str(path)
    assert sum(len(c.annotations) for c in chunks) == int(np.count_nonzero(idx >= 0))
    assert stream.orphan_annotations == int(np.count_nonzero(idx < 0))


@pytest.fixture
def spills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the runs spilled to disk (an empty list: the annotations were cut in place)."""
    calls: list[int] = []
    original = CocoStream._spill

    def counting(self: CocoStream, text: bytes, chunks: np.ndarray, where: Path) -> None:
        calls.append(len(chunks))
        original(self, text, chunks, where)

    monkeypatch.setattr(CocoStream, "_spill", counting)
    return calls


# -- a hand-made file with every case ------------------------------------------------


def handmade(order: str = "shuffled", seed: int = 0) -> dict[str, Any]:
    """Annotations before images, orphans, a duplicate image id, empty images, extras.

    order: "shuffled" (annotations in random order), "grouped" (by image row, orphans
    anywhere), or "late" (grouped, but the last annotations out of order).
    """
    rng = random.Random(seed)
    images: list[dict[str, Any]] = []
    for i in range(23):
        im: dict[str, Any] = {
            "id": 100 + i,
            "file_name": f"img_{i:03d}.jpg",
            "width": 640 + i,
            "height": 480 - i,
        }
        if i % 3 == 0:
            im["license"] = i % 4
        if i % 5 == 1:
            im["coco_url"] = f"http://example.org/{i}.jpg"
            im["meta"] = {"tags": ["a", "b"], "nested": {"x": [1, 2.5, None]}}
        images.append(im)
    images[15]["id"] = images[4]["id"]  # a duplicate: its annotations go to row 4
    anns: list[dict[str, Any]] = []
    empty = {2, 9, 22}
    for row, im in enumerate(images):
        if row in empty:
            continue
        for _ in range(rng.randint(1, 5)):
            a: dict[str, Any] = {
                "id": 0,
                "image_id": im["id"],
                "category_id": rng.choice([1, 2, 3, 7]),  # 7: no such category
            }
            kind = rng.random()
            if kind < 0.5:
                a["segmentation"] = [[1.5, 2.25, 10.0, 2.0, 10.0, 12.125, 1, 12]]
                a["area"] = rng.choice([81.0, 81, 80.4375])
                a["bbox"] = [1.5, 2.0, 8.5, 10.125]
                a["iscrowd"] = 0
            elif kind < 0.7:
                a["segmentation"] = {"size": [480, 640], "counts": [10, 5, 20, 3]}
                a["iscrowd"] = 1
                a["bbox"] = [0, 0, 4, 4]
            elif kind < 0.85:
                a["bbox"] = [3, 4, 5, 6]
                a["keypoints"] = [10, 20, 2, 0, 0, 0]
                a["num_keypoints"] = 1
            else:
                a["bbox"] = [3, 4, 5, 6]
            if rng.random() < 0.3:
                a["score"] = rng.random()
            if rng.random() < 0.2:
                a["attributes"] = {"occluded": True, "notes": "a \\ \" } , { ] ["}
            anns.append(a)
    for k in range(4):  # orphans
        anns.append({"id": 0, "image_id": 9000 + k, "category_id": 1, "bbox": [0, 0, 1, 1]})
    row_of = {}
    for row, im in enumerate(images):
        row_of.setdefault(im["id"], row)
    if order == "shuffled":
        rng.shuffle(anns)
    else:
        anns.sort(key=lambda a: row_of.get(a["image_id"], rng.randrange(len(images))))
        if order == "late":
            tail = anns[-12:]
            rng.shuffle(tail)
            anns[-12:] = [*tail[6:], *tail[:6]]
    for k, a in enumerate(anns):
        a["id"] = 5000 + k
    cats = [{"id": c, "name": f"c{c}", "supercategory": "s"} for c in (1, 2, 3)]
    return {
        "info": {"description": "hand-made"},
        "annotations": anns,
        "custom": [1, {"two": 2}],
        "images": images,
        "categories": cats,
    }


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


@pytest.mark.parametrize("order", ["shuffled", "grouped", "late"])
@pytest.mark.parametrize("chunk_bytes", [64, 700, 1 << 20])
@pytest.mark.parametrize("n", [1, 3, 7, 1000])
def test_handmade_chunks_and_items_equal_memory(
    order: str, chunk_bytes: int, n: int, tmp_path: Path, spills: list[int]
) -> None:
    src = write(handmade(order), tmp_path / "in.json")
    stream = open_stream(src, chunk_bytes=chunk_bytes)
    assert stream.key_order[:2] == ["info", "annotations"]  # annotations before images
    chunks = list(stream.datasets(n))
    assert_chunks_match(src, stream, chunks, n)
    assert stream.orphan_annotations == 4
    # spilled only when the annotations are out of chunk order
    if order == "shuffled" and n < 23:
        assert spills
    if order == "grouped" or n >= 23:  # grouped, or all in one chunk
        assert not spills
    spills.clear()
    expected = items_of(cocokit.load(src))
    assert items_of(stream, images_per_chunk=n) == expected
    assert [(x.index, x.image, x.annotations) for x in stream] == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]  # no spill left


def test_late_disorder_respills_the_runs_read_before(tmp_path: Path, spills: list[int]) -> None:
    src = write(handmade("late"), tmp_path / "in.json")
    stream = open_stream(src, chunk_bytes=64)
    runs = len(stream.runs["annotations"])
    assert runs > 20
    chunks = list(stream.datasets(3))
    assert len(spills) == runs  # every run spilled, the early ones on a second read
    assert_chunks_match(src, stream, chunks, 3)


def test_grouped_annotations_are_cut_in_place(tmp_path: Path, spills: list[int]) -> None:
    src = write(handmade("grouped"), tmp_path / "in.json")
    for chunk_bytes in (64, 1 << 20):
        stream = open_stream(src, chunk_bytes=chunk_bytes)
        for n in (1, 2, 5):
            assert_chunks_match(src, stream, list(stream.datasets(n)), n)
    assert spills == []


def test_duplicate_image_id_takes_the_annotations_on_its_first_row(tmp_path: Path) -> None:
    src = write(handmade("shuffled"), tmp_path / "in.json")
    items = list(open_stream(src, chunk_bytes=100).items(2))
    assert items[4].image["id"] == items[15].image["id"]
    assert items[4].annotations and items[15].annotations == []
    assert [x.annotations for x in (items[2], items[9], items[22])] == [[], [], []]
    seen = {a["image_id"] for x in items for a in x.annotations}
    assert not seen & {9000, 9001, 9002, 9003}  # orphans belong to no image


def test_spill_removed_when_the_consumer_stops_early(tmp_path: Path) -> None:
    src = write(handmade("shuffled"), tmp_path / "in.json")
    stream = open_stream(src, chunk_bytes=200)
    gen = stream.datasets(2)
    first = next(gen)
    assert len(first) == 2
    spill_dirs = [p for p in tmp_path.iterdir() if p.name.startswith(".cocokit-spill-")]
    assert len(spill_dirs) == 1 and list(spill_dirs[0].iterdir())  # beside the input
    gen.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.json"]
    # items: closing the item generator closes the chunks and their spill too
    where = tmp_path / "spill"
    where.mkdir()
    items = stream.items(2, tmp_dir=where)
    assert next(items).index == 0
    assert len(list(where.iterdir())) == 1
    items.close()
    assert list(where.iterdir()) == []
    # and breaking out of a for loop (the generator is dropped)
    for item in open_stream(src, chunk_bytes=200).items(3, tmp_dir=where):
        if item.index == 4:
            break
    assert list(where.iterdir()) == []


def test_spill_removed_on_a_decoding_error_named_as_in_the_file(tmp_path: Path) -> None:
    doc = handmade("shuffled")
    bad = 37
    doc["annotations"][bad]["category_id"] = "seven"
    src = write(doc, tmp_path / "in.json")
    with pytest.raises(InputError) as mem:
        cocokit.load(src)
    where = tmp_path / "spill"
    where.mkdir()
    with pytest.raises(InputError) as streamed:
        for _ in open_stream(src, chunk_bytes=300).datasets(2, tmp_dir=where):
            pass
    assert f"annotations[{bad}].category_id" in str(streamed.value)
    assert str(streamed.value) == str(mem.value)
    assert list(where.iterdir()) == []


def test_missing_tmp_dir_is_an_error(tmp_path: Path) -> None:
    src = write(handmade("shuffled"), tmp_path / "in.json")
    stream = open_stream(src, chunk_bytes=200)
    with pytest.raises(OSError):
        list(stream.datasets(2, tmp_dir=tmp_path / "missing"))


def test_images_per_chunk_must_be_positive(tmp_path: Path) -> None:
    src = write(handmade("shuffled"), tmp_path / "in.json")
    stream = open_stream(src)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(OptionError, match="images_per_chunk"):
            stream.datasets(bad)  # type: ignore[arg-type]
    # the default: about chunk_bytes of annotation text a chunk
    assert stream.default_images_per_chunk() == 23
    small = open_stream(src, chunk_bytes=1000)
    assert 1 <= small.default_images_per_chunk() < 23
    assert_chunks_match(src, small, list(small.datasets()), small.default_images_per_chunk())


@pytest.mark.parametrize(
    "text",
    [
        b"{}",
        b'{"images": [], "annotations": [{"id": 1, "image_id": 1, "category_id": 1}]}',
        b'{"annotations": [], "images": [{"id": 1, "file_name": "a", "width": 1, "height": 1}]}',
        b'{"images": [{"id": 1, "file_name": "a", "width": 1, "height": 1}]}',
    ],
)
def test_small_documents(text: bytes, tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_bytes(text)
    stream = open_stream(src, chunk_bytes=16)
    assert items_of(stream, images_per_chunk=2) == items_of(cocokit.load(src))
    chunks = list(stream.datasets(2))
    assert len(chunks) == (1 if b"file_name" in text else 0)
    assert stream.orphan_annotations == (1 if b'"image_id"' in text else 0)


# -- every real file -------------------------------------------------------------------


@needs_real
@pytest.mark.parametrize("chunk_bytes", [2048, 1 << 25])
@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: str(p.relative_to(REAL)))
def test_real_files_chunks_and_items_equal_memory(
    path: Path, chunk_bytes: int, tmp_path: Path
) -> None:
    expected = items_of(cocokit.load(path))
    stream = open_stream(path, chunk_bytes=chunk_bytes)
    for n in (1, 3, 7, None):
        if n == 1 and stream.num_images > 500:
            continue  # as many chunks as images: slow, and small files test it
        assert items_of(stream, images_per_chunk=n, tmp_dir=tmp_path) == expected
        size = n or stream.default_images_per_chunk()
        assert_chunks_match(path, stream, list(stream.datasets(n, tmp_dir=tmp_path)), size)
    assert list(tmp_path.iterdir()) == []


@needs_real
def test_real_shuffled_annotations_before_images(tmp_path: Path, spills: list[int]) -> None:
    path = max(REAL_FILES, key=lambda p: p.stat().st_size)
    doc = msgspec.json.decode(path.read_bytes())
    random.Random(1).shuffle(doc["annotations"])
    odd = {"annotations": doc.pop("annotations"), **doc}
    src = tmp_path / "odd.json"
    src.write_bytes(msgspec.json.encode(odd))
    stream = open_stream(src, chunk_bytes=4096)
    assert items_of(stream, images_per_chunk=5) == items_of(cocokit.load(src))
    assert spills
    assert_chunks_match(src, stream, list(stream.datasets(5)), 5)


# -- bounded memory: a file several times larger than the cap --------------------------


def test_datasets_under_a_memory_cap(tmp_path_factory: pytest.TempPathFactory) -> None:
    folder = tmp_path_factory.mktemp("bigshuffled")
    path = folder / "big.json"
    make_big_file(path, n_images=100_000, per_image=20, scattered=True)
    assert path.stat().st_size / 2**20 > 2.8 * CAP_MB
    code = (
        "import sys; from cocokit.io.stream import open_stream\n"
        "s = open_stream(sys.argv[1], chunk_bytes=4 << 20)\n"
        "n_chunks = n_images = n_anns = 0; ok = True\n"
        "for ds in s.datasets():\n"
        "    n_chunks += 1; n_images += len(ds.images); n_anns += len(ds.annotations)\n"
        "    ok &= bool((ds.annotation_counts == 20).all())\n"
        "print(n_chunks, n_images, n_anns, s.orphan_annotations, ok)\n"
    )
    r = run_capped(["-c", code, str(path)])
    assert r.returncode == 0, r.stderr[-2000:]
    chunks, images, anns, orphans, ok = r.stdout.split()
    assert int(chunks) > 10
    assert (int(images), int(anns), int(orphans), ok) == (100_000, 2_000_000, 0, "True")
    assert sorted(p.name for p in folder.iterdir()) == ["big.json"]  # spill removed
