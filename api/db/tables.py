"""Every table of the service. Importing this package checks that each declares its scoping."""

from api.auth.tables import LoginAttempt
from api.db.base import check_scoping_declared, metadata
from api.domain.aids.tables import (
    AidCommission,
    AidEnvelope,
    AidPayment,
    AidRequest,
    AidRequestEvent,
    AidRules,
    AidType,
    AidVoucherCounter,
)
from api.domain.audit.tables import AuditChainAnchor, AuditEntry
from api.domain.changes.tables import (
    ChangeEvent,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from api.domain.conventions.tables import Convention, ConventionEvent
from api.domain.dossiers.tables import Dossier, DossierEvent, DossierExternalRef
from api.domain.organisations.tables import (
    ApiClient,
    AppUser,
    Membership,
    Organisation,
    OrganisationCommune,
    RefreshToken,
    RoleGrant,
)
from api.domain.orientations.tables import Orientation, OrientationEvent
from api.domain.people.tables import (
    AccessRequest,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    Consent,
    HouseholdMember,
    Note,
)
from api.domain.referrals.tables import Referral, ReferralEvent, ReferralMessage
from api.domain.statistics.tables import StatFact, StatHoliday
from api.domain.territories.tables import (
    AccessVersion,
    Commune,
    Competence,
    Departement,
    Epci,
    Region,
)
from api.http.tables import IdempotencyKey

check_scoping_declared()

__all__ = [
    "AccessRequest",
    "AccessVersion",
    "AidCommission",
    "AidEnvelope",
    "AidPayment",
    "AidRequest",
    "AidRequestEvent",
    "AidRules",
    "AidType",
    "AidVoucherCounter",
    "ApiClient",
    "AppUser",
    "AuditChainAnchor",
    "AuditEntry",
    "Beneficiary",
    "BudgetLine",
    "CareTeamMembership",
    "ChangeEvent",
    "Commune",
    "Competence",
    "Consent",
    "Convention",
    "ConventionEvent",
    "Departement",
    "Dossier",
    "DossierEvent",
    "DossierExternalRef",
    "Epci",
    "HouseholdMember",
    "IdempotencyKey",
    "LoginAttempt",
    "Membership",
    "Note",
    "Organisation",
    "OrganisationCommune",
    "Orientation",
    "OrientationEvent",
    "Referral",
    "ReferralEvent",
    "ReferralMessage",
    "RefreshToken",
    "Region",
    "RoleGrant",
    "StatFact",
    "StatHoliday",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
