"""The renderer's fair queue: turns at the worker pool go round robin across users, no user
holds more than its share, and shutdown fails the renders still waiting."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from snapshot_renderer.fair_queue import FairQueue, QueueClosed


class Renders:
    """Renders that take a turn and keep it until released; records the order they start."""

    def __init__(self, queue: FairQueue) -> None:
        self.queue = queue
        self.started: list[str] = []
        self._release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def submit(self, name: str, borrow: bool = False) -> None:
        """A render named ``<user>:<n>`` asks for a turn of ``<user>`` (``borrow``: a piece,
        which may take a turn past the user's share)."""
        self._release[name] = asyncio.Event()
        self.tasks[name] = asyncio.ensure_future(self._run(name, borrow))

    async def _run(self, name: str, borrow: bool) -> None:
        async with self.queue.turn(name.split(":")[0], borrow):
            self.started.append(name)
            await self._release[name].wait()

    async def finish(self, name: str) -> None:
        self._release[name].set()
        await self.tasks[name]

    async def settle(self) -> None:
        for _ in range(5):  # let every ready task run
            await asyncio.sleep(0)


async def test_a_second_user_is_served_before_the_first_users_backlog() -> None:
    renders = Renders(FairQueue(slots=2, per_user=1))
    for n in range(5):
        renders.submit(f"a:{n}")
    await renders.settle()
    renders.submit("b:0")
    await renders.settle()
    assert renders.started == ["a:0", "b:0"]  # a holds its one turn; b takes the free worker
    await renders.finish("a:0")
    await renders.settle()
    await renders.finish("b:0")
    await renders.settle()
    assert renders.started == ["a:0", "b:0", "a:1"]
    for n in range(1, 5):
        await renders.finish(f"a:{n}")
        await renders.settle()
    assert renders.started == ["a:0", "b:0", "a:1", "a:2", "a:3", "a:4"]


async def test_one_worker_alternates_between_users_and_never_deadlocks() -> None:
    renders = Renders(FairQueue(slots=1, per_user=1))
    for n in range(3):
        renders.submit(f"a:{n}")
    await renders.settle()
    renders.submit("b:0")
    renders.submit("b:1")
    renders.submit("c:0")
    await renders.settle()
    order = ["a:0", "b:0", "c:0", "a:1", "b:1", "a:2"]
    for name in order:
        await renders.settle()
        assert renders.started[-1] == name, renders.started
        await renders.finish(name)
    assert renders.started == order


async def test_a_lone_user_may_use_its_share_and_no_more() -> None:
    queue = FairQueue(slots=4, per_user=2)
    renders = Renders(queue)
    for n in range(4):
        renders.submit(f"a:{n}")
    await renders.settle()
    assert renders.started == ["a:0", "a:1"] and queue.waiting == 2
    renders.submit("b:0")
    await renders.settle()
    assert renders.started[-1] == "b:0"
    for name in ("a:0", "a:1", "b:0", "a:2", "a:3"):
        await renders.finish(name)
        await renders.settle()
    assert queue.running("a") == 0 and queue.waiting == 0


async def test_a_cancelled_waiter_gives_up_its_place_and_a_cancelled_holder_its_turn() -> None:
    queue = FairQueue(slots=1, per_user=1)
    renders = Renders(queue)
    renders.submit("a:0")
    renders.submit("b:0")
    renders.submit("c:0")
    await renders.settle()
    renders.tasks["b:0"].cancel()
    renders.tasks["a:0"].cancel()
    for name in ("a:0", "b:0"):
        with contextlib.suppress(asyncio.CancelledError):
            await renders.tasks[name]
    await renders.settle()
    assert renders.started == ["a:0", "c:0"]
    await renders.finish("c:0")
    assert queue.waiting == 0 and queue.running("c") == 0


async def test_close_fails_the_waiting_renders_and_lets_the_running_finish() -> None:
    queue = FairQueue(slots=1, per_user=1)
    renders = Renders(queue)
    renders.submit("a:0")
    renders.submit("a:1")
    renders.submit("b:0")
    await renders.settle()
    queue.close()
    for name in ("a:1", "b:0"):
        with pytest.raises(QueueClosed):
            await renders.tasks[name]
    await renders.finish("a:0")
    assert renders.started == ["a:0"]
    with pytest.raises(QueueClosed):
        async with queue.turn("c"):
            pass


async def test_pieces_of_a_lone_user_borrow_every_free_turn_but_yield_to_another_user() -> None:
    queue = FairQueue(slots=2, per_user=1)
    renders = Renders(queue)
    for n in range(4):
        renders.submit(f"a:{n}", borrow=True)
    await renders.settle()
    assert renders.started == ["a:0", "a:1"]  # both workers, though a's share is one
    renders.submit("b:0")  # a whole document of another user
    await renders.settle()
    await renders.finish("a:0")
    await renders.settle()
    assert renders.started[-1] == "b:0"  # the freed turn is b's, not a's next piece
    await renders.finish("a:1")
    await renders.settle()
    assert renders.started[-1] == "a:2"
    renders.submit("b:1")  # b is at its share: a whole document does not borrow
    await renders.settle()
    assert "b:1" not in renders.started
    for name in ("b:0", "a:2", "b:1", "a:3"):
        await renders.finish(name)
        await renders.settle()
    assert queue.waiting == 0 and not queue.running("a") and not queue.running("b")
