"""Token verification: pinned algorithm (HS256 or RS256), exp/sub required, iss/aud when
configured, leeway; every refusal is a 401 with a Bearer challenge. No services needed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from snapshot_api.auth import decode_token, issue_token
from snapshot_api.errors import Unauthorized
from snapshot_api.settings import Settings
from support.jwt_keys import hs256_signed_with, rsa_pem

SECRET = "unit-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    return rsa_pem()


@pytest.fixture(scope="module")
def other_keys() -> tuple[bytes, bytes]:
    return rsa_pem()


def hs(**values: Any) -> Settings:
    return Settings(env="test", jwt_secret=SECRET, **values)


def rs(public: bytes, **values: Any) -> Settings:
    return Settings(env="test", jwt_algorithm="RS256", jwt_public_key=public.decode(), **values)


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "olivia", "name": "Olivia", "exp": int(time.time()) + 600, **extra}


def refused(token: str, settings: Settings) -> Unauthorized:
    with pytest.raises(Unauthorized) as caught:
        decode_token(token, settings)
    err = caught.value
    assert err.status == 401 and err.code == "unauthorized"
    assert err.headers["WWW-Authenticate"].startswith('Bearer realm="room-snapshots"')
    assert 'error="invalid_token"' in err.headers["WWW-Authenticate"]
    return err


def test_hs256_token_gives_the_user_with_roles() -> None:
    user = decode_token(jwt.encode(claims(roles=["admin"]), SECRET), hs())
    assert (user.id, user.name, user.is_admin) == ("olivia", "Olivia", True)
    assert issue_token(hs(), "vera") and decode_token(issue_token(hs(), "vera"), hs()).id == "vera"


@pytest.mark.parametrize(
    "token",
    [
        jwt.encode(claims(), None, algorithm="none"),
        jwt.encode(claims(), "another-secret-0123456789abcdefgh"),
        jwt.encode(claims(), SECRET, algorithm="HS512"),
        jwt.encode(claims(exp=int(time.time()) - 3600), SECRET),
        jwt.encode({"sub": "olivia"}, SECRET),
        jwt.encode({"exp": int(time.time()) + 600}, SECRET),
        jwt.encode(claims(nbf=int(time.time()) + 3600), SECRET),
        jwt.encode(claims(sub=""), SECRET),
        jwt.encode(claims(sub="x" * 129), SECRET),
        jwt.encode(claims(sub="oli\x00via"), SECRET),
        jwt.encode(claims(sub="oli\nvia"), SECRET),
        jwt.encode(claims(roles="admin"), SECRET),
        jwt.encode(claims(aud="someone-else"), SECRET),
        "not-a-jwt",
        "a.b.c",
        "",
        jwt.encode(claims(pad="x" * 9000), SECRET),
    ],
    ids=[
        "alg-none",
        "wrong-key",
        "other-hs-algorithm",
        "expired",
        "no-exp",
        "no-sub",
        "not-yet-valid",
        "empty-sub",
        "long-sub",
        "nul-in-sub",
        "newline-in-sub",
        "roles-not-a-list",
        "unexpected-audience",
        "malformed",
        "three-garbage-parts",
        "empty",
        "oversized",
    ],
)
def test_bad_hs_tokens_are_refused(token: str) -> None:
    refused(token, hs())


def test_expiry_has_a_small_leeway_only() -> None:
    settings = hs(jwt_leeway_seconds=30)
    recent = jwt.encode(claims(exp=int(time.time()) - 10), SECRET)
    assert decode_token(recent, settings).id == "olivia"
    err = refused(jwt.encode(claims(exp=int(time.time()) - 60), SECRET), settings)
    assert "expired" in err.detail


def test_unusable_name_falls_back_to_the_subject() -> None:
    for name in ("", "   ", "Eve\x1b[31m", 42, "Line\nbreak"):
        assert decode_token(jwt.encode(claims(name=name), SECRET), hs()).name == "olivia"
    long_name = decode_token(jwt.encode(claims(name="N" * 500), SECRET), hs()).name
    assert long_name == "N" * 100


def test_issuer_and_audience_are_required_when_configured() -> None:
    settings = hs(jwt_issuer="https://id.example", jwt_audience="room-snapshots")
    good = claims(iss="https://id.example", aud="room-snapshots")
    assert decode_token(jwt.encode(good, SECRET), settings).id == "olivia"
    assert decode_token(issue_token(settings, "vera"), settings).id == "vera"
    for bad in (
        claims(aud="room-snapshots"),
        claims(iss="https://id.example"),
        {**good, "iss": "https://evil.example"},
        {**good, "aud": "another-service"},
        {**good, "aud": ["another-service"]},
    ):
        refused(jwt.encode(bad, SECRET), settings)
    listed = {**good, "aud": ["another-service", "room-snapshots"]}
    assert decode_token(jwt.encode(listed, SECRET), settings).id == "olivia"


def test_rs256_verifies_with_the_public_key_only(keys, other_keys, tmp_path: Path) -> None:
    private, public = keys
    token = jwt.encode(claims(), private, algorithm="RS256")
    assert decode_token(token, rs(public)).id == "olivia"
    key_file = tmp_path / "jwt.pub.pem"
    key_file.write_bytes(public)
    from_file = Settings(env="test", jwt_algorithm="RS256", jwt_public_key_file=key_file)
    assert decode_token(token, from_file).id == "olivia"
    one_line = public.decode().replace("\n", "\\n")  # a PEM in one environment variable line
    assert decode_token(token, rs(one_line.encode())).id == "olivia"

    settings = rs(public)
    refused(jwt.encode(claims(), other_keys[0], algorithm="RS256"), settings)
    refused(jwt.encode(claims(), private, algorithm="RS512"), settings)
    refused(jwt.encode(claims(), private, algorithm="PS256"), settings)
    refused(jwt.encode(claims(), None, algorithm="none"), settings)
    refused(jwt.encode(claims(), SECRET), settings)
    refused(jwt.encode(claims(exp=int(time.time()) - 3600), private, algorithm="RS256"), settings)
    # Algorithm confusion: an HS256 token "signed" with the public key as the HMAC secret.
    refused(hs256_signed_with(claims(), public), settings)


def test_rs_settings_refuse_unsafe_or_missing_keys(keys, tmp_path: Path) -> None:
    private, public = keys
    bad: list[dict[str, Any]] = [
        {"jwt_algorithm": "RS256"},
        {"jwt_algorithm": "RS256", "jwt_public_key": private.decode()},
        {"jwt_algorithm": "RS256", "jwt_public_key": "not a key"},
        {"jwt_algorithm": "RS256", "jwt_public_key": rsa_pem(1024)[1].decode()},
        {"jwt_algorithm": "RS256", "jwt_public_key_file": tmp_path / "missing.pem"},
        {
            "jwt_algorithm": "RS256",
            "jwt_public_key": public.decode(),
            "jwt_public_key_file": tmp_path / "x.pem",
        },
        {"jwt_algorithm": "HS256", "jwt_secret": SECRET, "jwt_public_key": public.decode()},
        {"jwt_algorithm": "none", "jwt_secret": SECRET},
        {"jwt_algorithm": "ES256", "jwt_secret": SECRET},
        {"jwt_secret": "short"},
    ]
    for values in bad:
        with pytest.raises(ValueError):
            Settings(env="production", **values)
    settings = rs(public)
    with pytest.raises(RuntimeError):
        issue_token(settings, "olivia")  # the API holds no signing key in RS mode
    with pytest.raises(RuntimeError):
        Settings(env="production").verification_key  # noqa: B018 - no key at all
