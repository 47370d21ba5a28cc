"""Cost of the request scope: authenticated ``GET /v1/me`` against ``/healthz``, same run.

    .venv/bin/python -m bench.scope --help

Every authenticated request builds its access scope from the database: the membership
check, then the organisation's holdings (its territory communes, the competences its kind
holds by law, and the delegated holdings of the conventions in force, read through the SQL
function ``convention_holdings``). This harness

1. creates a throw-away database, starts ``guichet serve`` (bench/http.py) and runs
   ``guichet demo`` against it (the Somme, département 80, 772 communes);
2. loads, through the public API, grantee organisations of the département (associations
   serving the whole Somme, CCAS on distinct communes), one convention each from the
   département, and one association that receives many conventions over all the
   département's communes (the "delegate" persona, heavy in delegated holdings);
3. measures with wrk, in the same run: ``healthz`` (baseline), ``commune_by_code``,
   ``me_departement`` (the département's agent: big territory, law holdings) and
   ``me_delegate`` (the heavy grantee's admin);
4. times in process (no HTTP) the holdings query of each persona and the whole
   ``build_scope``, next to a ``SELECT 1`` round trip measured the same way.

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import event, text

from bench.http import (
    BASELINE,
    ROOT,
    SCENARIOS_BY_NAME,
    WARMUP_SECONDS,
    Context,
    LoadGenerator,
    Result,
    Scenario,
    Service,
    add_load_options,
    check_load_options,
    choose_generator,
    database_facts,
    fresh_database,
    machine,
    measure_scenarios,
    percentile,
    plain_url,
    profile_claims,
    render_table,
    run_cli,
    run_demo,
    save_results,
    service_env,
    service_source,
)

# The demo territory (api/demo.py); imported from the working tree.
DEMO_DEPARTEMENT = "80"
DEPARTEMENT_ADMIN = "admin.cd80@somme.demo"
DEPARTEMENT_AGENT = "agent.cd80@somme.demo"
DELEGATE_ADMIN = "admin.delegate@bench.demo"  # the association with many conventions
DEMO_CCAS_COMMUNES = frozenset({"80021", "80489", "80212"})  # Amiens, Longueau, Corbie

SETUP_CONCURRENCY = 8
# The token endpoint allows 50 attempts per client IP per minute (api/auth/throttle.py). The
# set-up signs in once per grantee admin (a convention is accepted by the grantee's admin), so
# it spreads its sign-ins over loopback source addresses 127.0.0.2, .3, …: at most this many
# from each. Still loopback only; the throttle itself is left as it is.
LOGINS_PER_ADDRESS = 40
TOKEN_REUSE_SECONDS = 600  # access tokens live 15 min: sign in again past 10
ASSOCIATION_COMMUNES = 20  # communes of each association's single convention
HEAVY_COMPETENCES: tuple[tuple[str, str], ...] = (
    # the département's law competences delegable to an association, two per convention
    ("rsa", "insertion"),
    ("fsl", "faj"),
    ("personnes_agees", "violences"),
)
DATA_CATEGORIES = ["identity", "contact", "situation", "resources", "referrals", "dossiers"]
VALID_FROM = "2026-01-01"
QUERY_WARMUP_RUNS = 20

PERSONA_DEPARTEMENT = "departement"
PERSONA_DELEGATE = "delegate"

SCOPE_SCENARIOS: tuple[Scenario, ...] = (
    SCENARIOS_BY_NAME[BASELINE],
    SCENARIOS_BY_NAME["commune_by_code"],
    Scenario(
        "me_departement",
        f"GET /v1/me as {DEPARTEMENT_AGENT} (département: territory + law holdings)",
        lambda _ctx: ["/v1/me"],
        headers=lambda ctx: {"Authorization": f"Bearer {ctx.tokens[PERSONA_DEPARTEMENT]}"},
    ),
    Scenario(
        "me_delegate",
        "GET /v1/me as the admin of the association holding many conventions",
        lambda _ctx: ["/v1/me"],
        headers=lambda ctx: {"Authorization": f"Bearer {ctx.tokens[PERSONA_DELEGATE]}"},
    ),
)


# --------------------------------------------------------------------------- API client


class ServiceError(RuntimeError):
    """The service answered a set-up request with an unexpected status."""


def _check(response: httpx.Response, expected: Iterable[int]) -> Any:
    if response.status_code not in tuple(expected):
        request = response.request
        sent = request.content.decode(errors="replace")[:500] if request.content else ""
        raise ServiceError(
            f"{request.method} {request.url.path}"
            + (f"?{request.url.query.decode()}" if request.url.query else "")
            + (f" with {sent}" if sent else "")
            + f" answered {response.status_code}: {response.text[:2000]}"
        )
    return response.json() if response.content else None


class Api:
    """httpx calls to the service as named users, tokens cached for 10 minutes."""

    def __init__(self, base_url: str, password: str) -> None:
        self.base_url = base_url
        self.password = password
        self.client = httpx.AsyncClient(base_url=base_url, timeout=60)
        self._login_clients: list[httpx.AsyncClient] = []
        self._logins = 0
        self._tokens: dict[str, tuple[str, float]] = {}

    async def aclose(self) -> None:
        for client in (self.client, *self._login_clients):
            await client.aclose()

    def _login_client(self) -> httpx.AsyncClient:
        index = self._logins // LOGINS_PER_ADDRESS
        self._logins += 1
        while len(self._login_clients) <= index:
            address = f"127.0.0.{len(self._login_clients) + 2}"
            transport = httpx.AsyncHTTPTransport(local_address=address)
            self._login_clients.append(
                httpx.AsyncClient(base_url=self.base_url, timeout=60, transport=transport)
            )
        return self._login_clients[index]

    async def sign_in(self, email: str) -> str:
        """A fresh access token (password grant; the user has a single membership)."""
        form = {"grant_type": "password", "username": email, "password": self.password}
        client = self._login_client()
        for _attempt in range(5):
            response = await client.post("/v1/auth/token", data=form)
            if response.status_code == 429:  # throttled after all: wait as told
                await asyncio.sleep(float(response.headers.get("Retry-After", "5")))
                continue
            token = str(_check(response, (200,))["access_token"])
            self._tokens[email] = (token, time.monotonic())
            return token
        raise ServiceError(f"sign-in of {email} still throttled after 5 attempts")

    async def token(self, email: str) -> str:
        cached = self._tokens.get(email)
        if cached and time.monotonic() - cached[1] < TOKEN_REUSE_SECONDS:
            return cached[0]
        return await self.sign_in(email)

    async def call(
        self,
        method: str,
        path: str,
        email: str | None,
        *,
        expected: Iterable[int] = (200,),
        **kwargs: Any,
    ) -> Any:
        headers = {"Authorization": f"Bearer {await self.token(email)}"} if email else {}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        return _check(response, expected)

    async def pages(self, path: str, email: str | None, params: dict[str, Any]) -> list[Any]:
        items: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.call(
                "GET", path, email, params={**params, **({"cursor": cursor} if cursor else {})}
            )
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items


async def _bounded(jobs: Sequence[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with semaphore:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


# --------------------------------------------------------------------------- set-up data


@dataclass
class Grantee:
    name: str
    kind: str
    place: dict[str, Any]
    admin: str
    conventions: list[dict[str, Any]]  # bodies of POST /v1/conventions, grantee_id left out
    id: str = ""


@dataclass
class Persona:
    name: str
    email: str
    user_id: uuid.UUID
    organisation_id: uuid.UUID
    organisation: str
    kind: str


@dataclass
class SetUp:
    seconds: float
    demo_seconds: float
    departement_communes: int
    grantees: int
    conventions_created: int
    personas: dict[str, Persona] = field(default_factory=dict)
    analyzed: bool = False


def plan_grantees(
    communes: Sequence[str], associations: int, ccas: int, heavy_conventions: int
) -> list[Grantee]:
    free = [c for c in communes if c not in DEMO_CCAS_COMMUNES]
    if ccas > len(free):
        raise RuntimeError(f"--ccas {ccas}: only {len(free)} communes without a demo CCAS")
    grantees: list[Grantee] = []
    for i in range(associations):
        window = [
            communes[(i * ASSOCIATION_COMMUNES + k) % len(communes)]
            for k in range(ASSOCIATION_COMMUNES)
        ]
        grantees.append(
            Grantee(
                name=f"Association bench {i + 1:03d}",
                kind="association",
                place={"service_area": {"departements": [DEMO_DEPARTEMENT]}},
                admin=f"admin.association-{i + 1:03d}@bench.demo",
                conventions=[
                    {
                        "reference": f"BENCH-ASSO-{i + 1:03d}",
                        "competences": ["fsl", "faj"],
                        "communes": sorted(set(window)),
                    }
                ],
            )
        )
    for code in free[:ccas]:
        grantees.append(
            Grantee(
                name=f"CCAS bench {code}",
                kind="ccas",
                place={"commune": code},
                admin=f"admin.ccas-{code}@bench.demo",
                conventions=[
                    {
                        "reference": f"BENCH-CCAS-{code}",
                        "competences": ["rsa", "insertion"],
                        "communes": [code],
                    }
                ],
            )
        )
    grantees.append(
        Grantee(
            name="Association bench multi-conventions",
            kind="association",
            place={"service_area": {"departements": [DEMO_DEPARTEMENT]}},
            admin=DELEGATE_ADMIN,
            conventions=[
                {
                    "reference": f"BENCH-DELEGATE-{n + 1:03d}",
                    "competences": list(HEAVY_COMPETENCES[n % len(HEAVY_COMPETENCES)]),
                    "communes": "all",
                }
                for n in range(heavy_conventions)
            ],
        )
    )
    return grantees


async def _set_up(
    base_url: str,
    database_url: str,
    password: str,
    platform_admin: str,
    args: argparse.Namespace,
) -> SetUp:
    started = time.monotonic()
    api = Api(base_url, password)
    try:
        communes = [
            c["code"]
            for c in await api.pages(
                "/v1/territories/communes", None, {"departement": DEMO_DEPARTEMENT, "limit": 200}
            )
        ]
        grantees = plan_grantees(communes, args.associations, args.ccas, args.heavy_conventions)
        print(
            f"set-up: {len(communes)} communes in {DEMO_DEPARTEMENT}; creating "
            f"{len(grantees)} organisations and their admins",
            file=sys.stderr,
        )

        async def create(grantee: Grantee) -> None:
            created = await api.call(
                "POST",
                "/v1/organisations",
                platform_admin,
                expected=(201,),
                json={"name": grantee.name, "kind": grantee.kind, **grantee.place},
            )
            grantee.id = str(created["id"])
            await api.call(
                "POST",
                f"/v1/organisations/{grantee.id}/members",
                platform_admin,
                expected=(201,),
                json={
                    "email": grantee.admin,
                    "full_name": grantee.admin.split("@")[0],
                    "roles": ["admin"],
                    "password": password,
                },
            )

        await api.token(platform_admin)
        await _bounded([partial(create, g) for g in grantees], SETUP_CONCURRENCY)
        if args.analyze:  # statistics for the scope builds of the accepts below
            await _analyze(database_url)

        proposals = [(g, body) for g in grantees for body in g.conventions]
        print(f"set-up: proposing {len(proposals)} conventions", file=sys.stderr)
        await api.token(DEPARTEMENT_ADMIN)

        async def propose(grantee: Grantee, body: dict[str, Any]) -> str:
            created = await api.call(
                "POST",
                "/v1/conventions",
                DEPARTEMENT_ADMIN,
                expected=(201,),
                json={
                    **body,
                    "grantee_id": grantee.id,
                    "data_categories": DATA_CATEGORIES,
                    "valid_from": VALID_FROM,
                },
            )
            if created.get("status") != "proposed":
                raise ServiceError(f"convention {body['reference']} created as {created}")
            return str(created["id"])

        ids = await _bounded([partial(propose, g, b) for g, b in proposals], SETUP_CONCURRENCY)
        by_grantee: dict[str, list[str]] = {}
        for (grantee, _body), conv_id in zip(proposals, ids, strict=True):
            by_grantee.setdefault(grantee.admin, []).append(conv_id)

        print(f"set-up: accepting them as {len(by_grantee)} grantee admins", file=sys.stderr)

        async def accept(admin: str, conv_ids: list[str]) -> None:
            for conv_id in conv_ids:
                done = await api.call("POST", f"/v1/conventions/{conv_id}/accept", admin, json={})
                if done.get("status") != "active":
                    raise ServiceError(f"convention {conv_id} accepted as {done}")

        await _bounded([partial(accept, a, c) for a, c in by_grantee.items()], SETUP_CONCURRENCY)
        return SetUp(
            seconds=time.monotonic() - started,
            demo_seconds=0.0,
            departement_communes=len(communes),
            grantees=len(grantees),
            conventions_created=len(proposals),
        )
    finally:
        await api.aclose()


async def _personas(base_url: str, password: str) -> dict[str, Persona]:
    """Who each persona is, from ``GET /v1/me`` (checks the answer too)."""
    api = Api(base_url, password)
    personas: dict[str, Persona] = {}
    try:
        for name, email in (
            (PERSONA_DEPARTEMENT, DEPARTEMENT_AGENT),
            (PERSONA_DELEGATE, DELEGATE_ADMIN),
        ):
            me = await api.call("GET", "/v1/me", email)
            if me.get("email") != email or me.get("kind") != "user":
                raise ServiceError(f"GET /v1/me as {email} answered {me}")
            personas[name] = Persona(
                name=name,
                email=email,
                user_id=uuid.UUID(me["id"]),
                organisation_id=uuid.UUID(me["organisation"]["id"]),
                organisation=str(me["organisation"]["name"]),
                kind=str(me["organisation"]["kind"]),
            )
    finally:
        await api.aclose()
    return personas


async def _fresh_tokens(base_url: str, password: str, personas: Sequence[Persona]) -> list[str]:
    api = Api(base_url, password)
    try:
        return [await api.sign_in(p.email) for p in personas]
    finally:
        await api.aclose()


async def _analyze(url: str) -> str:
    """ANALYZE the bench database (as autovacuum would in time); the server's autovacuum."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute("ANALYZE")
        return str(await conn.fetchval("SHOW autovacuum"))
    finally:
        await conn.close()


def _settle(service: Service) -> None:
    waited = service.wait_idle()
    if waited > 2:
        print(f"  (service busy {waited:.0f} s after the run)", file=sys.stderr)


# --------------------------------------------------------------------------- data size


@dataclass
class HoldingsSize:
    territory: int
    law_competences: int
    delegated_rows: int
    delegated_pairs: int  # distinct (competence, commune)
    conventions_in_force: int

    @property
    def rows(self) -> int:
        """Rows the holdings query returns: one (territory, law competences and grants as
        arrays)."""
        return 1


@dataclass
class DataSize:
    organisations: int
    organisations_by_kind: dict[str, int]
    users: int
    conventions: int
    active_conventions: int
    conventions_from_departement: int
    holdings: dict[str, HoldingsSize]


# --------------------------------------------------------------------------- scope cost


@dataclass
class Timing:
    label: str
    client: str  # "asyncpg" | "sqlalchemy"
    persona: str | None
    runs: int
    median_ms: float
    p95_ms: float
    ratio: float | None = None  # to SELECT 1 of the same client


async def _time(
    runs: int, budget: float, job: Callable[[], Awaitable[object]]
) -> tuple[int, float, float]:
    """Runs done (``runs``, fewer if ``budget`` seconds ran out), median and p95 in ms."""
    warm_until = time.monotonic() + budget / 10
    for n in range(QUERY_WARMUP_RUNS):
        await job()
        if n and time.monotonic() > warm_until:
            break
    samples: list[float] = []
    deadline = time.monotonic() + budget
    while len(samples) < runs and (len(samples) < 10 or time.monotonic() < deadline):
        t0 = time.perf_counter()
        await job()
        samples.append(time.perf_counter() - t0)
    samples.sort()
    return len(samples), statistics.median(samples) * 1000, percentile(samples, 95) * 1000


async def _measure_in_process(
    database_url: str, personas: dict[str, Persona], runs: int, budget: float
) -> tuple[str, DataSize, list[Timing]]:
    """Data size, then the timings, as the service's runtime role (row-level security on)."""
    from api.auth.builder import build_scope
    from api.auth.principals import PrincipalStore
    from api.auth.tokens import AccessClaims
    from api.db.engine import Database
    from api.domain import clock
    from api.settings import Settings

    settings = Settings(database_url=database_url)
    database = Database.connect(settings)  # the runtime role's engine, as the service makes it
    role = settings.app_role
    runtime_url = plain_url(database.app_engine.url.render_as_string(hide_password=False))
    captured: dict[str, tuple[str, tuple[Any, ...]]] = {}

    def capture(
        _conn: object, _cursor: object, statement: str, parameters: Any, *_rest: object
    ) -> None:
        if "convention_grants" in statement:
            captured["holdings"] = (statement, tuple(parameters))

    event.listen(database.app_engine.sync_engine, "before_cursor_execute", capture)
    owner = await asyncpg.connect(plain_url(database_url))
    raw = await asyncpg.connect(runtime_url)
    timings: list[Timing] = []
    limits = (runs, budget)
    try:
        today = clock.today()
        statements: dict[str, tuple[str, tuple[Any, ...]]] = {}
        sizes: dict[str, HoldingsSize] = {}
        for name, persona in personas.items():
            async with database.sessionmaker() as session, session.begin():
                rows = await PrincipalStore(session).holdings(persona.organisation_id, today)
            statements[name] = captured.pop("holdings")
            conventions = await owner.fetchval(
                "SELECT count(DISTINCT convention_id) FROM convention_holdings($1, NULL, NULL, $2)",
                persona.organisation_id,
                today,
            )
            sizes[name] = HoldingsSize(
                territory=len(rows.territory),
                law_competences=len(rows.law_competences),
                delegated_rows=len(rows.grants),
                delegated_pairs=len({(c, x) for _, cs, xs in rows.grants for c in cs for x in xs}),
                conventions_in_force=int(conventions),
            )
            # the same statement through asyncpg must give the same rows
            replay = await raw.fetch(statements[name][0], *statements[name][1])
            if len(replay) != sizes[name].rows:
                raise RuntimeError(
                    f"holdings of {name}: {len(replay)} rows through asyncpg, "
                    f"{sizes[name].rows} through PrincipalStore"
                )
        size = await _data_size(owner, personas[PERSONA_DEPARTEMENT].organisation_id, sizes)

        async def asyncpg_select_1() -> object:
            return await raw.fetchval("SELECT 1")

        async def sqlalchemy_select_1() -> object:
            async with database.sessionmaker() as session, session.begin():
                return (await session.execute(text("SELECT 1"))).scalar_one()

        base_raw = await _timing("SELECT 1", "asyncpg", None, limits, asyncpg_select_1)
        base_sa = await _timing(
            "SELECT 1 (session + transaction)", "sqlalchemy", None, limits, sqlalchemy_select_1
        )
        timings += [base_raw, base_sa]
        for name, persona in personas.items():
            statement, parameters = statements[name]
            claims = profile_claims(settings, persona.user_id, persona.organisation_id)

            async def holdings_raw(s: str = statement, p: tuple[Any, ...] = parameters) -> object:
                return await raw.fetch(s, *p)

            async def holdings_store(org: uuid.UUID = persona.organisation_id) -> object:
                async with database.sessionmaker() as session, session.begin():
                    return await PrincipalStore(session).holdings(org, clock.today())

            async def scope(c: AccessClaims = claims) -> object:
                async with database.sessionmaker() as session, session.begin():
                    return await build_scope(session, c)

            count = sizes[name].rows
            timings.append(
                await _timing(
                    f"holdings query ({count} rows)", "asyncpg", name, limits, holdings_raw
                )
            )
            timings.append(
                await _timing(
                    "PrincipalStore.holdings (session + transaction)",
                    "sqlalchemy",
                    name,
                    limits,
                    holdings_store,
                )
            )
            timings.append(
                await _timing(
                    "build_scope (session + transaction)", "sqlalchemy", name, limits, scope
                )
            )
        for t in timings:
            base = base_raw if t.client == "asyncpg" else base_sa
            t.ratio = t.median_ms / base.median_ms if base.median_ms else None
    finally:
        await raw.close()
        await owner.close()
        await database.dispose()
    return role, size, timings


async def _timing(
    label: str,
    client: str,
    persona: str | None,
    limits: tuple[int, float],
    job: Callable[[], Awaitable[object]],
) -> Timing:
    print(f"in process: {label}{f', {persona}' if persona else ''}", file=sys.stderr)
    runs, median, p95 = await _time(*limits, job)
    return Timing(label, client, persona, runs, median, p95)


async def _data_size(
    owner: asyncpg.Connection, departement_id: uuid.UUID, holdings: dict[str, HoldingsSize]
) -> DataSize:
    kinds = await owner.fetch(
        "SELECT kind::text AS kind, count(*) AS n FROM organisation GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    conventions = await owner.fetchrow(
        "SELECT count(*) AS total, count(*) FILTER (WHERE status = 'active') AS active, "
        "count(*) FILTER (WHERE grantor_id = $1) AS from_departement FROM convention",
        departement_id,
    )
    assert conventions is not None
    return DataSize(
        organisations=sum(int(r["n"]) for r in kinds),
        organisations_by_kind={str(r["kind"]): int(r["n"]) for r in kinds},
        users=int(await owner.fetchval("SELECT count(*) FROM app_user")),
        conventions=int(conventions["total"]),
        active_conventions=int(conventions["active"]),
        conventions_from_departement=int(conventions["from_departement"]),
        holdings=holdings,
    )


# --------------------------------------------------------------------------- output


def render_timings(timings: Sequence[Timing]) -> str:
    header = (
        f"{'client':<11}{'persona':<13}{'what':<50}{'runs':>6}{'median ms':>10}{'p95 ms':>9}"
        f"{'ratio':>9}"
    )
    lines = [header, "-" * len(header)]
    for t in timings:
        ratio = f"{t.ratio:.1f}" if t.ratio is not None else "-"
        lines.append(
            f"{t.client:<11}{t.persona or '-':<13}{t.label:<50}{t.runs:>6}"
            f"{t.median_ms:>10.3f}{t.p95_ms:>9.3f}{ratio:>9}"
        )
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    generator: LoadGenerator,
    labels: dict[str, str],
    setup: SetUp,
    size: DataSize,
    role: str,
    results: Sequence[Result],
    timings: Sequence[Timing],
    problems: Sequence[str],
) -> None:
    host = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kinds = ", ".join(f"{n} {k}" for k, n in size.organisations_by_kind.items())
    print()
    print(
        f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}, "
        f"PostgreSQL {labels['postgres']}"
    )
    print(f"database: {labels['database']}; code: {labels['code']}")
    print(
        f"load: {generator.name}, {args.concurrency} connections, {args.workers} uvicorn "
        f"worker(s), {WARMUP_SECONDS:.0f} s warm-up + {args.duration:g} s per scenario"
    )
    print(
        f"set-up: guichet demo {setup.demo_seconds:.0f} s, then {setup.grantees} organisations "
        f"and {setup.conventions_created} conventions through the API in {setup.seconds:.0f} s; "
        + (
            f"then ANALYZE (server autovacuum: {labels['autovacuum']})"
            if setup.analyzed
            else "no ANALYZE (--no-analyze)"
        )
    )
    print(
        f"data: {labels['communes']} communes; {size.organisations} organisations ({kinds}); "
        f"{size.users} users; {size.conventions} conventions, {size.active_conventions} active, "
        f"{size.conventions_from_departement} granted by the département "
        f"({setup.departement_communes} communes)"
    )
    for name, persona in setup.personas.items():
        h = size.holdings[name]
        print(
            f"persona {name}: {persona.email}, {persona.organisation} ({persona.kind}): "
            f"territory {h.territory} communes, law competences {h.law_competences}, "
            f"{h.delegated_rows} convention grants ({h.delegated_pairs} distinct competence x "
            f"commune) from {h.conventions_in_force} conventions in force; "
            f"holdings query {h.rows} rows"
        )
    print(f"ratios are to '{BASELINE}' of this run (shared, noisy machine: compare ratios)")
    print()
    print(render_table(results))
    for r in results:
        if r.errors:
            print(f"! {r.scenario}: {r.errors} error(s); statuses {r.statuses}")
        if not r.requests:
            print(
                f"! {r.scenario}: no answer within the {args.duration:g} s run at "
                f"{args.concurrency} connections (latency above the run, or wrk's 10 s timeout)"
            )
    print()
    print(
        f"scope building in process (no HTTP), runtime role {role}, service idle; up to "
        f"{args.query_runs} runs or {args.query_budget:g} s per line after "
        f"{QUERY_WARMUP_RUNS} warm-up runs; ratio: median / median of SELECT 1 of the same client"
    )
    print(render_timings(timings))
    save_results(
        args,
        stamp,
        labels=labels,
        machine={**host, "postgres": labels["postgres"]},
        load_generator=generator.name,
        problems=problems,
        config={
            "baseline": BASELINE,
            "associations": args.associations,
            "ccas": args.ccas,
            "heavy_conventions": args.heavy_conventions,
            "query_runs": args.query_runs,
            "query_budget_s": args.query_budget,
        },
        sections={
            "setup": {
                **{k: v for k, v in asdict(setup).items() if k != "personas"},
                "personas": {k: asdict(p) for k, p in setup.personas.items()},
            },
            "data": {"communes": int(labels["communes"]), **asdict(size)},
            "results": [asdict(r) for r in results],
            "scope_timings": {"role": role, "items": [asdict(t) for t in timings]},
        },
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scope",
        description="Throughput of authenticated GET /v1/me (scope with a département's "
        "holdings and many conventions) as a ratio of /healthz in the same run, and the cost "
        "of building the scope measured in process. Uses a fresh throw-away database.",
    )
    parser.add_argument(
        "--associations",
        type=int,
        default=150,
        help=f"grantee associations, one convention each (fsl+faj on {ASSOCIATION_COMMUNES} "
        "communes) (150)",
    )
    parser.add_argument(
        "--ccas",
        type=int,
        default=150,
        help="grantee CCAS on distinct communes, one convention each (rsa+insertion) (150)",
    )
    parser.add_argument(
        "--heavy-conventions",
        type=int,
        default=50,
        help="conventions (two competences each, over all the département's communes) given "
        "to the 'delegate' persona's association (50)",
    )
    parser.add_argument(
        "--query-runs", type=int, default=500, help="timed runs per in-process measure (500)"
    )
    parser.add_argument(
        "--query-budget",
        type=float,
        default=60,
        help="seconds per in-process measure: stops earlier than --query-runs past it, "
        "after 10 runs at least (60)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="skip the ANALYZE of the database after the set-up (planner statistics then "
        "depend on autovacuum having run)",
    )
    add_load_options(parser, name="scope", ref=False)
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.query_runs < 1:
        parser.error("--query-runs must be positive")
    if min(args.associations, args.ccas) < 0 or args.heavy_conventions < 1:
        parser.error("--associations and --ccas must be >= 0, --heavy-conventions >= 1")
    return args


def run(args: argparse.Namespace) -> int:
    from api.demo.territory import DEMO_PASSWORD, PLATFORM_ADMIN

    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-scope-"))
    try:
        generator = choose_generator(args.loadgen, args.wrk_threads, workdir)
        print(f"load generator: {generator.name}", file=sys.stderr)
        _source, code_label = service_source(None, workdir)
        env = service_env()
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)  # `guichet demo` then gives the platform admin the demo password
        with fresh_database(env) as database_label:
            url = env["DATABASE_URL"]
            service = Service(env, args.workers, workdir / "service.log", ROOT)
            try:
                ready_after = service.wait_ready(args.startup_timeout)
                print(f"service ready after {ready_after:.1f} s; guichet demo", file=sys.stderr)
                demo_seconds = run_demo(env, ROOT, args.startup_timeout)
                setup = asyncio.run(
                    _set_up(service.base_url, url, DEMO_PASSWORD, PLATFORM_ADMIN, args)
                )
                setup.demo_seconds = demo_seconds
                setup.personas = asyncio.run(_personas(service.base_url, DEMO_PASSWORD))
                autovacuum = asyncio.run(_analyze(url)) if args.analyze else "not run"
                setup.analyzed = args.analyze
                facts = database_facts(url)
                personas = [setup.personas[PERSONA_DEPARTEMENT], setup.personas[PERSONA_DELEGATE]]
                tokens = asyncio.run(_fresh_tokens(service.base_url, DEMO_PASSWORD, personas))
                ctx = Context(
                    service.base_url,
                    url,
                    facts.commune_codes,
                    tokens={p.name: t for p, t in zip(personas, tokens, strict=True)},
                )
                results = measure_scenarios(
                    generator,
                    ctx,
                    SCOPE_SCENARIOS,
                    seconds=args.duration,
                    concurrency=args.concurrency,
                    settle=lambda: _settle(service),
                )
                _settle(service)
                role, size, timings = asyncio.run(
                    _measure_in_process(url, setup.personas, args.query_runs, args.query_budget)
                )
                problems = service.log_problems()
            finally:
                service.stop()
        labels = {
            "postgres": facts.postgres_version,
            "database": database_label,
            "code": code_label,
            "communes": str(facts.communes),
            "autovacuum": autovacuum,
            "service_log": str(service.log_path),
        }
        report(args, generator, labels, setup, size, role, results, timings, problems)
        return 1 if any(r.errors or not r.requests for r in results) else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
