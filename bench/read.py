"""The scoped person read and ``/v1/me`` against the bare baseline, interleaved, with wrk.

    .venv/bin/python -m bench.read                         # 20 000 people, 3 rounds of 5 s
    .venv/bin/python -m bench.read --database-url postgresql://postgres@127.0.0.1:5432/db
    .venv/bin/python -m bench.read --rounds 5 --duration 8 --workers 2
    .venv/bin/python -m bench.read --compare main          # also serve main, interleaved
    .venv/bin/python -m bench.read --help

Without ``--database-url`` a fresh database is filled by ``bench/dataset.py``'s generator and
dropped at the end; with it, a database that generator filled is reused (give the service's
``GUICHET_NIR_KEY`` it was generated with). Then two services on the same database:

* ``guichet serve`` (``--workers``, one by default);
* ``bench/bare.py``: Starlette + asyncpg, one uvicorn worker, the runtime role, the service's
  pool size, one transaction with two ``set_config`` and a primary-key read;
* ``bench/bare.py --framework fastapi``: the same work written as FastAPI's documentation
  writes it (a ``yield`` dependency for the transaction, validated parameters, a response
  model): the floor under any FastAPI endpoint, the service included.

Each round runs, one after the other, with the same wrk settings (``-t2 -c16`` by default):
``healthz`` (the service, no database), ``bare_read`` (the bare service over the same ids),
``fastapi_read`` (the FastAPI floor over the same ids),
``person_read`` (``GET /v1/beneficiaries/{id}`` as the CCAS d'Amiens agent over 2 000 people
it follows, each read audited) and ``me`` (``GET /v1/me`` as the same agent). Rounds
interleave the scenarios so that the machine's noise falls on all of them alike: read the
ratios of each round (``/bare``), and their median. ``cpu ms/req`` is the CPU time of the
measured service's processes during the run divided by the requests answered; ``db ms/req``
the same for the PostgreSQL backends connected to the database (only the measured service
works on it during a run; read from ``/proc``, so only with the server on this machine,
``-`` otherwise). ``busy`` is the share of all the machine's cores busy during the run
(``/proc/stat``: the services, PostgreSQL, wrk and anything else): a run near 1.0 left no
core for more workers to use, and ``1 / busy`` bounds what they could add. The load average
before each round is printed beside it: the machine's other work shares the cores.

With ``--compare REF`` a third service serves the git revision ``REF`` (exported with ``git
archive``) on the same database, and each round also measures ``person_read_ref`` and
``me_ref`` on it, interleaved with the others: a before/after of the same run. That service
never migrates (``GUICHET_AUTO_MIGRATE=0``): ``REF`` must have the database's revision.

Then, in this process (no load), the service's own application answers a few requests of
each kind one at a time, with SQLAlchemy events counting the round trips to PostgreSQL
(BEGIN, statements, COMMIT) per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.dataset import CCAS_AGENT, Targets, find_targets, generate, new_nir_key, sign_in
from bench.http import (
    HOST,
    RESULTS_DIR,
    ROOT,
    LoadGenerator,
    Measurement,
    ProcessGroup,
    Service,
    choose_generator,
    free_port,
    fresh_database,
    machine,
    run_cli,
    service_env,
    service_source,
)

SCENARIOS = ("healthz", "bare_read", "fastapi_read", "person_read", "me")
SCALED = "person_read_wN"  # the person read on the --compare-workers service
COMPARED = ("person_read_ref", "me_ref")  # on the --compare service
COUNTED_REQUESTS = 5


class BareService(ProcessGroup):
    """``python -m bench.bare`` in its own process group."""

    name = "bare service"
    ready_path = "/healthz"

    def __init__(
        self, env: Mapping[str, str], log_path: Path, framework: str = "starlette"
    ) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        command = ["-m", "bench.bare", "--host", HOST, "--port", str(self.port)]
        super().__init__([*command, "--framework", framework], env, log_path, cwd=ROOT)


@dataclass
class Run:
    round: int
    scenario: str
    rps: float
    p50_ms: float
    p95_ms: float
    requests: int
    errors: int
    cpu_ms_per_request: float
    db_ms_per_request: float | None = None
    ratio_to_bare: float | None = None
    load_average: float | None = None  # the machine's, 1 minute, when the round began
    busy: float | None = None  # share of all the machine's cores busy during the run


def _errors(m: Measurement) -> int:
    return m.socket_errors + sum(n for code, n in m.statuses.items() if code != "200")


class DatabaseCpu:
    """CPU time of the PostgreSQL backends connected to one database, from ``/proc`` (the
    server must run on this machine; :meth:`seconds` is ``None`` otherwise)."""

    def __init__(self, owner_url: str) -> None:
        self.owner_url = owner_url

    async def _backends(self) -> list[int]:
        conn = await asyncpg.connect(self.owner_url)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        return [int(r["pid"]) for r in rows]

    def snapshot(self) -> dict[int, float]:
        ticks: dict[int, float] = {}
        for pid in asyncio.run(self._backends()):
            with suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return ticks

    @staticmethod
    def seconds(before: Mapping[int, float], after: Mapping[int, float]) -> float | None:
        """CPU used between two snapshots (a backend that started meanwhile counts whole)."""
        if not after:
            return None
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def machine_ticks() -> tuple[int, int]:
    """Busy and total clock ticks of all the machine's cores so far (``/proc/stat``)."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    total = sum(fields[:8])  # user … steal (guest time is counted in user already)
    return total - idle, total


def busy_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    elapsed = after[1] - before[1]
    return (after[0] - before[0]) / elapsed if elapsed > 0 else None


@dataclass(frozen=True)
class Measured:
    load: Measurement
    cpu_seconds: float  # the measured server's processes
    db_seconds: float | None  # the PostgreSQL backends on the database
    busy: float | None  # share of all the machine's cores


def measure_once(
    generator: LoadGenerator,
    server: Service | BareService,
    database: DatabaseCpu,
    paths: Sequence[str],
    headers: Mapping[str, str],
    *,
    seconds: float,
    concurrency: int,
) -> Measured:
    """One warm-up second, then ``seconds`` measured; the CPU the server, its database
    backends and the whole machine used meanwhile."""
    generator.run(server.base_url, paths, headers, seconds=1, concurrency=concurrency)
    server.wait_idle(timeout=30)
    db_before = database.snapshot()
    cpu_before = server.cpu_seconds()
    ticks_before = machine_ticks()
    measured = generator.run(
        server.base_url, paths, headers, seconds=seconds, concurrency=concurrency
    )
    busy = busy_share(ticks_before, machine_ticks())
    cpu = server.cpu_seconds() - cpu_before
    db_cpu = DatabaseCpu.seconds(db_before, database.snapshot())
    server.wait_idle(timeout=30)
    return Measured(measured, cpu, db_cpu, busy)


def run_rounds(
    args: argparse.Namespace,
    generator: LoadGenerator,
    service: Service,
    bare: BareService,
    floor: BareService,
    targets: Targets,
    password: str,
    database: DatabaseCpu,
    scaled: Service | None = None,
    compared: Service | None = None,
) -> list[Run]:
    bare_paths = [
        f"/person/{i}?organisation={targets.ccas_id}&principal={targets.ccas_user}"
        for i in targets.read_ids
    ]
    read_paths = [f"/v1/beneficiaries/{i}" for i in targets.read_ids]
    runs: list[Run] = []
    for round_ in range(1, args.rounds + 1):
        token = asyncio.run(sign_in(service.base_url, CCAS_AGENT, password))  # 15-minute tokens
        auth = {"Authorization": f"Bearer {token}"}
        plan: dict[str, tuple[Service | BareService, Sequence[str], Mapping[str, str]]] = {
            "healthz": (service, ["/healthz"], {}),
            "bare_read": (bare, bare_paths, {}),
            "fastapi_read": (floor, bare_paths, {}),
            "person_read": (service, read_paths, auth),
            "me": (service, ["/v1/me"], auth),
        }
        if scaled is not None:
            plan[SCALED] = (scaled, read_paths, auth)
        if compared is not None:
            token = asyncio.run(sign_in(compared.base_url, CCAS_AGENT, password))
            ref_auth = {"Authorization": f"Bearer {token}"}
            plan[COMPARED[0]] = (compared, read_paths, ref_auth)
            plan[COMPARED[1]] = (compared, ["/v1/me"], ref_auth)
        this_round: dict[str, Run] = {}
        load = os.getloadavg()[0]
        for name in plan:
            server, paths, headers = plan[name]
            print(f"round {round_}: {name}", file=sys.stderr)
            got = measure_once(
                generator,
                server,
                database,
                paths,
                headers,
                seconds=args.duration,
                concurrency=args.concurrency,
            )
            m, db_cpu = got.load, got.db_seconds
            this_round[name] = Run(
                round_,
                name,
                m.rps,
                m.p50_ms,
                m.p95_ms,
                m.requests,
                _errors(m),
                got.cpu_seconds * 1000 / m.requests if m.requests else 0.0,
                db_cpu * 1000 / m.requests if m.requests and db_cpu is not None else None,
                load_average=load,
                busy=got.busy,
            )
        base = this_round["bare_read"].rps
        for r in this_round.values():
            r.ratio_to_bare = r.rps / base if base else None
        runs.extend(this_round.values())
    return runs


# --------------------------------------------------------------------------- round trips


async def count_round_trips(targets: Targets, password: str) -> dict[str, float]:
    """Median round trips per request of each kind, counted in this process (the service's
    own application, requests sent one at a time): the statements SQLAlchemy executes (its
    ``before_cursor_execute`` event) and those asyncpg runs itself, its query logger on every
    pooled connection: BEGIN and COMMIT, and what runs on the driver connection
    (api.db.driver). SQLAlchemy's own statements run as asyncpg prepared statements, which
    the logger does not see, so nothing is counted twice."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from api.main import create_app

    trips = 0

    def on_statement(*_args: Any) -> None:
        nonlocal trips
        trips += 1

    def on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.driver_connection.add_query_logger(on_statement)

    event.listen(Engine, "before_cursor_execute", on_statement)
    event.listen(Pool, "connect", on_connect)
    app = create_app()
    counts: dict[str, float] = {}
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                response = await client.post(
                    "/v1/auth/token",
                    data={"grant_type": "password", "username": CCAS_AGENT, "password": password},
                )
                auth = {"Authorization": f"Bearer {response.json()['access_token']}"}
                kinds = {
                    "person_read": [f"/v1/beneficiaries/{i}" for i in targets.read_ids],
                    "me": ["/v1/me"],
                }
                for kind, paths in kinds.items():
                    seen = []
                    for n in range(COUNTED_REQUESTS + 1):
                        trips = 0
                        answer = await client.get(paths[n % len(paths)], headers=auth)
                        if answer.status_code != 200:
                            raise RuntimeError(f"{kind} answered {answer.status_code}")
                        seen.append(trips)
                    counts[kind] = statistics.median(seen[1:])  # the first one warms caches
    finally:
        event.remove(Engine, "before_cursor_execute", on_statement)
        event.remove(Pool, "connect", on_connect)
    return counts


# --------------------------------------------------------------------------- report


def render(runs: Sequence[Run]) -> str:
    header = (
        f"{'round':>5} {'scenario':<16}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}"
        f"{'errors':>8}{'cpu ms/req':>12}{'db ms/req':>11}{'/bare':>8}{'busy':>6}{'load':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in runs:
        ratio = f"{r.ratio_to_bare:.3f}" if r.ratio_to_bare is not None else "-"
        load = f"{r.load_average:.1f}" if r.load_average is not None else "-"
        busy = f"{r.busy:.2f}" if r.busy is not None else "-"
        lines.append(
            f"{r.round:>5} {r.scenario:<16}{r.rps:>9.1f}{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}"
            f"{r.errors:>8}{r.cpu_ms_per_request:>12.2f}{_ms(r.db_ms_per_request):>11}"
            f"{ratio:>8}{busy:>6}{load:>6}"
        )
    lines.append("-" * len(header))
    for name in dict.fromkeys(r.scenario for r in runs):
        mine = [r for r in runs if r.scenario == name]
        ratios = [r.ratio_to_bare for r in mine if r.ratio_to_bare is not None]
        db = [r.db_ms_per_request for r in mine if r.db_ms_per_request is not None]
        shares = [r.busy for r in mine if r.busy is not None]
        lines.append(
            f"{'med':>5} {name:<16}{statistics.median(r.rps for r in mine):>9.1f}"
            f"{statistics.median(r.p50_ms for r in mine):>9.2f}"
            f"{statistics.median(r.p95_ms for r in mine):>9.2f}"
            f"{sum(r.errors for r in mine):>8}"
            f"{statistics.median(r.cpu_ms_per_request for r in mine):>12.2f}"
            f"{_ms(statistics.median(db) if db else None):>11}"
            f"{statistics.median(ratios) if ratios else 0:>8.3f}"
            f"{_share(statistics.median(shares) if shares else None):>6}"
        )
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _ms(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.read", description=__doc__)
    parser.add_argument(
        "--database-url",
        help="a database bench/dataset.py filled (owner URL; kept). Default: generate a fresh "
        "one and drop it. Give GUICHET_NIR_KEY in the environment when reusing one",
    )
    parser.add_argument("--people", type=int, default=20_000, help="people generated (20000)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--duration", type=float, default=5, help="measured s per run (5)")
    parser.add_argument("--concurrency", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--workers", type=int, default=1, help="guichet serve workers (1)")
    parser.add_argument(
        "--compare-workers",
        type=int,
        metavar="N",
        help=f"also serve with N workers and measure the person read there ({SCALED})",
    )
    parser.add_argument(
        "--compare",
        metavar="REF",
        help="also serve this git revision (exported with git archive) on the same database and "
        f"measure {' and '.join(COMPARED)} on it in every round",
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    parser.add_argument(
        "--no-count", dest="count", action="store_false", help="skip the round-trip count"
    )
    parser.add_argument("--name", default="read", help="results file prefix (read)")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration <= 0 or args.concurrency < 1 or args.workers < 1:
        parser.error("--rounds, --duration, --concurrency and --workers must be positive")
    return args


@contextmanager
def database(args: argparse.Namespace, env: dict[str, str]) -> Iterator[str]:
    if args.database_url:
        if "GUICHET_NIR_KEY" not in os.environ:
            raise RuntimeError("give the GUICHET_NIR_KEY the reused database was generated with")
        env["DATABASE_URL"] = args.database_url
        yield "given --database-url (kept)"
        return
    env["GUICHET_NIR_KEY"] = new_nir_key()
    with fresh_database(env) as label:
        gen = generate(env["DATABASE_URL"], args.people, 300, args.seed, env=env, source=ROOT)
        print(f"generated in {gen.seconds:.1f} s", file=sys.stderr)
        yield label


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-read-"))
    generator = choose_generator("wrk", args.wrk_threads, workdir)
    env = service_env()
    from api.demo.territory import DEMO_PASSWORD

    with database(args, env) as label:
        url = env["DATABASE_URL"]
        targets = asyncio.run(find_targets(url, args.seed))
        service = Service(env, args.workers, workdir / "service.log", ROOT)
        bare = BareService(env, workdir / "bare.log")
        floor = BareService(env, workdir / "floor.log", framework="fastapi")
        scaled = compared = None
        compared_label = ""
        try:
            service.wait_ready(300)
            if args.compare_workers:
                scaled = Service(env, args.compare_workers, workdir / "scaled.log", ROOT)
                scaled.wait_ready(300)
            if args.compare:
                source, compared_label = service_source(args.compare, workdir)
                print(f"compared with {compared_label}", file=sys.stderr)
                # never migrates: both services must run on the revision the database has
                compared_env = {**env, "GUICHET_AUTO_MIGRATE": "0"}
                compared = Service(compared_env, args.workers, workdir / "compared.log", source)
                compared.wait_ready(300)
            bare.wait_ready()
            floor.wait_ready()
            runs = run_rounds(
                args,
                generator,
                service,
                bare,
                floor,
                targets,
                DEMO_PASSWORD,
                DatabaseCpu(url),
                scaled,
                compared,
            )
            problems = service.log_problems()
        finally:
            service.stop()
            bare.stop()
            floor.stop()
            if scaled is not None:
                scaled.stop()
            if compared is not None:
                compared.stop()
        trips: dict[str, float] = {}
        if args.count:
            os.environ.update(
                {k: v for k, v in env.items() if k.startswith(("DATABASE", "GUICHET"))}
            )
            os.environ["GUICHET_AUTO_MIGRATE"] = "0"
            trips = asyncio.run(count_round_trips(targets, DEMO_PASSWORD))
    host = machine()
    people = len(targets.read_ids)
    print(
        f"\nmachine: {host['nproc']} CPU ({host['cpu_model']}), PostgreSQL "
        f"{targets.postgres_version}; database: {label}"
    )
    print(
        f"load: {generator.name}, {args.wrk_threads} threads, {args.concurrency} connections, "
        f"{args.workers} service worker(s), 1 bare worker, {args.duration:g} s per run, "
        f"{args.rounds} interleaved rounds; person reads over {people} followed ids"
    )
    if compared_label:
        print(f"{', '.join(COMPARED)}: {compared_label}, same data and load settings")
    print(render(runs))
    ceilings = [1 / r.busy for r in runs if r.scenario == "person_read" and r.busy]
    if ceilings:
        # the same CPU per request spread over more workers: no more than the idle cores allow
        each = ", ".join(f"{c:.2f}" for c in ceilings)
        print(f"person read, most that more workers could serve / 1 worker (1 / busy): {each}")
    if scaled is not None:
        one = [r.rps for r in runs if r.scenario == "person_read"]
        many = [r.rps for r in runs if r.scenario == SCALED]
        each = ", ".join(f"{m / o:.2f}" for o, m in zip(one, many, strict=True) if o)
        print(f"person read, {args.compare_workers} workers / 1 worker, by round: {each}")
    for kind, n in trips.items():
        print(f"round trips per request, {kind}: {n:g}")
    for line in problems[:5]:
        print(f"! service logged: {line[:300]}")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"{args.name}-{stamp}.json"
    document = {
        "machine": host,
        "database": label,
        "config": {k: v for k, v in vars(args).items() if k != "database_url"},
        "runs": [asdict(r) for r in runs],
        "round_trips": trips,
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    return 1 if any(r.errors for r in runs) else 0


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
