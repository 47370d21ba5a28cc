"""Exception handlers: every error leaves as RFC 9457 problem+json."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.db.engine import DRIVER_ERRORS, DRIVER_INTEGRITY_ERROR, UNWRAPPED_CONNECTION_ERRORS
from api.problems import (
    PROBLEM_MEDIA_TYPE,
    Conflict,
    DomainError,
    FieldError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    ValidationFailed,
    problem_body,
)

#: SQLSTATE classes and codes that mean "the database cannot serve now", not "this request
#: is wrong": connection failures (08), shutdowns and terminated backends (57P0x), too many
#: connections (53300), a statement or lock cancelled by its timeout (57014, 55P03),
#: serialization and deadlock failures (40001, 40P01).
_UNAVAILABLE_CLASSES = ("08", "53", "57P", "58")
_UNAVAILABLE_CODES = {"57014", "55P03", "40001", "40P01"}

RETRY_AFTER_SECONDS = 2


def _sqlstate(error: BaseException) -> str | None:
    current: BaseException | None = error
    while current is not None:
        code = getattr(current, "sqlstate", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def database_problem(error: BaseException) -> DomainError | None:
    """The problem a database failure should answer, or ``None`` when ``error`` is not one.

    Unavailability (server down, connection killed, pool exhausted, statement timeout) is a
    503 with ``Retry-After``: the client may retry, and since the request's transaction rolled
    back, a retry neither loses nor duplicates anything. A constraint violation is a 409 and
    any other data error a 422: they are about the request. The database's own message is
    never repeated (it may quote personal data)."""
    if isinstance(error, (PoolTimeout, OSError, ConnectionError, *UNWRAPPED_CONNECTION_ERRORS)):
        return _unavailable()
    # the statements run on the driver connection (api.db.driver) raise the driver's errors
    if not isinstance(error, (DBAPIError, *DRIVER_ERRORS)):
        return None
    code = _sqlstate(error) or ""
    invalidated = isinstance(error, DBAPIError) and error.connection_invalidated
    if invalidated or code in _UNAVAILABLE_CODES:
        return _unavailable()
    if code.startswith(_UNAVAILABLE_CLASSES) or not code:
        # no SQLSTATE: the driver lost the connection (closed mid-operation, refused)
        return _unavailable()
    if isinstance(error, IntegrityError | DRIVER_INTEGRITY_ERROR):
        return Conflict(detail="The request conflicts with data recorded meanwhile; read it again.")
    return ValidationFailed(detail="A value of the request cannot be stored.")


def _unavailable() -> ServiceUnavailable:
    return ServiceUnavailable(
        detail="The service is temporarily unable to answer; retry shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


log = logging.getLogger(__name__)

_LOCATIONS = {"body", "query", "path", "header", "cookie"}


def problem_response(request: Request, error: DomainError) -> JSONResponse:
    body = problem_body(
        error, instance=request.url.path, request_id=getattr(request.state, "request_id", None)
    )
    return JSONResponse(
        body, status_code=error.status, media_type=PROBLEM_MEDIA_TYPE, headers=error.headers
    )


def _pointer(loc: tuple[Any, ...]) -> tuple[str, str]:
    """('body', 'address', 'postal_code') → ('/address/postal_code', 'body')."""
    location = str(loc[0]) if loc and loc[0] in _LOCATIONS else "body"
    parts = loc[1:] if loc and loc[0] in _LOCATIONS else loc
    escaped = [str(p).replace("~", "~0").replace("/", "~1") for p in parts]
    return "/" + "/".join(escaped), location


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            errors.append(_malformed_json(error))
            continue
        pointer, location = _pointer(tuple(error.get("loc", ())))
        message = str(error.get("msg", "invalid value"))
        if error.get("type") == "extra_forbidden":
            message = "Unknown field."
        errors.append(FieldError(pointer=pointer, detail=message, location=location))
    return errors


def _malformed_json(error: dict[str, Any]) -> FieldError:
    """FastAPI reports a body that is not JSON at ``("body", <character offset>)``: the
    offset is no JSON pointer, so point at the whole body and say where it broke."""
    loc = error.get("loc", ())
    position = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    reason = str((error.get("ctx") or {}).get("error", "")) or "invalid JSON"
    where = f" at character {position}" if position is not None else ""
    return FieldError(pointer="", detail=f"The body is not valid JSON{where}: {reason}.")


def _where(error: FieldError) -> str:
    return f"{error.location} {error.pointer}" if error.pointer else error.location


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def on_domain_error(request: Request, exc: DomainError) -> JSONResponse:
        return problem_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        detail = "; ".join(f"{_where(e)}: {e.detail}" for e in errors[:5])
        return problem_response(request, ValidationFailed(detail=detail, errors=errors))

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        problem = database_problem(exc)
        if problem is None:
            raise exc
        if problem.status == 503:
            # class, SQLSTATE and frames only (api.logging): the text may quote values
            log.warning("database unavailable", exc_info=exc)
        return problem_response(request, problem)

    database_errors: tuple[type[Exception], ...] = (
        DBAPIError,
        *DRIVER_ERRORS,
        PoolTimeout,
        OSError,
        *UNWRAPPED_CONNECTION_ERRORS,
    )
    for error_type in database_errors:
        app.add_exception_handler(error_type, on_database_error)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        error: DomainError
        if exc.status_code == 404:
            error = NotFound(detail="No resource at this address.")
        elif exc.status_code == 405:
            # Starlette names only the first route that matched the path; list them all.
            allowed = sorted(
                {
                    method
                    for regex, methods in request.app.state.route_methods
                    if regex.match(request.url.path)
                    for method in methods
                }
            )
            error = MethodNotAllowed(
                detail=f"{request.method} is not allowed here.",
                headers={"Allow": ", ".join(allowed)} if allowed else dict(exc.headers or {}),
            )
        else:
            error = DomainError(detail=str(exc.detail))
            error.status = exc.status_code  # type: ignore[misc]
        return problem_response(request, error)
