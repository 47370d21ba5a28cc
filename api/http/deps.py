"""Request-level dependencies: the database session (one per request, committed before the
response is sent, rolled back on error) and the checks of every request's input."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Request, Response, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.driver import end_request, on_demand
from api.problems import FieldError, UnsupportedMediaType, ValidationFailed

#: the ASGI scope's key of the request's session: None until a dependency opens it
_SESSION = "guichet.session"


def begin_request(scope: MutableMapping[str, Any]) -> None:
    """Let the request open a session (:func:`_session`), which :func:`finish_request`
    ends."""
    scope[_SESSION] = None


async def finish_request(scope: MutableMapping[str, Any], *, commit: bool) -> None:
    """Commit the request's session, or roll it back, and give its connection back, if the
    request opened one (api.db.driver)."""
    session = scope.pop(_SESSION, None)
    if session is not None:
        await end_request(session, commit=commit)


class TransactionRoute(APIRoute):
    """The route of every endpoint (``route_class`` of every router, checked at start-up):
    the request's session is committed once the endpoint and the serialising of its answer
    succeeded, before the answer is sent, and rolled back when anything raised (the error
    handlers answer then).

    A ``yield`` dependency would do the same, but FastAPI wraps each one in an exit stack and
    a cancellation scope: about a sixth of the CPU of an endpoint that does nothing else
    (``bench/read.py``'s FastAPI floor against the same endpoint without it)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            begin_request(request.scope)
            try:
                response = await handler(request)
            except BaseException:
                await finish_request(request.scope, commit=False)
                raise
            await finish_request(request.scope, commit=True)
            return response

        return route


async def _session(request: Request) -> AsyncSession:
    """The request's session, its connection checked out on demand (api.db.driver), ended
    by its route (:class:`TransactionRoute`)."""
    try:
        session: AsyncSession | None = request.scope[_SESSION]
    except KeyError:
        # nothing would commit it nor give its connection back
        route = request.scope.get("route")
        raise RuntimeError(f"{route!r} does not end its session: not a TransactionRoute") from None
    if session is None:
        session = request.scope[_SESSION] = on_demand(request.app.state.sessionmaker())
    return session


Session = Annotated[AsyncSession, Depends(_session)]


@dataclass(frozen=True)
class _InputRules:
    """What a route reads, derived once from its dependant (not at every request)."""

    query_names: frozenset[str]
    has_body: bool
    expects_form: bool


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _expects_form(dependant: Dependant) -> bool:
    return any(isinstance(f.field_info, params.Form) for f in dependant.body_params)


_RULES = "_guichet_input_rules"


def _input_rules(route: object) -> _InputRules | None:
    """The rules of the matched route, kept on the route beside the dependant they were
    derived from (derived again if the route's dependant is replaced)."""
    dependant = getattr(route, "dependant", None)
    if not isinstance(dependant, Dependant):
        return None
    kept = getattr(route, _RULES, None)
    if kept is not None and kept[0] is dependant:
        return cast(_InputRules, kept[1])
    rules = _InputRules(
        query_names=frozenset(_query_names(dependant)),
        has_body=bool(dependant.body_params),
        expects_form=_expects_form(dependant),
    )
    setattr(route, _RULES, (dependant, rules))
    return rules


async def check_request_input(request: Request) -> None:
    """Every route's input checks, one dependency of the application (one per request).

    Unknown query parameters are refused like unknown body fields: a typo (``?comune=``)
    must not silently widen a search. Then input PostgreSQL cannot take is refused before
    any handler runs: the NUL character in a query, path or form parameter (bodies are
    checked by ``schemas.common.Input``), and a body in a media type the route does not read
    (415 rather than a confusing 422)."""
    rules = _input_rules(request.scope.get("route"))
    if rules is None:
        return
    query = request.query_params
    if query:
        unknown = sorted(set(query) - rules.query_names)
        if unknown:
            raise ValidationFailed(
                detail=f"Unknown query parameter(s): {', '.join(unknown)}.",
                errors=[FieldError(f"/{name}", "Unknown parameter.", "query") for name in unknown],
            )
    media_type = _media_type(request) if rules.has_body else None
    if media_type is not None:
        _refuse_unsupported_media_type(media_type, rules)
    if query:
        _refuse_nul("query", query.multi_items())
    _refuse_nul("path", request.path_params.items())
    if rules.expects_form and media_type in _FORM_TYPES:
        _refuse_nul("body", (await request.form()).multi_items())


_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _media_type(request: Request) -> str | None:
    raw = request.headers.get("content-type")
    return raw.split(";", 1)[0].strip().lower() if raw else None


def _refuse_unsupported_media_type(media_type: str, rules: _InputRules) -> None:
    if rules.expects_form:
        accepted = media_type in _FORM_TYPES
        expected = "application/x-www-form-urlencoded"
    else:
        accepted = media_type == "application/json" or media_type.endswith("+json")
        expected = "application/json"
    if not accepted:
        raise UnsupportedMediaType(detail=f"Send the body as {expected}.")


def _refuse_nul(location: str, values: Iterable[tuple[str, object]]) -> None:
    errors = [
        FieldError(f"/{name}", "Text may not contain the NUL character.", location)
        for name, value in values
        if isinstance(value, str) and "\x00" in value
    ]
    if errors:
        raise ValidationFailed(detail=errors[0].detail, errors=errors)
