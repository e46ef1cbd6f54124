"""An in-process API (real PostgreSQL and RabbitMQ) driven through httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from snapshot_api.auth import issue_token
from snapshot_api.main import create_app
from snapshot_api.settings import Settings

from support.services import AMQP_URL, HIGH_RATE_LIMITS

SECRET = "integration-test-secret-0123456789"


@dataclass
class Api:
    client: httpx.AsyncClient
    settings: Settings
    app: FastAPI

    def auth(self, user: str, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(self.settings, user, admin=admin)}"}

    async def room(self, owner: str = "olivia", name: str = "Design review") -> str:
        r = await self.client.post("/api/v1/rooms", json={"name": name}, headers=self.auth(owner))
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    async def add_member(self, room: str, user: str, role: str, owner: str = "olivia") -> None:
        r = await self.client.put(
            f"/api/v1/rooms/{room}/members/{user}",
            json={"role": role, "display_name": user.title()},
            headers=self.auth(owner),
        )
        assert r.status_code in (200, 201), r.text

    async def post_messages(self, room: str, bodies: list[str], user: str = "olivia") -> list[Any]:
        r = await self.client.post(
            f"/api/v1/rooms/{room}/messages",
            json={"messages": [{"body": b} for b in bodies]},
            headers=self.auth(user),
        )
        assert r.status_code == 201, r.text
        return list(r.json())

    async def snapshot(
        self,
        room: str,
        user: str = "olivia",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        return await self.client.post(
            f"/api/v1/rooms/{room}/snapshots",
            json=body,
            headers={**self.auth(user), **(headers or {})},
        )


def settings_for(database_url: str, prefix: str, store: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "database_url": database_url,
        "queue_prefix": prefix,
        "store_dir": store,
        "amqp_url": AMQP_URL,
        "jwt_secret": SECRET,
        "db_pool_min": 1,
        "db_pool_max": 5,
        "outbox_poll_seconds": 0.2,
        "rate_limits": HIGH_RATE_LIMITS,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def running_api(settings: Settings, wait_for_broker: bool = True) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        if wait_for_broker:
            await asyncio.wait_for(app.state.broker.connected.wait(), timeout=20)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield Api(client, settings, app)
