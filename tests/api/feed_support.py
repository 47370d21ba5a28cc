"""Helpers of the change-feed and webhook tests: reading the feed to the end, waiting for
what commits elsewhere, announcing changes directly, and a real webhook receiver."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook, WebhookVerificationError

from api.db.engine import owner_connection
from api.domain.changes.repository import ChangeLog

T = TypeVar("T")


async def read_all(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    after: str | None,
    *,
    types: str | None = None,
    limit: int = 200,
) -> tuple[list[dict[str, Any]], str | None]:
    """Every event after ``after`` available now, and the cursor to resume from."""
    items: list[dict[str, Any]] = []
    while True:
        params: dict[str, Any] = {"limit": limit}
        if after:
            params["after"] = after
        if types:
            params["types"] = types
        r = await client.get("/v1/changes", params=params, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        assert page["next_cursor"], "a feed answer always says where to resume"
        after = page["next_cursor"]
        if not page["has_more"]:
            return items, after


#: How long a test waits for the feed: it serves an event once every older transaction of the
#: server has ended, and in a parallel run on a loaded machine another worker's test (one
#: transaction for a whole property-based test) can outlast 30 s.
FEED_PATIENCE_SECONDS = 120


async def until(
    check: Callable[[], Awaitable[T | None]], seconds: float = FEED_PATIENCE_SECONDS
) -> T:
    """Poll ``check`` until it returns something truthy. The feed serves an event once every
    older transaction of the server has ended, so a write made elsewhere shows up after the
    longest transaction running on the server at that moment (others' tests included)."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting for the change feed"
        await asyncio.sleep(0.1)


def ids(items: Sequence[dict[str, Any]]) -> list[str]:
    return [i["id"] for i in items]


async def announce(
    database_url: URL,
    *,
    resource_id: uuid.UUID,
    audience: Sequence[uuid.UUID],
    type: str = "beneficiary",
    action: str = "updated",
    event: str = "beneficiary.updated",
    count: int = 1,
) -> None:
    """Announce changes the way a capability does, committed (owner connection)."""
    async with owner_connection(database_url) as conn:
        log = ChangeLog(AsyncSession(bind=conn))
        for _ in range(count):
            await log.record(
                type=type, resource_id=resource_id, action=action, event=event, audience=audience
            )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Hit:
    path: str
    webhook_id: str
    timestamp: str
    verified: bool
    payload: dict[str, Any] | None
    status: int


@dataclass
class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that verifies every message with the Standard
    Webhooks library, the secret chosen by path; ``answer`` decides each status code."""

    port: int = field(default_factory=free_port)
    secrets: dict[str, str] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    answer: Callable[[Hit, int], int] = lambda hit, seen: 200
    delay: float = 0.0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    # the sender hung up mid-request (a worker killed while sending): that is
                    # no delivery, and a receiver records nothing of it
                    self.close_connection = True
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                secret = receiver.secrets.get(self.path)
                payload: Any = None
                try:
                    if secret is None:
                        raise WebhookVerificationError("unknown path")
                    payload = Webhook(secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                if receiver.delay:
                    time.sleep(receiver.delay)
                hit = Hit(
                    self.path,
                    headers.get("webhook-id", ""),
                    headers.get("webhook-timestamp", ""),
                    verified,
                    payload,
                    0,
                )
                with receiver._lock:
                    seen = sum(h.webhook_id == hit.webhook_id for h in receiver.hits)
                    hit.status = receiver.answer(hit, seen) if verified else 400
                    receiver.hits.append(hit)
                self.send_response(hit.status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def on(self, path: str) -> list[Hit]:
        with self._lock:
            return [h for h in self.hits if h.path == path]

    def payload_ids(self, path: str) -> list[str]:
        return [str(h.payload["data"]["id"]) for h in self.on(path) if h.payload]
