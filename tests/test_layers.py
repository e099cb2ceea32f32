"""Imports point one way: down the floors of the package (STYLE.md, "The next house").

Every module of ``src/cocokit`` is parsed with :mod:`ast` (module-level and
function-level imports; ``if TYPE_CHECKING:`` blocks are ignored, as they never run).
Three rules, no exceptions list — code that breaks one is fixed, not excused:

1. a module imports only modules of its own floor or a lower one (:data:`FLOORS`);
2. no import circle, on one floor or across floors;
3. no module imports another file's ``_private`` name (what is shared moves down a
   floor with a public name), and a ``_private`` module is imported only from inside
   its own package.

A failure prints each offending import as ``file:line -> target``.
"""

from __future__ import annotations

import ast
import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "cocokit"

# Bottom to top. ``pkg.*`` is every module below ``pkg`` (``pkg`` itself is listed on its
# own). Names of modules that do not exist yet are fine: the table says where they go.
FLOORS: list[tuple[str, list[str]]] = [
    ("base", ["cocokit.errors", "cocokit.problems", "cocokit._types"]),
    ("core", ["cocokit.rawjson", "cocokit.geometry", "cocokit.dataset", "cocokit.clipping",
              "cocokit.engine"]),
    ("codec", ["cocokit.contract"]),
    ("io", ["cocokit.io", "cocokit.io.*", "cocokit.builder"]),
    ("operations", [
        "cocokit.validate", "cocokit.stats", "cocokit.summary", "cocokit.report",
        "cocokit.draw", "cocokit.slicing", "cocokit.transforms", "cocokit.transforms.*",
        "cocokit.augment", "cocokit.augment.*", "cocokit.postprocess", "cocokit.unslice",
        "cocokit.evaluation", "cocokit.remap", "cocokit.analysis",
        "cocokit.quality", "cocokit.quality.*",
    ]),
    ("shells", [
        "cocokit", "cocokit.__main__", "cocokit.compat", "cocokit.compat.*",
        "cocokit.cli", "cocokit.cli.*",
    ]),
]


@dataclass(frozen=True)
class Import:
    source: str  # module doing the import
    file: str  # its path, relative to src/
    line: int
    target: str  # the module imported (a submodule when the name is one)
    name: str | None  # the name taken from it (from X import name)

    def __str__(self) -> str:
        what = f"{self.target}:{self.name}" if self.name else self.target
        return f"{self.file}:{self.line} -> {what}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def floor_of(module: str) -> int | None:
    for level, (_, patterns) in enumerate(FLOORS):
        if any(module == p or (p.endswith(".*") and fnmatch.fnmatchcase(module, p))
               for p in patterns):
            return level
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """Every node under ``body``, leaving out ``if TYPE_CHECKING:`` branches."""
    out: list[ast.AST] = []
    stack: list[ast.AST] = list(reversed(body))
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(reversed(node.orelse))
            continue
        stack.extend(reversed(list(ast.iter_child_nodes(node))))
    return out


def imports_of(module: str, path: Path, text: str | None = None) -> list[Import]:
    """The cocokit imports of one module (``text`` instead of the file's, for tests)."""
    source = path.read_text(encoding="utf-8") if text is None else text
    tree = ast.parse(source, str(path))
    is_package = path.name == "__init__.py"
    file = str(path.relative_to(SRC))
    found: list[Import] = []
    for node in _nodes(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "cocokit":
                    found.append(Import(module, file, node.lineno, alias.name, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "cocokit":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in MODULES:
                    found.append(Import(module, file, node.lineno, sub, None))
                else:
                    found.append(Import(module, file, node.lineno, target, alias.name))
    return found


IMPORTS: list[Import] = [imp for m, p in MODULES.items() for imp in imports_of(m, p)]


def _report(title: str, bad: list[str]) -> str:
    return f"{title} ({len(bad)}):\n  " + "\n  ".join(bad)


def test_every_module_has_a_floor() -> None:
    missing = [f"{MODULES[m].relative_to(SRC)} ({m})" for m in MODULES if floor_of(m) is None]
    assert not missing, _report("modules missing from FLOORS in tests/test_layers.py", missing)


def test_the_package_is_parsed() -> None:
    # the check cannot pass by seeing nothing: the core and its importers are there
    assert {"cocokit.dataset", "cocokit.io.coco", "cocokit.cli"} <= set(MODULES)
    assert any(i.source == "cocokit.io.coco" and i.target == "cocokit.dataset" for i in IMPORTS)


def upward(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        src, dst = floor_of(imp.source), floor_of(imp.target)
        if src is not None and dst is not None and dst > src:
            bad.append(f"{imp}  (floor {FLOORS[dst][0]} above {FLOORS[src][0]})")
    return bad


def private(imports: list[Import]) -> list[str]:
    bad = []
    for imp in imports:
        if (imp.name and imp.name.startswith("_") and not imp.name.startswith("__")
                and imp.target != imp.source):
            bad.append(f"{imp}  (a private name of another file)")
        parts = imp.target.split(".")
        for k, part in enumerate(parts):
            if part.startswith("_") and not part.startswith("__"):
                package = ".".join(parts[:k])
                if imp.source != package and not imp.source.startswith(package + "."):
                    bad.append(f"{imp}  (a private module of another package)")
                break
    return bad


def test_imports_point_down() -> None:
    bad = upward(IMPORTS)
    assert not bad, _report("imports pointing up a floor", bad)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_circle() -> None:
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if imp.target != imp.source and imp.target in MODULES:
            edges.setdefault(imp.source, set()).add(imp.target)
    bad = []
    for comp in _cycles(edges):
        members = set(comp)
        bad.append(" <-> ".join(comp))
        bad.extend(f"    {imp}" for imp in IMPORTS
                   if imp.source in members and imp.target in members
                   and imp.target != imp.source)
    assert not bad, _report("import circles", bad)


def test_no_private_names_across_files() -> None:
    bad = private(IMPORTS)
    assert not bad, _report("private names imported across files", bad)


@pytest.mark.parametrize(("module", "floor"), [
    ("cocokit.errors", "base"),
    ("cocokit.dataset", "core"),
    ("cocokit.io.atomic", "io"),
    ("cocokit.io.sniff", "io"),
    ("cocokit.contract", "codec"),
    ("cocokit.transforms.clip", "operations"),
    ("cocokit.cli._options", "shells"),
    ("cocokit.compat._sahi_base", "shells"),
])
def test_floor_table(module: str, floor: str) -> None:
    level = floor_of(module)
    assert level is not None and FLOORS[level][0] == floor


def test_the_parser_sees_what_the_rules_refuse() -> None:
    # function-level imports are found, TYPE_CHECKING is skipped, relatives are resolved
    text = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .io.coco import write_coco\n"
        "def f():\n    from .io import coco\n    from .dataset import _frozen\n"
        "    import cocokit.stats\n"
    )
    found = imports_of("cocokit.geometry", PACKAGE / "geometry.py", text)
    assert [(i.line, i.target, i.name) for i in found] == [
        (5, "cocokit.io.coco", None), (6, "cocokit.dataset", "_frozen"), (7, "cocokit.stats", None)]
    assert str(found[0]) == "cocokit/geometry.py:5 -> cocokit.io.coco"
    # and the rules refuse them, naming file and line
    assert upward(found) == [
        "cocokit/geometry.py:5 -> cocokit.io.coco  (floor io above core)",
        "cocokit/geometry.py:7 -> cocokit.stats  (floor operations above core)"]
    assert private(found) == [
        "cocokit/geometry.py:6 -> cocokit.dataset:_frozen  (a private name of another file)"]
    cli = imports_of("cocokit.io.files", PACKAGE / "io" / "files.py",
                     "from ..cli import _app\n")
    assert private(cli) == [
        "cocokit/io/files.py:1 -> cocokit.cli._app  (a private module of another package)"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
