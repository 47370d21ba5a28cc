"""Creates the platform operator and its first administrator when none exists."""

from __future__ import annotations

import logging

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.passwords import hash_password
from api.auth.principals import PlatformStore
from api.db.engine import owner_connection
from api.domain import clock
from api.settings import Settings

log = logging.getLogger(__name__)

PLATFORM_NAME = "Opérateur de la plateforme"


async def bootstrap_platform_admin(settings: Settings, owner: URL) -> bool:
    """True when an administrator was created (GUICHET_BOOTSTRAP_ADMIN_EMAIL/_PASSWORD)."""
    if not settings.bootstrap_admin_email or settings.bootstrap_admin_password is None:
        return False
    async with owner_connection(owner) as conn:
        store = PlatformStore(AsyncSession(bind=conn))
        if await store.has_platform_admin():
            return False
        now = clock.now()
        organisation_id = await store.platform_organisation(PLATFORM_NAME, now)
        user_id = await store.add_admin(
            organisation_id,
            settings.bootstrap_admin_email,
            "Administrateur de la plateforme",
            hash_password(settings.bootstrap_admin_password.get_secret_value()),
            now,
        )
    log.info("platform administrator created", extra={"user_id": str(user_id)})
    return True
