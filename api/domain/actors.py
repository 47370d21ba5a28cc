"""Who acted, as every event row of the service records it."""

from __future__ import annotations

from typing import Any

from api.auth.scope import Scope


def event_actor(scope: Scope) -> dict[str, Any]:
    """The acting organisation, and the user — or the API client and the agent it named."""
    return {
        "organisation_id": scope.organisation_id,
        "actor_user_id": scope.user_id,
        "actor_client_id": scope.client_id,
        "acting_agent": scope.acting_agent,
    }
