"""Package discovery that pyproject.toml cannot express; everything else is configured there.

The Alembic folder ``migrations/`` stays at the top level of the repository but is installed as
``latency_server.migrations`` (``package-dir`` in pyproject.toml), so no top-level ``migrations`` package
lands in site-packages, where another distribution could shadow it. setuptools' package finder cannot add a
package mapped from another folder, and an explicit list would fail to build from a tree holding only one
side (the server image copies no ``nas/``), so the packages are found here.
"""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
packages = find_packages(where=str(ROOT), include=["shared", "shared.*", "latency_server", "latency_server.*",
                                                     "nas", "nas.*"])
if (ROOT / "latency_server").is_dir() and (ROOT / "migrations").is_dir():
    packages += ["latency_server.migrations", "latency_server.migrations.versions"]

setup(packages=packages)
