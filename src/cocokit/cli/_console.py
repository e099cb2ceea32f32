"""The consoles of the command line: colour and wrapping only on a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console


def make_console(stderr: bool = False, **kwargs: Any) -> Console:
    """A rich Console that draws colour and wraps lines only on a terminal: off one (a
    pipe, a CI log) lines are never broken, so a path or a JSON path stays whole for
    grep, and no escape codes are written (rich also honours NO_COLOR and FORCE_COLOR)."""
    probe = Console(stderr=stderr, **kwargs)
    if probe.is_terminal:
        return probe
    kwargs.setdefault("width", OFF_TERMINAL_WIDTH)
    return Console(stderr=stderr, soft_wrap=True, no_color=True, highlight=False, **kwargs)


# wide enough that tables are never squeezed off a terminal; text is never wrapped there
OFF_TERMINAL_WIDTH = 1 << 12

console = make_console()
err_console = make_console(stderr=True)


def print_error(line: str) -> None:
    """One message on stderr as it is: no markup, no highlighting, never wrapped."""
    err_console.print(line, markup=False, highlight=False, soft_wrap=True)
