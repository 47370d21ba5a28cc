"""Pure ASGI middleware: request id, body size limit, access log and metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http import metrics
from api.http.errors import database_problem
from api.logging import request_id_var
from api.problems import (
    PROBLEM_MEDIA_TYPE,
    DomainError,
    InternalError,
    PayloadTooLarge,
    ServiceUnavailable,
    problem_body,
)

access_log = logging.getLogger("guichet.access")
log = logging.getLogger(__name__)

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class RequestContextMiddleware:
    """Echoes or creates ``X-Request-ID``, refuses bodies over the limit with a 413 problem,
    and records one access-log line and the metrics per request. The log names the route
    template, never the query string (which may hold a person's name)."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        supplied = _header(scope, b"x-request-id")
        request_id = (
            supplied if supplied and _SAFE_REQUEST_ID.match(supplied) else str(uuid.uuid4())
        )
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False
        too_large = PayloadTooLarge(detail=f"The request body exceeds {self.max_body_bytes} bytes.")
        overflow: list[bool] = []  # set by the limited receive once the body passes the limit

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if overflow and not response_started:
                # Body parsers (forms, JSON) turn any error while reading into their own 400:
                # whatever the app answers after the limit was passed, the answer is a 413.
                response_started = True
                status = too_large.status
                await self._send_problem(scope, send, request_id, too_large)
                return
            if overflow:
                return
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message["headers"] = headers
            await send(message)

        try:
            declared = _header(scope, b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
                overflow.append(True)
                await send_with_id({"type": "http.response.start", "status": 413})
            else:
                await self.app(scope, self._limited(receive, overflow), send_with_id)
        except Exception as error:
            # Rendered here rather than by Starlette's outermost handler so that the 500 still
            # carries the request id; the log has the traceback, the body never does.
            if overflow:  # the body was too large: already answered, nothing unexpected
                if not response_started:
                    await send_with_id({"type": "http.response.start", "status": 413})
                return
            problem = self._problem_for(error)
            if response_started:
                raise
            status, response_started = problem.status, True
            await self._send_problem(scope, send, request_id, problem)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_template(scope)
            metrics.observe_request(scope["method"], route, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)

    @staticmethod
    def _problem_for(error: Exception) -> DomainError:
        if isinstance(error, DomainError):  # raised by an inner middleware (back-pressure)
            return error
        problem = database_problem(error)
        if problem is None:
            log.exception("unexpected error")
            return InternalError(detail="An unexpected error occurred.")
        log.warning("database unavailable", exc_info=True)
        return problem

    def _limited(self, receive: Receive, overflow: list[bool]) -> Receive:
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    overflow.append(True)
                    raise PayloadTooLarge(
                        detail=f"The request body exceeds {self.max_body_bytes} bytes."
                    )
            return message

        return limited_receive

    async def _send_problem(
        self, scope: Scope, send: Send, request_id: str, error: DomainError
    ) -> None:
        body = json.dumps(
            problem_body(error, instance=scope["path"], request_id=request_id)
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode("latin-1")),
                    *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "unmatched"


#: answered whatever the load: liveness, readiness and metrics must not be shed
EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class InFlightLimit:
    """Back-pressure: at most ``limit`` requests in progress in this process; beyond it, an
    immediate 503 with ``Retry-After`` rather than a queue that turns a burst into multi-second
    waits for everyone (the pool, argon2 and the event loop are the real bottlenecks, and a
    request waiting for them holds memory and a socket). Health endpoints are exempt, so an
    orchestrator does not restart a process that is merely busy. ``limit=0`` disables it."""

    def __init__(self, app: ASGIApp, *, limit: int, retry_after_seconds: int = 1) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = str(retry_after_seconds)
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            metrics.SHED.inc()
            raise ServiceUnavailable(
                detail="The service is at capacity; retry shortly.",
                headers={"Retry-After": self.retry_after},
            )
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
