"""How much the bench measures: the full run (~5 min, and 7–12 min more for issue 11's rows)
or ``BENCH_QUICK=1`` (~30 s, and ~1 min more for those rows)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Plan:
    quick: bool
    api_workers: int = field(default_factory=lambda: max(2, _cores()))
    renderers: int = field(default_factory=_cores)  # R: render worker processes
    render_timeout: float = 900.0  # the 10,000-message room outlasts the 120 s default
    render_memory: int = 3 * 2**30  # ... and needs about the 1 GiB default budget itself
    connections: int = 128  # open-loop connection cap (waiting for one counts as latency)
    p99_goal_ms: float = 10.0
    max_search_rate: float = 3000.0
    open_rates: tuple[int, ...] = (200, 500, 1000)
    service_samples: int = 300
    warmup_requests: int = 20
    open_seconds: float = 4.0
    search_seconds: float = 2.5
    search_probes: int = 5
    closed_clients: int = 64
    closed_seconds: float = 4.0
    settle_seconds: float = 10.0  # longest wait for the stack to drain between load runs
    grace_seconds: float = 4.0  # longest wait for answers after an open-loop schedule ends
    interleave: bool = True  # POST and /healthz in halves: POST, healthz, POST, healthz
    freeze_sizes: tuple[int, ...] = (10, 1000, 10000)
    freeze_samples: tuple[int, ...] = (40, 20, 6)
    pipeline_docs: int = 24
    pipeline_rounds: int = 4  # pipeline and bare alternate: A B A B ...
    memory_hits: int = 50
    disk_hit_docs: int = 6
    big_sizes: tuple[int, ...] = (1000, 10000)
    download_clients: int = 16
    download_seconds: float = 5.0
    micro_samples: int = 200
    webhook_samples: int = 40
    live_samples: int = 100  # item 7: tasks whose completion an SSE and a polling client await
    flood_samples: int = 5  # the small user's misses, idle and while another user floods
    # Issue 11, big rooms in chunks (``bench.chunks``)
    chunk_room: int = 1000  # 11.1 re-snapshot, 11.4 first render, 11.6 Latin PDF size
    resnapshot_rounds: int = 5  # 11.1: append 10 messages and snapshot again, this often
    chunk_rounds: int = 3  # 11.4: rooms rendered whole and chunked, alternating
    cjk_chunk_room: int = 300  # 11.6: CJK messages of 40 ideographs (200+ render in pieces)
    parallel_room: int = 10000  # 11.2 two workers vs one, 11.3 peak worker RSS
    huge_room: int = 100000  # 11.3: short messages, default budgets

    @classmethod
    def from_env(cls) -> Plan:
        if os.environ.get("BENCH_QUICK", "") not in ("", "0"):
            return cls(
                quick=True,
                renderers=1,  # one render worker each side: fewer process start-ups
                search_probes=1,
                service_samples=20,
                warmup_requests=3,
                open_seconds=0.4,
                search_seconds=0.4,
                closed_seconds=0.4,
                settle_seconds=0.5,
                grace_seconds=0.5,
                interleave=False,
                connections=32,  # fewer requests left in flight to drain after an overload
                freeze_samples=(5, 3, 2),
                pipeline_docs=1,
                pipeline_rounds=1,
                memory_hits=10,
                disk_hit_docs=2,
                big_sizes=(10, 100),
                download_seconds=0.4,
                micro_samples=30,
                webhook_samples=3,
                live_samples=10,
                flood_samples=2,
                chunk_room=300,
                resnapshot_rounds=2,
                chunk_rounds=1,
                cjk_chunk_room=200,
                parallel_room=1000,
                huge_room=2000,
            )
        return cls(quick=False)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
