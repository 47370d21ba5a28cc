"""Every table of the service. Importing this package checks that each declares its scoping."""

from api.store.base import check_scoping_declared, metadata
from api.store.tables.partners import (
    ApiClient,
    AppUser,
    Convention,
    ConventionEvent,
    Membership,
    Organisation,
    OrganisationCommune,
    RefreshToken,
)
from api.store.tables.people import (
    AccessRequest,
    AuditEntry,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    HouseholdMember,
    Note,
)
from api.store.tables.reference import Commune, Competence, Departement, Epci, Region

check_scoping_declared()

__all__ = [
    "AccessRequest",
    "ApiClient",
    "AppUser",
    "AuditEntry",
    "Beneficiary",
    "BudgetLine",
    "CareTeamMembership",
    "Commune",
    "Competence",
    "Convention",
    "ConventionEvent",
    "Departement",
    "Epci",
    "HouseholdMember",
    "Membership",
    "Note",
    "Organisation",
    "OrganisationCommune",
    "RefreshToken",
    "Region",
    "metadata",
]
