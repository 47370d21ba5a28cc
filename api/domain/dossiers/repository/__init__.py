"""Legal-aid dossiers in the database: the scoped store (``store``) and the typed rows it
reads (``rows``)."""

from __future__ import annotations

from api.domain.dossiers.repository.rows import OwnRef, PersonEvent, PersonMatch, StoredDossier
from api.domain.dossiers.repository.store import SYNCED_COLUMNS, DossierStore

__all__ = [
    "SYNCED_COLUMNS",
    "DossierStore",
    "OwnRef",
    "PersonEvent",
    "PersonMatch",
    "StoredDossier",
]
