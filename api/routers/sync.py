"""Batch synchronisation from partners' information systems (API clients)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from api.domain.dossiers import sync
from api.domain.dossiers.deps import DossiersContext as Ctx
from api.domain.dossiers.schemas import SyncBatch, SyncReport
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import body_holds_no_nul

router = APIRouter(prefix="/v1/sync", tags=["sync"], route_class=TransactionRoute)


@router.post("/dossiers", response_model=SyncReport)
async def sync_dossiers(
    ctx: Ctx, batch: SyncBatch, request: Request, idem: Idempotent
) -> SyncReport:
    """Upsert up to 1,000 dossiers by external reference, with a report per item."""
    nul_free = body_holds_no_nul(await request.body())
    return await idem.once(
        lambda: sync.sync(ctx, batch, instance=request.url.path, nul_free=nul_free)
    )
