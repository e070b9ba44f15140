"""pyproject.toml declares what the code imports, and says what it supports truthfully.

A package that is imported but only present because another dependency brings it breaks the day
that dependency stops bringing it; the scan below finds every such import.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
import warnings
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match is not None, requirement
    return normalized(match.group())


def declared(requirements: list[str]) -> set[str]:
    return {requirement_name(requirement) for requirement in requirements}


def third_party_imports(directory: Path, *, excluding: Path | None = None) -> set[str]:
    """Top-level names of every absolute import under ``directory`` that is not the standard library."""
    names: set[str] = set()
    for path in directory.rglob("*.py"):
        if excluding is not None and path.is_relative_to(excluding):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.partition(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.partition(".")[0])
    return {name for name in names if name not in sys.stdlib_module_names} - {"konifer_edge", "tests"}


def distributions_of(import_names: set[str]) -> dict[str, set[str]]:
    installed = packages_distributions()
    missing = {name for name in import_names if name not in installed}
    assert not missing, f"imported but not installed: {missing}"
    return {name: {normalized(dist) for dist in installed[name]} for name in import_names}


RUNTIME = declared(PROJECT["dependencies"])
RULES_EXTRA = declared(PROJECT["optional-dependencies"]["rules"])
TEST_EXTRA = declared(PROJECT["optional-dependencies"]["test"])
RULES_PACKAGE = ROOT / "konifer_edge" / "rules"


def test_every_package_the_service_imports_is_a_declared_dependency() -> None:
    imports = third_party_imports(ROOT / "konifer_edge", excluding=RULES_PACKAGE)
    undeclared = {name: dists for name, dists in distributions_of(imports).items() if not dists & RUNTIME}
    assert not undeclared, f"imported by konifer_edge but not in [project] dependencies: {undeclared}"


def test_only_upload_rules_import_the_rules_extra() -> None:
    """The model's packages are an optional extra: only konifer_edge/rules may import them."""
    undeclared = {
        name: dists for name, dists in distributions_of(third_party_imports(RULES_PACKAGE)).items()
        if not dists & (RUNTIME | RULES_EXTRA)
    }  # fmt: skip
    assert not undeclared, f"imported by konifer_edge/rules but declared nowhere: {undeclared}"
    outside = third_party_imports(ROOT / "konifer_edge", excluding=RULES_PACKAGE)
    assert not {name for name, dists in distributions_of(outside).items() if dists & RULES_EXTRA - RUNTIME}


def test_every_package_the_tests_import_is_declared() -> None:
    undeclared = {
        name: dists for name, dists in distributions_of(third_party_imports(ROOT / "tests")).items()
        if not dists & (RUNTIME | RULES_EXTRA | TEST_EXTRA)
    }  # fmt: skip
    assert not undeclared, f"imported by the tests but not declared: {undeclared}"


@pytest.mark.parametrize("name", ["httpx", "httpcore", "litestar", "granian", "multipart", "pyparsing", "pillow"])
def test_dependencies_whose_next_major_breaks_us_are_bounded(name: str) -> None:
    (requirement,) = [r for r in PROJECT["dependencies"] if requirement_name(r) == name]
    assert re.search(r",\s*<\s*\d", requirement), f"{requirement}: no upper bound"


def test_license_is_an_spdx_expression_with_its_file() -> None:
    assert PROJECT["license"] == "Apache-2.0"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    (setuptools,) = [r for r in PYPROJECT["build-system"]["requires"] if requirement_name(r) == "setuptools"]
    # The first setuptools that understands both keys.
    assert re.fullmatch(r"setuptools>=(\d+)", setuptools) and int(setuptools.split(">=")[1]) >= 77


def test_requires_python_matches_the_running_interpreter_and_the_docs() -> None:
    assert PROJECT["requires-python"] == ">=3.11,<3.13"
    assert (3, 11) <= sys.version_info[:2] < (3, 13)
    readme = (ROOT / "README.md").read_text()
    assert "3.11" in readme and "3.12" in readme and "scripts/test-pythons.sh" in readme


def test_building_the_app_raises_no_deprecation_warning(tmp_path: Path) -> None:
    """Litestar announces what its next major removes while routes are registered and documented."""
    from konifer_edge.app import create_app
    from konifer_edge.config import load_config

    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        app = create_app(load_config(None, {}), tmp_path, "postgresql://nobody@127.0.0.1:1/none")
        assert app.openapi_schema.paths
