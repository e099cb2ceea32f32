"""Readers and writers, one module per format."""

from .coco import ExportSummary, load, read_coco, to_dict, to_json, write_coco

__all__ = ["ExportSummary", "load", "read_coco", "to_dict", "to_json", "write_coco"]
