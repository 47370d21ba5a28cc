"""Per-process caches that a request may trust only while the access version is unchanged.

``access_version`` (migration 0021) is replaced by triggers whenever a change to what a
scope or the competence catalogue is built from commits. :func:`set_db_context` reads it in
the same round trip that sets the transaction's identity and leaves it in the session's
``info``; a value cached under another version is never handed out, so a removed member, a
revoked client or convention, or a changed catalogue takes effect at the next request, as
if nothing were cached. A session that did not read the version (set-up, tests, the
worker) never uses the caches.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

V = TypeVar("V")

#: where :func:`api.db.context.set_db_context` leaves the version it read
VERSION_KEY = "access_version"


def session_version(session: AsyncSession) -> int | None:
    version = session.info.get(VERSION_KEY)
    return version if isinstance(version, int) else None


class VersionedCache(Generic[V]):
    """At most ``size`` values by key, each with the version it was read under (least
    recently stored dropped first)."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[int, V]] = OrderedDict()

    def peek(self, key: Hashable) -> V | None:
        """The value stored for ``key`` whatever its version: a hint, never an answer."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def get(self, session: AsyncSession, key: Hashable) -> V | None:
        """The value stored for ``key`` under the version the session's transaction read."""
        version = session_version(session)
        entry = self._entries.get(key)
        if version is None or entry is None or entry[0] != version:
            return None
        return entry[1]

    def put(self, session: AsyncSession, key: Hashable, value: V) -> None:
        """Store ``value``, read in the session's transaction after it read the version."""
        version = session_version(session)
        if version is None:
            return
        self._entries[key] = (version, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
