"""`python3 dev.py run` is `guichet serve --demo`: once the server accepts requests it prints,
last and alone, the URL, the demo logins, API client credentials that work (new ones at every
start) and how to get a token."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from api.demo.territory import DEMO_PASSWORD
from api.settings import Settings
from tests.conftest import ROOT, _free_port
from tests.database import create_database, drop_database

pytestmark = pytest.mark.slow  # two start-ups of the real service

CLIENT = re.compile(r"API client (.+?): client_id=(\S+) client_secret=(\S+)")


@pytest.fixture
def own_database(database_url: URL) -> Iterator[URL]:
    """A database of its own: the demo the server loads commits its case files, aids and
    year of activity, which the run's other tests, counting rows, must not see."""
    server = database_url.set(database="postgres")
    url = asyncio.run(create_database(server))
    yield url
    asyncio.run(drop_database(server, str(url.database)))


def serve_demo(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start `guichet serve --demo`; return once its banner is printed, with that stdout."""
    port = _free_port()
    with log.open("ab") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert proc.stdout
        for raw in proc.stdout:
            lines.put(raw.decode())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    _READERS[proc.pid] = reader
    out = ""
    deadline = time.monotonic() + 120
    while "Stop with Ctrl-C." not in out:
        try:
            out += lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            proc.kill()
            raise AssertionError(f"no banner in time:\n{out}\n{log.read_text()[-3000:]}") from None
    out += lines.get(timeout=5)  # the closing rule
    return proc, f"http://127.0.0.1:{port}", out


def test_serve_demo_prints_working_credentials_last_at_every_start(
    own_database: URL, settings: Settings, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env.update(
        DATABASE_URL=own_database.render_as_string(hide_password=False),
        GUICHET_AUTO_MIGRATE="1",
        GUICHET_DATA_DIR=str(settings.data_dir),
        GUICHET_LOG_LEVEL="INFO",
    )
    log = tmp_path / "stderr.log"
    proc, base, first = serve_demo(env, log)
    stop(proc)
    proc, base, second = serve_demo(env, log)
    try:
        for banner in (first, second):
            assert f"Guichet unique serves on {base.rsplit(':', 1)[0]}" in banner
            assert DEMO_PASSWORD in banner
            assert "agent.ccas-amiens@somme.demo" in banner
            assert "/v1/auth/token -d grant_type=password" in banner
            assert "{" not in banner, "a log line among the banner"
            assert len(CLIENT.findall(banner)) == 2
        assert not [line for line in second.splitlines() if line.startswith("{")]
        old = dict((name, (cid, secret)) for name, cid, secret in CLIENT.findall(first))
        for name, client_id, secret in CLIENT.findall(second):
            assert (client_id, secret) != old[name]
            granted = _client_token(base, client_id, secret)
            assert granted.status_code == 200, granted.text
            assert _client_token(base, *old[name]).status_code == 401  # replaced
        login = httpx.post(
            f"{base}/v1/auth/token",
            data={
                "grant_type": "password",
                "username": "agent.ccas-amiens@somme.demo",
                "password": DEMO_PASSWORD,
            },
            timeout=30,
        )
        assert login.status_code == 200, login.text
    finally:
        stop(proc)
    # the log (stderr) holds no line per internal demo call
    logged = log.read_text()
    assert '"uvicorn.error"' in logged
    assert '"route": "/v1/organisations/{organisation_id}/members"' not in logged


_READERS: dict[int, threading.Thread] = {}


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM; then the reader has seen the end of stdout, which can be closed."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    _READERS.pop(proc.pid).join(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def _client_token(base: str, client_id: str, secret: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=30,
    )
