"""Level 1 over HTTP: an API configured for RS256 with issuer and audience; every protected
endpoint answers a missing or bad token with a 401 problem and a Bearer challenge."""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
import pytest_asyncio
from support.api import running_api, settings_for
from support.jwt_keys import hs256_signed_with, rsa_pem
from support.security import assert_problem

pytestmark = pytest.mark.asyncio(loop_scope="module")
ISSUER, AUDIENCE = "https://id.example.test", "room-snapshots-test"
ID = str(uuid.uuid4())
PROTECTED = [
    ("POST", "/api/v1/rooms"),
    ("GET", f"/api/v1/rooms/{ID}"),
    ("PUT", f"/api/v1/rooms/{ID}/members/someone"),
    ("POST", f"/api/v1/rooms/{ID}/messages"),
    ("GET", f"/api/v1/rooms/{ID}/messages"),
    ("POST", f"/api/v1/rooms/{ID}/snapshots"),
    ("GET", f"/api/v1/rooms/{ID}/snapshots"),
    ("GET", f"/api/v1/snapshots/{ID}"),
    ("DELETE", f"/api/v1/snapshots/{ID}"),
    ("GET", f"/api/v1/snapshots/{ID}/download"),
    ("GET", f"/api/v1/tasks/{ID}"),
    ("GET", f"/api/v1/tasks/{ID}/events"),
    ("GET", "/api/v1/snapshots/metrics/summary"),
    ("GET", "/api/v1/audit"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def env(database_url, queue_prefix, tmp_path_factory):
    private, public = rsa_pem()
    settings = settings_for(
        database_url,
        queue_prefix,
        tmp_path_factory.mktemp("store"),
        jwt_secret=None,
        jwt_algorithm="RS256",
        jwt_public_key=public.decode(),
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
    )
    async with running_api(settings) as api:
        yield api, private, public


def token(private: bytes, **changes) -> str:
    claims = {"sub": "olivia", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    algorithm = changes.pop("algorithm", "RS256")
    return jwt.encode({**claims, **changes}, private, algorithm=algorithm)


async def test_rs256_tokens_from_the_identity_provider_are_accepted(env):
    api, private, _ = env
    headers = {"Authorization": f"Bearer {token(private)}"}
    r = await api.client.post("/api/v1/rooms", json={"name": "RS room"}, headers=headers)
    assert r.status_code == 201 and r.json()["created_by"] == "olivia"
    r = await api.client.get(f"/api/v1/rooms/{r.json()['id']}", headers=headers)
    assert r.status_code == 200 and r.json()["your_role"] == "owner"


async def test_every_protected_endpoint_refuses_bad_tokens_with_a_challenge(env):
    api, private, public = env
    other_private, _ = rsa_pem()
    sent = {
        "alg-none": jwt.encode({"sub": "olivia", "exp": int(time.time()) + 300}, None, "none"),
        "public-key-as-hmac-secret": hs256_signed_with(
            {"sub": "olivia", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300},
            public,
        ),
        "other-private-key": token(other_private),
        "expired": token(private, exp=int(time.time()) - 3600),
        "wrong-issuer": token(private, iss="https://evil.example"),
        "wrong-audience": token(private, aud="another-api"),
        "no-audience": jwt.encode(
            {"sub": "olivia", "iss": ISSUER, "exp": int(time.time()) + 300}, private, "RS256"
        ),
        "malformed": "eyJhbGciOi.nope",
    }
    for method, path in PROTECTED:
        for name, bad in sent.items():
            headers = {"Authorization": f"Bearer {bad}"}
            r = await api.client.request(method, path, json={}, headers=headers)
            problem = assert_problem(r, 401, "unauthorized")
            challenge = r.headers["www-authenticate"]
            assert challenge.startswith('Bearer realm="room-snapshots"'), name
            assert 'error="invalid_token"' in challenge, name
            assert problem["detail"] in ("The token is invalid", "The token has expired")
        for headers in ({}, {"Authorization": "Basic b2xpdmlhOnB3"}, {"Authorization": "Bearer"}):
            r = await api.client.request(method, path, json={}, headers=headers)
            assert_problem(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == 'Bearer realm="room-snapshots"'
