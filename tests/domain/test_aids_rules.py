"""The pure rules of aides facultatives: the request lifecycle as a table, reste à vivre on
the INSEE scale, decision tiers, assessment, envelopes arithmetic, the comparison verdict."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.domain.aids.rules.aid_types import AidTypeRule, Tier, required_level, tier_errors
from api.domain.aids.rules.codes import DecisionLevel
from api.domain.aids.rules.comparison import offer
from api.domain.aids.rules.eligibility import History, assess, check_grant
from api.domain.aids.rules.lifecycle import (
    TERMINAL,
    TRANSITIONS,
    AidAction,
    AidStatus,
    Side,
    allowed_actions,
    apply_action,
)
from api.domain.aids.rules.money import (
    EnvelopeKey,
    RequestMoney,
    envelope_figures,
    envelope_for,
    voucher_number,
)
from api.domain.aids.rules.reste_a_vivre import consumption_units, reste_a_vivre
from api.problems import Forbidden, InvalidTransition

BOTH = frozenset({Side.INSTRUCTOR, Side.GRANTOR})
sides = st.sets(st.sampled_from(list(Side))).map(frozenset)
statuses = st.sampled_from(list(AidStatus))
actions = st.sampled_from(list(AidAction))
money = st.decimals(min_value=0, max_value=10_000, places=2)


@given(statuses, actions, sides)
def test_the_table_decides_every_transition(
    status: AidStatus, action: AidAction, who: frozenset[Side]
) -> None:
    transition = TRANSITIONS[action]
    if status not in transition.sources:
        with pytest.raises(InvalidTransition) as caught:
            apply_action(status, action, who)
        assert caught.value.extra["allowed_actions"] == [
            str(a) for a in allowed_actions(status, who)
        ]
    elif transition.side not in who:
        with pytest.raises(Forbidden):
            apply_action(status, action, who)
    else:
        assert apply_action(status, action, who) == transition.target


@given(st.lists(actions, max_size=12))
def test_terminal_statuses_never_reopen(steps: list[AidAction]) -> None:
    status = AidStatus.DRAFT
    for action in steps:
        try:
            following = apply_action(status, action, BOTH)
        except InvalidTransition:
            continue
        assert status not in TERMINAL
        status = following
    assert allowed_actions(AidStatus.PAID, BOTH) == []
    assert allowed_actions(AidStatus.REFUSED, BOTH) == []


def test_the_lifecycle_of_domain_md() -> None:
    assert allowed_actions(AidStatus.DRAFT, frozenset({Side.INSTRUCTOR})) == ["submit", "cancel"]
    assert allowed_actions(AidStatus.SUBMITTED, frozenset({Side.GRANTOR})) == [
        "schedule",
        "grant",
        "refuse",
        "adjourn",
    ]
    assert apply_action(AidStatus.ADJOURNED, AidAction.SUBMIT, BOTH) is AidStatus.SUBMITTED
    # payments move granted → paid through their own endpoint
    assert "pay" not in allowed_actions(AidStatus.GRANTED, BOTH)


def test_consumption_units_on_the_insee_scale() -> None:
    assert consumption_units(1) == Decimal(1)
    assert consumption_units(2) == Decimal("1.5")
    assert consumption_units(2, [3, 10]) == Decimal("2.1")
    assert consumption_units(1, [15, 2]) == Decimal("1.8")
    assert consumption_units(0, [16]) == Decimal(1)


@given(st.integers(1, 6), st.lists(st.integers(0, 25), max_size=8))
def test_consumption_units_grow_with_each_person(adults: int, ages: list[int]) -> None:
    base = consumption_units(adults, ages)
    assert consumption_units(adults + 1, ages) == base + Decimal("0.5")
    assert consumption_units(adults, [*ages, 5]) == base + Decimal("0.3")
    assert base >= 1


def test_reste_a_vivre_hand_computed() -> None:
    # 1 200 € of resources, 750 € of charges, a couple with two young children (2.1 UC)
    assert reste_a_vivre(Decimal(1200), Decimal(750), Decimal("2.1")) == Decimal("7.14")
    assert reste_a_vivre(Decimal(500), Decimal(800), Decimal(1)) == Decimal("-10.00")


@given(money, money, st.sampled_from([Decimal(1), Decimal("1.5"), Decimal("2.1")]))
def test_reste_a_vivre_falls_when_charges_rise(
    resources: Decimal, charges: Decimal, uc: Decimal
) -> None:
    assert reste_a_vivre(resources, charges + 30, uc) <= reste_a_vivre(resources, charges, uc)


TIERS = (
    Tier(Decimal(80), DecisionLevel.AGENT),
    Tier(Decimal(300), DecisionLevel.DECIDEUR),
    Tier(None, DecisionLevel.COMMISSION),
)


def test_tiers_name_the_overlapping_item() -> None:
    assert tier_errors(TIERS, "/decision") == []
    bad = (Tier(Decimal(300), DecisionLevel.AGENT), Tier(Decimal(80), DecisionLevel.DECIDEUR))
    assert [e.pointer for e in tier_errors(bad, "/aids/0/decision")] == ["/aids/0/decision/1"]
    open_first = (Tier(None, DecisionLevel.AGENT), Tier(Decimal(80), DecisionLevel.DECIDEUR))
    assert [e.pointer for e in tier_errors(open_first, "/d")] == ["/d/0"]


@given(money, money)
def test_required_level_rises_with_the_amount(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    assert required_level(TIERS, low) <= required_level(TIERS, high)
    assert required_level(TIERS, Decimal(80)) is DecisionLevel.AGENT
    assert required_level(TIERS, Decimal("80.01")) is DecisionLevel.DECIDEUR


AID = AidTypeRule(
    code="bon_alimentaire",
    category="alimentation",
    forms=frozenset({"bon"}),
    max_per_request=Decimal(150),
    tiers=TIERS,
    max_per_household_12_months=Decimal(400),
    max_requests_12_months=3,
    reste_a_vivre_max=Decimal(10),
    residence_months_min=3,
    emergency_up_to=Decimal(500),
)


def test_assessment_names_each_rule() -> None:
    result = assess(
        AID,
        amount=Decimal(120),
        form="bon",
        reste=Decimal("7.14"),
        uc=Decimal("2.1"),
        history=History(
            count=2, amount=Decimal(300), same_type_count=2, same_type_amount=Decimal(300)
        ),
        residence_months=None,
    )
    verdicts = {c.rule: c.result for c in result.checks}
    assert verdicts == {
        "form": "pass",
        "max_per_request": "pass",
        "max_per_household_12_months": "fail",
        "rules_max_per_household_12_months": "pass",
        "max_requests_12_months": "pass",
        "reste_a_vivre_max": "pass",
        "residence_months_min": "warn",
    }
    assert result.required_level is DecisionLevel.DECIDEUR


def test_grant_levels_and_emergency() -> None:
    common = {"form": "bon", "history": History(), "assessment_failures": []}
    agent = check_grant(
        AID, amount=Decimal(100), caller=DecisionLevel.AGENT, at_commission=False, **common
    )
    assert not agent.level_ok
    decideur = check_grant(
        AID, amount=Decimal(100), caller=DecisionLevel.DECIDEUR, at_commission=False, **common
    )
    assert decideur.level_ok and not decideur.breaches
    over = check_grant(
        AID, amount=Decimal(200), caller=DecisionLevel.DECIDEUR, at_commission=False, **common
    )
    # 200 > 150 per request; above 80/300 tiers? no: 200 ≤ 300 → decideur
    assert over.breaches == ["max_per_request"] and over.level_ok
    emergency = AidTypeRule(**{**AID.__dict__, "max_per_request": Decimal(1000)})
    urgent = check_grant(
        emergency, amount=Decimal(400), caller=DecisionLevel.DECIDEUR, at_commission=False, **common
    )
    assert urgent.level_ok and urgent.emergency


def test_envelope_precedence() -> None:
    keys = [EnvelopeKey(aid_code="bon_alimentaire"), EnvelopeKey(category="energie"), EnvelopeKey()]
    assert envelope_for(keys, "bon_alimentaire", "alimentation") == keys[0]
    assert envelope_for(keys, "facture_edf", "energie") == keys[1]
    assert envelope_for(keys, "obseques", "obseques") == keys[2]
    assert envelope_for(keys[:2], "obseques", "obseques") is None


@st.composite
def money_flows(draw: st.DrawFn) -> list[RequestMoney]:
    """Random grants, each with random partial payments some of which are cancelled."""
    flows = []
    for granted in draw(st.lists(st.integers(1, 500), max_size=10)):
        paid = cancelled = 0
        for part in draw(st.lists(st.integers(1, 200), max_size=4)):
            if paid + cancelled + part > granted:
                break
            if draw(st.booleans()):
                cancelled += part
            else:
                paid += part
        flows.append(RequestMoney(Decimal(granted), Decimal(paid), Decimal(cancelled)))
    return flows


@given(st.integers(0, 5000), money_flows())
def test_envelope_figures_stay_consistent(amount: int, flows: list[RequestMoney]) -> None:
    figures = envelope_figures(Decimal(amount), flows)
    assert figures.remaining == figures.amount - figures.granted
    assert 0 <= figures.paid <= figures.granted
    assert figures.granted == sum((f.granted - f.cancelled for f in flows), Decimal(0))
    assert all(f.outstanding >= 0 for f in flows)


def test_offer_is_the_lowest_ceiling_or_the_failing_rule() -> None:
    assert offer(AID, Decimal("7.14")).max_amount == Decimal(150)
    refused = offer(AID, Decimal("12.00"))
    assert not refused.eligible and refused.failing_rules == ("reste_a_vivre_max",)


def test_voucher_numbers() -> None:
    assert voucher_number(2026, 123) == "BA-2026-000123"
