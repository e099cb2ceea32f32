"""The one YAML reader: PyYAML's safe loader under limits, for every YAML cocokit reads
(``data.yaml`` of a YOLO dataset, augmentation pipelines).

A YAML file is configuration, small and written by hand or by a tool; it is read with
PyYAML's safe loader (its C parser when PyYAML was built with libyaml), which builds
only plain values (mappings, lists, strings, numbers, booleans, null, dates), under
these limits (docs/limits.md):

* **size**: at most :data:`MAX_BYTES` (4 MiB) per file, checked before parsing. The
  ``data.yaml`` that ``write_yolo`` writes for LVIS' 1,230 categories (with synonyms and
  definitions) is 297 KB and 25,000 values: the limits fit ten times that, and
  ``write_yolo`` refuses, before writing anything, a data.yaml it could not read back;
* **aliases** (``*name``, also in merge keys ``<<: *name``) are refused: an alias
  repeats a value without writing it again, so nine levels of nine aliases in a few
  hundred bytes stand for 9^9 values ("billion laughs"); anchors alone (``&name``) are
  harmless and allowed;
* **nesting**: at most :data:`MAX_DEPTH` (32) levels of lists and mappings;
* **values**: at most :data:`MAX_NODES` (250,000) keys, items and scalars in all (a
  4 MiB file of ``[],`` would otherwise hold 1.4 million and take a gigabyte to parse);
* **duplicate keys** in one mapping are refused (PyYAML keeps the last one silently).

Every error is an :class:`~cocokit.errors.InputError` naming the file and the line
(``data.yaml: line 3: ...``), and quotes at most :data:`SHOWN` characters of a value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.events import AliasEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode

from ..errors import SHOWN, InputError, cut
from ..problems import short_value

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "SHOWN", "check_nesting", "parse_yaml",
           "read_limited", "read_yaml"]

#: Largest YAML file read, in bytes (4 MiB).
MAX_BYTES = 4 << 20
#: Deepest nesting of lists and mappings.
MAX_DEPTH = 32
#: Most values (every key, item and scalar) in one document: parsing costs about 1 kB
#: of memory per value while the document is composed.
MAX_NODES = 250_000
def _cut(text: str) -> str:
    return cut(" ".join(str(text).split()))  # on one line: a parser's message may wrap


class _Refused(Exception):
    """A limit was hit while composing: (line, message)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Limits(Composer):
    """The composer's steps, with aliases, deep nesting and duplicate keys refused.

    Placed first in the loader's bases, its methods run in place of the C parser's own
    composer (which cannot be hooked), on the C parser's events.
    """

    _depth = 0
    _nodes = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            event = self.peek_event()
            raise _Refused(event.start_mark.line + 1, f"more than {MAX_NODES:,} values (keys, "
                           "items and scalars); a configuration file holds fewer")
        if self.check_event(AliasEvent):
            event = self.peek_event()
            raise _Refused(event.start_mark.line + 1,
                           f"YAML alias *{short_value(event.anchor, 40)[1:-1]} refused: "
                           "aliases are not allowed in cocokit's YAML files (they can stand "
                           "for billions of values); write the value out")
        if self.check_event(ScalarEvent):
            return super().compose_node(parent, index)
        self._depth += 1  # a list or a mapping
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()
                raise _Refused(event.start_mark.line + 1,
                               f"nested more than {MAX_DEPTH} levels deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor: Any) -> MappingNode:
        node: MappingNode = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                continue
            line = key.start_mark.line + 1
            first = seen.get((key.tag, key.value))
            if first is not None:
                raise _Refused(line, f"duplicate key {short_value(key.value, 60)} (first on "
                               f"line {first}); a mapping names each key once")
            seen[(key.tag, key.value)] = line
        return node


class _Values(yaml.constructor.SafeConstructor):
    """The safe constructor, with a value it cannot convert (an integer of more than
    4300 digits) reported at its line."""

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:
            raise _Refused(node.start_mark.line + 1, f"cannot read the value "
                           f"{short_value(node.value, 60) if isinstance(node, ScalarNode) else ''}"
                           f": {_cut(str(e))}") from None


try:
    from yaml.cyaml import CParser
except ImportError:  # PyYAML without libyaml: the pure-Python parser

    class _Loader(_Limits, _Values, yaml.SafeLoader):
        """PyYAML's SafeLoader with :class:`_Limits`."""

else:

    class _Loader(_Limits, CParser, _Values,  # type: ignore[no-redef]
                  yaml.resolver.Resolver):
        """libyaml's parser, :class:`_Limits`' composer, the safe constructor."""

        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            _Values.__init__(self)
            yaml.resolver.Resolver.__init__(self)


def parse_yaml(data: bytes | str, file: str | None = None) -> Any:
    """Parse one YAML document (bytes or text) under the limits of this module.

    ``file`` names the source in errors. Returns plain values (dict, list, str, int,
    float, bool, None, dates). Raises :class:`~cocokit.errors.InputError` for a document
    over :data:`MAX_BYTES`, an alias, nesting deeper than :data:`MAX_DEPTH`, a duplicate
    key, or malformed YAML, naming the line.
    """
    size = len(data.encode("utf-8")) if isinstance(data, str) else len(data)
    if size > MAX_BYTES:
        raise InputError(file, None, f"YAML file of {size} bytes refused: larger than the "
                         f"limit of {MAX_BYTES} bytes ({MAX_BYTES >> 20} MiB)")
    loader = _Loader(data)
    try:
        return loader.get_single_data()
    except _Refused as e:
        raise InputError(file, f"line {e.line}", e.message) from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
        problem = e.problem or e.context or "cannot be read"
        raise InputError(file, where, f"malformed YAML: {_cut(problem)}") from None
    except yaml.YAMLError as e:  # reader errors: bad bytes, control characters
        raise InputError(file, None, f"malformed YAML: {_cut(str(e))}") from None
    finally:
        loader.dispose()


def read_limited(path: str | os.PathLike[str], what: str = "YAML file") -> bytes:
    """The bytes of a configuration file of at most :data:`MAX_BYTES` (no more than
    that + 1 bytes are ever read); ``what`` names the file in messages ("pipeline
    file", "data.yaml")."""
    name = os.fspath(path)
    try:
        with Path(name).open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(name, None, f"{what} not found") from None
    except IsADirectoryError:
        raise InputError(name, None, f"expected a {what}, got a folder") from None
    except OSError as e:
        raise InputError(name, None, f"cannot read the {what}: {e.strerror or e}") from None
    if len(data) > MAX_BYTES:
        raise InputError(name, None, f"{what} refused: larger than the limit of "
                         f"{MAX_BYTES} bytes ({MAX_BYTES >> 20} MiB)")
    return data


def read_yaml(path: str | os.PathLike[str], what: str = "YAML file") -> Any:
    """Read and parse a YAML file under the limits of this module (see
    :func:`read_limited` and :func:`parse_yaml`)."""
    return parse_yaml(read_limited(path, what), os.fspath(path))


def check_nesting(value: Any, file: str | None = None) -> None:
    """Refuse a parsed document (from JSON, say) nested deeper than :data:`MAX_DEPTH`,
    the limit :func:`parse_yaml` applies while parsing."""
    level = [value]
    for depth in range(MAX_DEPTH + 1):
        level = [v for item in level if isinstance(item, (list, dict))
                 for v in (item.values() if isinstance(item, dict) else item)]
        if not level:
            return
        if depth == MAX_DEPTH - 1 and any(isinstance(v, (list, dict)) for v in level):
            break
    raise InputError(file, None, f"nested more than {MAX_DEPTH} levels deep")
