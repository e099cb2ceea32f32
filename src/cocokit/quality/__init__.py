"""Dataset quality beyond the JSON: ``check`` (missing, resized and duplicate images,
split leakage, suspicious labels), ``repair`` (deterministic, named fixes, each change
reported) and ``diff`` (what changed between two versions of a dataset).

See ``docs/quality.md``.
"""

from __future__ import annotations

from .check import CODES, CheckReport, Finding, Thresholds, check_dataset

__all__ = ["CODES", "CheckReport", "Finding", "Thresholds", "check_dataset"]
