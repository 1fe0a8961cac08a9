"""The shape of ``aura_actors/``: small modules, short functions, no import cycle.

Read with ``ast`` (nothing is imported). A module-level import is one that runs
when the module is imported: anywhere outside a function body and outside an
``if TYPE_CHECKING:`` block. (That the client imports no server code is
``test_client_standalone.py``'s.)
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

#: The most lines a module of aura_actors/ may have.
MAX_MODULE_LINES = 400
#: The most lines a function may have, from its ``def`` line to its last line.
MAX_FUNCTION_LINES = 60

PACKAGE = Path(__file__).resolve().parent.parent / "aura_actors"


def module_name(path: Path, root: Path) -> str:
    """The dotted name of the module at ``path`` in the package at ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path) -> dict[str, tuple[Path, ast.Module]]:
    """Every module of the package at ``root``, by dotted name, parsed."""
    found: dict[str, tuple[Path, ast.Module]] = {}
    for path in sorted(root.rglob("*.py")):
        found[module_name(path, root)] = (path, ast.parse(path.read_text(), str(path)))
    return found


def long_functions(tree: ast.Module, limit: int) -> Iterator[tuple[str, int, int]]:
    """``(name, first line, length)`` of each function (nested ones too) over ``limit`` lines."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                yield node.name, node.lineno, length


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def module_level_imports(nodes: list[ast.AST]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports among ``nodes`` (and inside them) that run when their module is imported."""
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from module_level_imports(list(node.orelse))
        else:
            yield from module_level_imports(list(ast.iter_child_nodes(node)))


def imported_modules(
    name: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]
) -> set[str]:
    """The modules of ``known`` that ``node``, in module ``name``, imports."""
    targets: list[str] = []
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, node.module] if node.module else base)
        else:
            source = node.module or ""
        targets.append(source)
        # ``from package import submodule`` imports the submodule.
        targets.extend(f"{source}.{alias.name}" for alias in node.names)
    own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    found: set[str] = set()
    for target in targets:
        parts = target.split(".")
        # Importing a.b.c runs a and a.b too, except the packages being imported already.
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known and candidate not in own_packages:
                found.add(candidate)
    found.discard(name)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Each module of the package at ``root`` → the package's modules it imports at import time."""
    parsed = modules(root)
    known = set(parsed)
    graph: dict[str, set[str]] = {}
    for name, (path, tree) in parsed.items():
        is_package = path.name == "__init__.py"
        graph[name] = set()
        for node in module_level_imports(list(tree.body)):
            graph[name] |= imported_modules(name, is_package, node, known)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_is_too_long() -> None:
    too_long = {
        str(path.relative_to(PACKAGE.parent)): lines
        for path, _ in modules(PACKAGE).values()
        if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_no_function_is_too_long() -> None:
    too_long = [
        f"{path.relative_to(PACKAGE.parent)}:{line} {function} ({length} lines)"
        for path, tree in modules(PACKAGE).values()
        for function, line, length in long_functions(tree, MAX_FUNCTION_LINES)
    ]
    assert too_long == [], f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_no_import_cycle() -> None:
    graph = import_graph(PACKAGE)
    assert "aura_actors.runtime._broadcaster" in graph["aura_actors.runtime._open"]
    assert cycles(graph) == [], "modules that import each other (directly or not)"


def test_the_cycle_check_sees_relative_imports_and_skips_type_checking(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from . import _a\n")
    (root / "sub" / "_a.py").write_text(
        "try:\n    from ._b import x\nexcept ImportError:\n    pass\n"
    )
    (root / "sub" / "_b.py").write_text("from .. import _c\nx = 1\n")
    (root / "_c.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .sub._b import x\n"
        "def late() -> None:\n    from .sub import _b\n"
        "class Early:\n    from .sub._a import x\n"
    )
    graph = import_graph(root)
    assert graph["pkg.sub"] == {"pkg.sub._a"}
    assert graph["pkg.sub._a"] == {"pkg.sub._b"}
    assert graph["pkg.sub._b"] == {"pkg._c"}  # not pkg: being imported already
    assert graph["pkg._c"] == {"pkg.sub", "pkg.sub._a"}
    assert cycles(graph) == [["pkg._c", "pkg.sub", "pkg.sub._a", "pkg.sub._b"]]
