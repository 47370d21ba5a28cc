"""The dossier lifecycle, field ownership, decisions and sync planning: pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.domain.dossiers.problems import FieldNotOwned, SyncConflict
from api.domain.dossiers.rules import (
    BOTH_SIDES,
    STATUS_ORDER,
    Decision,
    DecisionValues,
    DossierAction,
    DossierStatus,
    Incoming,
    Side,
    Stored,
    SyncOutcome,
    allowed_actions,
    apply_action,
    check_decision,
    plan_create,
    plan_update,
    sides_of,
    status_path,
    unowned,
)
from api.problems import Conflict, Forbidden, InvalidTransition, ValidationFailed

S = DossierStatus
A = DossierAction
I = frozenset({Side.INSTRUCTING})  # noqa: E741
D = frozenset({Side.DECIDING})
T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def test_the_lifecycle_by_the_side_it_belongs_to() -> None:
    assert apply_action(S.DRAFT, A.SUBMIT, I) is S.SUBMITTED
    assert apply_action(S.SUBMITTED, A.REVIEW, D) is S.UNDER_REVIEW
    assert apply_action(S.UNDER_REVIEW, A.DECIDE, D) is S.DECIDED
    assert apply_action(S.DECIDED, A.NOTIFY, D) is S.NOTIFIED
    assert apply_action(S.NOTIFIED, A.CLOSE, I) is S.CLOSED
    assert apply_action(S.NOTIFIED, A.CLOSE, D) is S.CLOSED
    assert apply_action(S.DRAFT, A.CLOSE, I) is S.CLOSED


def test_the_other_sides_action_is_forbidden_and_a_wrong_status_is_a_transition_error() -> None:
    with pytest.raises(Forbidden):
        apply_action(S.UNDER_REVIEW, A.DECIDE, I)
    with pytest.raises(Forbidden):
        apply_action(S.DRAFT, A.SUBMIT, D)
    with pytest.raises(Forbidden):
        apply_action(S.DRAFT, A.CLOSE, D)
    with pytest.raises(InvalidTransition) as error:
        apply_action(S.SUBMITTED, A.DECIDE, D)
    assert error.value.extra["allowed_actions"] == ["review"]


def test_sides_of_an_organisation() -> None:
    assert sides_of(1, 1, 2) == I
    assert sides_of(2, 1, 2) == D
    assert sides_of(1, 1, 1) == BOTH_SIDES
    assert sides_of(3, 1, 2) == frozenset()


@given(
    status=st.sampled_from(S), action=st.sampled_from(A), sides=st.sampled_from([I, D, BOTH_SIDES])
)
def test_an_action_succeeds_exactly_when_it_is_allowed(
    status: DossierStatus, action: DossierAction, sides: frozenset[Side]
) -> None:
    allowed = action in allowed_actions(status, sides)
    try:
        target = apply_action(status, action, sides)
    except (InvalidTransition, Forbidden):
        assert not allowed
    else:
        assert allowed
        # statuses only move forward
        assert STATUS_ORDER.index(target) > STATUS_ORDER.index(status)


def test_closed_is_terminal() -> None:
    assert allowed_actions(S.CLOSED, BOTH_SIDES) == []


@given(current=st.sampled_from(S), target=st.sampled_from(S))
def test_a_status_path_leads_forward_step_by_step(
    current: DossierStatus, target: DossierStatus
) -> None:
    path = status_path(current, target)
    if STATUS_ORDER.index(target) < STATUS_ORDER.index(current):
        assert path is None
        return
    assert path is not None
    position = current
    for step in path:
        assert step.source is position
        position = step.target
    assert position is target


def test_ownership() -> None:
    assert unowned(["instruction", "amount"], I) == ["amount"]
    assert unowned(["instruction", "decision_reason"], D) == ["instruction"]
    assert unowned(["instruction", "amount"], BOTH_SIDES) == []


def test_a_refusal_states_its_reason_and_grants_nothing() -> None:
    assert check_decision(DecisionValues(Decision.GRANTED, amount=Decimal("10"))) == []
    pointers = [
        e.pointer
        for e in check_decision(
            DecisionValues(Decision.REJECTED, amount=Decimal("1"), start_on=date(2026, 1, 1))
        )
    ]
    assert pointers == ["/reason", "/amount", "/start_on"]
    late = DecisionValues(Decision.GRANTED, start_on=date(2026, 2, 1), end_on=date(2026, 1, 1))
    assert [e.pointer for e in check_decision(late, "/x")] == ["/x/end_on"]


# sync planning --------------------------------------------------------------------------

GRANTED = DecisionValues(
    Decision.GRANTED, Decimal("500.00"), date(2026, 11, 1), None, None, date(2026, 10, 20)
)


def stored(**overrides: object) -> Stored:
    values: dict[str, object] = {
        "status": S.SUBMITTED,
        "instruction": {"household_size": 2},
        "decision": None,
        "instruction_updated_at": T0,
        "decision_updated_at": None,
        "status_changed_at": T0,
    }
    values.update(overrides)
    return Stored(**values)  # type: ignore[arg-type]


def test_the_same_values_are_unchanged_whatever_their_time() -> None:
    item = Incoming(S.SUBMITTED, T0 - timedelta(days=3), {"household_size": 2})
    assert plan_update(stored(), item, D).outcome is SyncOutcome.UNCHANGED


def test_a_field_changed_after_the_items_version_is_a_conflict() -> None:
    current = stored(instruction_updated_at=T0 + timedelta(hours=1))
    item = Incoming(S.UNDER_REVIEW, T0 + timedelta(minutes=5), {"household_size": 3})
    plan = plan_update(current, item, D, "/items/4")
    assert plan.outcome is SyncOutcome.CONFLICT
    assert isinstance(plan.problem, SyncConflict)
    assert [e.pointer for e in plan.problem.errors] == ["/items/4/instruction"]


def test_a_newer_value_of_the_other_sides_field_is_refused() -> None:
    item = Incoming(S.SUBMITTED, T0 + timedelta(hours=1), {"household_size": 3})
    plan = plan_update(stored(), item, D, "/items/0")
    assert plan.outcome is SyncOutcome.ERROR
    assert isinstance(plan.problem, FieldNotOwned)
    assert [e.pointer for e in plan.problem.errors] == ["/items/0/instruction"]


def test_the_deciding_side_moves_the_status_and_records_its_decision() -> None:
    decision = DecisionValues(Decision.GRANTED, Decimal("500"), date(2026, 11, 1))
    at = T0 + timedelta(days=2)
    item = Incoming(S.NOTIFIED, at, {"household_size": 2}, decision)
    plan = plan_update(stored(), item, D)
    assert plan.outcome is SyncOutcome.UPDATED
    assert [s.action for s in plan.steps] == [A.REVIEW, A.DECIDE, A.NOTIFY]
    assert plan.changes["status"] == "notified" and plan.changes["status_changed_at"] == at
    assert plan.changes["amount"] == Decimal("500") and plan.changes["decision_updated_at"] == at
    # not carried: the day of the source's version
    assert plan.changes["decided_on"] == date(2026, 10, 3)
    assert "instruction" not in plan.changes


def test_statuses_never_go_back_and_the_other_sides_steps_are_refused() -> None:
    back = plan_update(
        stored(status=S.DECIDED, decision=GRANTED), Incoming(S.SUBMITTED, T0 + timedelta(days=1)), D
    )
    assert isinstance(back.problem, InvalidTransition)
    # the deciding side may not submit the instructor's draft
    draft = plan_update(stored(status=S.DRAFT), Incoming(S.SUBMITTED, T0 + timedelta(days=1)), D)
    assert isinstance(draft.problem, FieldNotOwned)
    # a decided status needs a decision
    bare = plan_update(
        stored(status=S.UNDER_REVIEW), Incoming(S.DECIDED, T0 + timedelta(days=1)), D
    )
    assert isinstance(bare.problem, ValidationFailed)
    assert bare.problem.errors[0].pointer == "/decision"


def test_the_instruction_is_closed_once_decided() -> None:
    current = stored(status=S.DECIDED, decision=GRANTED)
    item = Incoming(S.DECIDED, T0 + timedelta(days=1), {"household_size": 9}, GRANTED)
    plan = plan_update(current, item, BOTH_SIDES)
    assert isinstance(plan.problem, Conflict) and plan.outcome is SyncOutcome.ERROR


def test_a_decision_before_the_decided_status_is_invalid() -> None:
    item = Incoming(S.SUBMITTED, T0, None, GRANTED)
    plan = plan_create(item, BOTH_SIDES, "/items/2")
    assert isinstance(plan.problem, ValidationFailed)
    assert plan.problem.errors[0].pointer == "/items/2/decision"


def test_creation_takes_the_lifecycle_from_draft() -> None:
    decided = plan_create(Incoming(S.NOTIFIED, T0, {"household_size": 1}, GRANTED), BOTH_SIDES)
    assert decided.outcome is SyncOutcome.CREATED
    assert decided.changes["decided_on"] == date(2026, 10, 20)
    # a delegate's system creates what it instructs, never a decision
    delegate = plan_create(Incoming(S.NOTIFIED, T0, None, GRANTED), I)
    assert isinstance(delegate.problem, FieldNotOwned)
    submitted = plan_create(Incoming(S.SUBMITTED, T0), I)
    assert submitted.outcome is SyncOutcome.CREATED and submitted.changes["instruction"] == {}


# properties -----------------------------------------------------------------------------

instructions = st.none() | st.dictionaries(
    st.sampled_from(["household_size", "housing", "comments"]),
    st.integers(1, 9) | st.text(max_size=5),
    max_size=3,
)
decisions = st.none() | st.builds(
    DecisionValues,
    decision=st.sampled_from(Decision),
    amount=st.none() | st.decimals(0, 5000, places=2),
    start_on=st.none() | st.dates(date(2026, 1, 1), date(2027, 1, 1)),
    end_on=st.none(),
    reason=st.none() | st.just("motif"),
    decided_on=st.none() | st.dates(date(2026, 1, 1), date(2027, 1, 1)),
)
stored_states = st.builds(
    Stored,
    status=st.sampled_from(S),
    instruction=st.dictionaries(st.just("household_size"), st.integers(1, 9), max_size=1),
    decision=decisions,
    instruction_updated_at=st.just(T0),
    decision_updated_at=st.none() | st.just(T0),
    status_changed_at=st.just(T0),
)
items = st.builds(
    Incoming,
    status=st.sampled_from(S),
    source_updated_at=st.sampled_from([T0 - timedelta(hours=1), T0 + timedelta(hours=1)]),
    instruction=instructions,
    decision=decisions,
)
side_sets = st.sampled_from([I, D, BOTH_SIDES])


def _applied(current: Stored, changes: dict[str, object]) -> Stored:
    decision = current.decision
    if "decision" in changes:
        decision = DecisionValues(
            Decision(str(changes["decision"])),
            changes["amount"],  # type: ignore[arg-type]
            changes["start_on"],  # type: ignore[arg-type]
            changes["end_on"],  # type: ignore[arg-type]
            changes["decision_reason"],  # type: ignore[arg-type]
            changes["decided_on"],  # type: ignore[arg-type]
        )
    return Stored(
        status=DossierStatus(str(changes.get("status", current.status))),
        instruction=changes.get("instruction", current.instruction),  # type: ignore[arg-type]
        decision=decision,
        instruction_updated_at=changes.get(
            "instruction_updated_at", current.instruction_updated_at
        ),  # type: ignore[arg-type]
        decision_updated_at=changes.get("decision_updated_at", current.decision_updated_at),  # type: ignore[arg-type]
        status_changed_at=changes.get("status_changed_at", current.status_changed_at),  # type: ignore[arg-type]
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(current=stored_states, item=items, sides=side_sets)
def test_an_applied_item_sent_again_is_unchanged(
    current: Stored, item: Incoming, sides: frozenset[Side]
) -> None:
    """Idempotence: the same batch twice writes nothing the second time."""
    plan = plan_update(current, item, sides)
    if plan.outcome is SyncOutcome.UPDATED:
        again = plan_update(_applied(current, plan.changes), item, sides)
        assert again.outcome is SyncOutcome.UNCHANGED


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(current=stored_states, item=items, sides=side_sets)
def test_nothing_is_written_unless_updated_and_never_a_foreign_field(
    current: Stored, item: Incoming, sides: frozenset[Side]
) -> None:
    plan = plan_update(current, item, sides)
    if plan.outcome is not SyncOutcome.UPDATED:
        assert plan.changes == {}
        assert (plan.problem is None) == (plan.outcome is SyncOutcome.UNCHANGED)
        return
    if "instruction" in plan.changes:
        assert Side.INSTRUCTING in sides
    if "decision" in plan.changes:
        assert Side.DECIDING in sides
    # a change is never older than the stored value it replaces (when there is one)
    stamps = {
        "instruction": current.instruction_updated_at,
        "decision": current.decision_updated_at,
        "status": current.status_changed_at,
    }
    for group, stamp in stamps.items():
        if group in plan.changes and stamp is not None:
            assert item.source_updated_at >= stamp
    if "status" in plan.changes:
        new = DossierStatus(str(plan.changes["status"]))
        assert STATUS_ORDER.index(new) > STATUS_ORDER.index(current.status)
