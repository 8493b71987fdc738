"""Events API questions, acknowledged on the server's loop, answered on a loop of their own.

The server's loop reads a question out of a signed delivery, keeps it (the received spool) and
answers Slack 200 (`app.acknowledged_first`); its answering (bolt's listeners, the Web API
calls, the "Thinking…" placeholder, streaming) runs here, on `LoopThread` "slack-answering",
through a bolt app and a Web API session of its own, started in arrival order by the
`Backlog` as that loop keeps up. So at more questions a second than the process answers the
acknowledgements do not queue behind the answers (docs/benchmarks.md, the contention
figures). Commands, buttons and forms stay on the server's loop: their acknowledgement may
carry their answer.

What crosses between the loops is thread-safe: the receipt's settlement (a concurrent future),
the worker's calls (each awaited on the loop that made it), the Slack posters the core calls
(each runs on its client's loop, adapters.slack.outbound), the LLM's connections (one client
per loop).
"""

from __future__ import annotations

import contextlib
from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltRequest

from adapters.backlog import SHUTDOWN_GRACE, Backlog
from adapters.loops import LoopThread
from adapters.slack.outbound import shared_session
from bot.core import PolicyBot


class SlackAnswering:
    """The loop that answers acknowledged questions, from `start` to `stop`, with its bolt
    `app` (built like the server's, its own client) and its `backlog`."""

    def __init__(self, bot: PolicyBot, app: AsyncApp) -> None:
        self.bot = bot
        self.app = app
        self.backlog = Backlog()
        #: The answering loop's thread while it runs (None before `start`, after `stop`).
        self.thread: LoopThread | None = None
        self._session = contextlib.AsyncExitStack()

    async def start(self) -> None:
        """The thread and its loop up, and the Web API session open on it."""
        self.thread = LoopThread("slack-answering")
        self.thread.start()
        await self.thread.run(self._session.enter_async_context(shared_session(self.app.client)))

    def answer(self, request: AsyncBoltRequest, ready: Coroutine[Any, Any, object]) -> None:
        """Answer `request` through bolt on the answering loop once `ready` (an awaitable,
        the receipt's `delivery()`) is done and the loop has room; from the server's loop.
        Before `start` (no loop yet) or after `stop`: nothing (the question is kept and is
        answered on the next start)."""
        if self.thread is None:
            ready.close()  # never awaited: said so, not warned about
            return
        self.thread.call(self.backlog.add, lambda: self.app.async_dispatch(request), ready)

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Start nothing more; what was started finishes within `grace` (its answer posted
        while the session is open), then the session and the loop's LLM connections close,
        and the loop ends."""
        thread, self.thread = self.thread, None
        if thread is None:
            return
        try:
            await thread.run(self._close(grace))
        finally:
            await thread.stop()

    async def _close(self, grace: float) -> None:
        try:
            await self.backlog.close(grace)
        finally:
            await self._session.aclose()
            await self.bot.close_connections()
