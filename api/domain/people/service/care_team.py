"""Care teams: who follows a person, joining as legal holder (break glass), leaving, and
who may read the person's access log."""

from __future__ import annotations

import uuid

from api.auth.permissions import Action
from api.domain import clock
from api.domain.people.repository import locate_person
from api.domain.people.repository.care_team import TeamMember
from api.domain.people.schemas import CareTeamJoin, CareTeamMemberRead
from api.domain.people.service.context import People, categories_of, followed, visible_person
from api.problems import FieldError, Forbidden, NotFound, ValidationFailed


def shown_members(
    ctx: People, team: list[TeamMember], sensitive: frozenset[str]
) -> list[TeamMember]:
    """A sensitive follow-up (ase, violences) shows only to the cleared users of the
    organisation holding it: that someone is followed for it is itself sensitive (§4)."""
    return [
        m
        for m in team
        if m.membership.competence not in sensitive
        or (
            m.membership.organisation_id == ctx.scope.organisation_id
            and ctx.scope.has_sensitive_clearance
        )
    ]


async def care_team(ctx: People, person_id: uuid.UUID) -> list[CareTeamMemberRead]:
    await visible_person(ctx, person_id)
    await ctx.audit.record(
        "care_team.read", "beneficiary", str(person_id), beneficiary_id=person_id
    )
    sensitive = await ctx.orgs.sensitive_competences()
    return [
        CareTeamMemberRead.model_validate(m.fields())
        for m in shown_members(ctx, await ctx.store.team(person_id), sensitive)
    ]


async def break_glass(
    ctx: People, person_id: uuid.UUID, body: CareTeamJoin
) -> list[CareTeamMemberRead]:
    """A legal holder of the competence on the person's commune joins directly, with a
    written justification shown in the person's access log. Anyone else: 404."""
    scope = ctx.scope
    exists, commune = await locate_person(ctx.store.session, person_id)
    holding = scope.holding(body.competence, commune) if exists and commune else None
    if holding is None or holding.source != "law":
        raise NotFound(detail="No such person.")
    scope.require(Action.ANSWER_REFERRALS)
    sensitive = await ctx.orgs.sensitive_competences()
    if body.competence in sensitive and not scope.has_sensitive_clearance:
        raise Forbidden(detail="This competence needs the sensitive clearance.")
    await ctx.store.join(
        {
            "id": uuid.uuid4(),
            "beneficiary_id": person_id,
            "organisation_id": scope.organisation_id,
            "competence": body.competence,
            "team_role": "member",
            "source": "break_glass",
            "justification": body.justification,
            "started_at": clock.now(),
        }
    )
    await ctx.audit.record(
        "care_team.break_glass",
        "beneficiary",
        str(person_id),
        beneficiary_id=person_id,
        purpose=body.justification,
    )
    return await care_team(ctx, person_id)


async def leave(ctx: People, person_id: uuid.UUID, membership_id: uuid.UUID, reason: str) -> None:
    await visible_person(ctx, person_id)
    left = await ctx.store.leave(membership_id, clock.now(), reason)
    if left is None or left != person_id:
        raise NotFound(detail="No such membership of your organisation.")
    await ctx.audit.record(
        "care_team.leave", "beneficiary", str(person_id), beneficiary_id=person_id, purpose=reason
    )


async def require_access_log(ctx: People, person_id: uuid.UUID, purpose: str | None) -> None:
    """The access log is for the care team and for the DPO of an organisation in it, who
    states a purpose (audited); anyone else: 404."""
    row = await followed(ctx, person_id, Action.READ_ACCESS_LOG)
    if (await categories_of(ctx, [row]))[row.id]:
        return
    if not ctx.scope.permits(Action.READ_ACCESS_LOG):
        raise NotFound(detail="No such person.")
    if not purpose:
        raise ValidationFailed(
            detail="State the purpose of this reading.",
            errors=[FieldError("/purpose", "Required for a DPO reading.", "query")],
        )
    await ctx.audit.record(
        "access_log.read", "beneficiary", str(person_id), beneficiary_id=person_id, purpose=purpose
    )
