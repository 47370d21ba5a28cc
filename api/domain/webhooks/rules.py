"""Pure webhook rules: event types and patterns, which endpoints are allowed (no SSRF into a
partner's or our own network), message shape, and the retry schedule."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from api.problems import FieldError

#: api.md, "Change feed and webhooks"
EVENT_TYPES = frozenset(
    {
        "referral.created",
        "referral.status_changed",
        "referral.message_added",
        "orientation.created",
        "orientation.status_changed",
        "dossier.created",
        "dossier.status_changed",
        # an instruction edited without a status change: the département's system follows it
        "dossier.updated",
        "convention.status_changed",
        "access_request.created",
        "access_request.decided",
        "beneficiary.merged",
        "aid_request.created",
        "aid_request.status_changed",
        "aid_payment.created",
    }
)
EVENT_FAMILIES = frozenset(e.split(".", 1)[0] for e in EVENT_TYPES)
#: sent by POST /v1/webhooks/{id}/test to that subscription only, whatever it asked for
TEST_EVENT = "webhook.test"
MAX_PATTERNS = 50
MAX_URL_LENGTH = 2048

#: first retry after 30 s, doubling up to 6 h between attempts; a message is retried until an
#: attempt made at least 24 h after it was queued fails too (api.md: "at least 24 hours")
FIRST_DELAY = timedelta(seconds=30)
MAX_DELAY = timedelta(hours=6)
RETRY_WINDOW = timedelta(hours=24)
JITTER = 0.2  # ± 20 %: spreads retries of messages that failed together


def event_patterns_errors(patterns: list[str]) -> list[FieldError]:
    """A subscription names exact types, ``<type>.*`` or ``*``."""
    errors = []
    if not patterns:
        errors.append(FieldError("/events", "Name at least one event type, '<type>.*' or '*'."))
    if len(patterns) > MAX_PATTERNS:
        errors.append(FieldError("/events", f"At most {MAX_PATTERNS} patterns."))
    for i, pattern in enumerate(patterns[:MAX_PATTERNS]):
        family, _, rest = pattern.partition(".")
        known = (
            pattern == "*" or pattern in EVENT_TYPES or (rest == "*" and family in EVENT_FAMILIES)
        )
        if not known:
            errors.append(FieldError(f"/events/{i}", f"Unknown event type {pattern!r}."))
    return errors


def matches(pattern: str, event: str) -> bool:
    """The rule ``guichet_record_change`` applies in SQL, for tests and documentation."""
    return pattern in ("*", event) or pattern == event.split(".", 1)[0] + ".*"


# ------------------------------------------------------------------ endpoints and addresses

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# dotted or bare numbers, decimal, octal or hex: forms inet_aton accepts besides a.b.c.d
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.I)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: Address) -> bool:
    """Globally routable unicast only: no loopback, private, shared (CGNAT), link-local,
    multicast, reserved or documentation range, including IPv4 addresses embedded in IPv6
    (mapped ``::ffff:a.b.c.d``, 6to4, NAT64) and Teredo tunnels."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public_address(address.ipv4_mapped)
        if address.sixtofour is not None:
            return is_public_address(address.sixtofour)
        if address.teredo is not None:
            return False
        if address in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        if address.is_site_local:
            return False
    return address.is_global and not (
        address.is_multicast
        or address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_unspecified
    )


@dataclass(frozen=True)
class Endpoint:
    """A subscription URL taken apart: where to connect, and what to name in ``Host`` and
    in TLS (SNI and certificate check)."""

    url: str
    scheme: str
    host: str  # lower case, without brackets
    port: int
    literal: Address | None  # the host when it is an IP address

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def parse_endpoint(url: str, *, allow_private: bool) -> Endpoint | FieldError:
    """Check a subscription URL's form (the addresses it resolves to are checked apart):
    ``https`` (``http`` too when private targets are allowed, for development), a host, no
    credentials, IP literals in canonical form only."""
    if len(url) > MAX_URL_LENGTH:
        return FieldError("/url", f"At most {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return FieldError("/url", "Not a valid URL.")
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        return FieldError("/url", "The URL must use https.")
    if parts.username is not None or parts.password is not None:
        return FieldError("/url", "The URL must not carry credentials.")
    host = (parts.hostname or "").lower()
    if not host or any(c.isspace() for c in url):
        return FieldError("/url", "The URL must name a host.")
    literal: Address | None
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
        if _NUMERIC_HOST.match(host):
            return FieldError("/url", "Write an IP address in its canonical form.")
    if literal is not None and not allow_private and not is_public_address(literal):
        return FieldError("/url", "The URL must point to a public address.")
    return Endpoint(
        url=url,
        scheme=parts.scheme,
        host=host,
        port=port or (443 if parts.scheme == "https" else 80),
        literal=literal,
    )


# ------------------------------------------------------------------ messages and retries


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def message_body(event_type: str, at: datetime, resource_id: str, status: str | None) -> str:
    """``{type, timestamp, data: {id, status?}}``: ids only, the receiver reads details with
    its own rights."""
    data: dict[str, str] = {"id": resource_id}
    if status is not None:
        data["status"] = status
    return json.dumps(
        {"type": event_type, "timestamp": rfc3339(at), "data": data}, separators=(",", ":")
    )


def retry_delay(attempt: int, jitter: float) -> timedelta:
    """Wait after failed attempt number ``attempt`` (1-based); ``jitter`` in [-1, 1]."""
    exponent = min(max(attempt - 1, 0), 30)
    base = min(FIRST_DELAY * (1 << exponent), MAX_DELAY)
    return base * (1 + JITTER * max(-1.0, min(1.0, jitter)))


def gives_up(queued_at: datetime, failed_at: datetime) -> bool:
    """After a failed attempt: stop once attempts have gone on for the whole window."""
    return failed_at - queued_at >= RETRY_WINDOW
