"""`make soak`: many snapshots against two renderers while renderers are killed and the
broker is stopped once; prints whether anything was lost or done twice.

Not part of `make test`. Loopback only, bounded in count (SOAK_SNAPSHOTS, default 500) and in
time (SOAK_MAX_SECONDS, default 900). Usage: python tests/faults/soak.py
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.outages import broker_down  # noqa: E402
from support.stack import Stack  # noqa: E402

N = int(os.environ.get("SOAK_SNAPSHOTS", "500"))
MAX_SECONDS = float(os.environ.get("SOAK_MAX_SECONDS", "900"))
ROOMS = 30
RNG = random.Random(int(os.environ.get("SOAK_SEED", "7")))


class Chaos(threading.Thread):
    """Kills a random renderer every few seconds (and starts a new one); stops the broker once."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.stop_event = threading.Event()
        self.kills: list[float] = []
        self.broker_outage: tuple[float, float] | None = None

    def run(self) -> None:
        round_no = 0
        while not self.stop_event.wait(RNG.uniform(6, 14)):
            round_no += 1
            if round_no == 3 and self.broker_outage is None:
                start = time.time()
                with broker_down():
                    self.stop_event.wait(4)
                self.broker_outage = (start, time.time())
                continue
            victim = RNG.choice(self.stack.renderers)
            self.kills.append(time.time())
            self.stack.stop_renderer(victim, signal.SIGKILL)
            self.stack.start_renderer()


def make_rooms(stack: Stack) -> list[str]:
    rooms = []
    for i in range(ROOMS):
        room = stack.call("POST", "/api/v1/rooms", "olivia", json={"name": f"Soak room {i}"})
        room_id = room.json()["id"]
        size = RNG.choice([5, 20, 60, 150])
        stack.call(
            "POST",
            f"/api/v1/rooms/{room_id}/messages",
            "olivia",
            json={"messages": [{"body": f"room {i} message {j}"} for j in range(size)]},
        )
        rooms.append(room_id)
    return rooms


def submit(stack: Stack, rooms: list[str], k: int) -> dict | None:
    room = RNG.choice(rooms)
    if RNG.random() < 0.3:  # new content for this room
        stack.call("POST", f"/api/v1/rooms/{room}/messages", "olivia", json={"body": f"extra {k}"})
    for _ in range(50):  # the API itself may be briefly unreachable only by our own faults
        try:
            r = stack.call("POST", f"/api/v1/rooms/{room}/snapshots", "olivia", json={})
        except Exception:  # noqa: BLE001
            time.sleep(0.2)
            continue
        if r.status_code == 202:
            return r.json()
        time.sleep(0.2)
    return None


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


def main() -> int:
    stack = Stack(renderer_env={"SNAPSHOT_RENDERER_LOG_FORMAT": "json"})
    started = time.time()
    try:
        stack.start_api()
        stack.start_renderer()
        stack.start_renderer()
        rooms = make_rooms(stack)
        chaos = Chaos(stack)
        chaos.start()
        with ThreadPoolExecutor(8) as pool:
            accepted = [a for a in pool.map(lambda k: submit(stack, rooms, k), range(N)) if a]
        submitted_at = time.time()
        terminal: dict[str, dict] = {}
        deadline = started + MAX_SECONDS
        while len(terminal) < len(accepted) and time.time() < deadline:
            for a in accepted:
                if a["task_id"] in terminal:
                    continue
                task = stack.call("GET", f"/api/v1/tasks/{a['task_id']}", "olivia").json()
                if task.get("status") in ("completed", "failed"):
                    terminal[a["task_id"]] = task
            time.sleep(0.5)
        drained = time.time() - submitted_at
        chaos.stop_event.set()
        chaos.join(60)
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
            "completed": sum(t["status"] == "completed" for t in terminal.values()),
            "failed": dict(failed),
            "lost": len(accepted) - len(terminal),
            "duplicated_effects": duplicated(renders, chaos.kills),
            "unique_contents": len(keys),
            "renders": sum(len(v) for v in renders.values()),
            "renders_per_unique_key": round(
                sum(len(v) for v in renders.values()) / max(len(keys), 1), 3
            ),
            "cache_outcomes": dict(caches),
            "renderer_kills": len(chaos.kills),
            "broker_outage_seconds": round(chaos.broker_outage[1] - chaos.broker_outage[0], 1)
            if chaos.broker_outage
            else 0,
            "drain_seconds": round(drained, 1),
            "total_seconds": round(time.time() - started, 1),
        }
        width = max(len(k) for k in report)
        for key, value in report.items():
            print(f"{key:<{width}}  {value}")
        return 0 if report["lost"] == 0 and report["duplicated_effects"] == 0 else 1
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
