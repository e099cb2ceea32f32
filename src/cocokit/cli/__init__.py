"""Command-line interface: ``cocokit COMMAND --help`` shows each command with an example.

Every module of this package that does not start with an underscore holds commands and
is imported here, so a new command is a new module.

Exit codes: 0 done, 1 problems found (``validate``), 2 an error; interrupted by a
signal: 128 + its number (130 SIGINT/Ctrl-C, 143 SIGTERM, 129 SIGHUP). On those three
signals the command stops cleanly (:func:`signals_handled`): its temporary files and
staging folders are removed, its worker processes stopped, every output left as it was,
and one line says so (``interrupted (SIGTERM): nothing written to out.json``).
Errors the library raises on purpose (:class:`~cocokit.errors.CocoKitError`) and usage
mistakes (a mistyped command, an unknown option, a missing or malformed value) print as
one ``error:`` line, with the nearest valid command, option or value when there is one,
and a line saying where the help is; a traceback means a bug. ``cocokit`` alone prints
the help and exits 0; ``cocokit --version`` prints the version.

Only typer's public API is used: its usage errors are recognised as the family of
:class:`typer.BadParameter` (click's exceptions in typer < 0.26, typer's own after), so
the CLI works whether or not click is installed.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
import pkgutil
import re
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import Any

import typer
import typer.main

from ..errors import CocoKitError, Interrupted, LeftoversRemoved, OptionError, shown
from ..io.atomic import STOP_SIGNALS
from ._app import app, print_error

# commands are listed in the order their modules are imported: alphabetical, except
# that slice follows augment (the two commands that write new images)
_FIRST = ("augment", "slice")
for _name in [*_FIRST, *sorted(m.name for m in pkgutil.iter_modules(__path__))]:
    if not _name.startswith("_"):
        importlib.import_module(f"{__name__}.{_name}")

__all__ = ["app", "flag_message", "interrupted_line", "main", "signals_handled", "usage_lines"]


def _reflowed(doc: str) -> str:
    """A command's docstring as help text: each paragraph on one line, for the terminal
    to wrap (typer's rich help keeps every newline of the source as a line break)."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _reflow_help(group: typer.Typer) -> None:
    for info in group.registered_commands:
        if info.help is None and info.callback is not None and info.callback.__doc__:
            info.help = _reflowed(info.callback.__doc__)
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _reflow_help(sub.typer_instance)


_reflow_help(app)

USAGE = 2
INTERRUPTED = 130


def _usage_error_class() -> type[BaseException]:
    """The root of typer's usage errors: the most general class above typer.BadParameter
    that still formats a message (click.ClickException, or typer.TyperException)."""
    root: type[BaseException] = typer.BadParameter
    for cls in typer.BadParameter.__mro__:
        if isinstance(cls, type) and issubclass(cls, BaseException) and hasattr(
            cls, "format_message"
        ):
            root = cls
    return root


UsageErrorBase = _usage_error_class()


@contextlib.contextmanager
def signals_handled() -> Iterator[list[Interrupted]]:
    """While the block runs, SIGINT, SIGTERM and SIGHUP raise
    :class:`~cocokit.errors.Interrupted` in the main thread, so the cleanup written for
    Ctrl-C runs for each of them (temporary files, staging folders, worker pools). The
    first signal is the one acted on: later ones are ignored while the cleanup runs.
    Yields a list that holds the exception raised, if any. The previous handlers are
    put back at the end. Outside the main thread (where Python cannot set handlers)
    nothing changes."""
    caught: list[Interrupted] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def handler(signum: int, frame: FrameType | None) -> None:
        for s in STOP_SIGNALS:  # the cleanup must not be cut short by a second signal
            signal.signal(s, signal.SIG_IGN)
        e = Interrupted(signum)
        caught.append(e)
        raise e

    for s in STOP_SIGNALS:
        signal.signal(s, handler)
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def interrupted_line(e: Interrupted | None) -> str:
    """The one line printed for an interrupted command: the signal, and the outputs
    that were left as they were."""
    if e is None:
        return "interrupted"
    head = f"interrupted ({e.name})"
    if e.untouched:
        names = ", ".join(dict.fromkeys(e.untouched))
        return f"{head}: nothing written to {names}"
    return head


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 problems found, 2 error, 128 + the
    signal's number when interrupted: 130 SIGINT, 143 SIGTERM, 129 SIGHUP)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        args = ["--help"]  # `cocokit` alone: the help, exit 0
    with signals_handled() as caught, warnings.catch_warnings():
        warnings.simplefilter("always", LeftoversRemoved)
        shown = warnings.showwarning

        def show(message: Warning | str, category: type[Warning], filename: str,
                 lineno: int, file: Any = None, line: str | None = None) -> None:
            if issubclass(category, LeftoversRemoved):  # one line, as a note
                print_error(f"note: {message}")
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            return _run(args, caught)
        except KeyboardInterrupt as e:  # raised while an error was being reported
            got = e if isinstance(e, Interrupted) else (caught[0] if caught else None)
            print_error(interrupted_line(got))
            return got.exit_code if got is not None else INTERRUPTED


def _run(args: list[str], caught: list[Interrupted]) -> int:
    try:
        # outside standalone mode typer returns the code of typer.Exit instead of raising
        rc = app(args=args, prog_name="cocokit", standalone_mode=False)
    except CocoKitError as e:
        print_error(f"error: {flag_message(e, args)}")
        return USAGE
    except typer.Exit as e:
        rc = int(getattr(e, "exit_code", 0) or 0)
        if rc != INTERRUPTED:
            return rc
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else USAGE
    except (KeyboardInterrupt, typer.Abort) as e:
        got = e if isinstance(e, Interrupted) else (caught[0] if caught else None)
        print_error(interrupted_line(got))
        return got.exit_code if got is not None else INTERRUPTED
    except UsageErrorBase as e:
        for line in usage_lines(e, args):
            print_error(line)
        return USAGE
    if rc == INTERRUPTED:  # typer >= 0.26 turns Ctrl-C into Exit(130) and returns it
        got = caught[0] if caught else None
        print_error(interrupted_line(got))
        return got.exit_code if got is not None else INTERRUPTED
    return rc if isinstance(rc, int) else 0


def _entry() -> None:
    sys.exit(main())


# -- messages ---------------------------------------------------------------------------


def _typed(opt: str, args: Sequence[str]) -> bool:
    """Whether ``opt`` was typed in ``args`` (``--opt``, ``--opt=V``; ``-o``, ``-oV``)."""
    if opt.startswith("--"):
        return any(a == opt or a.startswith(opt + "=") for a in args)
    return any(a == opt or (a.startswith(opt) and not a.startswith("--")) for a in args)


def _flags(args: Sequence[str]) -> dict[str, str]:
    """Python parameter name -> its flag as typed in ``args`` (``-d`` or
    ``--drop-category``), else the long one, for the command named in ``args``."""
    group = typer.main.get_command(app)
    commands = getattr(group, "commands", {}) or {}
    name = next((a for a in args if a in commands), None)
    flags: dict[str, str] = {}
    for param in getattr(commands.get(name), "params", []) if name else []:
        opts = [o for o in getattr(param, "opts", []) if o.startswith("-")]
        longs = [o for o in opts if o.startswith("--")] or opts
        typed = [o for o in opts if _typed(o, args)]
        if longs and getattr(param, "name", None):
            flags[param.name] = (typed or longs)[0]
    return flags


def flag_message(e: CocoKitError, args: Sequence[str] = ()) -> str:
    """The one-line message of a library error; an OptionError names the flags as typed
    (``--every/--fraction/--count``, not ``every/fraction/count``; ``-d`` when ``-d`` was
    typed), an argument as it is (``INPUTS``) and leaves out a value that was not given
    (no "got None")."""
    if not isinstance(e, OptionError):
        return str(e)
    flags = _flags(args) if args else {}
    names = [
        o if o.startswith("-") or o.isupper() else flags.get(o, "--" + o.replace("_", "-"))
        for o in str(e.option).split("/")
    ]
    got = "" if e.value is None else f", got {shown(e.value)}"
    return f"{'/'.join(names)}: expected {e.expected}{got}"


def _nearest(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> str | None:
    """The candidate closest to ``word`` (leading dashes aside), if any is close."""
    bare = {c.lstrip("-"): c for c in candidates}
    found = difflib.get_close_matches(word.lstrip("-"), list(bare), n=1, cutoff=cutoff)
    return bare[found[0]] if found else None


def _command_names(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    lister = getattr(command, "list_commands", None)
    return list(lister(ctx)) if callable(lister) else []


def _option_names(ctx: Any) -> list[str]:
    command = getattr(ctx, "command", None)
    names: list[str] = []
    for param in getattr(command, "params", []) or []:
        for opt in list(getattr(param, "opts", [])) + list(getattr(param, "secondary_opts", [])):
            if opt.startswith("-"):
                names.append(opt)
    return names + list(getattr(ctx, "help_option_names", []) or [])


def _typed_value(flag: str, args: Sequence[str]) -> str | None:
    """The value given after ``flag`` (or as ``flag=value``) on the command line."""
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a[len(flag) + 1 :]
    return None


def usage_lines(e: BaseException, args: Sequence[str] = ()) -> list[str]:
    """At most two lines for a usage mistake: what is wrong (with the nearest valid
    command, option or value), then where the help is."""
    ctx = getattr(e, "ctx", None)
    fmt = getattr(e, "format_message", None)
    message = str(fmt() if callable(fmt) else e).strip()
    message = message.replace("Value error, ", "").replace("\n", " ")
    message = re.sub(r"(Did you mean [^?]*\?)(\s*\1)+", r"\1", message)  # typer 0.20 says it twice
    typed_opt = re.search(r"No such option:? '?(-[\w-]+)", message)
    listed = re.search(r"\(?'?\(?(Possible options:|Did you mean one of:)", message)
    if listed:  # click lists the close options alphabetically: name the closest one
        at = listed.start()
        options = re.findall(r"-{1,2}[\w-]+", message[listed.end() :])
        near = (_nearest(typed_opt.group(1), options, 0) if typed_opt else None) or options[0]
        message = f"{message[:at].rstrip(' .')}. Did you mean '{near}'?"
    bad = re.match(r"Invalid value for '(-[\w-]+)'[^:]*: (.*)", message)
    if bad and (typed := _typed_value(bad.group(1), args)) is not None and typed not in message:
        message = f"{message.rstrip('.')} (got {typed!r})"
    suggestion = ""
    if "did you mean" not in message.lower() and "possible options" not in message.lower():
        m = re.search(r"No such command '([^']*)'", message)
        opt = re.search(r"No such option:? '?(-[\w-]+)", message)
        if m and (near := _nearest(m.group(1), _command_names(ctx))):
            suggestion = f" Did you mean '{near}'?"
        elif opt and len(opt.group(1)) > 2 and (near := _nearest(opt.group(1),
                                                                   _option_names(ctx))):
            suggestion = f" Did you mean '{near}'?"
        else:
            param = getattr(e, "param", None)
            choices = getattr(getattr(param, "type", None), "choices", None)
            value = re.search(r"'([^']*)' is not one of", message)
            if choices and value and (near := _nearest(value.group(1), [str(c) for c in choices])):
                suggestion = f" Did you mean '{near}'?"
    if suggestion and not message.endswith((".", "?")):
        message += "."
    lines = [f"error: {message}{suggestion}"]
    path = getattr(ctx, "command_path", None)
    if path:
        lines.append(f"Try '{path} --help' for help.")
    return lines
