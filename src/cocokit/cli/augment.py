"""The ``augment`` command: write augmented copies of every image, annotations exact."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import OptionError
from ._app import (
    app,
    err_console,
    load_dataset,
    print_export_notes,
    progress_bar,
    report_bad_images,
)
from ._options import (
    DEFAULT_IDS,
    Address,
    AnnotationIds,
    CocoPath,
    DropNegatives,
    EngineOpt,
    IgnoreNegativesAlias,
    ImageIds,
    Images,
    Quality,
    Quiet,
    Yes,
    check_folder_output,
    check_image_folder,
    check_run_size,
    check_seed,
    check_workers,
    estimated_bytes,
    ids_note,
    renamed,
    say,
)

if TYPE_CHECKING:
    from ..augment.pipeline import Pipeline
    from ..dataset import Dataset

#: The largest canvas a copy may have without --yes: Pillow's decompression-bomb bound.
MAX_CANVAS_PIXELS = 178_956_970


class AugmentFormatOpt(str, Enum):
    """--image-format choices."""

    same = "same"
    jpg = "jpg"
    png = "png"


@app.command("augment")
def augment_command(
    file: CocoPath,
    images: Images,
    output: Annotated[str, typer.Option(
        "--output", "-o", help="Output folder: images/ and annotations.json are written "
        "there. A path or an fsspec URL.")],
    pipeline: Annotated[Path, typer.Option(
        "--pipeline", "-p", help="Pipeline file (YAML or JSON): the operations in order.")],
    copies: Annotated[int, typer.Option(
        "--copies", "-n", help="Augmented copies per image.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    workers: Annotated[Optional[int], typer.Option(  # noqa: UP045 - typer needs Optional
        help="Processes to use. Default: all cores. The output does not depend on it.")] = None,
    engine: Annotated[EngineOpt, typer.Option(
        help="Where the per-image work runs: local (processes) or ray (a Ray cluster; "
        "pip install 'cocokit\\[ray]'). The output does not depend on it.")] = EngineOpt.local,
    address: Address = None,
    keep_originals: Annotated[bool, typer.Option(
        "--keep-originals/--no-originals",
        help="Also write the source images (copied byte for byte) and annotations.")] = True,
    image_format: Annotated[AugmentFormatOpt, typer.Option(
        "--image-format", help="Image format of the copies: same as the source, jpg or png."),
    ] = AugmentFormatOpt.same,
    quality: Quality = 95,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    drop_negatives: DropNegatives = False,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace images/ and annotations.json in OUTPUT if they exist.")
    ] = False,
    skip_bad_images: Annotated[bool, typer.Option(
        "--skip-bad-images",
        help="Leave out (and list) images that are missing or unreadable, with their "
        "annotations. Without it, such images are listed at the end, nothing is written "
        "and the exit code is 1.")] = False,
    yes: Yes = False,
    quiet: Quiet = False,
    ignore_negative_samples: IgnoreNegativesAlias = False,
    fmt: Annotated[Optional[AugmentFormatOpt], typer.Option(  # noqa: UP045
        "--format", hidden=True)] = None,
) -> None:
    """Write augmented copies of every image with exactly transformed annotations.

    Geometric operations are composed into one matrix per copy: polygons, boxes
    and keypoints are mapped by it and clipped to the image, RLE masks are warped
    as masks, pixels are warped once. Annotations left too small (the pipeline's
    min_area, min_visibility) are dropped and counted. New images record
    augmented_from, augmentation and augmentation_matrix. Ids are kept for the
    originals and the copies are numbered after them, unless --image-ids and
    --annotation-ids auto renumber everything 1..N.

    Images that cannot be read are reported by name once the others are done; the
    run then exits with code 1 and writes nothing, unless --skip-bad-images. In
    object storage (an s3:// or gs:// OUTPUT) images are written in place and
    annotations.json last, only when all went well.

    A run that would write more than 1,000,000 images or an estimated 1 TB, or a copy
    larger than 178,956,970 pixels, is refused before any work unless --yes
    (docs/limits.md).

    Example: cocokit augment train.json -i train/ -o aug/ --pipeline aug.yaml --copies 4

    Example: cocokit augment train.json -i s3://bkt/train -o s3://bkt/aug -p aug.yaml --engine ray
    """
    from ..augment.apply import augment
    from ..augment.pipeline import Pipeline
    from ..contract import category_warnings
    from ..errors import BadImagesError
    from ..io import files

    drop_negatives = renamed(drop_negatives, ignore_negative_samples,
                             "--ignore-negative-samples", "--drop-negatives", False)
    image_format = renamed(image_format, fmt, "--format", "--image-format",
                           AugmentFormatOpt.same)
    check_image_folder(images)
    check_folder_output(output)
    if copies < 1:
        raise OptionError("--copies", copies, "an integer >= 1")
    check_seed(seed)
    check_workers(workers, yes, engine.value)
    # --copies alone over the limit is refused before the dataset is read
    check_run_size("--copies", copies, copies, None, yes)
    pipe = Pipeline.from_file(pipeline)  # bad pipelines fail before the dataset is read
    ds = load_dataset(file, quiet)
    check_augment_size(ds, pipe, copies, keep_originals, image_format.value, seed, yes,
                       str(pipeline))
    n_workers = workers if workers is not None else (os.cpu_count() or 1)

    failed: list[tuple[str, str]] | None = None
    with contextlib.ExitStack() as stack:
        bar: list[Callable[[int, int], None]] = []

        def update(done: int, total: int) -> None:
            """Progress callback; the bar starts with the first result."""
            # the bar (and its refresh thread) starts at the first result, after the
            # worker processes have started
            if not bar:
                bar.append(stack.enter_context(progress_bar("augmenting", quiet)))
            bar[0](done, total)

        try:
            written, summary = augment(
                ds, pipe, images, output, copies=copies, seed=seed,
                keep_originals=keep_originals, workers=n_workers, progress=update,
                image_ids=image_ids.value, annotation_ids=annotation_ids.value,
                ignore_negative_samples=drop_negatives, format=image_format.value,
                quality=quality, overwrite=overwrite, skip_bad_images=skip_bad_images,
                engine=engine.value, address=address)
        except BadImagesError as e:
            failed = e.failures
    if failed is not None:
        report_bad_images(failed, "augmented")
        raise typer.Exit(1)
    if not quiet:
        reasons = ", ".join(f"{k} {v}" for k, v in summary.dropped_by_reason.items() if v)
        err_console.print(
            f"wrote {files.join(output, 'annotations.json')}: {summary.images} images "
            f"({summary.augmented_images} augmented), {summary.annotations} annotations"
            + (f"; {summary.dropped_annotations} annotations dropped ({reasons})"
               if summary.dropped_annotations else "")
            + (f"; {summary.skipped_negative_images} images without annotations not written"
               if summary.skipped_negative_images else ""),
            markup=False, highlight=False)
        say(ids_note(image_ids, annotation_ids, new_records="copies"))
        print_export_notes((), category_warnings(written.categories))
    for path, reason in summary.skipped:
        err_console.print(f"skipped {path}: {reason}", markup=False, highlight=False,
                          soft_wrap=True)


def check_augment_size(ds: Dataset, pipe: Pipeline, copies: int, keep_originals: bool,
                       image_format: str, seed: int, yes: bool, pipeline_file: str = "",
                       ) -> None:
    """Refuse, before any work and unless ``yes``, a run over the limits of
    :func:`~cocokit.cli._options.check_run_size` (images: ``copies`` per image, plus the
    originals; bytes: the pixels the pipeline draws, estimated by
    :meth:`~cocokit.augment.pipeline.Pipeline.estimate_pixels`) or with a copy larger
    than :data:`MAX_CANVAS_PIXELS`."""
    import numpy as np

    n = len(ds.images)
    if yes or not n:
        return
    names = ds.images.file_name.tolist()
    source_suffixes = [str(f).rpartition(".")[2] for f in names]
    suffixes = source_suffixes if image_format == "same" else [image_format] * n
    try:
        one_copy, largest = pipe.estimate_pixels(ds.images.width, ds.images.height,
                                                 seed=seed)
    except (OverflowError, ValueError) as e:  # a scale of 1e300 and the like
        raise OptionError("--pipeline", pipeline_file, f"operations that give a copy a "
                          f"size ({e})") from None
    if largest > MAX_CANVAS_PIXELS:
        raise OptionError("--pipeline", pipeline_file, f"copies of at most "
                          f"{MAX_CANVAS_PIXELS:,} pixels (this pipeline draws a canvas of "
                          f"{largest:,} pixels; pass --yes to run it anyway, see "
                          "docs/limits.md)")
    pixels = np.maximum(ds.images.width, 1).astype(np.float64) * np.maximum(
        ds.images.height, 1)
    share = pixels / max(float(pixels.sum()), 1.0)
    nbytes = estimated_bytes(share * one_copy * copies, suffixes)
    images = n * copies
    if keep_originals:
        images += n
        nbytes += estimated_bytes(pixels, source_suffixes)
    check_run_size("--copies", copies, images, nbytes, yes)

