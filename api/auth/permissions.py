"""What each role and API-client scope permits: the one table handlers consult.

Handlers never compare role strings; they ask the request's scope whether it permits an
:class:`Action`, and which data categories its roles may read (domain.md §7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from api.domain.catalogue import DataCategory, OrganisationKind


class Role(StrEnum):
    ACCUEIL = "accueil"
    AGENT = "agent"
    DECIDEUR = "decideur"
    PILOTAGE = "pilotage"
    DPO = "dpo"
    ADMIN = "admin"
    SENSITIVE = "sensitive"


class ClientScope(StrEnum):
    REFERRALS_READ = "referrals:read"
    REFERRALS_WRITE = "referrals:write"
    BENEFICIARIES_READ = "beneficiaries:read"
    BENEFICIARIES_WRITE = "beneficiaries:write"
    DOSSIERS_SYNC = "dossiers:sync"
    CHANGES_READ = "changes:read"
    STATS_READ = "stats:read"


class Action(StrEnum):
    MANAGE_ORGANISATIONS = "organisations:manage"  # the platform operator only
    EDIT_OWN_ORGANISATION = "organisation:edit"
    READ_MEMBERS = "members:read"
    MANAGE_MEMBERS = "members:manage"
    MANAGE_API_CLIENTS = "api_clients:manage"
    READ_CONVENTIONS = "conventions:read"
    MANAGE_CONVENTIONS = "conventions:manage"
    READ_AUDIT = "audit:read"
    READ_STATS = "stats:read"
    PREVIEW_SEARCH = "people:preview"
    CREATE_PEOPLE = "people:create"
    SEND_REFERRALS = "referrals:send"
    ANSWER_REFERRALS = "referrals:answer"
    DECIDE = "decisions:record"
    SYNC_DOSSIERS = "dossiers:sync"
    # legal-aid dossiers: instructing (create, edit the instruction, submit) is agent work
    INSTRUCT_DOSSIERS = "dossiers:instruct"
    READ_CHANGES = "changes:read"
    MANAGE_WEBHOOKS = "webhooks:manage"
    # information notices and consents: recorded at the desk too (accueil informs people)
    RECORD_CONSENTS = "consents:record"
    MERGE_PEOPLE = "people:merge"
    # the DPO of an organisation in the person's care team (domain.md §11)
    READ_ACCESS_LOG = "people:access_log"
    EXPORT_PEOPLE = "people:export"
    MANAGE_RETENTION = "retention:manage"
    # aides facultatives (domain.md §10): the règlement is the admin's to publish; agents
    # instruct, pay and decide at the agent tier; decideurs decide above it and derogate
    MANAGE_AID_RULES = "aid_rules:manage"
    INSTRUCT_AIDS = "aids:instruct"
    PAY_AIDS = "aids:pay"
    MANAGE_AID_ENVELOPES = "aid_envelopes:manage"


_A = Action
_C = DataCategory
_ACCUEIL = frozenset({_A.PREVIEW_SEARCH, _A.CREATE_PEOPLE, _A.SEND_REFERRALS, _A.RECORD_CONSENTS})
_AGENT = _ACCUEIL | {
    _A.ANSWER_REFERRALS,
    _A.READ_CHANGES,
    _A.MERGE_PEOPLE,
    _A.INSTRUCT_DOSSIERS,
    _A.INSTRUCT_AIDS,
    _A.PAY_AIDS,
}

ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.ACCUEIL: _ACCUEIL,
    Role.AGENT: frozenset(_AGENT),
    Role.DECIDEUR: frozenset(_AGENT | {_A.DECIDE, _A.MANAGE_AID_ENVELOPES}),
    Role.PILOTAGE: frozenset({_A.READ_STATS}),
    Role.DPO: frozenset({_A.READ_AUDIT, _A.READ_ACCESS_LOG, _A.EXPORT_PEOPLE, _A.MANAGE_RETENTION}),
    Role.ADMIN: frozenset(
        {
            _A.EDIT_OWN_ORGANISATION,
            _A.READ_MEMBERS,
            _A.MANAGE_MEMBERS,
            _A.MANAGE_API_CLIENTS,
            _A.READ_CONVENTIONS,
            _A.MANAGE_CONVENTIONS,
            _A.MANAGE_WEBHOOKS,
            _A.READ_AUDIT,
            _A.MANAGE_RETENTION,
            _A.MANAGE_AID_RULES,
            _A.MANAGE_AID_ENVELOPES,
        }
    ),
    Role.SENSITIVE: frozenset(),
}

_AGENT_CATEGORIES = frozenset(
    {
        _C.IDENTITY,
        _C.CONTACT,
        _C.NIR,
        _C.HOUSEHOLD,
        _C.RESOURCES,
        _C.SITUATION,
        _C.NOTES,
        _C.REFERRALS,
        _C.ORIENTATIONS,
        _C.DOSSIERS,
        _C.AIDS,
    }
)

ROLE_CATEGORIES: Mapping[Role, frozenset[DataCategory]] = {
    Role.ACCUEIL: frozenset({_C.IDENTITY, _C.CONTACT, _C.REFERRALS, _C.ORIENTATIONS}),
    Role.AGENT: _AGENT_CATEGORIES,
    Role.DECIDEUR: _AGENT_CATEGORIES,
    Role.PILOTAGE: frozenset(),
    Role.DPO: frozenset(),
    Role.ADMIN: frozenset(),
    Role.SENSITIVE: frozenset(),
}

SCOPE_ACTIONS: Mapping[ClientScope, frozenset[Action]] = {
    ClientScope.REFERRALS_READ: frozenset({_A.READ_CHANGES}),
    # a sender's system records the consent its referral rests on
    ClientScope.REFERRALS_WRITE: frozenset(
        {_A.SEND_REFERRALS, _A.ANSWER_REFERRALS, _A.RECORD_CONSENTS}
    ),
    ClientScope.BENEFICIARIES_READ: frozenset({_A.PREVIEW_SEARCH}),
    ClientScope.BENEFICIARIES_WRITE: frozenset({_A.CREATE_PEOPLE}),
    ClientScope.DOSSIERS_SYNC: frozenset({_A.SYNC_DOSSIERS}),
    ClientScope.CHANGES_READ: frozenset({_A.READ_CHANGES}),
    ClientScope.STATS_READ: frozenset({_A.READ_STATS}),
}

SCOPE_CATEGORIES: Mapping[ClientScope, frozenset[DataCategory]] = {
    ClientScope.REFERRALS_READ: frozenset({_C.IDENTITY, _C.CONTACT, _C.REFERRALS}),
    ClientScope.REFERRALS_WRITE: frozenset({_C.IDENTITY, _C.CONTACT, _C.REFERRALS}),
    ClientScope.BENEFICIARIES_READ: frozenset({_C.IDENTITY, _C.CONTACT}),
    ClientScope.BENEFICIARIES_WRITE: frozenset({_C.IDENTITY, _C.CONTACT}),
    ClientScope.DOSSIERS_SYNC: frozenset({_C.IDENTITY, _C.DOSSIERS, _C.NIR}),
    ClientScope.CHANGES_READ: frozenset(),
    ClientScope.STATS_READ: frozenset(),
}


_ROLES = {r.value: r for r in Role}
_SCOPES = {s.value: s for s in ClientScope}


def user_actions(organisation_kind: str, roles: Iterable[str]) -> frozenset[Action]:
    """Actions a member with ``roles`` may take. The platform operator's admins manage
    organisations; its members never receive anything that touches personal data."""
    granted: set[Action] = set()
    for role in roles:
        if role in _ROLES:
            granted |= ROLE_ACTIONS[_ROLES[role]]
    if organisation_kind == OrganisationKind.PLATEFORME:
        return frozenset({_A.MANAGE_ORGANISATIONS} if Role.ADMIN in roles else set())
    return frozenset(granted)


def user_categories(organisation_kind: str, roles: Iterable[str]) -> frozenset[DataCategory]:
    if organisation_kind == OrganisationKind.PLATEFORME:
        return frozenset()
    categories: set[DataCategory] = set()
    for role in roles:
        if role in _ROLES:
            categories |= ROLE_CATEGORIES[_ROLES[role]]
    return frozenset(categories)


def client_actions(scopes: Iterable[str]) -> frozenset[Action]:
    return frozenset(a for s in scopes if s in _SCOPES for a in SCOPE_ACTIONS[_SCOPES[s]])


def client_categories(scopes: Iterable[str]) -> frozenset[DataCategory]:
    return frozenset(c for s in scopes if s in _SCOPES for c in SCOPE_CATEGORIES[_SCOPES[s]])
