"""Referrals and orientations, read through the request's scope: a referral is the parties'
(sender, recipient, the partner that redirected it), an orientation its parties' and its
person's care team's. Row-level security repeats both boundaries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, column, func, insert, literal, or_, select, table, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from api.auth.scope import Scope
from api.db.tables import (
    CareTeamMembership,
    Organisation,
    Orientation,
    OrientationEvent,
    Referral,
    ReferralEvent,
    ReferralMessage,
)

AnyRow = Row[tuple[Any, ...]]

_referral = Referral.__table__  # type: ignore[attr-defined]
_event = ReferralEvent.__table__  # type: ignore[attr-defined]
_message = ReferralMessage.__table__  # type: ignore[attr-defined]
_orientation = Orientation.__table__  # type: ignore[attr-defined]
_orientation_event = OrientationEvent.__table__  # type: ignore[attr-defined]
_org = Organisation.__table__  # type: ignore[attr-defined]
_team = CareTeamMembership.__table__  # type: ignore[attr-defined]
# recorded by the people capability; read here to check what a referral rests on
_consent = table(
    "consent",
    column("id"),
    column("beneficiary_id"),
    column("organisation_id"),
    column("competence"),
    column("withdrawn_on"),
)


def _org_columns(alias: Any, prefix: str) -> list[Any]:
    return [
        alias.c.id.label(f"{prefix}_id"),
        alias.c.name.label(f"{prefix}_name"),
        alias.c.kind.label(f"{prefix}_kind"),
    ]


class ReferralStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _party(self) -> Any:
        org = self.scope.organisation_id
        r = _referral.c
        return or_(
            r.sender_organisation_id == org,
            r.recipient_organisation_id == org,
            r.redirected_by_organisation_id == org,
        )

    def _select(self) -> Any:
        sender, recipient, redirector = aliased(_org), aliased(_org), aliased(_org)
        return (
            select(
                _referral,
                *_org_columns(sender, "sender"),
                *_org_columns(recipient, "recipient"),
                *_org_columns(redirector, "redirector"),
            )
            .join(sender, sender.c.id == _referral.c.sender_organisation_id)
            .join(recipient, recipient.c.id == _referral.c.recipient_organisation_id)
            .outerjoin(redirector, redirector.c.id == _referral.c.redirected_by_organisation_id)
        )

    async def insert(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_referral).values(**values))

    async def get(self, referral_id: uuid.UUID, *, for_update: bool = False) -> AnyRow | None:
        if for_update:
            # lock the referral row only (the joined organisations are not locked)
            locked = select(_referral.c.id).where(_referral.c.id == referral_id, self._party())
            if (await self.session.execute(locked.with_for_update())).first() is None:
                return None
        stmt = self._select().where(_referral.c.id == referral_id, self._party())
        return (await self.session.execute(stmt)).first()

    async def update(self, referral_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(_referral)
            .where(_referral.c.id == referral_id, self._party())
            .values(**values, version=_referral.c.version + 1)
        )

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_event).values(**values))

    async def events(self, referral_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_event, *_org_columns(_org, "org"))
            .outerjoin(_org, _org.c.id == _event.c.organisation_id)
            .where(_event.c.referral_id == referral_id)
            .order_by(_event.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def events_of_person(self, person_id: uuid.UUID) -> list[AnyRow]:
        """The events of the referrals about a person that the caller is a party of."""
        stmt = (
            select(_event, _referral.c.competence)
            .join(_referral, _referral.c.id == _event.c.referral_id)
            .where(_referral.c.beneficiary_id == person_id, self._party())
        )
        return list((await self.session.execute(stmt)).all())

    async def chain(self, referral_id: uuid.UUID) -> list[AnyRow]:
        """The referrals this one was redirected to, transitively, oldest first."""
        links = (
            select(_referral.c.id, _referral.c.created_at)
            .where(_referral.c.parent_referral_id == referral_id)
            .cte("links", recursive=True)
        )
        links = links.union_all(
            select(_referral.c.id, _referral.c.created_at).where(
                _referral.c.parent_referral_id == links.c.id
            )
        )
        stmt = (
            self._select()
            .where(_referral.c.id.in_(select(links.c.id)), self._party())
            .order_by(_referral.c.created_at, _referral.c.id)
        )
        return list((await self.session.execute(stmt)).all())

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
    ) -> list[AnyRow]:
        """Newest first, keyset on (created_at, id) along the inbox or outbox index;
        referrals of the ``hidden`` competences left out."""
        org = self.scope.organisation_id
        r = _referral.c
        side = r.recipient_organisation_id if box == "inbox" else r.sender_organisation_id
        stmt = self._select().where(side == org)
        if status:
            stmt = stmt.where(r.status == status)
        if competence:
            stmt = stmt.where(r.competence == competence)
        if beneficiary_id:
            stmt = stmt.where(r.beneficiary_id == beneficiary_id)
        if hidden:
            stmt = stmt.where(r.competence.not_in(sorted(hidden)))
        if after is not None:
            stmt = stmt.where(tuple_(r.created_at, r.id) < tuple_(literal(after[0]), after[1]))
        stmt = stmt.order_by(r.created_at.desc(), r.id.desc()).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def messages(self, referral_id: uuid.UUID) -> list[AnyRow]:
        stmt = (
            select(_message, *_org_columns(_org, "org"))
            .join(_org, _org.c.id == _message.c.organisation_id)
            .where(_message.c.referral_id == referral_id)
            .order_by(_message.c.created_at, _message.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def add_message(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_message).values(**values))

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
        c = _consent.c
        stmt = select(c.id).where(
            c.id == consent_id,
            c.beneficiary_id == beneficiary_id,
            c.withdrawn_on.is_(None),
            or_(c.organisation_id == recipient, c.competence == competence),
        )
        return (await self.session.execute(stmt)).first() is not None

    async def for_consent(self, consent_id: uuid.UUID) -> list[AnyRow]:
        fn = func.referrals_for_consent(consent_id).table_valued(
            "id",
            "status",
            "beneficiary_id",
            "sender_organisation_id",
            "recipient_organisation_id",
        )
        return list((await self.session.execute(select(fn))).all())

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


async def overdue_referrals(session: AsyncSession, today: date, limit: int) -> list[AnyRow]:
    """Unanswered referrals past their deadline, locked for one expiry pass (several workers
    skip each other's rows). Runs as the owner: expiry is the service's own act."""
    r = _referral.c
    stmt = (
        select(r.id, r.status, r.sender_organisation_id, r.recipient_organisation_id)
        .where(r.status.in_(("sent", "acknowledged")), r.response_due_on < today)
        .order_by(r.response_due_on, r.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.execute(stmt)).all())


class OrientationStore:
    def __init__(self, session: AsyncSession, scope: Scope) -> None:
        self.session = session
        self.scope = scope

    def _visible(self) -> Any:
        org = self.scope.organisation_id
        o = _orientation.c
        attached = select(_team.c.beneficiary_id).where(
            _team.c.organisation_id == org, _team.c.ended_at.is_(None)
        )
        return or_(
            o.issuer_organisation_id == org,
            o.target_organisation_id == org,
            o.beneficiary_id.in_(attached),
        )

    def _select(self) -> Any:
        issuer, target = aliased(_org), aliased(_org)
        return (
            select(_orientation, *_org_columns(issuer, "issuer"), *_org_columns(target, "target"))
            .join(issuer, issuer.c.id == _orientation.c.issuer_organisation_id)
            .join(target, target.c.id == _orientation.c.target_organisation_id)
        )

    async def insert(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_orientation).values(**values))

    async def get(self, orientation_id: uuid.UUID, *, for_update: bool = False) -> AnyRow | None:
        if for_update:
            locked = select(_orientation.c.id).where(
                _orientation.c.id == orientation_id, self._visible()
            )
            if (await self.session.execute(locked.with_for_update())).first() is None:
                return None
        stmt = self._select().where(_orientation.c.id == orientation_id, self._visible())
        return (await self.session.execute(stmt)).first()

    async def active(
        self, beneficiary_id: uuid.UUID, competence: str, *, for_update: bool = True
    ) -> AnyRow | None:
        o = _orientation.c
        stmt = select(_orientation).where(
            o.beneficiary_id == beneficiary_id, o.competence == competence, o.status == "accepted"
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).first()

    async def update(self, orientation_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(_orientation)
            .where(_orientation.c.id == orientation_id)
            .values(**values, version=_orientation.c.version + 1)
        )

    async def add_event(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(_orientation_event).values(**values))

    async def events(self, orientation_ids: Sequence[uuid.UUID]) -> list[AnyRow]:
        e = _orientation_event
        stmt = (
            select(e, *_org_columns(_org, "org"))
            .outerjoin(_org, _org.c.id == e.c.organisation_id)
            .where(e.c.orientation_id.in_(list(orientation_ids)))
            .order_by(e.c.id)
        )
        return list((await self.session.execute(stmt)).all())

    async def page(
        self,
        *,
        box: str | None,
        status: str | None,
        beneficiary_id: uuid.UUID | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AnyRow]:
        org = self.scope.organisation_id
        o = _orientation.c
        stmt = self._select()
        if box == "inbox":
            stmt = stmt.where(o.target_organisation_id == org)
        elif box == "outbox":
            stmt = stmt.where(o.issuer_organisation_id == org)
        else:
            stmt = stmt.where(self._visible())
        if status:
            stmt = stmt.where(o.status == status)
        if beneficiary_id:
            stmt = stmt.where(o.beneficiary_id == beneficiary_id)
        if after is not None:
            stmt = stmt.where(tuple_(o.created_at, o.id) < tuple_(literal(after[0]), after[1]))
        stmt = stmt.order_by(o.created_at.desc(), o.id.desc()).limit(limit + 1)
        return list((await self.session.execute(stmt)).all())

    async def end_memberships(self, origin_id: uuid.UUID, reason: str, at: datetime) -> int:
        return await end_origin_memberships(self.session, origin_id, reason, at)

    async def is_member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        """Whether a user belongs to an organisation (a référent must)."""
        fn = func.guichet_is_member(organisation_id, user_id)
        return bool(await self.session.scalar(select(fn)))


async def mark_expired(
    session: AsyncSession, referral_id: uuid.UUID, from_status: str, at: datetime
) -> None:
    """The service expires an unanswered referral: status, event, and the access it gave."""
    await session.execute(
        update(_referral)
        .where(_referral.c.id == referral_id, _referral.c.status == from_status)
        .values(status="expired", updated_at=at, closed_at=at, version=_referral.c.version + 1)
    )
    await session.execute(
        insert(_event).values(
            referral_id=referral_id, at=at, from_status=from_status, to_status="expired"
        )
    )
    await session.execute(
        update(_team)
        .where(_team.c.origin_id == referral_id, _team.c.ended_at.is_(None))
        .values(ended_at=at, end_reason="expired")
    )


async def anonymise_referrals(
    conn: AsyncConnection, person_ids: Sequence[uuid.UUID], now: datetime
) -> None:
    """Retention: the free text of referrals and orientations about people being anonymised
    goes (needs, messages, comments, justifications, inline identities); ids, codes,
    statuses and dates stay for the statistics. Runs in the purge's owner transaction."""
    ids = list(person_ids)
    about = select(_referral.c.id).where(_referral.c.beneficiary_id.in_(ids))
    await conn.execute(
        update(_referral)
        .where(_referral.c.beneficiary_id.in_(ids))
        .values(
            need_description="",
            message=None,
            inline_identity=None,
            consent_override_justification=None,
            consent_declared=None,
            updated_at=now,
        )
    )
    await conn.execute(update(_message).where(_message.c.referral_id.in_(about)).values(body=""))
    await conn.execute(update(_event).where(_event.c.referral_id.in_(about)).values(comment=None))
    oriented = select(_orientation.c.id).where(_orientation.c.beneficiary_id.in_(ids))
    await conn.execute(
        update(_orientation)
        .where(_orientation.c.beneficiary_id.in_(ids))
        .values(reason="", updated_at=now)
    )
    await conn.execute(
        update(_orientation_event)
        .where(_orientation_event.c.orientation_id.in_(oriented))
        .values(comment=None)
    )
