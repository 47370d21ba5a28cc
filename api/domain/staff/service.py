"""Members, their roles, role grants and invitations (issue 10, item 5; rules in
:mod:`api.domain.staff.rules`).

Every change writes an audit entry in the organisation's own trail, in the same
transaction, naming the member by id and the roles by code (``purpose``: ``"+dpo -agent"``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from api.auth.password_policy import password_problems
from api.auth.passwords import hash_password_off_loop
from api.auth.permissions import Action
from api.auth.scope import Scope
from api.db.tables import RoleGrant
from api.domain import clock
from api.domain.audit.repository import Access, AuditLog
from api.domain.organisations.repository import OrganisationStore
from api.domain.organisations.schemas import OrganisationRef
from api.domain.organisations.service import get_organisation
from api.domain.staff.repository import Member, MemberStore, RoleGrantStore
from api.domain.staff.rules import (
    GrantStatus,
    PlatformFirstAdminOnly,
    RoleGrantPending,
    SelfRoleChange,
    check_grant_decider,
    check_not_self,
    check_platform_enrolment,
    role_diff,
    split_roles,
)
from api.domain.staff.schemas import InvitationRead, MemberCreate, MemberRead, RoleGrantRead
from api.http.schemas import Page, decode_cursor, encode_cursor
from api.problems import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)


class Manager(Enum):
    """Who manages the organisation's staff in this request: one of its own admins, or the
    platform operator (who only enrols a first admin and approves for a lone admin)."""

    OWN_ADMIN = "own_admin"
    PLATFORM = "platform"


def member_read(member: Member, pending: RoleGrant | None = None) -> MemberRead:
    row = member.membership
    return MemberRead(
        id=row.id,
        user_id=row.user_id,
        organisation_id=row.organisation_id,
        email=member.email,
        full_name=member.full_name,
        roles=row.roles,
        created_at=row.created_at,
        status="active" if row.accepted_at is not None else "invited",
        pending_grant=grant_read(pending) if pending is not None else None,
    )


def grant_read(grant: RoleGrant) -> RoleGrantRead:
    return RoleGrantRead.model_validate(grant, from_attributes=True)


@dataclass(frozen=True)
class Staff:
    """The staff use cases of one request (built in :mod:`api.domain.staff.deps`)."""

    scope: Scope
    orgs: OrganisationStore
    members: MemberStore
    grants: RoleGrantStore
    audit: AuditLog

    async def _manager(self, organisation_id: uuid.UUID, action: Action) -> Manager:
        """The organisation's own admin, or the platform operator (whose rights elsewhere
        the callers narrow); 404 for an unknown organisation."""
        await get_organisation(self.orgs, organisation_id)
        if self.scope.organisation_id == organisation_id:
            self.scope.require(action)
            return Manager.OWN_ADMIN
        if self.scope.permits(Action.MANAGE_ORGANISATIONS):
            return Manager.PLATFORM
        raise Forbidden(detail="Only this organisation's admins manage it.")

    async def _record(self, organisation_id: uuid.UUID, access: Access) -> None:
        await self.audit.record_for(organisation_id, access)

    async def _member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> MemberRead:
        row = await self.members.get(organisation_id, user_id)
        if row is None:
            raise NotFound(detail="No such member.")
        return member_read(row, await self.grants.pending_for(organisation_id, user_id))

    async def list_members(self, organisation_id: uuid.UUID) -> list[MemberRead]:
        await self._manager(organisation_id, Action.READ_MEMBERS)
        rows = await self.members.of_organisation(organisation_id)
        return [member_read(r) for r in rows]

    async def add_member(self, organisation_id: uuid.UUID, body: MemberCreate) -> MemberRead:
        manager = await self._manager(organisation_id, Action.MANAGE_MEMBERS)
        wanted = frozenset(str(r) for r in body.roles)
        if manager is Manager.PLATFORM:
            check_platform_enrolment(wanted, await self.members.admin_count(organisation_id) > 0)
        change = split_roles(frozenset(), wanted, platform_first_admin=manager is Manager.PLATFORM)
        user_id, outcome = await self.members.enrol(
            organisation_id,
            email=str(body.email),
            full_name=body.full_name,
            password_hash=await _chosen_password_hash(body),
            roles=sorted(change.direct),
            now=clock.now(),
        )
        if outcome == "already_member":
            raise Conflict(detail="This person is already a member; change their roles instead.")
        if user_id == self.scope.user_id:
            raise SelfRoleChange(detail="You cannot make yourself a member of an organisation.")
        action = "member.invite" if outcome == "invited" else "member.add"
        purpose = role_diff(frozenset(), change.direct)
        await self._record(organisation_id, Access(action, "member", str(user_id), None, purpose))
        if change.pending:
            await self._request(organisation_id, user_id, change.pending)
        return await self._member(organisation_id, user_id)

    async def set_member_roles(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: list[str]
    ) -> tuple[MemberRead, bool]:
        """The member and whether part of the change waits for another admin."""
        if await self._manager(organisation_id, Action.MANAGE_MEMBERS) is Manager.PLATFORM:
            raise PlatformFirstAdminOnly(detail="Roles are changed by the organisation's admins.")
        if not await self.members.is_member(organisation_id, user_id):
            raise NotFound(detail="No such member.")
        check_not_self(self.scope.user_id, user_id)
        current = await self.members.roles_of(organisation_id, user_id, for_update=True)
        change = split_roles(current, frozenset(roles))
        if change.pending and await self.grants.pending_for(organisation_id, user_id):
            raise _already_pending()
        if change.direct != current:
            await self.members.set_roles(organisation_id, user_id, sorted(change.direct))
            purpose = role_diff(current, change.direct)
            await self._record(
                organisation_id,
                Access("member.roles_change", "member", str(user_id), None, purpose),
            )
        if change.pending:
            await self._request(organisation_id, user_id, change.pending)
        return await self._member(organisation_id, user_id), bool(change.pending)

    async def _request(
        self, organisation_id: uuid.UUID, user_id: uuid.UUID, roles: frozenset[str]
    ) -> None:
        row = await self.grants.add(
            RoleGrant(
                id=uuid.uuid4(),
                organisation_id=organisation_id,
                user_id=user_id,
                roles=sorted(roles),
                status=GrantStatus.PENDING.value,
                requested_by=self.scope.principal_id,
                requested_at=clock.now(),
            )
        )
        if row is None:
            raise _already_pending()
        purpose = role_diff(frozenset(), roles)
        await self._record(
            organisation_id, Access("role_grant.request", "role_grant", str(row.id), None, purpose)
        )

    async def remove_member(self, organisation_id: uuid.UUID, user_id: uuid.UUID) -> None:
        if await self._manager(organisation_id, Action.MANAGE_MEMBERS) is Manager.PLATFORM:
            raise PlatformFirstAdminOnly(detail="Members are removed by the organisation's admins.")
        if not await self.members.remove(organisation_id, user_id):
            raise NotFound(detail="No such member.")
        await self.grants.cancel_pending(
            organisation_id, user_id, self.scope.principal_id, clock.now()
        )
        await self._record(organisation_id, Access("member.remove", "member", str(user_id)))

    # role grants ---------------------------------------------------------------------------

    async def list_grants(
        self, organisation_id: uuid.UUID, status: GrantStatus | None, cursor: str | None, limit: int
    ) -> Page[RoleGrantRead]:
        await self._manager(organisation_id, Action.READ_MEMBERS)
        rows = await self.grants.page(
            organisation_id,
            status=status.value if status else None,
            after=_grant_position(cursor),
            limit=limit,
        )
        page = rows[:limit]
        next_cursor = (
            encode_cursor([page[-1].requested_at.isoformat(), str(page[-1].id)])
            if len(rows) > limit
            else None
        )
        return Page[RoleGrantRead](items=[grant_read(r) for r in page], next_cursor=next_cursor)

    async def decide_grant(
        self, organisation_id: uuid.UUID, grant_id: uuid.UUID, *, approve: bool
    ) -> RoleGrantRead:
        manager = await self._manager(organisation_id, Action.MANAGE_MEMBERS)
        grant = await self.grants.get(organisation_id, grant_id, for_update=True)
        if grant is None:
            raise NotFound(detail="No such role grant.")
        if grant.status != GrantStatus.PENDING:
            raise InvalidTransition(
                detail=f"This grant is already {grant.status}.", extra={"allowed_actions": []}
            )
        check_grant_decider(
            approving=approve,
            decider_user_id=self.scope.user_id,
            platform=manager is Manager.PLATFORM,
            requested_by=grant.requested_by,
            grantee=grant.user_id,
            organisation_admins=await self.members.admin_count(organisation_id),
        )
        status = GrantStatus.APPROVED if approve else GrantStatus.DENIED
        decided = await self.grants.decide(grant_id, status, self.scope.principal_id, clock.now())
        if decided is None:
            raise Conflict(detail="Another admin decided this grant meanwhile.")
        if approve and not await self.members.add_roles(
            organisation_id, grant.user_id, grant.roles
        ):
            raise Conflict(detail="The member left the organisation; nothing to approve.")
        action = "role_grant.approve" if approve else "role_grant.deny"
        purpose = role_diff(frozenset(), frozenset(grant.roles))
        await self._record(
            organisation_id, Access(action, "role_grant", str(grant_id), None, purpose)
        )
        return grant_read(decided)

    # invitations: the signed-in user's side --------------------------------------------------

    def _user(self) -> uuid.UUID:
        if self.scope.user_id is None:
            raise Forbidden(detail="Invitations are answered by people, not API clients.")
        return self.scope.user_id

    async def invitations(self) -> list[InvitationRead]:
        return [
            InvitationRead(
                organisation=OrganisationRef(
                    id=r.organisation_id, name=r.organisation_name, kind=r.organisation_kind
                ),
                roles=r.roles,
                invited_at=r.created_at,
            )
            for r in await self.members.invitations(self._user())
        ]

    async def answer_invitation(self, organisation_id: uuid.UUID, *, accept: bool) -> None:
        user_id = self._user()
        if accept:
            done = await self.members.accept_invitation(user_id, organisation_id, clock.now())
        else:
            done = await self.members.decline_invitation(user_id, organisation_id)
        if not done:
            raise NotFound(detail="No such invitation.")
        action = "member.invitation_accept" if accept else "member.invitation_decline"
        await self.audit.record_in(organisation_id, Access(action, "member", str(user_id)))


def _already_pending() -> RoleGrantPending:
    return RoleGrantPending(
        detail="A grant is already waiting for this member: approve or deny it first."
    )


def _grant_position(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        at, grant_id = datetime.fromisoformat(str(key[0])), uuid.UUID(str(key[1]))
        if at.tzinfo is None:
            raise ValueError("the cursors this service issues carry an offset")
        return at, grant_id
    except ValueError:
        raise ValidationFailed(
            detail="The cursor is not one this service issued.",
            errors=[FieldError(pointer="/cursor", detail="Invalid cursor.", location="query")],
        ) from None


async def _chosen_password_hash(body: MemberCreate) -> str | None:
    """The hash of the password an admin chose for a new member, once it passes the policy
    (length, common and breached-style passwords, the member's own name and e-mail)."""
    if not body.password:
        return None
    problems = password_problems(body.password, email=body.email, full_name=body.full_name)
    if problems:
        raise ValidationFailed(
            detail=problems[0], errors=[FieldError("/password", p) for p in problems]
        )
    return await hash_password_off_loop(body.password)
