"""Reaching a subscriber's endpoint: name resolution checked against private ranges, and a
signed POST to the very address that was checked.

The check runs when a subscription is created *and* before every attempt: a name that
resolved to a public address yesterday may point into our network today (DNS rebinding).
Every resolved address must be public, and the request connects to the address checked,
naming the host only in ``Host`` and in TLS (SNI and certificate check), so no second
resolution can slip another address in.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from api.domain.webhooks.rules import Address, Endpoint, is_public_address

#: bytes of a subscriber's answer read at most (it is never stored)
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "guichet-webhooks/1"
RESOLVE_SECONDS = 5.0


class UnsafeEndpoint(Exception):
    """The endpoint cannot be used: unresolvable, or not public."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def resolve(endpoint: Endpoint, *, allow_private: bool) -> Address:
    """The address to connect to; every address the host resolves to must be public unless
    private targets are allowed."""
    if endpoint.literal is not None:
        addresses: list[Address] = [endpoint.literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(RESOLVE_SECONDS):
                infos = await loop.getaddrinfo(
                    endpoint.host,
                    endpoint.port,
                    type=socket.SOCK_STREAM,
                    proto=socket.IPPROTO_TCP,
                )
        except (OSError, UnicodeError, TimeoutError):
            raise UnsafeEndpoint("the host name does not resolve") from None
        addresses = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone
            addresses.append(ipaddress.ip_address(text))
        if not addresses:
            raise UnsafeEndpoint("the host name does not resolve")
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise UnsafeEndpoint("the host resolves to a non-public address")
    return addresses[0]


def new_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def signed_headers(secret: str, webhook_id: str, body: str, sent_at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers: the id (the same on every retry), the sending time in
    whole seconds, and ``v1,<base64 HMAC-SHA256 of id.timestamp.body>``."""
    second = datetime.fromtimestamp(int(sent_at.timestamp()), UTC)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(second.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, second, body),
    }


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def post(
    http: httpx.AsyncClient,
    endpoint: Endpoint,
    address: Address,
    body: str,
    headers: dict[str, str],
) -> Answer:
    """POST ``body`` to ``address``, never following redirects; the answer's status (any
    2xx is a delivery) or the class of the error, never the answer's body."""
    url = httpx.URL(endpoint.url).copy_with(host=str(address))
    extensions = {}
    if endpoint.scheme == "https" and endpoint.literal is None:
        extensions["sni_hostname"] = endpoint.host
    request_headers = {
        **headers,
        "host": endpoint.host_header,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    try:
        async with http.stream(
            "POST",
            url,
            content=body.encode(),
            headers=request_headers,
            extensions=extensions,
            follow_redirects=False,
        ) as answer:
            read = 0
            async for chunk in answer.aiter_raw():
                read += len(chunk)
                if read > MAX_ANSWER_BYTES:
                    break
            code = answer.status_code
    except httpx.TimeoutException:
        return Answer(None, "timeout")
    except httpx.HTTPError as error:
        return Answer(None, type(error).__name__)
    return Answer(code, None if 200 <= code < 300 else f"HTTP {code}")
