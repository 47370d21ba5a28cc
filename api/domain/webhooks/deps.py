"""How the webhook routes reach their use cases: one context per request, built from its scope
and session, so that the router imports no repository (the ``routers-never-query`` layer
contract)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth.deps import CurrentScope
from api.domain.audit.repository import AuditLog
from api.domain.webhooks.repository import WebhookStore
from api.domain.webhooks.service import Hooks
from api.http.deps import Session


def hooks_context(request: Request, scope: CurrentScope, session: Session) -> Hooks:
    return Hooks(
        scope=scope,
        store=WebhookStore(session, scope),
        audit=AuditLog(session, scope),
        sealer=request.app.state.sealer,
        allow_private=request.app.state.settings.webhook_allow_private,
    )


HooksContext = Annotated[Hooks, Depends(hooks_context)]
