"""Typed domain errors and the one RFC 9457 problem+json renderer.

Domain and store code raise :class:`DomainError` subclasses; they never know about HTTP.
``api.main`` installs :func:`problem_response` as the handler that renders every error the
same way. Every slug listed here must appear in ``openapi/problems.md`` (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class FieldError:
    """One invalid input: a JSON pointer into the request part named by ``location``."""

    pointer: str
    detail: str
    location: str = "body"

    def as_dict(self) -> dict[str, str]:
        return {"pointer": self.pointer, "detail": self.detail, "in": self.location}


@dataclass
class DomainError(Exception):
    """Base of every expected failure; carries what the problem document needs."""

    detail: str = ""
    errors: list[FieldError] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __post_init__(self) -> None:
        super().__init__(self.detail or self.title)


class BadRequest(DomainError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class Unauthenticated(DomainError):
    status = 401
    slug = "unauthenticated"
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Action not permitted"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Resource not found"


class MethodNotAllowed(DomainError):
    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class Conflict(DomainError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class InvalidTransition(Conflict):
    slug = "invalid-transition"
    title = "Transition not allowed from the current status"


class PreconditionFailed(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "The resource changed since it was read"


class PayloadTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(DomainError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationFailed(DomainError):
    status = 422
    slug = "validation-error"
    title = "The request is not valid"


class PreconditionRequired(DomainError):
    status = 428
    slug = "precondition-required"
    title = "If-Match header required"


class TooManyRequests(DomainError):
    status = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class InternalError(DomainError):
    status = 500
    slug = "internal-error"
    title = "Internal error"


def problem_body(error: DomainError, *, instance: str, request_id: str | None) -> dict[str, Any]:
    """The problem document for ``error``; the only place its shape is decided."""
    body: dict[str, Any] = {
        "type": f"/problems/{error.slug}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail or error.title,
        "instance": instance,
        "code": error.slug,
        "request_id": request_id,
    }
    if error.errors:
        body["errors"] = [e.as_dict() for e in error.errors]
    body.update(error.extra)
    return body


def all_problem_classes() -> list[type[DomainError]]:
    """Every concrete problem type, for the documentation drift test."""
    seen: list[type[DomainError]] = []
    stack: list[type[DomainError]] = [DomainError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


class PossibleDuplicate(Conflict):
    slug = "possible-duplicate"
    title = "This person may already be known"
