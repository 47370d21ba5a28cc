from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from api.domain.catalogue import SEEDED_COMPETENCES, catalogue_by_code
from api.domain.conventions.rules import ConventionStatus
from api.domain.holdings import Holder, HoldingSource, order_holders
from tests.oracle import ConventionGrant, Holding, delegated_holdings, law_holdings

CATALOGUE = catalogue_by_code(SEEDED_COMPETENCES)
LILLE, ROUBAIX, TOURCOING = "59350", "59512", "59599"
NORD = frozenset({LILLE, ROUBAIX, TOURCOING})
ON = date(2026, 6, 1)


def test_law_holdings_of_a_ccas() -> None:
    held = law_holdings("ccas", [LILLE], CATALOGUE)
    assert {h.competence for h in held} == {
        "accueil",
        "domiciliation",
        "aide_facultative",
        "aide_alimentaire",
        "personnes_agees",
        "petite_enfance",
        "violences",
    }
    assert all(h.commune == LILLE and h.source == "law" and h.convention_id is None for h in held)


def test_law_holdings_cover_the_whole_territory() -> None:
    held = law_holdings("departement", NORD, CATALOGUE)
    assert Holding("ase", TOURCOING, HoldingSource.LAW) in held
    assert len(held) == 3 * len(
        [c for c in SEEDED_COMPETENCES if "departement" in c.legal_holder_kinds]
    )


def test_platform_and_empty_territory_hold_nothing() -> None:
    assert law_holdings("plateforme", NORD, CATALOGUE) == set()
    assert law_holdings("commune", [], CATALOGUE) == set()


def grant(**overrides: Any) -> ConventionGrant:
    base = ConventionGrant(
        id=UUID(int=1),
        grantor_id=uuid4(),
        grantor_kind="departement",
        grantor_territory=NORD,
        grantee_id=uuid4(),
        grantee_kind="ccas",
        competences=frozenset({"rsa"}),
        communes=frozenset({LILLE}),
        status=ConventionStatus.ACTIVE,
        valid_from=date(2026, 1, 1),
        valid_until=date(2026, 12, 31),
    )
    return replace(base, **overrides)


def test_active_convention_in_force_grants() -> None:
    assert delegated_holdings([grant()], CATALOGUE, ON) == {
        Holding("rsa", LILLE, HoldingSource.CONVENTION, UUID(int=1))
    }


def test_convention_outside_its_dates_or_not_active_grants_nothing() -> None:
    for g in (
        grant(valid_from=date(2026, 7, 1)),
        grant(valid_until=date(2026, 5, 31)),
        grant(status=ConventionStatus.SUSPENDED),
        grant(status=ConventionStatus.PROPOSED),
        grant(status=ConventionStatus.REVOKED),
        grant(status=ConventionStatus.DRAFT),
    ):
        assert delegated_holdings([g], CATALOGUE, ON) == set(), g


def test_delegate_cannot_redelegate() -> None:
    # A CCAS holding rsa by convention delegates it further: the grantor is no legal holder.
    assert (
        delegated_holdings([grant(grantor_kind="ccas", grantee_kind="association")], CATALOGUE, ON)
        == set()
    )


def test_grantor_losing_the_commune_ends_the_delegation() -> None:
    g = grant(communes=frozenset({LILLE, "62041"}), grantor_territory=frozenset({LILLE}))
    assert {h.commune for h in delegated_holdings([g], CATALOGUE, ON)} == {LILLE}


def test_non_delegable_or_wrong_kind_or_unknown_competence_is_ignored() -> None:
    g = grant(competences=frozenset({"rsa", "ase", "apa", "gone"}), grantee_kind="association")
    assert {h.competence for h in delegated_holdings([g], CATALOGUE, ON)} == {"rsa"}


def test_several_grants_accumulate() -> None:
    g1 = grant()
    g2 = grant(id=UUID(int=2), competences=frozenset({"rsa", "fsl"}), communes=frozenset({ROUBAIX}))
    held = delegated_holdings([g1, g2], CATALOGUE, ON)
    assert {(h.competence, h.commune, h.convention_id) for h in held} == {
        ("rsa", LILLE, UUID(int=1)),
        ("rsa", ROUBAIX, UUID(int=2)),
        ("fsl", ROUBAIX, UUID(int=2)),
    }


def test_order_holders_delegates_first_then_by_name() -> None:
    dep = Holder(uuid4(), "Département du Nord", HoldingSource.LAW)
    ccas_b = Holder(uuid4(), "CCAS de Roubaix", HoldingSource.CONVENTION, uuid4(), "CONV-2")
    ccas_a = Holder(uuid4(), "ccas de Lille", HoldingSource.CONVENTION, uuid4(), "CONV-1")
    asso = Holder(uuid4(), "Écully Solidarité", HoldingSource.CONVENTION, uuid4(), "CONV-3")
    metropole = Holder(uuid4(), "Ville de Lille", HoldingSource.LAW)
    ordered = order_holders([metropole, dep, ccas_b, asso, ccas_a])
    assert ordered == [ccas_a, ccas_b, asso, dep, metropole]


def test_order_holders_is_deterministic_for_equal_names() -> None:
    a = Holder(UUID(int=1), "Same", HoldingSource.LAW)
    b = Holder(UUID(int=2), "Same", HoldingSource.LAW)
    assert order_holders([b, a]) == order_holders([a, b]) == [a, b]
