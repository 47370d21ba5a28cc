"""Throughput of the dossier sync (POST /v1/sync/dossiers), next to a raw asyncpg upsert of
the same rows measured in the same run.

    .venv/bin/python -m bench.sync                          # 10 batches of 1,000 new dossiers
    .venv/bin/python -m bench.sync --batches 2 --batch-size 500
    .venv/bin/python -m bench.sync --help

What a run does (harness of bench/http.py: fresh throw-away database, the working tree served
by ``guichet serve`` in its own process group, everything stopped and dropped at the end):

1. ``guichet demo`` (the Somme, its partners and users), then the département's admin creates
   an API client with the ``dossiers:sync`` scope, which signs in with ``client_credentials``;
2. ``--batches`` batches of ``--batch-size`` new dossiers (each for a new person living on a
   commune of the Somme; half with a NIR; statuses submitted, under review, decided with a
   decision) are sent one after the other, each with its own ``Idempotency-Key``, as a
   département's system would: ``create`` is items per second over the whole run;
3. the same batches again, with new keys: every item ``unchanged``, nothing written —
   ``unchanged``;
4. the baseline, on an owner connection (no row-level security, no HTTP, no matching, no
   audit): the same rows in a scratch table with one ``INSERT … ON CONFLICT (system,
   external_id) DO UPDATE … WHERE … IS DISTINCT FROM …`` executemany per batch, first on an
   empty table (``create``), then again (``unchanged``: the ``WHERE`` skips every row).

Output: items/s and per-batch latency of each, the service/raw ratios, the data size (rows
in the database after the run, request body size). JSON in
``bench/results/sync-<UTC timestamp>.json``. The machine is shared and noisy: compare the
ratios. Exit code: 0, 1 if an item was not reported as expected, 2 on a harness error.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

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


@dataclass
class Phase:
    name: str
    items: int
    seconds: float
    batch_ms: list[float]
    outcomes: dict[str, int]

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0


# --------------------------------------------------------------------------- data


def _nir(seed: bytes) -> str:
    from api.domain.identity import nir_key

    digits = str(int.from_bytes(hashlib.sha256(seed).digest()[:8], "big")).zfill(20)
    body = f"{1 + int(digits[0]) % 2}{digits[1:3]}{1 + int(digits[3:5]) % 12:02d}80{digits[5:11]}"
    return body + nir_key(body)


def make_batches(communes: list[str], batches: int, size: int, run_id: str) -> list[list[dict]]:
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
                "external_ref": {"system": SYSTEM, "id": f"{run_id}-{n}"},
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


def _sync(
    name: str, base_url: str, client: tuple[str, str], batches: list[list[dict]], expected: str
) -> Phase:
    with httpx.Client(base_url=base_url, timeout=600) as http:
        r = http.post(
            "/v1/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client[0],
                "client_secret": client[1],
            },
        )
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        outcomes: Counter[str] = Counter()
        durations = []
        for batch in batches:
            started = time.perf_counter()
            r = http.post(
                "/v1/sync/dossiers",
                json={"items": batch},
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
            durations.append(time.perf_counter() - started)
            if r.status_code != 200:
                raise RuntimeError(f"sync answered {r.status_code}: {r.text[:500]}")
            outcomes.update(x["outcome"] for x in r.json()["results"])
            print(
                f"{name}: batch {len(durations)}/{len(batches)} {durations[-1]:.2f} s",
                file=sys.stderr,
            )
    items = sum(len(b) for b in batches)
    if outcomes[expected] != items:
        print(f"! {name}: {dict(outcomes)} (expected {items} {expected})", file=sys.stderr)
    return Phase(name, items, sum(durations), [d * 1000 for d in durations], dict(outcomes))


# --------------------------------------------------------------------------- the baseline

_RAW_TABLE = """
CREATE TABLE bench_raw_dossier (
  system text, external_id text, birth_name text, first_names text, birth_date date,
  sex text, commune text, nir text, prestation text, status text, instruction jsonb,
  decision jsonb, source_updated_at timestamptz, PRIMARY KEY (system, external_id)
)
"""
_RAW_UPSERT = """
INSERT INTO bench_raw_dossier AS d VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (system, external_id) DO UPDATE SET
  birth_name = excluded.birth_name, first_names = excluded.first_names,
  birth_date = excluded.birth_date, sex = excluded.sex, commune = excluded.commune,
  nir = excluded.nir, prestation = excluded.prestation, status = excluded.status,
  instruction = excluded.instruction, decision = excluded.decision,
  source_updated_at = excluded.source_updated_at
WHERE (d.status, d.instruction, d.decision) IS DISTINCT FROM
      (excluded.status, excluded.instruction, excluded.decision)
"""


def _raw_row(item: dict[str, Any]) -> tuple[Any, ...]:
    p = item["beneficiary"]
    return (
        item["external_ref"]["system"],
        item["external_ref"]["id"],
        p["birth_name"],
        p["first_names"],
        date.fromisoformat(p["birth_date"]),
        p["sex"],
        p["commune"],
        p.get("nir"),
        item["prestation"],
        item["status"],
        json.dumps(item["instruction"]),
        json.dumps(item.get("decision")) if item.get("decision") else None,
        datetime.fromisoformat(item["source_updated_at"].replace("Z", "+00:00")),
    )


async def _raw(url: str, batches: list[list[dict]]) -> tuple[Phase, Phase]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(_RAW_TABLE)
        phases = []
        for name in ("raw create", "raw unchanged"):
            durations = []
            for batch in batches:
                rows = [_raw_row(i) for i in batch]
                started = time.perf_counter()
                async with conn.transaction():
                    await conn.executemany(_RAW_UPSERT, rows)
                durations.append(time.perf_counter() - started)
            items = sum(len(b) for b in batches)
            phases.append(Phase(name, items, sum(durations), [d * 1000 for d in durations], {}))
        await conn.execute("DROP TABLE bench_raw_dossier")
        return phases[0], phases[1]
    finally:
        await conn.close()


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
        return {
            table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
            for table in (
                "dossier",
                "dossier_event",
                "beneficiary",
                "care_team_membership",
                "audit_entry",
                "change_event",
            )
        }
    finally:
        await conn.close()


# --------------------------------------------------------------------------- output


def render(phases: list[Phase]) -> str:
    header = f"{'phase':<20}{'items/s':>10}{'s total':>10}{'batch p50 ms':>14}{'batch max ms':>14}"
    lines = [header, "-" * len(header)]
    for p in phases:
        lines.append(
            f"{p.name:<20}{p.rate:>10.0f}{p.seconds:>10.2f}"
            f"{statistics.median(p.batch_ms):>14.0f}{max(p.batch_ms):>14.0f}"
        )
    return "\n".join(lines)


def report(args: argparse.Namespace, facts: dict[str, Any], phases: list[Phase]) -> None:
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
    print()
    print(render(phases))
    print()
    for kind in ("create", "unchanged"):
        service, raw = by[f"service {kind}"], by[f"raw {kind}"]
        print(
            f"{kind}: service {service.rate:.0f} items/s, raw asyncpg upsert {raw.rate:.0f} "
            f"items/s, ratio service/raw {service.rate / raw.rate:.3f}"
        )
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"{args.name}-{stamp}.json"
    document = {
        "name": args.name,
        "timestamp": stamp,
        "machine": host,
        "config": {"batches": args.batches, "batch_size": args.batch_size},
        "data": facts,
        "phases": [{**asdict(p), "items_per_s": p.rate} for p in phases],
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.sync",
        description="Dossier sync throughput (items/s) next to a raw asyncpg upsert.",
    )
    parser.add_argument("--batches", type=int, default=10, help="batches per phase (10)")
    parser.add_argument("--batch-size", type=int, default=1000, help="items per batch (1000)")
    parser.add_argument("--name", default="sync", help="results file prefix (sync)")
    parser.add_argument("--startup-timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.batches < 1 or not 1 <= args.batch_size <= 1000:
        parser.error("--batches ≥ 1 and 1 ≤ --batch-size ≤ 1000")
    return args


def run(args: argparse.Namespace) -> int:
    from api.demo.territory import DEMO_PASSWORD

    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-sync-"))
    try:
        _source, code_label = service_source(None, workdir)
        env = service_env()
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)
        with fresh_database(env) as database_label:
            url = env["DATABASE_URL"]
            service = Service(env, 1, workdir / "service.log", ROOT)
            try:
                service.wait_ready(args.startup_timeout)
                print("service ready; guichet demo", file=sys.stderr)
                run_demo(env, ROOT, args.startup_timeout)
                client = _client(service.base_url, DEMO_PASSWORD)
                communes = asyncio.run(_communes(url))
                batches = make_batches(
                    communes, args.batches, args.batch_size, uuid.uuid4().hex[:8]
                )
                created = _sync("service create", service.base_url, client, batches, "created")
                again = _sync("service unchanged", service.base_url, client, batches, "unchanged")
                raw_create, raw_again = asyncio.run(_raw(url, batches))
                facts = {
                    "code": code_label,
                    "database": database_label,
                    "rows": asyncio.run(_size(url)),
                    "body_kib": len(json.dumps({"items": batches[0]}).encode()) / 1024,
                }
                problems = service.log_problems()
            finally:
                service.stop()
        report(args, facts, [created, again, raw_create, raw_again])
        for line in problems[:5]:
            print(f"! service logged: {line[:300]}")
        expected = args.batches * args.batch_size
        ok = created.outcomes.get("created") == expected == again.outcomes.get("unchanged")
        return 0 if ok else 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
