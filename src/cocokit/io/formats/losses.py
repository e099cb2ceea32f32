"""What a conversion could not carry: a list of counted losses (minimal, see formats-a)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Loss", "Losses"]


@dataclass(frozen=True)
class Loss:
    """One kind of loss: a stable ``kind`` code, a ``count`` and a plural noun phrase."""

    kind: str
    count: int
    message: str


class Losses:
    """Losses of one conversion; the same kind added twice is summed, a count 0 ignored."""

    def __init__(self) -> None:
        self.items: list[Loss] = []

    def add(self, kind: str, count: int, message: str) -> None:
        """Count ``count`` more of ``kind`` (nothing when ``count`` is 0)."""
        if not count:
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

    def lines(self) -> list[str]:
        """One line per loss: ``"4,210 polygons written as boxes"``."""
        return [f"{item.count:,} {item.message}" for item in self.items]

    def to_json(self) -> list[dict[str, Any]]:
        """The losses as plain records ``{"kind", "count", "message"}``."""
        return [{"kind": i.kind, "count": i.count, "message": i.message} for i in self.items]
