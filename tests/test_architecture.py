"""The layering and size rules of ../shared/GUIDE.md, checked on the source tree.

The engine (`worker/influence`) is the ground floor and imports nothing of ours; storage
(`backend.models`, `backend.db`, `backend.storage`) stands on it; the API (`backend`) and the worker
stand on storage and never on each other — the API enqueues by task name (`worker.tasknames`).
Imports inside functions count: hiding an import in a function does not remove the dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("backend", "worker")
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
GENERATED: frozenset[str] = frozenset()  # product files written by a tool (none today)


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported product module (the deepest one that exists)
    line: int
    in_function: bool


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_files() -> dict[str, Path]:
    files = {}
    for top in PRODUCT:
        for path in sorted((ROOT / top).rglob("*.py")):
            files[_module_name(path)] = path
    return files


FILES = _product_files()


def _resolve(name: str) -> str | None:
    """The deepest product module `name` names (`a.b.c` where c is a function → `a.b`)."""
    while name:
        if name in FILES:
            return name
        name = name.rpartition(".")[0]
    return None


def _absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _imports(module: str, path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    inner = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node, path.name == "__init__.py")
            targets = [f"{base}.{alias.name}" for alias in node.names] or [base]
        for target in targets:
            resolved = _resolve(target)
            if resolved and resolved != module:
                yield Import(module, resolved, node.lineno, id(node) in inner)


IMPORTS = [imp for module, path in FILES.items() for imp in _imports(module, path)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_checker_sees_imports() -> None:
    """A guard for the guards: the scan finds the product's modules and their imports."""
    assert "worker.influence.methods" in FILES and "backend.main" in FILES
    assert any(i.source == "backend.main" for i in IMPORTS)
    assert _cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]


def test_no_import_cycle_among_product_modules() -> None:
    # A package importing its own submodules (re-exports in __init__) is not a cycle of concepts;
    # an edge from a module to its parent package is an import of those re-exports and is.
    edges: dict[str, set[str]] = {}
    for imp in IMPORTS:
        if _within(imp.target, imp.source):
            continue
        edges.setdefault(imp.source, set()).add(imp.target)
    assert _cycles(edges) == []


def test_the_engine_imports_nothing_outside_itself() -> None:
    leaks = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in IMPORTS
        if _within(i.source, "worker.influence") and not _within(i.target, "worker.influence")
    ]
    assert leaks == []


def test_the_backend_reaches_the_worker_only_by_task_name() -> None:
    leaks = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in IMPORTS
        if _within(i.source, "backend")
        and _within(i.target, "worker")
        and not _within(i.target, "worker.influence")
        and i.target != "worker.tasknames"
    ]
    assert leaks == []


def test_the_worker_does_not_import_the_api_services() -> None:
    leaks = [
        f"{i.source}:{i.line} imports {i.target}"
        for i in IMPORTS
        if _within(i.source, "worker")
        and any(_within(i.target, f"backend.{api}") for api in ("services", "routers", "main"))
    ]
    assert leaks == []


def test_the_job_runner_imports_at_the_top() -> None:
    """Inside `worker/jobs`, an import in a function is an optional heavy dependency and says so."""
    hidden = []
    for imp in IMPORTS:
        if imp.in_function and _within(imp.source, "worker.jobs"):
            hidden.append(f"{imp.source}:{imp.line} imports {imp.target} inside a function")
    assert hidden == []


def _long_functions(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name} is {length} lines"


@pytest.mark.parametrize("top", PRODUCT)
def test_files_and_functions_stay_small(top: str) -> None:
    too_long = []
    for module, path in FILES.items():
        if not _within(module, top) or str(path.relative_to(ROOT)) in GENERATED:
            continue
        lines = path.read_text().count("\n")
        if lines > MAX_FILE_LINES:
            too_long.append(f"{path.relative_to(ROOT)} is {lines} lines")
        too_long.extend(_long_functions(path))
    assert too_long == []
