"""cocokit: fast, lossless tools for COCO-format detection and segmentation datasets.

>>> import cocokit
>>> ds = cocokit.load("instances_val2017.json")          # doctest: +SKIP
>>> ds.save("out.json", image_ids="keep")                 # doctest: +SKIP
"""

from . import augment, transforms
from .builder import DatasetBuilder
from .dataset import Annotations, Categories, Dataset, ImageItem, Images
from .draw import draw
from .errors import (
    CocoKitError,
    InputError,
    IntegrityError,
    JSONSyntaxError,
    MissingDependency,
    OptionError,
    ValidationFailed,
)
from .geometry import Polygons
from .io.coco import ExportSummary, load, read_coco, to_dict, to_json, write_coco
from .stats import DatasetStats, compute_stats
from .validate import Problem, Report, validate

__version__ = "0.1.0"

__all__ = [
    "Annotations",
    "Categories",
    "CocoKitError",
    "Dataset",
    "DatasetBuilder",
    "DatasetStats",
    "ExportSummary",
    "ImageItem",
    "Images",
    "InputError",
    "IntegrityError",
    "JSONSyntaxError",
    "MissingDependency",
    "OptionError",
    "Polygons",
    "Problem",
    "Report",
    "ValidationFailed",
    "augment",
    "compute_stats",
    "draw",
    "load",
    "read_coco",
    "to_dict",
    "to_json",
    "transforms",
    "validate",
    "write_coco",
]
