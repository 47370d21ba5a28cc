"""How the change feed's router reaches the feed: built from the request's scope and session,
so that the router imports no repository (the ``routers-never-query`` layer contract)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from api.auth.deps import CurrentScope
from api.domain.changes.repository import ChangeFeed
from api.http.deps import Session


def change_feed(scope: CurrentScope, session: Session) -> ChangeFeed:
    return ChangeFeed(session, scope)


ScopedChangeFeed = Annotated[ChangeFeed, Depends(change_feed)]
