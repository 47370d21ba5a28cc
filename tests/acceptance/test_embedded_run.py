"""The README's run path on a machine with nothing but Python: no DATABASE_URL, so the
service starts its embedded PostgreSQL, migrates, loads the reference data and serves — and
stops that PostgreSQL when it stops, on Ctrl-C as on SIGTERM (a process manager, an IDE)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, _output, start_server, stop_server

pytestmark = pytest.mark.slow  # each test starts a PostgreSQL of its own


def embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("GUICHET_")
    }
    env["GUICHET_DATA_DIR"] = str(data_dir)
    return env


def test_serves_real_geography_on_the_embedded_database(tmp_path: Path) -> None:
    pgdata = tmp_path / "data" / "pg"
    proc, base = start_server(embedded_env(tmp_path / "data"), ROOT, timeout=120)
    postmaster = _postmaster_pid(pgdata)
    try:
        lille = httpx.get(f"{base}/v1/territories/communes/59350", timeout=10).json()
        assert (lille["name"], lille["departement"], lille["epci"]) == ("Lille", "59", "200093201")
        assert lille["population"] > 200_000
        mel = httpx.get(f"{base}/v1/territories/epci/200093201", timeout=10).json()
        assert len(mel["members"]) == 95
        assert len(httpx.get(f"{base}/v1/competences", timeout=10).json()) == 18
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    finally:
        output = stop_server(proc)  # SIGTERM
        stopped = _stopped(postmaster)
        _stop_postgres(pgdata)
    assert stopped, "SIGTERM left the embedded PostgreSQL running"
    assert (pgdata / "PG_VERSION").exists()
    # the access log names routes, never query strings or bodies
    assert '"route": "/v1/territories/communes/{code}"' in output


def test_ctrl_c_stops_the_embedded_server_despite_a_stale_pid(tmp_path: Path) -> None:
    """A process killed without cleaning up stays in pgserver's list of the server's users;
    it must not keep the server alive once the last live user stops."""
    pgdata = tmp_path / "data" / "pg"
    env = embedded_env(tmp_path / "data")
    proc, _ = start_server(env, ROOT, timeout=120)
    proc.kill()  # no clean-up at all: the server stays up, this pid stays listed
    proc.communicate()
    _output(proc)  # closes its log file
    postmaster = _postmaster_pid(pgdata)
    assert proc.pid in json.loads((pgdata / ".handle_pids.json").read_text())
    proc, base = start_server(env, ROOT, timeout=120)
    try:
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
        assert _postmaster_pid(pgdata) == postmaster  # the running server was reused
    finally:
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=30)
        _output(proc)
        stopped = _stopped(postmaster)
        _stop_postgres(pgdata)
    assert stopped, "Ctrl-C left the embedded PostgreSQL running"


def test_sigterm_exits_through_the_exit_handlers() -> None:
    """What makes SIGTERM stop the server: the process exits as on Ctrl-C, running atexit."""
    code = (
        "import atexit, os, signal\n"
        "from api.db.engine import exit_cleanly_on_sigterm\n"
        "exit_cleanly_on_sigterm()\n"
        "atexit.register(print, 'cleaned up', flush=True)\n"
        "os.kill(os.getpid(), signal.SIGTERM)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "cleaned up"
    assert done.returncode == 128 + signal.SIGTERM


def _postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().splitlines()[0])


def _stopped(pid: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


def _stop_postgres(pgdata: Path) -> None:
    """Whatever a test asserted, it leaves nothing running: a fast shutdown of its postmaster."""
    pid_file = pgdata / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGINT)
