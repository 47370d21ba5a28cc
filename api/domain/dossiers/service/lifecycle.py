"""Moving a dossier along its lifecycle (rules.lifecycle): submit, review, decide, notify,
close, each by the side it belongs to."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from api.auth.permissions import Action
from api.domain import clock
from api.domain.dossiers.repository import StoredDossier
from api.domain.dossiers.rules import DossierAction, DossierStatus, apply_action, sides_of
from api.domain.dossiers.schemas import DecideBody, DossierActionBody, DossierRead
from api.domain.dossiers.service.context import Dossiers, actor, audience_of, etag
from api.domain.dossiers.service.decision import decided_columns
from api.domain.dossiers.service.reads import read
from api.domain.dossiers.service.visibility import visible
from api.problems import PreconditionFailed


async def act(
    ctx: Dossiers,
    dossier_id: uuid.UUID,
    action: DossierAction,
    body: DossierActionBody | DecideBody,
    if_match: str | None,
) -> tuple[DossierRead, str]:
    """One transition, by the side it belongs to (rules.py); deciding takes the ``decideur``
    role and a holding by law on the person's commune now."""
    scope = ctx.scope
    row = await visible(ctx, dossier_id, for_update=True)
    if if_match is not None and if_match != etag(row.version):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    sides = sides_of(
        scope.organisation_id, row.instructing_organisation_id, row.deciding_organisation_id
    )
    status = DossierStatus(row.status)
    target = apply_action(status, action, sides)
    now = clock.now()
    values: dict[str, Any] = {"status": target, "status_changed_at": now, "updated_at": now}
    if action is DossierAction.DECIDE:
        assert isinstance(body, DecideBody)
        values.update(decided_columns(scope, row, body, now))
        comment = body.reason
    else:
        scope.require(Action.INSTRUCT_DOSSIERS)
        assert isinstance(body, DossierActionBody)
        comment = body.comment
    if not await ctx.store.update(row.id, row.version, values):
        raise PreconditionFailed(detail="The dossier changed since you read it.")
    if action is DossierAction.SUBMIT:
        await join_decider(ctx, [row])
    await _record_transition(ctx, row, action, target, comment, now)
    return await read(ctx, row.id, audit=False)


async def _record_transition(
    ctx: Dossiers,
    row: StoredDossier,
    action: DossierAction,
    target: DossierStatus,
    comment: str | None,
    now: datetime,
) -> None:
    await ctx.store.insert_events(
        [
            {
                "dossier_id": row.id,
                "beneficiary_id": row.beneficiary_id,
                "at": now,
                "action": str(action),
                "from_status": DossierStatus(row.status),
                "to_status": target,
                "comment": comment,
                **actor(ctx.scope, "api"),
            }
        ]
    )
    await ctx.audit.record(
        f"dossier.{action}", "dossier", str(row.id), beneficiary_id=row.beneficiary_id
    )
    await ctx.changes.record(
        type="dossier",
        resource_id=row.id,
        action="status_changed",
        event="dossier.status_changed",
        audience=audience_of(row.instructing_organisation_id, row.deciding_organisation_id),
        status=target,
    )


class Submitted(Protocol):
    """A dossier handed to its deciding organisation."""

    @property
    def beneficiary_id(self) -> uuid.UUID: ...
    @property
    def deciding_organisation_id(self) -> uuid.UUID: ...
    @property
    def prestation(self) -> str: ...


async def join_decider(ctx: Dossiers, dossiers: Sequence[Submitted]) -> None:
    """A submitted dossier brings its deciding organisation into the person's care team for
    the prestation (row-level security lets the instructing organisation write exactly that
    membership)."""
    wanted = {
        (d.beneficiary_id, d.deciding_organisation_id, d.prestation)
        for d in dossiers
        if d.deciding_organisation_id != ctx.scope.organisation_id
    }
    if not wanted:
        return
    present = await ctx.store.memberships([w[0] for w in wanted], [w[1] for w in wanted])
    now = clock.now()
    await ctx.store.join_teams(
        [
            {
                "id": uuid.uuid4(),
                "beneficiary_id": person,
                "organisation_id": organisation,
                "competence": prestation,
                "team_role": "member",
                "source": "dossier",
                "started_at": now,
            }
            for person, organisation, prestation in sorted(wanted - present)
        ]
    )
