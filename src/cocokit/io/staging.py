"""Write a folder of outputs so that a failed run leaves it as it was.

``slice`` and ``augment`` write many files into an output folder. Through
:func:`staged` they write them into a hidden staging folder beside the output
(``.<name>.partial-<pid>-XXXXXXXX``, on the same filesystem, so moving is a rename) and move
them into place only when the work has succeeded:

* the output folder did not exist: the staging folder is renamed to it (one step);
* it exists: each staged file is renamed into it (sub-folders created as needed; a
  file already there is replaced). Top-level entries named in ``replace`` (augment's
  ``images/``) replace the old entry as a whole instead of being merged into it.

On any error, ``KeyboardInterrupt`` (and the CLI's
:class:`~cocokit.errors.Interrupted`, raised on SIGTERM and SIGHUP) included, the
staging folder is removed and the output folder is untouched. An
:class:`~cocokit.errors.OutputError` raised while staging names the file where it
will be (under the output folder), not its place in the staging folder.

The staging folder's name holds the process id of its run
(``.<name>.partial-<pid>-<random>``): a run that finds one beside (or inside) its
output whose process is gone (a run killed by SIGKILL, which no cleanup survives)
removes it and warns once (:func:`cocokit.io.atomic.remove_leftovers`); it touches
nothing else. When nothing was written, nothing is created: an empty
staging folder is removed and a missing output folder stays missing.

Object stores (``s3://``, ``gs://``, ``memory://``) cannot rename a folder in one step:
there the files are written directly under the output and the caller
:meth:`~Staging.record`\\ s what it writes (files or folders); on failure those are
removed. A ``file://`` URL is a local path.

>>> import tempfile, pathlib
>>> out = pathlib.Path(tempfile.mkdtemp()) / "tiles"
>>> with staged(out) as stage:
...     _ = (pathlib.Path(stage.path) / "a.txt").write_text("a")
>>> sorted(p.name for p in out.iterdir())
['a.txt']
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import Interrupted, OptionError, OutputError
from . import files
from .atomic import atomic_files, output_error, remove_leftovers, signals_deferred

__all__ = ["Staging", "outside_set", "staged"]


class Staging:
    """A staged output folder: write under :attr:`path`, then :meth:`commit` or
    :meth:`discard` (:func:`staged` does one of them). ``option`` names the output in
    error messages."""

    def __init__(self, target: str | os.PathLike[str], *, replace: Iterable[str] = (),
                 option: str = "out_dir") -> None:
        self.target = str(target) if files.is_url(target) else os.fspath(target)
        self.replace = frozenset(replace)
        self._recorded: list[Iterable[str]] = []
        self._done = False
        local = files.local_path(self.target)
        self._local = Path(os.path.abspath(local)) if local is not None else None
        self._dir: Path | None = None
        if self._local is not None:
            if self._local.exists() and not self._local.is_dir():
                raise OptionError(option, self.target, "a folder (this is a file)")
            self._dir = self._make_dir(self._local, option)

    @property
    def local(self) -> bool:
        """Whether files are staged (a local output); False: written directly (a URL)."""
        return self._dir is not None

    @property
    def path(self) -> str:
        """Where to write now: the staging folder, or the output itself for a URL."""
        return str(self._dir) if self._dir is not None else self.target

    def place(self, path: str | os.PathLike[str]) -> Path:
        """Where to write the local file ``path`` now: its place in the staging folder
        when it lies inside the staged output folder (moved with the rest on commit),
        else ``path`` itself."""
        out = files.local_path(self.target)
        if self._dir is None or out is None:
            return Path(path)
        try:
            rel = Path(os.path.abspath(path)).relative_to(os.path.abspath(out))
        except ValueError:
            return Path(path)
        return self._dir / rel

    def record(self, locations: Iterable[str]) -> None:
        """Locations written (or maybe written) under a URL output, removed on failure
        (no-op for a local output, whose staging folder goes as a whole). ``locations``
        may be lazy: it is only iterated by :meth:`discard`."""
        if self._dir is None:
            self._recorded.append(locations)

    def shown(self, path: str | os.PathLike[str]) -> str:
        """Where the file ``path`` written in the staging folder goes on commit (for
        messages); any other path as it is."""
        text = os.fspath(path)
        if self._dir is None or self._local is None:
            return text
        try:
            rel = Path(os.path.abspath(text)).relative_to(self._dir)
        except ValueError:
            return text
        return os.fspath(self._local / rel) if rel.parts else os.fspath(self._local)

    @staticmethod
    def _make_dir(target: Path, option: str) -> Path:
        """The staging folder: beside ``target`` in its nearest existing ancestor, or
        inside ``target`` when that is on another filesystem or cannot be written.
        Leftover staging folders of killed runs there are removed first."""
        name = target.name or "output"
        base = target.parent
        while not base.exists() and base != base.parent:
            base = base.parent
        remove_leftovers(base, rf"\.{re.escape(name)}\.partial-(\d+)-[0-9a-f]{{8}}",
                         "staging folder(s)")
        if target.is_dir():
            remove_leftovers(target, r"\.partial-(\d+)-[0-9a-f]{8}", "staging folder(s)")
        inside = target.is_dir() and _device(target) != _device(base)
        if not inside:
            try:
                return _new_dir(base, f".{name}.partial-")
            except OSError as e:
                if not target.is_dir():
                    raise output_error(target, e) from None
        try:
            return _new_dir(target, ".partial-")
        except OSError as e:
            raise output_error(target, e) from None

    def commit(self) -> None:
        """Move the staged files into the output folder (see the module docstring)."""
        if self._done:
            return
        self._done = True
        self._recorded.clear()
        staging, target = self._dir, self._local
        if staging is None or target is None:
            return
        try:
            if not _has_files(staging):
                return
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.rename(staging, target)
                    return
                except OSError:  # made meanwhile, or another filesystem: move file by file
                    target.mkdir(exist_ok=True)
            # whole replacements first, then the rest (files after their folders)
            entries = sorted(staging.iterdir(),
                             key=lambda e: (e.name not in self.replace, not e.is_dir(), e.name))
            for entry in entries:
                dest = target / entry.name
                if entry.name in self.replace and dest.exists():
                    _replace_whole(entry, dest, staging)
                else:
                    _merge(entry, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self) -> None:
        """Remove what this run wrote: the staging folder, or the recorded locations."""
        if self._done:
            return
        self._done = True
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            return
        # cleaning up must not hide the error that made it necessary
        for group in self._recorded:
            with contextlib.suppress(Exception):
                for location in group:
                    with contextlib.suppress(Exception):
                        files.remove(location)
        self._recorded.clear()


def outside_set(target: str | os.PathLike[str],
                path: str | os.PathLike[str] | None) -> contextlib.AbstractContextManager[None]:
    """Around :func:`staged` ``target``: a set of files
    (:func:`cocokit.io.atomic.atomic_files`) when ``path`` is a local file outside the
    local folder ``target`` (slice's ``--coco-output`` elsewhere), so that it is renamed
    only after the staged folder is committed; nothing otherwise (a file inside the
    folder moves with it)."""
    local = files.local_path(path) if path is not None else None
    out = files.local_path(target)
    if local is None or out is None:
        return contextlib.nullcontext()
    try:
        Path(os.path.abspath(local)).relative_to(os.path.abspath(out))
    except ValueError:
        return atomic_files()
    return contextlib.nullcontext()


@contextlib.contextmanager
def staged(target: str | os.PathLike[str], *, replace: Iterable[str] = (),
           option: str = "out_dir") -> Iterator[Staging]:
    """Stage the output folder ``target``: committed when the block ends normally,
    discarded when it raises (anything, ``KeyboardInterrupt`` included)."""
    stage: Staging | None = None
    try:
        with signals_deferred():  # made and known to the cleanup below in one step
            stage = Staging(target, replace=replace, option=option)
        yield stage
    except OutputError as e:
        if stage is None:
            raise
        stage.discard()
        shown = stage.shown(e.file) if e.file else e.file
        if shown != e.file:
            raise OutputError(shown or stage.target, e.message) from None
        raise
    except BaseException as e:
        if stage is not None:
            stage.discard()
        if isinstance(e, Interrupted):
            e.untouched.append(os.fspath(target))
        raise
    with signals_deferred():  # a signal never stops a commit half way
        stage.commit()


def _new_dir(parent: Path, prefix: str) -> Path:
    """A new folder ``prefix`` + random letters in ``parent``, with the permissions any
    new folder gets (``mkdir`` and the umask: it may become the output folder itself,
    which ``tempfile.mkdtemp``'s owner-only mode would make private)."""
    for _ in range(100):
        path = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(errno.EEXIST, "no free name for a staging folder", str(parent))


def _device(path: Path) -> int:
    try:
        return os.stat(path).st_dev
    except OSError:
        return -1


def _has_files(folder: Path) -> bool:
    return any(names for _, _, names in os.walk(folder))


def _move(src: Path, dest: Path) -> None:
    """Rename ``src`` over ``dest``; across filesystems: copy beside, then rename."""
    try:
        os.replace(src, dest)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            shutil.copy2(src, tmp)
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _merge(src: Path, dest: Path) -> None:
    """Move the file or folder ``src`` to ``dest``, merging folders file by file."""
    if src.is_dir() and not src.is_symlink():
        if not dest.exists():
            try:
                os.rename(src, dest)
                return
            except OSError:
                dest.mkdir(parents=True, exist_ok=True)
        for entry in sorted(src.iterdir()):
            _merge(entry, dest / entry.name)
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    _move(src, dest)


def _replace_whole(src: Path, dest: Path, staging: Path) -> None:
    """Put ``src`` where ``dest`` is, the old ``dest`` set aside and then removed."""
    old = staging / f".old-{dest.name}"
    os.rename(dest, old)
    try:
        os.rename(src, dest)
    except BaseException:
        os.rename(old, dest)
        raise
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)
