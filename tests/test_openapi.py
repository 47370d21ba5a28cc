"""The committed contract matches the app, and every problem slug is documented."""

from __future__ import annotations

import re
from pathlib import Path

from api.http.openapi import OPENAPI_PATH, render
from api.main import create_app
from api.problems import all_problem_classes

PROBLEMS_MD = Path(__file__).resolve().parent.parent / "openapi" / "problems.md"


def test_openapi_json_is_up_to_date() -> None:
    assert OPENAPI_PATH.read_text() == render(create_app()), (
        "openapi/openapi.json drifted from the app: run `guichet openapi`"
    )


def test_every_problem_slug_is_documented() -> None:
    documented = set(re.findall(r"^## `([a-z0-9-]+)`", PROBLEMS_MD.read_text(), re.MULTILINE))
    slugs = {cls.slug for cls in all_problem_classes()}
    assert slugs - documented == set(), "slugs missing from openapi/problems.md"
    assert documented - slugs == set(), "openapi/problems.md lists slugs the code never raises"


def test_every_operation_documents_problems() -> None:
    document = create_app().openapi()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert "default" in operation["responses"], (method, path)
            assert operation.get("summary"), f"{method} {path} has no one-line docstring"
