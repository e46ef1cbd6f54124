"""Item 1: snapshot creation under load, each figure beside ``GET /healthz`` under the same load.

(a) service time with one client, (b) open loop at fixed rates, (c) the highest open-loop rate
whose p99 stays within the goal, (d) closed loop with 64 clients. Run once with no renderer
consuming (the API's own cost) and once with renderers answering every job from memory.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.load import LoadGenerator, merge
from bench.plan import Plan
from bench.report import Row, ms, p99_text, ratio

Settle = Callable[[], dict[str, Any]]


@dataclass
class Endpoints:
    post: dict[str, Any]
    health: dict[str, Any]

    @classmethod
    def for_room(cls, room: str, auth: dict[str, str]) -> Endpoints:
        return cls(
            post={
                "method": "POST",
                "path": f"/api/v1/rooms/{room}/snapshots",
                "headers": auth,
                "body": {},
            },
            health={"method": "GET", "path": "/healthz"},
        )


@dataclass
class LoadRun:
    """Drives one mode: every run is followed by ``settle`` so the next starts from quiet."""

    lg: LoadGenerator
    port: int
    servers: dict[str, int]
    settle: Settle
    plan: Plan
    raw: dict[str, Any] = field(default_factory=dict)

    def _run(self, request: dict[str, Any], **spec: Any) -> dict[str, Any]:
        full = {
            "port": self.port,
            "requests": [request],
            "connections": self.plan.connections,
            "grace": self.plan.grace_seconds,
        }
        result = self.lg.run({**full, **spec}, self.servers)
        result["settle"] = self.settle()
        return result

    def go(self, label: str, request: dict[str, Any], **spec: Any) -> dict[str, Any]:
        """One run of ``spec``, then settle."""
        self.raw[label] = result = self._run(request, **spec)
        return result

    def pair(self, label: str, ep: Endpoints, **spec: Any) -> tuple[dict, dict]:
        """POST and ``/healthz`` under the same spec, interleaved in halves (POST, healthz,
        POST, healthz), so a busy spell on the shared machine rarely hits one side only."""
        rounds = 2 if self.plan.interleave else 1
        half = dict(spec, raw=True)
        if "count" in spec:
            half["count"] = max(1, spec["count"] // rounds)
        if "duration" in spec:
            half["duration"] = spec["duration"] / rounds
        parts: dict[str, list[dict[str, Any]]] = {"post": [], "healthz": []}
        for _ in range(rounds):
            parts["post"].append(self._run(ep.post, **half))
            parts["healthz"].append(self._run(ep.health, **half))
        post, health = merge(parts["post"]), merge(parts["healthz"])
        self.raw[f"{label}.post"], self.raw[f"{label}.healthz"] = post, health
        return post, health

    def passes(self, run: dict[str, Any]) -> bool:
        p99 = run.get("p99_ms")
        return run["errors"] == 0 and p99 is not None and p99 <= self.plan.p99_goal_ms

    def highest_rate(self, label: str, request: dict[str, Any], known: dict[int, bool]) -> float:
        """Bisect (geometrically) for the highest rate that passes; 0 if even 10/s fails."""
        good = max((r for r, ok in known.items() if ok), default=None)
        bad = min((r for r, ok in known.items() if not ok), default=None)
        for i in range(self.plan.search_probes):
            if bad is None:
                if good is None or good >= self.plan.max_search_rate:
                    break
                rate = min(self.plan.max_search_rate, good * 2)
            elif good is None:
                rate = bad / 3
                if rate < 10:
                    return 0.0
            elif bad / good < 1.15:
                break
            else:
                rate = math.sqrt(good * bad)
            rate = round(rate)
            run = self.go(
                f"{label}.search{i}@{rate}",
                request,
                mode="open",
                rate=rate,
                duration=self.plan.search_seconds,
            )
            if self.passes(run):
                good = rate
            else:
                bad = rate
        return float(good or 0)


def _lat(run: dict[str, Any]) -> str:
    errors = f", {run['errors']} errors" if run["errors"] else ""
    return f"p50 {ms(run['p50_ms'])}, p99 {p99_text(run)}{errors}"


def _cores(run: dict[str, Any]) -> str:
    names = {"api": "api", "renderer": "renderer", "postgres": "pg", "rabbitmq": "mq"}
    return ", ".join(f"{names.get(k, k)} {v:.2f}" for k, v in run.get("cpu_cores", {}).items())


def _service_time(lr: LoadRun, ep: Endpoints, mode: str) -> Row:
    samples = lr.plan.service_samples
    for request in (ep.post, ep.health):  # warm connections, pools and caches
        lr.lg.run(
            {
                "port": lr.port,
                "requests": [request],
                "mode": "closed",
                "concurrency": 1,
                "count": lr.plan.warmup_requests,
            }
        )
    post, health = lr.pair(f"{mode}.a", ep, mode="closed", concurrency=1, count=samples)
    r = ratio(post["p50_ms"], health["p50_ms"])
    return Row(
        f"1a {mode}",
        "POST service time, 1 client (p50, p99)",
        f"p50 {ms(post['p50_ms'])}, p99 {ms(post['p99_ms'])}",
        f"/healthz p50 {ms(health['p50_ms'])}, p99 {ms(health['p99_ms'])}",
        r,
        "POST ÷ /healthz ≤ 3 (p50)",
        None if r is None else r <= 3,
        {"post": post, "healthz": health},
    )


def _open_loop(lr: LoadRun, ep: Endpoints, mode: str) -> tuple[list[Row], dict[str, dict]]:
    rows, known = [], {"post": {}, "healthz": {}}
    for rate in lr.plan.open_rates:
        post, health = lr.pair(
            f"{mode}.b@{rate}", ep, mode="open", rate=rate, duration=lr.plan.open_seconds
        )
        known["post"][rate] = lr.passes(post)
        known["healthz"][rate] = lr.passes(health)
        goal = rate == 500
        rows.append(
            Row(
                f"1b {mode}",
                f"POST open loop {rate}/s, {lr.plan.open_seconds:g} s",
                _lat(post),
                "/healthz " + _lat(health),
                ratio(post["p99_ms"], health["p99_ms"]),
                "p99 ≤ 10 ms" if goal else "",
                lr.passes(post) if goal else None,
                {"post": post, "healthz": health, "ratio_of": "p99"},
            )
        )
    return rows, known


def run_mode(lr: LoadRun, ep: Endpoints, mode: str, rate_target: float) -> list[Row]:
    """Items 1(a)–(d) for one mode; ``rate_target`` is the goal for the highest rate."""
    rows = [_service_time(lr, ep, mode)]
    open_rows, known = _open_loop(lr, ep, mode)
    rows += open_rows
    best_post = lr.highest_rate(f"{mode}.c.post", ep.post, known["post"])
    best_health = lr.highest_rate(f"{mode}.c.healthz", ep.health, known["healthz"])
    cap = lr.plan.max_search_rate
    post_text = f"{best_post:.0f}/s"
    if best_post == 0:  # even the slowest probe missed: show how far
        probes = [v for k, v in lr.raw.items() if k.startswith(f"{mode}.c.post")]
        slowest = min(probes, key=lambda r: r["rate"], default=None)
        if slowest is not None:
            post_text = f"none (p99 {p99_text(slowest)} at {slowest['rate']}/s)"
    health_text = f"/healthz {best_health:.0f}/s" + (" (search cap)" if best_health >= cap else "")
    rows.append(
        Row(
            f"1c {mode}",
            f"highest open-loop rate with POST p99 ≤ {lr.plan.p99_goal_ms:g} ms",
            post_text,
            health_text,
            ratio(best_post, best_health),
            f"≥ {rate_target:,.0f}/s",
            best_post >= rate_target,
            {"post": best_post, "healthz": best_health},
        )
    )
    clients = lr.plan.closed_clients
    post, health = lr.pair(
        f"{mode}.d", ep, mode="closed", concurrency=clients, duration=lr.plan.closed_seconds
    )
    rows.append(
        Row(
            f"1d {mode}",
            f"POST closed loop, {clients} clients (throughput)",
            f"{post['throughput_rps']:.0f}/s ({_lat(post)}; CPU cores {_cores(post)})",
            f"/healthz {health['throughput_rps']:.0f}/s",
            ratio(post["throughput_rps"], health["throughput_rps"]),
            "",
            None,
            {"post": post, "healthz": health},
        )
    )
    return rows


def loadgen_row(lg: LoadGenerator) -> Row:
    """The load generator's own CPU use across every run of item 1."""
    runs = [r for r in lg.runs if r.get("wall_s", 0) > 0.2]
    busiest = max(runs, key=lambda r: r["loadgen_cpu_pct"] or 0)
    lags = sorted((r["send_lag_p99_ms"] or 0) for r in runs if r["mode"] == "open")
    label = busiest["rate"] or f"{busiest['concurrency']} clients"
    return Row(
        "1 gen",
        "load generator CPU (own process, uvloop, raw HTTP/1.1)",
        f"peak {busiest['loadgen_cpu_pct']:.0f}% of one core ({busiest['mode']} {label})",
        f"send lag p99: median {statistics.median(lags):.2f} ms, worst {lags[-1]:.1f} ms",
        None,
        "not the bottleneck",
        None,
        {"runs": len(runs), "busiest": busiest},
    )
