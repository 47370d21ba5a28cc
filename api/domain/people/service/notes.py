"""Notes on a person (the ``notes`` category), per competence followed and visibility."""

from __future__ import annotations

import uuid

from api.auth import access
from api.domain import clock
from api.domain.catalogue import DataCategory
from api.domain.people.schemas import NoteCreate, NoteRead
from api.domain.people.service.context import People, require_category, visible_person
from api.problems import FieldError, ValidationFailed


async def note_competences(ctx: People, person_id: uuid.UUID) -> list[str]:
    """Competences whose membership grants the caller the notes of the person now."""
    found = (await access.grants(ctx.store.session, ctx.scope, [person_id]))[person_id]
    return access.competences_granting(found, DataCategory.NOTES)


async def notes(ctx: People, person_id: uuid.UUID) -> list[NoteRead]:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.NOTES)
    competences = await note_competences(ctx, person_id)
    await ctx.audit.record("notes.read", "beneficiary", str(person_id), beneficiary_id=person_id)
    return [
        NoteRead.model_validate(n.fields()) for n in await ctx.store.notes(person_id, competences)
    ]


async def add_note(ctx: People, person_id: uuid.UUID, body: NoteCreate) -> NoteRead:
    _, categories = await visible_person(ctx, person_id)
    require_category(categories, DataCategory.NOTES)
    if body.competence not in await note_competences(ctx, person_id):
        raise ValidationFailed(
            detail="You follow this person for other competences.",
            errors=[FieldError("/competence", "Not a competence you follow this person for.")],
        )
    note_id = uuid.uuid4()
    await ctx.store.add_note(
        {
            "id": note_id,
            "beneficiary_id": person_id,
            "organisation_id": ctx.scope.organisation_id,
            "author_user_id": ctx.scope.user_id,
            "competence": body.competence,
            "visibility": body.visibility,
            "body": body.body,
            "created_at": clock.now(),
        }
    )
    await ctx.audit.record("note.create", "note", str(note_id), beneficiary_id=person_id)
    created = [
        n for n in await ctx.store.notes(person_id, [body.competence]) if n.note.id == note_id
    ]
    return NoteRead.model_validate(created[0].fields())
