"""Per-process caches that a request may trust only while the access version is unchanged.

``access_version`` (migration 0021) is replaced by triggers whenever a change to what a
scope or the competence catalogue is built from commits. :func:`set_db_context` reads it in
the same round trip that sets the transaction's identity and leaves it in the session's
``info``; a value cached under another version is never handed out, so a removed member, a
revoked client or convention, or a changed catalogue takes effect at the next request, as
if nothing were cached. A session that did not read the version (set-up, tests, the
worker) never uses the caches.

A value is stored when its transaction **commits**, never before: until then it stays with
the session (its own transaction may read it back). A transaction that wrote what a value is
built from sees its own uncommitted rows; stored at once under the version it began with, a
value read after such a write would be served to every other request at that version, and
kept if the transaction rolled back. Deferred to the commit, what it stores is committed, and
the commit bumps the version anyway.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar, cast

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

V = TypeVar("V")

#: where :func:`api.db.context.set_db_context` leaves the version it read
VERSION_KEY = "access_version"
#: where a transaction's values wait for its commit: (cache, key, version, value)
_PENDING = "versioned_cache_pending"


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
        if version is None:
            return None
        for cache, pending_key, _, value in reversed(session.info.get(_PENDING, ())):
            if cache is self and pending_key == key:
                return cast(V, value)  # stored by this transaction, not committed yet
        entry = self._entries.get(key)
        if entry is None or entry[0] != version:
            return None
        return entry[1]

    def put(self, session: AsyncSession, key: Hashable, value: V) -> None:
        """Store ``value``, read in the session's transaction after it read the version,
        once that transaction commits."""
        version = session_version(session)
        if version is None:
            return
        session.info.setdefault(_PENDING, []).append((self, key, version, value))

    def _store(self, key: Hashable, version: int, value: V) -> None:
        self._entries[key] = (version, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


def store_committed(session: Session) -> None:
    """Store the values the session's transaction read, that transaction committed: run by
    the session's commit, and by api.db.driver when it commits a request's transaction on the
    driver without the session's commit."""
    for cache, key, version, value in session.info.pop(_PENDING, ()):
        cache._store(key, version, value)


@event.listens_for(Session, "after_commit")
def _store_committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: nothing is committed yet
    store_committed(session)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: object) -> None:
    # a savepoint rolled back drops them too: which were read inside it is not kept
    session.info.pop(_PENDING, None)
