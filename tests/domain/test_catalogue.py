from __future__ import annotations

from api.domain.catalogue import (
    LEGAL_AID_PRESTATIONS,
    SEEDED_COMPETENCES,
    DataCategory,
    OrganisationKind,
    catalogue_by_code,
)

CATALOGUE = catalogue_by_code(SEEDED_COMPETENCES)


def test_eighteen_unique_seeded_codes() -> None:
    codes = [c.code for c in SEEDED_COMPETENCES]
    assert len(codes) == 18
    assert len(set(codes)) == 18


def test_every_kind_is_known() -> None:
    kinds = {str(k) for k in OrganisationKind}
    for c in SEEDED_COMPETENCES:
        assert c.legal_holder_kinds <= kinds, c.code
        assert c.delegable_to <= kinds, c.code
        assert c.legal_holder_kinds, c.code


def test_accueil_is_held_by_all_but_the_platform_and_never_delegated() -> None:
    accueil = CATALOGUE["accueil"]
    assert accueil.legal_holder_kinds == {str(k) for k in OrganisationKind} - {"plateforme"}
    assert not accueil.delegable


def test_ase_is_sensitive_and_never_delegable() -> None:
    assert CATALOGUE["ase"].sensitive
    assert CATALOGUE["ase"].delegable_to == frozenset()
    assert CATALOGUE["ase"].legal_holder_kinds == {"departement"}


def test_only_ase_and_violences_are_sensitive() -> None:
    assert {c.code for c in SEEDED_COMPETENCES if c.sensitive} == {"ase", "violences"}


def test_selected_rows_match_the_reference_table() -> None:
    assert CATALOGUE["rsa"].delegable_to == {"ccas", "cias", "association", "organisme_social"}
    assert CATALOGUE["domiciliation"].legal_holder_kinds == {"ccas", "cias"}
    assert CATALOGUE["domiciliation"].delegable_to == {"association"}
    assert CATALOGUE["registre_vulnerables"].legal_holder_kinds == {"commune"}
    assert CATALOGUE["registre_vulnerables"].delegable_to == {"ccas", "cias"}
    assert CATALOGUE["personnes_agees"].legal_holder_kinds == {
        "commune",
        "ccas",
        "cias",
        "departement",
    }
    assert CATALOGUE["violences"].legal_holder_kinds == {"commune", "ccas", "departement"}
    assert CATALOGUE["apa"].delegable_to == {"ccas", "cias"}


def test_legal_aid_prestations_are_departement_competences() -> None:
    assert frozenset({"rsa", "apa", "pch", "ash", "fsl", "faj"}) == LEGAL_AID_PRESTATIONS
    for code in LEGAL_AID_PRESTATIONS:
        assert CATALOGUE[code].legal_holder_kinds == {"departement"}


def test_enums_are_strings() -> None:
    kind: str = OrganisationKind.ORGANISME_SOCIAL
    assert kind == "organisme_social"
    assert OrganisationKind("ccas") is OrganisationKind.CCAS
    assert [str(c) for c in DataCategory] == [
        "identity",
        "contact",
        "nir",
        "household",
        "resources",
        "situation",
        "notes",
        "referrals",
        "orientations",
        "dossiers",
        "aids",
    ]
