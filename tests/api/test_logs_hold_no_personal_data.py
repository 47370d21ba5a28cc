"""Logs never hold personal data: every route of the demo territory is driven with a known
person's names, NIR, phone and e-mail — in bodies, query strings and paths, in requests that
succeed and in requests that fail, database errors included — and every log line (the
records, the JSON lines the production formatter writes, and stderr) is scanned for them."""

from __future__ import annotations

import io
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from api.http.deps import Session
from api.logging import JsonFormatter, configure_logging, quiet_url_loggers
from tests.api.people_support import Headers, nir_with_key, person

SURNAME = "Vandenbrouckezz"
FIRST_NAMES = "Philomène Zéphirine"
NIR = nir_with_key("2680980021042")
PHONE = "06 98 76 54 32"
EMAIL = "philomene.vandenbrouckezz@example.org"
SECRETS = (SURNAME, "Philomène", "Zéphirine", NIR, NIR[:13], PHONE, "0698765432", EMAIL)

_RENDERED_BY_PYTEST = ("exc_info", "exc_text", "msg")
PERSONAS = ("ccas_rsa_agent", "departement_admin", "platform_admin", "anonymous")


def _fill(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A value for ``schema`` whose every string is one of the known personal values."""
    if "$ref" in schema:
        return _fill(components[schema["$ref"].rsplit("/", 1)[-1]], components, depth)
    for alternatives in ("anyOf", "oneOf", "allOf"):
        if alternatives in schema:
            return _fill(schema[alternatives][0], components, depth)
    kind = schema.get("type")
    if depth > 4:
        return None
    if kind == "object" or "properties" in schema:
        return {k: _fill(v, components, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_fill(schema.get("items", {}), components, depth + 1)]
    if kind == "string":
        return {"email": EMAIL, "date": "1968-09-14", "uuid": str(uuid.uuid4())}.get(
            str(schema.get("format")), f"{SURNAME} {FIRST_NAMES} {NIR} {PHONE}"
        )
    return {"integer": 1, "number": 1.5, "boolean": True}.get(str(kind))


def _requests(app: FastAPI, person_id: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """One request per operation: ids of the known person in the path, names in every query
    parameter, and a body whose strings are the known values."""
    document = app.openapi()
    components = document.get("components", {}).get("schemas", {})
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            concrete = re.sub(r"\{[^}]*_id\}|\{id\}", person_id, path)
            concrete = re.sub(r"\{[^}]+\}", SURNAME, concrete)
            params = {
                p["name"]: SURNAME
                for p in operation.get("parameters", [])
                if p.get("in") == "query"
            }
            kwargs: dict[str, Any] = {"params": params}
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                kwargs["json"] = _fill(content["application/json"]["schema"], components)
            elif "application/x-www-form-urlencoded" in content:
                kwargs["data"] = {"grant_type": "password", "username": EMAIL, "password": NIR}
            yield method.upper(), concrete, kwargs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every record, rendered by the production formatter, at DEBUG."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    quiet_url_loggers()  # as configure_logging does in production
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _leaks(lines: str) -> list[str]:
    return [value for value in SECRETS if value.lower() in lines.lower()]


async def test_no_log_line_holds_the_personal_data_of_requests(
    app: FastAPI,
    client: httpx.AsyncClient,
    as_persona: Headers,
    captured: io.StringIO,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    @app.get("/test-database-error")
    async def database_error(session: Session) -> None:
        # a driver error that quotes its parameter: the log must still not show it
        await session.execute(text("SELECT CAST(:value AS integer)"), {"value": SURNAME + NIR})

    @app.get("/test-unexpected-error")
    async def unexpected_error() -> None:
        raise RuntimeError(f"a bug quoting {SURNAME} {EMAIL}")  # logged with its traceback

    agent = as_persona("ccas_rsa_agent")
    created = await client.post(
        "/v1/beneficiaries",
        json=person(birth_name=SURNAME, first_names=FIRST_NAMES, nir=NIR, phone=PHONE, email=EMAIL),
        headers=agent,
    )
    assert created.status_code == 201, created.text
    person_id = created.json()["id"]
    # the reported case: a NUL in the situation answered 500 and logged every field
    nul = person(birth_name=SURNAME, email=EMAIL, situation={"note": "violences\u0000"})
    assert (await client.post("/v1/beneficiaries", json=nul, headers=agent)).status_code == 422
    assert (await client.get("/test-database-error")).status_code == 422
    assert (await client.get("/test-unexpected-error")).status_code == 500
    searches = (
        {"last_name": SURNAME, "first_name": FIRST_NAMES, "birth_date": "1968-09-14"},
        {"nir": NIR},
    )
    for params in searches:
        found = await client.get("/v1/beneficiaries/search", params=params, headers=agent)
        assert found.status_code == 200, found.text
    await client.post(
        "/v1/auth/token", data={"grant_type": "password", "username": EMAIL, "password": NIR}
    )

    statuses: list[int] = []
    for persona in PERSONAS:
        headers = as_persona(persona)
        for method, path, kwargs in _requests(app, person_id):
            if path.startswith("/test-"):
                continue
            response = await client.request(method, path, headers=headers, **kwargs)
            statuses.append(response.status_code)

    assert any(s < 300 for s in statuses) and any(s >= 400 for s in statuses)
    assert [s for s in statuses if s >= 500] == []
    # exc_text is what pytest's own formatter made of exc_info; ours is checked above
    records = "\n".join(
        f"{r.getMessage()} {[v for k, v in vars(r).items() if k not in _RENDERED_BY_PYTEST]}"
        for r in caplog.records
    )
    out, err = capfd.readouterr()
    assert "request" in captured.getvalue()  # the access log did run
    assert "RuntimeError" in captured.getvalue()  # and so did the error log
    assert _leaks(captured.getvalue()) == []
    assert _leaks(records) == []
    assert _leaks(out + err) == []


def test_a_failing_log_handler_prints_no_record(capfd: pytest.CaptureFixture[str]) -> None:
    """By default, logging prints a record a handler failed to write (its raw message and
    arguments) to stderr: as configured, it prints nothing."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.raiseExceptions
    closed = io.StringIO()
    closed.close()
    try:
        configure_logging("INFO")
        root.handlers[:] = [logging.StreamHandler(closed)]
        logging.getLogger("guichet.test").warning("about %s", SURNAME)
    finally:
        root.handlers[:], root.level, logging.raiseExceptions = saved
    out, err = capfd.readouterr()
    assert _leaks(out + err) == []
