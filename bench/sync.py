"""Throughput of the dossier sync (POST /v1/sync/dossiers), next to the same rows written to
the same tables by raw asyncpg batch statements, interleaved in the same run.

    .venv/bin/python -m bench.sync                          # 10 batches of 1,000 new dossiers
    .venv/bin/python -m bench.sync --batches 4 --batch-size 500
    .venv/bin/python -m bench.sync --ref main               # another revision, served
    .venv/bin/python -m bench.sync --help

What a run does (harness of bench/http.py: fresh throw-away database, the working tree, or
the revision ``--ref`` names, served by ``guichet serve`` (one worker) in its own process
group, everything stopped and dropped at the end):

1. ``guichet demo`` (the Somme, its partners and users), then the département's admin creates
   an API client with the ``dossiers:sync`` scope, which signs in with ``client_credentials``;
2. **create**: ``--batches`` batches of ``--batch-size`` new dossiers (each for a new person
   living on a commune of the Somme; half with a NIR; statuses submitted, under review,
   decided with a decision), each sent with its own ``Idempotency-Key`` as a département's
   system would. After each service batch, the baseline writes a batch of the same shape
   (other people, other references) as the owner, in one transaction, with one
   ``INSERT … SELECT FROM unnest($1::…[], …)`` per table the sync writes: ``beneficiary``,
   ``care_team_membership``, ``dossier``, ``dossier_external_ref``, ``dossier_event`` and
   ``change_event`` (the statistics triggers fire for both). No audit entry, no HTTP, no
   matching, no access rule, no row-level security; its rows are built before the clock
   starts. The row counts of every table are diffed around the first service batch and the
   first baseline batch: the tables must agree, ``audit_entry`` and ``idempotency_key``
   aside (printed either way);
3. **unchanged**: the same batches again, with new keys, every item ``unchanged`` and nothing
   written; interleaved with the baseline's re-sync: per batch one ``UPDATE dossier … FROM
   unnest(…) JOIN dossier_external_ref …`` that finds each dossier by its reference, compares
   its status, instruction and decision and writes none (checked: ``UPDATE 0``);
4. **update**: the same batches a day later (``updated``: a new instruction for the dossiers
   not decided yet, three in four; the others ``unchanged``), interleaved with the baseline's
   update of the same rows: per batch one ``UPDATE dossier … FROM unnest(…) JOIN
   dossier_external_ref … RETURNING``, then the dossiers' events, the changes announced and
   the references' digests, one statement each (its rows are counted against the service's
   around the first batch, as for the create);
5. in this process, the service's own application (no HTTP server) syncs one more batch of
   new dossiers, the same again, then the same with a new instruction for the dossiers not
   decided yet (three in four: ``updated``, the others ``unchanged``), with SQLAlchemy events
   counting the statements of each request (BEGIN and COMMIT included) and timing each
   statement: the slowest are listed. With ``--ref``, a child process does it with that
   revision's ``api``, so a before and after of a batch's statements needs one checkout.

Output: items/s and per-batch latency of each phase, the service/baseline ratios with the
data size (batch size, rows in the database after the run, request body size) and the load
average before each phase, then the statements per batch. JSON in
``bench/results/sync-<UTC timestamp>.json``. The machine is shared and noisy: compare the
ratios. Exit code: 0, 1 if an item was not reported as expected or the baseline did not
write what the service wrote, 2 on a harness error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.dataset import new_nir_key
from bench.http import (
    RESULTS_DIR,
    ROOT,
    Service,
    fresh_database,
    machine,
    plain_url,
    run_cli,
    run_demo,
    service_env,
    service_source,
)

DEPARTEMENT = "80"
DEPARTEMENT_ADMIN = "admin.cd80@somme.demo"
SYSTEM = "bench-si"
RAW_SYSTEM = "bench-raw"
#: tables the baseline leaves out on purpose: the audit trail and the request's idempotency
NOT_IN_BASELINE = ("audit_entry", "idempotency_key")
KINDS = ("create", "unchanged", "update")


@dataclass
class Phase:
    name: str
    items: int = 0
    seconds: float = 0.0
    batch_ms: list[float] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    load_average: float | None = None

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def add(self, items: int, seconds: float) -> None:
        self.items += items
        self.seconds += seconds
        self.batch_ms.append(seconds * 1000)


@dataclass
class Trips:
    """What the in-process application sent to PostgreSQL for one request."""

    outcomes: dict[str, int]
    statements: int
    database_ms: float
    request_ms: float
    slowest: list[tuple[str, int, float]]


# --------------------------------------------------------------------------- data


def _nir(seed: bytes) -> str:
    from api.domain.identity import nir_key

    digits = str(int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")).zfill(20)
    body = f"{1 + int(digits[0]) % 2}{digits[1:3]}{1 + int(digits[3:5]) % 12:02d}80{digits[5:11]}"
    return body + nir_key(body)


def make_batches(
    communes: list[str], batches: int, size: int, run_id: str, system: str = SYSTEM
) -> list[list[dict[str, Any]]]:
    """New people and dossiers, reproducible from ``run_id`` and unlike each other."""
    made = []
    for b in range(batches):
        batch = []
        for i in range(size):
            n = b * size + i
            h = hashlib.sha256(f"{run_id}:{n}".encode()).digest()
            person: dict[str, Any] = {
                "birth_name": f"Nom{h[:4].hex()}",
                "first_names": f"Prenom{h[4:8].hex()}",
                "birth_date": (date(1935, 1, 1) + timedelta(days=h[8] * 100 + h[9])).isoformat(),
                "sex": "F" if h[10] % 2 else "M",
                "commune": communes[int.from_bytes(h[11:13], "big") % len(communes)],
            }
            if n % 2:
                person["nir"] = _nir(h)
            item: dict[str, Any] = {
                "external_ref": {"system": system, "id": f"{run_id}-{n}"},
                "beneficiary": person,
                "prestation": "rsa" if n % 5 else "apa",
                "status": ("submitted", "under_review", "under_review", "decided")[n % 4],
                "instruction": {"household_size": 1 + n % 4, "monthly_resources": f"{n % 900}.00"},
                "source_updated_at": "2026-11-01T08:00:00Z",
            }
            if item["status"] == "decided":
                item["decision"] = {"decision": "granted", "amount": "607.75"}
            batch.append(item)
        made.append(batch)
    return made


# --------------------------------------------------------------------------- the service


def _client(base_url: str, password: str) -> tuple[str, str]:
    """The département's admin creates an API client with the dossiers:sync scope."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        r = http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": DEPARTEMENT_ADMIN, "password": password},
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        me = http.get("/v1/me", headers=headers).json()
        r = http.post(
            f"/v1/organisations/{me['organisation']['id']}/api-clients",
            json={"name": f"bench sync {uuid.uuid4().hex[:6]}", "scopes": ["dossiers:sync"]},
            headers=headers,
        )
        r.raise_for_status()
        return r.json()["client_id"], r.json()["client_secret"]


async def _token(http: httpx.AsyncClient, client: tuple[str, str]) -> dict[str, str]:
    r = await http.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client[0],
            "client_secret": client[1],
        },
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _send(
    http: httpx.AsyncClient, headers: dict[str, str], batch: list[dict[str, Any]], phase: Phase
) -> None:
    started = time.perf_counter()
    r = await http.post(
        "/v1/sync/dossiers",
        json={"items": batch},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    elapsed = time.perf_counter() - started
    if r.status_code != 200:
        raise RuntimeError(f"sync answered {r.status_code}: {r.text[:500]}")
    phase.add(len(batch), elapsed)
    for x in r.json()["results"]:
        phase.outcomes[x["outcome"]] = phase.outcomes.get(x["outcome"], 0) + 1


# --------------------------------------------------------------------------- the baseline


@dataclass
class RawBatch:
    """One batch's rows, one list per column of each table, built before the clock starts."""

    people: list[list[Any]]
    memberships: list[list[Any]]
    dossiers: list[list[Any]]
    refs: list[list[Any]]
    events: list[list[Any]]
    changes: list[list[Any]]
    #: the re-sync's arrays: system, external id, status, instruction, decision, amount
    resync: list[list[Any]]
    #: the update's arrays (``updated``: the dossiers not decided yet): system, external id,
    #: new instruction, digest
    update: list[list[Any]]


_RAW_CREATE = (
    """
INSERT INTO beneficiary (id, birth_name, first_names, birth_date, sex, nir_cipher, nir_hash,
  nir_missing_reason, commune_code, match_keys, folded_names, last_contact_at,
  created_by_organisation_id, version, created_at, updated_at)
SELECT x.id, x.birth_name, x.first_names, x.birth_date, x.sex, x.nir_cipher, x.nir_hash,
       x.nir_missing_reason, x.commune_code, string_to_array(x.match_keys, E'\\x1f'),
       x.folded_names, x.last_contact_at, x.created_by_organisation_id, x.version,
       x.created_at, x.updated_at
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::date[], $5::text[], $6::bytea[],
  $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[],
  $13::uuid[], $14::int[], $15::timestamptz[], $16::timestamptz[])
  AS x(id, birth_name, first_names, birth_date, sex, nir_cipher, nir_hash, nir_missing_reason,
       commune_code, match_keys, folded_names, last_contact_at, created_by_organisation_id,
       version, created_at, updated_at)
""",
    """
INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, competence, team_role,
  source, started_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
  $7::timestamptz[])
""",
    """
INSERT INTO dossier (id, beneficiary_id, prestation, instructing_organisation_id,
  deciding_organisation_id, status, status_changed_at, instruction, instruction_updated_at,
  decision, amount, decided_on, decision_updated_at, version, created_at, updated_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::uuid[], $6::text[],
  $7::timestamptz[], $8::jsonb[], $9::timestamptz[], $10::text[], $11::numeric[], $12::date[],
  $13::timestamptz[], $14::int[], $15::timestamptz[], $16::timestamptz[])
""",
    """
INSERT INTO dossier_external_ref (dossier_id, beneficiary_id, organisation_id, system,
  external_id, created_at)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[],
  $6::timestamptz[])
""",
    """
INSERT INTO dossier_event (dossier_id, beneficiary_id, at, action, to_status,
  organisation_id, actor_client_id, channel)
SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[],
  $6::uuid[], $7::uuid[], $8::text[])
""",
    """
INSERT INTO change_event (txid, type, resource_id, action, event, status, audience, at)
SELECT pg_current_xact_id()::text::bigint, x.type, x.id, x.action, x.event, x.status,
       ARRAY[x.audience], x.at
FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
  $7::timestamptz[]) WITH ORDINALITY AS x(type, id, action, event, status, audience, at, n)
ORDER BY x.n
""",
)

_RAW_RESYNC = """
UPDATE dossier d
SET status = x.status, instruction = x.instruction, decision = x.decision, amount = x.amount,
    updated_at = now(), version = d.version + 1
FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::text[], $6::numeric[])
       AS x(system, external_id, status, instruction, decision, amount)
JOIN dossier_external_ref r
  ON r.organisation_id = $7 AND r.system = x.system AND r.external_id = x.external_id
WHERE d.id = r.dossier_id
  AND (d.status, d.instruction, d.decision, d.amount)
      IS DISTINCT FROM (x.status, x.instruction, x.decision, x.amount)
"""


# What the sync writes for a dossier whose instruction changed: the dossier (found by its
# reference), its event, the change announced, the reference's digest.
_RAW_UPDATE = (
    """
UPDATE dossier d
SET instruction = x.instruction, instruction_updated_at = now(), updated_at = now(),
    version = d.version + 1
FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS x(system, external_id, instruction)
JOIN dossier_external_ref r
  ON r.organisation_id = $4 AND r.system = x.system AND r.external_id = x.external_id
WHERE d.id = r.dossier_id
RETURNING d.id, d.beneficiary_id, d.status::text
""",
    """
INSERT INTO dossier_event (dossier_id, beneficiary_id, at, action, organisation_id,
  actor_client_id, channel)
SELECT x.dossier_id, x.beneficiary_id, now(), 'sync', $3, $4, 'sync'
FROM unnest($1::uuid[], $2::uuid[]) AS x(dossier_id, beneficiary_id)
""",
    """
INSERT INTO change_event (txid, type, resource_id, action, event, status, audience, at)
SELECT pg_current_xact_id()::text::bigint, 'dossier', x.id, 'updated', 'dossier.updated',
       x.status, ARRAY[$3::uuid], now()
FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS x(id, status, n)
ORDER BY x.n
""",
    """
UPDATE dossier_external_ref r SET synced_digest = x.digest
FROM unnest($1::text[], $2::text[], $3::text[]) AS x(system, external_id, digest)
WHERE r.organisation_id = $4 AND r.system = x.system AND r.external_id = x.external_id
""",
)


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


def raw_batch(batch: list[dict[str, Any]], organisation: uuid.UUID, client: uuid.UUID) -> RawBatch:
    """The rows the sync writes for ``batch`` (a new person each, the département instructing
    and deciding: it holds RSA and APA by law on the Somme)."""
    from api.domain.identity import name_match_keys
    from api.domain.people.service import folded_names

    now = datetime.now(UTC)
    people, memberships, dossiers, refs, events, changes, resync = [], [], [], [], [], [], []
    update = []
    for item in updated(batch):
        if item["status"] != "decided":
            given = json.dumps(item["instruction"])
            ref = item["external_ref"]
            update.append(
                (ref["system"], ref["id"], given, hashlib.sha256(given.encode()).hexdigest())
            )
    for item in batch:
        p, person, dossier = item["beneficiary"], uuid.uuid4(), uuid.uuid4()
        nir = p.get("nir")
        decision = item.get("decision")
        instruction = json.dumps(item["instruction"])
        amount = Decimal(decision["amount"]) if decision else None
        people.append(
            (
                person,
                p["birth_name"],
                p["first_names"],
                date.fromisoformat(p["birth_date"]),
                p["sex"],
                os.urandom(43) if nir else None,
                hashlib.sha256(nir.encode()).hexdigest() if nir else None,
                None if nir else "non transmis par le système d'information",
                p["commune"],
                # one text per person (unnest flattens arrays of arrays), split in SQL
                "\x1f".join(sorted(name_match_keys(p["birth_name"], None, p["first_names"]))),
                folded_names(p["birth_name"], None, p["first_names"]),
                now,
                organisation,
                1,
                now,
                now,
            )
        )
        memberships.append(
            (uuid.uuid4(), person, organisation, item["prestation"], "member", "sync", now)
        )
        dossiers.append(
            (
                dossier,
                person,
                item["prestation"],
                organisation,
                organisation,
                item["status"],
                now,
                instruction,
                now,
                decision["decision"] if decision else None,
                amount,
                now.date() if decision else None,
                now if decision else None,
                1,
                now,
                now,
            )
        )
        ref = item["external_ref"]
        refs.append((dossier, person, organisation, ref["system"], ref["id"], now))
        status = item["status"]
        events.append((dossier, person, now, "create", status, organisation, client, "sync"))
        changes.append(
            ("dossier", dossier, "created", "dossier.created", item["status"], organisation, now)
        )
        resync.append(
            (
                ref["system"],
                ref["id"],
                item["status"],
                instruction,
                decision["decision"] if decision else None,
                amount,
            )
        )
    return RawBatch(
        people=_columns(people),
        memberships=_columns(memberships),
        dossiers=_columns(dossiers),
        refs=_columns(refs),
        events=_columns(events),
        changes=_columns(changes),
        resync=_columns(resync),
        update=_columns(update),
    )


async def raw_create(conn: asyncpg.Connection, batch: RawBatch, phase: Phase) -> None:
    tables = (batch.people, batch.memberships, batch.dossiers, batch.refs, batch.events)
    started = time.perf_counter()
    async with conn.transaction():
        for statement, columns in zip(_RAW_CREATE, (*tables, batch.changes), strict=True):
            await conn.execute(statement, *columns)
    phase.add(len(batch.people[0]), time.perf_counter() - started)


async def raw_resync(
    conn: asyncpg.Connection, batch: RawBatch, organisation: uuid.UUID, phase: Phase
) -> None:
    started = time.perf_counter()
    async with conn.transaction():
        status = await conn.execute(_RAW_RESYNC, *batch.resync, organisation)
    phase.add(len(batch.resync[0]), time.perf_counter() - started)
    if status != "UPDATE 0":
        raise RuntimeError(f"the baseline's re-sync wrote rows: {status}")


async def raw_update(
    conn: asyncpg.Connection,
    batch: RawBatch,
    organisation: uuid.UUID,
    client: uuid.UUID,
    phase: Phase,
) -> None:
    dossier, event, change, digests = _RAW_UPDATE
    systems, external_ids, instructions, digest = batch.update
    started = time.perf_counter()
    async with conn.transaction():
        written = await conn.fetch(dossier, systems, external_ids, instructions, organisation)
        ids = [r["id"] for r in written]
        await conn.execute(event, ids, [r["beneficiary_id"] for r in written], organisation, client)
        await conn.execute(change, ids, [r["status"] for r in written], organisation)
        await conn.execute(digests, systems, external_ids, digest, organisation)
    phase.add(len(systems), time.perf_counter() - started)
    if len(written) != len(systems):
        raise RuntimeError(f"the baseline's update wrote {len(written)} of {len(systems)}")


async def row_counts(conn: asyncpg.Connection) -> dict[str, int]:
    tables = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
    )
    return {
        t["tablename"]: int(await conn.fetchval(f'SELECT count(*) FROM "{t["tablename"]}"'))
        for t in tables
    }


def diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {t: after[t] - before.get(t, 0) for t in after if after[t] != before.get(t, 0)}


# --------------------------------------------------------------------------- the phases


async def _ids(conn: asyncpg.Connection, client_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The département's id and the API client's (the actor of the baseline's events)."""
    row = await conn.fetchrow(
        "SELECT c.id, c.organisation_id FROM api_client c WHERE c.client_id = $1", client_id
    )
    if row is None:
        raise RuntimeError("the API client is not in the database")
    return row["organisation_id"], row["id"]


async def phases(
    url: str,
    base_url: str,
    client: tuple[str, str],
    service_batches: list[list[dict[str, Any]]],
    raw_batches: list[list[dict[str, Any]]],
) -> dict[str, Any]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        organisation, client_row = await _ids(conn, client[0])
        raws = [raw_batch(b, organisation, client_row) for b in raw_batches]
        made = {
            f"{who} {kind}": Phase(f"{who} {kind}") for kind in KINDS for who in ("service", "raw")
        }
        written: dict[str, dict[str, int]] = {}
        async with httpx.AsyncClient(base_url=base_url, timeout=600) as http:
            headers = await _token(http, client)

            async def interleaved(
                kind: str,
                sent: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
                write_raw: Callable[[RawBatch, Phase], Awaitable[None]],
            ) -> None:
                """The service's batches of ``kind`` and the baseline's, one after the other;
                the rows each adds counted around the first (not for ``unchanged``)."""
                service, raw_phase = made[f"service {kind}"], made[f"raw {kind}"]
                service.load_average = raw_phase.load_average = os.getloadavg()[0]
                counted = kind != "unchanged"
                for i, (batch, raw) in enumerate(zip(service_batches, raws, strict=True)):
                    first = counted and i == 0
                    before = await row_counts(conn) if first else {}
                    await _send(http, headers, sent(batch), service)
                    middle = await row_counts(conn) if first else {}
                    await write_raw(raw, raw_phase)
                    if first:
                        written[f"service {kind}"] = diff(before, middle)
                        written[f"raw {kind}"] = diff(middle, await row_counts(conn))
                    print(f"{kind}: batch {i + 1}/{len(raws)}", file=sys.stderr)

            await interleaved("create", lambda b: b, lambda r, p: raw_create(conn, r, p))
            await interleaved(
                "unchanged", lambda b: b, lambda r, p: raw_resync(conn, r, organisation, p)
            )
            await interleaved(
                "update", updated, lambda r, p: raw_update(conn, r, organisation, client_row, p)
            )
        return {"phases": list(made.values()), "written": written}
    finally:
        await conn.close()


def updated(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch a day later: a new instruction for every dossier not decided yet (once
    decided, the instruction is closed: those items are unchanged)."""
    later = "2026-11-02T08:00:00Z"
    return [
        item
        if item["status"] == "decided"
        else {
            **item,
            "instruction": {**item["instruction"], "housing": "hébergé"},
            "source_updated_at": later,
        }
        for item in batch
    ]


async def count_statements(
    client: tuple[str, str], batch: list[dict[str, Any]]
) -> dict[str, Trips]:
    """The service's own application, in this process: one create batch, the same batch
    again (unchanged), then with a new instruction for most items (update), each request's
    statements counted and timed by SQLAlchemy events."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from api.main import create_app

    timings: list[tuple[str, float]] = []
    pending: list[float] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        pending.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        head = " ".join(statement.split())[:90]
        timings.append((head, time.perf_counter() - pending.pop()))

    def on_transaction(*_args: Any) -> None:
        timings.append(("BEGIN/COMMIT", 0.0))

    listeners = [
        (Engine, "before_cursor_execute", before),
        (Engine, "after_cursor_execute", after),
        (Engine, "begin", on_transaction),
        (Engine, "commit", on_transaction),
    ]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    app = create_app()
    found: dict[str, Trips] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", timeout=600
            ) as http:
                headers = await _token(http, client)
                for kind, sent in (
                    ("create", batch),
                    ("unchanged", batch),
                    ("update", updated(batch)),
                ):
                    timings.clear()
                    phase = Phase(kind)
                    await _send(http, headers, sent, phase)
                    by: dict[str, list[float]] = {}
                    for head, seconds in timings:
                        by.setdefault(head, []).append(seconds)
                    slowest = sorted(by.items(), key=lambda kv: -sum(kv[1]))[:8]
                    found[kind] = Trips(
                        outcomes=phase.outcomes,
                        statements=len(timings),
                        database_ms=sum(s for _, s in timings) * 1000,
                        request_ms=phase.seconds * 1000,
                        slowest=[(h, len(s), sum(s) * 1000) for h, s in slowest],
                    )
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)
    return found


def statements_of(
    source: Path, workdir: Path, client: tuple[str, str], batch: list[dict[str, Any]]
) -> dict[str, Trips]:
    """:func:`count_statements` with the code that was served: in this process for the
    working tree; for ``--ref``, in a child whose ``api`` is the exported one (first on its
    path, alone in a folder) and whose ``bench`` is this one, on the database that revision
    migrated."""
    if source == ROOT:
        return asyncio.run(count_statements(client, batch))
    alone = workdir / "served-api"
    alone.mkdir()
    (alone / "api").symlink_to(source / "api", target_is_directory=True)
    given, found = workdir / "count-given.json", workdir / "count-found.json"
    given.write_text(json.dumps({"client": client, "batch": batch}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench.sync", "--count-statements", str(given), str(found)]
    subprocess.run(command, cwd=alone, env=env, check=True)  # noqa: S603 (this interpreter)
    return {kind: Trips(**trips) for kind, trips in json.loads(found.read_text()).items()}


def count_and_write(given: Path, found: Path) -> int:
    """The child of :func:`statements_of`."""
    asked = json.loads(given.read_text())
    trips = asyncio.run(count_statements(tuple(asked["client"]), asked["batch"]))
    found.write_text(json.dumps({kind: asdict(t) for kind, t in trips.items()}))
    return 0


async def _communes(url: str) -> list[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch(
            "SELECT code FROM commune WHERE departement_code = $1 ORDER BY code", DEPARTEMENT
        )
        return [r["code"] for r in rows]
    finally:
        await conn.close()


async def _size(url: str) -> dict[str, int]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        counts = await row_counts(conn)
    finally:
        await conn.close()
    return {
        t: counts[t]
        for t in (
            "dossier",
            "dossier_event",
            "dossier_external_ref",
            "beneficiary",
            "care_team_membership",
            "audit_entry",
            "change_event",
            "stat_fact",
        )
    }


# --------------------------------------------------------------------------- output


def render(phases: list[Phase]) -> str:
    header = (
        f"{'phase':<20}{'items/s':>10}{'s total':>10}{'batch p50 ms':>14}{'batch max ms':>14}"
        f"{'load':>7}"
    )
    lines = [header, "-" * len(header)]
    for p in phases:
        load = f"{p.load_average:.1f}" if p.load_average is not None else "-"
        lines.append(
            f"{p.name:<20}{p.rate:>10.0f}{p.seconds:>10.2f}"
            f"{statistics.median(p.batch_ms):>14.0f}{max(p.batch_ms):>14.0f}{load:>7}"
        )
    return "\n".join(lines)


def tables_agree(written: dict[str, dict[str, int]]) -> bool:
    """Each kind's baseline added as many rows to each table as the service, the audit entries
    and the idempotency key aside (updated rows are not counted)."""
    return all(
        {t: n for t, n in written[f"service {kind}"].items() if t not in NOT_IN_BASELINE}
        == written[f"raw {kind}"]
        for kind in ("create", "update")
    )


def report(
    args: argparse.Namespace,
    facts: dict[str, Any],
    phases: list[Phase],
    written: dict[str, dict[str, int]],
    trips: dict[str, Trips],
) -> None:
    by = {p.name: p for p in phases}
    print()
    host = machine()
    print(f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}")
    print(f"code: {facts['code']}; database: {facts['database']}")
    print(
        f"data: {args.batches} batches × {args.batch_size} new dossiers (new people, half "
        f"with a NIR), {facts['body_kib']:.0f} KiB per request body; rows after the run: "
        + ", ".join(f"{k} {v}" for k, v in facts["rows"].items())
    )
    for kind in ("create", "update"):
        for who in ("service", "raw"):
            rows = ", ".join(f"{t} +{n}" for t, n in sorted(written[f"{who} {kind}"].items()))
            print(f"rows added by one {who} {kind} batch: {rows}")
    if not tables_agree(written):
        print(f"! the baseline does not write what the service writes (aside {NOT_IN_BASELINE})")
    print()
    print(render(phases))
    print()
    for kind in KINDS:
        service, raw = by[f"service {kind}"], by[f"raw {kind}"]
        print(
            f"{kind}: service {service.rate:.0f} items/s, raw asyncpg batch {raw.rate:.0f} "
            f"items/s, ratio service/raw {service.rate / raw.rate:.3f} "
            f"(batch {args.batch_size}, load {service.load_average:.1f})"
        )
    print()
    for kind, t in trips.items():
        print(
            f"in process, one {kind} batch of {args.batch_size} ({t.outcomes}): "
            f"{t.statements} statements "
            f"(BEGIN and COMMIT included), {t.database_ms:.0f} ms in them, "
            f"{t.request_ms:.0f} ms in all"
        )
        for head, n, ms in t.slowest:
            print(f"    {ms:>8.1f} ms {n:>4}×  {head}")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"{args.name}-{stamp}.json"
    document = {
        "name": args.name,
        "timestamp": stamp,
        "machine": host,
        "config": {"batches": args.batches, "batch_size": args.batch_size},
        "data": facts,
        "written": written,
        "phases": [{**asdict(p), "items_per_s": p.rate} for p in phases],
        "statements": {k: asdict(t) for k, t in trips.items()},
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync",
        description="Dossier sync throughput (items/s) next to raw asyncpg batch inserts.",
    )
    parser.add_argument("--batches", type=int, default=10, help="batches per phase (10)")
    parser.add_argument("--batch-size", type=int, default=1000, help="items per batch (1000)")
    parser.add_argument("--name", default="sync", help="results file prefix (sync)")
    parser.add_argument(
        "--ref",
        help="serve this git revision instead of the working tree (exported with git archive); "
        "its statements are counted by a child process running that revision's api",
    )
    parser.add_argument(
        "--count-statements", nargs=2, type=Path, metavar=("GIVEN", "FOUND"), help=argparse.SUPPRESS
    )
    parser.add_argument("--startup-timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.batches < 1 or not 1 <= args.batch_size <= 1000:
        parser.error("--batches ≥ 1 and 1 ≤ --batch-size ≤ 1000")
    return args


def run(args: argparse.Namespace) -> int:
    from api.demo.territory import DEMO_PASSWORD

    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-sync-"))
    try:
        source, code_label = service_source(args.ref, workdir)
        env = service_env()
        env["GUICHET_NIR_KEY"] = new_nir_key()
        env["GUICHET_DATA_DIR"] = str(workdir / "data")
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)
        with fresh_database(env) as database_label:
            url = env["DATABASE_URL"]
            service = Service(env, 1, workdir / "service.log", source)
            try:
                service.wait_ready(args.startup_timeout)
                print("service ready; guichet demo", file=sys.stderr)
                run_demo(env, source, args.startup_timeout)
                client = _client(service.base_url, DEMO_PASSWORD)
                communes = asyncio.run(_communes(url))
                run_id = uuid.uuid4().hex[:8]
                batches = make_batches(communes, args.batches, args.batch_size, run_id)
                raw = make_batches(communes, args.batches, args.batch_size, run_id, RAW_SYSTEM)
                measured = asyncio.run(phases(url, service.base_url, client, batches, raw))
                problems = service.log_problems()
            finally:
                service.stop()
            os.environ.update(
                {k: v for k, v in env.items() if k.startswith(("DATABASE", "GUICHET"))}
            )
            os.environ["GUICHET_AUTO_MIGRATE"] = "0"
            extra = make_batches(communes, 1, args.batch_size, f"{run_id}x")[0]
            trips = statements_of(source, workdir, client, extra)
            facts = {
                "code": code_label,
                "database": database_label,
                "rows": asyncio.run(_size(url)),
                "body_kib": len(json.dumps({"items": batches[0]}).encode()) / 1024,
            }
        found: list[Phase] = measured["phases"]
        report(args, facts, found, measured["written"], trips)
        for line in problems[:5]:
            print(f"! service logged: {line[:300]}")
        by = {p.name: p for p in found}
        expected = args.batches * args.batch_size
        changed = sum(1 for b in batches for item in b if item["status"] != "decided")
        ok = (
            by["service create"].outcomes.get("created") == expected
            and by["service unchanged"].outcomes.get("unchanged") == expected
            and by["service update"].outcomes
            == {"updated": changed, "unchanged": expected - changed}
            and tables_agree(measured["written"])
        )
        if not ok:
            print("! outcomes: " + ", ".join(f"{k} {by[f'service {k}'].outcomes}" for k in KINDS))
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run_or_count, argv)


def run_or_count(args: argparse.Namespace) -> int:
    if args.count_statements:
        return count_and_write(*args.count_statements)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
