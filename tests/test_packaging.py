"""Packaging: the server side builds alone and installs its Alembic migrations and the dashboard's templates inside
``latency_server``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_server_tree_builds_a_wheel_with_migrations_inside_the_package(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("shared", "latency_server", "migrations"):  # what the server image copies: no nas/
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"shared", "latency_server"}
    for part in ("__init__.py", "env.py", "alembic.ini", "script.py.mako", "versions/0001_initial.py"):
        assert f"latency_server/migrations/{part}" in names
    for page in ("base.html", "overview.html", "table.html", "drift.html", "_charts.html"):  # the dashboard's
        assert f"latency_server/ui/templates/{page}" in names


# -- the wall between the two sides ------------------------------------------------------------------------------
SERVER_ONLY = {"fastapi", "uvicorn", "sqlalchemy", "alembic", "pydantic-settings"}
SEARCH_ONLY = {"scikit-learn", "matplotlib"}


def _closure(extra: str) -> set[str]:
    """Every distribution ``pip install '.[extra]'`` pulls in, from the installed packages' own metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(canonicalize_name("hardcore-nas"), frozenset({extra}))]
    while todo:
        name, extras = todo.pop()
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:  # an optional platform dependency that is not installed here
            continue
        for text in reqs:
            req = Requirement(text)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
                continue
            dep = canonicalize_name(req.name)
            key = f"{dep}[{','.join(sorted(req.extras))}]"
            if key not in seen:
                seen.add(key)
                todo.append((dep, frozenset(req.extras)))
    return {key.split("[")[0] for key in seen}


def test_each_side_installs_without_the_other_sides_stack() -> None:
    server, search = _closure("server"), _closure("search")
    assert SERVER_ONLY <= server and not (server & SEARCH_ONLY), sorted(server & SEARCH_ONLY)
    assert SEARCH_ONLY <= search and not (search & SERVER_ONLY), sorted(search & SERVER_ONLY)
    assert {"httpx", "pydantic"} <= server & search  # the REST client and the vocabulary serve both


# ``None`` in ``sys.modules`` is how Python spells "not installed" to both ``import`` and ``find_spec``
_BLOCKER = '''
import os, sys
for _name in filter(None, os.environ.get("HCN_BLOCKED_IMPORTS", "").split(",")):
    sys.modules[_name] = None
'''


def _blocking(tmp_path: Path, modules: set[str]) -> dict[str, str]:
    """Environment variables under which a Python process cannot import ``modules`` (a ``sitecustomize``)."""
    folder = tmp_path / f"block-{len(list(tmp_path.glob('block-*')))}"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(_BLOCKER)
    path = os.pathsep.join(p for p in (str(folder), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "HCN_BLOCKED_IMPORTS": ",".join(sorted(modules))}


@pytest.mark.slow
def test_the_server_runs_without_the_training_stack_and_the_search_without_the_web_stack(tmp_path: Path) -> None:
    """A server that cannot import matplotlib or scikit-learn builds a table and measures a network;
    ``nas search --latency-endpoint`` that cannot import the web stack or the database searches against it."""
    from nas.latency.local_server import LocalServer
    from tests.live import FAST_SERVER_ENV

    server_env = {**FAST_SERVER_ENV, **_blocking(tmp_path, {"matplotlib", "sklearn"})}
    with LocalServer(f"sqlite:///{tmp_path / 'wall.db'}", log_path=tmp_path / "server.log", env=server_env) as server:
        env = {**os.environ, **_blocking(tmp_path, {"fastapi", "uvicorn", "sqlalchemy", "alembic",
                                                     "pydantic_settings", "starlette"})}
        proc = subprocess.run(
            [sys.executable, "-m", "nas", "search", "digits", "--latency-endpoint", server.url, "--resolution", "32",
             "--latency-limit-ms", "1000", "--bcfw-steps", "2", "--batch-size", "4", "--no-progress",
             "--out", str(tmp_path / "search")],
            capture_output=True, text=True, env=env, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads((tmp_path / "search" / "result.json").read_text())
        assert result["measured_latency_ms"] > 0 and result["attempts"]
    assert "halted; None in sys.modules" not in server.log_path.read_text()
