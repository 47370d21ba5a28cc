from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.catalogue import SEEDED_COMPETENCES, catalogue_by_code
from api.domain.conventions.rules import (
    CONVENTION_TRANSITIONS,
    ConventionAction,
    ConventionSide,
    ConventionStatus,
    allowed_convention_actions,
    apply_action,
    effective_status,
    in_force,
    raise_if_invalid,
    validate_data_categories,
    validate_delegation,
    validate_parties,
    validate_period,
)
from api.problems import Forbidden, InvalidTransition, ValidationFailed

S, A = ConventionStatus, ConventionAction
GRANTOR, GRANTEE = ConventionSide.GRANTOR, ConventionSide.GRANTEE
CATALOGUE = catalogue_by_code(SEEDED_COMPETENCES)

# --- lifecycle -------------------------------------------------------------------------------

EXPECTED = {
    (S.DRAFT, A.PROPOSE, GRANTOR): S.PROPOSED,
    (S.PROPOSED, A.ACCEPT, GRANTEE): S.ACTIVE,
    (S.PROPOSED, A.WITHDRAW, GRANTEE): S.REVOKED,
    (S.PROPOSED, A.REVOKE, GRANTOR): S.REVOKED,
    (S.ACTIVE, A.SUSPEND, GRANTOR): S.SUSPENDED,
    (S.ACTIVE, A.REVOKE, GRANTOR): S.REVOKED,
    (S.ACTIVE, A.WITHDRAW, GRANTEE): S.REVOKED,
    (S.SUSPENDED, A.RESUME, GRANTOR): S.ACTIVE,
    (S.SUSPENDED, A.REVOKE, GRANTOR): S.REVOKED,
    (S.SUSPENDED, A.WITHDRAW, GRANTEE): S.REVOKED,
}


@pytest.mark.parametrize(("status", "action", "side"), list(EXPECTED))
def test_allowed_transitions(
    status: ConventionStatus, action: ConventionAction, side: ConventionSide
) -> None:
    assert apply_action(status, action, side) is EXPECTED[status, action, side]


def test_full_lifecycle() -> None:
    status = S.DRAFT
    for action, side in [
        (A.PROPOSE, GRANTOR),
        (A.ACCEPT, GRANTEE),
        (A.SUSPEND, GRANTOR),
        (A.RESUME, GRANTOR),
        (A.REVOKE, GRANTOR),
    ]:
        status = apply_action(status, action, side)
    assert status is S.REVOKED


@given(st.sampled_from(list(S)), st.sampled_from(list(A)), st.sampled_from(list(ConventionSide)))
def test_every_other_combination_is_refused(
    status: ConventionStatus, action: ConventionAction, side: ConventionSide
) -> None:
    if (status, action, side) in EXPECTED:
        return
    other = GRANTEE if side is GRANTOR else GRANTOR
    if (status, action, other) in EXPECTED:
        with pytest.raises(Forbidden):
            apply_action(status, action, side)
    else:
        with pytest.raises(InvalidTransition) as info:
            apply_action(status, action, side)
        assert info.value.extra["allowed_actions"] == allowed_convention_actions(status, side)


def test_wrong_state_lists_the_callers_actions() -> None:
    with pytest.raises(InvalidTransition) as info:
        apply_action(S.ACTIVE, A.PROPOSE, GRANTOR)
    assert info.value.extra["allowed_actions"] == ["suspend", "revoke"]
    with pytest.raises(InvalidTransition) as info:
        apply_action(S.ACTIVE, A.RESUME, GRANTEE)
    assert info.value.extra["allowed_actions"] == ["withdraw"]


def test_other_side_is_forbidden_only_when_the_state_allows_it() -> None:
    with pytest.raises(Forbidden):
        apply_action(S.PROPOSED, A.ACCEPT, GRANTOR)
    with pytest.raises(Forbidden):
        apply_action(S.ACTIVE, A.SUSPEND, GRANTEE)
    with pytest.raises(InvalidTransition):
        apply_action(S.DRAFT, A.SUSPEND, GRANTEE)


@pytest.mark.parametrize("status", [S.REVOKED, S.EXPIRED])
def test_closed_conventions_accept_no_action(status: ConventionStatus) -> None:
    for side in ConventionSide:
        assert allowed_convention_actions(status, side) == []
    assert all(status not in t.sources for t in CONVENTION_TRANSITIONS.values())


# --- dates -----------------------------------------------------------------------------------

START, END = date(2026, 1, 1), date(2026, 12, 31)


def test_expired_after_valid_until_inclusive() -> None:
    assert effective_status(S.ACTIVE, START, END, END) is S.ACTIVE
    assert effective_status(S.ACTIVE, START, END, date(2027, 1, 1)) is S.EXPIRED
    assert effective_status(S.SUSPENDED, START, END, date(2027, 1, 1)) is S.EXPIRED
    assert effective_status(S.PROPOSED, START, END, date(2027, 1, 1)) is S.EXPIRED


def test_revoked_and_draft_do_not_read_as_expired() -> None:
    after = date(2027, 6, 1)
    assert effective_status(S.REVOKED, START, END, after) is S.REVOKED
    assert effective_status(S.DRAFT, START, END, after) is S.DRAFT


def test_open_ended_convention_never_expires() -> None:
    assert effective_status(S.ACTIVE, START, None, date(2099, 1, 1)) is S.ACTIVE
    assert in_force(S.ACTIVE, START, None, date(2099, 1, 1))


def test_in_force_window() -> None:
    assert not in_force(S.ACTIVE, START, END, date(2025, 12, 31))
    assert effective_status(S.ACTIVE, START, END, date(2025, 12, 31)) is S.ACTIVE
    assert in_force(S.ACTIVE, START, END, START)
    assert in_force(S.ACTIVE, START, END, END)
    assert not in_force(S.ACTIVE, START, END, date(2027, 1, 1))
    for status in (S.DRAFT, S.PROPOSED, S.SUSPENDED, S.REVOKED):
        assert not in_force(status, START, END, date(2026, 6, 1))


# --- delegation validation -------------------------------------------------------------------

LILLE, ROUBAIX, AJACCIO = "59350", "59512", "2A004"
NORD = frozenset({LILLE, ROUBAIX})
DEP_LAW = {code: NORD for code in ("rsa", "insertion", "fsl", "apa", "ase")}


def test_valid_delegation_has_no_error() -> None:
    errors = validate_delegation(
        CATALOGUE, "departement", "ccas", ["rsa", "apa"], [LILLE, ROUBAIX], DEP_LAW
    )
    assert errors == []


def test_each_offending_item_is_named() -> None:
    errors = validate_delegation(
        CATALOGUE,
        "departement",
        "association",
        ["rsa", "nope", "ase", "apa", "accueil", "fsl"],
        [LILLE, AJACCIO],
        DEP_LAW,
    )
    by_pointer = {e.pointer: e.detail for e in errors}
    assert set(by_pointer) == {
        "/competences/1",
        "/competences/2",
        "/competences/3",
        "/competences/4",
        "/communes/1",
    }
    assert "nope" in by_pointer["/competences/1"]
    assert "'ase'" in by_pointer["/competences/2"]
    assert "not delegable" in by_pointer["/competences/2"]
    assert "'apa'" in by_pointer["/competences/3"]
    assert "association" in by_pointer["/competences/3"]
    assert "'accueil'" in by_pointer["/competences/4"]
    assert "2A004" in by_pointer["/communes/1"]
    assert "'rsa'" in by_pointer["/communes/1"]
    assert "'fsl'" in by_pointer["/communes/1"]


def test_grantor_must_be_a_legal_holder() -> None:
    errors = validate_delegation(CATALOGUE, "ccas", "association", ["rsa"], [LILLE], DEP_LAW)
    assert [e.pointer for e in errors] == ["/competences/0"]


def test_commune_outside_the_grantors_law_holding_for_one_competence() -> None:
    law = {"rsa": NORD, "apa": frozenset({LILLE})}
    errors = validate_delegation(
        CATALOGUE, "departement", "ccas", ["rsa", "apa"], [LILLE, ROUBAIX], law
    )
    assert len(errors) == 1
    assert errors[0].pointer == "/communes/1"
    assert "'apa'" in errors[0].detail
    assert "'rsa'" not in errors[0].detail


def test_empty_and_duplicate_items() -> None:
    pointers = [
        e.pointer for e in validate_delegation(CATALOGUE, "departement", "ccas", [], [], {})
    ]
    assert pointers == ["/competences", "/communes"]
    errors = validate_delegation(
        CATALOGUE, "departement", "ccas", ["rsa", "rsa"], [LILLE, LILLE], DEP_LAW
    )
    assert [e.pointer for e in errors] == ["/competences/1", "/communes/1"]


def test_parties_period_and_categories() -> None:
    same = uuid4()
    assert [e.pointer for e in validate_parties(same, same)] == ["/grantee_id"]
    assert validate_parties(uuid4(), uuid4()) == []
    assert [e.pointer for e in validate_period(END, START)] == ["/valid_until"]
    assert validate_period(START, START) == []
    assert validate_period(START, None) == []
    errors = validate_data_categories(["identity", "nir", "secrets"])
    assert [e.pointer for e in errors] == ["/data_categories/2"]


def test_raise_if_invalid_carries_every_error() -> None:
    raise_if_invalid([])
    errors = validate_period(END, START) + validate_parties(same := uuid4(), same)
    with pytest.raises(ValidationFailed) as info:
        raise_if_invalid(errors)
    assert info.value.errors == errors
