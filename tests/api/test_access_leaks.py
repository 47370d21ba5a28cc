"""The reproductions of issue #10 ("Close the leaks"), over HTTP with several organisations of
the demo territory: each one failed on the code before the access rule had one source."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.api.people_support import demo_headers, nir_with_key
from tests.api.test_dossiers import act as dossier_act
from tests.api.test_dossiers import submitted_dossier
from tests.api.test_referrals import OVERRIDE
from tests.world import World

Headers = Callable[[str], dict[str, str]]
PURPOSE = "demande de droit d'accès"


def _unique(tag: uuid.UUID) -> dict[str, Any]:
    """Names, birth date and NIR of nobody else in the run."""
    birth = date(1990, 1, 1) + timedelta(days=tag.int % 9000)
    serial = f"{tag.int % 1000:03d}"
    return {
        "birth_name": f"Fuite{tag.hex[:8]}",
        "first_names": f"Lucas{tag.hex[8:14]}",
        "birth_date": birth.isoformat(),
        "sex": "M",
        "nir": nir_with_key(f"1{birth:%y%m}80021{serial}"),
    }


async def _person(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> tuple[str, dict[str, Any]]:
    body = {"competence": "aide_facultative", "commune": "80021", **_unique(uuid.uuid4())}
    body.update(overrides)
    r = await client.post("/v1/beneficiaries", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), body


async def _ase_child(client: httpx.AsyncClient, as_persona: Headers) -> tuple[str, dict[str, Any]]:
    """A child of Amiens followed for ase by the département's cleared agent, with a
    situation, a household, a budget and three notes (one private)."""
    cleared = as_persona("departement_sensitive")
    pid, body = await _person(
        client, cleared, competence="ase", situation={"housing": "famille d'accueil"}
    )
    ok = await client.put(
        f"/v1/beneficiaries/{pid}/household",
        json={"members": [{"relation": "autre", "first_name": "Mère", "birth_date": "1980-02-02"}]},
        headers=cleared,
    )
    assert ok.status_code == 200, ok.text
    ok = await client.put(
        f"/v1/beneficiaries/{pid}/budget",
        json={"resources": [{"type": "af", "monthly_amount": "140"}], "charges": []},
        headers=cleared,
    )
    assert ok.status_code == 200, ok.text
    for visibility in ("private", "organisation", "team"):
        note = await client.post(
            f"/v1/beneficiaries/{pid}/notes",
            json={"competence": "ase", "visibility": visibility, "body": f"ase {visibility}"},
            headers=cleared,
        )
        assert note.status_code == 201, note.text
    return pid, body


async def _break_glass(client: httpx.AsyncClient, as_persona: Headers, pid: str) -> None:
    joined = await client.post(
        f"/v1/beneficiaries/{pid}/care-team",
        json={"competence": "aide_facultative", "justification": "secours d'urgence"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert joined.status_code == 201, joined.text


async def _give_roles(
    connection: AsyncConnection, world: World, persona: str, roles: list[str]
) -> None:
    """Roles for a demo member, inside the test's transaction (rolled back after it)."""
    p = world.personas[persona]
    await connection.execute(
        text(
            "SELECT set_config('guichet.context', 'request', true), "
            "set_config('guichet.organisation_id', :o, true), "
            # as the organisation, not as the member: nobody changes their own roles
            "set_config('guichet.principal_id', '', true)"
        ),
        {"o": str(p.organisation_id)},
    )
    await connection.execute(
        text("UPDATE membership SET roles = :r WHERE user_id = :u AND organisation_id = :o"),
        {"r": roles, "u": p.principal_id, "o": p.organisation_id},
    )


# 1. the export is the union of what the caller may see -----------------------------------


async def test_1_an_identity_only_referral_exports_identity_only(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid, _ = await _person(client, ccas, situation={"housing": "expulsion en cours"})
    await client.put(
        f"/v1/beneficiaries/{pid}/budget",
        json={"resources": [{"type": "rsa", "monthly_amount": "600"}], "charges": []},
        headers=ccas,
    )
    note = await client.post(
        f"/v1/beneficiaries/{pid}/notes",
        json={"competence": "aide_facultative", "visibility": "private", "body": "privée"},
        headers=ccas,
    )
    assert note.status_code == 201
    sent = await client.post(
        "/v1/referrals",
        json={
            "beneficiary_id": pid,
            "competence": "aide_alimentaire",
            "recipient_organisation_id": str(world.organisations["secours_populaire"]),
            "need": {"code": "colis_alimentaire", "description": "Colis."},
            "shared_categories": ["identity"],
            "consent_override": OVERRIDE,
        },
        headers=ccas,
    )
    assert sent.status_code == 201, sent.text
    await _give_roles(connection, world, "association_agent", ["agent", "dpo"])
    r = await client.get(
        f"/v1/beneficiaries/{pid}/export",
        params={"purpose": PURPOSE},
        headers=as_persona("association_agent"),
    )
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["record"]["categories"] == ["identity"]
    for hidden in ("nir", "situation", "phone", "address"):
        assert export["record"].get(hidden) is None, hidden
    assert export["notes"] == [] and export["budget"] == [] and export["household"] == []
    assert "privée" not in r.text and "expulsion" not in r.text


async def test_1_a_break_glass_export_shows_nothing_of_the_sensitive_follow_up(
    client: httpx.AsyncClient, app: FastAPI, world: World, database_url: URL, as_persona: Headers
) -> None:
    pid, child = await _ase_child(client, as_persona)
    await _break_glass(client, as_persona, pid)
    dpo = await demo_headers(app, world, database_url, "ccas_dpo")
    r = await client.get(
        f"/v1/beneficiaries/{pid}/export", params={"purpose": PURPOSE}, headers=dpo
    )
    assert r.status_code == 200, r.text
    export = r.json()
    assert {m["competence"] for m in export["care_team"]} == {"aide_facultative"}
    assert export["notes"] == [] and export["household"] == [] and export["budget"] == []
    assert export["record"].get("nir") is None and export["record"].get("situation") is None
    assert child["nir"] not in r.text and "ase private" not in r.text


# 2. duplicate candidates obey the discovery rule -----------------------------------------


async def test_2_the_duplicate_check_names_no_one_outside_the_search_rule(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    pid, known = await _person(client, as_persona("ccas_rsa_agent"))
    corbie = as_persona("ccas_agent")  # the CCAS de Corbie: Amiens is not its territory
    found = await client.get(
        "/v1/beneficiaries/search", params={"nir": known["nir"]}, headers=corbie
    )
    assert found.status_code == 200 and found.json()["items"] == []
    for attempt in (
        {"nir": known["nir"]},
        {"nir": None, "first_names": known["first_names"] + "e"},  # misspelt (trigram)
        {"nir": None},  # exact names, but on the other side of the boundary
    ):
        body = {**known, "commune": "80212", **attempt}
        r = await client.post("/v1/beneficiaries", json=body, headers=corbie)
        assert pid not in r.text, r.text
        assert r.status_code in (201, 409), r.text
    # the CCAS d'Amiens holds accueil there: it is told, with a minimal preview
    again = await client.post(
        "/v1/beneficiaries", json={**known, "commune": "80021"}, headers=as_persona("ccas_accueil")
    )
    assert again.status_code == 409, again.text
    assert [c["id"] for c in again.json()["candidates"]] == [pid]
    assert set(again.json()["candidates"][0]) <= {
        "id", "last_name", "first_names", "birth_year", "commune", "followed_by", "attached"
    }  # fmt: skip


# 3. break-glass for one competence opens no other ----------------------------------------


async def test_3_break_glass_for_aide_facultative_opens_nothing_of_ase(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid, _ = await _ase_child(client, as_persona)
    await _break_glass(client, as_persona, pid)
    ccas = as_persona("ccas_rsa_agent")
    read = await client.get(f"/v1/beneficiaries/{pid}", headers=ccas)
    assert read.status_code == 200
    assert read.json().get("situation") is None and read.json().get("nir") is None
    assert (await client.get(f"/v1/beneficiaries/{pid}/household", headers=ccas)).status_code == 403
    assert (await client.get(f"/v1/beneficiaries/{pid}/budget", headers=ccas)).status_code == 403
    notes = await client.get(f"/v1/beneficiaries/{pid}/notes", headers=ccas)
    assert notes.status_code == 200 and notes.json() == []
    log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=ccas)
    assert log.status_code == 200
    departement = str(world.organisations["departement"])
    assert not [
        i
        for i in log.json()["items"]
        if i["action"] == "note.create" and i["organisation"]["id"] == departement
    ]
    team = await client.get(f"/v1/beneficiaries/{pid}/care-team", headers=ccas)
    assert "ase" not in {m["competence"] for m in team.json()}
    # the cleared agent of the département still reads all of it
    cleared = as_persona("departement_sensitive")
    assert (await client.get(f"/v1/beneficiaries/{pid}/budget", headers=cleared)).status_code == 200
    assert len((await client.get(f"/v1/beneficiaries/{pid}/notes", headers=cleared)).json()) == 3


# 4. household links are no existence oracle ----------------------------------------------


async def test_4_a_household_link_to_an_unknown_or_unseen_person_is_the_same_422(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    pid, _ = await _person(client, ccas)
    other, _ = await _person(client, as_persona("ccas_agent"), commune="80212")
    answers = []
    for member in (str(uuid.uuid4()), other):
        r = await client.put(
            f"/v1/beneficiaries/{pid}/household",
            json={"members": [{"relation": "conjoint", "beneficiary_id": member}]},
            headers=ccas,
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["pointer"] == "/members/0/beneficiary_id"
        answers.append((r.json()["detail"], r.json()["errors"]))
    assert answers[0] == answers[1]
    household = await client.get(f"/v1/beneficiaries/{pid}/household", headers=ccas)
    assert household.json()["members"] == []
    # a person the caller follows links fine
    mine, _ = await _person(client, ccas)
    ok = await client.put(
        f"/v1/beneficiaries/{pid}/household",
        json={"members": [{"relation": "conjoint", "beneficiary_id": mine}]},
        headers=ccas,
    )
    assert ok.status_code == 200, ok.text


# 6. sync joins where the département holds the prestation, and says why ---------------------


async def test_6_a_sync_join_is_justified_and_opens_nothing_of_a_sensitive_follow_up(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    pid, _ = await _ase_child(client, as_persona)
    r = await client.post(
        "/v1/sync/dossiers",
        json={
            "items": [
                {
                    "external_ref": {"system": "IODAS", "id": f"leak-{uuid.uuid4().hex[:8]}"},
                    "beneficiary": {"id": pid},
                    "prestation": "rsa",
                    "status": "under_review",
                    "instruction": {"household_size": 1, "monthly_resources": "300"},
                    "source_updated_at": "2026-11-01T10:00:00Z",
                }
            ]
        },
        headers={**as_persona("client_with_scopes"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 200, r.text
    assert r.json()["results"][0]["outcome"] == "created", r.text
    cleared = as_persona("departement_sensitive")
    team = await client.get(f"/v1/beneficiaries/{pid}/care-team", headers=cleared)
    joined = [m for m in team.json() if m["source"] == "sync"]
    assert joined and joined[0]["competence"] == "rsa"
    log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=cleared)
    why = [i["purpose"] for i in log.json()["items"] if i["action"] == "care_team.sync_join"]
    assert why and why[0]  # the join says why, in the person's access log
    # the département's uncleared agent, attached now for rsa, reads nothing of the ase file
    agent = as_persona("departement_agent")
    read = await client.get(f"/v1/beneficiaries/{pid}", headers=agent)
    assert read.status_code == 200 and read.json().get("situation") is None
    assert (await client.get(f"/v1/beneficiaries/{pid}/budget", headers=agent)).status_code == 403


# 7. referral previews respect the shared categories --------------------------------------


async def test_7_an_identity_only_inline_referral_shows_no_contact_before_acceptance(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    inline = {
        "birth_name": "Aperçu",
        "first_names": "Inès",
        "birth_date": "1988-03-03",
        "sex": "F",
        "commune": "80021",
        "phone": "06 98 76 54 32",
        "email": "ines@example.org",
    }
    sent = await client.post(
        "/v1/referrals",
        json={
            "beneficiary": inline,
            "competence": "aide_alimentaire",
            "recipient_organisation_id": str(world.organisations["secours_populaire"]),
            "need": {"code": "colis_alimentaire", "description": "Colis."},
            "shared_categories": ["identity"],
            "consent_override": OVERRIDE,
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert sent.status_code == 201, sent.text
    assert sent.json()["inline_identity"]["phone"] == inline["phone"]  # the sender wrote it
    seen = await client.get(
        f"/v1/referrals/{sent.json()['id']}", headers=as_persona("association_agent")
    )
    assert seen.status_code == 200, seen.text
    preview = seen.json()["inline_identity"]
    assert preview["birth_name"] == "Aperçu"
    assert preview.get("phone") is None and preview.get("email") is None
    assert inline["phone"] not in seen.text and inline["email"] not in seen.text


# 8. answers that reveal existence ---------------------------------------------------------


async def test_8_export_of_a_person_the_caller_may_not_read_is_404(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    pid, _ = await _person(client, as_persona("ccas_rsa_agent"))
    child, _ = await _ase_child(client, as_persona)
    for person in (pid, child, str(uuid.uuid4())):
        # the département's DPO: not attached, or attached for ase without the clearance
        r = await client.get(
            f"/v1/beneficiaries/{person}/export",
            params={"purpose": PURPOSE},
            headers=as_persona("dpo"),
        )
        assert r.status_code == 404, r.text
        read = await client.get(f"/v1/beneficiaries/{person}", headers=as_persona("dpo"))
        assert read.status_code == 404


async def test_8_an_access_request_about_an_unseen_person_is_404(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    corbie, _ = await _person(client, as_persona("ccas_agent"), commune="80212")
    for person in (corbie, str(uuid.uuid4())):
        r = await client.post(
            f"/v1/beneficiaries/{person}/access-requests",
            json={"competence": "aide_facultative", "reason": "demande d'aide"},
            headers=as_persona("ccas_rsa_agent"),
        )
        assert r.status_code == 404, r.text
        assert "competence" not in r.text


async def test_8_a_decision_by_the_instructing_side_is_403(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    _, dossier = await submitted_dossier(client, as_persona)
    r = await dossier_act(
        client,
        as_persona,
        dossier,
        "decide",
        "ccas_rsa_agent",
        {"decision": "granted", "amount": "600", "start_on": "2026-11-01", "reason": "ok"},
    )
    assert r.status_code == 403, r.text
