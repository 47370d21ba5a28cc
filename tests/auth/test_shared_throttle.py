"""Login limits held in PostgreSQL: per account and per address, shared by every worker
(two throttles on the same key stand for two processes), exact under parallel bursts."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from api.auth.throttle import Admission, LoginLimits, LoginThrottle
from api.problems import TooManyRequests


def throttles(engine: AsyncEngine, count: int, **limits: int) -> list[LoginThrottle]:
    key = os.urandom(32)
    return [LoginThrottle(lambda: engine, key, LoginLimits(**limits)) for _ in range(count)]


async def test_account_failures_are_counted_across_workers(app_engine: AsyncEngine) -> None:
    first, second = throttles(app_engine, 2, max_account_failures=3)
    for worker in (first, second, first):
        await worker.record_failure(await worker.check("user:a@x.fr", "10.0.0.1"))
    with pytest.raises(TooManyRequests) as refused:
        await second.check("user:a@x.fr", "10.0.0.2")
    assert 0 < int(refused.value.headers["Retry-After"]) <= 15 * 60
    await second.check("user:other@x.fr", "10.0.0.2")  # other accounts are not affected


async def test_a_success_clears_the_account(app_engine: AsyncEngine) -> None:
    (worker,) = throttles(app_engine, 1, max_account_failures=2)
    await worker.record_failure(await worker.check("user:b@x.fr", "10.0.0.1"))
    await worker.record_success(await worker.check("user:b@x.fr", "10.0.0.1"))
    for _ in range(2):
        await worker.record_failure(await worker.check("user:b@x.fr", "10.0.0.1"))
    with pytest.raises(TooManyRequests):
        await worker.check("user:b@x.fr", "10.0.0.1")


async def test_an_address_is_limited_whatever_the_accounts(app_engine: AsyncEngine) -> None:
    first, second = throttles(app_engine, 2, max_ip_attempts=4)
    for i in range(4):
        await (first, second)[i % 2].check(f"user:{i}@x.fr", "192.0.2.7")
    with pytest.raises(TooManyRequests) as refused:
        await first.check("user:new@x.fr", "192.0.2.7")
    assert 0 < int(refused.value.headers["Retry-After"]) <= 60
    await first.check("user:new@x.fr", "192.0.2.8")


async def test_a_parallel_burst_admits_exactly_the_limit(app_engine: AsyncEngine) -> None:
    workers = throttles(app_engine, 3, max_account_failures=5)

    async def attempt(i: int) -> Admission | None:
        try:
            return await workers[i % 3].check("user:burst@x.fr", f"198.51.100.{i}")
        except TooManyRequests:
            return None

    admitted = [a for a in await asyncio.gather(*(attempt(i) for i in range(30))) if a]
    assert len(admitted) == 5


async def test_the_runtime_role_cannot_read_the_attempts(app_engine: AsyncEngine) -> None:
    (worker,) = throttles(app_engine, 1)
    await worker.check("user:clear@x.fr", "203.0.113.9")
    async with app_engine.connect() as conn:
        with pytest.raises(Exception, match="permission denied"):
            await conn.execute(text("SELECT subject FROM login_attempt"))
