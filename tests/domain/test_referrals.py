from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.orientations.rules import (
    ORIENTATION_TERMINAL,
    OrientationAction,
    OrientationSide,
    OrientationStatus,
    allowed_orientation_actions,
    apply_orientation_action,
)
from api.domain.referrals.rules import (
    DECLINE_REASONS,
    OUTCOMES,
    REFERRAL_TERMINAL,
    ReferralAction,
    ReferralSide,
    ReferralStatus,
    allowed_referral_actions,
    apply_referral_action,
)
from api.problems import Forbidden, InvalidTransition, ValidationFailed

R, A = ReferralStatus, ReferralAction
SENDER, RECIPIENT, SYSTEM = ReferralSide.SENDER, ReferralSide.RECIPIENT, ReferralSide.SYSTEM

# The table of domain.md §8, written out independently of the implementation.
TABLE: dict[tuple[ReferralStatus, ReferralAction], tuple[ReferralStatus, set[ReferralSide]]] = {
    (R.SENT, A.ACKNOWLEDGE): (R.ACKNOWLEDGED, {RECIPIENT}),
    **{(s, A.ACCEPT): (R.ACCEPTED, {RECIPIENT}) for s in (R.SENT, R.ACKNOWLEDGED)},
    **{(s, A.DECLINE): (R.DECLINED, {RECIPIENT}) for s in (R.SENT, R.ACKNOWLEDGED)},
    **{(s, A.REDIRECT): (R.REDIRECTED, {RECIPIENT}) for s in (R.SENT, R.ACKNOWLEDGED)},
    **{(s, A.WITHDRAW): (R.WITHDRAWN, {SENDER}) for s in (R.SENT, R.ACKNOWLEDGED)},
    **{(s, A.EXPIRE): (R.EXPIRED, {SYSTEM}) for s in (R.SENT, R.ACKNOWLEDGED)},
    (R.ACCEPTED, A.START): (R.IN_PROGRESS, {RECIPIENT}),
    **{(s, A.HOLD): (R.ON_HOLD, {RECIPIENT}) for s in (R.ACCEPTED, R.IN_PROGRESS)},
    (R.ON_HOLD, A.RESUME): (R.IN_PROGRESS, {RECIPIENT}),
    **{(s, A.COMPLETE): (R.COMPLETED, {RECIPIENT}) for s in (R.IN_PROGRESS, R.ON_HOLD)},
    **{
        (s, A.NOT_COMPLETE): (R.NOT_COMPLETED, {RECIPIENT})
        for s in (R.ACCEPTED, R.IN_PROGRESS, R.ON_HOLD)
    },
    **{
        (s, A.CANCEL): (R.CANCELLED, {SENDER, SYSTEM}) for s in (R.SENT, R.ACKNOWLEDGED, R.ACCEPTED)
    },
}
TERMINAL = {
    R.DECLINED,
    R.REDIRECTED,
    R.WITHDRAWN,
    R.EXPIRED,
    R.COMPLETED,
    R.NOT_COMPLETED,
    R.CANCELLED,
}
# Valid data for every action, so that only state and side decide.
ARGS = {"reason_code": "autre", "outcome_code": "service_rendu", "comment": "motif"}


def test_terminal_states() -> None:
    assert REFERRAL_TERMINAL == TERMINAL
    for status in TERMINAL:
        for side in ReferralSide:
            assert allowed_referral_actions(status, side) == []


def test_happy_path() -> None:
    status = R.SENT
    for action in (A.ACKNOWLEDGE, A.ACCEPT, A.START, A.HOLD, A.RESUME):
        status = apply_referral_action(status, action, RECIPIENT, comment="attente pièces")
    assert status is R.IN_PROGRESS
    assert apply_referral_action(status, "complete", RECIPIENT, outcome_code="droit_ouvert") is (
        R.COMPLETED
    )


def test_hold_from_accepted_and_resume_to_in_progress() -> None:
    held = apply_referral_action(R.ACCEPTED, A.HOLD, RECIPIENT, comment="hospitalisation")
    assert held is R.ON_HOLD
    assert apply_referral_action(held, A.RESUME, RECIPIENT) is R.IN_PROGRESS


def test_allowed_actions_per_side() -> None:
    assert allowed_referral_actions(R.SENT, RECIPIENT) == [
        "acknowledge",
        "accept",
        "decline",
        "redirect",
    ]
    assert allowed_referral_actions(R.SENT, SENDER) == ["withdraw", "cancel"]
    assert allowed_referral_actions(R.SENT, SYSTEM) == ["expire", "cancel"]
    assert allowed_referral_actions(R.ON_HOLD, RECIPIENT) == ["resume", "complete", "not-complete"]
    assert allowed_referral_actions(R.ACCEPTED, SENDER) == ["cancel"]


def test_wrong_state_is_an_invalid_transition_listing_allowed_actions() -> None:
    with pytest.raises(InvalidTransition) as info:
        apply_referral_action(R.SENT, A.COMPLETE, RECIPIENT, outcome_code="service_rendu")
    assert info.value.extra["allowed_actions"] == ["acknowledge", "accept", "decline", "redirect"]
    with pytest.raises(InvalidTransition):
        apply_referral_action(R.ACKNOWLEDGED, A.ACKNOWLEDGE, RECIPIENT)


def test_wrong_side_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        apply_referral_action(R.SENT, A.ACCEPT, SENDER)
    with pytest.raises(Forbidden):
        apply_referral_action(R.SENT, A.WITHDRAW, RECIPIENT)
    with pytest.raises(Forbidden):
        apply_referral_action(R.SENT, A.EXPIRE, SENDER)
    with pytest.raises(Forbidden):
        apply_referral_action(R.ACCEPTED, A.CANCEL, RECIPIENT, comment="x")


def test_state_is_checked_before_side() -> None:
    with pytest.raises(InvalidTransition) as info:
        apply_referral_action(R.COMPLETED, A.ACCEPT, SENDER)
    assert info.value.extra["allowed_actions"] == []


def _pointer(exc: pytest.ExceptionInfo[ValidationFailed]) -> list[str]:
    return [e.pointer for e in exc.value.errors]


@pytest.mark.parametrize("code", [None, "", "not_a_code", "service_rendu"])
def test_decline_needs_a_known_reason_code(code: str | None) -> None:
    with pytest.raises(ValidationFailed) as info:
        apply_referral_action(R.SENT, A.DECLINE, RECIPIENT, reason_code=code)
    assert _pointer(info) == ["/reason_code"]


@pytest.mark.parametrize("code", sorted(DECLINE_REASONS))
def test_decline_with_each_reason(code: str) -> None:
    assert apply_referral_action(R.ACKNOWLEDGED, A.DECLINE, RECIPIENT, reason_code=code) is (
        R.DECLINED
    )
    assert apply_referral_action(R.ON_HOLD, A.NOT_COMPLETE, RECIPIENT, reason_code=code) is (
        R.NOT_COMPLETED
    )


@pytest.mark.parametrize("code", [None, "autre_chose", "hors_competence"])
def test_complete_needs_a_known_outcome_code(code: str | None) -> None:
    with pytest.raises(ValidationFailed) as info:
        apply_referral_action(R.IN_PROGRESS, A.COMPLETE, RECIPIENT, outcome_code=code)
    assert _pointer(info) == ["/outcome_code"]


@pytest.mark.parametrize("code", sorted(OUTCOMES))
def test_complete_with_each_outcome(code: str) -> None:
    assert apply_referral_action(R.ON_HOLD, A.COMPLETE, RECIPIENT, outcome_code=code) is (
        R.COMPLETED
    )


def test_not_complete_needs_reason_code() -> None:
    with pytest.raises(ValidationFailed) as info:
        apply_referral_action(R.IN_PROGRESS, A.NOT_COMPLETE, RECIPIENT, outcome_code="abandon")
    assert _pointer(info) == ["/reason_code"]


@pytest.mark.parametrize(
    ("status", "action", "side"),
    [
        (R.IN_PROGRESS, A.HOLD, RECIPIENT),
        (R.SENT, A.REDIRECT, RECIPIENT),
        (R.ACCEPTED, A.CANCEL, SENDER),
        (R.SENT, A.CANCEL, SYSTEM),
    ],
)
def test_reason_required(
    status: ReferralStatus, action: ReferralAction, side: ReferralSide
) -> None:
    for comment in (None, "", "   "):
        with pytest.raises(ValidationFailed) as info:
            apply_referral_action(status, action, side, comment=comment)
        assert _pointer(info) == ["/comment"]
    assert apply_referral_action(status, action, side, comment="retrait du consentement")
    assert apply_referral_action(status, action, side, reason_code="consentement_retire")


def test_unknown_action_name() -> None:
    with pytest.raises(ValidationFailed) as info:
        apply_referral_action(R.SENT, "reopen", SENDER)
    assert _pointer(info) == ["/action"]
    assert info.value.errors[0].location == "path"


@given(st.sampled_from(list(R)), st.sampled_from(list(A)), st.sampled_from(list(ReferralSide)))
def test_every_combination_follows_the_table(
    status: ReferralStatus, action: ReferralAction, side: ReferralSide
) -> None:
    row = TABLE.get((status, action))
    if row is None:
        with pytest.raises(InvalidTransition):
            apply_referral_action(status, action, side, **ARGS)
    elif side not in row[1]:
        with pytest.raises(Forbidden):
            apply_referral_action(status, action, side, **ARGS)
    else:
        assert apply_referral_action(status, action, side, **ARGS) is row[0]


@given(
    st.lists(st.tuples(st.sampled_from(list(A)), st.sampled_from(list(ReferralSide))), max_size=30)
)
def test_random_sequences_from_sent_follow_the_table(
    steps: list[tuple[ReferralAction, ReferralSide]],
) -> None:
    status = R.SENT
    for action, side in steps:
        try:
            new = apply_referral_action(status, action, side, **ARGS)
        except (InvalidTransition, Forbidden):
            continue
        assert status not in TERMINAL, "a terminal state changed"
        assert (status, action) in TABLE
        assert TABLE[status, action] == (new, TABLE[status, action][1])
        assert side in TABLE[status, action][1]
        status = new
    if status in TERMINAL:
        for action in A:
            for side in ReferralSide:
                with pytest.raises(InvalidTransition):
                    apply_referral_action(status, action, side, **ARGS)


# --- orientations ----------------------------------------------------------------------------

OS, OA = OrientationStatus, OrientationAction
ISSUER, TARGET, OSYSTEM = OrientationSide.ISSUER, OrientationSide.TARGET, OrientationSide.SYSTEM


def test_orientation_transitions() -> None:
    assert apply_orientation_action(OS.PROPOSED, OA.ACCEPT, TARGET) is OS.ACCEPTED
    assert apply_orientation_action(OS.PROPOSED, OA.REFUSE, TARGET, reason_code="non_eligible") is (
        OS.REFUSED
    )
    assert apply_orientation_action(OS.PROPOSED, OA.CANCEL, ISSUER) is OS.CANCELLED
    for side in OrientationSide:
        assert apply_orientation_action(OS.ACCEPTED, "end", side, comment="réorientation") is (
            OS.ENDED
        )


def test_orientation_refuse_needs_reason_code() -> None:
    for code in (None, "bof"):
        with pytest.raises(ValidationFailed) as info:
            apply_orientation_action(OS.PROPOSED, OA.REFUSE, TARGET, reason_code=code)
        assert _pointer(info) == ["/reason_code"]


def test_orientation_end_needs_reason() -> None:
    with pytest.raises(ValidationFailed) as info:
        apply_orientation_action(OS.ACCEPTED, OA.END, ISSUER)
    assert _pointer(info) == ["/comment"]


def test_orientation_sides_and_states() -> None:
    with pytest.raises(Forbidden):
        apply_orientation_action(OS.PROPOSED, OA.ACCEPT, ISSUER)
    with pytest.raises(Forbidden):
        apply_orientation_action(OS.PROPOSED, OA.CANCEL, TARGET)
    with pytest.raises(InvalidTransition) as info:
        apply_orientation_action(OS.ACCEPTED, OA.CANCEL, ISSUER)
    assert info.value.extra["allowed_actions"] == ["end"]
    assert allowed_orientation_actions(OS.PROPOSED, TARGET) == ["accept", "refuse"]
    assert allowed_orientation_actions(OS.PROPOSED, OSYSTEM) == []


@given(st.sampled_from(sorted(ORIENTATION_TERMINAL)), st.sampled_from(list(OA)))
def test_orientation_terminal_states_never_change(
    status: OrientationStatus, action: OrientationAction
) -> None:
    assert {OS.REFUSED, OS.CANCELLED, OS.ENDED} == ORIENTATION_TERMINAL
    for side in OrientationSide:
        with pytest.raises(InvalidTransition):
            apply_orientation_action(status, action, side, reason_code="autre", comment="x")
