"""Notes on a person, and the information notices and consents recorded for them (RLS:
attachment, and a note's visibility)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import col

from api.db.tables import Consent, Note, Organisation
from api.domain.people.repository.scoped import Scoped


@dataclass(frozen=True)
class NoteRow:
    """A note with the name of the organisation that wrote it: what a reading shows."""

    note: Note
    organisation_name: str

    def fields(self) -> dict[str, Any]:
        """The note's columns, then its organisation's name."""
        return {**self.note.model_dump(), "organisation_name": self.organisation_name}


class NoteQueries(Scoped):
    async def notes(self, person_id: uuid.UUID, competences: Sequence[str]) -> list[NoteRow]:
        """Notes of the person for competences the caller may read; RLS applies visibility."""
        stmt = (
            select(Note, col(Organisation.name))
            .join(Organisation, col(Organisation.id) == col(Note.organisation_id))
            .where(
                col(Note.beneficiary_id) == person_id, col(Note.competence).in_(list(competences))
            )
            .order_by(col(Note.created_at).desc(), col(Note.id))
            .execution_options(populate_existing=True)
        )
        rows = await self.session.execute(stmt)
        return [NoteRow(note, name) for note, name in rows]

    async def add_note(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(Note).values(**values))


class ConsentQueries(Scoped):
    async def consents(self, person_id: uuid.UUID) -> list[Consent]:
        stmt = (
            select(Consent)
            .where(col(Consent.beneficiary_id) == person_id)
            .order_by(col(Consent.created_at).desc(), col(Consent.id))
            .execution_options(populate_existing=True)
        )
        return list((await self.session.scalars(stmt)).all())

    async def consent(
        self, person_id: uuid.UUID, consent_id: uuid.UUID, *, for_update: bool = False
    ) -> Consent | None:
        stmt = select(Consent).where(
            col(Consent.id) == consent_id, col(Consent.beneficiary_id) == person_id
        )
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.scalars(stmt.execution_options(populate_existing=True))).first()

    async def add_consent(self, values: dict[str, Any]) -> None:
        await self.session.execute(insert(Consent).values(**values))

    async def withdraw_consent(self, consent_id: uuid.UUID, values: dict[str, Any]) -> None:
        await self.session.execute(
            update(Consent).where(col(Consent.id) == consent_id).values(**values)
        )
