"""Work a server has acknowledged and not yet started, started only while the event loop
keeps up.

asyncio runs what is ready in the order it became ready. A burst of answers (a write lock
another process held, released; more events a second than a process answers) started at
once fills every turn of the loop: all of them progress a little at a time and the first
asked wait as long as the last, and on a loop that also acknowledges, a new request, whose
acknowledgement takes a few turns, waits behind all of them (Slack gives up at 3 seconds and
sends the event again; Slack's questions are now answered on a loop of their own,
adapters.slack.answering). So an acknowledged event's answering is queued here and started
only once a turn of the loop has come back within `TURN_BUDGET` (a few after a turn well
within it; one after `LONGEST_HOLD` whatever the turns take, so a loop slowed by a busy
machine still drains). What is being answered goes on; the queue drains, in arrival order,
as fast as the loop has room.

A stopped process loses nothing queued: each question was kept (the received spool, then the
database) before it was acknowledged, and is answered as left over on the next start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from typing import Any

log = logging.getLogger(__name__)

#: A turn of the event loop longer than this (seconds) means it is busy: start nothing new.
#: (On a loop that also acknowledges, an acknowledgement takes four or five turns; Slack's
#: own budget is 3 s, ours 100 ms. On the answering loop, 10, 50 ms or no budget at all
#: made no difference beyond run-to-run noise at 200 events/s.)
TURN_BUDGET = 0.01
#: How many to start after a turn under half the budget: one a turn would cap a loop whose
#: turns take a few milliseconds at a few hundred a second.
STARTS_PER_QUIET_TURN = 4
#: Start the next piece of work after this long (seconds) whatever the turns take: on a
#: machine whose other processes slow every turn, the queue must still drain.
LONGEST_HOLD = 0.1
#: Seconds shutdown waits for started work before cutting it short.
SHUTDOWN_GRACE = 5.0

Start = Callable[[], Awaitable[Any]]
#: One piece of work: how to start it, and what it needs done first (None: nothing).
_Waiting = tuple[Start, "asyncio.Future[Any] | None"]


class Backlog:
    """Acknowledged work, started in arrival order while the loop has room (`add`);
    `close` ends it at shutdown."""

    def __init__(
        self, *, turn_budget: float | None = None, longest_hold: float | None = None
    ) -> None:
        self.turn_budget = TURN_BUDGET if turn_budget is None else turn_budget
        self.longest_hold = LONGEST_HOLD if longest_hold is None else longest_hold
        self._waiting: collections.deque[_Waiting] = collections.deque()
        self._started: set[asyncio.Task[Any]] = set()
        self._starting: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        """How much is waiting to be started."""
        return len(self._waiting)

    def add(self, start: Start, ready: Awaitable[Any] | None = None) -> None:
        """Start `start()` once `ready` (if any) is done, whatever its outcome, and the loop
        has room; after `close`, never. Work waiting for its `ready` holds back what came
        after it: it starts in arrival order. (A question's `ready` is its record in the
        database: while another process holds the write lock, the questions acknowledged
        meanwhile wait here, not as that many started listeners, all made ready at once
        when the lock goes.)"""
        if self._closed:
            return
        self._waiting.append((start, None if ready is None else asyncio.ensure_future(ready)))
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start_waiting())

    async def _start_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        last_start = loop.time()
        while self._waiting and not self._closed:
            _, ready = self._waiting[0]
            if ready is not None and not ready.done():
                await asyncio.wait({ready})
                last_start = loop.time()
                continue
            began = loop.time()
            await asyncio.sleep(0)  # one turn of the loop: everything else ready runs first
            now = loop.time()
            turn = now - began
            if turn <= self.turn_budget / 2:
                count = STARTS_PER_QUIET_TURN  # room to spare: a few at once
            elif turn <= self.turn_budget or now - last_start >= self.longest_hold:
                count = 1
            else:
                continue
            last_start = now
            while count and self._waiting:
                start, ready = self._waiting[0]
                if ready is not None and not ready.done():
                    break
                self._waiting.popleft()
                if ready is not None and not ready.cancelled():
                    ready.exception()  # seen: its failure is the listener's to report
                task = asyncio.create_task(self._run(start))
                self._started.add(task)
                task.add_done_callback(self._started.discard)
                count -= 1

    @staticmethod
    async def _run(start: Start) -> None:
        try:
            await start()
        except Exception:  # one failure must not stop the others
            log.exception("acknowledged work failed")

    async def close(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Start nothing more; let started work finish within `grace` seconds, then cancel
        it. What never started is answered on the next start (see the module's docstring)."""
        self._closed = True
        if self._waiting:
            log.info("%d acknowledged events left for the next start", len(self._waiting))
            for _, ready in self._waiting:
                if ready is not None:
                    ready.cancel()
            self._waiting.clear()
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        await finish_within(self._started, grace)


async def finish_within(tasks: Collection[asyncio.Task[Any]], grace: float) -> int:
    """At a stop: `tasks` (a copy is taken) get `grace` seconds to finish; the rest are
    cancelled and waited for. How many were cut short."""
    running = set(tasks)
    if not running:
        return 0
    _, late = await asyncio.wait(running, timeout=grace)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)
    return len(late)
