"""Staff governance rules (issue 10, item 5), without a database."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.auth.permissions import Role
from api.domain.staff.rules import (
    GUARDED_ROLES,
    PlatformFirstAdminOnly,
    SecondAdminRequired,
    SelfRoleChange,
    check_grant_decider,
    check_not_self,
    check_platform_enrolment,
    role_diff,
    split_roles,
)

role_sets = st.frozensets(st.sampled_from([r.value for r in Role]))


@given(current=role_sets, wanted=role_sets)
def test_only_added_guarded_roles_wait(current: frozenset[str], wanted: frozenset[str]) -> None:
    change = split_roles(current, wanted)
    assert change.direct | change.pending == wanted
    assert not change.direct & change.pending
    assert change.pending <= GUARDED_ROLES
    assert not change.pending & current  # a role already held never waits again
    # what applies at once never adds a guarded role the member did not hold
    assert (change.direct - current) & GUARDED_ROLES == frozenset()
    # removing is immediate
    assert current - wanted == current - change.direct


@given(wanted=role_sets)
def test_the_platform_operators_first_admin_applies_at_once(wanted: frozenset[str]) -> None:
    change = split_roles(frozenset(), wanted, platform_first_admin=True)
    assert change.direct == wanted and not change.pending


@given(before=role_sets, after=role_sets)
def test_the_audit_purpose_names_role_codes_only(
    before: frozenset[str], after: frozenset[str]
) -> None:
    purpose = role_diff(before, after)
    tokens = purpose.split()
    if before == after:
        assert purpose == "unchanged"
    else:
        assert {t[1:] for t in tokens if t[0] == "+"} == after - before
        assert {t[1:] for t in tokens if t[0] == "-"} == before - after


def test_nobody_changes_their_own_roles() -> None:
    me = uuid.uuid4()
    with pytest.raises(SelfRoleChange):
        check_not_self(me, me)
    check_not_self(me, uuid.uuid4())
    check_not_self(None, me)  # an API client is nobody's member


@pytest.mark.parametrize(
    ("roles", "has_admin", "allowed"),
    [
        ({"admin"}, False, True),
        ({"admin"}, True, False),
        ({"admin", "dpo"}, False, False),
        ({"agent", "sensitive", "dpo"}, False, False),
        ({"pilotage"}, False, False),
    ],
)
def test_the_platform_operator_enrols_a_first_admin_only(
    roles: set[str], has_admin: bool, allowed: bool
) -> None:
    if allowed:
        check_platform_enrolment(frozenset(roles), has_admin)
    else:
        with pytest.raises(PlatformFirstAdminOnly):
            check_platform_enrolment(frozenset(roles), has_admin)


def test_who_decides_a_grant() -> None:
    asker, grantee, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    def decide(
        decider: uuid.UUID | None,
        *,
        approving: bool = True,
        platform: bool = False,
        admins: int = 2,
    ) -> None:
        check_grant_decider(
            approving=approving,
            decider_user_id=decider,
            platform=platform,
            requested_by=asker,
            grantee=grantee,
            organisation_admins=admins,
        )

    decide(other)
    decide(asker, approving=False)  # withdrawing one's own request
    for forbidden in (asker, grantee):
        with pytest.raises(SecondAdminRequired):
            decide(forbidden)
    decide(uuid.uuid4(), platform=True, admins=1)
    with pytest.raises(SecondAdminRequired):
        decide(uuid.uuid4(), platform=True, admins=2)
