"""The change feed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.auth.deps import CurrentScope
from api.domain.changes import service
from api.domain.changes.deps import ScopedChangeFeed
from api.domain.changes.schemas import ChangePage
from api.http.deps import TransactionRoute
from api.http.schemas import Limit

router = APIRouter(prefix="/v1/changes", tags=["changes"], route_class=TransactionRoute)


@router.get("", response_model=ChangePage)
async def list_changes(
    scope: CurrentScope,
    feed: ScopedChangeFeed,
    after: Annotated[
        str | None,
        Query(max_length=512, description="A cursor from a previous answer; omit to start."),
    ] = None,
    types: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Comma list of referral, orientation, dossier, beneficiary, "
            "convention, access_request.",
        ),
    ] = None,
    limit: Limit = 50,
) -> ChangePage:
    """Changes to records the caller's organisation may see now, in order, ids only."""
    return await service.feed(scope, feed, after=after, types=types, limit=limit)
