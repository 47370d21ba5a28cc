"""Règlements des aides facultatives: published by granting organisations, read by anyone,
compared between communes."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from api.domain.aids import compare as comparison
from api.domain.aids import reglements
from api.domain.aids.deps import AidsContext, PublicRules
from api.domain.aids.schemas import (
    AidRulesCreate,
    AidRulesRead,
    AidRulesSummary,
    CompareBody,
    CompareRead,
    IsoDate,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page

router = APIRouter(prefix="/v1/aid-rules", tags=["aids"], route_class=TransactionRoute)


@router.post("", response_model=AidRulesRead, status_code=201)
async def publish_rules(ctx: AidsContext, body: AidRulesCreate, idem: Idempotent) -> AidRulesRead:
    """Publish a new version of your organisation's règlement (admin of a granting organisation)."""

    async def create() -> AidRulesRead:
        return await reglements.publish(ctx.scope, ctx.rules, body)

    return await idem.once(create, location=lambda r: f"/v1/aid-rules/{r.id}")


@router.get("", response_model=Page[AidRulesSummary])
async def list_rules(
    repo: PublicRules,
    organisation_id: uuid.UUID | None = None,
    commune: Annotated[str | None, Query(pattern=r"^(\d{5}|2[AB]\d{3})$")] = None,
    on: Annotated[IsoDate | None, Query(description="Only the versions in force that day.")] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AidRulesSummary]:
    """Règlement versions, by organisation, commune covered, or in force on a date (public)."""
    return await reglements.page(
        repo, organisation_id=organisation_id, commune=commune, on=on, cursor=cursor, limit=limit
    )


@router.get("/{rules_id:uuid}", response_model=AidRulesRead)
async def read_rules(repo: PublicRules, rules_id: uuid.UUID) -> AidRulesRead:
    """One règlement version with its aid types (public)."""
    return await reglements.read(repo, rules_id)


@router.post("/compare", response_model=CompareRead)
async def compare_rules(repo: PublicRules, body: CompareBody) -> CompareRead:
    """Which aids each commune's organisations would grant a described household (public)."""
    return await comparison.compare(repo, body)
