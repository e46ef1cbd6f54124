"""``make bench``: start the stack on a fresh database, queue prefix and store, measure items
1–6 of the benchmark issue, item 7 (live progress over SSE beside polling, issue 14) and
item 8 (webhook beside polling latency, issue 14), print one table and write
``bench/results.json``.

Run from ``tests/`` as ``python -m bench`` (so ``support`` and ``bench`` import the way pytest
imports them). ``BENCH_QUICK=1`` prints the same table from fewer samples in about a minute and
writes ``bench/results-quick.json`` instead, so it never overwrites a full run's figures.
``BENCH_ONLY=flood`` runs only the fair-rendering row (a small user's miss latency while
another user floods, beside its latency on the idle stack); ``BENCH_ONLY=sealed`` only the
sealed-chunk rows of issue 12 (``bench/sealed.py``: POST by room size up to 100,000 messages,
API CPU per POST, appends with sealing, the relay's job body), which stop the renderers and
so run on their own; ``BENCH_ONLY=chunks`` only the rows of issue 11, big rooms in chunks
(``bench.chunks``), ``BENCH_ONLY=resnapshot`` only its row 11.1 (``bench.resnapshot``, a
minute or two); ``BENCH_ONLY=template`` only the template's cost per message beside bare
WeasyPrint's (``bench.template_cost``, in a bench render worker, without starting the services).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any

from snapshot_client import Client

from bench import (
    api_load,
    big_rooms,
    cache_hits,
    chunks,
    downloads,
    flood,
    freeze,
    live_progress,
    pipeline,
    resnapshot,
    sealed,
    template_cost,
    webhooks,
)
from bench.api_load import Endpoints, LoadRun
from bench.bare import BarePool
from bench.load import LoadGenerator
from bench.plan import Plan
from bench.procstat import backend_pids, machine
from bench.report import Row, table, write_results
from bench.rooms import OWNER, cjk_bodies, create_room, text_bodies
from bench.settle import NoRenderer, WithRenderers
from bench.stack import BenchStack

MAIN_ROOM = 100  # messages in the room of items 1, 3 and 4
CJK_MESSAGES, CJK_CHARS = 100, 40  # a ~1 MB PDF that renders in seconds (items 4 and 6)
_T0 = time.perf_counter()


def say(text: str) -> None:
    print(f"bench [{time.perf_counter() - _T0:6.1f}s] {text}", file=sys.stderr, flush=True)


def make_rooms(stack: BenchStack, plan: Plan) -> tuple[dict[int, str], str]:
    sizes = sorted({MAIN_ROOM, *plan.freeze_sizes, *plan.big_sizes})
    with Client(stack.base, stack.token(OWNER), timeout=120) as client:
        rooms = {n: create_room(client, f"Bench room {n}", text_bodies(n)) for n in sizes}
        cjk = create_room(client, "Bench CJK room", cjk_bodies(CJK_MESSAGES, CJK_CHARS))
    return rooms, cjk


def _item1(
    stack: BenchStack, lg: LoadGenerator, plan: Plan, ep: Endpoints, renderers: bool
) -> tuple[LoadRun, list[Row]]:
    servers = {"api": stack.api_pid, **backend_pids()}
    if renderers:
        servers["renderer"] = stack.renderer_pid
        lr = LoadRun(lg, stack.port, servers, WithRenderers(stack, plan.settle_seconds), plan)
        return lr, api_load.run_mode(lr, ep, "renderers", 500)
    lr = LoadRun(lg, stack.port, servers, NoRenderer(stack, plan.settle_seconds), plan)
    return lr, api_load.run_mode(lr, ep, "no renderer", 1000)


def run_all(
    stack: BenchStack, lg: LoadGenerator, bare: BarePool, plan: Plan, raw: dict[str, Any]
) -> list[Row]:
    """The items in an order that needs no renderer start-up mid-run: with the renderer first,
    then without any, then with the standby replica (all started together at the beginning)."""
    port, dsn = stack.port, stack.database_url
    say(
        f"starting the API ({plan.api_workers} workers), a renderer (R={plan.renderers}), a standby"
    )
    stack.start_all()
    auth = stack.auth(OWNER)
    rooms, cjk_room = make_rooms(stack, plan)
    ep = Endpoints.for_room(rooms[MAIN_ROOM], auth)
    rows: dict[str, list[Row]] = {}

    asyncio.run(cache_hits.render_all(port, auth, dsn, rooms[MAIN_ROOM], [{}]))  # fill the LRU
    say("item 1 with the renderer answering every job from memory")
    lr, rows["1b"] = _item1(stack, lg, plan, ep, renderers=True)
    raw["renderers"] = lr.raw
    say("item 4: memory hits")
    memory = asyncio.run(
        cache_hits.post_until_done(port, auth, dsn, rooms[MAIN_ROOM], [{}] * plan.memory_hits)
    )
    say("item 3: pipeline efficiency")
    rows["3"] = pipeline.run(
        port, auth, dsn, rooms[MAIN_ROOM], plan.pipeline_docs, plan.pipeline_rounds, bare
    )
    say("item 8: webhook and polling latency after the renderer's completed")
    rows["8"] = [
        asyncio.run(webhooks.measure(stack.base, dsn, auth, rooms[MAIN_ROOM], plan.webhook_samples))
    ]
    say("item 4: rendering ~1 MB PDFs into the store for the disk hits")
    bodies = [{"options": {"title": f"Disk hit {i}"}} for i in range(plan.disk_hit_docs)]
    asyncio.run(cache_hits.render_all(port, auth, dsn, cjk_room, bodies))

    say("item 1 with no renderer consuming")
    stack.stop_renderers()
    lr, rows["1a"] = _item1(stack, lg, plan, ep, renderers=False)
    say("item 2: freeze cost")
    rows["2"] = freeze.run(lr, rooms, auth, dsn)
    raw["no_renderer"] = lr.raw
    say("item 7: live progress, SSE beside polling (the bench publishes `completed`)")
    rows["7"] = live_progress.run(stack, auth, rooms[MAIN_ROOM], plan.live_samples)
    stack.purge_jobs()  # nobody rendered them; the standby must not either

    say("item 4: disk hits from a renderer replica that never saw these documents")
    stack.switch_to_standby()
    disk = asyncio.run(cache_hits.post_until_done(port, auth, dsn, cjk_room, bodies))
    rtt = asyncio.run(cache_hits.confirm_rtt_ms(stack.prefix, plan.micro_samples))
    reads = cache_hits.disk_reads_ms(stack.store, disk.keys[0], plan.micro_samples)
    rows["4"] = cache_hits.rows_for(memory, disk, rtt, reads)
    say(f"item 5: big rooms {plan.big_sizes} (pipeline and bare render side by side)")
    rows["5"] = big_rooms.run(stack, bare, auth, rooms, plan.big_sizes)
    say("item 6: downloads")
    rows["6"] = downloads.run(
        stack,
        lg,
        auth,
        str(disk.snapshot_ids[0]),
        disk.keys[0],
        plan.download_clients,
        plan.download_seconds,
    )
    say("issue 11: big rooms in chunks")
    rows["11"] = chunks.run(stack, plan, say)
    order = ("1a", "1b", "1gen", "2", "3", "4", "5", "6", "7", "8", "11")
    rows["1gen"] = [api_load.loadgen_row(lg)]
    return [row for key in order for row in rows[key]]


def run_only(
    only: str, stack: BenchStack, lg: LoadGenerator, bare: BarePool, plan: Plan
) -> list[Row]:
    """One group of rows (``BENCH_ONLY``), on the same stack as a full run."""
    if only == "template":
        size, repeats = (100, 1) if plan.quick else (1000, 3)
        say(f"template: {size} messages, template and bare WeasyPrint, {repeats} times each")
        payload = template_cost.sample_payload(size)
        return template_cost.rows(bare.call(template_cost.compare, payload, {}, repeats).result())
    if only not in ("flood", "sealed", "chunks", "resnapshot"):
        raise SystemExit(
            f"BENCH_ONLY={only!r}: the rows that run alone are: flood, sealed, chunks,"
            " resnapshot, template"
        )
    say(f"starting the API ({plan.api_workers} workers) and a renderer (R={plan.renderers})")
    if only in ("chunks", "resnapshot"):
        stack.start_api()
        stack.start_renderer()
        if only == "resnapshot":
            say(f"11.1: re-snapshots of a {plan.chunk_room:,}-message room through the API")
            return resnapshot.run(stack, plan)
        return chunks.run(stack, plan, say)
    stack.start_all()
    if only == "sealed":
        say("sealed chunks: POST p50 by room size, API CPU per POST, appends, relay")
        return sealed.run(stack, lg, plan)
    say(f"flood: {flood.FLOOD} misses of one user, {plan.flood_samples} of another's")
    return flood.run(stack, plan.flood_samples)


def main() -> int:
    plan = Plan.from_env()
    only = os.environ.get("BENCH_ONLY", "")
    host = machine()
    stack = BenchStack(plan.api_workers, plan.renderers, plan.render_timeout, plan.render_memory)
    raw: dict[str, Any] = {}
    rows: list[Row] = []
    ok = False
    try:
        with BarePool(plan.renderers) as bare, LoadGenerator() as lg:
            if only:
                rows = run_only(only, stack, lg, bare, plan)
            else:
                rows = run_all(stack, lg, bare, plan, raw)
                say("flood: fair rendering")
                rows += flood.run(stack, plan.flood_samples)
        ok = True
    finally:
        say("stopping the stack, dropping the database and queues")
        stack.stop()
        if ok and os.environ.get("BENCH_KEEP_LOGS", "") in ("", "0"):
            stack.discard_logs()
        else:  # a failed run, or BENCH_KEEP_LOGS=1
            print(f"bench: service logs kept in {stack.logs}", file=sys.stderr)
    duration = time.perf_counter() - _T0
    mode = "BENCH_QUICK=1 (reduced samples)" if plan.quick else "full"
    print(table(rows))
    print(
        f"{mode} run in {duration:.0f} s on {host['cores']} cores, {host['memory_gib']} GiB"
        f" ({host['cpu_model']}); API workers {plan.api_workers}, render workers R ="
        f" {plan.renderers}; load generator: bench.loadgen (own process)"
    )
    path = write_results(
        rows, host, {**plan.as_dict(), "raw": raw}, duration, plan.quick, only=only
    )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
