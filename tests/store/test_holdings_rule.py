"""How an organisation holds a competence on a commune, asked of its SQL home
(``guichet_holdings`` and ``convention_holdings``, migrations 0002, 0031 and 0035) for random
conventions beside the demo's, against the test oracle (``tests/oracle.py``): by a convention
in force that may delegate it there, else by law on the organisation's territory, else not.
The request scope's ``Scope.holding``, which writes are checked against, must answer the same."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.auth.principals import PrincipalStore
from api.auth.scope import ConventionGrantRef, PrincipalKind, Scope
from api.db.engine import owner_connection
from api.domain.catalogue import LEGAL_AID_PRESTATIONS, SEEDED_COMPETENCES, catalogue_by_code
from api.domain.conventions.rules import ConventionStatus
from tests.oracle import ALL_BUT_NIR, ConventionGrant, delegated_holdings, law_holdings
from tests.world import World

CATALOGUE = catalogue_by_code(SEEDED_COMPETENCES)
CODES = sorted(CATALOGUE)
# Amiens, Longueau, Corbie, Abbeville (all in the Somme), and Lille (outside it)
COMMUNES = ("80021", "80489", "80212", "80001", "59350")
ORGANISATIONS = (
    "departement",
    "cias",
    "ccas_amiens",
    "ccas_longueau",
    "commune_corbie",
    "caf",
    "secours_populaire",
    "mission_locale",
)
CATEGORIES = [*sorted(c.value for c in ALL_BUT_NIR), "nir"]
LAW = {c.value for c in ALL_BUT_NIR}


@dataclass(frozen=True)
class Drawn:
    grantor: str
    grantee: str
    competences: frozenset[str]
    communes: frozenset[str]
    status: ConventionStatus
    starts_in: int  # days from today
    lasts: int | None
    categories: frozenset[str]


conventions = st.lists(
    st.builds(
        Drawn,
        grantor=st.sampled_from(ORGANISATIONS),
        grantee=st.sampled_from(ORGANISATIONS),
        competences=st.frozensets(st.sampled_from(CODES), min_size=1, max_size=3),
        communes=st.frozensets(st.sampled_from(COMMUNES), min_size=1),
        status=st.sampled_from(ConventionStatus),
        starts_in=st.integers(-60, 30),
        lasts=st.none() | st.integers(0, 120),
        categories=st.frozensets(st.sampled_from(CATEGORIES), min_size=1),
    ),
    max_size=5,
)


async def _insert(conn: AsyncConnection, world: World, drawn: Drawn, today: date) -> None:
    starts = today + timedelta(days=drawn.starts_in)
    await conn.execute(
        text(
            "INSERT INTO convention (id, reference, grantor_id, grantee_id, competences, "
            "communes, all_communes, data_categories, valid_from, valid_until, status, "
            "version, created_at, updated_at) VALUES (:id, :ref, :grantor, :grantee, "
            ":competences, :communes, false, :categories, :starts, :ends, :status, 1, now(), "
            "now())"
        ),
        {
            "id": uuid.uuid4(),
            "ref": f"TEST-{uuid.uuid4().hex[:8]}",
            "grantor": world.organisations[drawn.grantor],
            "grantee": world.organisations[drawn.grantee],
            "competences": sorted(drawn.competences),
            "communes": sorted(drawn.communes),
            "categories": sorted(drawn.categories),
            "starts": starts,
            "ends": None if drawn.lasts is None else starts + timedelta(days=drawn.lasts),
            "status": drawn.status.value,
        },
    )


@dataclass(frozen=True)
class Facts:
    """What the oracle is given: every convention of the database (the demo's included), the
    organisations' kinds, their territories among ``COMMUNES``, each convention's categories."""

    grants: list[ConventionGrant]
    kinds: dict[uuid.UUID, str]
    territories: dict[uuid.UUID, set[str]]
    categories: dict[uuid.UUID, set[str]]


async def _facts(conn: AsyncConnection) -> Facts:
    kinds = dict((await conn.execute(text("SELECT id, kind FROM organisation"))).all())
    territories: dict[uuid.UUID, set[str]] = {}
    for org, commune in await conn.execute(
        text(
            "SELECT organisation_id, commune_code FROM organisation_commune "
            "WHERE commune_code = ANY (:communes)"
        ),
        {"communes": list(COMMUNES)},
    ):
        territories.setdefault(org, set()).add(commune)
    rows = (await conn.execute(text("SELECT * FROM convention"))).mappings().all()
    grants = [
        ConventionGrant(
            id=r["id"],
            grantor_id=r["grantor_id"],
            grantor_kind=kinds[r["grantor_id"]],
            grantor_territory=frozenset(territories.get(r["grantor_id"], ())),
            grantee_id=r["grantee_id"],
            grantee_kind=kinds[r["grantee_id"]],
            competences=frozenset(r["competences"]),
            communes=frozenset(r["communes"]),
            status=ConventionStatus(r["status"]),
            valid_from=r["valid_from"],
            valid_until=r["valid_until"],
        )
        for r in rows
    ]
    categories = {r["id"]: set(r["data_categories"]) for r in rows}
    return Facts(grants, kinds, territories, categories)


def _expected(
    org: uuid.UUID, facts: Facts, today: date
) -> dict[tuple[str, str], tuple[str, uuid.UUID | None, set[str]]]:
    """The oracle's answer per (competence, commune): a delegation in force wins (the first
    convention by id when several delegate the pair), else the law."""
    answer: dict[tuple[str, str], tuple[str, uuid.UUID | None, set[str]]] = {}
    delegating: dict[tuple[str, str], list[uuid.UUID]] = {}
    granted = [g for g in facts.grants if g.grantee_id == org]
    for h in delegated_holdings(granted, CATALOGUE, today):
        assert h.convention_id is not None
        delegating.setdefault((h.competence, h.commune), []).append(h.convention_id)
    for pair, ids in delegating.items():
        answer[pair] = ("convention", min(ids), facts.categories[min(ids)])
    territory = facts.territories.get(org, set())
    for h in law_holdings(facts.kinds[org], territory, CATALOGUE):
        nir = {"nir"} if h.competence in LEGAL_AID_PRESTATIONS else set()
        answer.setdefault((h.competence, h.commune), ("law", None, LAW | nir))
    return answer


# three conventions in force delegating the same pair to the same grantee: every answer names
# the same one
_TWICE = [
    Drawn(
        "departement",
        "ccas_amiens",
        frozenset({"rsa"}),
        frozenset({"80021"}),
        ConventionStatus.ACTIVE,
        -10,
        None,
        frozenset({"identity", categories}),
    )
    for categories in ("contact", "dossiers", "notes")
]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(drawn=conventions)
@example(drawn=_TWICE)
async def test_holdings_are_what_the_oracle_says(
    drawn: list[Drawn], database_url: URL, world: World
) -> None:
    async with owner_connection(database_url) as conn:
        example = await conn.begin_nested()
        today = await conn.scalar(text("SELECT (now() AT TIME ZONE 'Europe/Paris')::date"))
        for convention in drawn:
            await _insert(conn, world, convention, today)
        facts = await _facts(conn)
        pairs = [(code, commune) for code in CODES for commune in COMMUNES]
        for key in ORGANISATIONS:
            org = world.organisations[key]
            await conn.execute(
                text("SELECT set_config('guichet.organisation_id', :o, true)"), {"o": str(org)}
            )
            held = {
                (r.competence, r.commune): (r.source, r.convention_id, set(r.categories))
                for r in await conn.execute(
                    text("SELECT * FROM guichet_holdings(:o, :competences, :communes)"),
                    {
                        "o": org,
                        "competences": [p[0] for p in pairs],
                        "communes": [p[1] for p in pairs],
                    },
                )
            }
            assert held == _expected(org, facts, today), key
            # the request scope's answer (what writes are checked against) is the same
            scope = await _scope_of(conn, org, facts.kinds[org], today)
            assert {
                pair: (h.source, h.convention_id)
                for pair in pairs
                if (h := scope.holding(*pair)) is not None and pair[1] in COMMUNES
            } == {pair: answer[:2] for pair, answer in held.items()}, key
            # one pair at a time, as a policy asks, gives the same answers
            for competence, commune in pairs[:: len(COMMUNES) + 1]:
                alone = (
                    await conn.execute(
                        text("SELECT source, convention_id FROM guichet_holding(:o, :c, :m)"),
                        {"o": org, "c": competence, "m": commune},
                    )
                ).all()
                batched = held.get((competence, commune))
                assert [tuple(r) for r in alone] == ([batched[:2]] if batched else []), key
        # the delegations in force, with any argument left out (the public "who is
        # competent" answer leaves out all three)
        delegations = {
            (g.grantee_id, h.competence, h.commune, h.convention_id)
            for g in facts.grants
            for h in delegated_holdings([g], CATALOGUE, today)
        }
        for grantee, competence, commune in _asked(delegations, world):
            found = {
                tuple(r)
                for r in await conn.execute(
                    text(
                        "SELECT grantee_id, competence, commune, convention_id "
                        "FROM convention_holdings(:g, :c, :m, :today) "
                        "WHERE commune = ANY (:communes)"
                    ),
                    {
                        "g": grantee,
                        "c": competence,
                        "m": commune,
                        "today": today,
                        "communes": list(COMMUNES),
                    },
                )
            }
            assert found == {
                d
                for d in delegations
                if grantee in (None, d[0])
                and competence in (None, d[1])
                and commune in (None, d[2])
            }, (grantee, competence, commune)
        await example.rollback()


async def _scope_of(conn: AsyncConnection, org: uuid.UUID, kind: str, today: date) -> Scope:
    """A scope of ``org`` holding what :class:`PrincipalStore` reads for it, as a request's."""
    session = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
    holdings = await PrincipalStore(session).holdings(org, today)
    await session.close()
    return Scope(
        principal_kind=PrincipalKind.USER,
        principal_id=uuid.uuid4(),
        organisation_id=org,
        organisation_kind=kind,
        roles=frozenset(),
        client_scopes=frozenset(),
        actions=frozenset(),
        categories=frozenset(),
        territory=frozenset(holdings.territory),
        law_competences=frozenset(holdings.law_competences),
        grants=tuple(ConventionGrantRef(*grant) for grant in holdings.grants),
    )


def _asked(
    delegations: set[tuple[uuid.UUID, str, str, uuid.UUID]], world: World
) -> list[tuple[uuid.UUID | None, str | None, str | None]]:
    """Everything, then each delegation's grantee, competence and commune given or left out,
    and a pair no convention names."""
    asked: list[tuple[uuid.UUID | None, str | None, str | None]] = [(None, None, None)]
    for grantee, competence, commune, _id in sorted(delegations, key=str)[:3]:
        asked += [
            (grantee, None, None),
            (None, competence, None),
            (None, None, commune),
            (grantee, competence, None),
            (grantee, None, commune),
            (grantee, competence, commune),
        ]
    asked.append((world.organisations["caf"], "accueil", "59350"))
    return asked
