"""Command-line interface: ``cocokit COMMAND --help`` shows each command with an example.

Every module of this package that does not start with an underscore holds commands and
is imported here, so a new command is a new module. Errors the library raises on
purpose (:class:`~cocokit.errors.CocoKitError`) print as one line and exit 2; a
traceback means a bug.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from ..errors import CocoKitError
from ._app import app, err_console

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 problems found, 2 error)."""
    try:
        # outside standalone mode click returns the code of typer.Exit instead of raising
        rc = app(args=argv, standalone_mode=False)
    except CocoKitError as e:
        err_console.print(f"error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except SystemExit as e:  # typer.Exit inside commands
        return int(e.code or 0)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except Exception as e:  # click usage errors
        import click

        if isinstance(e, click.exceptions.Exit):
            return int(e.exit_code)
        if isinstance(e, click.ClickException):
            e.show()
            return 2
        if isinstance(e, click.exceptions.Abort):
            return 130
        raise
    return rc if isinstance(rc, int) else 0


def _entry() -> None:
    sys.exit(main())
