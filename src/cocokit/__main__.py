"""``python -m cocokit`` runs the command-line interface."""

from .cli import _entry

_entry()
