"""Hostile load: does an attack on the token endpoint stall everyone else, and does a burst get
quick answers? Figures with and without the attack (and with and without back-pressure) come
from the same run.

    .venv/bin/python -m bench.hostile --help

1. A throw-away database, ``guichet serve`` on it (bench/http.py), ``guichet demo``; a
   person of the demo read by the CCAS of Amiens's agent is the "person read".
2. **Attack**: ``/healthz`` and the person read are measured (p95) at low concurrency, first
   alone, then while wrk keeps ``--attackers`` (100) connections posting wrong passwords to
   ``POST /v1/auth/token`` (a new e-mail each time, so the per-account limit never stops
   them). The per-address limit is raised for the run (``GUICHET_LOGIN_MAX_IP_ATTEMPTS``): all
   the attackers come from 127.0.0.1, and the point is the cost of the argon2 work itself.
3. **Burst**: ``--burst`` (200) connections read the person in a closed loop for a few
   seconds, on a service without back-pressure (``GUICHET_MAX_IN_FLIGHT=0``) and on one with
   the default limit: p50, max and the count of 503 answers.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.http import (
    ROOT,
    Measurement,
    Service,
    Wrk,
    fresh_database,
    run_cli,
    run_demo,
    service_env,
)

AGENT = "agent.ccas-amiens@somme.demo"

ATTACK_SCRIPT = r"""
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
function request()
  counter = counter + 1
  local body = "grant_type=password&username=nobody" .. counter .. "%40bench.demo"
    .. "&password=not-the-password-" .. counter
  return wrk.format(nil, "/v1/auth/token", nil, body)
end
"""


async def _person_path(base_url: str, password: str) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        form = {"grant_type": "password", "username": AGENT, "password": password}
        token = (await client.post("/v1/auth/token", data=form)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        people = await client.get("/v1/beneficiaries", params={"limit": 1}, headers=headers)
        person_id = people.json()["items"][0]["id"]
    return f"/v1/beneficiaries/{person_id}", token


def _row(label: str, m: Measurement) -> str:
    shed = m.statuses.get("503", 0)
    return (
        f"{label:<38} {m.requests:>7} {m.p50_ms:>9.1f} {m.p95_ms:>9.1f} {m.max_ms:>9.1f}"
        f" {shed:>6} {m.socket_errors:>6}"
    )


HEADER = (
    f"{'':<38} {'requests':>7} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9} {'503':>6} {'sockerr':>6}"
)


def _attack_phase(
    args: argparse.Namespace, wrk: Wrk, service: Service, person: str, token: str, workdir: Path
) -> list[str]:
    auth = {"Authorization": f"Bearer {token}"}

    def measure(path: str, headers: dict[str, str]) -> Measurement:
        return wrk.run(
            service.base_url, [path], headers, seconds=args.duration, concurrency=args.readers
        )

    rows = [
        _row("healthz, quiet", measure("/healthz", {})),
        _row("person read, quiet", measure(person, auth)),
    ]
    script = workdir / "attack.lua"
    script.write_text(ATTACK_SCRIPT)
    attack_seconds = 2 * args.duration + 4
    attack = subprocess.Popen(  # noqa: S603 (wrk on PATH, arguments built here)
        [
            wrk.executable,
            "--threads=1",
            f"--connections={args.attackers}",
            f"--duration={round(attack_seconds)}s",
            "--timeout=30s",
            f"--script={script}",
            service.base_url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        time.sleep(2)  # the attack is running at full strength
        rows.append(_row(f"healthz, {args.attackers} wrong logins", measure("/healthz", {})))
        rows.append(_row(f"person read, {args.attackers} wrong logins", measure(person, auth)))
    finally:
        output, _ = attack.communicate(timeout=attack_seconds + 60)
    summary = [ln.strip() for ln in output.splitlines() if "requests in" in ln or "Non-2xx" in ln]
    rows.append(f"attack (wrk): {'; '.join(summary)}")
    return rows


def _burst(args: argparse.Namespace, wrk: Wrk, service: Service, person: str, token: str) -> str:
    m = wrk.run(
        service.base_url,
        [person],
        {"Authorization": f"Bearer {token}"},
        seconds=args.burst_seconds,
        concurrency=args.burst,
    )
    return _row(f"{args.burst} concurrent person reads", m)


def run(args: argparse.Namespace) -> int:
    from api.demo.territory import DEMO_PASSWORD

    executable = shutil.which("wrk")
    if executable is None:
        print("wrk is required (apt install wrk)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-hostile-"))
    lines: list[str] = []
    try:
        wrk = Wrk(executable, 1, workdir)
        env = service_env()
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)
        env["GUICHET_LOGIN_MAX_IP_ATTEMPTS"] = "1000000"
        env["GUICHET_AUTO_MIGRATE"] = "1"
        with fresh_database(env):
            for label, in_flight in (("no back-pressure", "0"), ("back-pressure", None)):
                run_env = dict(env)
                if in_flight is not None:
                    run_env["GUICHET_MAX_IN_FLIGHT"] = in_flight
                service = Service(run_env, 1, workdir / f"service-{in_flight}.log", ROOT)
                try:
                    service.wait_ready(args.startup_timeout)
                    if not lines:
                        run_demo(run_env, ROOT, args.startup_timeout)
                    person, token = asyncio.run(_person_path(service.base_url, DEMO_PASSWORD))
                    if not lines:
                        lines += ["", "attack (one run, same service):", HEADER]
                        lines += _attack_phase(args, wrk, service, person, token, workdir)
                        lines += ["", "burst:", HEADER]
                    lines.append(_burst(args, wrk, service, person, token) + f"  [{label}]")
                finally:
                    service.stop()
        print("\n".join(lines))
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile", description=__doc__)
    parser.add_argument("--duration", type=float, default=8, help="seconds per measure (8)")
    parser.add_argument("--readers", type=int, default=4, help="measuring connections (4)")
    parser.add_argument("--attackers", type=int, default=100, help="wrong-login conns (100)")
    parser.add_argument("--burst", type=int, default=200, help="burst connections (200)")
    parser.add_argument("--burst-seconds", type=float, default=5, help="burst seconds (5)")
    parser.add_argument("--startup-timeout", type=float, default=300)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
