"""Settings both services share, inherited by each service's own ``BaseSettings``.

The names stay flat (``SNAPSHOT_API_AMQP_URL``, ``SNAPSHOT_RENDERER_LOG_FORMAT``) because the
environment names are part of the contract; the fields are defined once, here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyUrl, BaseModel, Field, UrlConstraints
from pydantic_settings import BaseSettings, SettingsConfigDict

from snapshot_shared import limits
from snapshot_shared.limits import SnapshotLimits
from snapshot_shared.topology import Topology

AmqpUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["amqp", "amqps"])]
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class CommonSettings(BaseModel):
    """Broker, queue prefix, PDF store and logging: identical meaning on both sides."""

    amqp_url: AmqpUrl = AnyUrl(DEFAULT_AMQP_URL)
    queue_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]*$", max_length=64)] = ""
    delivery_limit: Annotated[int, Field(ge=1, le=100)] = 5
    store_dir: Path = Path("./var/store")
    # The store's use marks (``snapshot_shared.store``): writable by the API and renderers.
    store_uses_dir: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["console", "json"] = "console"

    @property
    def topology(self) -> Topology:
        return Topology(prefix=self.queue_prefix, delivery_limit=self.delivery_limit)


class SharedSnapshotLimits(BaseSettings):
    """The per-snapshot limits, one setting for both services: ``SNAPSHOT_MAX_SNAPSHOT_MESSAGES``,
    ``SNAPSHOT_MAX_SNAPSHOT_WEIGHT``, ``SNAPSHOT_MAX_SNAPSHOT_MEMBERS`` (defaults:
    ``snapshot_shared.limits``). Set once, the API never accepts a job the renderer refuses."""

    model_config = SettingsConfigDict(env_prefix="SNAPSHOT_", extra="ignore")

    max_snapshot_messages: Annotated[int, Field(ge=1)] = limits.SNAPSHOT_MESSAGES
    max_snapshot_weight: Annotated[int, Field(ge=1)] = limits.SNAPSHOT_WEIGHT
    max_snapshot_members: Annotated[int, Field(ge=1)] = limits.SNAPSHOT_MEMBERS


def shared_limit(name: str) -> int:
    """The shared setting's value of limit ``name`` (read from the environment now)."""
    value: int = getattr(SharedSnapshotLimits(), name)
    return value


class SnapshotLimitSettings(BaseModel):
    """The per-snapshot limits in a service's settings. Each defaults to the shared setting
    (``SharedSnapshotLimits``); the service's own name (``SNAPSHOT_API_MAX_SNAPSHOT_*``,
    ``SNAPSHOT_RENDERER_MAX_SNAPSHOT_*``, the names before the shared one existed) overrides
    it, for compatibility."""

    max_snapshot_messages: Annotated[int, Field(ge=1)] = Field(
        default_factory=lambda: shared_limit("max_snapshot_messages")
    )
    max_snapshot_weight: Annotated[int, Field(ge=1)] = Field(
        default_factory=lambda: shared_limit("max_snapshot_weight")
    )
    max_snapshot_members: Annotated[int, Field(ge=1)] = Field(
        default_factory=lambda: shared_limit("max_snapshot_members")
    )

    @property
    def snapshot_limits(self) -> SnapshotLimits:
        return SnapshotLimits(
            self.max_snapshot_messages, self.max_snapshot_weight, self.max_snapshot_members
        )
