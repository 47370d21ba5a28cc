"""The authorization matrix, declared as data: endpoint × persona → expected status.

Every later capability adds its endpoints here. ``expect`` lists the personas whose answer
differs from ``default``; anonymous callers get 401 on every protected endpoint unless said
otherwise. Each case runs in its own rolled-back transaction, so writes do not accumulate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.world import CLIENT_PERSONAS, USER_PERSONAS, World

PERSONAS = [*USER_PERSONAS, *CLIENT_PERSONAS, "anonymous"]

RSA_CONVENTION = "CONV-80-RSA-2026-001"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: Callable[[World], str]
    expect: dict[str, int]
    default: int
    body: Callable[[World], Any] | None = None
    public: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def status_for(self, persona: str) -> int:
        if persona in self.expect:
            return self.expect[persona]
        if persona == "anonymous" and not self.public:
            return 401
        return self.default


def org(key: str) -> Callable[[World], str]:
    return lambda w: str(w.organisations[key])


def _member_body(w: World) -> dict[str, Any]:
    return {
        "email": "nouvelle.recrue@somme.demo",
        "full_name": "Nouvelle Recrue",
        "roles": ["agent"],
    }


def _organisation_body(w: World) -> dict[str, Any]:
    return {"name": "CCAS de Camon", "kind": "ccas", "commune": "80164"}


def _convention_body(w: World) -> dict[str, Any]:
    return {
        "reference": "CONV-TEST-AIDE-FAC",
        "grantee_id": str(w.organisations["secours_populaire"]),
        "competences": ["aide_facultative"],
        "communes": ["80021"],
        "data_categories": ["identity", "contact"],
        "valid_from": "2026-01-01",
    }


_ADMIN_OF_CCAS_AMIENS = {"org_admin": 0, "platform_admin": 0}
_PARTIES_OF_RSA = [
    "departement_agent",
    "departement_admin",
    "ccas_rsa_agent",
    "pilotage",
    "dpo",
    "org_admin",
    "client_with_scopes",
    "client_without_scopes",
]


def _only(statuses: dict[str, int]) -> dict[str, int]:
    return statuses


CASES = [
    Case("me", "GET", lambda w: "/v1/me", {}, 200),
    Case("jwks", "GET", lambda w: "/.well-known/jwks.json", {}, 200, public=True),
    Case(
        "directory",
        "GET",
        lambda w: "/v1/directory/competent?competence=rsa&commune=80021",
        {},
        200,
        public=True,
    ),
    Case(
        "organisations list", "GET", lambda w: "/v1/organisations?kind=ccas", {}, 200, public=True
    ),
    Case(
        "organisation read",
        "GET",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}",
        {},
        200,
        public=True,
    ),
    Case(
        "organisation create",
        "POST",
        lambda w: "/v1/organisations",
        {"platform_admin": 201},
        403,
        body=_organisation_body,
    ),
    Case(
        "organisation edit",
        "PATCH",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}",
        {"org_admin": 200, "platform_admin": 200},
        403,
        body=lambda w: {"phone": "03 22 00 00 00"},
        headers={"If-Match": '"1"'},
    ),
    Case(
        "members list",
        "GET",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/members",
        {"org_admin": 200, "platform_admin": 200},
        403,
    ),
    # the platform operator adds an organisation's first admin only (the CCAS has one)
    Case(
        "member add",
        "POST",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/members",
        {"org_admin": 201},
        403,
        body=_member_body,
    ),
    Case(
        "member roles",
        "PATCH",
        lambda w: (
            f"/v1/organisations/{org('ccas_amiens')(w)}/members/"
            f"{w.personas['ccas_rsa_agent'].principal_id}"
        ),
        {"org_admin": 200},
        403,
        body=lambda w: {"roles": ["decideur"]},
    ),
    Case(
        "member guarded roles",
        "PATCH",
        lambda w: (
            f"/v1/organisations/{org('ccas_amiens')(w)}/members/"
            f"{w.personas['ccas_rsa_agent'].principal_id}"
        ),
        {"org_admin": 202},
        403,
        body=lambda w: {"roles": ["agent", "sensitive"]},
    ),
    Case(
        "member remove",
        "DELETE",
        lambda w: (
            f"/v1/organisations/{org('ccas_amiens')(w)}/members/"
            f"{w.personas['ccas_rsa_agent'].principal_id}"
        ),
        {"org_admin": 204},
        403,
    ),
    Case(
        "role grants list",
        "GET",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/role-grants",
        {"org_admin": 200, "platform_admin": 200},
        403,
    ),
    Case(
        "my invitations",
        "GET",
        lambda w: "/v1/me/invitations",
        {"client_with_scopes": 403, "client_without_scopes": 403},
        200,
    ),
    Case(
        "api client create",
        "POST",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/api-clients",
        {"org_admin": 201},
        403,
        body=lambda w: {"name": "Logiciel métier", "scopes": ["referrals:read"]},
    ),
    Case(
        "api clients list",
        "GET",
        lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/api-clients",
        {"org_admin": 200, "platform_admin": 200},
        403,
    ),
    Case(
        "holdings", "GET", lambda w: f"/v1/organisations/{org('ccas_amiens')(w)}/holdings", {}, 200
    ),
    Case("conventions list", "GET", lambda w: "/v1/conventions", {}, 200),
    Case(
        "convention propose",
        "POST",
        lambda w: "/v1/conventions",
        {"org_admin": 201, "departement_admin": 422},
        403,
        body=_convention_body,
    ),
    Case(
        "convention read",
        "GET",
        lambda w: f"/v1/conventions/{w.conventions[RSA_CONVENTION]}",
        dict.fromkeys(_PARTIES_OF_RSA, 200),
        404,
    ),
    Case(
        "convention suspend",
        "POST",
        lambda w: f"/v1/conventions/{w.conventions[RSA_CONVENTION]}/suspend",
        {**dict.fromkeys(_PARTIES_OF_RSA, 403), "departement_admin": 200},
        404,
        body=lambda w: {"reason": "audit annuel"},
    ),
    Case(
        "convention withdraw",
        "POST",
        lambda w: f"/v1/conventions/{w.conventions[RSA_CONVENTION]}/withdraw",
        {**dict.fromkeys(_PARTIES_OF_RSA, 403), "org_admin": 200},
        404,
        body=lambda w: {},
    ),
]


# People (issue: beneficiaries). The person is created by the CCAS d'Amiens in the test's own
# transaction; see ``PERSON`` in tests/api/test_authorization_matrix.py.
def person_path(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/beneficiaries/{w.extra['person']}{suffix}"


# the CIAS holds aide_facultative by law on Amiens (member of its EPCI); others do not there
_CREATORS = {
    "ccas_rsa_agent": 201,
    "departement_agent": 422,
    "ccas_agent": 422,
    "cias_agent": 201,
    "association_agent": 422,
    "client_with_scopes": 403,
}

PEOPLE_CASES = [
    Case(
        "beneficiary create",
        "POST",
        lambda w: "/v1/beneficiaries",
        _CREATORS,
        403,
        body=lambda w: {
            "competence": "aide_facultative",
            "birth_name": "Martin",
            "first_names": "Lucie",
            "birth_date": "1990-06-01",
            "sex": "F",
            "commune": "80021",
        },
    ),
    Case("beneficiary read", "GET", person_path(), {"ccas_rsa_agent": 200}, 404),
    Case(
        "beneficiary edit",
        "PATCH",
        person_path(),
        {"ccas_rsa_agent": 200},
        404,
        body=lambda w: {"phone": "06 12 34 56 78"},
        headers={"If-Match": '"1"'},
    ),
    Case("beneficiary care team", "GET", person_path("/care-team"), {"ccas_rsa_agent": 200}, 404),
    Case("beneficiary access log", "GET", person_path("/access-log"), {"ccas_rsa_agent": 200}, 404),
    Case("beneficiaries attached", "GET", lambda w: "/v1/beneficiaries", {}, 200),
    Case(
        "beneficiary preview search",
        "GET",
        lambda w: "/v1/beneficiaries/search?birth_date=1990-06-01&last_name=x&first_name=y",
        {
            "pilotage": 403,
            "dpo": 403,
            "org_admin": 403,
            "platform_admin": 403,
            "departement_admin": 403,
            "client_with_scopes": 403,
            "client_without_scopes": 403,
        },
        200,
    ),
    Case("beneficiary household", "GET", person_path("/household"), {"ccas_rsa_agent": 200}, 404),
    Case("beneficiary budget", "GET", person_path("/budget"), {"ccas_rsa_agent": 200}, 404),
    Case("beneficiary notes", "GET", person_path("/notes"), {"ccas_rsa_agent": 200}, 404),
    Case(
        "beneficiary note write",
        "POST",
        person_path("/notes"),
        {"ccas_rsa_agent": 201},
        404,
        body=lambda w: {"competence": "aide_facultative", "visibility": "team", "body": "suivi"},
    ),
    Case(
        "access request",
        "POST",
        person_path("/access-requests"),
        # legal holders of aide_facultative on Amiens: the CIAS (its EPCI) and the CCAS itself
        {
            "cias_agent": 201,
            "ccas_rsa_agent": 201,
            "pilotage": 403,
            "dpo": 403,
            "org_admin": 403,
            "departement_admin": 403,
            "platform_admin": 403,
            "client_with_scopes": 403,
            "client_without_scopes": 403,
            # they may discover the person (accueil on Amiens), not hold aide_facultative there
            "departement_agent": 422,
            "association_agent": 422,
        },
        # a person the caller may not discover is not there to ask about (issue 10, item 8)
        404,
        body=lambda w: {"competence": "aide_facultative", "reason": "accompagnement en cours"},
    ),
    Case("access requests list", "GET", lambda w: "/v1/access-requests", {}, 200),
    Case(
        "audit trail",
        "GET",
        lambda w: "/v1/audit",
        {"dpo": 200, "org_admin": 200, "departement_admin": 200},
        403,
    ),
    # consents, timeline, export (more in tests/api/test_people_matrix.py)
    Case("beneficiary consents", "GET", person_path("/consents"), {"ccas_rsa_agent": 200}, 404),
    Case(
        "beneficiary consent record",
        "POST",
        person_path("/consents"),
        {"ccas_rsa_agent": 201},
        404,
        body=lambda w: {
            "kind": "consent",
            "competence": "aide_facultative",
            "purpose": "aide facultative",
            "method": "oral",
            "given_on": "2026-01-02",
        },
    ),
    Case("beneficiary timeline", "GET", person_path("/timeline"), {"ccas_rsa_agent": 200}, 404),
    Case(
        "beneficiary export",
        "GET",
        person_path("/export?purpose=droit%20d%27acces"),
        # the CCAS follows the person: its agent and admin are no DPO
        {"ccas_rsa_agent": 403, "org_admin": 403},
        404,
    ),
]


# Staff governance (issue 10, item 5): the CCAS d'Amiens's admin asked ``dpo`` for its RSA
# agent and invited the CCAS de Corbie's agent, in the test's own transaction; see
# ``test_staff_matrix`` in tests/api/test_authorization_matrix.py.
def grant_path(decision: str) -> Callable[[World], str]:
    return lambda w: (
        f"/v1/organisations/{org('ccas_amiens')(w)}/role-grants/{w.extra['grant']}/{decision}"
    )


_CLIENTS_403 = {"client_with_scopes": 403, "client_without_scopes": 403}

STAFF_CASES = [
    # the admin who asked may not approve; the CCAS has a single admin: the platform may
    Case("role grant approve", "POST", grant_path("approve"), {"platform_admin": 200}, 403),
    Case(
        "role grant deny",
        "POST",
        grant_path("deny"),
        {"org_admin": 200, "platform_admin": 200},
        403,
    ),
    Case(
        "invitation accept",
        "POST",
        lambda w: f"/v1/me/invitations/{org('ccas_amiens')(w)}/accept",
        {"ccas_agent": 204, **_CLIENTS_403},
        404,
    ),
    Case(
        "invitation decline",
        "POST",
        lambda w: f"/v1/me/invitations/{org('ccas_amiens')(w)}/decline",
        {"ccas_agent": 204, **_CLIENTS_403},
        404,
    ),
]
# steering statistics: the département's pilotage user and its stats:read client; every
# other persona, personal-data roles included, is refused
_STATISTICS_READERS = {"pilotage": 200, "client_without_scopes": 200}
STATISTICS_CASES = [
    Case(
        f"statistics {measure}",
        "GET",
        lambda w, measure=measure: (
            f"/v1/statistics/{measure}?territory=departement:80&by=commune,month"
        ),
        _STATISTICS_READERS,
        403,
    )
    for measure in ("people", "referrals", "orientations", "dossiers", "aids")
] + [
    Case(
        "statistics unmet needs",
        "GET",
        lambda w: "/v1/statistics/unmet-needs?territory=epci:248000531",
        _STATISTICS_READERS,
        403,
    ),
    Case(
        "statistics report",
        "GET",
        lambda w: "/v1/statistics/report?territory=epci:248000531&year=2026",
        _STATISTICS_READERS,
        403,
    ),
]
CASES.extend(STATISTICS_CASES)
