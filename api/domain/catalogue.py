"""Reference enums and the seed of the competence catalogue (domain.md §3, §4, §7).

At run time the catalogue is data in the database (the platform operator may extend it);
:data:`SEEDED_COMPETENCES` is only what set-up inserts. Rules take a
``Mapping[str, CompetenceDef]`` so they work on whatever the database holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class OrganisationKind(StrEnum):
    COMMUNE = "commune"
    CCAS = "ccas"
    EPCI = "epci"
    CIAS = "cias"
    DEPARTEMENT = "departement"
    ORGANISME_SOCIAL = "organisme_social"
    ASSOCIATION = "association"
    ETAT = "etat"
    PLATEFORME = "plateforme"


class DataCategory(StrEnum):
    IDENTITY = "identity"
    CONTACT = "contact"
    NIR = "nir"
    HOUSEHOLD = "household"
    RESOURCES = "resources"
    SITUATION = "situation"
    NOTES = "notes"
    REFERRALS = "referrals"
    ORIENTATIONS = "orientations"
    DOSSIERS = "dossiers"
    AIDS = "aids"


LEGAL_AID_PRESTATIONS: frozenset[str] = frozenset({"rsa", "apa", "pch", "ash", "fsl", "faj"})


@dataclass(frozen=True)
class CompetenceDef:
    code: str
    label: str
    legal_holder_kinds: frozenset[str]
    delegable_to: frozenset[str]
    sensitive: bool

    @property
    def delegable(self) -> bool:
        return bool(self.delegable_to)


def _kinds(*kinds: OrganisationKind) -> frozenset[str]:
    return frozenset(str(k) for k in kinds)


_K = OrganisationKind
_ALL_BUT_PLATEFORME = frozenset(str(k) for k in _K if k is not _K.PLATEFORME)
_LOCAL = _kinds(_K.CCAS, _K.CIAS)
_LOCAL_ASSO = _kinds(_K.CCAS, _K.CIAS, _K.ASSOCIATION)
_DEP = _kinds(_K.DEPARTEMENT)

SEEDED_COMPETENCES: tuple[CompetenceDef, ...] = (
    # Everyone but the platform holds `accueil` by law, so delegating it is meaningless.
    CompetenceDef(
        "accueil", "accueil, information, orientation", _ALL_BUT_PLATEFORME, frozenset(), False
    ),
    CompetenceDef(
        "domiciliation",
        "élection de domicile (CASF L.264-1)",
        _LOCAL,
        _kinds(_K.ASSOCIATION),
        False,
    ),
    CompetenceDef(
        "aide_facultative",
        "aides facultatives, secours d'urgence",
        _kinds(_K.COMMUNE, _K.CCAS, _K.CIAS),
        _LOCAL_ASSO,
        False,
    ),
    CompetenceDef("aide_alimentaire", "aide alimentaire", _LOCAL, _kinds(_K.ASSOCIATION), False),
    CompetenceDef(
        "registre_vulnerables",
        "registre des personnes vulnérables (L.121-6-1)",
        _kinds(_K.COMMUNE),
        _LOCAL,
        False,
    ),
    CompetenceDef(
        "rsa",
        "RSA: instruction and accompaniment",
        _DEP,
        _kinds(_K.CCAS, _K.CIAS, _K.ASSOCIATION, _K.ORGANISME_SOCIAL),
        False,
    ),
    CompetenceDef(
        "insertion",
        "accompagnement socio-professionnel",
        _DEP,
        _kinds(_K.CCAS, _K.CIAS, _K.ASSOCIATION, _K.ORGANISME_SOCIAL),
        False,
    ),
    CompetenceDef("apa", "allocation personnalisée d'autonomie", _DEP, _LOCAL, False),
    CompetenceDef("pch", "handicap, PCH", _DEP, _LOCAL, False),
    CompetenceDef("ash", "aide sociale à l'hébergement", _DEP, _LOCAL, False),
    CompetenceDef("fsl", "fonds de solidarité logement", _DEP, _LOCAL_ASSO, False),
    CompetenceDef("faj", "fonds d'aide aux jeunes", _DEP, _LOCAL_ASSO, False),
    CompetenceDef(
        "personnes_agees",
        "actions for older people (portage de repas, CLIC…)",
        _kinds(_K.COMMUNE, _K.CCAS, _K.CIAS, _K.DEPARTEMENT),
        _LOCAL_ASSO,
        False,
    ),
    CompetenceDef(
        "petite_enfance",
        "early childhood",
        _kinds(_K.COMMUNE, _K.CCAS, _K.CIAS),
        _LOCAL_ASSO,
        False,
    ),
    CompetenceDef("jeunesse", "youth", _kinds(_K.COMMUNE), _LOCAL_ASSO, False),
    CompetenceDef("logement", "housing", _kinds(_K.COMMUNE), _LOCAL_ASSO, False),
    CompetenceDef(
        "violences",
        "victims of violence",
        _kinds(_K.COMMUNE, _K.CCAS, _K.DEPARTEMENT),
        _LOCAL_ASSO,
        True,
    ),
    CompetenceDef("ase", "aide sociale à l'enfance (child protection)", _DEP, frozenset(), True),
)


def catalogue_by_code(defs: Iterable[CompetenceDef]) -> dict[str, CompetenceDef]:
    """Index competence definitions by code (the shape every rule takes)."""
    return {d.code: d for d in defs}
