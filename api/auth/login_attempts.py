"""Login limits in PostgreSQL: the three ``guichet_login_*`` functions of migration 0018.

Each call is its own short transaction on a pooled connection of the runtime role, committed
at once: a reservation must be seen by the other workers' attempts now, not when the login
request that made it commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclass(frozen=True)
class LoginLimits:
    max_account_failures: int = 10
    account_window_seconds: int = 15 * 60
    max_ip_attempts: int = 50
    ip_window_seconds: int = 60
    pending_timeout_seconds: int = 60


class LoginAttempts:
    def __init__(self, engine: AsyncEngine, limits: LoginLimits) -> None:
        self.engine = engine
        self.limits = limits

    async def admit(self, account: bytes, ip: bytes) -> tuple[int | None, int]:
        """``(pending reservation id, 0)`` when admitted, else ``(None, seconds to wait)``."""
        limits = self.limits
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT pending_id, retry_after FROM guichet_login_admit("
                        ":account, :ip, :max_account, :account_window, :max_ip, :ip_window, "
                        ":pending)"
                    ),
                    {
                        "account": account,
                        "ip": ip,
                        "max_account": limits.max_account_failures,
                        "account_window": limits.account_window_seconds,
                        "max_ip": limits.max_ip_attempts,
                        "ip_window": limits.ip_window_seconds,
                        "pending": limits.pending_timeout_seconds,
                    },
                )
            ).one()
        return row.pending_id, int(row.retry_after)

    async def failed(self, pending_id: int | None, account: bytes) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("SELECT guichet_login_failed(:pending, :account)"),
                {"pending": pending_id or 0, "account": account},
            )

    async def succeeded(self, account: bytes) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                text("SELECT guichet_login_succeeded(:account)"), {"account": account}
            )
