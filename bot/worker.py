"""Where the core's blocking work runs, so the event loop only does I/O.

Everything that touches the database or is CPU-heavy (retrieval and embedding, logging and
grouping a question, comparing and activating versions, re-checking open questions) is a
synchronous call handed to `Worker.run` and awaited. One thread: it is the one user of the
bot's database connection while the loop serves requests, so a write lock another process
holds for seconds, or a policy being embedded, holds up the worker's queue, never the
acknowledgements and health checks the loop answers meanwhile. Calls run in the order handed
in, except a `Worker.run_next`, which goes before those waiting. What would hold the GIL for
seconds runs in a child process instead (`in_child_process`).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import functools
import json
import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from bot.child_call import child_environment

P = ParamSpec("P")
T = TypeVar("T")


class Worker:
    """One thread that runs the core's blocking calls in order; `run` awaits one, `run_next`
    one that goes ahead of those waiting."""

    def __init__(self, name: str = "policybot-worker") -> None:
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self._thread_ids: set[int] = set()
        self._lock = threading.Lock()
        # The executor runs one `_next_call` per call handed in, and each takes the oldest
        # call of the first lane that has one: its own queue stays first come, first served.
        self._ahead: collections.deque[_Call] = collections.deque()
        self._in_turn: collections.deque[_Call] = collections.deque()
        #: The event loop that handed the worker the call it is running: where that call
        #: starts background jobs (`PolicyBot`'s re-check after an activation). Several loops
        #: may hand calls in (the server's, and the one answering Slack's questions).
        self.loop: asyncio.AbstractEventLoop | None = None

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=self._name, initializer=self._note_thread
                )
            return self._executor

    @property
    def started(self) -> bool:
        """Whether the thread is up (a first call starts it; `close` ends it)."""
        return self._executor is not None

    def _note_thread(self) -> None:
        self._thread_ids.add(threading.get_ident())

    @property
    def in_worker(self) -> bool:
        """Whether the caller is the worker's thread (a call from it runs inline: queueing
        behind itself would never finish)."""
        return threading.get_ident() in self._thread_ids

    async def run(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._handed_in(self._in_turn, call, *args, **kwargs)

    async def run_next(self, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`run`, ahead of the calls waiting (after the one running): for a small write whose
        delay costs more than theirs, such as marking a question's reply sent, which a burst
        of questions would otherwise hold up for seconds (a process stopped meanwhile
        answers it again on its next start)."""
        return await self._handed_in(self._ahead, call, *args, **kwargs)

    async def _handed_in(
        self,
        lane: collections.deque[_Call],
        call: Callable[P, T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        if self.in_worker:
            return call(*args, **kwargs)
        # The caller's context goes along (log records' task-local fields, test fixtures).
        bound = functools.partial(contextvars.copy_context().run, call, *args, **kwargs)
        done: concurrent.futures.Future[T] = concurrent.futures.Future()
        pool = self._pool()
        caller = (bound, done, asyncio.get_running_loop())
        with self._lock:
            lane.append(caller)
        try:
            pool.submit(self._next_call)
        except RuntimeError:  # closed meanwhile: nothing will take it from its lane
            with self._lock, contextlib.suppress(ValueError):
                lane.remove(caller)
            raise
        return await asyncio.wrap_future(done)

    def _next_call(self) -> None:
        with self._lock:
            call, done, loop = self._ahead.popleft() if self._ahead else self._in_turn.popleft()
        if not done.set_running_or_notify_cancel():  # its caller stopped waiting
            return
        self.loop = loop
        try:
            result = call()
        except BaseException as error:
            done.set_exception(error)
        else:
            done.set_result(result)

    def close(self) -> None:
        """Let queued calls finish, then end the thread (a new call starts another)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
        self._thread_ids.clear()


#: A call handed to the worker, where its outcome goes, and the loop that handed it in.
_Call = tuple[Callable[[], Any], "concurrent.futures.Future[Any]", asyncio.AbstractEventLoop]


async def blocking(
    worker: Worker | None, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """`call` in `worker`, or on the caller's thread when there is none (a part of the core
    used outside a bot: the CLI, a test)."""
    if worker is None:
        return call(*args, **kwargs)
    return await worker.run(call, *args, **kwargs)


class ChildProcessDied(RuntimeError):
    """The child process running a call ended before it returned (killed, out of memory)."""


async def in_child_process(call: Callable[..., T], *args: object) -> T:
    """`call(*args)` in a fresh interpreter (`python -m bot.child_call`), awaited; what it
    returns or raises comes back pickled (`call` a module-level function, the arguments plain
    data). For CPU-heavy work that would hold the GIL for seconds (storing and comparing a
    large upload): in a thread it would take the processor from the event loop, whose
    acknowledgements Slack times at 3 s; in a child it runs on the machine's other core,
    below the server's priority from its first line. A fresh interpreter, not a fork: a fork
    would copy the server's threads and open connections. Starting one costs a few hundred
    milliseconds, paid by the rare call that needs it."""
    return await asyncio.to_thread(_run_in_child, call, *args)


def _run_in_child(call: Callable[..., T], *args: object) -> T:
    request = json.dumps(sys.path).encode() + b"\n" + pickle.dumps((call, args))
    # stderr is the server's: what the child logs, or its traceback, lands in the server's log.
    finished = subprocess.run(
        [sys.executable, "-m", "bot.child_call"],
        input=request,
        stdout=subprocess.PIPE,
        env=child_environment(),
        check=False,
    )
    try:
        returned, value = pickle.loads(finished.stdout)
    except Exception:  # no reply, or half of one: it ended before it could answer
        raise ChildProcessDied(
            f"the process running {call.__name__} ended early (exit code {finished.returncode})"
        ) from None
    if not returned:
        raise value
    return cast(T, value)
