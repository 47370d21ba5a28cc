"""Reading the change feed: id-only events the caller's organisation may see now."""

from __future__ import annotations

from api.auth.permissions import Action
from api.auth.scope import Scope
from api.db.tables import ChangeEvent
from api.domain.changes.repository import ChangeFeed
from api.domain.changes.rules import RESOURCE_TYPES, Position, next_position
from api.domain.changes.schemas import ChangePage, ChangeRead
from api.http.schemas import decode_cursor, encode_cursor
from api.problems import FieldError, ValidationFailed


def _after(cursor: str | None) -> Position | None:
    try:
        position = decode_cursor(cursor, 2)
    except ValidationFailed:
        position = ["invalid"]
    if position is None:
        return None
    if not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in position):
        raise ValidationFailed(
            detail="The cursor is not one this service issued.",
            errors=[FieldError("/after", "Invalid cursor.", "query")],
        )
    return position[0], position[1]


def _types(types: str | None) -> list[str] | None:
    if types is None:
        return None
    wanted = [t.strip() for t in types.split(",") if t.strip()]
    unknown = [t for t in wanted if t not in RESOURCE_TYPES]
    if unknown or not wanted:
        raise ValidationFailed(
            detail=f"Unknown type(s): {', '.join(unknown) or '(none)'}; "
            f"known: {', '.join(sorted(RESOURCE_TYPES))}.",
            errors=[FieldError("/types", "Unknown type.", "query")],
        )
    return sorted(set(wanted))


def _position_of(event: ChangeEvent) -> Position:
    assert event.id is not None  # read back from the table: the identity is set
    return event.txid, event.id


async def feed(
    scope: Scope, store: ChangeFeed, *, after: str | None, types: str | None, limit: int
) -> ChangePage:
    scope.require(Action.READ_CHANGES)
    position = _after(after)
    rows, horizon = await store.read(after=position, types=_types(types), limit=limit)
    page = rows[:limit]
    last = _position_of(page[-1]) if page else None
    resume = next_position(position, last, horizon, full=len(rows) > limit)
    return ChangePage(
        items=[
            ChangeRead(
                cursor=encode_cursor(list(_position_of(r))),
                type=r.type,
                id=r.resource_id,
                action=r.action,
                at=r.at,
                event=r.event,
                status=r.status,
            )
            for r in page
        ],
        next_cursor=encode_cursor(list(resume)) if resume else None,
        has_more=len(rows) > limit,
    )
