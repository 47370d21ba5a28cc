"""What the operations endpoints and the proxy headers expose: /metrics only with its token
(or from the loopback when none is set); X-Forwarded-For believed only from the configured
proxies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from typer.testing import CliRunner

from api import cli
from api.settings import get_settings


def _client(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://t")


async def test_metrics_without_a_token_answer_the_loopback_only(app: FastAPI) -> None:
    async with _client(app, "127.0.0.1") as local, _client(app, "203.0.113.5") as remote:
        assert (await local.get("/metrics")).status_code == 200
        assert (await remote.get("/metrics")).status_code == 404


async def test_metrics_with_a_token_require_it_from_everyone(app: FastAPI) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"metrics_token": SecretStr("s3cret-scraper-token")}
    )
    good = {"Authorization": "Bearer s3cret-scraper-token"}
    async with _client(app, "127.0.0.1") as local, _client(app, "203.0.113.5") as remote:
        assert (await local.get("/metrics")).status_code == 404
        assert (
            await remote.get("/metrics", headers={"Authorization": "Bearer no"})
        ).status_code == 404
        assert (await remote.get("/metrics", headers=good)).status_code == 200


@pytest.mark.parametrize(("configured", "believed"), [("", False), ("10.0.0.2", True)])
def test_forwarded_headers_are_believed_only_from_configured_proxies(
    monkeypatch: pytest.MonkeyPatch, configured: str, believed: bool
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(cli.uvicorn, "run", lambda *a, **kw: seen.update(kw))
    # the command configures the process's logging: on this test's captured stderr, which
    # later tests would find closed
    monkeypatch.setattr(cli, "configure_logging", lambda level: None)
    monkeypatch.setenv("GUICHET_TRUSTED_PROXIES", configured)
    get_settings.cache_clear()
    try:
        assert CliRunner().invoke(cli.app, ["serve"]).exit_code == 0
    finally:
        get_settings.cache_clear()
    assert seen["proxy_headers"] is believed
    assert seen["forwarded_allow_ips"] == (configured or None)
