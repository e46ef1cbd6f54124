"""``Client``: the Room Snapshots HTTP API as typed method calls (httpx, synchronous).

One method per operation; each returns a model from ``models`` or raises an error from
``errors``. A task is followed (``follow``, ``wait``) over its event stream
(``GET /api/v1/tasks/{id}/events``, ``events``) and, when that stream cannot be used, by
polling ``GET /api/v1/tasks/{id}`` (``poll``); either way callers see the same ``Task`` values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from typing import IO, Any

import httpx

from snapshot_client import calls, task_events
from snapshot_client.calls import API
from snapshot_client.errors import (
    ApiProblem,
    ApiUnreachable,
    EventStreamUnusable,
    ServerError,
    WaitTimeout,
    problem_from,
)
from snapshot_client.files import copy_stream, filename_from, target_path, write_atomically
from snapshot_client.models import (
    Download,
    Followed,
    Member,
    Message,
    Room,
    Snapshot,
    SnapshotAccepted,
    Task,
)

BATCH_MAX = 500  # messages per POST: the API's own limit
USER_AGENT = "snapshot-client/0.1"
TRANSIENT_RETRIES = 5  # consecutive 5xx/unreachable answers tolerated while waiting
# Answers to the stream request after which polling may still work: no such route (an older
# API), too many open streams, the API busy or failing. 401, 403 and 422 would be polling's too.
FALLBACK_STATUSES = frozenset({404, 405, 406, 410, 429, 501})  # and every 5xx


class Client:
    """A session with the API: ``Client(url, token)``, used as a context manager or closed."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- plumbing ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise ApiUnreachable(f"{self.base_url}: {exc or type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise problem_from(response.status_code, response.headers, response.content)
        return response

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._send(method, path, **kw).json()

    # --- rooms, members, messages -----------------------------------------------------------
    def create_room(self, name: str) -> Room:
        return Room.from_json(self._json("POST", f"{API}/rooms", json={"name": name}))

    def get_room(self, room_id: str) -> Room:
        return Room.from_json(self._json("GET", f"{API}/rooms/{room_id}"))

    def put_member(
        self, room_id: str, user_id: str, role: str, display_name: str | None = None
    ) -> Member:
        body: dict[str, Any] = {"role": role}
        if display_name is not None:
            body["display_name"] = display_name
        return Member.from_json(
            self._json("PUT", f"{API}/rooms/{room_id}/members/{user_id}", json=body)
        )

    def add_messages(
        self,
        room_id: str,
        messages: Iterable[Mapping[str, Any] | str],
        *,
        batch_size: int = BATCH_MAX,
        on_batch: Callable[[list[Message]], None] | None = None,
    ) -> list[Message]:
        """Post ``messages`` (``{"body", "kind"}`` or plain strings) in order, ``batch_size`` per
        request. Batches are sent one after another, so on an error the ones before it are in
        the room and the rest are not; ``on_batch`` sees each created batch."""
        if not 1 <= batch_size <= BATCH_MAX:
            raise ValueError(f"batch_size must be 1 to {BATCH_MAX}")
        created: list[Message] = []
        batch: list[dict[str, Any]] = []
        items = ({"body": m} if isinstance(m, str) else dict(m) for m in messages)
        for item in items:
            batch.append(item)
            if len(batch) == batch_size:
                created += self._post_batch(room_id, batch, on_batch)
                batch = []
        if batch:
            created += self._post_batch(room_id, batch, on_batch)
        return created

    def _post_batch(
        self,
        room_id: str,
        batch: list[dict[str, Any]],
        on_batch: Callable[[list[Message]], None] | None,
    ) -> list[Message]:
        answer = self._json("POST", f"{API}/rooms/{room_id}/messages", json={"messages": batch})
        done = [Message.from_json(m) for m in answer]
        if on_batch:
            on_batch(done)
        return done

    # --- snapshots and tasks ----------------------------------------------------------------
    def create_snapshot(
        self,
        room_id: str,
        *,
        scope: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> SnapshotAccepted:
        """Request a snapshot (202). The same ``idempotency_key`` with the same body answers
        the same snapshot again, so a request whose answer was lost can be sent again."""
        call = calls.create_snapshot(
            room_id, scope=scope, options=options, idempotency_key=idempotency_key
        )
        r = self._send(call.method, call.path, json=call.json, headers=call.headers)
        return calls.read_snapshot_accepted(r.status_code, r.headers, r.content)

    def task(self, task_id: str) -> Task:
        return Task.from_json(self._json("GET", f"{API}/tasks/{task_id}"))

    def wait(
        self,
        task_id: str,
        *,
        on_update: Callable[[Task], None] | None = None,
        timeout: float | None = None,
        interval: float = 0.25,
        backoff: float = 0.2,
        use_events: bool = True,
    ) -> Task:
        """Follow the task until it is ``completed`` or ``failed`` and return it (a failed task
        is returned, not raised); as ``follow``, which also says how the state was learned."""
        return self.follow(
            task_id,
            on_update=on_update,
            timeout=timeout,
            interval=interval,
            backoff=backoff,
            use_events=use_events,
        ).task

    def follow(
        self,
        task_id: str,
        *,
        on_update: Callable[[Task], None] | None = None,
        timeout: float | None = None,
        interval: float = 0.25,
        backoff: float = 0.2,
        use_events: bool = True,
    ) -> Followed:
        """Follow the task to its terminal state: over its event stream (``events``) unless
        ``use_events`` is false, and by polling (``poll``, every ``interval`` s) when the stream
        cannot be used (refused with 404, 405, 429, 5xx…, not an event stream, the connection
        refused, dropped too often). ``on_update`` sees every state, from the stream and then
        from polling, never the same state twice in a row. ``WaitTimeout`` after ``timeout``
        seconds in all; 401, 403 and 422 answers are raised as they are."""
        deadline = task_events.Deadline(task_id, timeout)
        last: Task | None = None
        fallback: str | None = None
        if use_events:
            stream = self.events(task_id, timeout=timeout)
            try:
                while True:
                    try:
                        task = next(stream, None)
                    except (EventStreamUnusable, ApiUnreachable) as exc:
                        fallback = str(exc)
                        break
                    except ApiProblem as exc:
                        if exc.status not in FALLBACK_STATUSES and exc.status < 500:
                            raise
                        fallback = f"{exc.status} {exc.code}: {exc.detail}"
                        break
                    if task is None:
                        fallback = "the event stream ended without the task's final state"
                        break
                    last = task
                    if on_update:
                        on_update(task)
                    if task.terminal:
                        return Followed(task, "events")
            finally:
                stream.close()
        deadline.check()
        remaining = deadline.remaining()
        for task in self.poll(task_id, timeout=remaining, interval=interval, backoff=backoff):
            if on_update and (last is None or task.raw != last.raw):
                on_update(task)
            last = task
        assert last is not None and last.terminal
        return Followed(last, "polling", fallback)

    def events(
        self,
        task_id: str,
        last_event_id: str | None = None,
        *,
        timeout: float | None = None,
        reconnects: int = task_events.RECONNECTS,
        idle_timeout: float = task_events.IDLE_SECONDS,
    ) -> Generator[Task, None, None]:
        """The task's states as its event stream (``GET /api/v1/tasks/{id}/events``) sends
        them, from the current one (or the first after ``last_event_id``) to the terminal one.

        A stream that drops before the terminal state is opened again with ``Last-Event-ID``
        after the server's ``retry:`` pause (at most 30 s), up to ``reconnects`` times in a row
        without a new state; ``idle_timeout`` seconds without a byte (heartbeats included)
        count as a drop. Nothing is yielded when the API answers 204 (the task is finished and
        ``last_event_id`` is its final event). Raises ``EventStreamUnusable`` (not an event
        stream, an unreadable event, too many drops), ``ApiUnreachable`` when the first
        connection fails, the ``ApiProblem`` of an error answer, and ``WaitTimeout`` once
        ``timeout`` seconds have passed (noticed at the latest with the next heartbeat)."""
        deadline = task_events.Deadline(task_id, timeout)
        return task_events.follow_events(
            self._http,
            task_id,
            last_event_id,
            deadline,
            reconnects=reconnects,
            idle_timeout=idle_timeout,
        )

    def poll(
        self,
        task_id: str,
        *,
        timeout: float | None = None,
        interval: float = 0.25,
        backoff: float = 0.2,
    ) -> Iterator[Task]:
        """The task's state every ``interval`` seconds, ending with its terminal state. Up to
        ``TRANSIENT_RETRIES`` 5xx or unreachable answers in a row are waited out (growing
        pauses from ``backoff``, at least the answer's ``Retry-After`` up to 5 s); more are
        raised. ``WaitTimeout`` when the next look would come after ``timeout`` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        transient = 0
        while True:
            pause = interval
            try:
                task = self.task(task_id)
                transient = 0
            except (ServerError, ApiUnreachable) as exc:
                transient += 1
                if transient > TRANSIENT_RETRIES:
                    raise
                retry_after = exc.retry_after if isinstance(exc, ApiProblem) else None
                pause = max(interval, min(retry_after or 0.0, 5.0), backoff * 2 ** (transient - 1))
            else:
                yield task
                if task.terminal:
                    return
            if end is not None and time.monotonic() + pause > end:
                raise WaitTimeout(f"task {task_id} not finished after {timeout} s")
            time.sleep(pause)

    def snapshot(self, snapshot_id: str) -> Snapshot:
        return Snapshot.from_json(self._json("GET", f"{API}/snapshots/{snapshot_id}"))

    def list_snapshots(self, room_id: str, *, limit: int | None = None) -> Iterator[Snapshot]:
        """The room's snapshots, newest first, following the cursor (at most ``limit``)."""
        cursor: str | None = None
        seen = 0
        while True:
            params: dict[str, Any] = {"limit": 100 if limit is None else min(100, limit - seen)}
            if cursor:
                params["cursor"] = cursor
            page = self._json("GET", f"{API}/rooms/{room_id}/snapshots", params=params)
            for item in page["items"]:
                yield Snapshot.from_json(item)
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    # --- downloads --------------------------------------------------------------------------
    def download(
        self,
        snapshot_id: str,
        dest: str | os.PathLike[str] | IO[bytes] | None = None,
        *,
        on_bytes: Callable[[int, int | None], None] | None = None,
    ) -> Download:
        """Stream the PDF to ``dest``: a file path, an existing directory (the file takes the
        name the API offers), a binary stream, or ``None`` (the offered name in the current
        directory). A file is written beside its final name and renamed into place when
        complete, so a failed download leaves no partial file. ``on_bytes(done, total)``."""
        path = f"{API}/snapshots/{snapshot_id}/download"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise problem_from(response.status_code, response.headers, response.content)
                offered = filename_from(response.headers.get("content-disposition"))
                total = response.headers.get("content-length")
                size = int(total) if total and total.isdigit() else None
                etag = response.headers.get("etag")
                chunks = response.iter_bytes()
                if dest is not None and not isinstance(dest, str | os.PathLike):
                    written = copy_stream(chunks, dest, size, on_bytes)
                    return Download(snapshot_id, None, written, offered, etag)
                target = target_path(dest, offered or f"{snapshot_id}.pdf")
                written = write_atomically(chunks, target, size, on_bytes)
                return Download(snapshot_id, target, written, offered, etag)
        except httpx.TransportError as exc:
            raise ApiUnreachable(f"{self.base_url}: {exc or type(exc).__name__}") from exc
