"""`bot.worker.Worker`: the core's blocking calls in one thread, in order, a `run_next` first."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.loops import LoopThread
from bot.config import Settings
from bot.core import PolicyBot
from bot.models import IncomingQuestion
from bot.store.database import Storage
from bot.worker import Worker

asker = contextvars.ContextVar("asker", default="nobody")


@pytest.fixture
def worker() -> Iterator[Worker]:
    made = Worker("test-worker")
    yield made
    made.close()


async def held(worker: Worker) -> tuple[threading.Event, asyncio.Future[None]]:
    """The worker busy until the returned event is set (and the call it runs)."""
    release, running = threading.Event(), threading.Event()

    def hold() -> None:
        running.set()
        release.wait(10)

    call = asyncio.ensure_future(worker.run(hold))
    await asyncio.to_thread(running.wait, 10)
    return release, call


def noting(order: list[str], name: str) -> Callable[[], str]:
    def call() -> str:
        order.append(name)
        return name

    return call


async def test_calls_run_in_the_order_handed_in_and_run_next_goes_ahead_of_the_waiting(
    worker: Worker,
) -> None:
    order: list[str] = []
    release, holding = await held(worker)
    first = asyncio.ensure_future(worker.run(noting(order, "first")))
    second = asyncio.ensure_future(worker.run(noting(order, "second")))
    urgent = asyncio.ensure_future(worker.run_next(noting(order, "urgent")))
    then = asyncio.ensure_future(worker.run_next(noting(order, "urgent too")))
    await asyncio.sleep(0.05)  # all handed in while the worker is busy
    assert order == []
    release.set()
    assert list(await asyncio.gather(first, second, urgent, then)) == [
        "first",
        "second",
        "urgent",
        "urgent too",
    ]
    await holding
    assert order == ["urgent", "urgent too", "first", "second"]


async def test_a_call_no_one_waits_for_is_skipped_and_what_follows_it_runs(
    worker: Worker,
) -> None:
    order: list[str] = []
    release, holding = await held(worker)
    dropped = asyncio.ensure_future(worker.run(noting(order, "dropped")))
    kept = asyncio.ensure_future(worker.run(noting(order, "kept")))
    await asyncio.sleep(0)
    dropped.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await dropped  # its call given up before the worker reaches it
    release.set()
    assert await kept == "kept"
    await holding
    assert order == ["kept"]


async def test_a_call_raises_into_its_caller_and_sees_the_callers_context(
    worker: Worker,
) -> None:
    def refuses() -> None:
        raise LookupError(asker.get())

    asker.set("U1")
    with pytest.raises(LookupError, match="U1"):
        await worker.run_next(refuses)
    assert await worker.run(lambda: threading.current_thread().name.startswith("test-worker"))
    # a call from the worker's own thread runs there at once: queued, it would wait for itself
    assert await worker.run(lambda: worker.in_worker)


async def test_a_reply_is_marked_ahead_of_the_questions_waiting_for_the_worker(
    tmp_path: Path, settings: Settings
) -> None:
    # A burst of questions fills the worker with asking; a reply sent meanwhile is marked
    # before them, so a process stopped now does not send it again on its next start.
    bot = PolicyBot.create(settings, storage=Storage.open(tmp_path / "marks.db"))
    try:
        bot.ensure_policy()
        question = IncomingQuestion(
            text="May I post photos of the office?",
            platform="slack",
            asker="U1",
            conversation="D1",
        )
        receipt = await bot.received.take_delivery("slack", "event:E1", question)
        delivery = await receipt.delivery()
        assert delivery.received_id is not None
        unreplied_seen: list[int] = []
        release, holding = await held(bot.worker)
        queued = [
            asyncio.ensure_future(
                bot.worker.run(lambda: unreplied_seen.append(len(bot.storage.unreplied())))
            )
            for _ in range(5)
        ]
        marked = asyncio.ensure_future(bot.received.record_reply(delivery.received_id))
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(holding, marked, *queued)
        assert unreplied_seen == [0] * 5
    finally:
        await bot.aclose()
        bot.storage.close()


async def test_a_call_sees_the_loop_that_handed_it_in_when_several_loops_hand_in_calls(
    worker: Worker,
) -> None:
    # The call a job is started from (a re-check after an activation) starts it on the loop
    # that asked: the server's, or the one answering Slack's questions.
    other = LoopThread("test-other-loop")
    other.start()
    seen: dict[str, asyncio.AbstractEventLoop | None] = {}

    def note(name: str) -> None:
        seen[name] = worker.loop

    try:
        release, holding = await held(worker)
        from_other = asyncio.run_coroutine_threadsafe(worker.run(note, "other"), other.loop)
        await other.run(asyncio.sleep(0))  # after that call's first step: handed in
        from_here = asyncio.ensure_future(worker.run(note, "here"))
        await asyncio.sleep(0)  # handed in too, last
        release.set()
        await holding
        await asyncio.wrap_future(from_other)
        await from_here
    finally:
        await other.stop()
    assert seen == {"other": other.loop, "here": asyncio.get_running_loop()}
