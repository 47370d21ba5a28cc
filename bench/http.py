"""HTTP load benchmark of the running service, with ratios against a baseline of the same run.

    .venv/bin/python -m bench.http --help

Starts ``guichet serve`` on a free loopback port (against a fresh throw-away database unless
``--database-url`` or ``--embedded`` is given), waits for ``/readyz``, then for each scenario
warms up and measures a closed-loop load with ``wrk`` (or, when wrk is absent, a Python
asyncio + httpx generator). The machine is shared and noisy: read the ratios to the
``healthz`` baseline measured in the same run, not the absolute figures. See bench/README.md.

Adding a scenario is one ``Scenario(...)`` line in ``SCENARIOS``: a name, a description and a
function from the ``Context`` to the request paths (rotated over), optionally headers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
import httpx

if TYPE_CHECKING:
    import uuid

    from api.auth.tokens import AccessClaims
    from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOST = "127.0.0.1"  # traffic goes to the loopback only
BASELINE = "healthz"
WARMUP_SECONDS = 2.0
REQUEST_TIMEOUT_SECONDS = 10
PYTHON_MAX_REQUESTS = 2_000_000  # bound of one Python load run, whatever its duration
COMMUNE_SAMPLE = 1000

# Folded as api.domain.text.fold does: lower-case ASCII words, single spaces.
SEARCH_QUERIES: tuple[str, ...] = (
    "saint etienne",
    "lille",
    "villeneuve",
    "marseille",
    "paris",
    "lyon",
    "toulouse",
    "nantes",
    "strasbourg",
    "montpellier",
    "bordeaux",
    "rennes",
    "saint denis",
    "sainte marie",
    "la roche",
    "chateauneuf",
    "bourg",
    "aix",
    "neuilly",
    "mont",
)


# --------------------------------------------------------------------------- scenarios


@dataclass
class Context:
    """What scenarios may draw their requests from (filled once the service is ready)."""

    base_url: str
    database_url: str
    commune_codes: list[str] = field(default_factory=list)
    #: bearer access tokens by persona name, for authenticated scenarios (bench/scope.py)
    tokens: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    paths: Callable[[Context], Sequence[str]]
    headers: Callable[[Context], Mapping[str, str]] = lambda _ctx: {}
    expected_status: tuple[int, ...] = (200,)


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(BASELINE, "liveness, no database", lambda _ctx: ["/healthz"]),
    Scenario(
        "commune_by_code",
        f"GET a commune by INSEE code, rotating over {COMMUNE_SAMPLE} codes from the database",
        lambda ctx: [f"/v1/territories/communes/{code}" for code in ctx.commune_codes],
    ),
    Scenario(
        "commune_search",
        f"search communes by folded name (limit=20), rotating over {len(SEARCH_QUERIES)} queries",
        lambda _ctx: [f"/v1/territories/communes?q={quote(q)}&limit=20" for q in SEARCH_QUERIES],
    ),
    # authenticated scenarios (GET /v1/me per persona) need set-up data: see bench/scope.py
)
SCENARIOS_BY_NAME = {s.name: s for s in SCENARIOS}


# --------------------------------------------------------------------------- measurements


@dataclass
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    statuses: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @classmethod
    def of(
        cls, latencies: list[float], seconds: float, errors: int, statuses: dict[str, int]
    ) -> Measurement:
        """The figures of a closed-loop run from its latencies (seconds), sorted here."""
        latencies.sort()
        return cls(
            requests=len(latencies),
            seconds=seconds,
            p50_ms=percentile(latencies, 50) * 1000,
            p95_ms=percentile(latencies, 95) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=(latencies[-1] if latencies else 0.0) * 1000,
            socket_errors=errors,
            statuses=statuses,
        )


@dataclass
class Result:
    scenario: str
    description: str
    distinct_paths: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    requests: int
    errors: int
    statuses: dict[str, int]
    rps_ratio: float | None = None
    p50_ratio: float | None = None


def to_result(scenario: Scenario, paths: int, m: Measurement) -> Result:
    unexpected = sum(
        n for code, n in m.statuses.items() if int(code) not in scenario.expected_status
    )
    return Result(
        scenario=scenario.name,
        description=scenario.description,
        distinct_paths=paths,
        rps=m.rps,
        p50_ms=m.p50_ms,
        p95_ms=m.p95_ms,
        p99_ms=m.p99_ms,
        max_ms=m.max_ms,
        requests=m.requests,
        errors=m.socket_errors + unexpected,
        statuses=m.statuses,
    )


# --------------------------------------------------------------------------- load generators

# One Lua state per wrk thread: each reads the paths and headers files given after `--`,
# starts at its own offset and rotates; `done` prints one JSON line the harness parses.
WRK_SCRIPT = r"""
local threads = {}
local paths = {}
local counter = 0
statuses = {}  -- global: done() reads it from each thread

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  for line in io.lines(args[2]) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then wrk.headers[name] = value end
  end
  counter = (id * 7919) % #paths
end

function request()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local all = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for k, v in pairs(counts) do all[k] = (all[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(all) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"socket_errors":%d,"statuses":{%s}}\n',
    summary.requests, summary.duration, math.floor(latency:percentile(50)),
    math.floor(latency:percentile(95)), math.floor(latency:percentile(99)),
    math.floor(latency.max), e.connect + e.read + e.write + e.timeout,
    table.concat(parts, ",")))
end
"""


class LoadGenerator:
    name: str

    def run(
        self,
        base_url: str,
        paths: Sequence[str],
        headers: Mapping[str, str],
        *,
        seconds: float,
        concurrency: int,
    ) -> Measurement:
        raise NotImplementedError


class Wrk(LoadGenerator):
    def __init__(self, executable: str, threads: int, workdir: Path) -> None:
        self.executable = executable
        self.threads = threads
        self.workdir = workdir
        self.script = workdir / "rotate.lua"
        self.script.write_text(WRK_SCRIPT)
        version = subprocess.run(  # noqa: S603 (wrk found on PATH, fixed arguments)
            [executable, "--version"], capture_output=True, text=True, check=False
        )
        first = (version.stdout or version.stderr).splitlines()
        self.name = f"wrk ({first[0].split(' Copyright')[0] if first else executable})"

    def run(
        self,
        base_url: str,
        paths: Sequence[str],
        headers: Mapping[str, str],
        *,
        seconds: float,
        concurrency: int,
    ) -> Measurement:
        paths_file = self.workdir / "paths.txt"
        headers_file = self.workdir / "headers.txt"
        paths_file.write_text("".join(f"{p}\n" for p in paths))
        headers_file.write_text("".join(f"{k}: {v}\n" for k, v in headers.items()))
        threads = max(1, min(self.threads, concurrency))
        command = [
            self.executable,
            f"--threads={threads}",
            f"--connections={concurrency}",
            f"--duration={max(1, round(seconds))}s",
            f"--timeout={REQUEST_TIMEOUT_SECONDS}s",
            f"--script={self.script}",
            base_url,
            "--",
            str(paths_file),
            str(headers_file),
        ]
        done = subprocess.run(  # noqa: S603 (wrk found on PATH, arguments built here)
            command, capture_output=True, text=True, check=False, timeout=seconds + 60
        )
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if done.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
        raw = json.loads(line.removeprefix("BENCH_JSON "))
        return Measurement(
            requests=raw["requests"],
            seconds=raw["duration_us"] / 1e6,
            p50_ms=raw["p50_us"] / 1000,
            p95_ms=raw["p95_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
            socket_errors=raw["socket_errors"],
            statuses={k: int(v) for k, v in sorted(raw["statuses"].items())},
        )


class PythonLoad(LoadGenerator):
    """Closed loop: ``concurrency`` tasks, each sending its next request once the previous one
    is answered, until the time or the request bound is reached. It shares the CPU with the
    service, so its absolute figures are lower than wrk's."""

    name = f"python asyncio + httpx {httpx.__version__}"

    def run(
        self,
        base_url: str,
        paths: Sequence[str],
        headers: Mapping[str, str],
        *,
        seconds: float,
        concurrency: int,
    ) -> Measurement:
        return asyncio.run(self._run(base_url, paths, headers, seconds, concurrency))

    async def _run(
        self,
        base_url: str,
        paths: Sequence[str],
        headers: Mapping[str, str],
        seconds: float,
        concurrency: int,
    ) -> Measurement:
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        errors = 0
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(client: httpx.AsyncClient, offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline and len(latencies) < PYTHON_MAX_REQUESTS:
                path = paths[i % len(paths)]
                i += 1
                t0 = time.perf_counter()
                try:
                    response = await client.get(path)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)
                statuses[str(response.status_code)] += 1

        async with httpx.AsyncClient(
            base_url=base_url,
            headers=dict(headers),
            limits=limits,
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as client:
            await asyncio.gather(*(worker(client, n * 7919) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
        return Measurement.of(latencies, elapsed, errors, dict(sorted(statuses.items())))


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence."""
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def choose_generator(kind: str, wrk_threads: int, workdir: Path) -> LoadGenerator:
    executable = shutil.which("wrk")
    if kind == "wrk" and executable is None:
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install -y wrk)")
    if kind in ("auto", "wrk") and executable is not None:
        return Wrk(executable, wrk_threads, workdir)
    return PythonLoad()


# --------------------------------------------------------------------------- database


def plain_url(url: str) -> str:
    """asyncpg takes postgresql:// URLs, not SQLAlchemy's postgresql+asyncpg://."""
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"guichet_bench_{secrets.token_hex(4)}"
    asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    return name, with_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class DatabaseFacts:
    communes: int
    postgres_version: str
    commune_codes: list[str]


async def _database_facts(url: str, sample: int) -> DatabaseFacts:
    conn = await asyncpg.connect(plain_url(url))
    try:
        communes = await conn.fetchval("SELECT count(*) FROM commune")
        version = await conn.fetchval("SHOW server_version")
        # a spread-out, reproducible sample: ordered by a hash of the code
        rows = await conn.fetch("SELECT code FROM commune ORDER BY md5(code) LIMIT $1", sample)
    finally:
        await conn.close()
    return DatabaseFacts(int(communes), str(version), [r["code"] for r in rows])


def database_facts(url: str) -> DatabaseFacts:
    return asyncio.run(_database_facts(url, COMMUNE_SAMPLE))


def embedded_url(data_dir: Path) -> str:
    """The embedded server's URL, from its postmaster.pid (line 5: socket dir, 4: port)."""
    lines = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()
    port, socket_dir = lines[3].strip(), lines[4].strip()
    if socket_dir:
        return f"postgresql://postgres:@/guichet?host={socket_dir}&port={port}"
    return f"postgresql://postgres@127.0.0.1:{port}/guichet"


def stop_embedded(data_dir: Path) -> None:
    """Stop an embedded postmaster left behind by the service (its handle normally stops it)."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return
    with suppress(ValueError, ProcessLookupError, PermissionError, IndexError):
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # fast shutdown
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)


# --------------------------------------------------------------------------- source


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 (git found on PATH, read-only commands)
        [shutil.which("git") or "git", "-C", str(ROOT), *args], capture_output=True, check=False
    )


def service_source(ref: str | None, workdir: Path) -> tuple[Path, str]:
    """The folder to serve from and its label: the working tree, or ``ref`` exported with
    ``git archive`` (read-only on the repository) to compare revisions or to skip
    uncommitted work in progress."""
    head = _git("rev-parse", "--short", "HEAD").stdout.decode().strip() or "unknown"
    if ref is None:
        changed = bool(_git("status", "--porcelain", "api").stdout)
        state = " + uncommitted changes under api/" if changed else ""
        return ROOT, f"working tree at {head}{state}"
    sha = _git("rev-parse", "--short", f"{ref}^{{commit}}")
    if sha.returncode != 0:
        raise RuntimeError(f"unknown git ref {ref!r}: {sha.stderr.decode().strip()}")
    archive = _git("archive", "--format=tar", ref)
    if archive.returncode != 0:
        raise RuntimeError(f"git archive {ref} failed: {archive.stderr.decode().strip()}")
    target = workdir / "src"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target, f"git {ref} ({sha.stdout.decode().strip()}), exported"


# --------------------------------------------------------------------------- service


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ProcessGroup:
    """A server started in its own process group (Ctrl-C reaches the harness, which stops it
    in order), its output in a log file; its CPU is the whole group's. A subclass sets
    ``base_url`` before starting it."""

    name = "service"
    #: answers 200 once the server serves
    ready_path = "/readyz"
    base_url: str

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path
    ) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(  # noqa: S603 (this interpreter, fixed module)
            [sys.executable, *command],
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the service's process group so far (Linux /proc)."""
        ticks = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[2]) == self.process.pid:  # pgrp: the session leader's pid
                    ticks += int(fields[11]) + int(fields[12])  # utime, stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, timeout: float = 120, interval: float = 0.5) -> float:
        """Wait until the service uses under 10 % of a core over two intervals in a row (the
        requests a load generator left queued are done); seconds waited."""
        started = time.monotonic()
        quiet = 0
        before = self.cpu_seconds()
        while quiet < 2 and time.monotonic() - started < timeout:
            time.sleep(interval)
            now = self.cpu_seconds()
            quiet = quiet + 1 if now - before < 0.1 * interval else 0
            before = now
        return time.monotonic() - started

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds until ``ready_path`` answers 200; an error quoting the log's last lines if
        the server exits or is not ready in ``timeout`` seconds."""
        started = time.monotonic()
        with httpx.Client(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() - started < timeout:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                    )
                with suppress(httpx.HTTPError):
                    if client.get(self.ready_path).status_code == 200:
                        return time.monotonic() - started
                time.sleep(0.3)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def _lines(self) -> list[str]:
        self._log.flush()
        return self.log_path.read_text(errors="replace").splitlines()

    def log_tail(self, lines: int = 5, chars: int = 4000) -> str:
        text = "\n".join(_log_message(line) for line in self._lines()[-lines:])
        return text[-chars:]


class Service(ProcessGroup):
    """``guichet serve``, its output (JSON lines) in a log file."""

    def __init__(self, env: Mapping[str, str], workers: int, log_path: Path, source: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        command = ["-m", "api.cli", "serve", "--host", HOST, "--port", str(self.port)]
        # `-m` puts the working directory first on sys.path: its `api` is the one served
        super().__init__([*command, "--workers", str(workers)], env, log_path, cwd=source)

    def log_problems(self) -> list[str]:
        """Log lines at warning level or above (the service logs JSON lines)."""
        return [
            _log_message(line)
            for line in self._lines()
            if _log_level(line) in ("warning", "error", "critical")
        ]


def _parse_log(line: str) -> dict[str, Any] | None:
    with suppress(ValueError):
        record = json.loads(line)
        if isinstance(record, dict):
            return record
    return None


def _log_level(line: str) -> str:
    record = _parse_log(line)
    if record is not None:
        return str(record.get("level", "")).lower()
    upper = line.upper()
    return "error" if "ERROR" in upper or "TRACEBACK" in upper else "other"


def _log_message(line: str) -> str:
    record = _parse_log(line)
    if record is None:
        return line
    message = f"[{record.get('level')}] {record.get('logger')}: {record.get('message')}"
    exception = str(record.get("exception") or "").strip()
    if exception:  # the traceback's last line: the exception and its message
        message += f" ({exception.splitlines()[-1]})"
    return message


# --------------------------------------------------------------------------- machine, output


def machine() -> dict[str, Any]:
    model = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
    }


def render_table(results: Sequence[Result]) -> str:
    header = (
        f"{'scenario':<18}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'req/s ratio':>13}{'p50 ratio':>11}"
    )
    lines = [header, "-" * len(header)]
    for r in results:
        rps_ratio = f"{r.rps_ratio:.3f}" if r.rps_ratio is not None else "-"
        p50_ratio = f"{r.p50_ratio:.2f}" if r.p50_ratio is not None else "-"
        lines.append(
            f"{r.scenario:<18}{r.rps:>10.1f}{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors:>8}{rps_ratio:>13}{p50_ratio:>11}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


class Interrupted(Exception):
    pass


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Interrupted("SIGTERM")


def save_results(
    args: argparse.Namespace,
    stamp: str,
    *,
    labels: Mapping[str, Any],
    machine: Mapping[str, Any],
    load_generator: str,
    problems: Sequence[str],
    config: Mapping[str, Any],
    sections: Mapping[str, Any],
) -> Path:
    """Say what the service logged as warnings or errors (keeping its log beside the
    results), then write the run's JSON document: machine, code, load shape plus the
    scenario's ``config``, its ``sections``, and the logged problems."""
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{args.name}-{stamp}.json"
    if problems:
        print(f"! service logged {len(problems)} warning/error line(s), by message:")
        for line, n in Counter(problems).most_common(5):
            print(f"  {n} x {line[:400]}")
        kept = out.with_suffix(".service.log")
        shutil.copyfile(labels["service_log"], kept)
        print(f"  (service log kept in {kept.relative_to(ROOT)})")
    document = {
        "name": args.name,
        "timestamp": stamp,
        "machine": dict(machine),
        "database": labels["database"],
        "code": labels["code"],
        "config": {
            "load_generator": load_generator,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "duration_s": args.duration,
            "warmup_s": WARMUP_SECONDS,
            **config,
        },
        **sections,
        "service_log_problems": list(problems[:50]),
    }
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")
    return out


def add_load_options(
    parser: argparse.ArgumentParser, *, name: str, duration: float = 10, ref: bool = True
) -> None:
    """The options every HTTP scenario shares: load shape, load generator, server, output."""
    parser.add_argument(
        "--duration",
        type=float,
        default=duration,
        help=f"measured seconds per scenario ({duration:g})",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=32,
        help="open connections, closed loop (wrk, and the asyncpg baselines) (32)",
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (1)")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk if installed (auto), or force one",
    )
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (1: leaves the cores to the service and PostgreSQL)",
    )
    if ref:
        parser.add_argument(
            "--ref",
            help="serve this git revision (exported with git archive) instead of the work tree",
        )
    parser.add_argument("--name", default=name, help=f"results file prefix ({name})")
    parser.add_argument(
        "--startup-timeout",
        type=float,
        default=300,
        help="seconds to wait for /readyz (migrations and COG load on a fresh database) (300)",
    )


def check_load_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.duration <= 0 or args.concurrency < 1 or args.workers < 1:
        parser.error("--duration, --concurrency and --workers must be positive")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.http",
        description="Load the service over HTTP on 127.0.0.1 and print req/s and latency per "
        f"scenario, with ratios to the '{BASELINE}' baseline measured in the same run.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--database-url",
        help="use this existing database (owner role; not dropped). Default: create "
        f"guichet_bench_<random> on {ADMIN_URL} and drop it at the end",
    )
    where.add_argument(
        "--embedded",
        action="store_true",
        help="use the service's embedded PostgreSQL, in a temporary data dir",
    )
    add_load_options(parser, name="http")
    parser.add_argument(
        "--scenarios",
        default="all",
        help=f"comma list of {', '.join(SCENARIOS_BY_NAME)}, or all (default); "
        f"'{BASELINE}' always runs first as the baseline",
    )
    args = parser.parse_args(argv)
    check_load_options(parser, args)
    if args.scenarios == "all":
        names = list(SCENARIOS_BY_NAME)
    else:
        names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
        unknown = [n for n in names if n not in SCENARIOS_BY_NAME]
        if unknown:
            parser.error(f"unknown scenario(s): {', '.join(unknown)}")
    args.scenario_names = [BASELINE, *(n for n in names if n != BASELINE)]
    return args


def service_env() -> dict[str, str]:
    """This process's environment without its database settings, logging warnings only."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "GUICHET_DATABASE_URL")}
    env["GUICHET_LOG_LEVEL"] = "WARNING"
    return env


@contextmanager
def fresh_database(env: dict[str, str]) -> Iterator[str]:
    """Create ``guichet_bench_<random>``, set ``env["DATABASE_URL"]`` to it, yield its label
    and drop it at the end (also on an error or interruption)."""
    name, url = create_database(ADMIN_URL)
    print(f"created database {name}", file=sys.stderr)
    env["DATABASE_URL"] = url
    try:
        yield f"fresh database {name} (dropped at the end)"
    finally:
        drop_database(ADMIN_URL, name)
        print(f"dropped database {name}", file=sys.stderr)


@contextmanager
def database_for(args: argparse.Namespace, workdir: Path) -> Iterator[tuple[dict[str, str], str]]:
    """The service's environment and a label; creates and drops the throw-away database."""
    env = service_env()
    if args.embedded:
        data_dir = workdir / "data"
        env["GUICHET_DATA_DIR"] = str(data_dir)
        try:
            yield env, f"embedded ({data_dir})"
        finally:
            stop_embedded(data_dir)
    elif args.database_url:
        env["DATABASE_URL"] = args.database_url
        yield env, "given --database-url"
    else:
        with fresh_database(env) as label:
            yield env, label


def measure_scenarios(
    generator: LoadGenerator,
    ctx: Context,
    scenarios: Sequence[Scenario],
    *,
    seconds: float,
    concurrency: int,
    settle: Callable[[], object] | None = None,
) -> list[Result]:
    """Warm up then measure each scenario in turn; ratios to the first one (the baseline).

    ``settle``, if given, runs after every load run (warm-up and measure): e.g.
    :meth:`Service.wait_idle`, so that requests still queued in the service when wrk stops
    are not counted against the next run."""
    results = []
    for scenario in scenarios:
        paths = list(scenario.paths(ctx))
        headers = dict(scenario.headers(ctx))
        if not paths:
            raise RuntimeError(f"scenario {scenario.name} has no request to send")
        print(f"{scenario.name}: warm-up {WARMUP_SECONDS:.0f} s", file=sys.stderr)
        generator.run(ctx.base_url, paths, headers, seconds=WARMUP_SECONDS, concurrency=concurrency)
        if settle is not None:
            settle()
        print(f"{scenario.name}: measuring {seconds:g} s", file=sys.stderr)
        measured = generator.run(
            ctx.base_url, paths, headers, seconds=seconds, concurrency=concurrency
        )
        if settle is not None:
            settle()
        results.append(to_result(scenario, len(paths), measured))
    base = results[0]
    for r in results:
        r.rps_ratio = r.rps / base.rps if base.rps else None
        r.p50_ratio = r.p50_ms / base.p50_ms if base.p50_ms else None
    return results


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-"))
    try:
        generator = choose_generator(args.loadgen, args.wrk_threads, workdir)
        print(f"load generator: {generator.name}", file=sys.stderr)
        source, source_label = service_source(args.ref, workdir)
        print(f"serving: {source_label}", file=sys.stderr)
        with database_for(args, workdir) as (env, database_label):
            service = Service(env, args.workers, workdir / "service.log", source)
            try:
                ready_after = service.wait_ready(args.startup_timeout)
                print(f"service ready after {ready_after:.1f} s", file=sys.stderr)
                url = env.get("DATABASE_URL") or embedded_url(Path(env["GUICHET_DATA_DIR"]))
                facts = database_facts(url)
                ctx = Context(service.base_url, url, facts.commune_codes)
                results = measure_scenarios(
                    generator,
                    ctx,
                    [SCENARIOS_BY_NAME[name] for name in args.scenario_names],
                    seconds=args.duration,
                    concurrency=args.concurrency,
                )
                problems = service.log_problems()
            finally:
                service.stop()
        report(args, generator, source_label, database_label, facts, results, problems)
        return 1 if any(r.errors for r in results) else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def report(
    args: argparse.Namespace,
    generator: LoadGenerator,
    source_label: str,
    database_label: str,
    facts: DatabaseFacts,
    results: Sequence[Result],
    problems: Sequence[str],
) -> None:
    host = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print()
    print(
        f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}, "
        f"PostgreSQL {facts.postgres_version}"
    )
    print(f"data: {facts.communes} communes; database: {database_label}")
    print(f"code: {source_label}")
    print(
        f"load: {generator.name}, {args.concurrency} connections, {args.workers} uvicorn "
        f"worker(s), {WARMUP_SECONDS:.0f} s warm-up + {args.duration:g} s per scenario"
    )
    print(f"ratios are to '{BASELINE}' of this run (shared, noisy machine: compare ratios)")
    print()
    print(render_table(results))
    for r in results:
        if r.errors:
            print(f"! {r.scenario}: {r.errors} error(s); statuses {r.statuses}")
    if problems:
        print(f"! service logged {len(problems)} warning/error line(s); first:")
        for line in problems[:5]:
            print(f"  {line[:300]}")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"{args.name}-{stamp}.json"
    document = {
        "name": args.name,
        "timestamp": stamp,
        "machine": {**host, "postgres": facts.postgres_version},
        "data": {"communes": facts.communes, "database": database_label},
        "code": source_label,
        "config": {
            "load_generator": generator.name,
            "concurrency": args.concurrency,
            "workers": args.workers,
            "duration_s": args.duration,
            "warmup_s": WARMUP_SECONDS,
            "baseline": BASELINE,
        },
        "results": [asdict(r) for r in results],
        "service_log_problems": list(problems[:50]),
    }
    out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {out.relative_to(ROOT)}")


def run_cli(
    parse: Callable[[Sequence[str] | None], argparse.Namespace],
    run_bench: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None = None,
) -> int:
    """Shared entry point of the benches: clean stop on Ctrl-C, SIGTERM or a failed step."""
    args = parse(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return run_bench(args)
    except (KeyboardInterrupt, Interrupted):
        print("\ninterrupted: service stopped, clean-up done", file=sys.stderr)
        return 130
    except RuntimeError as error:
        print(f"error: {error}\n(service stopped, clean-up done)", file=sys.stderr)
        return 2


def run_demo(env: dict[str, str], cwd: Path, timeout: float = 600) -> float:
    """``guichet demo`` against ``env["DATABASE_URL"]`` (migrations, reference data, the Somme
    demo organisations and users), run from ``cwd``; seconds taken."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "demo"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"guichet demo failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}"
        )
    return time.monotonic() - started


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())


def profile_claims(settings: Settings, user: uuid.UUID, organisation: uuid.UUID) -> AccessClaims:
    """The claims of a user's token, for the in-process profiles: the scope is built from the
    database as for a request (roles and scopes come from there); the times are never checked."""
    from api.auth.tokens import AccessClaims

    return AccessClaims(
        sub=str(user),
        kind="user",
        org=organisation,
        roles=(),
        scopes=(),
        jti="bench",
        iat=0,
        nbf=0,
        exp=0,
        iss=settings.jwt_issuer,
        aud=settings.jwt_audience,
    )
