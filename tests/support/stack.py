"""Both services as real processes (``snapshot-api serve``, ``snapshot-renderer``) on a fresh
database, queue prefix and store, driven over HTTP like a client would."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import jwt
from snapshot_client import Client

from support.services import (
    AMQP_URL,
    HIGH_RATE_LIMITS,
    create_database,
    delete_topology,
    drop_database,
    unique,
)
from support.waiting import until_sync

BIN = Path(sys.executable).parent
SECRET = "e2e-secret-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def end_process(proc: subprocess.Popen[bytes] | None, grace: float) -> None:
    """SIGTERM ``proc``'s process group; SIGKILL it if it is still there after ``grace`` s."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Stack:
    """API + renderer processes; ``stop()`` ends them and drops the database and queues."""

    def __init__(self, workers: int = 2, renderer_env: dict[str, str] | None = None) -> None:
        self.database_url = create_database()
        self.prefix = unique("e") + "."
        self.store = Path(tempfile.mkdtemp(prefix="e2e-store-"))
        self.logs = Path(tempfile.mkdtemp(prefix="e2e-logs-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "SNAPSHOT_API_ENV": "production",
            "SNAPSHOT_API_DATABASE_URL": self.database_url,
            "SNAPSHOT_API_AMQP_URL": AMQP_URL,
            "SNAPSHOT_RENDERER_AMQP_URL": AMQP_URL,
            "SNAPSHOT_API_QUEUE_PREFIX": self.prefix,
            "SNAPSHOT_RENDERER_QUEUE_PREFIX": self.prefix,
            "SNAPSHOT_API_STORE_DIR": str(self.store),
            "SNAPSHOT_RENDERER_STORE_DIR": str(self.store),
            "SNAPSHOT_API_PORT": str(self.port),
            "SNAPSHOT_API_WORKERS": str(workers),
            "SNAPSHOT_API_JWT_SECRET": SECRET,
            "SNAPSHOT_RENDERER_CONCURRENCY": "1",
            "SNAPSHOT_API_RATE_LIMITS": HIGH_RATE_LIMITS,
            "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="e2e-prom-"),
            **(renderer_env or {}),
        }
        self.api: subprocess.Popen[bytes] | None = None
        self.renderers: list[subprocess.Popen[bytes]] = []
        self._count = 0

    # --- processes -----------------------------------------------------------------------
    def _spawn(self, args: list[str], log: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = open(self.logs / log, "ab")  # noqa: SIM115 - the child owns it
        return subprocess.Popen(
            args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def spawn_api(self) -> subprocess.Popen[bytes]:
        """The API process, started but not waited for."""
        return self._spawn([str(BIN / "snapshot-api"), "serve"], "api.log", self.env)

    def start_api(self) -> None:
        self.api = self.spawn_api()
        self.wait_ready()

    def start_renderer(self, wait: bool = True, **extra_env: str) -> subprocess.Popen[bytes]:
        """A renderer process; unless ``wait`` is false, waited for until it is healthy
        (consuming jobs). ``metrics_port`` on the process is its ``/healthz`` port."""
        metrics_port = free_port()
        env = {**self.env, "SNAPSHOT_RENDERER_METRICS_PORT": str(metrics_port), **extra_env}
        self._count += 1
        proc = self._spawn([str(BIN / "snapshot-renderer")], f"renderer{self._count}.log", env)
        proc.metrics_port = metrics_port  # type: ignore[attr-defined]
        self.renderers.append(proc)
        if wait:
            self.wait_renderer(proc)
        return proc

    def wait_renderer(self, proc: subprocess.Popen[bytes]) -> None:
        port = proc.metrics_port  # type: ignore[attr-defined]
        self._wait_http(f"http://127.0.0.1:{port}/healthz", proc, "renderer")

    def stop_renderer(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
        os.killpg(proc.pid, sig)
        code = proc.wait(60)
        self.renderers.remove(proc)
        return code

    def wait_ready(self, timeout: float = 60) -> None:
        assert self.api is not None
        self._wait_http(self.base + "/readyz", self.api, "api", timeout)

    def _wait_http(
        self, url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60
    ) -> None:
        def answers() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}: {self.log_tail()}")
            try:
                return httpx.get(url, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            until_sync(answers, timeout, f"{what} ready at {url}", interval=0.1)
        except AssertionError as exc:
            raise RuntimeError(f"{exc}: {self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.iterdir()):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        for proc in [self.api, *self.renderers]:
            end_process(proc, grace=30)
        self.renderers.clear()
        drop_database(self.database_url)
        delete_topology(self.prefix)
        shutil.rmtree(self.store, ignore_errors=True)
        shutil.rmtree(self.env["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

    # --- client --------------------------------------------------------------------------
    def token(self, user: str, admin: bool = False) -> str:
        claims = {
            "sub": user,
            "name": user.title(),
            "roles": ["admin"] if admin else [],
            "exp": int(time.time()) + 3600,
        }
        return jwt.encode(claims, SECRET, algorithm="HS256")

    def auth(self, user: str, admin: bool = False) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user, admin)}"}

    def client_for(self, user: str | None, admin: bool = False) -> Client:
        """The shared typed client (``snapshot_client``) acting as ``user`` (``None``: no token)."""
        return Client(self.base, self.token(user, admin) if user else None, timeout=30)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=30)

    def call(self, method: str, path: str, user: str | None = None, **kw: Any) -> httpx.Response:
        headers = {**(self.auth(user) if user else {}), **kw.pop("headers", {})}
        with self.client() as c:
            return c.request(method, path, headers=headers, **kw)

    def wait_task(self, task_id: str, user: str, timeout: float = 120) -> dict[str, Any]:
        """Poll the task like a front end's progress bar does, until it is terminal."""
        seen: list[int] = []
        with self.client() as c:

            def terminal() -> dict[str, Any] | None:
                task: dict[str, Any] = c.get(
                    f"/api/v1/tasks/{task_id}", headers=self.auth(user)
                ).json()
                seen.append(task.get("progress", -1))
                return task if task.get("status") in ("completed", "failed") else None

            try:
                task = until_sync(terminal, timeout, f"task {task_id} to be terminal")
            except AssertionError as exc:
                raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        task["progress_seen"] = seen
        return task


@contextmanager
def running(renderers: int = 1, workers: int = 2, **env: str) -> Iterator[Stack]:
    """A started stack (API with ``workers`` processes + ``renderers`` renderers, ``env`` for
    both), stopped afterwards."""
    stack = Stack(workers=workers, renderer_env=env or None)
    try:
        stack.start_api()
        for _ in range(renderers):
            stack.start_renderer()
        yield stack
    finally:
        stack.stop()
