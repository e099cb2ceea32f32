"""``cocokit convert IN -o OUT --to FMT``: convert between dataset formats and say what
each conversion loses (the library: :mod:`cocokit.io.formats`)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from ..errors import OptionError
from ..io import formats
from ..io.formats.yolo import TASKS, default_task
from ..io.yolo import labels_only_note
from ._app import app, progress_bar
from ._options import (
    DEFAULT_IDS,
    AnnotationIds,
    IdPolicy,
    ImageIds,
    Json,
    Quiet,
    check_file_output,
    check_folder_output,
    check_image_folder,
    say,
)

__all__ = ["convert"]

_FILE_FORMATS = ("coco", "cvat")


def conversion_answer(source: str, target: str, src_format: str, dst_format: str,
                      images: int, annotations: int, read_losses: formats.Losses,
                      write_losses: formats.Losses, task: str | None = None,
                      ) -> dict[str, Any]:
    """The ``--json`` answer of a conversion (its shape is in docs/formats.md); ``task``
    (the YOLO task written) only when the target is YOLO."""
    losses = formats.Losses()
    losses.extend(read_losses)
    losses.extend(write_losses)
    answer: dict[str, Any] = {"source": source, "target": target, "from": src_format,
                              "to": dst_format}
    if task is not None:
        answer["task"] = task
    answer.update(images=images, annotations=annotations, losses=losses.to_json())
    return answer


@app.command()
def convert(
    source: Annotated[str, typer.Argument(help="The dataset to read: a COCO file, or a "
                                          "folder/file of another format.")],
    output: Annotated[str, typer.Option("--output", "-o", help="Where to write: a COCO "
                                        "or CVAT file, or a folder for the other formats.")],
    to: Annotated[str, typer.Option("--to", help="Format to write: " + ", ".join(
        formats.FORMATS) + ".")],
    src_format: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--from", help="Format to read (default: detected from IN).")] = None,
    images: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--images", "-i", help="The image folder (image sizes when the labels lack them; "
        "YOLO links images from it, else writes labels, data.yaml and the image sizes; "
        "Label Studio prefixes data.image with it).")] = None,
    task: Annotated[Optional[str], typer.Option(  # noqa: UP045
        "--task", help="YOLO only: detect, segment, pose or obb (default: pose when "
        "categories have keypoints and annotations carry them, else segment when there "
        "are polygons, else detect).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Refuse a conversion that would lose anything (nothing is "
        "written).")] = False,
    image_ids: ImageIds = DEFAULT_IDS,
    annotation_ids: AnnotationIds = DEFAULT_IDS,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Convert a dataset between formats and report what the target cannot carry.

    Formats: coco, yolo (--task detect, segment, pose, obb), cvat (CVAT for images
    XML), dota, voc (Pascal VOC XML), labelme, labelstudio. The losses are listed
    ("4,210 polygons written as boxes"); --strict refuses a lossy conversion before
    writing.

    Example: cocokit convert instances_val2017.json --to voc -o voc/

    Example: cocokit convert person_keypoints_val2017.json --to yolo --task pose -i val2017 -o yolo/

    Example: cocokit convert annotations.xml --to dota -o dota/

    Example: cocokit convert labelme_folder/ --to coco -o dataset.json

    --image-ids/--annotation-ids apply to --to coco (the other formats store no COCO
    ids): keep (the default) writes the ids as they are, auto renumbers them 1..N.
    """
    dst = formats.format_module(to, "--to").NAME
    if task is not None and dst != "yolo":
        raise OptionError("--task", task, f"no --task with --to {dst} (tasks are YOLO's)")
    if task is not None and task not in TASKS:
        raise OptionError("--task", task, "one of " + ", ".join(TASKS))
    for flag, policy in (("--image-ids", image_ids), ("--annotation-ids", annotation_ids)):
        if dst != "coco" and policy is not IdPolicy.keep:
            raise OptionError(flag, policy.value, f"--to coco (a {dst} target stores no COCO "
                              "ids: they are numbered 1..N on reading)")
    src = formats.format_module(src_format, "--from").NAME if src_format else formats.detect(source)
    if dst in _FILE_FORMATS:
        check_file_output(output)
    else:
        check_folder_output(output)
    if images is not None:
        check_image_folder(images)
    with progress_bar(f"reading {source}", quiet or as_json):
        ds, read_losses = formats.read(source, src, images=images)
    if dst == "yolo":
        task = task or default_task(ds)
    with progress_bar(f"writing {output}", quiet or as_json):
        ids = ({"image_ids": image_ids.value, "annotation_ids": annotation_ids.value}
               if dst == "coco" else {})
        write_losses = formats.write(ds, output, dst, images=images, strict=strict, task=task,
                                     **ids)
    answer = conversion_answer(source, output, src, dst, ds.num_images, ds.num_annotations,
                               read_losses, write_losses, task)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    if quiet:
        return
    what = f"{dst}, task {task}" if task is not None else dst
    say(f"wrote {output} ({what}, from {src}): {ds.num_images:,} images, "
        f"{ds.num_annotations:,} annotations")
    if dst == "yolo" and images is None:
        say(labels_only_note("train") + " (-i DIR links the images)")
    if not answer["losses"]:
        say("nothing lost")
    for loss in answer["losses"]:
        say(f"  {loss['count']:,} {loss['message']}")
