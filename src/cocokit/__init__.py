"""cocokit: fast, lossless tools for COCO-format detection and segmentation datasets.

>>> import cocokit
>>> ds = cocokit.load("instances_val2017.json")          # doctest: +SKIP
>>> cocokit.save(ds, "out.json")        # ids kept; image_ids="auto" renumbers  # doctest: +SKIP
>>> cocokit.validate(ds).ok, cocokit.compute_stats(ds)    # doctest: +SKIP

The dataset is data; saving, validating, statistics and formats are functions that take
it (``cocokit.save``, ``cocokit.to_json``, ``cocokit.validate``, ``cocokit.compute_stats``).
"""

from typing import Any

from .builder import DatasetBuilder
from .dataset import Annotations, Categories, Dataset, ImageItem, Images
from .errors import (
    CocoKitError,
    InputError,
    IntegrityError,
    JSONSyntaxError,
    MissingDependency,
    OptionError,
    OutputError,
    ValidationFailed,
)
from .geometry import Polygons
from .io.coco import ExportSummary, load, read_coco, to_dict, to_json, write_coco
from .io.coco import write_coco as save
from .problems import Problem, Report
from .validate import validate

__version__ = "0.1.0"

# Heavier parts (shapely, Pillow, OpenCV) load on first use, so `import cocokit` stays
# light for scripts that only read and write COCO files.
_LAZY = {
    "augment": ("augment", None),
    "transforms": ("transforms", None),
    "draw": ("draw", "draw"),
    "DatasetStats": ("stats", "DatasetStats"),
    "compute_stats": ("stats", "compute_stats"),
    "slice_dataset": ("slicing", "slice_dataset"),
    "SliceSummary": ("slicing", "SliceSummary"),
    "tile_grid": ("slicing", "tile_grid"),
    "auto_slice_params": ("slicing", "auto_slice_params"),
    "read_yolo": ("io.yolo", "read_yolo"),
    "write_yolo": ("io.yolo", "write_yolo"),
    "open_stream": ("io.stream", "open_stream"),
    "unslice_results": ("unslice", "unslice_results"),
    "Results": ("io.results", "Results"),
    "load_results": ("io.results", "load_results"),
    "write_results": ("io.results", "write_results"),
    "check_results": ("io.results", "check_results"),
    "IdMap": ("io.idmap", "IdMap"),
    "read_id_map": ("io.idmap", "read_id_map"),
    "remap_results": ("remap", "remap_results"),
    "evaluate": ("evaluation", "evaluate"),
    "Evaluation": ("evaluation", "Evaluation"),
    "read": ("io.formats", "read"),
    "write": ("io.formats", "write"),
    "Losses": ("io.formats.losses", "Losses"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'cocokit' has no attribute {name!r}")
    import importlib

    module_name, attr = _LAZY[name]
    module = importlib.import_module(f".{module_name}", __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value

__all__ = [
    "Annotations",
    "Categories",
    "CocoKitError",
    "Dataset",
    "DatasetBuilder",
    "DatasetStats",
    "Evaluation",
    "ExportSummary",
    "IdMap",
    "ImageItem",
    "Images",
    "InputError",
    "IntegrityError",
    "JSONSyntaxError",
    "Losses",
    "MissingDependency",
    "OptionError",
    "OutputError",
    "Polygons",
    "Problem",
    "Report",
    "Results",
    "SliceSummary",
    "ValidationFailed",
    "augment",
    "auto_slice_params",
    "check_results",
    "compute_stats",
    "draw",
    "evaluate",
    "load",
    "load_results",
    "open_stream",
    "read",
    "read_coco",
    "read_id_map",
    "read_yolo",
    "remap_results",
    "save",
    "slice_dataset",
    "tile_grid",
    "to_dict",
    "to_json",
    "transforms",
    "unslice_results",
    "validate",
    "write",
    "write_coco",
    "write_results",
    "write_yolo",
]
