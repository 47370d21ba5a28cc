"""The anonymisation of aid requests by the retention purge (an owner job)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import case, func, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from api.domain.aids.tables import AidRequest, AidRequestEvent


async def anonymise_aid_requests(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention (domain.md §11): the aid requests of people being anonymised keep an
    anonymised trace of the decision — aid, category, form, commune, amounts, status, level,
    reason code, dates, reste à vivre, consumption units and household size — and lose the
    free text, the budget lines and the figures of the household's resources. Runs in the
    purge's owner transaction."""
    ids = list(person_ids)
    if not ids:
        return
    trace = func.jsonb_build_object(
        "reste_a_vivre_per_day_per_uc",
        AidRequest.assessment["reste_a_vivre_per_day_per_uc"],  # type: ignore[index]
        "uc",
        AidRequest.assessment["uc"],  # type: ignore[index]
        "required_level",
        AidRequest.assessment["required_level"],  # type: ignore[index]
        "anonymised",
        True,
    )
    await conn.execute(
        update(AidRequest)
        .where(col(AidRequest.beneficiary_id).in_(ids))
        .values(
            reason="",
            derogation_justification=None,
            budget_snapshot=None,
            payee=func.jsonb_build_object("kind", AidRequest.payee["kind"]),
            assessment=case((col(AidRequest.assessment).is_(None), None), else_=trace),
            updated_at=now,
        )
    )
    await conn.execute(
        update(AidRequestEvent)
        .where(col(AidRequestEvent.beneficiary_id).in_(ids))
        .values(comment=None)
    )
