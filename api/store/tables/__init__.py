"""Every table of the service. Importing this package checks that each declares its scoping."""

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
from api.domain.statistics.tables import StatFact, StatHoliday
from api.store.base import check_scoping_declared, metadata
from api.store.tables.changes import (
    ChangeEvent,
    IdempotencyKey,
    WebhookAttempt,
    WebhookDelivery,
    WebhookSubscription,
)
from api.store.tables.dossiers import Dossier, DossierEvent, DossierExternalRef
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
    AuditChainAnchor,
    AuditEntry,
    Beneficiary,
    BudgetLine,
    CareTeamMembership,
    Consent,
    HouseholdMember,
    Note,
)
from api.store.tables.reference import Commune, Competence, Departement, Epci, Region
from api.store.tables.referrals import (
    Orientation,
    OrientationEvent,
    Referral,
    ReferralEvent,
    ReferralMessage,
)

check_scoping_declared()

__all__ = [
    "AccessRequest",
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
    "StatFact",
    "StatHoliday",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "metadata",
]
