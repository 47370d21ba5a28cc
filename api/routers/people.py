"""Beneficiaries: creation, discovery by preview, records, care teams, access log."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response, status

from api.domain.audit import service as audit_service
from api.domain.audit.schemas import AccessLogItem
from api.domain.people import consents, export, merge, service, timeline
from api.domain.people.deps import TIMELINE_SOURCES, PeopleContext
from api.domain.people.problems import BeneficiaryMerged
from api.domain.people.schemas import (
    BeneficiaryCreate,
    BeneficiaryRead,
    BeneficiaryUpdate,
    Budget,
    BudgetRead,
    CareTeamJoin,
    CareTeamLeave,
    CareTeamMemberRead,
    ConsentCreate,
    ConsentRead,
    ConsentWithdrawal,
    ConsentWithdrawn,
    ExportRead,
    Household,
    HouseholdRead,
    MergeRead,
    MergeRequest,
    NoteCreate,
    NoteRead,
    PreviewList,
    TimelineItem,
)
from api.http.deps import TransactionRoute
from api.http.idempotency import Idempotent
from api.http.schemas import Cursor, Limit, Page
from api.problems import PreconditionRequired


class _PersonRoute(TransactionRoute):
    """A merged record's id answers 301 with ``Location`` naming the same resource under
    the surviving id (the domain names the survivor; the path is HTTP's business)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except BeneficiaryMerged as moved:
                if moved.duplicate_id and moved.survivor_id:
                    path = request.url.path.replace(
                        str(moved.duplicate_id), str(moved.survivor_id), 1
                    )
                    query = f"?{request.url.query}" if request.url.query else ""
                    moved.headers["Location"] = path + query
                raise

        return route


router = APIRouter(prefix="/v1/beneficiaries", tags=["beneficiaries"], route_class=_PersonRoute)


Ctx = PeopleContext
CommuneQuery = Annotated[str | None, Query(pattern=r"^(\d{5}|2[AB]\d{3})$")]


@router.post(
    "",
    response_model=BeneficiaryRead,
    response_model_exclude_unset=True,
    status_code=201,
    responses={409: {"description": "possible-duplicate, with candidates"}},
)
async def create_beneficiary(
    ctx: Ctx, body: BeneficiaryCreate, response: Response, idem: Idempotent
) -> BeneficiaryRead:
    """Record a person; the organisation joins their care team for the competence."""

    async def create() -> BeneficiaryRead:
        created, response.headers["ETag"] = await service.create(ctx, body)
        return created

    return await idem.once(create, location=lambda created: f"/v1/beneficiaries/{created.id}")


@router.get("/search", response_model=PreviewList)
async def search_beneficiaries(
    ctx: Ctx,
    birth_date: date | None = None,
    last_name: Annotated[str | None, Query(max_length=200)] = None,
    first_name: Annotated[str | None, Query(max_length=200)] = None,
    nir: Annotated[str | None, Query(max_length=21)] = None,
) -> PreviewList:
    """Find whether a person is known (exact birth date and names, or NIR): previews only."""
    return await service.preview_search(
        ctx, birth_date=birth_date, last_name=last_name, first_name=first_name, nir=nir
    )


@router.get("", response_model=Page[BeneficiaryRead], response_model_exclude_unset=True)
async def list_beneficiaries(
    ctx: Ctx,
    competence: Annotated[str | None, Query(max_length=40)] = None,
    commune: CommuneQuery = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[BeneficiaryRead]:
    """People the caller's organisation follows."""
    return await service.attached(
        ctx, competence=competence, commune=commune, cursor=cursor, limit=limit
    )


@router.get(
    "/{beneficiary_id:uuid}", response_model=BeneficiaryRead, response_model_exclude_unset=True
)
async def get_beneficiary(
    ctx: Ctx, beneficiary_id: uuid.UUID, response: Response
) -> BeneficiaryRead:
    """Read a person: only the categories the caller's access covers."""
    person, tag = await service.read(ctx, beneficiary_id)
    response.headers["ETag"] = tag
    return person


@router.patch(
    "/{beneficiary_id:uuid}", response_model=BeneficiaryRead, response_model_exclude_unset=True
)
async def update_beneficiary(
    ctx: Ctx,
    beneficiary_id: uuid.UUID,
    body: BeneficiaryUpdate,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> BeneficiaryRead:
    """Correct a person's record (If-Match with the ETag read)."""
    if if_match is None:
        raise PreconditionRequired(detail="Send If-Match with the ETag you read.")
    person, tag = await service.update(ctx, beneficiary_id, body, if_match)
    response.headers["ETag"] = tag
    return person


@router.get("/{beneficiary_id:uuid}/care-team", response_model=list[CareTeamMemberRead])
async def get_care_team(ctx: Ctx, beneficiary_id: uuid.UUID) -> list[CareTeamMemberRead]:
    """The partners following the person, past and present."""
    return await service.care_team(ctx, beneficiary_id)


@router.post(
    "/{beneficiary_id:uuid}/care-team", response_model=list[CareTeamMemberRead], status_code=201
)
async def join_care_team(
    ctx: Ctx, beneficiary_id: uuid.UUID, body: CareTeamJoin, idem: Idempotent
) -> list[CareTeamMemberRead]:
    """Join the care team directly as legal holder of the competence (justified, audited)."""
    return await idem.once(lambda: service.break_glass(ctx, beneficiary_id, body))


@router.delete(
    "/{beneficiary_id:uuid}/care-team/{membership_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def leave_care_team(
    ctx: Ctx, beneficiary_id: uuid.UUID, membership_id: uuid.UUID, body: CareTeamLeave
) -> None:
    """End the organisation's membership: its access ends with it."""
    await service.leave(ctx, beneficiary_id, membership_id, body.reason)


@router.get("/{beneficiary_id:uuid}/access-log", response_model=Page[AccessLogItem])
async def get_access_log(
    ctx: Ctx,
    beneficiary_id: uuid.UUID,
    purpose: Annotated[
        str | None, Query(min_length=3, max_length=500, description="Required of a DPO.")
    ] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[AccessLogItem]:
    """Who accessed the person's record, when, and why (care team, dpo)."""
    await service.require_access_log(ctx, beneficiary_id, purpose)
    return await audit_service.read_access_log(
        ctx.scope, ctx.audit, beneficiary_id, cursor=cursor, limit=limit
    )


@router.get("/{beneficiary_id:uuid}/household", response_model=HouseholdRead)
async def get_household(ctx: Ctx, beneficiary_id: uuid.UUID) -> HouseholdRead:
    """The people living with the person."""
    return await service.household(ctx, beneficiary_id)


@router.put("/{beneficiary_id:uuid}/household", response_model=HouseholdRead)
async def put_household(ctx: Ctx, beneficiary_id: uuid.UUID, body: Household) -> HouseholdRead:
    """Replace the household composition."""
    return await service.replace_household(ctx, beneficiary_id, body)


@router.get("/{beneficiary_id:uuid}/budget", response_model=BudgetRead)
async def get_budget(ctx: Ctx, beneficiary_id: uuid.UUID) -> BudgetRead:
    """Monthly resources and charges, with the reste à vivre per person per day."""
    return await service.budget(ctx, beneficiary_id)


@router.put("/{beneficiary_id:uuid}/budget", response_model=BudgetRead)
async def put_budget(ctx: Ctx, beneficiary_id: uuid.UUID, body: Budget) -> BudgetRead:
    """Replace the monthly resources and charges."""
    return await service.replace_budget(ctx, beneficiary_id, body)


@router.get("/{beneficiary_id:uuid}/notes", response_model=list[NoteRead])
async def get_notes(ctx: Ctx, beneficiary_id: uuid.UUID) -> list[NoteRead]:
    """Notes the caller may read: its own, its organisation's, and the team's."""
    return await service.notes(ctx, beneficiary_id)


@router.post(
    "/{beneficiary_id:uuid}/notes", response_model=NoteRead, status_code=status.HTTP_201_CREATED
)
async def post_note(
    ctx: Ctx, beneficiary_id: uuid.UUID, body: NoteCreate, idem: Idempotent
) -> NoteRead:
    """Write a note for a competence, private, for the organisation or for the team."""
    return await idem.once(lambda: service.add_note(ctx, beneficiary_id, body))


@router.get("/{beneficiary_id:uuid}/consents", response_model=list[ConsentRead])
async def get_consents(ctx: Ctx, beneficiary_id: uuid.UUID) -> list[ConsentRead]:
    """Information notices and consents recorded for the person."""
    return await consents.listing(ctx, beneficiary_id)


@router.post(
    "/{beneficiary_id:uuid}/consents",
    response_model=ConsentRead,
    status_code=status.HTTP_201_CREATED,
)
async def post_consent(
    ctx: Ctx, beneficiary_id: uuid.UUID, body: ConsentCreate, idem: Idempotent
) -> ConsentRead:
    """Record an information notice given to the person, or their consent to a sharing."""
    return await idem.once(lambda: consents.record(ctx, beneficiary_id, body))


@router.post(
    "/{beneficiary_id:uuid}/consents/{consent_id}/withdraw", response_model=ConsentWithdrawn
)
async def withdraw_consent(
    ctx: Ctx, beneficiary_id: uuid.UUID, consent_id: uuid.UUID, body: ConsentWithdrawal
) -> ConsentWithdrawn:
    """Record the withdrawal of a consent: the open referrals it covered are cancelled."""
    return await consents.withdraw(ctx, beneficiary_id, consent_id, body.reason)


@router.get("/{beneficiary_id:uuid}/timeline", response_model=Page[TimelineItem])
async def get_timeline(
    ctx: Ctx, beneficiary_id: uuid.UUID, cursor: Cursor = None, limit: Limit = 50
) -> Page[TimelineItem]:
    """What happened in the person's file that the caller may see, newest first."""
    return await timeline.timeline(
        ctx, beneficiary_id, sources=TIMELINE_SOURCES, cursor=cursor, limit=limit
    )


@router.post("/{beneficiary_id:uuid}/merge", response_model=MergeRead)
async def merge_beneficiaries(
    ctx: Ctx, beneficiary_id: uuid.UUID, body: MergeRequest, response: Response
) -> MergeRead:
    """Merge a duplicate record into this one; the duplicate's id keeps answering (301)."""
    merged, response.headers["ETag"] = await merge.merge(ctx, beneficiary_id, body)
    return merged


@router.get("/{beneficiary_id:uuid}/export", response_model=ExportRead)
async def export_beneficiary(
    ctx: Ctx,
    beneficiary_id: uuid.UUID,
    purpose: Annotated[str, Query(min_length=3, max_length=500)],
) -> ExportRead:
    """Everything held about the person, across partners, for their right of access (dpo)."""
    return await export.export(ctx, beneficiary_id, purpose)
