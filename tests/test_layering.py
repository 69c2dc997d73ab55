"""The layering of both sides, as checked rules: import-linter's contracts (pyproject.toml) and the import graph."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
#: the runtime import chain inside the server was 11 modules deep while the wings were one flat folder
MAX_SERVER_DEPTH = 10


def _lint_imports() -> str:
    script = Path(sys.executable).with_name("lint-imports")
    return str(script) if script.exists() else shutil.which("lint-imports") or ""


def test_import_contracts_are_kept(tmp_path: Path) -> None:
    command = _lint_imports()
    if not command:
        pytest.skip("lint-imports is not installed (pip install import-linter)")
    proc = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def _internal_edges(package: str, *, type_checking: bool) -> dict[str, set[str]]:
    graph = grimp.build_graph(package, exclude_type_checking_imports=not type_checking, cache_dir=None)
    return {module: {d for d in graph.find_modules_directly_imported_by(module) if d.startswith(package + ".")
                     or d == package} - {module} for module in graph.modules}


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among the modules, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(edges.get(module, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return None


def _depth(edges: dict[str, set[str]]) -> int:
    """Modules on the longest import chain (the graph has no cycle)."""
    memo: dict[str, int] = {}

    def depth(module: str) -> int:
        if module not in memo:
            memo[module] = 1 + max((depth(d) for d in edges.get(module, ())), default=0)
        return memo[module]

    return max(depth(m) for m in edges)


# The spawned worker's target is imported in the child process only: the one import the server process never runs.
SPAWN_BOUNDARY = ("latency_server.worker.process", "latency_server.worker.measuring_loop")


@pytest.mark.parametrize("package", ["latency_server", "nas", "shared"])
def test_no_import_cycle_between_modules(package: str) -> None:
    edges = _internal_edges(package, type_checking=True)
    if package == "latency_server":
        edges[SPAWN_BOUNDARY[0]].discard(SPAWN_BOUNDARY[1])
    assert _cycle(edges) is None, f"import cycle: {' -> '.join(_cycle(edges) or [])}"


def test_server_import_chain_is_shallow() -> None:
    edges = _internal_edges("latency_server", type_checking=False)
    edges[SPAWN_BOUNDARY[0]].discard(SPAWN_BOUNDARY[1])
    assert _depth(edges) <= MAX_SERVER_DEPTH
