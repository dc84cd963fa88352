"""The package's shape, checked from its source: no import cycle between modules, the training engine used
only by the command line, method files that stay short, functions that fit on a screen."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "src" / "chromaproxy"
METHOD_FOLDERS = ("tasks", "eval/protocols", "cluster", "pixelcnn")
MAX_METHOD_LINES = 150
MAX_FUNCTION_LINES = 40


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imported(node: ast.AST, module: str, path: Path) -> list[str]:
    """chromaproxy modules an import statement loads, parent packages included, except the importing
    module's own packages (already being initialised when it runs, so no cycle)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        names = [base] + [f"{base}.{alias.name}" for alias in node.names]
    loaded = set()
    for name in names:
        parts = name.split(".")
        loaded |= {".".join(parts[:i]) for i in range(2, len(parts) + 1) if ".".join(parts[:i]) in MODULES}
    own = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
    return sorted(loaded - own)


def _top_level_imports(module: str, path: Path) -> list[str]:
    """Imports executed when the module is imported: module level, not under ``if TYPE_CHECKING``."""
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += _imported(node, module, path)
        elif isinstance(node, ast.Try):
            for inner in node.body:
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found += _imported(inner, module, path)
    return found


def _package(module: str) -> str:
    """chromaproxy.eval.protocols.knn → chromaproxy.eval; top-level modules stand for themselves."""
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_modules():
    _assert_acyclic({module: _top_level_imports(module, path) for module, path in MODULES.items()})


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_package(target) for target in _top_level_imports(module, path)}
        graph.setdefault(_package(module), set()).update(targets - {_package(module)})
    _assert_acyclic({package: sorted(targets) for package, targets in graph.items()})


def _assert_acyclic(graph: dict[str, list[str]]) -> None:
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in graph[module]:
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_only_the_command_line_uses_the_training_engine():
    users = []
    for module, path in MODULES.items():
        if module.startswith("chromaproxy.engine") or module == "chromaproxy.cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom) and any(
                name.startswith("chromaproxy.engine") for name in _imported(node, module, path)
            ):
                users.append(f"{module} (line {node.lineno})")
    assert not users, "outside engine/ only the CLI may import it: " + ", ".join(users)


def test_method_files_are_short_and_functions_fit_on_a_screen():
    long_files = [
        f"{path.relative_to(PACKAGE)}: {n} lines"
        for folder in METHOD_FOLDERS
        for path in sorted((PACKAGE / folder).glob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_METHOD_LINES
    ]
    assert not long_files, f"method files over {MAX_METHOD_LINES} lines: {long_files}"
    long_functions = [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for path in sorted(PACKAGE.rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long_functions, f"functions over {MAX_FUNCTION_LINES} lines: {long_functions}"
