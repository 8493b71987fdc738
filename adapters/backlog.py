"""Work a server has acknowledged and not yet started, started only while the event loop
keeps up with its acknowledgements.

asyncio runs what is ready in the order it became ready. A burst of answers (a write lock
another process held, released; more events a second than a process answers) fills every
turn of the loop, and a new request, whose acknowledgement takes a few turns, waits behind
all of them: Slack gives up at 3 seconds and sends the event again. So an acknowledged
event's answering is queued here and started one at a time, each only once a turn of the
loop has come back within `TURN_BUDGET` (or nothing was started for `LONGEST_HOLD`, so a
loop slowed by a busy machine still drains). What is being answered goes on; new requests
keep their turns; the queue drains as fast as the loop has room.

A stopped process loses nothing queued: each question was kept (the received spool, then the
database) before it was acknowledged, and is answered as left over on the next start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

#: A turn of the event loop longer than this (seconds) means it is busy: start nothing new.
TURN_BUDGET = 0.004
#: Start the next piece of work after this long (seconds) whatever the turns take: on a
#: machine whose other processes slow every turn, the queue must still drain.
LONGEST_HOLD = 0.1
#: Seconds shutdown waits for started work before cutting it short.
SHUTDOWN_GRACE = 5.0

Start = Callable[[], Awaitable[Any]]


class Backlog:
    """Acknowledged work, started in arrival order while the loop has room (`add`);
    `close` ends it at shutdown."""

    def __init__(
        self, *, turn_budget: float | None = None, longest_hold: float | None = None
    ) -> None:
        self.turn_budget = TURN_BUDGET if turn_budget is None else turn_budget
        self.longest_hold = LONGEST_HOLD if longest_hold is None else longest_hold
        self._waiting: collections.deque[Start] = collections.deque()
        self._started: set[asyncio.Task[Any]] = set()
        self._starting: asyncio.Task[None] | None = None
        self._closed = False

    def __len__(self) -> int:
        """How much is waiting to be started."""
        return len(self._waiting)

    def add(self, start: Start) -> None:
        """Start `start()` once the loop has room; after `close`, never."""
        if self._closed:
            return
        self._waiting.append(start)
        if self._starting is None or self._starting.done():
            self._starting = asyncio.create_task(self._start_waiting())

    async def _start_waiting(self) -> None:
        loop = asyncio.get_running_loop()
        last_start = loop.time()
        while self._waiting and not self._closed:
            began = loop.time()
            await asyncio.sleep(0)  # one turn of the loop: everything else ready runs first
            now = loop.time()
            if now - began > self.turn_budget and now - last_start < self.longest_hold:
                continue
            last_start = now
            task = asyncio.create_task(self._run(self._waiting.popleft()))
            self._started.add(task)
            task.add_done_callback(self._started.discard)

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
            self._waiting.clear()
        if self._starting is not None:
            self._starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._starting
        started = set(self._started)
        if not started:
            return
        _, late = await asyncio.wait(started, timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
