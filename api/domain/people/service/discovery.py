"""Discovery: whether a person is known, answered by previews only — at most ten, of people
living where the caller holds ``accueil``. Typing an identifier never grants access."""

from __future__ import annotations

from datetime import date
from typing import Any

from api.auth.access_queries import AccessStore
from api.auth.permissions import Action
from api.domain.identity import check_nir, name_match_keys
from api.domain.people.schemas import CommuneRef, Follower, Preview, PreviewList
from api.domain.people.service.context import People
from api.problems import FieldError, ValidationFailed

MAX_PREVIEWS = 10  # person_previews answers ten at most (migration 0016)


async def previews(ctx: People, rows: list[Any]) -> list[Preview]:
    """Previews of ``person_previews`` rows: names, birth year, commune, who follows them."""
    ids = [r.id for r in rows]
    followers = await ctx.store.followers(ids) if ids else []
    communes = await ctx.store.commune_names([r.commune_code for r in rows if r.commune_code])
    found = []
    for r in rows:
        mine = [f for f in followers if f.beneficiary_id == r.id]
        found.append(
            Preview(
                id=r.id,
                last_name=r.usage_name or r.birth_name,
                first_names=r.first_names,
                birth_year=r.birth_date.year,
                commune=CommuneRef(code=r.commune_code, name=communes[r.commune_code])
                if r.commune_code
                else None,
                followed_by=[Follower.model_validate(f, from_attributes=True) for f in mine],
                attached=any(f.organisation_id == ctx.scope.organisation_id for f in mine),
            )
        )
    return found


async def discoverable(
    ctx: People, nir_hash: str | None, birth_date: date | None, keys: frozenset[str]
) -> list[Any]:
    """The people the caller may discover (domain.md §6), the rule applied by the database:
    living where it holds ``accueil``, with this NIR or born that day with the same names."""
    return await AccessStore(ctx.store.session).previews(nir_hash, birth_date, keys)


async def preview_search(
    ctx: People,
    *,
    birth_date: date | None,
    last_name: str | None,
    first_name: str | None,
    nir: str | None,
) -> PreviewList:
    """Exact birth date and names, or a NIR: at most ten previews of people living where the
    caller holds ``accueil``. Typing an identifier never grants access."""
    ctx.scope.require(Action.PREVIEW_SEARCH)
    nir_hash = ctx.nir.lookup_hash(check_nir(nir)) if nir else None
    if nir_hash is None and not (birth_date and last_name and first_name):
        raise ValidationFailed(
            detail="Search with birth_date, last_name and first_name, or with nir.",
            errors=[FieldError("/birth_date", "Required with the names.", "query")],
        )
    if nir_hash:
        rows = [r for r in await discoverable(ctx, nir_hash, None, frozenset()) if r.nir_match]
    else:
        keys = name_match_keys(last_name or "", None, first_name or "")
        rows = await discoverable(ctx, None, birth_date, keys)
    await ctx.audit.record("beneficiary.preview_search", "beneficiary", None)
    return PreviewList(items=await previews(ctx, rows[:MAX_PREVIEWS]))
