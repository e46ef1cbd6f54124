"""`make soak`: many snapshots against two renderers under every planned fault, with the poison
inputs of the edges mixed in; prints whether anything was lost, done twice or answered 5xx.

Faults, each while snapshots are being submitted: renderers SIGKILLed every few seconds (and
replaced), the broker stopped once, PostgreSQL restarted once, the API SIGKILLed once (and
restarted). Poison inputs: an ``Idempotency-Key`` reused after its snapshot was deleted, a huge
``options.locale``, bodies of 16 KiB line breaks, bodies of control characters. Every POST of a
snapshot carries an ``Idempotency-Key``, so a retry after a lost answer is a replay, not a
second snapshot.

Not part of `make test`. Loopback only, bounded in count (SOAK_SNAPSHOTS, default 2000) and in
time (SOAK_MAX_SECONDS, default 1500). Usage: python tests/faults/soak.py
"""

from __future__ import annotations

import calendar
import collections
import json
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.outages import broker_down, database_down  # noqa: E402
from support.stack import Stack  # noqa: E402

N = int(os.environ.get("SOAK_SNAPSHOTS", "2000"))
MAX_SECONDS = float(os.environ.get("SOAK_MAX_SECONDS", "1500"))
ROOMS = 30
RNG = random.Random(int(os.environ.get("SOAK_SEED", "7")))
USER = "olivia"


class Answers:
    """Every HTTP answer the soak got, by status; 5xx and unreachable counted apart."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_status: collections.Counter[int] = collections.Counter()
        self.server_errors: list[str] = []  # 5xx other than 503 while a backend is down
        self.unreachable = 0

    def call(self, stack: Stack, method: str, path: str, **kw: object) -> httpx.Response | None:
        try:
            r = stack.call(method, path, USER, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError:
            with self.lock:
                self.unreachable += 1
            return None
        with self.lock:
            self.by_status[r.status_code] += 1
            if r.status_code >= 500 and not _outage_answer(r):
                self.server_errors.append(f"{method} {path} → {r.status_code} {r.text[:200]}")
        return r


def _outage_answer(r: httpx.Response) -> bool:
    """A 503 problem that says a backend is down (honest while PostgreSQL restarts)."""
    if r.status_code != 503:
        return False
    try:
        return r.json().get("code") == "unavailable"
    except ValueError:
        return False


class Chaos(threading.Thread):
    """Kills a random renderer every few seconds (and starts a new one); stops the broker,
    restarts PostgreSQL and kills the API once each."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stop_event = threading.Event()
        self.kills: list[float] = []
        self.outages: dict[str, float] = {}
        self.errors: list[str] = []  # faults that could not be carried out

    def run(self) -> None:
        round_no = 0
        special = {3: self._broker, 6: self._database, 9: self._api}
        while not self.stop_event.wait(RNG.uniform(6, 14)):
            round_no += 1
            if round_no in special:
                try:
                    special[round_no]()
                except Exception as exc:  # noqa: BLE001 - reported, and the soak fails
                    self.errors.append(f"{special[round_no].__name__}: {exc!r}")
                continue
            victim = RNG.choice(self.stack.renderers)
            self.kills.append(time.time())
            self.stack.stop_renderer(victim, signal.SIGKILL)
            self.stack.start_renderer()

    def _broker(self) -> None:
        start = time.time()
        with broker_down():
            self.stop_event.wait(4)
        self.outages["broker_seconds"] = round(time.time() - start, 1)

    def _database(self) -> None:
        start = time.time()
        with database_down():
            self.stop_event.wait(3)
        self.outages["database_seconds"] = round(time.time() - start, 1)

    def _api(self) -> None:
        start = time.time()
        assert self.stack.api is not None
        os.killpg(self.stack.api.pid, signal.SIGKILL)
        self.stack.api.wait(60)
        self.stack.start_api()
        self.outages["api_seconds"] = round(time.time() - start, 1)


def make_rooms(stack: Stack, answers: Answers) -> list[str]:
    rooms = []
    for i in range(ROOMS):
        r = answers.call(stack, "POST", "/api/v1/rooms", json={"name": f"Soak room {i}"})
        assert r is not None and r.status_code == 201, r
        room_id = r.json()["id"]
        size = RNG.choice([5, 20, 60, 150])
        bodies = [{"body": f"room {i} message {j}"} for j in range(size)]
        answers.call(stack, "POST", f"/api/v1/rooms/{room_id}/messages", json={"messages": bodies})
        rooms.append(room_id)
    return rooms


def post_snapshot(
    stack: Stack, answers: Answers, room: str, key: str, body: dict[str, object] | None = None
) -> httpx.Response | None:
    """POST a snapshot until the API answers something other than an outage (a replay of the
    same ``Idempotency-Key`` after a lost answer returns the first snapshot)."""
    for _ in range(300):
        r = answers.call(
            stack,
            "POST",
            f"/api/v1/rooms/{room}/snapshots",
            json=body or {},
            headers={"Idempotency-Key": key},
        )
        if r is not None and r.status_code < 500:
            return r
        time.sleep(0.2)
    return None


def submit(stack: Stack, answers: Answers, rooms: list[str], k: int) -> dict | None:
    room = RNG.choice(rooms)
    if RNG.random() < 0.3:  # new content for this room
        answers.call(stack, "POST", f"/api/v1/rooms/{room}/messages", json={"body": f"extra {k}"})
    r = post_snapshot(stack, answers, room, f"soak-{k}")
    return r.json() if r is not None and r.status_code == 202 else None


def poison(stack: Stack, answers: Answers, rooms: list[str]) -> tuple[list[dict], dict]:
    """The edges' hostile inputs; returns the snapshots they got accepted and what each got."""
    accepted: list[dict] = []
    outcome: dict[str, object] = {}
    room = rooms[0]
    # 1. An Idempotency-Key reused after its snapshot was deleted.
    first = post_snapshot(stack, answers, room, "soak-reused")
    codes = [first.status_code if first else None]
    if first is not None and first.status_code == 202:  # deleted below: its task is gone
        d = answers.call(stack, "DELETE", f"/api/v1/snapshots/{first.json()['snapshot_id']}")
        codes.append(d.status_code if d else None)
        again = post_snapshot(stack, answers, room, "soak-reused")
        codes.append(again.status_code if again else None)
        if again is not None and again.status_code == 202:
            accepted.append(again.json())
    outcome["idempotency_key_after_delete"] = codes
    # 2. A 900 KB locale.
    r = post_snapshot(stack, answers, room, "soak-locale", {"options": {"locale": "en-" * 300_000}})
    outcome["huge_locale"] = r.status_code if r else None
    if r is not None and r.status_code == 202:
        accepted.append(r.json())
    # 3. and 4. Bodies of line breaks and of control characters, in rooms of their own.
    for name, body, count in (
        ("line_breaks", "\n" * 16_000 + "x", 3),
        ("control_chars", "\x01" * 16_000, 800),
    ):
        made = answers.call(stack, "POST", "/api/v1/rooms", json={"name": f"poison {name}"})
        assert made is not None and made.status_code == 201
        room_id = made.json()["id"]
        posted = [
            answers.call(
                stack,
                "POST",
                f"/api/v1/rooms/{room_id}/messages",
                json={"messages": [{"body": body}] * min(count - i, 100)},
            )
            for i in range(0, count, 100)
        ]
        snap = post_snapshot(stack, answers, room_id, f"soak-{name}")
        outcome[name] = {
            "messages": sorted({p.status_code for p in posted if p is not None}),
            "snapshot": snap.status_code if snap else None,
        }
        if snap is not None and snap.status_code == 202:
            accepted.append(snap.json())
    return accepted, outcome


def renders_per_key(stack: Stack) -> dict[str, list[float]]:
    renders: dict[str, list[float]] = collections.defaultdict(list)
    for log in stack.logs.glob("renderer*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            entry = json.loads(line)
            if entry.get("event") == "rendered":
                at = calendar.timegm(time.strptime(entry["at"][:19], "%Y-%m-%dT%H:%M:%S"))
                renders[entry["key"]].append(at + float("0" + entry["at"][19:23]))
    return renders


def duplicated(renders: dict[str, list[float]], kills: list[float]) -> int:
    """Renders of one key beyond the first with no renderer kill in between."""
    extra = 0
    for times in renders.values():
        times.sort()
        for earlier, later in zip(times, times[1:], strict=False):
            if not any(earlier - 1 <= k <= later + 1 for k in kills):
                extra += 1
    return extra


def wait_terminal(
    stack: Stack, answers: Answers, accepted: list[dict], deadline: float
) -> dict[str, dict]:
    terminal: dict[str, dict] = {}
    while len(terminal) < len(accepted) and time.time() < deadline:
        for a in accepted:
            if a["task_id"] in terminal:
                continue
            r = answers.call(stack, "GET", f"/api/v1/tasks/{a['task_id']}")
            task = r.json() if r is not None and r.status_code == 200 else {}
            if task.get("status") in ("completed", "failed"):
                terminal[a["task_id"]] = task
        time.sleep(0.5)
    return terminal


def main() -> int:
    stack = Stack(renderer_env={"SNAPSHOT_RENDERER_LOG_FORMAT": "json"})
    answers = Answers()
    started = time.time()
    try:
        stack.start_api()
        stack.start_renderer()
        stack.start_renderer()
        rooms = make_rooms(stack, answers)
        chaos = Chaos(stack)
        chaos.start()
        poisoned, poison_outcome = poison(stack, answers, rooms)
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda k: submit(stack, answers, rooms, k), range(N)))
        accepted = [a for a in results if a] + poisoned
        submitted_at = time.time()
        terminal = wait_terminal(stack, answers, accepted, started + MAX_SECONDS)
        drained = time.time() - submitted_at
        chaos.stop_event.set()
        chaos.join(120)
        renders = renders_per_key(stack)
        failed = collections.Counter(
            t["error"]["code"] for t in terminal.values() if t["status"] == "failed"
        )
        caches = collections.Counter(
            t["cache"] for t in terminal.values() if t["status"] == "completed"
        )
        keys = {a["content_hash"] for a in accepted}
        report = {
            "submitted": N,
            "accepted": len(accepted),
            "distinct_snapshots": len({a["snapshot_id"] for a in accepted}),
            "completed": sum(t["status"] == "completed" for t in terminal.values()),
            "failed": dict(failed),
            "lost": len(accepted) - len(terminal),
            "duplicated_effects": duplicated(renders, chaos.kills),
            "http_5xx": len(answers.server_errors),
            "http_by_status": dict(sorted(answers.by_status.items())),
            "api_unreachable_calls": answers.unreachable,
            "poison": poison_outcome,
            "unique_contents": len(keys),
            "renders": sum(len(v) for v in renders.values()),
            "renders_per_unique_key": round(
                sum(len(v) for v in renders.values()) / max(len(keys), 1), 3
            ),
            "cache_outcomes": dict(caches),
            "renderer_kills": len(chaos.kills),
            "outages": chaos.outages,
            "drain_seconds": round(drained, 1),
            "total_seconds": round(time.time() - started, 1),
        }
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        for line in answers.server_errors[:10]:
            print("5xx:", line)
        for line in chaos.errors:
            print("fault not carried out:", line)
        ok = report["lost"] == 0 and report["duplicated_effects"] == 0
        ok = ok and not chaos.errors and len(chaos.outages) == 3
        return 0 if ok and not answers.server_errors else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
