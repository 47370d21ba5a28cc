"""A trusted external OIDC issuer (ProConnect, a Keycloak…): its tokens, verified against its
JWKS served over real HTTP, act as the known user with the same e-mail."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.engine import Database, make_sessionmaker
from api.main import create_app
from api.settings import OidcIssuer, Settings
from tests.auth import forge
from tests.auth.test_external import rsa_jwk
from tests.world import World

ISSUER = "https://idp.example.test/realms/agents"
AUDIENCE = "guichet"


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(idp_key: rsa.RSAPrivateKey) -> Iterator[str]:
    body = json.dumps({"keys": [rsa_jwk(idp_key, "idp-1")]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    server.shutdown()
    server.server_close()


def _token(key: rsa.RSAPrivateKey, email: str, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "x",
        "iat": now,
        "exp": now + 300,
        "email": email,
        "email_verified": True,
        **overrides,
    }
    return forge.rs256({"alg": "RS256", "typ": "JWT", "kid": "idp-1"}, claims, key)


@pytest.fixture
async def oidc_client(
    settings: Settings, connection: AsyncConnection, jwks_url: str, world: World
) -> AsyncIterator[httpx.AsyncClient]:
    configured = settings.model_copy(
        update={"oidc_issuers": [OidcIssuer(issuer=ISSUER, jwks_url=jwks_url, audience=AUDIENCE)]}
    )
    database = Database(
        owner_url=connection.engine.url,
        app_engine=connection.engine,
        sessionmaker=make_sessionmaker(connection, savepoints=True),
    )
    app = create_app(configured, database=database)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        yield c


async def test_external_token_acts_as_the_known_user(
    oidc_client: httpx.AsyncClient, idp_key: rsa.RSAPrivateKey
) -> None:
    token = _token(idp_key, "Agent.CCAS-Amiens@somme.demo")
    r = await oidc_client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.json()["email"] == "agent.ccas-amiens@somme.demo"
    assert r.json()["organisation"]["name"] == "CCAS d'Amiens"


async def test_external_token_of_a_stranger_or_forged_is_refused(
    oidc_client: httpx.AsyncClient, idp_key: rsa.RSAPrivateKey
) -> None:
    stranger = _token(idp_key, "inconnu@ailleurs.fr")
    r = await oidc_client.get("/v1/me", headers={"Authorization": f"Bearer {stranger}"})
    assert r.status_code == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = _token(other_key, "agent.ccas-amiens@somme.demo")
    r = await oidc_client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    wrong_audience = _token(idp_key, "agent.ccas-amiens@somme.demo", aud="another-app")
    r = await oidc_client.get("/v1/me", headers={"Authorization": f"Bearer {wrong_audience}"})
    assert r.status_code == 401
