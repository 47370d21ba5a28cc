"""Request-level dependencies: the database session (one per request, committed before the
response is sent, rolled back on error)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from sqlalchemy.ext.asyncio import AsyncSession

from api.problems import FieldError, ValidationFailed


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
    # PostgreSQL text cannot hold NUL: refused here rather than failing in the query
    with_nul = sorted(
        {name for name, value in request.query_params.multi_items() if "\x00" in value}
    )
    if with_nul:
        raise ValidationFailed(
            detail=f"NUL character in query parameter(s): {', '.join(with_nul)}.",
            errors=[FieldError(f"/{name}", "NUL character.", "query") for name in with_nul],
        )
