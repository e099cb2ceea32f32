"""Transform commands: merge, filter, sample, split, categories, clip.

Each reads COCO files, calls one function of :mod:`cocokit.transforms`, prints what
it dropped or changed (unless ``--quiet``) and writes the result atomically. Ids are
kept as the transform leaves them (``--image-ids/--annotation-ids keep``, the
default of every command: transforms keep ids unique) or renumbered 1..N with ``auto``.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import numpy as np
import typer
from rich.table import Table

from ..dataset import Dataset
from ..errors import InputError, OptionError
from ..io.atomic import atomic_files
from ._app import (
    Stream,
    app,
    console,
    err_console,
    load_dataset,
    open_source,
    print_saved,
    save_dataset,
    status,
    use_stream,
    write_dataset,
    write_input_id_maps,
)

if TYPE_CHECKING:  # pragma: no cover
    from ..io.stream import CocoStream

from ._options import (
    DEFAULT_IDS,
    AnnotationIds,
    CocoFile,
    CocoPath,
    DropEmptyAlias,
    DropNegatives,
    IdMapFile,
    IdMapFiles,
    IdPolicy,
    ImageIds,
    Quiet,
    Yes,
    check_file_output,
    check_folder_output,
    check_id_map,
    check_id_maps,
    check_run_size,
    check_seed,
    renamed,
    say,
)


class OnDuplicate(str, Enum):
    error = "error"
    prefix = "prefix"
    keep = "keep"


class CrowdOpt(str, Enum):
    keep = "keep"
    drop = "drop"
    only = "only"


class SortOpt(str, Enum):
    name = "name"
    id = "id"


Output = Annotated[str, typer.Option("--output", "-o", help="Output COCO JSON file.")]


# -- parsing helpers -------------------------------------------------------------------


def _pair(value: str, option: str, form: str = "NAME=VALUE") -> tuple[str, str]:
    key, sep, val = value.rpartition("=")
    if not sep or not key or not val:
        raise OptionError(option, value, form)
    return key, val


def _int(value: str, option: str, what: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise OptionError(option, value, what) from None


def _float(value: str, option: str, what: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise OptionError(option, value, what) from None


def _check_range(lo: float | None, hi: float | None, lo_flag: str, hi_flag: str,
                 value: Any = None) -> None:
    """Refuse bounds that cannot be meant: a lower bound that is negative, not a number
    or infinite (it keeps everything, or nothing), an upper bound that is negative or
    not a number, or a range whose lower bound exceeds its upper one (it keeps nothing).
    ``value``: the NAME=MIN:MAX both bounds come from (quoted instead)."""
    bad_lo = lo is not None and not (math.isfinite(lo) and lo >= 0)
    bad_hi = hi is not None and not hi >= 0  # NaN too
    crossed = lo is not None and hi is not None and lo > hi
    if value is not None:
        if bad_lo or bad_hi or crossed:
            raise OptionError(lo_flag, value, "NAME=MIN:MAX with 0 <= MIN <= MAX")
    elif bad_lo:
        raise OptionError(lo_flag, lo, "a finite number >= 0")
    elif bad_hi:
        raise OptionError(hi_flag, hi, "a number >= 0")
    elif crossed:
        raise OptionError(hi_flag, hi, f"a number >= {lo_flag} ({lo:g})")


def _category(ds: Dataset | CocoStream, token: str) -> str | int:
    """A category named on the command line: its name if the dataset has that name,
    else its id if the token is a whole number, else the name (the library reports it)."""
    if token in ds.categories:
        return token
    try:
        return int(token)
    except ValueError:
        return token


def _read_json(path: Path, option: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(str(path), None, f"no such file (given to {option})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, f"cannot read: {e}") from None
    except json.JSONDecodeError as e:
        raise InputError(str(path), f"line {e.lineno}, column {e.colno}",
                         f"malformed JSON: {e.msg}") from None


def _name_to_id(path: Path, option: str) -> dict[str, int]:
    data = _read_json(path, option)
    if not isinstance(data, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in data.values()):
        raise InputError(str(path), None, 'expected a JSON object {"name": id, ...} with '
                         "integer ids")
    return {str(k): int(v) for k, v in data.items()}


def _image_list(path: Path, option: str) -> list[int | str]:
    """Lines of a list file: image ids (whole numbers) or file names; # comments."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), None, f"no such file (given to {option})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(str(path), None, f"cannot read: {e}") from None
    out: list[int | str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(int(line) if line.lstrip("-").isdigit() else line)
    return out


def _save(ds: Dataset, output: str | Path, quiet: bool, image_ids: IdPolicy,
          annotation_ids: IdPolicy, ids_line: bool = True, warn: bool = True,
          drop_negatives: bool = False, id_map: str | None = None,
          category_map: tuple[Any, Any] | None = None,
          beside: Callable[[Any], None] | None = None) -> Any:
    """Write with the id policies (repeated ids with ``keep`` are refused, naming
    ``auto``: the transforms never make them, but an input may hold them), leaving out
    the images without annotations with ``drop_negatives``; ``id_map``: also write the
    old-to-new ids there (``--id-map``); ``beside``: other files of the same set
    (:func:`._app.save_dataset`). Returns the export summary."""
    return save_dataset(ds, output, quiet=quiet, image_ids=image_ids.value,
                 annotation_ids=annotation_ids.value, ids_line=ids_line, warn=warn,
                 ignore_negative_samples=drop_negatives, id_map=id_map,
                 category_map=category_map, beside=beside)


@contextlib.contextmanager
def _spelled(**names: str) -> Iterator[None]:
    """Name the options of the library's OptionErrors as this command's parameters
    (``drop_categories`` -> ``drop_category``, which the CLI shows as typed: ``-d``),
    where the two differ."""
    try:
        yield
    except OptionError as e:
        if e.option not in names:
            raise
        raise OptionError(names[e.option], e.value, e.expected) from None


def _show(report: Any, quiet: bool) -> None:
    if not quiet:
        for line in report.lines():
            err_console.print(line, markup=False, highlight=False)


# -- commands --------------------------------------------------------------------------


@app.command()
def merge(
    inputs: Annotated[list[Path], typer.Argument(help="COCO JSON files to merge, in order.")],
    output: Output,
    category: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--category", help="Target category NAME=ID (repeat); others are dropped.")] = None,
    category_map: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help='JSON file {"name": id, ...}: the target categories.')] = None,
    renumber: Annotated[bool, typer.Option(
        help="Number all images and annotations 1..N instead of keeping ids.")] = False,
    images: Annotated[Optional[list[Path]], typer.Option(  # noqa: UP045
        "--images", "-i", help="Image folder of each input (repeat, in input order): file "
        "names become relative to their common root.")] = None,
    prefix: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Prefix for the file names of each input (repeat, in input order).")] = None,
    on_duplicate: Annotated[OnDuplicate, typer.Option(
        help="Two different images with the same file name: error, prefix the later "
        "one with its input's prefix (or file stem), or keep both.")] = OnDuplicate.error,
    dedupe_images: Annotated[bool, typer.Option(
        help="Merge images with the same file name and size into one, with the "
        "annotations of both; an exact duplicate annotation (all but the id equal) is "
        "kept once and counted in the summary.")] = False,
    info: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="JSON file with the info object (default: the first input's).")] = None,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    id_map: IdMapFiles = None,
    quiet: Quiet = False,
    image_root: Annotated[Optional[list[Path]], typer.Option(  # noqa: UP045
        "--image-root", hidden=True)] = None,
) -> None:
    """Merge COCO files: categories matched by name, ids made unique, licences merged.

    An id used by an earlier input, or repeated within one, gets the next free id above
    the largest in use (the summary says how many, why and which); --id-map writes each
    input's old-to-new ids.

    Example: cocokit merge a.json b.json -o merged.json --on-duplicate prefix

    Example: cocokit merge a.json b.json -o merged.json --id-map a_ids.json --id-map b_ids.json
    """
    from ..transforms import merge as merge_datasets

    images = renamed(images, image_root, "--image-root", "-i/--images")
    if len(inputs) < 2:
        raise OptionError("INPUTS", [str(p) for p in inputs], "at least two files to merge")
    check_file_output(output)
    check_id_maps(id_map, inputs, output)
    mapping: dict[str, int] | None = None
    if category_map is not None:
        mapping = _name_to_id(category_map, "--category-map")
    if category:
        mapping = dict(mapping or {})
        for value in category:
            name, cid = _pair(value, "--category", "NAME=ID")
            mapping[name] = _int(cid, "--category", "NAME=ID with a whole number")
    info_obj = None
    if info is not None:
        info_obj = _read_json(info, "--info")
        if not isinstance(info_obj, dict):
            raise InputError(str(info), None, "expected a JSON object for info")
    datasets = [load_dataset(p, quiet) for p in inputs]
    with status("merging", quiet), _spelled(
            datasets="INPUTS", category_map="category/category_map", image_roots="images",
            prefixes="prefix", duplicates="on_duplicate"):
        out, report = merge_datasets(
            datasets, category_map=mapping, renumber=renumber,
            image_roots=images or None, prefixes=prefix or None,
            duplicates=on_duplicate.value, dedupe_images=dedupe_images, info=info_obj)
    _show(report, quiet)
    _save(out, output, quiet, image_ids, annotation_ids, drop_negatives=drop_negatives,
          beside=(lambda summary: write_input_id_maps(report.id_maps, summary.id_map, id_map))
          if id_map else None)  # the merged file and its id maps: all, or none
    if id_map and not quiet:
        for path, source in zip(id_map, inputs, strict=True):
            say(f"wrote {path}: the old-to-new ids of {source}")


@app.command("filter")
def filter_command(
    file: CocoFile,
    output: Output,
    keep_category: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--keep-category", "-c", help="Keep only these categories (name or id; repeat).")] = None,
    drop_category: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        "--drop-category", "-d", help="Drop these categories (name or id; repeat).")] = None,
    min_area: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Keep annotations with area >= this.")] = None,
    max_area: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Keep annotations with area <= this.")] = None,
    category_area: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Area range of one category, NAME=MIN:MAX (either may be empty; repeat); "
        "replaces --min-area/--max-area for it.")] = None,
    min_width: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Keep boxes at least this wide.")] = None,
    min_height: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Keep boxes at least this high.")] = None,
    crowd: Annotated[CrowdOpt, typer.Option(
        help="Crowd annotations (iscrowd=1): keep, drop, or keep only them.")] = CrowdOpt.keep,
    image_glob: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Keep images whose file name matches (shell pattern; repeat).")] = None,
    exclude_glob: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Drop images whose file name matches (repeat).")] = None,
    image_id: Annotated[Optional[list[int]], typer.Option(  # noqa: UP045
        help="Keep only these image ids (repeat).")] = None,
    exclude_image_id: Annotated[Optional[list[int]], typer.Option(  # noqa: UP045
        help="Drop these image ids (repeat).")] = None,
    image_list: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Keep only the images listed in this file (ids or file names, one a line).")] = None,
    exclude_image_list: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Drop the images listed in this file.")] = None,
    drop_negatives: DropNegatives = False,
    drop_images: Annotated[bool, typer.Option(
        help="Drop whole images that hold any failing annotation (default: drop only "
        "the failing annotations).")] = False,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    stream: Stream = None,
    id_map: IdMapFile = None,
    quiet: Quiet = False,
    drop_empty: DropEmptyAlias = False,
) -> None:
    """Keep or drop categories, areas, small boxes, crowd annotations and images.

    By default failing annotations are removed one by one; --drop-images removes every
    image that holds one instead. --drop-negatives also drops the images left without
    annotations (and those that had none).

    Example: cocokit filter in.json -o out.json -d person --min-area 32 --drop-negatives
    """
    from ..io.coco import FilteredStream
    from ..transforms import filter_dataset

    drop_negatives = renamed(drop_negatives, drop_empty, "--drop-empty", "--drop-negatives",
                             False)
    check_file_output(output)
    check_id_map(id_map, [file], output)
    _check_range(min_area, max_area, "--min-area", "--max-area")
    _check_range(min_width, None, "--min-width", "--min-width")
    _check_range(min_height, None, "--min-height", "--min-height")
    streamed = use_stream(file, stream)
    if streamed:
        image_tests = {"--image-glob": image_glob, "--exclude-glob": exclude_glob,
                       "--image-id": image_id, "--exclude-image-id": exclude_image_id,
                       "--image-list": image_list, "--exclude-image-list": exclude_image_list,
                       "--drop-images": drop_images, "--category-area": category_area}
        used = [k for k, v in image_tests.items() if v]
        if used:
            raise OptionError("--stream", ", ".join(used),
                              "annotation tests only when streaming (use --no-stream for "
                              "image tests, --drop-images and --category-area)")
    ds = open_source(file, streamed, quiet)
    cat_area: dict[str | int, tuple[float | None, float | None]] | None = None
    if category_area:
        cat_area = {}
        for value in category_area:
            name, rng = _pair(value, "--category-area", "NAME=MIN:MAX")
            lo, sep, hi = rng.partition(":")
            if not sep:
                raise OptionError("--category-area", value, "NAME=MIN:MAX")
            what = "NAME=MIN:MAX with numbers"
            bounds = (_float(lo, "--category-area", what) if lo else None,
                      _float(hi, "--category-area", what) if hi else None)
            _check_range(*bounds, "--category-area", "--category-area", value)
            cat_area[_category(ds, name)] = bounds
    keep_images: list[int | str] | None = None
    if image_id or image_list is not None:
        keep_images = list(image_id or [])
        if image_list is not None:
            keep_images += _image_list(image_list, "--image-list")
    drop_list: list[int | str] | None = None
    if exclude_image_id or exclude_image_list is not None:
        drop_list = list(exclude_image_id or [])
        if exclude_image_list is not None:
            drop_list += _image_list(exclude_image_list, "--exclude-image-list")
    area = (min_area, max_area) if min_area is not None or max_area is not None else None
    with status("filtering", quiet), _spelled(
            categories="keep_category", drop_categories="drop_category",
            area="min_area/max_area", images="image_id/image_list",
            exclude_images="exclude_image_id/exclude_image_list", image_globs="image_glob",
            exclude_globs="exclude_glob", drop_empty="drop_negatives", unit="drop_images"):
        result = filter_dataset(
            ds,
            categories=[_category(ds, c) for c in keep_category] if keep_category else None,
            drop_categories=[_category(ds, c) for c in drop_category] if drop_category else None,
            area=area, category_area=cat_area, min_width=min_width, min_height=min_height,
            crowd=crowd.value, images=keep_images, exclude_images=drop_list,
            image_globs=image_glob or None, exclude_globs=exclude_glob or None,
            drop_empty=drop_negatives, unit="images" if drop_images else "annotations")
    if isinstance(result, FilteredStream):  # streamed: written in bounded memory as read
        save_dataset(result, output, quiet=quiet, image_ids=image_ids.value,
                     annotation_ids=annotation_ids.value,
                     streamed=f"; {ds.num_annotations} annotations read", id_map=id_map)
    else:
        _show(result.report, quiet)
        _save(result.dataset, output, quiet, image_ids, annotation_ids, id_map=id_map)


@app.command()
def sample(
    file: CocoPath,
    output: Output,
    every: Annotated[Optional[int], typer.Option(help="Keep every Nth image.")] = None,  # noqa: UP045
    offset: Annotated[int, typer.Option(help="With --every: start at this position.")] = 0,
    fraction: Annotated[Optional[float], typer.Option(  # noqa: UP045
        help="Keep this fraction of the images, drawn at random.")] = None,
    count: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Keep this many images, drawn at random.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random draw.")] = 0,
    with_category: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Sample only among images holding one of these categories (repeat).")] = None,
    only_negatives: Annotated[bool, typer.Option(
        "--only-negatives", help="Sample only among images without annotations.")] = False,
    keep_rest: Annotated[bool, typer.Option(
        help="Keep the images outside the sampled pool (e.g. with --only-negatives: keep "
        "every positive image).")] = False,
    repeat: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Upsample: images holding category NAME appear N times, NAME=N (repeat).")] = None,
    mark: Annotated[str, typer.Option(
        help="Extra image key recording the source image id of a repeated image.",
    )] = "source_image_id",
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    yes: Yes = False,
    quiet: Quiet = False,
    negatives: Annotated[bool, typer.Option("--negatives", hidden=True)] = False,
) -> None:
    """Subsample images (every Nth, a seeded random fraction or count) and/or upsample.

    Example: cocokit sample in.json -o small.json --fraction 0.1 --seed 1
    """
    from ..transforms import sample as sample_dataset
    from ..transforms import upsample

    only_negatives = renamed(only_negatives, negatives, "--negatives", "--only-negatives",
                             False)
    check_file_output(output)
    if only_negatives and drop_negatives:
        raise OptionError("--drop-negatives", True, "--only-negatives or --drop-negatives, "
                          "not both (the sample would be left out)")
    if only_negatives and with_category:
        raise OptionError("--with-category", with_category, "--with-category or "
                          "--only-negatives, not both (an image without annotations holds "
                          "no category)")
    if every is None and fraction is None and count is None and not repeat:
        raise OptionError("--every/--fraction/--count/--repeat", None, "at least one of them")
    check_seed(seed)
    ds = load_dataset(file, quiet)
    out = ds
    if every is not None or fraction is not None or count is not None:
        with status("sampling", quiet), _spelled(containing="with_category",
                                                  negatives="only_negatives"):
            out, report = sample_dataset(
                out, every=every, offset=offset, fraction=fraction, count=count, seed=seed,
                containing=[_category(ds, c) for c in with_category] if with_category else None,
                negatives=only_negatives, keep_rest=keep_rest)
        _show(report, quiet)
    if repeat:
        factors: dict[str | int, int] = {}
        for value in repeat:
            name, n = _pair(value, "--repeat", "NAME=N")
            factors[_category(ds, name)] = _int(n, "--repeat", "NAME=N with a whole number")
        with _spelled(repeats="repeat"):
            _check_repeats(out, factors, file, repeat, yes)
            with status("upsampling", quiet):
                out, report = upsample(out, factors, mark=mark)
        _show(report, quiet)
    _save(out, output, quiet, image_ids, annotation_ids,
          drop_negatives=drop_negatives)


def _check_repeats(ds: Dataset, factors: dict[str | int, int], file: Path, repeat: list[str],
                   yes: bool) -> None:
    """Refuse an upsampling over the limits of :func:`._options.check_run_size` (its
    images; its bytes estimated from the input file's bytes per record)."""
    from ..transforms.sample import repeat_factors

    if yes:
        return
    factor = repeat_factors(ds, factors)
    images = int(factor.sum())
    has = ds.image_index >= 0
    annotations = int(factor[ds.image_index[has]].sum()) + int((~has).sum())
    records = len(ds.images) + len(ds.annotations)
    per_record = file.stat().st_size / max(records, 1) if file.is_file() else 0.0
    check_run_size("--repeat", " ".join(repeat), images,
                   int(per_record * (images + annotations)), False)


@app.command("split")
def split_command(
    file: CocoPath,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="Output folder (made if missing): one NAME.json per split.")],
    ratio: Annotated[list[str], typer.Option(
        help="A split and its share, NAME=RATIO (repeat; normalised to sum to 1).")],
    stratify: Annotated[bool, typer.Option(
        help="Iterative stratification: per-category counts follow the ratios.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random choices.")] = 0,
    group_by: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Keep images that share this image field together (e.g. video_id), or "
        "'re:REGEX' on file_name (first group, else the match).")] = None,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    quiet: Quiet = False,
) -> None:
    """Split into named parts, random or stratified, optionally grouped; prints counts.

    Example: cocokit split in.json -o splits/ --ratio train=0.8 --ratio val=0.2 --stratify
    """
    from ..transforms import split

    ratios: dict[str, float] = {}
    for value in ratio:
        name, r = _pair(value, "--ratio", "NAME=RATIO")
        if name in ratios:
            raise OptionError("--ratio", value, "each split name once")
        ratios[name] = _float(r, "--ratio", "NAME=RATIO with a number")
    check_seed(seed)
    check_folder_output(output)
    folder = Path(output)
    pattern = None
    field = group_by
    if group_by is not None and group_by.startswith("re:"):
        pattern, field = group_by[3:], None
    ds = load_dataset(file, quiet)
    _refuse_unplaced(ds, output)
    with status("splitting", quiet), _spelled(ratios="ratio", group_pattern="group_by"):
        parts, report = split(ds, ratios, stratify=stratify, seed=seed, group_by=field,
                              group_pattern=pattern)
    _write_parts(parts, folder, quiet, image_ids, annotation_ids, drop_negatives)
    if not quiet:
        used = report.category_annotations.sum(axis=0) > 0
        ok = report.within_tolerance()
        total = sum(report.images)
        table = Table("split", "ratio", "images", "ideal", "annotations", "categories",
                      "within tolerance", title=f"{report.method} split of {file}")
        for j, name in enumerate(report.names):
            table.add_row(name, f"{report.ratios[j]:.3f}", str(report.images[j]),
                          f"{report.ratios[j] * total:.1f}", str(report.annotations[j]),
                          str(int((report.category_annotations[j] > 0).sum())),
                          f"{int(ok[j][used].sum())}/{int(used.sum())}")
        console.print(table)
        for note in report.notes:
            err_console.print(note, markup=False, highlight=False)


def _write_parts(parts: dict[str, Dataset], folder: Path, quiet: bool, image_ids: IdPolicy,
                 annotation_ids: IdPolicy, drop_negatives: bool) -> None:
    """Write the parts of a split as ``folder/NAME.json``, as one set: each part passes
    the export contract as it is written to its temporary file, and all are renamed
    together once every part is written (:func:`cocokit.io.atomic.atomic_files`). A part
    refused, a failure or Ctrl-C leaves every old file of the folder as it was (and no
    new folder)."""
    from ..io import files

    targets = {name: folder / f"{name}.json" for name in parts}
    created = not folder.exists()
    files.makedirs(folder)
    try:
        with atomic_files():
            summaries = {name: write_dataset(part, targets[name], quiet=quiet,
                                             image_ids=image_ids.value,
                                             annotation_ids=annotation_ids.value,
                                             ignore_negative_samples=drop_negatives)
                         for name, part in parts.items()}
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    for k, (name, part) in enumerate(parts.items()):
        # the parts share the categories: their ids line and warnings once, at the end
        last = k == len(parts) - 1
        print_saved(part, targets[name], summaries[name], quiet=quiet,
                    image_ids=image_ids.value, annotation_ids=annotation_ids.value,
                    ids_line=last, warn=last)


def _refuse_unplaced(ds: Dataset, target: str) -> None:
    """Refuse annotations that name no image, as every other command's export does (the
    export contract's reference check, the same lines), before anything is split or
    written: no part could hold them, and the library's split leaves them out."""
    from ..dataset import Origin
    from ..io.coco import ExportScreen

    unplaced = np.flatnonzero(ds.image_index < 0)
    if not len(unplaced):
        return
    screen = ExportScreen("error", target)
    # named as a transform's records are: the input file and row
    here = Origin((ds.source,), np.arange(len(ds.images)), np.arange(len(ds.annotations)))
    screen.references(ds.annotations, unplaced, ds.image_index, ds.category_index, here)
    screen.refuse()


@app.command()
def categories(
    file: CocoPath,
    output: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--output", "-o", help="Output COCO JSON file (needed when editing).")] = None,
    rename: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Rename a category, OLD=NEW (repeat).")] = None,
    merge: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Merge categories into one, A,B=C (repeat).")] = None,
    drop: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Drop a category and its annotations (repeat).")] = None,
    add: Annotated[Optional[list[str]], typer.Option(  # noqa: UP045
        help="Add a category without annotations, NAME or NAME=ID (repeat).")] = None,
    map_file: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        "--map", help='JSON file {"name": id, ...}: exactly these categories and ids.')] = None,
    reindex: Annotated[Optional[int], typer.Option(  # noqa: UP045
        help="Renumber ids from this number (0 or 1) in list order.")] = None,
    sort: Annotated[Optional[SortOpt], typer.Option(  # noqa: UP045
        help="Order the category list by name or id.")] = None,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    id_map: IdMapFile = None,
    quiet: Quiet = False,
) -> None:
    """Rename, merge, drop, add, remap, sort or renumber categories (no edit: list them).

    Example: cocokit categories in.json -o out.json --merge car,truck=vehicle --reindex 0
    """
    from ..transforms import edit_categories

    edits = any(v for v in (rename, merge, drop, add)) or map_file is not None \
        or reindex is not None or sort is not None
    if edits and output is None:
        raise OptionError("-o/--output", None, "an output file when editing categories")
    if reindex is not None and not 0 <= reindex <= 2**53:
        raise OptionError("--reindex", reindex, "a whole number from 0 to 2**53 (usually 0 "
                          "or 1)")
    if output is not None:
        check_file_output(output)
        check_id_map(id_map, [file], output)
    ds = load_dataset(file, quiet)
    if not edits:
        counts = ds.category_index
        table = Table("id", "name", "annotations", title=file.name)
        per = np.bincount(counts[counts >= 0], minlength=len(ds.categories))
        for i in range(len(ds.categories)):
            table.add_row(str(int(ds.categories.id[i])), str(ds.categories.name[i]),
                          str(int(per[i])))
        console.print(table)
        if output is not None:
            _save(ds, output, quiet, image_ids, annotation_ids,
                  drop_negatives=drop_negatives)
        return
    renames: dict[str | int, str] | None = None
    if rename:
        renames = {}
        for value in rename:
            old, new = _pair(value, "--rename", "OLD=NEW")
            renames[_category(ds, old)] = new
    merges: dict[str, list[str | int]] | None = None
    if merge:
        merges = {}
        for value in merge:
            sources, target = _pair(value, "--merge", "A,B=C")
            merges[target] = [_category(ds, s) for s in sources.split(",") if s]
    adds: list[str | dict[str, Any]] | None = None
    if add:
        adds = []
        for value in add:
            if "=" in value:
                name, cid = _pair(value, "--add", "NAME or NAME=ID")
                adds.append({"name": name, "id": _int(cid, "--add", "NAME=ID with a whole number")})
            else:
                adds.append(value)
    mapping = _name_to_id(map_file, "--map") if map_file is not None else None
    with status("editing categories", quiet), _spelled(mapping="map_file"):
        out, report = edit_categories(
            ds, rename=renames, merge=merges,
            drop=[_category(ds, d) for d in drop] if drop else None,
            add=adds, mapping=mapping, sort=sort.value if sort is not None else None,
            reindex=reindex)
    _show(report, quiet)
    if output is not None:
        from ..remap import category_pairs

        _save(out, output, quiet, image_ids, annotation_ids,
              drop_negatives=drop_negatives, id_map=id_map,
              category_map=category_pairs(ds, out))


@app.command()
def clip(
    file: CocoPath,
    output: Output,
    drop_degenerate: Annotated[bool, typer.Option(
        help="Also drop annotations whose box has zero width or height, or zero area.")] = False,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    id_map: IdMapFile = None,
    quiet: Quiet = False,
) -> None:
    """Clip boxes and polygons to the image bounds; drop what is left with nothing inside.

    Example: cocokit clip in.json -o clipped.json --drop-degenerate
    """
    from ..transforms import clip as clip_dataset

    check_file_output(output)
    check_id_map(id_map, [file], output)
    ds = load_dataset(file, quiet)
    with status("clipping", quiet):
        out, report = clip_dataset(ds, drop_degenerate=drop_degenerate)
    _show(report, quiet)
    _save(out, output, quiet, image_ids, annotation_ids,
          drop_negatives=drop_negatives, id_map=id_map)
