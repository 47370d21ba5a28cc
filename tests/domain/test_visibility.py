"""The test oracle of the access rule (tests/oracle.py): membership ∩ attachment ∩
competence, per category (domain.md §7); tests/store/test_access_rule.py holds the product's
SQL rule to it."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from api.auth.permissions import ROLE_CATEGORIES, Role
from api.domain.catalogue import DataCategory
from tests.oracle import ALL_BUT_NIR, Attachment, granted_categories

AGENT = ROLE_CATEGORIES[Role.AGENT]
ACCUEIL = ROLE_CATEGORIES[Role.ACCUEIL]
CONV = uuid.uuid4()


def grant(
    *attachments: Attachment,
    roles: frozenset[DataCategory] = AGENT,
    clearance: bool = False,
    conventions: dict[uuid.UUID, list[str]] | None = None,
) -> frozenset[DataCategory]:
    return granted_categories(
        attachments,
        role_categories=roles,
        sensitive_clearance=clearance,
        convention_categories=conventions or {},
    )


def test_law_grants_everything_but_nir_except_for_legal_aid() -> None:
    assert grant(Attachment("aide_facultative", False, "law")) == ALL_BUT_NIR
    assert DataCategory.NIR in grant(Attachment("rsa", False, "law"))


def test_convention_grants_its_categories_only() -> None:
    got = grant(
        Attachment("rsa", False, "convention", CONV), conventions={CONV: ["identity", "nir"]}
    )
    assert got == {DataCategory.IDENTITY, DataCategory.NIR}


def test_lapsed_competence_grants_nothing() -> None:
    assert grant(Attachment("rsa", False, None)) == frozenset()


def test_sensitive_needs_clearance() -> None:
    assert grant(Attachment("ase", True, "law")) == frozenset()
    assert grant(Attachment("ase", True, "law"), clearance=True) == ALL_BUT_NIR


def test_role_caps_what_attachment_grants() -> None:
    assert grant(Attachment("rsa", False, "law"), roles=ACCUEIL) <= ACCUEIL


@given(
    st.lists(
        st.builds(
            Attachment,
            competence=st.sampled_from(["rsa", "ase", "accueil", "faj"]),
            sensitive=st.booleans(),
            source=st.sampled_from(["law", "convention", None]),
            convention_id=st.just(CONV),
        ),
        max_size=5,
    ),
    st.sets(st.sampled_from([c.value for c in DataCategory])),
    st.sampled_from(list(Role)),
)
def test_never_more_than_the_role_nor_the_attachments(
    attachments: list[Attachment], conv_categories: set[str], role: Role
) -> None:
    got = grant(
        *attachments, roles=ROLE_CATEGORIES[role], conventions={CONV: sorted(conv_categories)}
    )
    assert got <= ROLE_CATEGORIES[role]
    if all(a.source is None for a in attachments):
        assert got == frozenset()


def test_access_request_grants_what_it_names_but_never_the_nir() -> None:
    got = grant(
        Attachment("rsa", False, "law", requested=frozenset({"identity", "contact", "nir"}))
    )
    assert got == {DataCategory.IDENTITY, DataCategory.CONTACT}
