"""The referral store: statements built once (at import, or per combination of filters for
the boxes, a hot path), scoped filters added per request, typed rows (:mod:`.rows`)
returned."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Select,
    String,
    Table,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased
from sqlmodel import col

from api.auth.scope import Scope
from api.db.base import core_table
from api.db.driver import driver_connection
from api.domain.audit.repository import CHAINED_FIELDS, insert_many
from api.domain.changes.repository import record_change
from api.domain.organisations.tables import Organisation
from api.domain.people.tables import CareTeamMembership, Consent
from api.domain.referrals.repository.rows import (
    ChainLinkRow,
    MaybePartyOf,
    MessageRow,
    OpenReferral,
    PartiesOfReferral,
    Party,
    PartyOf,
    PartyRef,
    ReferralEventRow,
    ReferralInBox,
)
from api.domain.referrals.tables import Referral, ReferralEvent, ReferralMessage

# statement parts built once: the list and read paths only add their filters ---------------

_sender = aliased(Organisation, name="sender")
_recipient = aliased(Organisation, name="recipient")
_redirector = aliased(Organisation, name="redirector")
_event_org = aliased(Organisation, name="event_org")
_message_org = aliased(Organisation, name="message_org")

_WITH_PARTIES = (
    select(
        Referral,
        PartyOf("sender", _sender),
        PartyOf("recipient", _recipient),
        MaybePartyOf("redirected_by", _redirector),
    )
    .join(_sender, col(_sender.id) == col(Referral.sender_organisation_id))
    .join(_recipient, col(_recipient.id) == col(Referral.recipient_organisation_id))
    .outerjoin(_redirector, col(_redirector.id) == col(Referral.redirected_by_organisation_id))
    # every read shows the row as the database has it now, not as an earlier read left it
    .execution_options(populate_existing=True)
)

# A box (inbox, outbox) is the hot path: one statement per combination of filters, its SQL
# built once, run on the session's driver connection (api.db.driver) with the values bound;
# the rows come back in _BOX_COLUMNS' order, each value as the answer shows it. The ids come
# as text, which is what the answer shows: decoded into UUID objects, then written back as
# text, the four ids of a row were most of the serialising of a page (~0.25 ms of 0.35).
_referral = core_table(Referral)
_BOX_COLUMNS = (
    "r.id::text, r.status, r.competence, s.id::text, s.name, s.kind, rc.id::text, rc.name,"
    " rc.kind, r.beneficiary_id::text, r.need_code, r.urgency, r.response_due_on, r.created_at,"
    " r.updated_at"
)
_BOX_SIDE = {"inbox": "recipient_organisation_id", "outbox": "sender_organisation_id"}


@cache
def _box_statement(
    box: str, status: bool, competence: bool, beneficiary: bool, hidden: bool, after: bool
) -> tuple[str, tuple[str, ...]]:
    """Newest first along the box's index (``ix_referral_inbox``/``_outbox``, or their
    ``_status`` twins), keyset on (created_at, id); each filter present is one bound value.
    The SQL and the names of its values in the order they are bound: the text is the same
    from one request to the next, so each pooled connection prepares it once and PostgreSQL
    can keep a generic plan for it."""
    names: list[str] = []

    def bound(name: str, sql_type: str) -> str:
        names.append(name)
        return f"${len(names)}::{sql_type}"

    where = [f"r.{_BOX_SIDE[box]} = {bound('organisation', 'uuid')}"]
    if status:
        where.append(f"r.status = {bound('status', 'text')}")
    if competence:
        where.append(f"r.competence = {bound('competence', 'text')}")
    if beneficiary:
        where.append(f"r.beneficiary_id = {bound('beneficiary', 'uuid')}")
    if hidden:
        where.append(f"r.competence <> ALL ({bound('hidden', 'text[]')})")
    if after:
        at, id_ = bound("after_at", "timestamptz"), bound("after_id", "uuid")
        where.append(f"(r.created_at, r.id) < ({at}, {id_})")
    sql = (
        f"SELECT {_BOX_COLUMNS} FROM referral r"  # noqa: S608 - constants only: no value is spliced in
        " JOIN organisation s ON s.id = r.sender_organisation_id"
        " JOIN organisation rc ON rc.id = r.recipient_organisation_id"
        f" WHERE {' AND '.join(where)}"
        f" ORDER BY r.created_at DESC, r.id DESC LIMIT {bound('limit', 'bigint')}"
    )
    return sql, tuple(names)


def _in_box(rows: Sequence[Sequence[Any]]) -> list[ReferralInBox]:
    """Rows of a box statement as summaries; one reference per organisation (a box's own
    organisation is on every row)."""
    parties: dict[str, PartyRef] = {}

    def party(org_id: str, name: str, kind: str) -> PartyRef:
        found = parties.get(org_id)
        if found is None:
            found = parties[org_id] = {"id": org_id, "name": name, "kind": kind}
        return found

    return [
        {
            "id": r[0],
            "status": r[1],
            "competence": r[2],
            "sender": party(r[3], r[4], r[5]),
            "recipient": party(r[6], r[7], r[8]),
            "beneficiary_id": r[9],
            "need_code": r[10],
            "urgency": r[11],
            "response_due_on": r[12],
            "created_at": r[13],
            "updated_at": r[14],
        }
        for r in rows
    ]


_EVENTS = select(
    col(ReferralEvent.at),
    col(ReferralEvent.from_status),
    col(ReferralEvent.to_status),
    MaybePartyOf("organisation", _event_org),
    col(ReferralEvent.actor_user_id),
    col(ReferralEvent.actor_client_id),
    col(ReferralEvent.acting_agent),
    col(ReferralEvent.reason_code),
    col(ReferralEvent.outcome_code),
    col(ReferralEvent.comment),
).outerjoin(_event_org, col(_event_org.id) == col(ReferralEvent.organisation_id))

_MESSAGES = select(
    col(ReferralMessage.id),
    PartyOf("organisation", _message_org),
    col(ReferralMessage.author_user_id),
    col(ReferralMessage.author_client_id),
    col(ReferralMessage.acting_agent),
    col(ReferralMessage.body),
    col(ReferralMessage.created_at),
).join(_message_org, col(_message_org.id) == col(ReferralMessage.organisation_id))

_CHAIN_LINKS = select(
    col(Referral.id), PartyOf("recipient", _recipient), col(Referral.status)
).join(_recipient, col(_recipient.id) == col(Referral.recipient_organisation_id))

_REFERRAL_COLUMNS = tuple(c.name for c in _referral.columns)
_INSERT_REFERRAL = _referral.insert()
_INSERT_EVENT = core_table(ReferralEvent).insert()

# A send writes in two round trips on the session's driver connection (api.db.driver), each
# built once: (1) the referral, read back with its parties in the same statement, the audit
# entries of the send and the change announced; (2) its ``sent`` event and the recipient's
# pending membership, whose row-level checks look the referral up (``guichet_can_see_referral``,
# ``guichet_origin_grants``): they see it only from the next statement on, as the
# sub-statements of one statement do not see each other's rows.
_POSTGRESQL = postgresql.dialect()  # type: ignore[no-untyped-call]
_membership = core_table(CareTeamMembership)


def _placeholder(column: Column[Any], number: int) -> str:
    """``$number`` read as the column's type: text for strings (a cast to ``varchar(n)``
    would truncate what the column's length must refuse), JSON given as its text."""
    column_type = column.type
    if isinstance(column_type, JSONB):
        return f"${number}::text::jsonb"
    if isinstance(column_type, ARRAY) and column_type.item_type._type_affinity is String:
        return f"${number}::text[]"
    if column_type._type_affinity is String:
        return f"${number}::text"
    return f"${number}::{column_type.compile(dialect=_POSTGRESQL)}"


def _values(table: Table, names: Sequence[str], first: int = 1) -> str:
    return ", ".join(_placeholder(table.c[name], first + i) for i, name in enumerate(names))


#: the columns a send writes, in the order their values are bound
SENT_COLUMNS = tuple(
    c.name
    for c in _referral.columns
    if c.name
    not in ("redirected_by_organisation_id", "parent_referral_id", "paused_on", "closed_at")
)
SENT_EVENT_COLUMNS = (
    "referral_id",
    "at",
    "to_status",
    "organisation_id",
    "actor_user_id",
    "actor_client_id",
    "acting_agent",
)
PENDING_COLUMNS = tuple(
    c.name
    for c in _membership.columns
    if c.name not in ("referent_user_id", "justification", "ended_at", "end_reason")
)
_RECORDED_AT = len(SENT_COLUMNS) + 1
_ANNOUNCED_AT = _RECORDED_AT + len(CHAINED_FIELDS)
_SEND = (
    "WITH sent AS ("  # noqa: S608 - constants only: no value is spliced in
    f" INSERT INTO referral ({', '.join(SENT_COLUMNS)}) VALUES ({_values(_referral, SENT_COLUMNS)})"
    " RETURNING *"
    f"), recorded AS ({insert_many(_RECORDED_AT)})"
    " SELECT sent.*, s.name AS sender_name, s.kind AS sender_kind,"
    " rc.name AS recipient_name, rc.kind AS recipient_kind,"
    f" {record_change(_ANNOUNCED_AT)} AS change_id"
    " FROM sent JOIN organisation s ON s.id = sent.sender_organisation_id"
    " JOIN organisation rc ON rc.id = sent.recipient_organisation_id"
)
_PENDING_AT = len(SENT_EVENT_COLUMNS) + 1
_OPEN_SENT = (
    "WITH event AS ("  # noqa: S608 - constants only: no value is spliced in
    f" INSERT INTO referral_event ({', '.join(SENT_EVENT_COLUMNS)})"
    f" VALUES ({_values(core_table(ReferralEvent), SENT_EVENT_COLUMNS)})"
    f") INSERT INTO care_team_membership ({', '.join(PENDING_COLUMNS)})"
    f" SELECT {_values(_membership, PENDING_COLUMNS, _PENDING_AT)}"
    f" WHERE ${_PENDING_AT + PENDING_COLUMNS.index('beneficiary_id')}::uuid IS NOT NULL"
)


def _bound(value: Any) -> Any:
    """A value as the driver binds it: a JSON object as its text (None stays NULL)."""
    return json.dumps(value) if isinstance(value, dict) else value


#: Core-style writes: the rows read are refreshed by the next read, not kept in step here
_WRITE = {"synchronize_session": False}


class ReferralStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _party(self) -> ColumnElement[bool]:
        org = self.scope.organisation_id
        return or_(
            col(Referral.sender_organisation_id) == org,
            col(Referral.recipient_organisation_id) == org,
            col(Referral.redirected_by_organisation_id) == org,
        )

    async def insert(self, values: dict[str, Any]) -> None:
        # Core, the values bound: the statement compiles once per set of columns
        await self.session.execute(_INSERT_REFERRAL, values)

    async def send(
        self,
        values: Mapping[str, Any],
        entries: Sequence[Sequence[Any]],
        change: Sequence[Any],
    ) -> PartiesOfReferral:
        """Insert the referral (``values``: :data:`SENT_COLUMNS`) with the audit
        ``entries`` (:meth:`AuditLog.entries`) and the ``change`` announced
        (:meth:`ChangeLog.arguments`), in one statement; the referral as written, with its
        parties."""
        driver = await driver_connection(self.session)
        row = await driver.fetchrow(
            _SEND, *(_bound(values[name]) for name in SENT_COLUMNS), *entries, *change
        )
        assert row is not None  # the insert returns its row, the parties exist (foreign keys)
        referral = Referral(**{name: row[name] for name in _REFERRAL_COLUMNS})
        return PartiesOfReferral(
            referral,
            Party(row["sender_organisation_id"], row["sender_name"], row["sender_kind"]),
            Party(row["recipient_organisation_id"], row["recipient_name"], row["recipient_kind"]),
            None,
        )

    async def open_sent(self, event: Mapping[str, Any], pending: Mapping[str, Any] | None) -> None:
        """The ``sent`` event of a referral the transaction has just inserted, and the
        recipient's pending membership (none for an inline identity: ``pending`` None), in
        one statement."""
        driver = await driver_connection(self.session)
        await driver.execute(
            _OPEN_SENT,
            *(event[name] for name in SENT_EVENT_COLUMNS),
            *(
                (pending[name] for name in PENDING_COLUMNS)
                if pending is not None
                else (None for _ in PENDING_COLUMNS)
            ),
        )

    async def get(
        self, referral_id: uuid.UUID, *, for_update: bool = False
    ) -> PartiesOfReferral | None:
        if for_update:
            # lock the referral row only (the joined organisations are not locked)
            locked = select(col(Referral.id)).where(col(Referral.id) == referral_id, self._party())
            if (await self.session.execute(locked.with_for_update())).first() is None:
                return None
        stmt = _WITH_PARTIES.where(col(Referral.id) == referral_id, self._party())
        row = (await self.session.execute(stmt)).first()
        return None if row is None else PartiesOfReferral(*row)

    async def update(self, referral_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Referral)
            .where(col(Referral.id) == referral_id, self._party())
            .values(**values, version=col(Referral.version) + 1)
            .execution_options(**_WRITE)
        )

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(_INSERT_EVENT, values)

    async def events(self, referral_id: uuid.UUID) -> list[ReferralEventRow]:
        stmt = _EVENTS.where(col(ReferralEvent.referral_id) == referral_id).order_by(
            col(ReferralEvent.id)
        )
        return [ReferralEventRow(**row._mapping) for row in await self.session.execute(stmt)]

    async def events_of_person(self, person_id: uuid.UUID) -> Sequence[tuple[ReferralEvent, str]]:
        """The events of the referrals about a person that the caller is a party of, each
        with its referral's competence."""
        stmt = (
            select(ReferralEvent, col(Referral.competence))
            .join(Referral, col(Referral.id) == col(ReferralEvent.referral_id))
            .where(col(Referral.beneficiary_id) == person_id, self._party())
        )
        return [(event, competence) for event, competence in await self.session.execute(stmt)]

    async def chain(self, referral_id: uuid.UUID) -> list[ChainLinkRow]:
        """The referrals this one was redirected to, transitively, oldest first."""
        links = (
            select(col(Referral.id), col(Referral.created_at))
            .where(col(Referral.parent_referral_id) == referral_id)
            .cte("links", recursive=True)
        )
        links = links.union_all(
            select(col(Referral.id), col(Referral.created_at)).where(
                col(Referral.parent_referral_id) == links.c.id
            )
        )
        stmt = _CHAIN_LINKS.where(col(Referral.id).in_(select(links.c.id)), self._party()).order_by(
            col(Referral.created_at), col(Referral.id)
        )
        return [ChainLinkRow(**row._mapping) for row in await self.session.execute(stmt)]

    async def page(
        self,
        *,
        box: str,
        status: str | None,
        competence: str | None,
        beneficiary_id: uuid.UUID | None,
        hidden: frozenset[str],
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[ReferralInBox]:
        """Newest first, keyset on (created_at, id) along the inbox or outbox index;
        referrals of the ``hidden`` competences left out. One more than ``limit``: whether
        a next page exists."""
        sql, names = _box_statement(
            box,
            status=bool(status),
            competence=bool(competence),
            beneficiary=beneficiary_id is not None,
            hidden=bool(hidden),
            after=after is not None,
        )
        values: dict[str, Any] = {
            "organisation": self.scope.organisation_id,
            "status": status,
            "competence": competence,
            "beneficiary": beneficiary_id,
            "hidden": sorted(hidden),
            "after_at": after[0] if after is not None else None,
            "after_id": after[1] if after is not None else None,
            "limit": limit + 1,
        }
        driver = await driver_connection(self.session)
        return _in_box(await driver.fetch(sql, *(values[name] for name in names)))

    async def messages(self, referral_id: uuid.UUID) -> list[MessageRow]:
        stmt = _MESSAGES.where(col(ReferralMessage.referral_id) == referral_id).order_by(
            col(ReferralMessage.created_at), col(ReferralMessage.id)
        )
        return [MessageRow(**row._mapping) for row in await self.session.execute(stmt)]

    async def add_message(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(ReferralMessage).values(**values))

    # consent ------------------------------------------------------------------------

    async def consent_covers(
        self,
        consent_id: uuid.UUID,
        beneficiary_id: uuid.UUID,
        recipient: uuid.UUID,
        competence: str,
    ) -> bool:
        """A record of information or consent about the person, not withdrawn, covering the
        recipient organisation or the competence."""
        stmt = select(col(Consent.id)).where(
            col(Consent.id) == consent_id,
            col(Consent.beneficiary_id) == beneficiary_id,
            col(Consent.withdrawn_on).is_(None),
            or_(col(Consent.organisation_id) == recipient, col(Consent.competence) == competence),
        )
        return (await self.session.execute(stmt)).first() is not None

    async def for_consent(self, consent_id: uuid.UUID) -> list[OpenReferral]:
        fn = func.referrals_for_consent(consent_id).table_valued(
            "id",
            "status",
            "beneficiary_id",
            "sender_organisation_id",
            "recipient_organisation_id",
        )
        stmt = select(
            fn.c.id, fn.c.status, fn.c.sender_organisation_id, fn.c.recipient_organisation_id
        )
        return [OpenReferral(*row) for row in await self.session.execute(stmt)]

    async def system_transition(
        self,
        referral_id: uuid.UUID,
        from_status: str,
        to_status: str,
        *,
        reason_code: str | None,
        comment: str | None,
        at: datetime,
    ) -> bool:
        fn = func.referral_system_transition(
            referral_id, from_status, to_status, reason_code, comment, at
        )
        return bool(await self.session.scalar(select(fn)))

    # what a referral or orientation gives in the care team ---------------------------

    async def end_memberships(self, origin_id: uuid.UUID, reason: str, at: datetime) -> int:
        return await end_origin_memberships(self.session, origin_id, reason, at)


async def end_origin_memberships(
    session: AsyncSession, origin_id: uuid.UUID, reason: str, at: datetime
) -> int:
    """End the memberships a referral or orientation gave (any organisation's), as a party
    of it or a member of its person's care team (checked by the database function)."""
    fn = func.end_origin_memberships(origin_id, reason, at)
    return int(await session.scalar(select(fn)) or 0)


async def overdue_referrals(session: AsyncSession, today: date, limit: int) -> list[OpenReferral]:
    """Unanswered referrals past their deadline, locked for one expiry pass (several workers
    skip each other's rows). Runs as the owner: expiry is the service's own act."""
    stmt: Select[uuid.UUID, str, uuid.UUID, uuid.UUID] = (
        select(
            col(Referral.id),
            col(Referral.status),
            col(Referral.sender_organisation_id),
            col(Referral.recipient_organisation_id),
        )
        .where(
            col(Referral.status).in_(("sent", "acknowledged")),
            col(Referral.response_due_on) < today,
        )
        .order_by(col(Referral.response_due_on), col(Referral.id))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [OpenReferral(*row) for row in await session.execute(stmt)]


async def mark_expired(
    session: AsyncSession, referral_id: uuid.UUID, from_status: str, at: datetime
) -> None:
    """The service expires an unanswered referral: status, event, and the access it gave."""
    await session.execute(
        update(Referral)
        .where(col(Referral.id) == referral_id, col(Referral.status) == from_status)
        .values(status="expired", updated_at=at, closed_at=at, version=col(Referral.version) + 1)
        .execution_options(**_WRITE)
    )
    await session.execute(
        insert(ReferralEvent).values(
            referral_id=referral_id, at=at, from_status=from_status, to_status="expired"
        )
    )
    team = CareTeamMembership
    await session.execute(
        update(team)
        .where(col(team.origin_id) == referral_id, col(team.ended_at).is_(None))
        .values(ended_at=at, end_reason="expired")
        .execution_options(**_WRITE)
    )


async def anonymise_referrals(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention: the free text of referrals about people being anonymised goes (needs,
    messages, comments, justifications, inline identities); ids, codes, statuses and dates
    stay for the statistics. Runs in the purge's owner transaction."""
    ids = list(person_ids)
    about = select(col(Referral.id)).where(col(Referral.beneficiary_id).in_(ids))
    await conn.execute(
        update(Referral)
        .where(col(Referral.beneficiary_id).in_(ids))
        .values(
            need_description="",
            message=None,
            inline_identity=None,
            consent_override_justification=None,
            consent_declared=None,
            updated_at=now,
        )
    )
    await conn.execute(
        update(ReferralMessage).where(col(ReferralMessage.referral_id).in_(about)).values(body="")
    )
    await conn.execute(
        update(ReferralEvent).where(col(ReferralEvent.referral_id).in_(about)).values(comment=None)
    )
