"""Problems proper to legal-aid dossiers."""

from __future__ import annotations

from api.problems import Conflict, Forbidden


class FieldNotOwned(Forbidden):
    """A write of fields that belong to the other side of the dossier: instruction fields to
    the instructing organisation, decision fields to the deciding one. ``errors`` names them."""

    slug = "field-not-owned"
    title = "These fields belong to the other side of the dossier"


class SyncConflict(Conflict):
    """A sync item older than the last change of a field it carries: the other side (or a
    newer item) changed it after the item's ``source_updated_at``. ``errors`` names them."""

    slug = "sync-conflict"
    title = "The dossier changed after this version of it"
