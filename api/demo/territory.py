"""The demo territory's partners and conventions: real communes of the Somme (80), invented
organisations' names where the real ones are not needed, one user per role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEMO_PASSWORD = "guichet-demo-2026"  # noqa: S105 - printed for the demo
PLATFORM_ADMIN = "admin@plateforme.demo"


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    name: str
    kind: str
    place: dict[str, Any]
    members: dict[str, list[str]]  # e-mail local part → roles


ORGANISATIONS = (
    DemoOrganisation(
        "departement",
        "Conseil départemental de la Somme",
        "departement",
        {"departement": "80"},
        {
            "agent.cd80": ["agent"],
            "decideur.cd80": ["decideur"],
            "sensible.cd80": ["agent", "sensitive"],
            "pilotage.cd80": ["pilotage"],
            "dpo.cd80": ["dpo"],
            "admin.cd80": ["admin"],
        },
    ),
    DemoOrganisation(
        "amiens_metropole",
        "Amiens Métropole",
        "epci",
        {"epci": "248000531"},
        {"admin.amiens-metropole": ["admin"]},
    ),
    DemoOrganisation(
        "cias",
        "CIAS d'Amiens Métropole",
        "cias",
        {"epci": "248000531"},
        {"agent.cias": ["agent"], "admin.cias": ["admin"]},
    ),
    DemoOrganisation(
        "ccas_amiens",
        "CCAS d'Amiens",
        "ccas",
        {"commune": "80021"},
        {
            "accueil.ccas-amiens": ["accueil"],
            "agent.ccas-amiens": ["agent"],
            "decideur.ccas-amiens": ["decideur"],
            "pilotage.ccas-amiens": ["pilotage"],
            "dpo.ccas-amiens": ["dpo"],
            "admin.ccas-amiens": ["admin"],
        },
    ),
    DemoOrganisation(
        "ccas_longueau",
        "CCAS de Longueau",
        "ccas",
        {"commune": "80489"},
        {"agent.ccas-longueau": ["agent"], "admin.ccas-longueau": ["admin"]},
    ),
    DemoOrganisation(
        "commune_corbie",
        "Commune de Corbie",
        "commune",
        {"commune": "80212"},
        {"accueil.mairie-corbie": ["accueil"], "admin.mairie-corbie": ["admin"]},
    ),
    DemoOrganisation(
        "ccas_corbie",
        "CCAS de Corbie",
        "ccas",
        {"commune": "80212"},
        {"agent.ccas-corbie": ["agent"], "admin.ccas-corbie": ["admin"]},
    ),
    DemoOrganisation(
        "cc_val_de_somme",
        "Communauté de communes du Val de Somme",
        "epci",
        {"epci": "248000499"},
        {"admin.val-de-somme": ["admin"]},
    ),
    DemoOrganisation(
        "caf",
        "CAF de la Somme",
        "organisme_social",
        {"service_area": {"departements": ["80"]}},
        {"agent.caf80": ["agent"], "admin.caf80": ["admin"]},
    ),
    DemoOrganisation(
        "secours_populaire",
        "Secours populaire – fédération de la Somme",
        "association",
        {"service_area": {"communes": ["80021", "80489", "80164", "80674"]}},
        {"agent.secours-populaire": ["agent"], "admin.secours-populaire": ["admin"]},
    ),
    DemoOrganisation(
        "mission_locale",
        "Mission locale du Grand Amiénois",
        "association",
        {"service_area": {"departements": ["80"]}},
        {"agent.mission-locale": ["agent"], "admin.mission-locale": ["admin"]},
    ),
)


@dataclass(frozen=True)
class DemoConvention:
    reference: str
    grantor: str
    grantee: str
    competences: list[str]
    communes: list[str] | str
    data_categories: list[str]


CONVENTIONS = (
    DemoConvention(
        "CONV-80-RSA-2026-001",
        "departement",
        "ccas_amiens",
        ["rsa", "insertion"],
        ["80021"],
        [
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
        ],
    ),
    DemoConvention(
        "CONV-LONGUEAU-CIAS-2026",
        "ccas_longueau",
        "cias",
        # aide_alimentaire is delegable to associations only (catalogue); a CIAS holds it by
        # law on its EPCI anyway.
        ["petite_enfance", "personnes_agees"],
        ["80489"],
        ["identity", "contact", "household", "resources", "situation", "referrals"],
    ),
    DemoConvention(
        "CONV-AMIENS-SPF-2026",
        "ccas_amiens",
        "secours_populaire",
        ["aide_alimentaire"],
        ["80021"],
        # the association instructs food-aid requests the CCAS decides
        ["identity", "contact", "household", "resources", "referrals", "aids"],
    ),
    DemoConvention(
        "CONV-80-FAJ-2026",
        "departement",
        "mission_locale",
        ["faj", "insertion"],
        "all",
        ["identity", "contact", "situation", "resources", "referrals", "dossiers"],
    ),
)
