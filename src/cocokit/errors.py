"""Errors raised by cocokit.

Every error cocokit raises on purpose derives from :class:`CocoKitError`, so a caller
(and the CLI) can catch that one class. The tree::

    CocoKitError
    ├── InputError            a file or document cannot be read as COCO: where and why
    │   ├── JSONSyntaxError   malformed JSON, with line and column
    │   ├── BadImagesError    image files that could not be read or written, each named
    │   └── OutputError       an output cannot be written (read-only, no permission, disk
    │                         full, not a regular file...); also an OSError
    ├── ValidationFailed      validate() found errors and the caller asked for strictness
    ├── IntegrityError        an export would break integrity or write an invalid record;
    │                         nothing was written
    ├── OptionError           an option or argument value is not allowed
    └── MissingDependency     an optional extra is needed for this call

    KeyboardInterrupt
    └── Interrupted           a signal (SIGINT, SIGTERM, SIGHUP) stopped the run; not a
                              CocoKitError, so ``except Exception`` never swallows it

Messages are built from the fields, so the fields are the place to look in code and
the message is the place to look for a person.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from typing import Any, Protocol

__all__ = [
    "SHOWN",
    "BadImagesError",
    "CocoKitError",
    "InputError",
    "IntegrityError",
    "Interrupted",
    "JSONSyntaxError",
    "LeftoversRemoved",
    "MissingDependency",
    "OptionError",
    "OutputError",
    "ValidationFailed",
    "cut",
    "shown",
]


class CocoKitError(Exception):
    """Root of every error cocokit raises on purpose."""


class InputError(CocoKitError):
    """A file or document cannot be read as COCO.

    ``file`` names the file (or None for an in-memory document), ``path`` the place in
    the JSON (``annotations[1834].bbox``), ``message`` what was expected and found.
    """

    def __init__(self, file: str | None, path: str | None, message: str) -> None:
        self.file = file
        self.path = path
        self.message = message
        where = ": ".join(p for p in (file, path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class JSONSyntaxError(InputError):
    """Malformed JSON; ``line`` and ``column`` are 1-based."""

    def __init__(self, file: str | None, line: int, column: int, message: str) -> None:
        self.line = line
        self.column = column
        super().__init__(file, f"line {line}, column {column}", f"malformed JSON: {message}")


class BadImagesError(InputError):
    """Some images failed (missing, unreadable, not writable) while the others were done.

    ``failures`` lists ``(file, reason)`` for every failed image, in image order; the
    message names the first 20. Nothing that lists the images was written: pass
    ``skip_bad_images=True`` (``--skip-bad-images``) to leave them out instead.
    """

    SHOWN = 20

    def __init__(self, failures: Sequence[tuple[str, str]], what: str = "processed") -> None:
        self.failures = list(failures)
        self.what = what
        n = len(self.failures)
        lines = "\n  ".join(f"{f}: {r}" for f, r in self.failures[: self.SHOWN])
        more = f"\n  ... and {n - self.SHOWN} more" if n > self.SHOWN else ""
        super().__init__(
            None, None,
            f"{n} image(s) could not be {what}; no COCO file was written (pass "
            f"skip_bad_images=True or --skip-bad-images to leave them out)\n  {lines}{more}",
        )
        self.file = self.failures[0][0] if self.failures else None

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failures, self.what))


class _Found(Protocol):
    @property
    def path(self) -> str: ...

    @property
    def message(self) -> str: ...


class _Report(Protocol):
    """What :class:`ValidationFailed` reads of a :class:`cocokit.problems.Report` (the
    report sits a floor above the errors, so it is not imported here)."""

    @property
    def source(self) -> str: ...

    @property
    def errors(self) -> Sequence[_Found]: ...


class ValidationFailed(CocoKitError):
    """Validation found errors; ``report`` holds every problem."""

    def __init__(self, report: _Report) -> None:
        self.report = report
        errors = report.errors
        first = errors[0] if errors else None
        head = f"{report.source}: {len(errors)} validation error(s)"
        if first is not None:
            head += f"; first: {first.path or '<document>'}: {first.message}"
        super().__init__(head)


class IntegrityError(CocoKitError):
    """An export would break referential integrity or write an invalid record (one that
    validate reports as an error); nothing was written.

    ``problems`` lists every problem found (as ``path: message`` strings, the code of
    an invalid record in brackets at the end); the message shows the first 20 and the
    count.
    """

    SHOWN = 20

    def __init__(self, problems: Sequence[str], target: str | None = None) -> None:
        self.problems = list(problems)
        self.target = target
        n = len(self.problems)
        shown = "\n  ".join(self.problems[: self.SHOWN])
        more = f"\n  ... and {n - self.SHOWN} more" if n > self.SHOWN else ""
        dest = f" to {target}" if target else ""
        super().__init__(
            f"refusing to export{dest}: {n} problem(s); nothing was written"
            f"\n  {shown}{more}"
        )


class OutputError(InputError, OSError):
    """An output cannot be written: ``file`` names it, ``message`` says why (read-only
    file system, permission denied, no space left, the target is a FIFO...).

    It is an :class:`InputError` (a file that cannot be used as asked) and an
    :class:`OSError`, so code catching either keeps working.
    """

    def __init__(self, file: str, message: str) -> None:
        InputError.__init__(self, file, None, message)

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.file, self.message))


#: Most characters of a value (or of a parser's message) an error quotes: a value read
#: from a file may be long.
SHOWN = 200


def cut(text: str) -> str:
    """``text`` cut to :data:`SHOWN` characters (``...`` at the end when cut)."""
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def shown(value: Any) -> str:
    """``repr(value)`` cut to :data:`SHOWN` characters, as errors quote a value."""
    return cut(repr(value))


class OptionError(CocoKitError):
    """An option or argument value is not allowed."""

    def __init__(self, option: str, value: Any, expected: str) -> None:
        self.option = option
        self.value = value
        self.expected = expected
        super().__init__(f"{option}: expected {expected}, got {shown(value)}")


class MissingDependency(CocoKitError):
    """An optional dependency is needed; the message names the extra to install."""

    def __init__(self, module: str, extra: str) -> None:
        self.module = module
        self.extra = extra
        super().__init__(
            f"this needs the optional package {module!r}: pip install 'cocokit[{extra}]'"
        )


class Interrupted(KeyboardInterrupt):
    """A signal stopped the run (the CLI raises it from its SIGINT, SIGTERM and SIGHUP
    handlers). It is a :class:`KeyboardInterrupt`, so every cleanup written for Ctrl-C
    (``finally``, the temporary files of :mod:`cocokit.io.atomic`, the staging folders
    of :mod:`cocokit.io.staging`, the worker pool of :mod:`cocokit.engine`) runs for it.

    ``signum`` is the signal; ``untouched`` collects the outputs that the cleanup left as
    they were (filled in while the exception unwinds), for the one line the CLI prints.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        self.untouched: list[str] = []
        super().__init__(self.name)

    @property
    def name(self) -> str:
        """The signal's name (``SIGTERM``)."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """The shell's code for a process ended by this signal: 128 + its number."""
        return 128 + self.signum

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.signum,))


class LeftoversRemoved(UserWarning):
    """A warning: temporary files or staging folders that a killed run left beside an
    output (their writer's process is gone) were removed. The CLI prints it as one
    ``note:`` line."""
