"""Every data file inside the package is shipped: matched by ``[tool.setuptools.package-data]``.

A file that no glob matches is left out of the wheel, and the code that finds it through
``importlib.resources`` fails only after a pip install (as ``artlens serve`` did without its templates).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "artlens"


def test_every_package_data_file_is_matched_by_a_glob() -> None:
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["artlens"]
    shipped = {p for g in globs for p in PACKAGE.glob(g) if p.is_file()}
    data = {p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")
            and "__pycache__" not in p.parts}
    missing = sorted(str(p.relative_to(PACKAGE)) for p in data - shipped)
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"
