"""What a conversion could not carry, and what was done instead.

Every format reader and writer returns a :class:`Losses`: one :class:`Loss` per kind of
change (a stable ``kind`` code, how many records, and a plural noun phrase saying what
happened). The CLI prints :meth:`Losses.lines` and puts :meth:`Losses.to_json` in its
``--json`` answer, so the words are the same in both places::

    >>> losses = Losses()
    >>> losses.add("polygon-as-box", 4210, "polygons written as boxes")
    >>> losses.add("polygon-as-box", 5, "polygons written as boxes")
    >>> losses.lines()
    ['4,215 polygons written as boxes']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import CocoKitError

__all__ = ["Loss", "Losses", "LossyConversion", "refuse_lossy"]


@dataclass(frozen=True)
class Loss:
    """One kind of change: ``kind`` a stable code (``"polygon-as-box"``), ``count`` the
    records it touched, ``message`` a plural noun phrase (``"polygons written as boxes"``)."""

    kind: str
    count: int
    message: str

    def line(self) -> str:
        """``"4,210 polygons written as boxes"``."""
        return f"{self.count:,} {self.message}"


class Losses:
    """The losses of one conversion, in the order they were first added; the same kind
    added twice is summed (its first message kept)."""

    def __init__(self) -> None:
        self.items: list[Loss] = []

    def add(self, kind: str, count: int, message: str) -> None:
        """Add ``count`` records of ``kind``; a count of 0 is ignored."""
        count = int(count)
        if count <= 0:
            return
        for i, item in enumerate(self.items):
            if item.kind == kind:
                self.items[i] = Loss(kind, item.count + count, item.message)
                return
        self.items.append(Loss(kind, count, message))

    def extend(self, other: Losses) -> None:
        """Add every loss of ``other``."""
        for item in other:
            self.add(item.kind, item.count, item.message)

    def __bool__(self) -> bool:
        return bool(self.items)

    def __iter__(self) -> Iterator[Loss]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return f"Losses({self.lines()!r})"

    def kinds(self) -> dict[str, int]:
        """kind -> count."""
        return {item.kind: item.count for item in self.items}

    def lines(self) -> list[str]:
        """One line per loss: ``["4,210 polygons written as boxes", ...]``."""
        return [item.line() for item in self.items]

    def to_json(self) -> list[dict[str, Any]]:
        """``[{"kind", "count", "message"}, ...]`` for ``--json`` answers."""
        return [{"kind": i.kind, "count": i.count, "message": i.message} for i in self.items]


class LossyConversion(CocoKitError):
    """``strict`` refused a conversion that would lose something; nothing was written."""

    def __init__(self, target: str, losses: Losses) -> None:
        self.target = target
        self.losses = losses
        super().__init__(f"{target}: refusing a lossy conversion (strict; nothing was "
                         f"written): {'; '.join(losses.lines())}")


def refuse_lossy(losses: Losses, target: str, strict: bool) -> None:
    """Raise :class:`LossyConversion` when ``strict`` and ``losses`` is not empty; the
    writers call it before they write anything."""
    if strict and losses:
        raise LossyConversion(target, losses)
