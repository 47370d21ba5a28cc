"""The layer contracts of pyproject.toml (``[tool.importlinter]``), run with the suite.

A request flows router → service → repository; rules are pure. The contracts say it in
import-linter's terms; these tests run them on the code, and check on a copy of the import
graph that each one really fails when someone writes the import it forbids — including in
the layout new nouns use (``api/domain/<noun>/{service,rules,repository,tables,schemas,deps}``).
"""

from __future__ import annotations

import tomllib
from copy import deepcopy
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter.cli import lint_imports
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.independence import IndependenceContract

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"


def _contracts() -> dict[str, dict[str, Any]]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    return {c["id"]: c for c in config["contracts"]}


def test_the_code_keeps_every_layer_contract() -> None:
    # unmatched ignore_imports fail too: a breach fixed must leave its exception list
    assert lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True) == 0


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("api", include_external_packages=True, cache_dir=None)


def _kept(contract_id: str, graph: grimp.ImportGraph) -> bool:
    # as import-linter's own TOML reader hands them over: lists, and text for the rest
    options = {
        k: v if isinstance(v, list) else str(v)
        for k, v in _contracts()[contract_id].items()
        if k not in ("id", "name", "type")
    }
    kind = (
        IndependenceContract
        if _contracts()[contract_id]["type"] == "independence"
        else ForbiddenContract
    )
    contract = kind(
        name=contract_id,
        session_options={"root_packages": ["api"], "include_external_packages": "True"},
        contract_options=options,
    )
    return bool(contract.check(deepcopy(graph), verbose=False).kept)


# (contract, importer, imported): one import each contract must refuse. Modules that do not
# exist yet (the ``newnoun`` package) are added to the copy of the graph.
BREACHES = [
    ("routers-never-query", "api.routers.people", "sqlalchemy"),
    ("routers-never-query", "api.routers.referrals", "api.domain.referrals.tables"),
    ("routers-never-query", "api.routers.newnoun", "api.domain.newnoun.repository"),
    (
        "routers-never-query",
        "api.routers.organisations",
        "api.domain.staff.repository",
    ),
    ("rules-are-pure", "api.domain.referrals.rules", "api.domain.referrals.repository"),
    ("rules-are-pure", "api.domain.people.rules", "api.domain.people.schemas"),
    ("rules-are-pure", "api.domain.dossiers.rules", "fastapi"),
    ("rules-are-pure", "api.domain.staff.rules", "sqlalchemy"),
    ("rules-are-pure", "api.domain.newnoun.rules", "api.domain.newnoun.repository"),
    ("rules-are-pure", "api.domain.newnoun.rules", "api.domain.newnoun.tables"),
    ("rules-are-pure", "api.domain.newnoun.rules", "api.domain.newnoun.schemas"),
    ("rules-are-pure", "api.domain.newnoun.rules", "api.domain.newnoun.deps"),
    ("rules-are-pure", "api.domain.newnoun.rules", "api.domain.newnoun.service"),
    ("rules-are-pure", "api.domain.newnoun.rules.tiers", "asyncpg"),
    ("repositories-serve-services", "api.domain.people.repository", "api.routers.people"),
    ("repositories-serve-services", "api.domain.newnoun.repository", "api.domain.newnoun.service"),
    ("repositories-serve-services", "api.domain.newnoun.repository", "api.routers.newnoun"),
    ("domain-ignores-http", "api.domain.people.service", "api.routers.people"),
    ("one-jwt-module", "api.auth.builder", "jose"),
    ("routers-stand-alone", "api.routers.dossiers", "api.routers.people"),
    ("routers-stand-alone", "api.routers.newnoun", "api.routers.referrals"),
]


@pytest.mark.parametrize(("contract_id", "importer", "imported"), BREACHES)
def test_each_contract_refuses_the_import_it_forbids(
    graph: grimp.ImportGraph, contract_id: str, importer: str, imported: str
) -> None:
    assert _kept(contract_id, graph), "the code itself must keep the contract"
    breached = deepcopy(graph)
    for module in (importer, imported):
        if module not in breached.modules:
            breached.add_module(module)
    breached.add_import(importer=importer, imported=imported, line_number=1, line_contents="")
    assert not _kept(contract_id, breached)
