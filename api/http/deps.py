"""Request-level dependencies: the database session (one per request, committed before the
response is sent, rolled back on error)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Annotated

from fastapi import Depends, Request, params
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from api.problems import FieldError, UnsupportedMediaType, ValidationFailed


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


Session = Annotated[AsyncSession, Depends(_session, scope="function")]


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query_parameters(request: Request) -> None:
    """Unknown query parameters are refused like unknown body fields: a typo (``?comune=``)
    must not silently widen a search."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    unknown = sorted(set(request.query_params) - _query_names(dependant))
    if unknown:
        raise ValidationFailed(
            detail=f"Unknown query parameter(s): {', '.join(unknown)}.",
            errors=[FieldError(f"/{name}", "Unknown parameter.", "query") for name in unknown],
        )


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    return raw.split(";", 1)[0].strip().lower() if raw else None


def _expects_form(dependant: Dependant) -> bool:
    return any(isinstance(f.field_info, params.Form) for f in dependant.body_params)


def _refuse_unsupported_media_type(request: Request, dependant: Dependant) -> None:
    media_type = _media_type(request)
    if not dependant.body_params or media_type is None:
        return
    if _expects_form(dependant):
        accepted = media_type in _FORM_TYPES
        expected = "application/x-www-form-urlencoded"
    else:
        accepted = media_type == "application/json" or media_type.endswith("+json")
        expected = "application/json"
    if not accepted:
        raise UnsupportedMediaType(detail=f"Send the body as {expected}.")


def _refuse_nul(location: str, values: Iterable[tuple[str, object]]) -> None:
    errors = [
        FieldError(f"/{name}", "Text may not contain the NUL character.", location)
        for name, value in values
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)


async def refuse_unreadable_input(request: Request) -> None:
    """Input PostgreSQL cannot take is refused before any handler runs: the NUL character in a
    query, path or form parameter (bodies are checked by ``schemas.common.Input``), and a
    body in a media type the route does not read (415 rather than a confusing 422)."""
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    _refuse_unsupported_media_type(request, dependant)
    _refuse_nul("query", request.query_params.multi_items())
    _refuse_nul("path", request.path_params.items())
    if _expects_form(dependant) and _media_type(request) in _FORM_TYPES:
        _refuse_nul("body", (await request.form()).multi_items())
