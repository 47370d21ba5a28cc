"""Last year's figures survive the retention purge: the statistical rows are written when
the records are, frozen once the person is anonymised, and lose their link to the person."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import owner_connection
from api.domain import clock
from api.jobs.purge import purge
from tests.api.people_support import Headers
from tests.store.test_retention import _organisation

# a month nothing else in the test database is dated in
FIRST_CONTACT = datetime(2019, 3, 12, 10, 0, tzinfo=clock.now().tzinfo)
PERIOD = {"from": "2019-03-01", "to": "2019-03-31"}


async def _person(
    conn: AsyncConnection, organisation: uuid.UUID, birth: str, child: bool
) -> uuid.UUID:
    person = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO beneficiary (id, birth_name, first_names, birth_date, sex, "
            "commune_code, match_keys, folded_names, last_contact_at, "
            "created_by_organisation_id, version, created_at, updated_at) VALUES "
            "(:id, 'Retenu', 'Stat', :b, 'F', '80021', '{retenu}', 'retenu stat', :c, :o, 1, "
            ":c, :c)"
        ),
        {
            "id": person,
            "b": datetime.fromisoformat(birth).date(),
            "c": FIRST_CONTACT,
            "o": organisation,
        },
    )
    await conn.execute(
        text(
            "INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, competence, "
            "team_role, source, started_at) VALUES (:id, :p, :o, 'aide_alimentaire', "
            "'referent', 'creation', :s)"
        ),
        {"id": uuid.uuid4(), "p": person, "o": organisation, "s": FIRST_CONTACT},
    )
    if child:
        await conn.execute(
            text(
                "INSERT INTO household_member (id, beneficiary_id, first_name, birth_date, "
                "relation) VALUES (:id, :p, 'Léa', '2012-06-01', 'enfant')"
            ),
            {"id": uuid.uuid4(), "p": person},
        )
    return person


async def test_last_years_figures_are_the_same_after_the_purge(
    database_url: URL, client: httpx.AsyncClient, as_persona: Headers
) -> None:
    async with owner_connection(database_url) as conn:
        organisation = await _organisation(conn, retention=6)
        # born in December 1954: 64 at first contact, but 65 once the purge has rounded the
        # birth date to 1 January — the age band must not move
        people = [await _person(conn, organisation, "1954-12-20", child=True) for _ in range(8)]
        people += [await _person(conn, organisation, "1990-02-02", child=False) for _ in range(6)]
        await conn.commit()

    async def figures() -> dict[str, object]:
        r = await client.get(
            "/v1/statistics/people",
            params={"territory": "commune:80021", "by": "age_band,household_type", **PERIOD},
            headers=as_persona("pilotage"),
        )
        assert r.status_code == 200, r.text
        body = r.json()
        body.pop("as_of")
        return body

    before = await figures()
    cells = {(c["age_band"], c["household_type"]): c["count"] for c in before["cells"]}
    assert cells[("55-64", "single_parent")] == 8
    assert cells[("25-39", "single")] == 6
    assert before["total"]["count"] == 14

    report = await purge(database_url, now=clock.now())
    assert report.anonymised >= len(people)

    async with owner_connection(database_url) as conn:
        anonymised = await conn.scalar(
            text(
                "SELECT count(*) FROM beneficiary WHERE id = ANY(:p) AND anonymised_at IS NOT NULL"
            ),
            {"p": people},
        )
        linked = await conn.scalar(
            text("SELECT count(*) FROM stat_fact WHERE source_id = ANY(:p)"), {"p": people}
        )
    assert anonymised == len(people)
    assert linked == 0  # the rows no longer point at the people
    assert await figures() == before
    assert timedelta(0) < clock.now() - FIRST_CONTACT
