"""The rows of issue 11 ("Big rooms in chunks"), ``BENCH_ONLY=chunks`` alone:

- 11.1 re-snapshot after 10 new messages through the API and renderer (``bench.resnapshot``);
- 11.4 / 11.5 / 11.6 first render chunked vs whole, assembly per page, PDF sizes
  (``bench.chunks_first``);
- 11.2 / 11.3 / 11.5 2 render workers vs 1, peak RSS of a render worker, the 100,000-message
  room (``bench.chunks_big``).

11.1 runs on the bench's stack (its running renderers); the others on renderer processes of
their own, started and stopped here, so nothing else of the stack renders meanwhile.
"""

from __future__ import annotations

from bench import chunks_big, chunks_first, resnapshot
from bench.chunks_first import Say
from bench.plan import Plan
from bench.report import Row
from bench.stack import BenchStack


def run(stack: BenchStack, plan: Plan, say: Say) -> list[Row]:
    say(f"11.1: re-snapshots of a {plan.chunk_room:,}-message room through the API")
    rows = resnapshot.run(stack, plan)
    rows += chunks_first.first_renders(plan, say)
    rows += chunks_big.run(plan, say)
    order = ("11.1", "11.2", "11.3", "11.4", "11.5", "11.6")
    return sorted(rows, key=lambda row: order.index(row.id))
