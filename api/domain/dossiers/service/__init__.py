"""Legal-aid dossiers through the API: a partner following the person for the prestation
instructs (creates, fills the instruction, submits); the legal holder reviews, decides
(``decideur`` role) and notifies. Every read and write is audited and every change announced
to both sides in the same transaction.

``context`` holds what the use cases share, ``visibility`` which dossiers the caller sees,
``reads``, ``instruction``, ``decision`` and ``lifecycle`` the use cases themselves."""

from __future__ import annotations

from api.domain.dossiers.service.context import Dossiers
from api.domain.dossiers.service.instruction import create, update
from api.domain.dossiers.service.lifecycle import act
from api.domain.dossiers.service.reads import page, read

__all__ = ["Dossiers", "act", "create", "page", "read", "update"]
