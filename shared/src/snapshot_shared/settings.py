"""Settings both services share, inherited by each service's own ``BaseSettings``.

The names stay flat (``SNAPSHOT_API_AMQP_URL``, ``SNAPSHOT_RENDERER_LOG_FORMAT``) because the
environment names are part of the contract; the fields are defined once, here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AnyUrl, BaseModel, Field, UrlConstraints

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
