"""Dataset quality beyond the JSON: ``check`` (missing, resized and duplicate images,
split leakage, suspicious labels), ``repair`` (deterministic, named fixes, each change
reported) and ``diff`` (what changed between two versions of a dataset).

See ``docs/quality.md``.
"""

from __future__ import annotations

from .check import CODES, CheckReport, Finding, Thresholds, check_dataset
from .diff import DatasetDiff, diff_datasets
from .repair import DEFAULT_FIXES, FIXES, Change, Repair, repair_dataset

__all__ = [
    "CODES",
    "DEFAULT_FIXES",
    "FIXES",
    "Change",
    "CheckReport",
    "DatasetDiff",
    "Finding",
    "Repair",
    "Thresholds",
    "check_dataset",
    "diff_datasets",
    "repair_dataset",
]
