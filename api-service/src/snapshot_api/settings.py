"""API settings: environment variables prefixed ``SNAPSHOT_API_`` (documented in the README)."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, PostgresDsn, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from snapshot_shared.settings import CommonSettings

DEV_JWT_SECRET = "dev-secret-change-me-0123456789abcdef"


class Settings(CommonSettings, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_API_", extra="ignore")

    env: Literal["development", "production", "test"] = "production"
    database_url: PostgresDsn = PostgresDsn("postgresql://postgres@127.0.0.1:5432/snapshots")
    db_pool_min: Annotated[int, Field(ge=1)] = 2
    db_pool_max: Annotated[int, Field(ge=1)] = 10
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8000
    workers: Annotated[int, Field(ge=1)] = os.cpu_count() or 1
    jwt_secret: SecretStr | None = None
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_leeway_seconds: Annotated[int, Field(ge=0, le=300)] = 30
    max_body_bytes: Annotated[int, Field(ge=1024)] = 10 * 2**20
    max_snapshot_messages: Annotated[int, Field(ge=1)] = 20_000
    task_deadline_seconds: Annotated[int, Field(ge=5)] = 600
    gzip_threshold_bytes: Annotated[int, Field(ge=0)] = 64 * 1024
    outbox_poll_seconds: Annotated[float, Field(gt=0)] = 1.0
    status_prefetch: Annotated[int, Field(ge=1)] = 64
    reaper_interval_seconds: Annotated[float, Field(gt=0)] = 5.0

    @model_validator(mode="after")
    def _safe_secret(self) -> Settings:
        if self.jwt_secret is None and self.env == "development":
            self.jwt_secret = SecretStr(DEV_JWT_SECRET)
        elif self.jwt_secret is not None and self.env != "development":
            value = self.jwt_secret.get_secret_value()
            if len(value) < 16 or value == DEV_JWT_SECRET:
                raise ValueError(
                    "SNAPSHOT_API_JWT_SECRET must be at least 16 characters and not the"
                    " development default outside development"
                )
        return self

    @property
    def database_dsn(self) -> str:
        return str(self.database_url)

    @property
    def secret(self) -> str:
        if self.jwt_secret is None:
            raise RuntimeError(
                "SNAPSHOT_API_JWT_SECRET is required outside development"
                " (SNAPSHOT_API_ENV=development allows a built-in one)"
            )
        return self.jwt_secret.get_secret_value()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
