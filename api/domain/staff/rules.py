"""Staff governance (issue 10, domain.md §7): who may give which role to whom. Pure.

- Nobody changes their own roles: an admin who could would be every role at once.
- ``sensitive`` (child protection and violence records) and ``dpo`` (exports, access logs)
  open the most personal data: one admin asks, a *different* admin of the organisation
  approves (neither the one who asked nor the member concerned). While the organisation
  has a single admin (a new one), the platform operator is that second pair of eyes; it
  never asks for such a role itself.
- ``admin`` is guarded the same way: admins approve grants, so one admin who could name a
  second (an account whose password they chose) would approve their own requests.
- ``decideur`` is granted by one admin, audited like every change: it adds the power to
  decide (dossiers, aids) but no data category ``agent`` does not already read, so a second
  admin would guard money, not secrecy — the organisation's own rules of delegation do that.
- Removing a role is never held back: reducing access must be immediate.
- The platform operator creates organisations and their first admin (role ``admin`` only,
  while the organisation has no admin), and nothing else in another organisation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from api.auth.permissions import Role
from api.problems import Conflict, Forbidden

#: roles that need a second admin's approval to be added
GUARDED_ROLES = frozenset({Role.SENSITIVE.value, Role.DPO.value, Role.ADMIN.value})
#: what the platform operator may give in another organisation: its first admin
PLATFORM_ROLES = frozenset({Role.ADMIN.value})


class GrantStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    CANCELLED = "cancelled"  # the member left before anyone decided


class SelfRoleChange(Forbidden):
    slug = "self-role-change"
    title = "Nobody changes their own roles"


class PlatformFirstAdminOnly(Forbidden):
    slug = "platform-first-admin-only"
    title = "The platform operator only adds an organisation's first admin"


class SecondAdminRequired(Forbidden):
    slug = "second-admin-required"
    title = "Another admin of the organisation must decide"


class RoleGrantPending(Conflict):
    slug = "role-grant-pending"
    title = "A role grant is already waiting for this member"


@dataclass(frozen=True)
class RoleChange:
    """A wanted role set split into what applies now and what waits for a second admin."""

    direct: frozenset[str]
    pending: frozenset[str]


def split_roles(
    current: frozenset[str], wanted: frozenset[str], *, platform_first_admin: bool = False
) -> RoleChange:
    """Guarded roles the member does not hold yet wait; everything else applies at once
    (including removing a guarded role). The first admin the platform operator enrols is
    the exception: the operator is the second party, and gives nothing but ``admin``."""
    if platform_first_admin:
        return RoleChange(direct=wanted, pending=frozenset())
    waiting = (wanted - current) & GUARDED_ROLES
    return RoleChange(direct=wanted - waiting, pending=waiting)


def role_diff(before: frozenset[str], after: frozenset[str]) -> str:
    """The audit entry's purpose for a role change: role codes only, never a value about
    the person (``"+decideur -agent"``)."""
    added = [f"+{r}" for r in sorted(after - before)]
    removed = [f"-{r}" for r in sorted(before - after)]
    return " ".join(added + removed) or "unchanged"


def check_not_self(actor_user_id: uuid.UUID | None, member_user_id: uuid.UUID) -> None:
    if actor_user_id == member_user_id:
        raise SelfRoleChange(
            detail="You cannot change your own roles: ask another admin of your organisation."
        )


def check_platform_enrolment(roles: frozenset[str], organisation_has_admin: bool) -> None:
    """The platform operator, in another organisation: its first admin, role ``admin``."""
    if organisation_has_admin:
        raise PlatformFirstAdminOnly(
            detail="This organisation has an admin: its admins add their members."
        )
    if not roles <= PLATFORM_ROLES:
        raise PlatformFirstAdminOnly(
            detail="The platform operator gives the first admin the role admin only; that "
            "admin adds the organisation's other members and roles.",
        )


def check_grant_decider(
    *,
    approving: bool,
    decider_user_id: uuid.UUID | None,
    platform: bool,
    requested_by: uuid.UUID,
    grantee: uuid.UUID,
    organisation_admins: int,
) -> None:
    """Who may approve or deny a pending grant. Approving needs someone other than the
    requester and the grantee; denying (or withdrawing) is open to any admin of the
    organisation. The platform operator decides only while the organisation has one admin."""
    if platform:
        if organisation_admins > 1:
            raise SecondAdminRequired(
                detail="This organisation has several admins: one of them decides."
            )
        return
    if approving and decider_user_id in (requested_by, grantee):
        raise SecondAdminRequired(
            detail="Another admin of the organisation than the one who asked, and than the "
            "member concerned, approves this grant."
        )
