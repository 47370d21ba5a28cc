"""Idempotent creating requests (api.md, Conventions).

Every route that creates (``POST`` answering 201) depends on :data:`Idempotent` and runs its
use case through :meth:`Idempotency.once` (a test walks the routes to check it)::

    return await idem.once(lambda: service.create(...), location=lambda c: f"/v1/x/{c.id}")

With an ``Idempotency-Key``, the key is taken in the request's own transaction: an
``INSERT … ON CONFLICT`` on ``(principal, organisation, key)``. A second request with the
same key waits on the unique index until the first one ends: if the first commits, the
second answers its stored response (same status, body, ``Location``/``ETag``, plus
``Idempotent-Replayed: true``); if the first fails, its transaction rolls back, the key is
free again and the second runs. The wait is bounded (``409 idempotency-key-in-use``). The
same key with another request (method, path, query or JSON body) is ``422
idempotency-key-reuse``. Keys are kept 24 hours; older ones count as new (the worker
purges them).

API clients must send a key (machines retry; people rarely double-click twice a day). The
request is authorised and validated first, so that an answer never depends on the header:
a request that would fail fails the same way, one that would succeed answers ``428
idempotency-key-required`` and writes nothing (its transaction rolls back).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute

from api.auth.deps import CurrentScope
from api.auth.scope import PrincipalKind, Scope
from api.domain.changes.repository import Sealer
from api.http.deps import Session
from api.http.idempotency_keys import IdempotencyKeys, KeyInFlight
from api.http.tables import IdempotencyKey
from api.problems import DomainError

T = TypeVar("T")

WINDOW = timedelta(hours=24)
#: how long a duplicate waits for the first request with its key before a 409
IN_FLIGHT_WAIT = timedelta(seconds=10)
#: response headers replayed with the body
REPLAYED_HEADERS = ("location", "etag")


class IdempotencyKeyReuse(DomainError):
    status = 422
    slug = "idempotency-key-reuse"
    title = "This idempotency key was used for another request"


class IdempotencyKeyInUse(DomainError):
    status = 409
    slug = "idempotency-key-in-use"
    title = "A request with this idempotency key is still running"


class IdempotencyKeyRequired(DomainError):
    status = 428
    slug = "idempotency-key-required"
    title = "Idempotency-Key header required"


def _in_use() -> IdempotencyKeyInUse:
    return IdempotencyKeyInUse(
        detail="The first request with this key has not finished; retry later.",
        headers={"Retry-After": "1"},
    )


class Replay(Exception):
    """Raised to answer a stored response; the request's transaction rolls back (nothing
    was written)."""

    def __init__(self, response: Response) -> None:
        super().__init__("idempotent replay")
        self.response = response


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    """What makes two requests "the same": method, path, query and the body, as canonical
    JSON when it is JSON (key order and spacing do not matter)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), query.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class Idempotency:
    """One request's handle on its key (see the module docstring)."""

    def __init__(
        self,
        request: Request,
        response: Response,
        scope: Scope,
        keys: IdempotencyKeys,
        key: str | None,
    ) -> None:
        self.request = request
        self.response = response
        self.scope = scope
        self.keys = keys
        self.key = key

    async def once(
        self,
        operation: Callable[[], Awaitable[T]],
        *,
        location: Callable[[T], str] | None = None,
    ) -> T:
        if self.key is None:
            result = await operation()
            if self.scope.principal_kind is PrincipalKind.CLIENT:
                raise IdempotencyKeyRequired(
                    detail="API clients must send an Idempotency-Key header with every "
                    "creating request (a unique value per operation, reused on retries)."
                )
            self._locate(result, location)
            return result
        request = self.request
        request_hash = fingerprint(
            request.method, request.url.path, request.url.query, await request.body()
        )
        try:
            stored = await self.keys.claim(
                self.key, request_hash, window=WINDOW, wait=IN_FLIGHT_WAIT
            )
        except KeyInFlight:
            raise _in_use() from None
        if stored is not None:
            if stored.request_hash != request_hash:
                raise IdempotencyKeyReuse(
                    detail="This key was used for a different request in the last 24 hours; "
                    "use a new key for a new operation."
                )
            if stored.status_code is None:  # never committed without its answer; be safe
                raise _in_use()
            raise Replay(self._replayed(stored, stored.status_code))
        result = await operation()
        self._locate(result, location)
        status, body = self._serialised(result)
        headers = {
            name: self.response.headers[name]
            for name in REPLAYED_HEADERS
            if name in self.response.headers
        }
        await self.keys.save(self.key, status, headers, body)
        return result

    def _locate(self, result: T, location: Callable[[T], str] | None) -> None:
        if location is not None:
            self.response.headers["Location"] = location(result)

    def _serialised(self, result: Any) -> tuple[int, bytes]:
        """The status and body FastAPI is about to send, byte for byte: the route's
        response model, validated and dumped with the route's options."""
        route = self.request.scope.get("route")
        assert isinstance(route, APIRoute)
        status = self.response.status_code or route.status_code or 200
        field = route.response_field
        if field is None:
            return status, json.dumps(jsonable_encoder(result)).encode()
        value, errors = field.validate(result, {}, loc=("response",))
        assert not errors, errors
        body = field.serialize_json(
            value,
            include=route.response_model_include,
            exclude=route.response_model_exclude,
            by_alias=route.response_model_by_alias,
            exclude_unset=route.response_model_exclude_unset,
            exclude_defaults=route.response_model_exclude_defaults,
            exclude_none=route.response_model_exclude_none,
        )
        return status, body

    def _replayed(self, stored: IdempotencyKey, status_code: int) -> Response:
        headers = {**(stored.headers or {}), "Idempotent-Replayed": "true"}
        return Response(
            content=self.keys.body_of(stored),
            status_code=status_code,
            media_type="application/json",
            headers=headers,
        )


async def idempotency(
    request: Request,
    response: Response,
    scope: CurrentScope,
    session: Session,
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[\x21-\x7e]+$",
            description="A unique value per operation (e.g. a UUID), reused on retries: the "
            "same request within 24 hours answers the first response again. Required for "
            "API clients.",
        ),
    ] = None,
) -> Idempotency:
    keys = IdempotencyKeys(session, scope, request.app.state.sealer)
    return Idempotency(request, response, scope, keys, key)


Idempotent = Annotated[Idempotency, Depends(idempotency)]


def install_idempotency(app: FastAPI) -> None:
    """The sealer of stored answers, and the handler sending a replayed answer."""
    app.state.sealer = Sealer.from_settings(app.state.settings)

    async def on_replay(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Replay)
        return exc.response

    app.add_exception_handler(Replay, on_replay)
