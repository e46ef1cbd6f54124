"""API settings: environment variables prefixed ``SNAPSHOT_API_`` (documented in the README)."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from jwt.algorithms import RSAAlgorithm
from jwt.exceptions import InvalidKeyError
from pydantic import Field, PostgresDsn, PrivateAttr, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from snapshot_shared.settings import CommonSettings, SnapshotLimitSettings

from snapshot_api.jwt_secrets import DEV_JWT_SECRET, secret_problem
from snapshot_api.rate_policy import DEFAULT_RATE_LIMITS, Policies, parse_limits

JwtAlgorithm = Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512"]
MIN_RSA_BITS = 2048
ClaimValue = Annotated[str, Field(min_length=1, max_length=512)]


class Settings(CommonSettings, SnapshotLimitSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_API_", extra="ignore")

    env: Literal["development", "production", "test"] = "production"
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/snapshots")
    db_pool_min: Annotated[int, Field(ge=1)] = 2
    db_pool_max: Annotated[int, Field(ge=1)] = 10
    # Least privilege (README: Security): migrations run with MIGRATE_DATABASE_URL (default:
    # DATABASE_URL); every pooled session switches to DB_ROLE, which migration 0004 creates
    # with only INSERT and SELECT on audit. Empty DB_ROLE keeps the DSN's own role.
    migrate_database_url: PostgresDsn | None = None
    db_role: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$|^$")] = "snapshot_api"
    # Denied attempts per client (address and actor) and window: the first DENIAL_AUDIT_BURST
    # are audited one row each, the rest as one counted entry when the window ends.
    denial_audit_window_seconds: Annotated[float, Field(gt=0)] = 60.0
    denial_audit_burst: Annotated[int, Field(ge=1)] = 50
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = os.cpu_count() or 1
    jwt_secret: SecretStr | None = None
    jwt_algorithm: JwtAlgorithm = "HS256"
    jwt_public_key: str | None = None
    jwt_public_key_file: Path | None = None
    jwt_issuer: ClaimValue | None = None
    jwt_audience: ClaimValue | None = None
    jwt_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    # Input bounds. The per-snapshot limits (max_snapshot_*) come from SnapshotLimitSettings:
    # the shared SNAPSHOT_MAX_SNAPSHOT_*, overridden by SNAPSHOT_API_MAX_SNAPSHOT_*. A request
    # body of 10 MiB holds a full batch of 500 messages of 16 KiB of plain text (8 MiB); bodies
    # that JSON escapes (quotes, backslashes, CR/LF) fit fewer.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 2**20
    task_deadline_seconds: Annotated[int, Field(ge=5)] = 600
    gzip_threshold_bytes: Annotated[int, Field(ge=0)] = 1024
    outbox_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    status_prefetch: Annotated[int, Field(ge=1)] = 64
    reaper_interval_seconds: Annotated[float, Field(gt=0)] = 5.0
    # Messaging reliability: the outbox relay's per-row limits (README: Configuration).
    outbox_max_attempts: Annotated[int, Field(ge=1)] = 10
    outbox_publish_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    outbox_max_message_bytes: Annotated[int, Field(ge=1024)] = 128 * 2**20
    # Fair rendering (README): render jobs of one user published and not yet finished; the
    # user's later jobs wait in the outbox until one finishes. 0: no limit.
    render_jobs_per_user: Annotated[int, Field(ge=0)] = 4
    # Per-user limits on creating rooms, messages, members and snapshots (rate_policy.py,
    # README: Security, Rate limits): `off`, or ACTION=N/UNIT entries replacing the defaults.
    rate_limits: str = DEFAULT_RATE_LIMITS
    # Webhooks (README: Webhooks). ALLOWED_HOSTS: comma-separated host names, "*.example.com"
    # for a domain's subdomains; empty allows any host that resolves to a public address.
    # ALLOW_LOOPBACK lets callbacks reach 127.0.0.1/::1 (development and tests only).
    webhook_allowed_hosts: str = ""
    webhook_allow_loopback: bool = False
    webhook_max_attempts: Annotated[int, Field(ge=1, le=100)] = 12
    webhook_retry_seconds: Annotated[float, Field(gt=0)] = 86400.0
    webhook_backoff_seconds: Annotated[float, Field(gt=0)] = 5.0
    webhook_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 15.0
    webhook_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    webhook_concurrency: Annotated[int, Field(ge=1, le=256)] = 16
    # Live progress (GET /api/v1/tasks/{id}/events): a comment line every HEARTBEAT seconds
    # keeps proxies from closing an idle stream; STREAMS_PER_USER bounds one user's open
    # streams in each API worker process (over it: 429).
    sse_heartbeat_seconds: Annotated[float, Field(gt=0, le=300)] = 15.0
    sse_streams_per_user: Annotated[int, Field(ge=1)] = 10

    _public_key: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _valid_rate_limits(self) -> Settings:
        try:
            parse_limits(self.rate_limits)
        except ValueError as exc:
            raise ValueError(f"SNAPSHOT_API_RATE_LIMITS: {exc}") from None
        return self

    @property
    def rate_policies(self) -> Policies | None:
        """Every action's default limit, or ``None`` when rate limiting is off."""
        return parse_limits(self.rate_limits)

    @property
    def asymmetric(self) -> bool:
        """True when tokens are verified with an RSA public key (RS256/384/512)."""
        return self.jwt_algorithm.startswith("RS")

    @model_validator(mode="after")
    def _safe_keys(self) -> Settings:
        if self.asymmetric:
            self._public_key = _load_public_key(self.jwt_public_key, self.jwt_public_key_file)
            return self
        if self.jwt_public_key is not None or self.jwt_public_key_file is not None:
            raise ValueError(
                f"SNAPSHOT_API_JWT_PUBLIC_KEY(_FILE) needs SNAPSHOT_API_JWT_ALGORITHM=RS256,"
                f" RS384 or RS512 (it is {self.jwt_algorithm})"
            )
        if self.jwt_secret is None and self.env == "development":
            self.jwt_secret = SecretStr(DEV_JWT_SECRET)
        elif self.jwt_secret is not None and self.env != "development":
            problem = secret_problem(self.jwt_secret.get_secret_value(), self.jwt_algorithm)
            if problem is not None:
                raise ValueError(problem)
        return self

    @property
    def webhook_hosts(self) -> tuple[str, ...]:
        """``webhook_allowed_hosts`` as lower-case names (empty: any public host)."""
        hosts = (h.strip().lower().rstrip(".") for h in self.webhook_allowed_hosts.split(","))
        return tuple(h for h in hosts if h)

    @property
    def database_dsn(self) -> str:
        return str(self.database_url)

    @property
    def migrate_dsn(self) -> str:
        return str(self.migrate_database_url or self.database_url)

    @property
    def secret(self) -> str:
        """The HS* signing secret (``make token``, tests); RS* deployments have none."""
        if self.asymmetric:
            raise RuntimeError(
                f"SNAPSHOT_API_JWT_ALGORITHM={self.jwt_algorithm}: the API holds only the public"
                " key and cannot sign tokens; your identity provider issues them"
            )
        if self.jwt_secret is None:
            raise RuntimeError(
                "SNAPSHOT_API_JWT_SECRET is required outside development"
                " (SNAPSHOT_API_ENV=development allows a built-in one)"
            )
        return self.jwt_secret.get_secret_value()

    @property
    def verification_key(self) -> Any:
        """What verifies a token's signature: the RSA public key, or the HS* secret."""
        return self._public_key if self.asymmetric else self.secret


def _load_public_key(inline: str | None, path: Path | None) -> Any:
    """The RSA public key from PEM text or a PEM file; refuses private keys and non-RSA keys."""
    if (inline is None) == (path is None):
        raise ValueError(
            "RS* algorithms need exactly one of SNAPSHOT_API_JWT_PUBLIC_KEY (PEM text) or"
            " SNAPSHOT_API_JWT_PUBLIC_KEY_FILE (path to a PEM file)"
        )
    try:
        pem = inline if inline is not None else Path(path or "").read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"SNAPSHOT_API_JWT_PUBLIC_KEY_FILE cannot be read: {exc}") from exc
    if "PRIVATE KEY" in pem:
        raise ValueError("SNAPSHOT_API_JWT_PUBLIC_KEY must be a public key, not a private key")
    try:
        key = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(pem.replace("\\n", "\n").strip())
    except (InvalidKeyError, ValueError, TypeError) as exc:
        raise ValueError("SNAPSHOT_API_JWT_PUBLIC_KEY is not a PEM-encoded RSA public key") from exc
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"SNAPSHOT_API_JWT_PUBLIC_KEY must be at least {MIN_RSA_BITS} bits")
    return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
