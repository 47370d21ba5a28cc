"""The README's run path on a machine with nothing but Python: no DATABASE_URL, so the
service starts its embedded PostgreSQL, migrates, loads the reference data and serves."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import httpx

from tests.conftest import ROOT, start_server, stop_server


def test_serves_real_geography_on_the_embedded_database(tmp_path: Path) -> None:
    env = {
        k: v for k, v in os.environ.items() if k != "DATABASE_URL" and not k.startswith("GUICHET_")
    }
    env["GUICHET_DATA_DIR"] = str(tmp_path / "data")
    proc, base = start_server(env, ROOT, timeout=120)
    try:
        lille = httpx.get(f"{base}/v1/territories/communes/59350", timeout=10).json()
        assert (lille["name"], lille["departement"], lille["epci"]) == ("Lille", "59", "200093201")
        assert lille["population"] > 200_000
        mel = httpx.get(f"{base}/v1/territories/epci/200093201", timeout=10).json()
        assert len(mel["members"]) == 95
        assert len(httpx.get(f"{base}/v1/competences", timeout=10).json()) == 18
        assert httpx.get(f"{base}/readyz", timeout=10).status_code == 200
    finally:
        output = stop_server(proc)
        _stop_postgres(tmp_path / "data" / "pg")
    assert (tmp_path / "data" / "pg" / "PG_VERSION").exists()
    # the access log names routes, never query strings or bodies
    assert '"route": "/v1/territories/communes/{code}"' in output


def _stop_postgres(data: Path) -> None:
    """The embedded server outlives the service that started it (by design, for the next
    start); a test leaves nothing running: a fast shutdown of its postmaster."""
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGINT)
