"""Pure rules of people records: consents, timeline ordering and filtering, exports, retention."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from api.problems import FieldError

# consents -------------------------------------------------------------------------------


def consent_errors(
    *,
    kind: str,
    organisation_id: uuid.UUID | None,
    competence: str | None,
    given_on: date,
    today: date,
) -> list[FieldError]:
    """What is wrong with a consent or information notice, field by field."""
    errors = []
    if kind == "consent" and organisation_id is None and competence is None:
        errors.append(
            FieldError("/organisation_id", "A consent covers a recipient or a competence.")
        )
    if given_on > today:
        errors.append(FieldError("/given_on", "Cannot be in the future."))
    return errors


def consent_active(given_on: date, withdrawn_on: date | None, today: date) -> bool:
    """Valid today: given, and not withdrawn (a withdrawal takes effect the day it is
    recorded)."""
    return given_on <= today and (withdrawn_on is None or withdrawn_on > today)


def sensitive_shown(
    *,
    competence: str | None,
    organisation_id: uuid.UUID | None,
    sensitive: frozenset[str],
    clearance: bool,
    own_organisation: uuid.UUID,
) -> bool:
    """Records of a sensitive competence (ase, violences) are shown only to a cleared user
    of the organisation that holds them: never in other partners' timelines (domain.md §4)."""
    if competence is None or competence not in sensitive:
        return True
    return clearance and organisation_id == own_organisation


# timeline -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """A timeline entry before it is shaped for the response."""

    at: datetime
    type: str
    id: uuid.UUID
    organisation_id: uuid.UUID | None = None
    competence: str | None = None
    status: str | None = None
    codes: Mapping[str, str] | None = None

    @property
    def key(self) -> tuple[datetime, str, str]:
        """Newest first, then a stable order between events of the same instant."""
        return (self.at, self.type, str(self.id))


def timeline_page(
    events: Iterable[Event], *, before: tuple[datetime, str, str] | None, limit: int
) -> tuple[list[Event], bool]:
    """Events strictly older than ``before`` (a previous page's last key), newest first,
    ``limit`` at most, and whether more follow. Events with the same key are one event."""
    unique = {e.key: e for e in events}
    keys = sorted((k for k in unique if before is None or k < before), reverse=True)
    return [unique[k] for k in keys[:limit]], len(keys) > limit


# right of access ------------------------------------------------------------------------

#: derived values that say nothing more than the record: left out of an export
DERIVED_COLUMNS = frozenset({"nir_hash", "match_keys", "folded_names"})


def export_row(row: Mapping[str, Any], decrypt: Callable[[bytes], str]) -> dict[str, Any]:
    """A row as exported: the NIR in clear instead of its ciphertext (PostgreSQL renders
    ``bytea`` in JSON as ``\\x`` and hexadecimal digits), derived columns left out."""
    shaped = {k: v for k, v in row.items() if k not in DERIVED_COLUMNS and k != "nir_cipher"}
    cipher = row.get("nir_cipher")
    if isinstance(cipher, str) and cipher.startswith("\\x"):
        shaped["nir"] = decrypt(bytes.fromhex(cipher[2:]))
    elif "nir_cipher" in row:
        shaped["nir"] = None
    return shaped


# retention (domain.md §11; the purge is api.jobs.purge) ---------------------------------

#: the purge warns each organisation of the memberships it will end within this delay
RETENTION_WARNING = timedelta(days=30)
#: someone nobody follows any more, though not through retention, is anonymised after this
#: delay: a departure by mistake can be undone meanwhile
ANONYMISATION_GRACE = timedelta(days=30)
#: a membership's end reasons that are codes: kept by anonymisation and shown in timelines;
#: any other reason is free text
CODED_END_REASONS = frozenset({"retention", "merged"})


@dataclass
class OrganisationPurge:
    organisation_id: uuid.UUID
    detached: int = 0
    due_within_30_days: int = 0
    audit_entries_deleted: int = 0


@dataclass
class PurgeReport:
    """Counts and organisation ids only: no personal value."""

    ran_at: datetime
    detached: int = 0
    anonymised: int = 0
    audit_entries_deleted: int = 0
    organisations: list[OrganisationPurge] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ran_at": self.ran_at.isoformat(),
            "detached": self.detached,
            "anonymised": self.anonymised,
            "audit_entries_deleted": self.audit_entries_deleted,
            "organisations": [
                {
                    "organisation_id": str(o.organisation_id),
                    "detached": o.detached,
                    "due_within_30_days": o.due_within_30_days,
                    "audit_entries_deleted": o.audit_entries_deleted,
                }
                for o in self.organisations
            ],
        }


def purge_report(
    ran_at: datetime,
    *,
    detached_from: Sequence[uuid.UUID],
    due: Mapping[uuid.UUID, int],
    anonymised: int,
    pruned: Mapping[uuid.UUID, int],
) -> PurgeReport:
    """A purge's report: the organisation of each membership it ended, how many each will
    see end within :data:`RETENTION_WARNING`, how many audit entries it deleted of each;
    one line per organisation concerned, in id order."""
    detached = Counter(detached_from)
    concerned = sorted(set(detached) | set(due) | {o for o, n in pruned.items() if n})
    return PurgeReport(
        ran_at=ran_at,
        detached=len(detached_from),
        anonymised=anonymised,
        audit_entries_deleted=sum(pruned.values()),
        organisations=[
            OrganisationPurge(o, detached[o], due.get(o, 0), pruned.get(o, 0)) for o in concerned
        ],
    )
