"""The walls between the package's folders (docs/architecture.md) hold, and they bite.

- `lint-imports` passes on the package, with the contracts of pyproject's `[tool.importlinter]`;
- it fails on a copy of the package with one forbidden import added (compare importing forge);
- the package's import graph has no cycle, counting imports inside functions: every `import` and
  `from ... import` anywhere in a module's AST is an edge. `from pkg import sub`, where `sub` is
  a submodule, is an edge to `pkg.sub` only, not to `pkg/__init__.py` (which Python runs first):
  so a package `__init__` that re-exports its own submodules is not counted as a cycle with them.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "mlops_ci"
FORBIDDEN_CONTRACT = "compare and gate never import forge, report or registry"


def lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "lint-imports"
    command = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(
        [*command, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def test_the_import_contracts_pass():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
    for folder in (
        "commands",
        "compare",
        "gate",
        "report",
        "forge",
        "registry",
        "init",
        "ci",
        "project",
    ):
        assert f"mlops_ci.{folder}" in (ROOT / "pyproject.toml").read_text()


def test_a_forbidden_import_breaks_a_contract(tmp_path: Path):
    shutil.copytree(PACKAGE, tmp_path / "mlops_ci", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "mlops_ci" / "compare" / "diff.py").open("a") as fh:
        fh.write("\nimport mlops_ci.forge  # noqa: E402 - the wall must stop this\n")
    # The copy first on the path, so the contracts are checked against it, not the installed one.
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = lint_imports(tmp_path, env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert FORBIDDEN_CONTRACT in output
    assert "mlops_ci.compare.diff -> mlops_ci.forge" in output


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every mlops_ci module `name` imports, at module level or inside a function."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                for alias in node.names
            ]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_package_has_no_import_cycle():
    paths = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = set(paths)
    graph = {name: imported_modules(path, name, modules) for name, path in paths.items()}
    assert sum(len(edges) for edges in graph.values()) > 100  # the walk saw the imports
    assert "mlops_ci.commands.demo" in graph["mlops_ci.cli"]  # imports inside functions count
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_every_package_states_its_job():
    for init in sorted(PACKAGE.rglob("__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"
