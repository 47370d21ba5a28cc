"""Aides facultatives: the comparison of règlements over a département, and the cost of
submitting and granting a request against the same request's raw INSERTs.

    .venv/bin/python -m bench.aids                  # 50 règlements, 40 rounds
    .venv/bin/python -m bench.aids --rules 50 --rounds 100

What a run does (bench/README.md, "Aides facultatives"): a fresh database and the service as
bench/http.py makes them, ``guichet demo``, then 50 règlements of synthetic granting
organisations of the Somme (CCAS on one commune, CIAS on an EPCI's communes, 4 aid types
each) inserted as the owner; then, one request at a time (latency, not throughput):

* ``healthz`` and ``communes_80`` (``GET /v1/territories/communes?departement=80&limit=200``),
  the baselines of the same run;
* ``compare_80``: ``POST /v1/aid-rules/compare`` for the 771 communes of the Somme;
* in process, the comparison split: the two queries, then the pure rules and shaping;
* ``submit_grant``: create + submit + grant of one request over HTTP (3 calls, the budget
  snapshot, assessment, history, envelope, audit and change feed included), against
  ``raw_inserts``: the same request's rows (request, 3 events) inserted by asyncpg as the
  owner in one transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from api.demo.territory import DEMO_PASSWORD as PASSWORD
from bench.http import Service, fresh_database, plain_url, run_demo, service_env
from bench.http import machine as machine_facts

ROOT = Path(__file__).resolve().parent.parent
HOUSEHOLD = {
    "adults": 2,
    "children_ages": [4, 9],
    "monthly_resources": 1250,
    "monthly_charges": 820,
}
CATEGORIES = ("alimentation", "energie", "logement", "sante")


def _aid_types(rng: random.Random, communes: list[str]) -> list[dict[str, Any]]:
    aids = []
    for i, category in enumerate(CATEGORIES):
        cap = rng.choice([60, 80, 100, 150, 200, 300])
        aids.append(
            {
                "code": f"aide_{category}",
                "label": f"Aide {category}",
                "competence": "aide_alimentaire" if i == 0 else "aide_facultative",
                "category": category,
                "forms": ["bon"] if i == 0 else ["paiement_tiers", "bon"],
                "max_per_request": Decimal(cap),
                "max_per_household_12_months": Decimal(cap * 3) if rng.random() < 0.5 else None,
                "reste_a_vivre_max": Decimal(rng.choice([5, 7, 8, 10, 12, 15])),
                "communes": communes,
                "decision": json.dumps(
                    [{"up_to": "80.00", "by": "agent"}, {"up_to": None, "by": "decideur"}]
                ),
            }
        )
    return aids


async def load_rules(url: str, count: int, seed: int) -> dict[str, int]:
    """``count`` règlements of synthetic granting organisations of the Somme, as the owner:
    7 in 8 a CCAS on one commune, 1 in 8 a CIAS on an EPCI's communes."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(plain_url(url))
    try:
        communes = [
            r["code"]
            for r in await conn.fetch(
                "SELECT code FROM commune WHERE departement_code = '80' ORDER BY population DESC"
            )
        ]
        epcis = [
            [
                r["code"]
                for r in await conn.fetch("SELECT code FROM commune WHERE epci_siren = $1", s)
            ]
            for s in [
                r["epci_siren"]
                for r in await conn.fetch(
                    "SELECT DISTINCT epci_siren FROM commune "
                    "WHERE departement_code = '80' AND epci_siren IS NOT NULL ORDER BY epci_siren"
                )
            ]
        ]
        now = datetime.now(UTC)
        aid_rows = 0
        covered = 0
        async with conn.transaction():
            for n in range(count):
                cias = n % 8 == 7
                territory = epcis[n % len(epcis)] if cias else [communes[n]]
                org = uuid.uuid4()
                name = f"{'CIAS' if cias else 'CCAS'} bench {n}"
                await conn.execute(
                    "INSERT INTO organisation (id, name, search_name, kind, service_area_communes, "
                    "service_area_departements, retention_months, audit_retention_months, version, "
                    "created_at, updated_at) "
                    "VALUES ($1, $2, $3, $4, '{}', '{}', 24, 12, 1, $5, $5)",
                    org,
                    name,
                    name.lower(),
                    "cias" if cias else "ccas",
                    now,
                )
                await conn.executemany(
                    "INSERT INTO organisation_commune (organisation_id, commune_code) "
                    "VALUES ($1, $2)",
                    [(org, c) for c in territory],
                )
                rules = uuid.uuid4()
                await conn.execute(
                    "INSERT INTO aid_rules (id, organisation_id, title, valid_from, created_at) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    rules,
                    org,
                    f"Règlement {name}",
                    date(2026, 1, 1),
                    now,
                )
                for position, aid in enumerate(_aid_types(rng, territory)):
                    await conn.execute(
                        "INSERT INTO aid_type (id, rules_id, organisation_id, position, code, "
                        "label, competence, category, forms, max_per_request, "
                        "max_per_household_12_months, "
                        "reste_a_vivre_max, communes, decision) VALUES "
                        "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)",
                        uuid.uuid4(),
                        rules,
                        org,
                        position,
                        aid["code"],
                        aid["label"],
                        aid["competence"],
                        aid["category"],
                        aid["forms"],
                        aid["max_per_request"],
                        aid["max_per_household_12_months"],
                        aid["reste_a_vivre_max"],
                        aid["communes"],
                        aid["decision"],
                    )
                    aid_rows += 1
                    covered += len(territory)
        await conn.execute("ANALYZE aid_rules")
        await conn.execute("ANALYZE aid_type")
        return {
            "rules": count,
            "aid_types": aid_rows,
            "aid_type_communes": covered,
            "communes_80": len(communes),
        }
    finally:
        await conn.close()


async def timed(rounds: int, call: Callable[[], Awaitable[Any]]) -> list[float]:
    await call()  # warm
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    return took


def summary(name: str, took: Sequence[float], baseline: float | None = None) -> dict[str, Any]:
    ordered = sorted(took)
    p50 = statistics.median(ordered)
    return {
        "name": name,
        "n": len(ordered),
        "p50_ms": round(p50, 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "ratio": round(p50 / baseline, 1) if baseline else None,
    }


async def token(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await http.post(
        "/v1/auth/token", data={"grant_type": "password", "username": email, "password": PASSWORD}
    )
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _insert(table: str, columns: list[str]) -> str:
    values = ", ".join(f"${i + 1}" for i in range(len(columns)))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"


async def request_flow(http: httpx.AsyncClient, url: str, rounds: int) -> list[dict[str, Any]]:
    """Submit + grant over HTTP against the same rows inserted raw."""
    agent = await token(http, "agent.ccas-amiens@somme.demo")
    admin = await token(http, "admin.ccas-amiens@somme.demo")
    rules = {
        "title": "Règlement bench",
        "valid_from": "2026-02-01",
        "aids": [
            {
                "code": "bon_bench",
                "label": "Bon",
                "competence": "aide_alimentaire",
                "category": "alimentation",
                "forms": ["bon"],
                "max_per_request": 500,
                "max_per_household_12_months": 100000,
                "reste_a_vivre_max": 50,
                "decision": [{"up_to": None, "by": "agent"}],
            }
        ],
    }
    r = await http.post("/v1/aid-rules", json=rules, headers=admin)
    if r.status_code not in (201, 422):
        r.raise_for_status()
    person = await http.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_alimentaire",
            "birth_name": "Banc",
            "first_names": "Essai",
            "birth_date": "1979-04-05",
            "sex": "F",
            "commune": "80021",
        },
        headers=agent,
    )
    person.raise_for_status()
    pid = person.json()["id"]
    budget = {
        "resources": [{"type": "rsa", "monthly_amount": "650"}],
        "charges": [{"type": "loyer", "monthly_amount": "410"}],
    }
    (
        await http.put(f"/v1/beneficiaries/{pid}/budget", json=budget, headers=agent)
    ).raise_for_status()

    async def over_http() -> None:
        created = await http.post(
            "/v1/aid-requests",
            json={
                "beneficiary_id": pid,
                "aid_code": "bon_bench",
                "amount_asked": "30",
                "form": "bon",
                "reason": "bench",
            },
            headers=agent,
        )
        created.raise_for_status()
        rid = created.json()["id"]
        (
            await http.post(f"/v1/aid-requests/{rid}/submit", json={}, headers=agent)
        ).raise_for_status()
        (
            await http.post(f"/v1/aid-requests/{rid}/grant", json={"amount": "30"}, headers=agent)
        ).raise_for_status()

    conn = await asyncpg.connect(plain_url(url))
    template = await conn.fetchrow(
        "SELECT * FROM aid_request WHERE beneficiary_id = $1 LIMIT 1", uuid.UUID(pid)
    )
    if template is None:
        await over_http()
        template = await conn.fetchrow(
            "SELECT * FROM aid_request WHERE beneficiary_id = $1 LIMIT 1", uuid.UUID(pid)
        )
    columns = list(template.keys())
    insert_request = _insert("aid_request", columns)
    events = await conn.fetch(
        "SELECT * FROM aid_request_event WHERE request_id = $1 ORDER BY id", template["id"]
    )
    event_columns = [c for c in events[0] if c != "id"]
    insert_event = _insert("aid_request_event", event_columns)

    async def raw() -> None:
        rid = uuid.uuid4()
        async with conn.transaction():
            await conn.execute(
                insert_request, *[rid if c == "id" else template[c] for c in columns]
            )
            await conn.executemany(
                insert_event,
                [[rid if c == "request_id" else e[c] for c in event_columns] for e in events],
            )

    try:
        raw_took = await timed(rounds, raw)
        http_took = await timed(rounds, over_http)
    finally:
        await conn.close()
    base = statistics.median(raw_took)
    return [summary("raw_inserts", raw_took), summary("submit_grant", http_took, base)]


async def split_compare(url: str, rounds: int) -> dict[str, float]:
    """The comparison in process, as the runtime code runs it: queries, then pure rules."""
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    from api.domain.aids import compare
    from api.domain.aids.repository.reglements import RulesRepository
    from api.domain.aids.schemas import CompareBody

    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    body = CompareBody.model_validate({"departement": "80", "household": HOUSEHOLD})
    queries: list[float] = []
    total: list[float] = []
    try:
        async with AsyncSession(engine) as session:
            repo = RulesRepository(session)
            for _ in range(rounds + 1):
                started = time.perf_counter()
                communes = await repo.communes_of(epci=None, departement="80")
                await repo.offers(communes, date.today(), None)
                queries.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                await compare.compare(repo, body)
                total.append((time.perf_counter() - started) * 1000)
    finally:
        await engine.dispose()
    q, t = statistics.median(queries[1:]), statistics.median(total[1:])
    return {
        "queries_ms": round(q, 2),
        "compare_ms": round(t, 2),
        "rules_and_shaping_ms": round(t - q, 2),
    }


async def measure(base_url: str, url: str, rounds: int) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        compare_body = {"departement": "80", "household": HOUSEHOLD}
        answer = await http.post("/v1/aid-rules/compare", json=compare_body)
        answer.raise_for_status()
        health = await timed(rounds, lambda: http.get("/healthz"))
        communes = await timed(
            rounds,
            lambda: http.get(
                "/v1/territories/communes", params={"departement": "80", "limit": 200}
            ),
        )
        compared = await timed(
            rounds, lambda: http.post("/v1/aid-rules/compare", json=compare_body)
        )
        base = statistics.median(health)
        table = [
            summary("healthz", health),
            summary("communes_80", communes, base),
            summary("compare_80", compared, base),
        ]
        flow = await request_flow(http, url, rounds)
    return {
        "compare_answer": {
            "communes": answer.json()["communes"],
            "items": len(answer.json()["items"]),
            "bytes": len(answer.content),
        },
        "latency": table,
        "request_flow": flow,
        "compare_split": await split_compare(url, rounds),
    }


def render(report: dict[str, Any]) -> str:
    lines = [f"data: {report['data']}", f"compare answer: {report['results']['compare_answer']}"]
    lines.append(f"{'scenario':<14}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'ratio':>8}")
    for row in report["results"]["latency"] + report["results"]["request_flow"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']}"
        lines.append(
            f"{row['name']:<14}{row['n']:>5}{row['p50_ms']:>10}{row['p95_ms']:>10}{ratio:>8}"
        )
    lines.append("(compare_80 and communes_80: ratio to healthz; submit_grant: to raw_inserts)")
    lines.append(f"compare in process: {report['results']['compare_split']}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    env = service_env()
    with tempfile.TemporaryDirectory(prefix="bench-aids-") as work, fresh_database(env):
        env["GUICHET_DATA_DIR"] = str(Path(work) / "data")
        print(f"demo: {run_demo(env, ROOT):.1f} s", file=sys.stderr)
        url = env["DATABASE_URL"]
        data = asyncio.run(load_rules(url, args.rules, args.seed))
        service = Service(env, 1, Path(work) / "service.log", ROOT)
        try:
            service.wait_ready(120)
            results = asyncio.run(measure(service.base_url, url, args.rounds))
        finally:
            service.stop()
        report = {
            "data": data,
            "results": results,
            "machine": machine_facts(),
        }
    print(render(report))
    out = ROOT / "bench" / "results" / f"aids-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
