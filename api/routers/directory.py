"""The "qui fait quoi" directory: who holds a competence on a commune."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from api.domain.organisations.deps import Directory
from api.domain.organisations.schemas import CompetentRead
from api.http.deps import Session, TransactionRoute

router = APIRouter(prefix="/v1/directory", tags=["directory"], route_class=TransactionRoute)


@router.get("/competent", response_model=CompetentRead)
async def competent(
    session: Session,
    competence: Annotated[str, Query(max_length=40)],
    commune: Annotated[str, Query(pattern=r"^(\d{5}|2[AB]\d{3})$")],
    on: Annotated[date | None, Query(description="Date of the answer (default: today).")] = None,
) -> CompetentRead:
    """Which partners hold a competence on a commune, and why (delegates first)."""
    return await Directory(session).competent(competence, commune, on)
