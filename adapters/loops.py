"""A second event loop on a thread of its own, and running a coroutine on a given loop.

asyncio runs what is ready in the order it became ready, with no priorities: on a loop that
also answers, an acknowledgement waits behind every answer's steps ready before it (at more
events a second than a process answers, hundreds of milliseconds). Answering on another loop,
in another thread, leaves the server's loop to acknowledge; the two threads share the
processor as the interpreter switches threads (every `sys.getswitchinterval()`), so an
acknowledgement waits for a switch, not for a queue of answers.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


async def on_loop(loop: asyncio.AbstractEventLoop | None, work: Coroutine[Any, Any, T]) -> T:
    """`work` run on `loop` and awaited from the running one (here, when `loop` is None or
    the running loop). Objects bound to a loop (an HTTP session's pooled connections) are
    used from another this way; cancelling the caller cancels the work."""
    if loop is None or loop is asyncio.get_running_loop():
        return await work
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(work, loop))


class LoopThread:
    """An event loop running on a thread of its own from `start` to `stop`."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> None:
        self._thread.start()

    def call(self, callback: Callable[..., object], *args: object) -> None:
        """`callback(*args)` on the loop, soon; from any thread."""
        self.loop.call_soon_threadsafe(callback, *args)

    async def run(self, work: Coroutine[Any, Any, T]) -> T:
        """`work` on this loop, awaited from the caller's (`on_loop`)."""
        return await on_loop(self.loop, work)

    async def stop(self) -> None:
        """End the loop once what is on it now has had its turn, and wait for the thread
        (what should finish first is the caller's to await before)."""
        if not self._thread.is_alive():
            self.loop.close()
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        await asyncio.to_thread(self._thread.join)
